//! llhttp's request corpus (`../shared/corpora/llhttp/request/*.md`, MIT, llhttp 9.4.2) run
//! against the head parser and body decoder, following the corpus README.
//!
//! - Cases: every `type: request` case; `*-lenient-*`, `request-finish` and `pausing.md` are
//!   skipped, and so are RTSP/ICE requests (protocol token `RTSP/` or `ICE/`), as the README
//!   says. Nothing else is skipped.
//! - Bytes: final newline dropped, backslash-newline removed, newlines to CRLF, then `\r \n
//!   \t \f \xHH \NNN` expanded in that order, on characters, then UTF-8 encoded (as llhttp's
//!   runner does).
//! - Expected outcome: a log ending in `error` is a rejection, except `Pause on
//!   CONNECT/Upgrade` / `Pause on PRI/Upgrade` (llhttp stops after that message; so do we)
//!   and `Data after Connection: close` (the message before is accepted and the connection
//!   closes; we check that our head says `keep_alive() == false`). Otherwise the spans give
//!   method, target, version, fields, body and trailers of each message, compared exactly
//!   (values with trailing OWS trimmed); a message without `message complete` must be
//!   incomplete for us too.
//! - Class rules (applied to every case, documented here, not per case):
//!   1. HTTP/1.1 without Host: llhttp accepts, we answer 400 (RFC 9112 §3.2 MUST). The case is
//!      then run again with `Host: corpus.invalid` inserted after each request line, and
//!      that run must match llhttp's fields exactly (plus the inserted Host).
//!   2. Field names with `_` are dropped by our default policy (nginx/gunicorn default, see
//!      `UnderscorePolicy`), so they are removed from llhttp's expected fields.
//! - Divergences: [`DIVERGENCES`] lists every case where we knowingly differ, with our
//!   outcome and the reason; the test fails if such a case stops differing, or if any other
//!   case differs. The test fails if the corpus directory is missing.

mod support;

use std::path::PathBuf;

use bytes::BytesMut;
use http_front::body::{BodyDecoder, BodyEvent};
use http_front::{BodyConfig, HeadConfig, HeadParser};

/// Our outcome for a case where we differ from llhttp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ours {
    /// We refuse with this status where llhttp accepts.
    Reject(u16),
    /// We accept (the whole input, or up to where we stop) where llhttp rejects.
    Accept,
}

/// `(file, case title, our outcome, why, with the RFC section)`.
const DIVERGENCES: &[(&str, &str, Ours, &str)] = &[
    // ----- sample.md -----
    (
        "sample.md",
        "No HTTP version",
        Ours::Reject(400),
        "HTTP/0.9 request lines are not supported: RFC 9112 §3 requires `method SP target SP \
         HTTP-version`",
    ),
    // ----- method.md -----
    (
        "method.md",
        "CONNECT request",
        Ours::Reject(501),
        "CONNECT is refused unless HeadConfig::allow_connect (we do not tunnel; RFC 9110 §9.3.6 \
         makes CONNECT optional, 501 per RFC 9110 §15.6.2)",
    ),
    (
        "method.md",
        "CONNECT request with CAPS",
        Ours::Reject(501),
        "CONNECT refused by default, as above (RFC 9110 §9.3.6)",
    ),
    (
        "method.md",
        "CONNECT with body",
        Ours::Reject(501),
        "CONNECT refused by default, as above (RFC 9110 §9.3.6)",
    ),
    (
        "method.md",
        "M-SEARCH request",
        Ours::Reject(400),
        "asterisk-form is only valid with OPTIONS (RFC 9112 §3.2.4)",
    ),
    (
        "method.md",
        "PRI request HTTP2",
        Ours::Reject(400),
        "asterisk-form is only valid with OPTIONS (RFC 9112 §3.2.4); HTTP/2 prior knowledge is \
         not spoken",
    ),
    // ----- uri.md -----
    (
        "uri.md",
        "Fragment in URI",
        Ours::Reject(400),
        "a fragment is not part of origin-form (RFC 9112 §3.2.1: absolute-path [ \"?\" query ])",
    ),
    (
        "uri.md",
        "`host:port` and basic auth",
        Ours::Reject(400),
        "userinfo in an http(s) target is an error (RFC 9110 §4.2.4)",
    ),
    (
        "uri.md",
        "Underscore in hostname",
        Ours::Reject(501),
        "CONNECT refused by default (RFC 9110 §9.3.6)",
    ),
    // ----- transfer-encoding.md -----
    (
        "transfer-encoding.md",
        "No extension after semicolon",
        Ours::Accept,
        "chunk extensions are not interpreted (RFC 9112 §7.1.1: a recipient MUST ignore \
         unrecognized extensions); uwsgi_proto's decoder only refuses CTLs there",
    ),
    (
        "transfer-encoding.md",
        "Unbalanced chunk extensions quoting",
        Ours::Accept,
        "chunk extensions are not interpreted (RFC 9112 §7.1.1), so an unbalanced quote is \
         not detected; no CTL, CR or LF is involved",
    ),
    (
        "transfer-encoding.md",
        "POST with `chunked` as last transfer-encoding",
        Ours::Reject(400),
        "the target has a fragment (RFC 9112 §3.2.1); without it we would answer 501 for the \
         unknown `deflate` coding (RFC 9112 §6.1)",
    ),
    (
        "transfer-encoding.md",
        "POST with `chunked` as last transfer-encoding (multiple headers)",
        Ours::Reject(400),
        "fragment in the target (RFC 9112 §3.2.1); `deflate` would be 501 (RFC 9112 §6.1)",
    ),
    (
        "invalid.md",
        "HTTP protocol and ANNOUNCE method",
        Ours::Accept,
        "any token is a method (RFC 9110 §9.1, methods are extensible); deciding which \
         methods exist is the application's job",
    ),
    // ----- content-length.md -----
    (
        "content-length.md",
        "Error on `Content-Length` overflow",
        Ours::Accept,
        "the corpus input stops before the empty line ending the head, and fields are judged \
         once the head is complete; with the empty line it is refused with 400 (tests/head.rs \
         r05_cl_overflow, RFC 9112 §6.3 item 5)",
    ),
    (
        "content-length.md",
        "Error on duplicate `Content-Length`",
        Ours::Accept,
        "head incomplete in the corpus input, as above; complete, it is refused with 400 \
         (tests/head.rs r05_cl_differing, RFC 9112 §6.3 item 5)",
    ),
    (
        "content-length.md",
        "Content-Length reset when no body is received",
        Ours::Accept,
        "llhttp's runner is told to skip the body (`skipBody`, a response-side option); a \
         request with Content-Length 123 has a 123-byte body (RFC 9112 §6.3 item 5), so the \
         next bytes are body and the message is incomplete",
    ),
];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Message {
    method: Vec<u8>,
    url: Vec<u8>,
    version: Vec<u8>,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
    head_complete: bool,
    complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// All input consumed without error (last message may be incomplete).
    Ok,
    /// Rejected with a reason.
    Reject(String),
    /// llhttp paused for CONNECT/Upgrade/PRI after the last message.
    Pause,
    /// The last message closed the connection and data followed.
    Closed,
}

#[derive(Debug)]
struct Case {
    file: String,
    title: String,
    input: Vec<u8>,
    messages: Vec<Message>,
    end: End,
    /// Offsets (in `input`) right after each message's version, for the Host class rule.
    version_ends: Vec<usize>,
    /// Whether class rule 1 already inserted Host lines.
    host_inserted: bool,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/llhttp/request")
}

/// The README's byte conversion.
fn http_bytes(block: &str) -> Vec<u8> {
    let s = block.strip_suffix('\n').unwrap_or(block);
    let s = s.replace("\\\n", "");
    let s = s.replace('\n', "\r\n");
    let s = s
        .replace("\\r", "\r")
        .replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\f", "\x0c");
    let s = replace_escapes(&s, 'x');
    let s = replace_escapes(&s, 'o');
    s.into_bytes()
}

/// Replaces `\xHH` (`kind == 'x'`) or `\NNN` octal (`kind == 'o'`) with the character of that
/// code point.
fn replace_escapes(s: &str, kind: char) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            if kind == 'x'
                && chars.get(i + 1) == Some(&'x')
                && chars.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
                && chars.get(i + 3).is_some_and(|c| c.is_ascii_hexdigit())
            {
                let hex: String = chars[i + 2..i + 4].iter().collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).unwrap()));
                i += 4;
                continue;
            }
            if kind == 'o' {
                let digits: String = chars[i + 1..]
                    .iter()
                    .take(3)
                    .take_while(|c| ('0'..='7').contains(c))
                    .collect();
                if !digits.is_empty() {
                    let code = u32::from_str_radix(&digits, 8).unwrap();
                    out.push(char::from_u32(code).unwrap());
                    i += 1 + digits.len();
                    continue;
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn field_num(line: &str, key: &str) -> Option<usize> {
    let at = line.find(key)? + key.len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Reads llhttp's expectations from a `log` block, slicing span bytes out of the input.
fn expectations(input: &[u8], log: &[&str]) -> (Vec<Message>, End, Vec<usize>) {
    let mut messages: Vec<Message> = Vec::new();
    let mut version_ends = Vec::new();
    let mut end = End::Ok;
    let mut in_trailers = false;
    let mut last_was_value = true;
    for line in log {
        let off = field_num(line, "off=").expect("every log line has off=");
        if line.contains(" message begin") {
            messages.push(Message::default());
            in_trailers = false;
            last_was_value = true;
            continue;
        }
        if line.contains(" error code=") {
            let reason = line.split("reason=").nth(1).unwrap_or("").trim_matches('"');
            end = if reason.starts_with("Pause on") {
                End::Pause
            } else if reason.starts_with("Data after `Connection: close`") {
                End::Closed
            } else {
                End::Reject(reason.to_owned())
            };
            break;
        }
        let Some(msg) = messages.last_mut() else {
            continue;
        };
        if line.contains(" version complete") {
            version_ends.push(off);
        } else if line.contains(" headers complete") {
            msg.head_complete = true;
            in_trailers = true;
            last_was_value = true;
        } else if line.contains(" message complete") {
            msg.complete = true;
        } else if let Some(kind_at) = line.find(" span[") {
            let len = field_num(line, " len=").unwrap();
            let bytes = &input[off..off + len];
            let kind = &line[kind_at + 6..line[kind_at..].find(']').unwrap() + kind_at];
            let list = if in_trailers {
                &mut msg.trailers
            } else {
                &mut msg.fields
            };
            match kind {
                "method" => msg.method.extend_from_slice(bytes),
                "url" => msg.url.extend_from_slice(bytes),
                "version" => msg.version.extend_from_slice(bytes),
                "header_field" => {
                    if last_was_value {
                        list.push((Vec::new(), Vec::new()));
                    }
                    list.last_mut().unwrap().0.extend_from_slice(bytes);
                    last_was_value = false;
                }
                "header_value" => {
                    list.last_mut().unwrap().1.extend_from_slice(bytes);
                    last_was_value = true;
                }
                "body" => msg.body.extend_from_slice(bytes),
                _ => {}
            }
        }
    }
    for m in &mut messages {
        for (_, v) in m.fields.iter_mut().chain(m.trailers.iter_mut()) {
            while matches!(v.last(), Some(b' ' | b'\t')) {
                v.pop();
            }
        }
        // Class rule 2: names with `_` are dropped by our default policy.
        m.fields.retain(|(n, _)| !n.contains(&b'_'));
    }
    (messages, end, version_ends)
}

fn load_cases() -> Vec<Case> {
    let dir = corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("llhttp corpus missing at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus looks incomplete: {files:?}");
    let mut cases = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file == "pausing.md" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut title = String::new();
        let mut meta = String::new();
        let mut lines = text.lines();
        let mut http: Option<String> = None;
        while let Some(line) = lines.next() {
            if line.starts_with('#') {
                title = line.trim_start_matches('#').trim().to_owned();
            } else if line.contains("<!-- meta=") {
                meta = line.to_owned();
            } else if line.starts_with("```http") {
                let mut block = String::new();
                for l in lines.by_ref() {
                    if l.starts_with("```") {
                        break;
                    }
                    block.push_str(l);
                    block.push('\n');
                }
                http = Some(block);
            } else if line.starts_with("```log") {
                let log: Vec<&str> = lines
                    .by_ref()
                    .take_while(|l| !l.starts_with("```"))
                    .collect();
                let block = http.take().expect("log without http block");
                let kind = meta
                    .split("\"type\"")
                    .nth(1)
                    .and_then(|s| s.split('"').nth(1))
                    .unwrap_or("")
                    .to_owned();
                if kind != "request" {
                    continue;
                }
                let input = http_bytes(&block);
                let first_line = input.split(|&b| b == b'\r').next().unwrap_or(&[]);
                let proto = first_line.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
                if proto.starts_with(b"RTSP/") || proto.starts_with(b"ICE/") {
                    continue;
                }
                let (messages, end, version_ends) = expectations(&input, &log);
                cases.push(Case {
                    file: file.clone(),
                    title: title.clone(),
                    input,
                    messages,
                    end,
                    version_ends,
                    host_inserted: false,
                });
            }
        }
    }
    cases
}

/// What our parser makes of the input.
#[derive(Debug)]
struct Run {
    messages: Vec<Message>,
    /// `Some(status, message)` if refused.
    error: Option<(u16, String)>,
    /// Whether we stopped because a message closes the connection.
    closed: bool,
}

fn run_ours(input: &[u8], max_messages: usize) -> Run {
    let mut parser = HeadParser::new(HeadConfig::default());
    let body_config = BodyConfig::default();
    let mut buf = BytesMut::from(input);
    let mut run = Run {
        messages: Vec::new(),
        error: None,
        closed: false,
    };
    while run.messages.len() < max_messages && !buf.is_empty() {
        let head = match parser.parse(&mut buf) {
            Ok(Some(head)) => head,
            Ok(None) => {
                // An incomplete head is a message llhttp has begun; record it unless only
                // empty lines were seen.
                if parser.is_mid_head() {
                    run.messages.push(Message::default());
                }
                break;
            }
            Err(e) => {
                run.error = Some((e.status().unwrap_or(0), e.to_string()));
                break;
            }
        };
        let mut msg = Message {
            method: head.method().as_bytes().to_vec(),
            url: head.target().as_bytes().to_vec(),
            version: head.version().as_str().as_bytes()[5..].to_vec(),
            fields: head
                .fields()
                .map(|f| (f.name().as_bytes().to_vec(), f.value().to_vec()))
                .collect(),
            head_complete: true,
            ..Message::default()
        };
        let mut decoder = match BodyDecoder::new(head.body_length(), &body_config) {
            Ok(d) => d,
            Err(e) => {
                run.error = Some((e.status().unwrap_or(0), e.to_string()));
                break;
            }
        };
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(BodyEvent::Data(d))) => msg.body.extend_from_slice(&d),
                Ok(Some(BodyEvent::End(t))) => {
                    msg.trailers = t
                        .fields()
                        .map(|f| (f.name().as_bytes().to_vec(), f.value().to_vec()))
                        .collect();
                    msg.complete = true;
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    run.error = Some((e.status().unwrap_or(0), e.to_string()));
                    break;
                }
            }
        }
        run.messages.push(msg);
        if run.error.is_some() || !run.messages.last().unwrap().complete {
            break;
        }
        if !head.keep_alive() {
            run.closed = true;
            break;
        }
    }
    run
}

/// Compares our messages with llhttp's (heads always; bodies and trailers when both got
/// there). Returns a description of the first difference.
fn compare(want: &[Message], got: &[Message]) -> Result<(), String> {
    if want.len() != got.len() {
        return Err(format!(
            "{} messages expected, {} parsed",
            want.len(),
            got.len()
        ));
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if !w.head_complete && !g.head_complete && !w.complete && !g.complete {
            continue; // an incomplete head on both sides
        }
        let same = w.method == g.method
            && w.url == g.url
            && w.version == g.version
            && w.fields == g.fields
            && w.body == g.body
            && w.trailers == g.trailers
            && w.complete == g.complete;
        if !same {
            return Err(format!("message {i}: expected {w:?}\n   got {g:?}"));
        }
    }
    Ok(())
}

/// Checks one case; `Err` describes how we differ from llhttp.
fn check(case: &Case) -> Result<(), String> {
    let limit = match case.end {
        End::Pause => case.messages.len(),
        _ => usize::MAX,
    };
    let ours = run_ours(&case.input, limit);
    if let Some((400, msg)) = &ours.error {
        if msg.contains("without Host") && !case.host_inserted {
            return check(&with_host(case)).map_err(|e| format!("with Host inserted: {e}"));
        }
    }
    match (&case.end, &ours.error) {
        (End::Reject(reason), Some(_)) => {
            // Both refuse; messages completed before the refusal must agree.
            let done = case.messages.iter().filter(|m| m.complete).count();
            let got: Vec<_> = ours
                .messages
                .iter()
                .filter(|m| m.complete)
                .cloned()
                .collect();
            compare(
                &case.messages[..done.min(case.messages.len())],
                &got[..done.min(got.len())],
            )
            .map_err(|e| format!("both refuse ({reason}) but earlier messages differ: {e}"))
        }
        (End::Reject(reason), None) => Err(format!("llhttp refuses ({reason}), we accept")),
        (_, Some((status, msg))) => Err(format!("we refuse with {status} ({msg}), llhttp accepts")),
        (End::Closed, None) if !ours.closed => {
            Err("llhttp closes after the message, we would keep reading".to_owned())
        }
        (_, None) => compare(&case.messages, &ours.messages),
    }
}

/// Our outcome, with class rule 1 applied.
fn outcome(case: &Case) -> Ours {
    let ours = run_ours(&case.input, usize::MAX);
    match ours.error {
        Some((400, msg)) if msg.contains("without Host") && !case.host_inserted => {
            outcome(&with_host(case))
        }
        Some((status, _)) => Ours::Reject(status),
        None => Ours::Accept,
    }
}

/// Class rule 1: the case with `Host: corpus.invalid` after each request line.
fn with_host(case: &Case) -> Case {
    const HOST: &[u8] = b"Host: corpus.invalid\r\n";
    let mut input = Vec::with_capacity(case.input.len() + HOST.len() * 4);
    let mut from = 0;
    for &at in &case.version_ends {
        let line_end = at + 2; // after the CRLF of the request line
        if line_end > case.input.len() {
            break;
        }
        input.extend_from_slice(&case.input[from..line_end]);
        input.extend_from_slice(HOST);
        from = line_end;
    }
    input.extend_from_slice(&case.input[from..]);
    let mut want = case.messages.clone();
    for m in want.iter_mut().take(case.version_ends.len()) {
        m.fields
            .insert(0, (b"Host".to_vec(), b"corpus.invalid".to_vec()));
    }
    Case {
        file: case.file.clone(),
        title: case.title.clone(),
        input,
        messages: want,
        end: case.end.clone(),
        version_ends: Vec::new(),
        host_inserted: true,
    }
}

#[test]
fn llhttp_request_corpus() {
    let cases = load_cases();
    assert!(cases.len() >= 100, "only {} cases loaded", cases.len());
    let mut failures = Vec::new();
    let mut used = vec![false; DIVERGENCES.len()];
    let mut diverging = 0;
    for case in &cases {
        let result = check(case);
        let divergence = DIVERGENCES
            .iter()
            .position(|(f, t, ..)| *f == case.file && *t == case.title);
        match (divergence, result) {
            (None, Ok(())) => {}
            (None, Err(e)) => failures.push(format!("{} / {}: {e}", case.file, case.title)),
            (Some(i), Err(_)) => {
                used[i] = true;
                diverging += 1;
                // The table names our exact outcome.
                let got = outcome(case);
                if got != DIVERGENCES[i].2 {
                    failures.push(format!(
                        "{} / {}: divergence table says {:?}, we now give {got:?}",
                        case.file, case.title, DIVERGENCES[i].2
                    ));
                }
            }
            (Some(_), Ok(())) => failures.push(format!(
                "{} / {}: listed as a divergence but now agrees with llhttp",
                case.file, case.title
            )),
        }
    }
    for (i, used) in used.iter().enumerate() {
        if !used {
            failures.push(format!("unused divergence entry: {:?}", DIVERGENCES[i].1));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from llhttp:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!(
        "llhttp corpus: {} cases, {} listed divergences",
        cases.len(),
        diverging
    );
}

#[test]
fn byte_conversion_follows_the_readme() {
    assert_eq!(http_bytes("A\\r\\nB\nC\n"), b"A\r\nB\r\nC");
    assert_eq!(http_bytes("a\\\nb\n"), b"ab");
    assert_eq!(http_bytes("\\x41\\101\\t"), b"AA\t");
    // Escaped code points above 0x7f are UTF-8 encoded, as llhttp's runner does.
    assert_eq!(http_bytes("\\xff"), "\u{ff}".as_bytes());
}

//! The strict request policy: one pass over the fields, then the RFC 9112 rules in a fixed
//! order (target, Host, framing, Expect), so a request with several faults always gets the
//! same status.

use super::target::{self, TargetParts};
use super::{Meta, Span, Version};
use crate::config::{HeadConfig, UnderscorePolicy};
use crate::error::Fault;

/// What the policy derived from a head, as spans of the head buffer ([`Span::NONE`] for an
/// absent part).
pub(super) struct Semantics {
    pub(super) path: Span,
    pub(super) query: Span,
    pub(super) authority: Span,
    pub(super) host_field: Span,
    /// In bytes; 0 without a body or when chunked.
    pub(super) content_length: u64,
    /// All the [`Meta`] flags.
    pub(super) flags: u32,
}

/// Applies the checklist to a head httparse accepted. `head` is exactly the head's bytes:
/// field slices turn into offsets from its start.
#[inline]
pub(super) fn analyze(
    req: &httparse::Request<'_, '_>,
    head: &[u8],
    version: Version,
    target_span: Span,
    config: &HeadConfig,
) -> Result<Semantics, Fault> {
    let base = head.as_ptr() as usize;
    // Every line must end in CRLF unless bare LF is allowed (RFC 9112 §2.2). httparse
    // already refuses a CR that is not followed by LF, so a bare LF can only sit right
    // before a field name or at the end of the head: checking those spots covers every line.
    let crlf = !config.allow_bare_lf;
    if crlf && !head.ends_with(b"\r\n\r\n") {
        return Err(Fault::LineEnding);
    }
    let method = req.method.unwrap_or_default();
    let target_bytes = req.path.unwrap_or_default().as_bytes();
    let TargetParts {
        form,
        path,
        query,
        authority,
    } = target::parse_target(
        method,
        target_bytes,
        target_span.start(),
        config.allow_connect,
    )?;

    let mut host_field = Span::NONE;
    let mut host_value: &[u8] = b"";
    let mut host_count = 0u32;
    let mut content_length: Option<&[u8]> = None;
    let mut cl_count = 0u32;
    let mut te = TransferCodings::default();
    let mut conn = ConnectionOptions::default();
    let mut upgrade_field = false;
    let mut expect = Expectation::Absent;
    // Names with `_` only change the outcome here under `Reject`: no name this loop looks
    // for has a `_`, and under `Drop` the fields are left out when they are iterated
    // (`Meta::SKIP_UNDERSCORES`). So `Drop` scans only to log what it drops.
    let scan_underscores = match config.underscores {
        UnderscorePolicy::Reject => true,
        UnderscorePolicy::Drop => tracing::enabled!(tracing::Level::DEBUG),
        UnderscorePolicy::Keep => false,
    };

    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let start = name.as_ptr() as usize - base;
        if crlf && (start < 2 || &head[start - 2..start] != b"\r\n") {
            return Err(Fault::LineEnding);
        }
        if scan_underscores && has_underscore(name) {
            match config.underscores {
                UnderscorePolicy::Drop => {
                    tracing::debug!(field = h.name, "dropped request field with '_' in its name");
                    continue;
                }
                UnderscorePolicy::Reject => return Err(Fault::Underscore),
                UnderscorePolicy::Keep => {}
            }
        }
        // Dispatch on (length, lower-cased first byte): a short chain of compares that are
        // almost never taken predicts well (a jump table on the length alone mispredicted on
        // every field in profiles).
        const fn key(name: &[u8]) -> u32 {
            let first = match name {
                [first, ..] => *first | 0x20,
                [] => 0,
            };
            ((name.len() as u32) << 8) | first as u32
        }
        const HOST: u32 = key(b"host");
        const EXPECT: u32 = key(b"expect");
        const UPGRADE: u32 = key(b"upgrade");
        const CONNECTION: u32 = key(b"connection");
        const CONTENT_LENGTH: u32 = key(b"content-length");
        const TRANSFER_ENCODING: u32 = key(b"transfer-encoding");
        match key(name) {
            HOST if eq_lower(name, b"host") => {
                host_count += 1;
                host_field = Span::new(h.value.as_ptr() as usize - base, h.value.len());
                host_value = h.value;
            }
            EXPECT if eq_lower(name, b"expect") => expect.feed(h.value),
            UPGRADE if eq_lower(name, b"upgrade") => upgrade_field = true,
            CONNECTION if eq_lower(name, b"connection") => conn.feed(h.value),
            CONTENT_LENGTH if eq_lower(name, b"content-length") => {
                cl_count += 1;
                content_length = Some(h.value);
            }
            TRANSFER_ENCODING if eq_lower(name, b"transfer-encoding") => te.feed(h.value),
            _ => {}
        }
    }

    // Host (RFC 9112 §3.2).
    match host_count {
        0 if version == Version::Http11 => return Err(Fault::MissingHost),
        0 | 1 => {}
        _ => return Err(Fault::DuplicateHost),
    }
    if host_count == 1 && !target::valid_host(host_value) {
        return Err(Fault::InvalidHost);
    }

    // Framing (RFC 9112 §6.1, §6.3).
    let mut flags = (form as u32) << Meta::FORM_SHIFT;
    if version == Version::Http10 {
        flags |= Meta::HTTP10;
    }
    if config.underscores == UnderscorePolicy::Drop {
        flags |= Meta::SKIP_UNDERSCORES;
    }
    let content_length = if te.present {
        if version == Version::Http10 {
            return Err(Fault::TransferEncodingHttp10);
        }
        if cl_count > 0 {
            return Err(Fault::ContentLengthWithTransferEncoding);
        }
        te.finish()?;
        flags |= Meta::CHUNKED;
        0
    } else {
        match (cl_count, content_length) {
            (0, _) | (_, None) => 0,
            (1, Some(value)) => parse_content_length(value).ok_or(Fault::ContentLength)?,
            _ => return Err(Fault::ContentLength),
        }
    };

    // Expect (RFC 9110 §10.1.1): ignored on HTTP/1.0.
    match (version, expect) {
        (Version::Http10, _) | (_, Expectation::Absent) => {}
        (Version::Http11, Expectation::Continue) => flags |= Meta::EXPECT_CONTINUE,
        (Version::Http11, Expectation::Other) => return Err(Fault::Expectation),
    }
    if conn.close {
        flags |= Meta::CLOSE;
    }
    if conn.keep_alive {
        flags |= Meta::KEEP_ALIVE_TOKEN;
    }
    if version == Version::Http11 && conn.upgrade && upgrade_field {
        flags |= Meta::UPGRADE;
    }

    Ok(Semantics {
        path,
        query,
        authority,
        host_field,
        content_length,
        flags,
    })
}

/// Whether `name` holds `_`, a word at a time (names are short; a byte loop showed up in
/// profiles). Short names are covered by two overlapping windows instead of a tail loop.
#[inline]
fn has_underscore(name: &[u8]) -> bool {
    let word_has = |word: u64| crate::swar::has_byte(word, b'_');
    let load8 = |at: usize| u64::from_le_bytes(name[at..at + 8].try_into().unwrap_or([0; 8]));
    // Zero-extended 4-byte windows: the zero padding is never `_`.
    let load4 = |at: usize| {
        u64::from(u32::from_le_bytes(
            name[at..at + 4].try_into().unwrap_or([0; 4]),
        ))
    };
    let n = name.len();
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if word_has(load8(at)) {
                return true;
            }
            at += 8;
        }
        // The last window overlaps the previous one.
        return word_has(load8(n - 8));
    }
    if n >= 4 {
        return word_has(load4(0) | load4(n - 4) << 32);
    }
    // At most 3 bytes.
    name.contains(&b'_')
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6): no sign, no list, no inner whitespace;
/// `None` on overflow.
pub(crate) fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// `tchar` (RFC 9110 §5.6.2) by byte value: a table, since every response field name and
/// every transfer coding is checked byte by byte.
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// `token = 1*tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| TCHAR[usize::from(b)])
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The list elements of a `#element` field value, trimmed, empty ones skipped (RFC 9110
/// §5.6.1).
fn list(value: &[u8]) -> List<'_> {
    List { rest: Some(value) }
}

/// Iterator of [`list`]: a plain split on `,` (the adapter chain cost ~190 instructions for
/// `Connection: keep-alive` in profiles).
struct List<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for List<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let rest = self.rest?;
            let element = match rest.iter().position(|&b| b == b',') {
                Some(comma) => {
                    self.rest = Some(&rest[comma + 1..]);
                    &rest[..comma]
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            let element = trim_ows(element);
            if !element.is_empty() {
                return Some(element);
            }
        }
    }
}

/// ASCII case-insensitive equality with `lower`, a lower-case constant: `a`-`z` in `lower`
/// match either case, every other byte only itself. Branch-free over the bytes, so a
/// constant `lower` compiles to a few word operations.
#[inline]
fn eq_lower<const N: usize>(s: &[u8], lower: &[u8; N]) -> bool {
    let Ok(s) = <&[u8; N]>::try_from(s) else {
        return false;
    };
    let mut diff = 0u8;
    let mut i = 0;
    while i < N {
        let fold = if lower[i].is_ascii_lowercase() {
            0x20
        } else {
            0
        };
        diff |= (s[i] | fold) ^ lower[i];
        i += 1;
    }
    diff == 0
}

/// Transfer-Encoding lines folded into one coding list (RFC 9112 §6.1, §7).
#[derive(Default)]
struct TransferCodings {
    present: bool,
    chunked_seen: bool,
    last_is_chunked: bool,
    unknown: bool,
    fault: Option<Fault>,
}

impl TransferCodings {
    fn feed(&mut self, value: &[u8]) {
        self.present = true;
        if self.fault.is_some() {
            return;
        }
        for element in list(value) {
            let (name, has_params) = match element.iter().position(|&b| b == b';') {
                Some(at) => (trim_ows(&element[..at]), true),
                None => (element, false),
            };
            if !is_token(name) {
                self.fault = Some(Fault::ChunkedNotLast);
                return;
            }
            if eq_lower(name, b"chunked") {
                // Parameters on chunked (§7.1) and chunked applied twice (§6.1) are errors.
                if has_params || self.chunked_seen {
                    self.fault = Some(Fault::ChunkedNotLast);
                    return;
                }
                self.chunked_seen = true;
                self.last_is_chunked = true;
            } else {
                if self.chunked_seen {
                    // A coding after chunked: the body length cannot be known (§6.3 item 4).
                    self.fault = Some(Fault::ChunkedNotLast);
                    return;
                }
                self.unknown = true;
                self.last_is_chunked = false;
            }
        }
    }

    /// chunked must be the final coding (MUST 400, §6.3 item 4) before the SHOULD-501 for
    /// codings we do not implement (§6.1) applies.
    fn finish(&self) -> Result<(), Fault> {
        if let Some(fault) = self.fault {
            return Err(fault);
        }
        if !self.last_is_chunked {
            return Err(Fault::ChunkedNotLast);
        }
        if self.unknown {
            return Err(Fault::UnknownTransferCoding);
        }
        Ok(())
    }
}

/// Connection options of all `Connection` lines (RFC 9112 §9.3, §9.6).
#[derive(Default)]
struct ConnectionOptions {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
}

impl ConnectionOptions {
    fn feed(&mut self, value: &[u8]) {
        // The usual value is one option: no list walk (httparse trims the value's OWS).
        if eq_lower(value, b"keep-alive") {
            self.keep_alive = true;
            return;
        }
        if eq_lower(value, b"close") {
            self.close = true;
            return;
        }
        for option in list(value) {
            if eq_lower(option, b"close") {
                self.close = true;
            } else if eq_lower(option, b"keep-alive") {
                self.keep_alive = true;
            } else if eq_lower(option, b"upgrade") {
                self.upgrade = true;
            }
        }
    }
}

/// Members of all `Expect` lines (RFC 9110 §10.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expectation {
    Absent,
    Continue,
    Other,
}

impl Expectation {
    fn feed(&mut self, value: &[u8]) {
        for member in list(value) {
            if eq_lower(member, b"100-continue") {
                if *self == Expectation::Absent {
                    *self = Expectation::Continue;
                }
            } else {
                *self = Expectation::Other;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscore_scan() {
        for (name, want) in [
            (&b""[..], false),
            (b"_", true),
            (b"X-Forwarded-For", false),
            (b"X_Forwarded-For", true),
            (b"X-Forwarded_For", true),
            (b"abcdefgh_", true),
            (b"abcdefghi", false),
            (b"\x5e\x60abcdefg", false),
        ] {
            assert_eq!(
                has_underscore(name),
                want,
                "{:?}",
                name.escape_ascii().to_string()
            );
        }
        // Every length and every position, against the naive scan (the windows overlap).
        for len in 0..=40 {
            let mut name = vec![b'a'; len];
            assert!(!has_underscore(&name), "len {len}");
            for at in 0..len {
                name[at] = b'_';
                assert!(has_underscore(&name), "len {len}, at {at}");
                name[at] = b'^';
                assert!(!has_underscore(&name), "len {len}, at {at}");
                name[at] = b'a';
            }
        }
    }

    #[test]
    fn case_insensitive_names() {
        assert!(eq_lower(b"Keep-Alive", b"keep-alive"));
        assert!(eq_lower(b"CLOSE", b"close"));
        assert!(eq_lower(b"100-Continue", b"100-continue"));
        assert!(!eq_lower(b"close ", b"close"));
        assert!(!eq_lower(b"clos", b"close"));
        assert!(!eq_lower(b"closf", b"close"));
        // Only letters fold: `-` (0x2d) must not match CR (0x0d), nor `\x0d`-like bytes.
        assert!(!eq_lower(b"keep\ralive", b"keep-alive"));
        assert!(!eq_lower(b"\x03lose", b"close"));
        for b in 0..=255u8 {
            let want = b.eq_ignore_ascii_case(&b'h');
            assert_eq!(eq_lower(&[b, b'o', b's', b't'], b"host"), want, "{b:#x}");
        }
    }

    #[test]
    fn lists() {
        fn all(v: &[u8]) -> Vec<&[u8]> {
            list(v).collect()
        }
        assert_eq!(all(b""), Vec::<&[u8]>::new());
        assert_eq!(all(b" , ,"), Vec::<&[u8]>::new());
        assert_eq!(all(b"a"), vec![&b"a"[..]]);
        assert_eq!(all(b" a ,b,\tc\t, "), vec![&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn content_length_syntax() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"003"), Some(3));
        assert_eq!(
            parse_content_length(b"18446744073709551615"),
            Some(u64::MAX)
        );
        for bad in [
            &b""[..],
            b"+1",
            b"-1",
            b"1,1",
            b"1 1",
            b"0x1",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_content_length(bad), None, "{:?}", bad.escape_ascii());
        }
    }

    #[test]
    fn coding_lists() {
        let run = |lines: &[&[u8]]| {
            let mut te = TransferCodings::default();
            for l in lines {
                te.feed(l);
            }
            te.finish()
        };
        assert_eq!(run(&[b"chunked"]), Ok(()));
        assert_eq!(run(&[b"CHUNKED"]), Ok(()));
        assert_eq!(run(&[b" , chunked ,"]), Ok(()));
        assert_eq!(run(&[b"gzip, chunked"]), Err(Fault::UnknownTransferCoding));
        assert_eq!(
            run(&[b"gzip", b"chunked"]),
            Err(Fault::UnknownTransferCoding)
        );
        assert_eq!(run(&[b"chunked, gzip"]), Err(Fault::ChunkedNotLast));
        assert_eq!(run(&[b"chunked", b"chunked"]), Err(Fault::ChunkedNotLast));
        assert_eq!(run(&[b"chunked;a=b"]), Err(Fault::ChunkedNotLast));
        assert_eq!(run(&[b"gzip"]), Err(Fault::ChunkedNotLast));
        assert_eq!(run(&[b""]), Err(Fault::ChunkedNotLast));
        assert_eq!(run(&[b"chun ked"]), Err(Fault::ChunkedNotLast));
    }
}

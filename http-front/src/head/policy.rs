//! The strict request policy: one pass over the fields, then the RFC 9112 rules in a fixed
//! order (target, Host, framing, Expect), so a request with several faults always gets the
//! same status.

use super::target::{self, TargetParts};
use super::{BodyLength, Span, TargetForm, Version};
use crate::config::{HeadConfig, UnderscorePolicy};
use crate::error::Fault;

/// What the policy derived from a head, as spans of the head buffer.
pub(super) struct Semantics {
    pub(super) form: TargetForm,
    pub(super) path: Span,
    pub(super) query: Option<Span>,
    pub(super) authority: Option<Span>,
    pub(super) host_field: Option<Span>,
    pub(super) body: BodyLength,
    pub(super) close: bool,
    pub(super) keep_alive_token: bool,
    pub(super) upgrade: bool,
    pub(super) expect_continue: bool,
}

/// Applies the checklist to a head httparse accepted. `base` is the address of the buffer's
/// first byte, so field slices turn into offsets.
pub(super) fn analyze(
    req: &httparse::Request<'_, '_>,
    version: Version,
    target_span: Span,
    base: usize,
    config: &HeadConfig,
) -> Result<Semantics, Fault> {
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
        target_span.start as usize,
        config.allow_connect,
    )?;

    let mut host_field = None;
    let mut host_value: &[u8] = b"";
    let mut host_count = 0u32;
    let mut content_length: Option<&[u8]> = None;
    let mut cl_count = 0u32;
    let mut te = TransferCodings::default();
    let mut conn = ConnectionOptions::default();
    let mut upgrade_field = false;
    let mut expect = Expectation::Absent;

    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if has_underscore(name) {
            match config.underscores {
                UnderscorePolicy::Drop => {
                    tracing::debug!(field = h.name, "dropped request field with '_' in its name");
                    continue;
                }
                UnderscorePolicy::Reject => return Err(Fault::Underscore),
                UnderscorePolicy::Keep => {}
            }
        }
        let value_span = Span::new(h.value.as_ptr() as usize - base, h.value.len());
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
            HOST if name.eq_ignore_ascii_case(b"host") => {
                host_count += 1;
                host_field = Some(value_span);
                host_value = h.value;
            }
            EXPECT if name.eq_ignore_ascii_case(b"expect") => expect.feed(h.value),
            UPGRADE if name.eq_ignore_ascii_case(b"upgrade") => upgrade_field = true,
            CONNECTION if name.eq_ignore_ascii_case(b"connection") => conn.feed(h.value),
            CONTENT_LENGTH if name.eq_ignore_ascii_case(b"content-length") => {
                cl_count += 1;
                content_length = Some(h.value);
            }
            TRANSFER_ENCODING if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                te.feed(h.value)
            }
            _ => {}
        }
    }

    // Host (RFC 9112 §3.2).
    match host_count {
        0 if version == Version::Http11 => return Err(Fault::MissingHost),
        0 | 1 => {}
        _ => return Err(Fault::DuplicateHost),
    }
    if host_field.is_some() && !target::valid_host(host_value) {
        return Err(Fault::InvalidHost);
    }

    // Framing (RFC 9112 §6.1, §6.3).
    let body = if te.present {
        if version == Version::Http10 {
            return Err(Fault::TransferEncodingHttp10);
        }
        if cl_count > 0 {
            return Err(Fault::ContentLengthWithTransferEncoding);
        }
        te.finish()?
    } else {
        match (cl_count, content_length) {
            (0, _) | (_, None) => BodyLength::Empty,
            (1, Some(value)) => match parse_content_length(value) {
                Some(0) => BodyLength::Empty,
                Some(n) => BodyLength::Length(n),
                None => return Err(Fault::ContentLength),
            },
            _ => return Err(Fault::ContentLength),
        }
    };

    // Expect (RFC 9110 §10.1.1): ignored on HTTP/1.0.
    let expect_continue = match (version, expect) {
        (Version::Http10, _) | (_, Expectation::Absent) => false,
        (Version::Http11, Expectation::Continue) => true,
        (Version::Http11, Expectation::Other) => return Err(Fault::Expectation),
    };

    Ok(Semantics {
        form,
        path,
        query,
        authority,
        host_field,
        body,
        close: conn.close,
        keep_alive_token: conn.keep_alive,
        upgrade: version == Version::Http11 && conn.upgrade && upgrade_field,
        expect_continue,
    })
}

/// Whether `name` holds `_`, eight bytes at a time (names are short; a byte loop showed up
/// in profiles).
fn has_underscore(name: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const PATTERN: u64 = LO * b'_' as u64;
    let mut chunks = name.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("invariant: chunks_exact(8)"));
        let x = word ^ PATTERN;
        // A zero byte in `x` is a `_` in `word`.
        if x.wrapping_sub(LO) & !x & HI != 0 {
            return true;
        }
    }
    chunks.remainder().contains(&b'_')
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

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
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
        )
}

/// `token = 1*tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
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
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
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
            if name.eq_ignore_ascii_case(b"chunked") {
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
    fn finish(&self) -> Result<BodyLength, Fault> {
        if let Some(fault) = self.fault {
            return Err(fault);
        }
        if !self.last_is_chunked {
            return Err(Fault::ChunkedNotLast);
        }
        if self.unknown {
            return Err(Fault::UnknownTransferCoding);
        }
        Ok(BodyLength::Chunked)
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
        for option in list(value) {
            if option.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if option.eq_ignore_ascii_case(b"upgrade") {
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
            if member.eq_ignore_ascii_case(b"100-continue") {
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
        assert_eq!(run(&[b"chunked"]), Ok(BodyLength::Chunked));
        assert_eq!(run(&[b"CHUNKED"]), Ok(BodyLength::Chunked));
        assert_eq!(run(&[b" , chunked ,"]), Ok(BodyLength::Chunked));
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

//! Request-target forms (RFC 9112 §3.2) and Host syntax (RFC 3986 §3.2.2).

use super::{Span, TargetForm};
use crate::error::Fault;

/// The target split into its parts, as spans of the head buffer.
pub(super) struct TargetParts {
    pub(super) form: TargetForm,
    pub(super) path: Span,
    /// [`Span::NONE`] without a `?`.
    pub(super) query: Span,
    /// [`Span::NONE`] for origin-form and asterisk-form.
    pub(super) authority: Span,
}

/// Classifies and checks the target against the method. `at` is the target's offset in the
/// head buffer.
///
/// - Only ASCII, no `#` (a fragment is not part of any request-target form, §3.2).
/// - CONNECT: authority-form `host:port` only, and only when allowed (else 501).
/// - `*`: only with OPTIONS (§3.2.4).
/// - `/...`: origin-form (§3.2.1).
/// - `http://` or `https://` with a non-empty host and no userinfo (RFC 9110 §4.2.1,
///   §4.2.4): absolute-form (§3.2.2).
/// - Anything else, or authority-form with another method: 400.
#[inline]
pub(super) fn parse_target(
    method: &str,
    target: &[u8],
    at: usize,
    allow_connect: bool,
) -> Result<TargetParts, Fault> {
    // origin-form first: nearly every request has it.
    if target.first() == Some(&b'/') && method != "CONNECT" {
        let (path, query) = path_and_query(at, target.len(), find_query(target)?);
        return Ok(TargetParts {
            form: TargetForm::Origin,
            path,
            query,
            authority: Span::NONE,
        });
    }
    if !target.is_ascii() || memchr::memchr(b'#', target).is_some() {
        return Err(Fault::Target);
    }
    if method == "CONNECT" {
        if !allow_connect {
            return Err(Fault::ConnectNotAllowed);
        }
        return match authority_form(target) {
            true => Ok(TargetParts {
                form: TargetForm::Authority,
                path: Span::new(at + target.len(), 0),
                query: Span::NONE,
                authority: Span::new(at, target.len()),
            }),
            false => Err(Fault::Target),
        };
    }
    if target == b"*" {
        return match method {
            "OPTIONS" => Ok(TargetParts {
                form: TargetForm::Asterisk,
                path: Span::new(at, 1),
                query: Span::NONE,
                authority: Span::NONE,
            }),
            _ => Err(Fault::Target),
        };
    }
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    let Some(colon) = target.iter().position(|&b| b == b':') else {
        return Err(Fault::Target);
    };
    let scheme = &target[..colon];
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https"))
        || !target[colon..].starts_with(b"://")
    {
        return Err(Fault::Target);
    }
    let auth_start = colon + 3;
    let auth_len = target[auth_start..]
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(target.len() - auth_start);
    let authority = &target[auth_start..auth_start + auth_len];
    // An empty host is invalid for http(s) URIs; userinfo is an error (RFC 9110 §4.2.4).
    if authority.contains(&b'@') || !valid_host(authority) || host_part(authority).is_empty() {
        return Err(Fault::Target);
    }
    let (path, query) = split_query(target, at, auth_start + auth_len);
    Ok(TargetParts {
        form: TargetForm::Absolute,
        path,
        query,
        authority: Span::new(at + auth_start, auth_len),
    })
}

/// The offset of the first `?` of an origin-form target, checking in the same pass that it
/// is ASCII without a `#` (httparse lets bytes >= 0x80 and `#` through).
///
/// Eight bytes at a time: a word of plain bytes (httparse already refused CTLs and SP) is
/// passed over after one combined test; a word that may hold a `#`, a first `?` or a non-ASCII
/// byte (the test can also flag a plain word after such a byte) is walked byte by byte, as
/// is the tail.
fn find_query(target: &[u8]) -> Result<Option<usize>, Fault> {
    use crate::swar::{HI, LO, splat};
    let mut query = None;
    let mut i = 0;
    // A target shorter than a word (`/` most often) goes straight to the byte walk.
    if target.len() < 8 {
        walk_target_bytes(target, 0, &mut query)?;
        return Ok(query);
    }
    while i < target.len() {
        if let Some(word) = target[i..].first_chunk::<8>() {
            let x = u64::from_le_bytes(*word);
            // For a byte below 0x80, `(b ^ c) - 1` sets the high bit only when `b == c`;
            // bytes >= 0x80 are flagged by `x` itself.
            let hash = (x ^ splat(b'#')).wrapping_sub(LO);
            let question = match query {
                None => (x ^ splat(b'?')).wrapping_sub(LO),
                Some(_) => 0,
            };
            if (hash | question | x) & HI == 0 {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(target.len());
        walk_target_bytes(&target[i..end], i, &mut query)?;
        i = end;
    }
    Ok(query)
}

/// [`find_query`]'s byte walk over `bytes`, which start at offset `at` of the target.
#[inline(always)]
fn walk_target_bytes(bytes: &[u8], at: usize, query: &mut Option<usize>) -> Result<(), Fault> {
    for (j, &b) in bytes.iter().enumerate() {
        match TARGET_CLASS[usize::from(b)] {
            PLAIN => {}
            QUESTION if query.is_none() => *query = Some(at + j),
            QUESTION => {}
            _ => return Err(Fault::Target),
        }
    }
    Ok(())
}

/// Byte classes of an origin-form target: plain, `?`, or refused (`#`, non-ASCII).
const PLAIN: u8 = 0;
const QUESTION: u8 = 1;
const REFUSED: u8 = 2;

static TARGET_CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0x80;
    while b < 256 {
        table[b] = REFUSED;
        b += 1;
    }
    table[b'#' as usize] = REFUSED;
    table[b'?' as usize] = QUESTION;
    table
};

/// Splits `target[from..]` at the first `?`.
fn split_query(target: &[u8], at: usize, from: usize) -> (Span, Span) {
    let rest = &target[from..];
    path_and_query(at + from, rest.len(), memchr::memchr(b'?', rest))
}

/// The path and query spans of `len` bytes at offset `at` whose first `?` is at `question`.
fn path_and_query(at: usize, len: usize, question: Option<usize>) -> (Span, Span) {
    match question {
        Some(q) => (Span::new(at, q), Span::new(at + q + 1, len - q - 1)),
        None => (Span::new(at, len), Span::NONE),
    }
}

/// `authority-form = uri-host ":" port` (RFC 9112 §3.2.3), with a non-empty host and port.
fn authority_form(target: &[u8]) -> bool {
    let host = host_part(target);
    let port = &target[host.len()..];
    !host.is_empty() && port.len() > 1 && valid_host(target)
}

/// The `uri-host` part of `host[:port]` (up to the port's colon).
fn host_part(authority: &[u8]) -> &[u8] {
    if authority.first() == Some(&b'[') {
        return match authority.iter().position(|&b| b == b']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.iter().position(|&b| b == b':') {
        Some(colon) => &authority[..colon],
        None => authority,
    }
}

/// `Host = uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2-3.2.3). An empty value is
/// valid (a client sends it when the target URI has no authority).
///
/// `uri-host` is an IP-literal (`[` hex, `:` and `.` `]`, or `[v...]`) or a reg-name
/// (unreserved, sub-delims, percent-encoded octets); the port is digits.
pub(crate) fn valid_host(value: &[u8]) -> bool {
    if let Some(b'[') = value.first() {
        return valid_ip_literal(value);
    }
    // Almost every byte is a plain reg-name byte: skip them 8 at a time with branch-free
    // table lookups, then walk the rest (`%`, `:`, anything else, or a short tail).
    let mut i = 0;
    while let Some(chunk) = value[i..].first_chunk::<8>() {
        let mut plain = true;
        for &b in chunk {
            plain &= HOST_CLASS[usize::from(b)] == REG;
        }
        if !plain {
            break;
        }
        i += 8;
    }
    // A plain tail: one last window, overlapping the chunk before it.
    if i < value.len()
        && i >= 8
        && value[value.len() - 8..]
            .iter()
            .all(|&b| HOST_CLASS[usize::from(b)] == REG)
    {
        return true;
    }
    while i < value.len() {
        match HOST_CLASS[usize::from(value[i])] {
            REG => i += 1,
            PCT => match value.get(i + 1..i + 3) {
                Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            },
            COLON => return valid_port(&value[i + 1..]),
            _ => return false,
        }
    }
    true
}

/// `IP-literal [ ":" port ]`: `[` hex, `:`, `.`, `-`, `~`, `%` (a zone id, RFC 6874) `]`.
fn valid_ip_literal(value: &[u8]) -> bool {
    let Some(end) = memchr::memchr(b']', value) else {
        return false;
    };
    let inner = &value[1..end];
    let port_ok = match &value[end + 1..] {
        [] => true,
        [b':', digits @ ..] => valid_port(digits),
        _ => false,
    };
    port_ok
        && !inner.is_empty()
        && inner
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'-' | b'~' | b'%'))
}

/// `port = *DIGIT` (RFC 3986 §3.2.3): empty is allowed.
fn valid_port(digits: &[u8]) -> bool {
    digits.iter().all(u8::is_ascii_digit)
}

/// Byte classes of `host [":" port]` outside an IP-literal.
const BAD: u8 = 0;
/// `unreserved / sub-delims` (RFC 3986 §2.2-2.3).
const REG: u8 = 1;
/// `%`, which must start a `pct-encoded` octet.
const PCT: u8 = 2;
/// `:`, which ends the host and starts the port.
const COLON: u8 = 3;

static HOST_CLASS: [u8; 256] = {
    let mut table = [BAD; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            ) {
            REG
        } else if c == b'%' {
            PCT
        } else if c == b':' {
            COLON
        } else {
            BAD
        };
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-wise scan agrees with a plain byte walk for every interesting byte at
    /// every position of targets up to 40 bytes, with and without an earlier `?`.
    #[test]
    fn query_scan_matches_the_byte_rule() {
        fn reference(t: &[u8]) -> Result<Option<usize>, Fault> {
            if t.iter().any(|&b| b == b'#' || b >= 0x80) {
                return Err(Fault::Target);
            }
            Ok(t.iter().position(|&b| b == b'?'))
        }
        let specials = [
            b'?', b'#', 0x80, 0xff, 0x7f, 0x22, 0x24, 0x3e, 0x40, b'/', b'a',
        ];
        for len in 1..=40 {
            let mut t = vec![b'a'; len];
            t[0] = b'/';
            assert_eq!(find_query(&t), reference(&t));
            for at in 1..len {
                for &b in &specials {
                    t[at] = b;
                    assert_eq!(find_query(&t), reference(&t), "len {len}, {b:#x} at {at}");
                    // A `?` earlier, then the byte: `?` again is plain, `#` still refused.
                    t[at / 2] = b'?';
                    assert_eq!(find_query(&t), reference(&t), "len {len}, ? then {b:#x}");
                    t[at / 2] = b'a';
                    t[0] = b'/';
                    t[at] = b'a';
                }
            }
        }
    }

    #[test]
    fn hosts() {
        for ok in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"example.com:",
            b"127.0.0.1",
            b"[::1]:80",
            b"[fe80::1%25eth0]",
            b"0.0.0.0=5000",
            b"xn--bcher-kva.example",
            b"a%20b",
        ] {
            assert!(valid_host(ok), "{:?}", ok.escape_ascii().to_string());
        }
        for bad in [
            &b"exa mple.com"[..],
            b"a/b",
            b"user@host",
            b"host:80:80",
            b"host:8a",
            b"[::1",
            b"[]",
            b"a%2",
            b"a%zz",
            b"h\"x",
        ] {
            assert!(!valid_host(bad), "{:?}", bad.escape_ascii().to_string());
        }
    }

    #[test]
    fn forms() {
        let form = |m: &str, t: &[u8]| parse_target(m, t, 0, true).map(|p| p.form);
        assert_eq!(form("GET", b"/a?b"), Ok(TargetForm::Origin));
        assert_eq!(form("OPTIONS", b"*"), Ok(TargetForm::Asterisk));
        assert_eq!(form("GET", b"*"), Err(Fault::Target));
        assert_eq!(form("GET", b"http://a/b"), Ok(TargetForm::Absolute));
        assert_eq!(form("GET", b"HTTPS://a:1?x"), Ok(TargetForm::Absolute));
        assert_eq!(form("GET", b"http:///b"), Err(Fault::Target));
        assert_eq!(form("GET", b"http://u:p@a/b"), Err(Fault::Target));
        assert_eq!(form("GET", b"ftp://a/b"), Err(Fault::Target));
        assert_eq!(form("GET", b"a:443"), Err(Fault::Target));
        assert_eq!(form("GET", b"abc"), Err(Fault::Target));
        assert_eq!(form("GET", b"/a#frag"), Err(Fault::Target));
        assert_eq!(form("CONNECT", b"a:443"), Ok(TargetForm::Authority));
        assert_eq!(form("CONNECT", b"a"), Err(Fault::Target));
        assert_eq!(form("CONNECT", b"a:"), Err(Fault::Target));
        assert_eq!(form("CONNECT", b"/a"), Err(Fault::Target));
        assert_eq!(
            parse_target("CONNECT", b"a:443", 0, false).map(|p| p.form),
            Err(Fault::ConnectNotAllowed)
        );
    }
}

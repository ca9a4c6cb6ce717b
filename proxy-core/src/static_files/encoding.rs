//! `Accept-Encoding` q-values and the choice of a precompressed sibling (RFC 9110 §12.5.3).

use super::{ContentCoding, trim};

/// The q-value (0..=1000, thousandths) that an `Accept-Encoding` value gives `coding`.
///
/// RFC 9110 §12.5.3: an explicit entry for the coding wins (`x-gzip` counts as `gzip`),
/// otherwise `*`, otherwise 0; for `identity`, a missing entry means 1000 unless `*` says
/// otherwise. Entries with a malformed q-value are ignored. A missing field (`None`) gives
/// identity 1000 and every other coding 0, as nginx's `gzip_static` does (RFC 9110 would
/// allow any coding; sending gzip to a client that did not ask for it breaks too many).
pub fn coding_quality(accept_encoding: Option<&[u8]>, coding: &str) -> u16 {
    let identity = coding.eq_ignore_ascii_case("identity");
    match listed_quality(accept_encoding, coding) {
        Some(q) => q,
        None if identity => 1000,
        None => 0,
    }
}

/// The q-value that an explicit entry or `*` gives `coding`; `None` when neither is there.
fn listed_quality(accept_encoding: Option<&[u8]>, coding: &str) -> Option<u16> {
    let value = accept_encoding?;
    let mut explicit = None;
    let mut star = None;
    for element in value.split(|&b| b == b',') {
        let mut parts = element.split(|&b| b == b';');
        let name = trim(parts.next().unwrap_or_default());
        if name.is_empty() {
            continue;
        }
        let mut q = Some(1000);
        for param in parts {
            let param = trim(param);
            if param.len() >= 2 && param[..2].eq_ignore_ascii_case(b"q=") {
                q = parse_qvalue(trim(&param[2..]));
            }
        }
        let Some(q) = q else { continue };
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if is(coding) || (coding.eq_ignore_ascii_case("gzip") && is("x-gzip")) {
            explicit = Some(explicit.map_or(q, |e: u16| e.max(q)));
        } else if name == b"*" {
            star = Some(q);
        }
    }
    explicit.or(star)
}

/// Picks the precompressed coding to send, from the `available` siblings (in preference
/// order for ties), or `None` to send the file as it is.
///
/// A coding is chosen when its q-value is above 0 and, if identity is listed (explicitly
/// or through `*`), not below identity's: `gzip;q=0.5, identity` keeps identity,
/// `gzip;q=0.5` alone picks gzip (the implicit identity does not outrank listed codings,
/// as with nginx's `gzip_static`), and `identity;q=0` makes any acceptable coding win. When identity is refused and nothing else is acceptable the file is still sent
/// as it is (RFC 9110 §12.5.3 says SHOULD).
pub fn choose_coding(
    accept_encoding: Option<&[u8]>,
    available: &[ContentCoding],
) -> Option<ContentCoding> {
    let identity = listed_quality(accept_encoding, "identity").unwrap_or(0);
    let mut best: Option<(ContentCoding, u16)> = None;
    for &coding in available {
        let q = coding_quality(accept_encoding, coding.as_str());
        if q == 0 || q < identity {
            continue;
        }
        if best.is_none_or(|(_, bq)| q > bq) {
            best = Some((coding, q));
        }
    }
    best.map(|(c, _)| c)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int[0] {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

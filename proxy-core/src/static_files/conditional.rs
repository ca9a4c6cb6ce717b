//! Validators, conditional requests, ranges and HTTP dates (RFC 9110 §8.8, §13, §14).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{ByteRange, trim};

/// Whether an `If-Match`/`If-None-Match` value matches `etag` (ours, always strong).
///
/// `*` matches; otherwise each listed entity-tag is compared, with the weak comparison
/// (a `W/` prefix on either side is ignored) when `weak` is set and the strong one
/// (weak tags never match) otherwise (RFC 9110 §8.8.3.2). A malformed list stops at the
/// first malformed element; what was read before it still counts.
pub fn etag_list_matches(value: &[u8], etag: &str, weak: bool) -> bool {
    if trim(value) == b"*" {
        return true;
    }
    let ours = etag.as_bytes();
    let mut rest = value;
    loop {
        rest = &rest[rest
            .iter()
            .position(|&b| !matches!(b, b' ' | b'\t' | b','))
            .unwrap_or(rest.len())..];
        if rest.is_empty() {
            return false;
        }
        let is_weak = rest.len() >= 2 && &rest[..2] == b"W/";
        if is_weak {
            rest = &rest[2..];
        }
        if rest.first() != Some(&b'"') {
            return false;
        }
        let Some(close) = rest[1..].iter().position(|&b| b == b'"') else {
            return false;
        };
        let tag = &rest[..close + 2];
        if tag == ours && (weak || !is_weak) {
            return true;
        }
        rest = &rest[close + 2..];
    }
}

/// RFC 9110 §13.1.5: whether the `Range` may be honoured.
pub(super) fn if_range_holds(if_range: Option<&[u8]>, etag: &str, modified: SystemTime) -> bool {
    let Some(value) = if_range else { return true };
    let value = trim(value);
    if value.first() == Some(&b'"') {
        value == etag.as_bytes()
    } else if value.starts_with(b"W/") {
        false // weak tags never match here
    } else {
        parse_date(value) == Some(unix_secs(modified))
    }
}

pub(super) enum RangeDecision {
    Whole,
    Partial(ByteRange),
    Unsatisfiable,
}

/// Parses a `Range` value against a representation of `len` bytes.
pub(super) fn parse_range(value: &[u8], len: u64) -> RangeDecision {
    let value = trim(value);
    if value.len() < 6 || !value[..6].eq_ignore_ascii_case(b"bytes=") {
        return RangeDecision::Whole; // another unit: MUST ignore (RFC 9110 §14.2)
    }
    let specs: Vec<&[u8]> = value[6..]
        .split(|&b| b == b',')
        .map(trim)
        .filter(|s| !s.is_empty())
        .collect();
    let [spec] = specs.as_slice() else {
        // Several ranges: served whole (no multipart/byteranges), or none: invalid.
        return if specs.is_empty() {
            RangeDecision::Unsatisfiable
        } else {
            RangeDecision::Whole
        };
    };
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeDecision::Unsatisfiable;
    };
    let (first, last) = (trim(&spec[..dash]), trim(&spec[dash + 1..]));
    if first.is_empty() {
        // Suffix range: the last N bytes.
        let Some(n) = parse_u64(last) else {
            return RangeDecision::Unsatisfiable;
        };
        if n == 0 || len == 0 {
            return RangeDecision::Unsatisfiable;
        }
        let n = n.min(len);
        return RangeDecision::Partial(ByteRange {
            start: len - n,
            len: n,
        });
    }
    let Some(start) = parse_u64(first) else {
        return RangeDecision::Unsatisfiable;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match parse_u64(last) {
            Some(end) if end >= start => end,
            _ => return RangeDecision::Unsatisfiable,
        }
    };
    if start >= len {
        return RangeDecision::Unsatisfiable;
    }
    let end = end.min(len - 1);
    RangeDecision::Partial(ByteRange {
        start,
        len: end - start + 1,
    })
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

// ===== dates =====

/// Seconds since the Unix epoch, 0 for earlier times.
pub(super) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The last instant `httpdate` can format (9999-12-31T23:59:59Z).
pub(super) fn max_http_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

/// Formats an IMF-fixdate, clamping to 1970..=9999 so that `httpdate` cannot panic.
pub(super) fn http_date(t: SystemTime) -> String {
    let t = t.clamp(UNIX_EPOCH, max_http_time());
    httpdate::fmt_http_date(t)
}

/// Parses any of the three HTTP date formats to Unix seconds.
pub(super) fn parse_date(value: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(trim(value)).ok()?;
    httpdate::parse_http_date(s).ok().map(unix_secs)
}

//! nginx-style values: sizes, times, listen addresses, `http://` upstream addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::UpstreamAddr;
use crate::static_files::Expires;

/// `http://HOST:PORT`, `http://unix:/PATH` or nginx's `http://unix:/PATH:`; `None` when
/// the value does not start with `http://`.
pub(super) fn parse_http_pass(s: &str) -> Option<Result<UpstreamAddr, String>> {
    let rest = s.strip_prefix("http://")?;
    // nginx writes unix upstreams as http://unix:/path: (trailing colon).
    let rest = rest
        .strip_suffix(':')
        .filter(|r| r.starts_with("unix:"))
        .unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    Some(UpstreamAddr::parse(rest))
}

/// `80`, `*:80`, `0.0.0.0:80`, `[::]:80`.
pub(super) fn parse_listen(s: &str) -> Option<SocketAddr> {
    if let Ok(port) = s.parse::<u16>() {
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Some(port) = s.strip_prefix("*:") {
        return port
            .parse::<u16>()
            .ok()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p));
    }
    s.parse().ok()
}

/// nginx sizes: `1024`, `10k`, `10K`, `1m`, `1g`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        b'g' | b'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

/// nginx times: a number with a unit `ms`, `s`, `m`, `h`, `d`, `w`, `M` (30 days) or
/// `y` (365 days); a bare number is seconds. Several parts add up (`1h30m`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok().map(Duration::from_secs);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else {
            let secs = match rest.as_bytes().first()? {
                b's' => 1,
                b'm' => 60,
                b'h' => 3600,
                b'd' => 86_400,
                b'w' => 7 * 86_400,
                b'M' => 30 * 86_400,
                b'y' => 365 * 86_400,
                _ => return None,
            };
            (Duration::from_secs(secs), 1)
        };
        rest = &rest[len..];
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
    }
    Some(total)
}

pub(super) fn parse_expires(s: &str) -> Option<Expires> {
    match s {
        "off" => Some(Expires::Off),
        "epoch" => Some(Expires::Epoch),
        "max" => Some(Expires::Max),
        _ => parse_duration(s).map(Expires::After),
    }
}

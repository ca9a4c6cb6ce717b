//! `X-Forwarded-For`, `X-Real-IP` and `X-Forwarded-Proto` for an upstream request, trusting
//! the incoming ones only from configured proxies (nginx's `realip` module with
//! `real_ip_recursive on`, plus `proxy_set_header X-Forwarded-For
//! $proxy_add_x_forwarded_for; X-Real-IP $remote_addr; X-Forwarded-Proto $scheme;`).
//!
//! - From an untrusted peer every incoming forwarded field is ignored: the upstream gets
//!   `X-Forwarded-For: <peer>`, `X-Real-IP: <peer>` and our own scheme.
//! - From a trusted peer the incoming `X-Forwarded-For` is kept and the peer appended; the
//!   client address is found by walking that list from the right, skipping trusted
//!   addresses (`real_ip_recursive on`); `X-Forwarded-Proto` is taken from the peer when
//!   it is `http` or `https`.
//!
//! Not handled: the RFC 7239 `Forwarded` field (neither read nor written).

use std::net::IpAddr;

use ipnet::IpNet;
use thiserror::Error;

use crate::uwsgi_params::Scheme;

/// A trusted-proxy entry that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid trusted proxy {entry:?}: expected an IP address, a CIDR (10.0.0.0/8, fd00::/8) or \"unix:\""
)]
pub struct TrustedProxyError {
    /// The entry as given.
    pub entry: String,
}

/// The addresses whose forwarded fields are believed (nginx's `set_real_ip_from`).
///
/// Empty by default: trust nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    unix: bool,
}

impl TrustedProxies {
    /// An empty list (trust nobody).
    pub fn new() -> TrustedProxies {
        TrustedProxies::default()
    }

    /// Parses a list of entries; see [`add`](Self::add).
    ///
    /// # Errors
    ///
    /// [`TrustedProxyError`] for the first entry that does not parse.
    pub fn parse<'a, I>(entries: I) -> Result<TrustedProxies, TrustedProxyError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut list = TrustedProxies::new();
        for entry in entries {
            list.add(entry)?;
        }
        Ok(list)
    }

    /// Adds an entry: an address (`127.0.0.1`, `::1`, a whole host), a CIDR
    /// (`10.0.0.0/8`, `fd00::/8`; host bits are ignored, as nginx does), or `unix:` for
    /// clients on a unix socket.
    ///
    /// # Errors
    ///
    /// [`TrustedProxyError`] when the entry is none of those.
    pub fn add(&mut self, entry: &str) -> Result<&mut Self, TrustedProxyError> {
        let e = entry.trim();
        if e == "unix:" {
            self.unix = true;
            return Ok(self);
        }
        let net = if e.contains('/') {
            e.parse::<IpNet>().ok().map(|n| n.trunc())
        } else {
            e.parse::<IpAddr>().ok().map(IpNet::from)
        };
        match net {
            Some(net) => {
                self.nets.push(net);
                Ok(self)
            }
            None => Err(TrustedProxyError {
                entry: entry.to_owned(),
            }),
        }
    }

    /// Whether no entry is configured.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && !self.unix
    }

    /// Whether `ip` is trusted. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is also
    /// checked as IPv4. O(entries).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.nets
            .iter()
            .any(|n| n.contains(&ip) || v4.is_some_and(|v4| n.contains(&v4)))
    }

    /// Whether a peer is trusted; `None` is a unix-socket peer.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        match peer {
            Some(ip) => self.contains(ip),
            None => self.unix,
        }
    }
}

/// The forwarded fields to send upstream, and the client address they imply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The real client: the peer, or (from a trusted peer) the right-most untrusted
    /// address of the incoming `X-Forwarded-For`. `None` for a unix-socket peer without a
    /// usable forwarded address. Use it for access logs and `REMOTE_ADDR` when the realip
    /// behaviour is wanted.
    pub client: Option<IpAddr>,
    /// The `X-Forwarded-For` value to send: the trusted incoming list plus `, <peer>`, or
    /// just the peer (`unix:` for a unix-socket peer).
    pub x_forwarded_for: Vec<u8>,
    /// The `X-Real-IP` value to send: [`client`](Self::client) (`unix:` when none).
    pub x_real_ip: Vec<u8>,
    /// The `X-Forwarded-Proto` value to send: `http` or `https`.
    pub x_forwarded_proto: &'static str,
}

impl Forwarded {
    /// The three fields as `(name, value)`, in the order to write them.
    pub fn fields(&self) -> [(&'static str, &[u8]); 3] {
        [
            ("X-Forwarded-For", &self.x_forwarded_for),
            ("X-Real-IP", &self.x_real_ip),
            ("X-Forwarded-Proto", self.x_forwarded_proto.as_bytes()),
        ]
    }
}

/// Whether a request field is one that [`forwarded`] replaces (`X-Forwarded-For`,
/// `X-Real-IP`, `X-Forwarded-Proto`, ASCII case-insensitive): the proxy must drop the
/// client's copies and send [`Forwarded::fields`] instead.
pub fn is_forwarding_field(name: &[u8]) -> bool {
    [&b"x-forwarded-for"[..], b"x-real-ip", b"x-forwarded-proto"]
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f))
}

/// Computes the forwarded fields for a request from `peer` (`None` for a unix socket)
/// received over `scheme`, with the request's `fields` in arrival order.
///
/// Several `X-Forwarded-For` lines count as one list (joined with `", "`, RFC 9110 §5.3).
/// A malformed list element stops the walk: the client is then the address to its
/// right (nginx stops at an unparsable address too). Pure, O(fields + list length).
pub fn forwarded(
    peer: Option<IpAddr>,
    scheme: Scheme,
    fields: &[(&[u8], &[u8])],
    trusted: &TrustedProxies,
) -> Forwarded {
    let peer_text = match peer {
        Some(ip) => ip.to_string().into_bytes(),
        None => b"unix:".to_vec(),
    };
    let mut out = Forwarded {
        client: peer,
        x_real_ip: peer_text.clone(),
        x_forwarded_for: peer_text,
        x_forwarded_proto: scheme.as_str(),
    };
    if !trusted.trusts(peer) {
        return out;
    }
    let mut incoming: Vec<u8> = Vec::new();
    let mut proto: Option<&[u8]> = None;
    for &(name, value) in fields {
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            let value = trim(value);
            if value.is_empty() {
                continue;
            }
            if !incoming.is_empty() {
                incoming.extend_from_slice(b", ");
            }
            incoming.extend_from_slice(value);
        } else if name.eq_ignore_ascii_case(b"x-forwarded-proto") && proto.is_none() {
            proto = Some(value);
        }
    }
    if let Some(p) = proto {
        let first = trim(p.split(|&b| b == b',').next().unwrap_or_default());
        if first.eq_ignore_ascii_case(b"https") {
            out.x_forwarded_proto = "https";
        } else if first.eq_ignore_ascii_case(b"http") {
            out.x_forwarded_proto = "http";
        }
    }
    if incoming.is_empty() {
        return out;
    }
    // Walk right to left past trusted hops.
    for element in incoming.rsplit(|&b| b == b',') {
        match parse_hop(trim(element)) {
            Some(ip) => {
                out.client = Some(ip);
                if !trusted.contains(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    if let Some(ip) = out.client {
        out.x_real_ip = ip.to_string().into_bytes();
    }
    incoming.extend_from_slice(b", ");
    // Still the peer's address alone.
    incoming.extend_from_slice(&out.x_forwarded_for);
    out.x_forwarded_for = incoming;
    out
}

/// One `X-Forwarded-For` element: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80`.
fn parse_hop(element: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(element).ok()?;
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return ip.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (ip, port) = s.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(p: &str) -> bool {
    p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

//! The serde model of the file and its validation into [`ProxyConfig`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::units::{parse_duration, parse_expires, parse_http_pass, parse_listen, parse_size};
use super::{
    Action, ConfigError, Location, ProxyConfig, ServerBlock, TlsFiles, Upstream, UpstreamAddr,
};
use crate::forwarded::TrustedProxies;
use crate::pool::{Balance, PeerConfig};
use crate::static_files::StaticLocation;
use crate::upstream_head::UpstreamProtocol;

// ===== raw serde model =====

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: Vec<Spanned<RawServer>>,
    #[serde(default)]
    upstream: BTreeMap<Spanned<String>, Spanned<RawUpstream>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    server_name: Vec<Spanned<String>>,
    tls: Option<RawTls>,
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
    client_max_body_size: Option<Spanned<String>>,
    #[serde(default)]
    location: Vec<Spanned<RawLocation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocation {
    prefix: Spanned<String>,
    root: Option<Spanned<String>>,
    alias: Option<Spanned<String>>,
    index: Option<Vec<Spanned<String>>>,
    fallback: Option<Spanned<String>>,
    expires: Option<Spanned<String>>,
    cache_control: Option<Spanned<String>>,
    precompressed: Option<Vec<Spanned<String>>>,
    uwsgi_pass: Option<Spanned<String>>,
    script_name: Option<Spanned<String>>,
    proxy_pass: Option<Spanned<String>>,
    redirect: Option<Spanned<String>>,
    redirect_status: Option<Spanned<u16>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    protocol: Spanned<String>,
    balance: Option<Spanned<String>>,
    servers: Spanned<Vec<Spanned<RawPeer>>>,
    keepalive: Option<Spanned<usize>>,
    keepalive_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    address: Spanned<String>,
    weight: Option<Spanned<u32>>,
    max_fails: Option<u32>,
    fail_timeout: Option<Spanned<String>>,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    down: bool,
}

// ===== validation =====

struct Ctx<'a> {
    file: &'a Path,
    src: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(self.src, span.start);
        ConfigError {
            file: self.file.to_owned(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Parses and validates configuration text (see [`ProxyConfig::parse`]).
pub(super) fn parse(src: &str, file: &Path) -> Result<ProxyConfig, ConfigError> {
    let cx = Ctx { file, src };
    let raw: RawConfig = toml::from_str(src).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        cx.err(span, e.message().trim_end().to_owned())
    })?;
    if raw.server.is_empty() {
        return Err(cx.err(0..0, "no [[server]] block: at least one is needed"));
    }

    let mut upstreams = BTreeMap::new();
    for (name, up) in raw.upstream {
        let span = name.span();
        let name = name.into_inner();
        if name.is_empty() || name.contains(':') {
            return Err(cx.err(
                span,
                format!("invalid upstream name {name:?}: use letters, digits, '-' or '_'"),
            ));
        }
        upstreams.insert(name, upstream(&cx, up)?);
    }

    let mut servers = Vec::new();
    for server in raw.server {
        servers.push(server_block(&cx, server, &mut upstreams)?);
    }
    Ok(ProxyConfig { servers, upstreams })
}

fn server_block(
    cx: &Ctx<'_>,
    raw: Spanned<RawServer>,
    upstreams: &mut BTreeMap<String, Upstream>,
) -> Result<ServerBlock, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let listen_span = raw.listen.span();
    let listen_raw = raw.listen.into_inner();
    if listen_raw.is_empty() {
        return Err(cx.err(
            listen_span,
            "listen is empty: give at least one address (\"0.0.0.0:80\")",
        ));
    }
    let mut listen = Vec::new();
    for l in listen_raw {
        let addr = parse_listen(l.get_ref()).ok_or_else(|| {
            cx.err(
                l.span(),
                format!(
                    "invalid listen address {:?}: expected PORT, IP:PORT or [IPv6]:PORT",
                    l.get_ref()
                ),
            )
        })?;
        listen.push(addr);
    }
    let mut server_names = Vec::new();
    for n in raw.server_name {
        let name = n.get_ref();
        if name.is_empty()
            || name
                .bytes()
                .any(|b| !(b.is_ascii_alphanumeric() || b"-.*_".contains(&b)))
        {
            return Err(cx.err(n.span(), format!("invalid server_name {name:?}")));
        }
        server_names.push(name.to_ascii_lowercase());
    }
    let mut trusted_proxies = TrustedProxies::new();
    for t in raw.trusted_proxies {
        trusted_proxies
            .add(t.get_ref())
            .map_err(|e| cx.err(t.span(), e.to_string()))?;
    }
    let client_max_body_size = match raw.client_max_body_size {
        Some(s) => parse_size(s.get_ref()).ok_or_else(|| {
            cx.err(s.span(), format!("invalid size {:?}: expected a number of bytes with an optional k, m or g suffix (\"10m\")", s.get_ref()))
        })?,
        None => 1024 * 1024,
    };
    let tls = raw.tls.map(|t| TlsFiles {
        cert: PathBuf::from(t.cert),
        key: PathBuf::from(t.key),
    });
    let mut locations: Vec<Location> = Vec::new();
    for loc in raw.location {
        let loc_span = loc.span();
        let location = location(cx, loc, upstreams)?;
        if locations.iter().any(|l| l.prefix == location.prefix) {
            return Err(cx.err(
                loc_span,
                format!(
                    "duplicate location prefix {:?} in this server",
                    location.prefix
                ),
            ));
        }
        locations.push(location);
    }
    if locations.is_empty() {
        return Err(cx.err(span, "this server has no [[server.location]]"));
    }
    locations.sort_by_key(|l| std::cmp::Reverse(l.prefix.len()));
    Ok(ServerBlock {
        listen,
        server_names,
        tls,
        trusted_proxies,
        client_max_body_size,
        locations,
    })
}

fn location(
    cx: &Ctx<'_>,
    raw: Spanned<RawLocation>,
    upstreams: &mut BTreeMap<String, Upstream>,
) -> Result<Location, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let prefix = raw.prefix.get_ref().clone();
    if !prefix.starts_with('/') {
        return Err(cx.err(
            raw.prefix.span(),
            format!("location prefix {prefix:?} must start with '/'"),
        ));
    }
    let kinds: Vec<&str> = [
        ("root", raw.root.is_some()),
        ("alias", raw.alias.is_some()),
        ("uwsgi_pass", raw.uwsgi_pass.is_some()),
        ("proxy_pass", raw.proxy_pass.is_some()),
        ("redirect", raw.redirect.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| *k)
    .collect();
    if kinds.len() != 1 {
        let found = if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        };
        return Err(cx.err(
            span,
            format!("location {prefix:?} needs exactly one of root, alias, uwsgi_pass, proxy_pass or redirect (found: {found})"),
        ));
    }
    let is_static = raw.root.is_some() || raw.alias.is_some();
    let static_only = [
        (
            "index",
            raw.index
                .as_ref()
                .map(|v| v.first().map_or(span.clone(), |s| s.span())),
        ),
        ("fallback", raw.fallback.as_ref().map(Spanned::span)),
        ("expires", raw.expires.as_ref().map(Spanned::span)),
        (
            "cache_control",
            raw.cache_control.as_ref().map(Spanned::span),
        ),
        (
            "precompressed",
            raw.precompressed
                .as_ref()
                .map(|v| v.first().map_or(span.clone(), |s| s.span())),
        ),
    ];
    if !is_static {
        if let Some((key, Some(s))) = static_only.iter().find(|(_, s)| s.is_some()) {
            return Err(cx.err(
                s.clone(),
                format!("{key} only applies to a static location (root or alias)"),
            ));
        }
    }
    if raw.uwsgi_pass.is_none() {
        if let Some(s) = &raw.script_name {
            return Err(cx.err(
                s.span(),
                "script_name only applies to a uwsgi_pass location",
            ));
        }
    }
    if raw.redirect.is_none() {
        if let Some(s) = &raw.redirect_status {
            return Err(cx.err(
                s.span(),
                "redirect_status only applies to a redirect location",
            ));
        }
    }

    let action = if is_static {
        let (dir, alias) = match (&raw.root, &raw.alias) {
            (Some(r), _) => (r, false),
            (None, Some(a)) => (a, true),
            (None, None) => unreachable!("invariant: is_static"),
        };
        if !dir.get_ref().starts_with('/') {
            return Err(cx.err(
                dir.span(),
                format!("{:?} must be an absolute path", dir.get_ref()),
            ));
        }
        let mut files = if alias {
            StaticLocation::alias(&prefix, dir.get_ref())
        } else {
            StaticLocation::root(&prefix, dir.get_ref())
        };
        if let Some(index) = &raw.index {
            let mut names = Vec::new();
            for n in index {
                if n.get_ref().is_empty() || n.get_ref().contains('/') {
                    return Err(cx.err(
                        n.span(),
                        format!("invalid index file name {:?}", n.get_ref()),
                    ));
                }
                names.push(n.get_ref().clone());
            }
            files.index(names);
        }
        if let Some(e) = &raw.expires {
            let expires = parse_expires(e.get_ref()).ok_or_else(|| {
                cx.err(e.span(), format!("invalid expires {:?}: expected off, epoch, max or a time like 30s, 10m, 1h, 7d", e.get_ref()))
            })?;
            files.expires(expires);
        }
        if let Some(cc) = &raw.cache_control {
            let v = cc.get_ref();
            if v.trim().is_empty() || v.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
                return Err(cx.err(
                    cc.span(),
                    "cache_control must be a non-empty header value without control characters",
                ));
            }
            files.cache_control(Some(v.trim().to_owned()));
        }
        for c in raw.precompressed.iter().flatten() {
            match c.get_ref().as_str() {
                "gzip" => files.gzip_static(true),
                "br" => files.brotli_static(true),
                other => {
                    return Err(cx.err(
                        c.span(),
                        format!("unknown precompressed coding {other:?}: use \"gzip\" or \"br\""),
                    ));
                }
            };
        }
        let fallback = match &raw.fallback {
            Some(f) => Some(upstream_ref(cx, f, None, upstreams)?),
            None => None,
        };
        Action::Static { files, fallback }
    } else if let Some(u) = &raw.uwsgi_pass {
        let upstream = upstream_ref(cx, u, Some(UpstreamProtocol::Uwsgi), upstreams)?;
        let script_name = match &raw.script_name {
            Some(s) if !s.get_ref().starts_with('/') => {
                return Err(cx.err(s.span(), "script_name must start with '/'"));
            }
            Some(s) => Some(s.get_ref().clone()),
            None => None,
        };
        Action::Uwsgi {
            upstream,
            script_name,
        }
    } else if let Some(p) = &raw.proxy_pass {
        Action::Http {
            upstream: upstream_ref(cx, p, Some(UpstreamProtocol::Http), upstreams)?,
        }
    } else {
        let to = raw.redirect.as_ref().expect("invariant: exactly one kind");
        check_redirect(cx, to)?;
        let status = match &raw.redirect_status {
            Some(s) if ![301, 302, 303, 307, 308].contains(s.get_ref()) => {
                return Err(cx.err(
                    s.span(),
                    format!(
                        "redirect_status {} is not a redirect: use 301, 302, 303, 307 or 308",
                        s.get_ref()
                    ),
                ));
            }
            Some(s) => *s.get_ref(),
            None => 301,
        };
        Action::Redirect {
            to: to.get_ref().clone(),
            status,
        }
    };
    Ok(Location { prefix, action })
}

fn check_redirect(cx: &Ctx<'_>, to: &Spanned<String>) -> Result<(), ConfigError> {
    let s = to.get_ref();
    if s.is_empty() || s.bytes().any(|b| b < 0x21 || b == 0x7f) {
        return Err(cx.err(
            to.span(),
            "redirect target must be a non-empty URL without spaces or control characters",
        ));
    }
    let mut rest = s.as_str();
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        let Some(name) = ["request_uri", "host", "scheme"]
            .iter()
            .find(|n| after.starts_with(*n))
        else {
            return Err(cx.err(
                to.span(),
                format!(
                    "unknown variable in redirect target {s:?}: use $host, $request_uri or $scheme"
                ),
            ));
        };
        rest = &after[name.len()..];
    }
    Ok(())
}

/// Resolves an upstream reference: a defined name, or an inline address that becomes an
/// implicit one-server pool.
fn upstream_ref(
    cx: &Ctx<'_>,
    value: &Spanned<String>,
    want: Option<UpstreamProtocol>,
    upstreams: &mut BTreeMap<String, Upstream>,
) -> Result<String, ConfigError> {
    let s = value.get_ref();
    let proto_name = |p: UpstreamProtocol| match p {
        UpstreamProtocol::Uwsgi => "uwsgi",
        UpstreamProtocol::Http => "http",
    };
    if let Some(up) = upstreams.get(s) {
        if let Some(want) = want {
            if up.protocol != want {
                return Err(cx.err(
                    value.span(),
                    format!(
                        "upstream {s:?} speaks {}, but this location needs {}",
                        proto_name(up.protocol),
                        proto_name(want)
                    ),
                ));
            }
        }
        return Ok(s.clone());
    }
    // Inline addresses.
    let inline = match want {
        Some(UpstreamProtocol::Http) => {
            parse_http_pass(s).map(|addr| (UpstreamProtocol::Http, addr))
        }
        Some(UpstreamProtocol::Uwsgi) if s.contains(':') => Some((
            UpstreamProtocol::Uwsgi,
            UpstreamAddr::parse(s.strip_prefix("uwsgi://").unwrap_or(s)),
        )),
        _ => None,
    };
    match inline {
        Some((protocol, Ok(addr))) => {
            upstreams.entry(s.clone()).or_insert_with(|| Upstream {
                protocol,
                balance: Balance::RoundRobin,
                servers: vec![PeerConfig::new(addr)],
                keepalive: None,
                keepalive_timeout: None,
            });
            Ok(s.clone())
        }
        Some((_, Err(message))) => Err(cx.err(value.span(), message)),
        None => {
            let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            let hint = match want {
                Some(UpstreamProtocol::Http) => {
                    " (or give an address: http://HOST:PORT, http://unix:/PATH)"
                }
                Some(UpstreamProtocol::Uwsgi) => " (or give an address: HOST:PORT, unix:/PATH)",
                None => "",
            };
            Err(cx.err(
                value.span(),
                format!("unknown upstream {s:?}{hint}; defined upstreams: {known}"),
            ))
        }
    }
}

fn upstream(cx: &Ctx<'_>, raw: Spanned<RawUpstream>) -> Result<Upstream, ConfigError> {
    let raw = raw.into_inner();
    let protocol = match raw.protocol.get_ref().as_str() {
        "uwsgi" => UpstreamProtocol::Uwsgi,
        "http" => UpstreamProtocol::Http,
        other => {
            return Err(cx.err(
                raw.protocol.span(),
                format!("unknown protocol {other:?}: use \"uwsgi\" or \"http\""),
            ));
        }
    };
    let balance = match raw
        .balance
        .as_ref()
        .map(|b| (b.get_ref().as_str(), b.span()))
    {
        None | Some(("round-robin", _)) => Balance::RoundRobin,
        Some(("least-conn", _)) => Balance::LeastConn,
        Some((other, span)) => {
            return Err(cx.err(
                span,
                format!("unknown balance {other:?}: use \"round-robin\" or \"least-conn\""),
            ));
        }
    };
    let servers_span = raw.servers.span();
    let mut servers = Vec::new();
    for peer in raw.servers.into_inner() {
        let peer = peer.into_inner();
        let addr = UpstreamAddr::parse(peer.address.get_ref())
            .map_err(|m| cx.err(peer.address.span(), m))?;
        let mut cfg = PeerConfig::new(addr);
        if let Some(w) = &peer.weight {
            if *w.get_ref() == 0 {
                return Err(cx.err(w.span(), "weight must be at least 1"));
            }
            cfg.weight = *w.get_ref();
        }
        if let Some(m) = peer.max_fails {
            cfg.max_fails = m;
        }
        if let Some(t) = &peer.fail_timeout {
            cfg.fail_timeout = parse_duration(t.get_ref()).ok_or_else(|| {
                cx.err(
                    t.span(),
                    format!(
                        "invalid fail_timeout {:?}: expected a time like 10s, 500ms, 1m",
                        t.get_ref()
                    ),
                )
            })?;
        }
        cfg.backup = peer.backup;
        cfg.down = peer.down;
        servers.push(cfg);
    }
    if !servers.iter().any(|s| !s.backup) {
        return Err(cx.err(
            servers_span,
            "an upstream needs at least one server that is not a backup",
        ));
    }
    // uWSGI closes the connection after each response: there is nothing to keep.
    let http_only = |span: Range<usize>, key: &str| {
        cx.err(
            span,
            format!(
                "{key} applies to http upstreams only (uwsgi servers close after each response)"
            ),
        )
    };
    let keepalive = match raw.keepalive {
        Some(k) if protocol == UpstreamProtocol::Uwsgi => {
            return Err(http_only(k.span(), "keepalive"));
        }
        Some(k) => Some(k.into_inner()),
        None => None,
    };
    let keepalive_timeout = match raw.keepalive_timeout {
        Some(t) if protocol == UpstreamProtocol::Uwsgi => {
            return Err(http_only(t.span(), "keepalive_timeout"));
        }
        Some(t) => Some(parse_duration(t.get_ref()).ok_or_else(|| {
            cx.err(
                t.span(),
                format!(
                    "invalid keepalive_timeout {:?}: expected a time like 60s, 500ms, 1m",
                    t.get_ref()
                ),
            )
        })?),
        None => None,
    };
    Ok(Upstream {
        protocol,
        balance,
        servers,
        keepalive,
        keepalive_timeout,
    })
}

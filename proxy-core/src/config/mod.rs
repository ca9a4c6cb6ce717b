//! The TOML configuration of `ferrule-proxy`: the serde model, its validation, and
//! longest-prefix location matching.
//!
//! Every error names the file, the line and column, and what is wrong
//! (`proxy.toml:12:10: unknown upstream "ap"; defined upstreams: app`), from the spans
//! that the `toml` parser records.
//!
//! ```toml
//! [[server]]
//! listen = ["0.0.0.0:443", "[::]:443"]
//! server_name = ["example.com", "*.example.com"]
//! tls = { cert = "/etc/ferrule/cert.pem", key = "/etc/ferrule/key.pem" }
//! trusted_proxies = ["10.0.0.0/8"]       # whose X-Forwarded-* to believe
//! client_max_body_size = "10m"          # 0 = no limit; default 1m
//!
//! [[server.location]]
//! prefix = "/static/"
//! alias = "/srv/app/static/"           # or root = "/srv/app"
//! index = ["index.html"]
//! fallback = "app"                      # try_files $uri @app: missing files go upstream
//! expires = "7d"                        # off | epoch | max | <n>ms|s|m|h|d|w|M|y
//! cache_control = "public"
//! precompressed = ["br", "gzip"]        # serve .br / .gz siblings
//!
//! [[server.location]]
//! prefix = "/"
//! uwsgi_pass = "app"                    # an upstream name, or "unix:/run/app.sock", "127.0.0.1:3031"
//! script_name = "/"                     # optional SCRIPT_NAME
//!
//! [[server.location]]
//! prefix = "/api/"
//! proxy_pass = "http://unix:/run/api.sock"   # or an upstream name, or "http://127.0.0.1:8000"
//!
//! [[server]]
//! listen = ["0.0.0.0:80"]
//! [[server.location]]
//! prefix = "/"
//! redirect = "https://$host$request_uri"   # variables: $host, $request_uri, $scheme
//! redirect_status = 301                    # 301 (default), 302, 303, 307, 308
//!
//! [upstream.app]
//! protocol = "uwsgi"                    # or "http"
//! balance = "round-robin"               # or "least-conn"
//! servers = [
//!   { address = "unix:/run/app1.sock", weight = 2 },
//!   { address = "127.0.0.1:3031", max_fails = 3, fail_timeout = "30s" },
//!   { address = "10.0.0.9:3031", backup = true },
//! ]
//!
//! [upstream.api]
//! protocol = "http"
//! servers = [{ address = "127.0.0.1:8000" }]
//! keepalive = 64                        # idle connections kept per server; default 32, 0 = off
//! keepalive_timeout = "30s"             # default 60s
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::forwarded::TrustedProxies;
use crate::pool::{Balance, PeerConfig, Pool};
use crate::static_files::StaticLocation;
use crate::upstream_head::UpstreamProtocol;

mod flags;
pub use flags::QuickFlags;
mod units;
pub use units::{parse_duration, parse_size};
mod validate;

/// A configuration error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file (as given to [`ProxyConfig::load`] or
    /// [`ProxyConfig::parse`]).
    pub file: PathBuf,
    /// 1-based line, `None` when the error is not tied to a place (the file cannot be
    /// read).
    pub line: Option<usize>,
    /// 1-based column (in characters), `None` with `line`.
    pub column: Option<usize>,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file.display(), self.message),
            _ => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The server blocks, in file order (the first one listening on an address is that
    /// address's default server, as in nginx).
    pub servers: Vec<ServerBlock>,
    /// Upstream pools by name, including one implicit pool per inline address used in
    /// `uwsgi_pass`/`proxy_pass` (named after the address as written).
    pub upstreams: BTreeMap<String, Upstream>,
}

/// One `[[server]]` block.
#[derive(Debug, Clone)]
pub struct ServerBlock {
    /// Listening addresses (`"80"` means `0.0.0.0:80`).
    pub listen: Vec<SocketAddr>,
    /// Host names; the first one is `SERVER_NAME`. Exact names (compared
    /// case-insensitively) or a leading wildcard (`*.example.com`).
    pub server_names: Vec<String>,
    /// TLS certificate and key (PEM files), when the server terminates TLS.
    pub tls: Option<TlsFiles>,
    /// Peers whose `X-Forwarded-*` fields are believed.
    pub trusted_proxies: TrustedProxies,
    /// Largest request body, in bytes; 0 means no limit. Default is 1 MiB (nginx's
    /// `client_max_body_size 1m`).
    pub client_max_body_size: u64,
    /// Locations, longest prefix first.
    pub locations: Vec<Location>,
}

/// TLS key material paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// A location: a URL prefix and what to do with requests under it.
#[derive(Debug, Clone)]
pub struct Location {
    /// The URL prefix, matched against the normalised path (`$uri`) byte by byte, as
    /// nginx's prefix locations are (`/static` also matches `/staticfoo`).
    pub prefix: String,
    /// What to do.
    pub action: Action,
}

/// What a location does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Serve files; `fallback` names the upstream for missing files.
    Static {
        /// Where and how files are served.
        files: StaticLocation,
        /// Upstream for requests whose file does not exist (`try_files $uri @app`).
        fallback: Option<String>,
    },
    /// Pass to a uwsgi upstream.
    Uwsgi {
        /// The upstream's name in [`ProxyConfig::upstreams`].
        upstream: String,
        /// `SCRIPT_NAME` to send, if any.
        script_name: Option<String>,
    },
    /// Pass to an HTTP upstream.
    Http {
        /// The upstream's name in [`ProxyConfig::upstreams`].
        upstream: String,
    },
    /// Answer with a redirect.
    Redirect {
        /// The target, with `$host`, `$request_uri` and `$scheme` to expand
        /// ([`expand_redirect`]).
        to: String,
        /// 301, 302, 303, 307 or 308.
        status: u16,
    },
}

/// An upstream pool.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// uwsgi or HTTP.
    pub protocol: UpstreamProtocol,
    /// Round-robin or least-connections.
    pub balance: Balance,
    /// The servers.
    pub servers: Vec<PeerConfig<UpstreamAddr>>,
    /// Idle keep-alive connections kept per server (nginx's `keepalive N` in an `upstream`
    /// block), HTTP upstreams only; `Some(0)` turns reuse off. `None`: the server's default
    /// ([`Options::keepalive`](crate::server::Options::keepalive), 32).
    pub keepalive: Option<usize>,
    /// How long an idle connection is kept (nginx's `keepalive_timeout` in an `upstream`
    /// block). `None`: the server's default
    /// ([`Options::keepalive_timeout`](crate::server::Options::keepalive_timeout), 60 s).
    pub keepalive_timeout: Option<std::time::Duration>,
}

impl Upstream {
    /// A [`Pool`] over the servers (validated already, so this does not fail for a
    /// configuration built by this module).
    ///
    /// # Errors
    ///
    /// [`PoolError`](crate::pool::PoolError) for an upstream built by hand without a
    /// primary server or with weight 0.
    pub fn pool(&self) -> Result<Pool<UpstreamAddr>, crate::pool::PoolError> {
        Pool::new(self.servers.clone(), self.balance)
    }
}

/// The address of an upstream server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpstreamAddr {
    /// An IP address and port.
    Tcp(SocketAddr),
    /// A host name and port, resolved by the server when it starts (as nginx does).
    Host(String, u16),
    /// A unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamAddr::Tcp(a) => write!(f, "{a}"),
            UpstreamAddr::Host(h, p) => write!(f, "{h}:{p}"),
            UpstreamAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl UpstreamAddr {
    /// Parses `unix:/path`, `1.2.3.4:80`, `[::1]:80` or `name:80`.
    ///
    /// # Errors
    ///
    /// A message saying what is expected.
    pub fn parse(s: &str) -> Result<UpstreamAddr, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() || !path.starts_with('/') {
                return Err(format!(
                    "unix socket address {s:?} needs an absolute path (unix:/run/app.sock)"
                ));
            }
            return Ok(UpstreamAddr::Unix(PathBuf::from(path)));
        }
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(UpstreamAddr::Tcp(a));
        }
        let bad = || {
            format!("invalid upstream address {s:?}: expected HOST:PORT, [IPv6]:PORT or unix:/PATH")
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let valid_name = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid_name || port == 0 {
            return Err(bad());
        }
        Ok(UpstreamAddr::Host(host.to_ascii_lowercase(), port))
    }
}

impl ProxyConfig {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for an unreadable file, a TOML syntax or type error, or a
    /// validation error, with the line and column where it applies.
    pub fn load(path: &Path) -> Result<ProxyConfig, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: None,
            column: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        ProxyConfig::parse(&src, path)
    }

    /// Parses and validates configuration text; `file` is only used in errors.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), except for reading.
    pub fn parse(src: &str, file: &Path) -> Result<ProxyConfig, ConfigError> {
        validate::parse(src, file)
    }

    /// The server block for a connection accepted on `local` with the request's host
    /// (nginx's `$host`, lower-case, no port): among the servers listening on that
    /// address (or on the wildcard address with the same port), the first whose
    /// `server_name` matches, else the first of them. `None` when no server listens
    /// there.
    pub fn server_for(&self, local: SocketAddr, host: &str) -> Option<&ServerBlock> {
        // Two passes over the (few) servers instead of collecting the listening ones.
        let listening = || {
            self.servers.iter().filter(move |s| {
                s.listen
                    .iter()
                    .any(|l| *l == local || (l.ip().is_unspecified() && l.port() == local.port()))
            })
        };
        listening()
            .find(|s| s.server_names.iter().any(|n| name_matches(n, host)))
            .or_else(|| listening().next())
    }
}

fn name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

impl ServerBlock {
    /// The location with the longest prefix that `path` (the normalised, decoded path,
    /// nginx's `$uri`) starts with; `None` when no prefix matches.
    pub fn location_for(&self, path: &[u8]) -> Option<&Location> {
        // Sorted longest first, so the first match is the longest.
        self.locations
            .iter()
            .find(|l| path.starts_with(l.prefix.as_bytes()))
    }

    /// `SERVER_NAME`: the first server name, or empty.
    pub fn primary_name(&self) -> &str {
        self.server_names.first().map_or("", String::as_str)
    }
}

/// Expands `$host`, `$request_uri` and `$scheme` in a redirect target.
pub fn expand_redirect(to: &str, host: &str, request_uri: &str, scheme: &str) -> String {
    let mut out = String::with_capacity(to.len() + host.len() + request_uri.len());
    let mut rest = to;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (value, len) = [
            ("request_uri", request_uri),
            ("host", host),
            ("scheme", scheme),
        ]
        .iter()
        .find(|(name, _)| after.starts_with(name))
        .map_or(("$", 0), |(name, value)| (*value, name.len()));
        out.push_str(value);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

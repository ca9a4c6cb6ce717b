//! The command-line quick flags (`--listen`, `--uwsgi-pass`, `--proxy-pass`, `--static`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::units::{parse_http_pass, parse_listen};
use super::{Action, ConfigError, Location, ProxyConfig, ServerBlock, Upstream, UpstreamAddr};
use crate::forwarded::TrustedProxies;
use crate::pool::{Balance, PeerConfig};
use crate::static_files::StaticLocation;
use crate::upstream_head::UpstreamProtocol;

/// The command-line quick flags of `ferrule-proxy`, for the common case without a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuickFlags {
    /// `--listen ADDR` (repeatable; `PORT`, `IP:PORT`, `[IPv6]:PORT`). At least one.
    pub listen: Vec<String>,
    /// `--uwsgi-pass unix:PATH|HOST:PORT` (repeatable: one round-robin pool named `app`
    /// behind `/`).
    pub uwsgi_pass: Vec<String>,
    /// `--proxy-pass http://HOST:PORT|http://unix:PATH` (an HTTP upstream named `app`
    /// behind `/`).
    pub proxy_pass: Option<String>,
    /// `--static PREFIX=DIR` (repeatable): files under `DIR` served at `PREFIX` (nginx
    /// `alias`; a missing trailing `/` on the prefix is added). A relative `DIR` is
    /// taken from the current directory.
    pub statics: Vec<String>,
}

impl ProxyConfig {
    /// Builds the configuration that the quick flags describe: one server on every
    /// `--listen` address, `--static` locations, and `/` passed to the app upstream.
    /// `client_max_body_size` is 1 GiB (a configuration file defaults to nginx's 1m).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose file is `command line` and which names the flag: no
    /// `--listen`, a bad address, both `--uwsgi-pass` and `--proxy-pass`, a `--static`
    /// without `PREFIX=DIR`, a prefix given twice, or nothing to serve.
    pub fn from_flags(flags: &QuickFlags) -> Result<ProxyConfig, ConfigError> {
        let err = |message: String| ConfigError {
            file: PathBuf::from("command line"),
            line: None,
            column: None,
            message,
        };
        if flags.listen.is_empty() {
            return Err(err(
                "give at least one --listen address (e.g. --listen 0.0.0.0:8080)".into(),
            ));
        }
        let mut listen = Vec::new();
        for l in &flags.listen {
            listen.push(parse_listen(l).ok_or_else(|| {
                err(format!(
                    "--listen {l:?}: expected PORT, IP:PORT or [IPv6]:PORT"
                ))
            })?);
        }
        let app = match (&flags.uwsgi_pass[..], &flags.proxy_pass) {
            ([_, ..], Some(_)) => {
                return Err(err(
                    "use either --uwsgi-pass or --proxy-pass, not both".into()
                ));
            }
            ([], None) => None,
            (uwsgi @ [_, ..], None) => {
                let mut servers = Vec::new();
                for u in uwsgi {
                    let addr = UpstreamAddr::parse(u.strip_prefix("uwsgi://").unwrap_or(u))
                        .map_err(|m| err(format!("--uwsgi-pass: {m}")))?;
                    servers.push(PeerConfig::new(addr));
                }
                Some((UpstreamProtocol::Uwsgi, servers))
            }
            ([], Some(p)) => {
                let addr = parse_http_pass(p)
                    .unwrap_or_else(|| Err(format!("{p:?} must start with http://")))
                    .map_err(|m| err(format!("--proxy-pass: {m}")))?;
                Some((UpstreamProtocol::Http, vec![PeerConfig::new(addr)]))
            }
        };
        let mut locations: Vec<Location> = Vec::new();
        for s in &flags.statics {
            let (prefix, dir) = s
                .split_once('=')
                .filter(|(p, d)| p.starts_with('/') && !d.is_empty())
                .ok_or_else(|| {
                    err(format!(
                        "--static {s:?}: expected PREFIX=DIR, e.g. /static=/srv/app/static"
                    ))
                })?;
            let prefix = if prefix.ends_with('/') {
                prefix.to_owned()
            } else {
                format!("{prefix}/")
            };
            let dir = std::path::absolute(dir).map_err(|e| err(format!("--static {s:?}: {e}")))?;
            if locations.iter().any(|l| l.prefix == prefix) {
                return Err(err(format!(
                    "--static {s:?}: prefix {prefix:?} given twice"
                )));
            }
            locations.push(Location {
                action: Action::Static {
                    files: StaticLocation::alias(&prefix, dir),
                    fallback: None,
                },
                prefix,
            });
        }
        let mut upstreams = BTreeMap::new();
        if let Some((protocol, servers)) = app {
            upstreams.insert(
                "app".to_owned(),
                Upstream {
                    protocol,
                    balance: Balance::RoundRobin,
                    servers,
                    keepalive: None,
                    keepalive_timeout: None,
                },
            );
            let action = match protocol {
                UpstreamProtocol::Uwsgi => Action::Uwsgi {
                    upstream: "app".into(),
                    script_name: None,
                },
                UpstreamProtocol::Http => Action::Http {
                    upstream: "app".into(),
                },
            };
            if !locations.iter().any(|l| l.prefix == "/") {
                locations.push(Location {
                    prefix: "/".into(),
                    action,
                });
            }
        }
        if locations.is_empty() {
            return Err(err(
                "nothing to serve: give --uwsgi-pass, --proxy-pass or --static".into(),
            ));
        }
        locations.sort_by_key(|l| std::cmp::Reverse(l.prefix.len()));
        Ok(ProxyConfig {
            servers: vec![ServerBlock {
                listen,
                server_names: Vec::new(),
                tls: None,
                trusted_proxies: TrustedProxies::new(),
                // The quick flags serve an app behind the proxy (uploads included): the
                // body limit is http-front's 1 GiB, not nginx's 1m (a configuration file
                // gets 1m unless it says otherwise). Bodies over the memory threshold are
                // buffered in a temporary file, not in memory.
                client_max_body_size: 1024 * 1024 * 1024,
                locations,
            }],
            upstreams,
        })
    }
}

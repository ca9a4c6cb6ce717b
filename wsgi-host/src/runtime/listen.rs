//! Binding listeners: TCP and unix sockets with uWSGI's options (`listen`, `chmod-socket`,
//! `chown-socket`), and sockets handed over by systemd (`LISTEN_FDS`).

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};
use socket2::{Domain, SockAddr, Socket, Type};

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The binary uwsgi protocol (nginx `uwsgi_pass`, uWSGI's `socket`).
    Uwsgi,
    /// HTTP/1.1 (uWSGI's `http-socket`).
    Http,
}

impl Protocol {
    /// `"uwsgi"` or `"http"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Uwsgi => "uwsgi",
            Protocol::Http => "http",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "uwsgi" => Some(Protocol::Uwsgi),
            "http" => Some(Protocol::Http),
            _ => None,
        }
    }
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP host (name or address; IPv6 without brackets) and port.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix stream socket path.
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            ListenAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// One listener to set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// What it speaks.
    pub protocol: Protocol,
    /// Where.
    pub addr: ListenAddr,
}

/// Socket settings shared by all listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// Listen queue length (`listen`). Default 1024.
    pub backlog: i32,
    /// Mode of unix sockets (`chmod-socket`, e.g. `0o660`). Default: left to the umask.
    pub chmod: Option<u32>,
    /// Owner of unix sockets (`chown-socket`): `USER` or `USER:GROUP`, names or ids.
    pub chown: Option<String>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            backlog: 1024,
            chmod: None,
            chown: None,
        }
    }
}

/// A bound, listening socket, ready to be served or handed to workers.
#[derive(Debug)]
pub struct BoundListener {
    /// What it speaks.
    pub protocol: Protocol,
    /// The listening socket (non-blocking, close-on-exec).
    pub socket: Socket,
    /// Where it listens, for log lines.
    pub name: String,
    /// The socket file this process created (removed by `vacuum`); `None` for TCP and for
    /// sockets inherited from systemd.
    pub created_path: Option<PathBuf>,
}

/// Why a listener could not be set up. Each message names the address.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The host name did not resolve.
    #[error("cannot resolve {addr}: {source}")]
    Resolve {
        /// The address.
        addr: ListenAddr,
        /// The resolver's error.
        source: io::Error,
    },
    /// `socket()`, `bind()` or `listen()` failed (address in use, permission denied, …).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: ListenAddr,
        /// The system error.
        source: io::Error,
    },
    /// Another process is serving on this unix socket.
    #[error("cannot listen on {addr}: another process is already serving on it")]
    InUse {
        /// The address.
        addr: ListenAddr,
    },
    /// The path exists and is not a socket; it is left alone.
    #[error("cannot listen on {addr}: the path exists and is not a socket")]
    NotASocket {
        /// The address.
        addr: ListenAddr,
    },
    /// `chmod-socket` or `chown-socket` failed, or names an unknown user or group.
    #[error("cannot set the owner or mode of {addr}: {message}")]
    Permissions {
        /// The address.
        addr: ListenAddr,
        /// What failed.
        message: String,
    },
}

/// Binds one listener.
///
/// TCP: `SO_REUSEADDR`, then `bind` and `listen(backlog)` on the first address the host
/// resolves to. Unix: a stale socket file (nobody accepts on it) is removed first, as
/// uWSGI does; then `bind`, `listen`, and `chmod-socket`/`chown-socket`.
///
/// # Errors
///
/// A [`ListenError`] naming the address.
pub fn bind(spec: &ListenSpec, options: &SocketOptions) -> Result<BoundListener, ListenError> {
    let err = |source| ListenError::Bind {
        addr: spec.addr.clone(),
        source,
    };
    match &spec.addr {
        ListenAddr::Tcp { host, port } => {
            let addr = resolve(host, *port).map_err(|source| ListenError::Resolve {
                addr: spec.addr.clone(),
                source,
            })?;
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(err)?;
            socket.set_reuse_address(true).map_err(err)?;
            if addr.is_ipv6() {
                socket.set_only_v6(true).map_err(err)?;
            }
            socket.bind(&addr.into()).map_err(err)?;
            socket.listen(options.backlog).map_err(err)?;
            socket.set_nonblocking(true).map_err(err)?;
            let name = socket
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .map_or_else(|| spec.addr.to_string(), |a| a.to_string());
            Ok(BoundListener {
                protocol: spec.protocol,
                socket,
                name,
                created_path: None,
            })
        }
        ListenAddr::Unix(path) => {
            remove_stale_socket(path, &spec.addr)?;
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(err)?;
            socket
                .bind(&SockAddr::unix(path).map_err(err)?)
                .map_err(err)?;
            socket.listen(options.backlog).map_err(err)?;
            socket.set_nonblocking(true).map_err(err)?;
            let listener = BoundListener {
                protocol: spec.protocol,
                socket,
                name: spec.addr.to_string(),
                created_path: Some(path.clone()),
            };
            set_permissions(path, options).map_err(|message| ListenError::Permissions {
                addr: spec.addr.clone(),
                message,
            })?;
            Ok(listener)
        }
    }
}

/// Sets up every listener: sockets inherited from systemd are matched to specs by their
/// address; the rest are bound. Inherited sockets that match no spec are used with
/// `default_protocol` when there are no specs at all (pure socket activation), and
/// otherwise closed with a warning.
///
/// # Errors
///
/// The first [`ListenError`].
pub fn bind_all(
    specs: &[ListenSpec],
    options: &SocketOptions,
    inherited: Vec<Socket>,
    default_protocol: Protocol,
) -> Result<Vec<BoundListener>, ListenError> {
    let mut inherited: Vec<Option<Socket>> = inherited.into_iter().map(Some).collect();
    let mut out = Vec::new();
    for spec in specs {
        let found = inherited
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|s| same_address(s, &spec.addr)))
            .and_then(Option::take);
        match found {
            Some(socket) => out.push(adopt(socket, spec.protocol)),
            None => out.push(bind(spec, options)?),
        }
    }
    for socket in inherited.into_iter().flatten() {
        if specs.is_empty() {
            out.push(adopt(socket, default_protocol));
        } else {
            tracing::warn!(
                "closing a socket passed by systemd that matches no configured listener: {}",
                describe(&socket)
            );
        }
    }
    Ok(out)
}

/// Wraps an inherited listening socket.
pub(crate) fn adopt(socket: Socket, protocol: Protocol) -> BoundListener {
    let _ = socket.set_nonblocking(true);
    let _ = socket.set_cloexec(true);
    BoundListener {
        protocol,
        name: describe(&socket),
        socket,
        created_path: None,
    }
}

fn describe(socket: &Socket) -> String {
    match socket.local_addr() {
        Ok(addr) => match (addr.as_socket(), addr.as_pathname()) {
            (Some(a), _) => a.to_string(),
            (None, Some(p)) => format!("unix:{}", p.display()),
            _ => "unnamed socket".to_string(),
        },
        Err(e) => format!("socket ({e})"),
    }
}

fn same_address(socket: &Socket, addr: &ListenAddr) -> bool {
    let Ok(local) = socket.local_addr() else {
        return false;
    };
    match addr {
        ListenAddr::Tcp { host, port } => match (local.as_socket(), resolve(host, *port)) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        ListenAddr::Unix(path) => local.as_pathname() == Some(path.as_path()),
    }
}

fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address"))
}

fn remove_stale_socket(path: &Path, addr: &ListenAddr) -> Result<(), ListenError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket { addr: addr.clone() });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ListenError::InUse { addr: addr.clone() }),
        Err(_) => {
            tracing::info!("removing stale socket file {}", path.display());
            std::fs::remove_file(path).map_err(|source| ListenError::Bind {
                addr: addr.clone(),
                source,
            })
        }
    }
}

fn set_permissions(path: &Path, options: &SocketOptions) -> Result<(), String> {
    if let Some(spec) = &options.chown {
        let (uid, gid) = parse_owner(spec)?;
        nix::unistd::chown(path, uid, gid).map_err(|e| format!("chown {spec}: {e}"))?;
    }
    if let Some(mode) = options.chmod {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {mode:o}: {e}"))?;
    }
    Ok(())
}

/// Parses `USER` or `USER:GROUP` (names or numeric ids).
///
/// # Errors
///
/// A message naming the unknown user or group.
pub fn parse_owner(spec: &str) -> Result<(Option<Uid>, Option<Gid>), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = if user.is_empty() {
        None
    } else {
        Some(lookup_user(user)?)
    };
    let gid = match group {
        Some(g) if !g.is_empty() => Some(lookup_group(g)?),
        _ => None,
    };
    Ok((uid, gid))
}

/// A user name or numeric id.
///
/// # Errors
///
/// A message naming the user when it does not exist.
pub fn lookup_user(user: &str) -> Result<Uid, String> {
    if let Ok(id) = user.parse::<u32>() {
        return Ok(Uid::from_raw(id));
    }
    match User::from_name(user) {
        Ok(Some(u)) => Ok(u.uid),
        Ok(None) => Err(format!("no user named {user}")),
        Err(e) => Err(format!("looking up user {user}: {e}")),
    }
}

/// A group name or numeric id.
///
/// # Errors
///
/// A message naming the group when it does not exist.
pub fn lookup_group(group: &str) -> Result<Gid, String> {
    if let Ok(id) = group.parse::<u32>() {
        return Ok(Gid::from_raw(id));
    }
    match Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(format!("no group named {group}")),
        Err(e) => Err(format!("looking up group {group}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ferrule-listen-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn tcp_and_unix_with_mode_and_stale_file() {
        let tcp = bind(
            &ListenSpec {
                protocol: Protocol::Http,
                addr: ListenAddr::Tcp {
                    host: "127.0.0.1".into(),
                    port: 0,
                },
            },
            &SocketOptions::default(),
        )
        .unwrap();
        assert!(tcp.name.starts_with("127.0.0.1:"));

        let path = temp("unix").join("app.sock");
        let spec = ListenSpec {
            protocol: Protocol::Uwsgi,
            addr: ListenAddr::Unix(path.clone()),
        };
        let options = SocketOptions {
            chmod: Some(0o660),
            ..SocketOptions::default()
        };
        let first = bind(&spec, &options).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        // Someone is listening: refused, and the file is left alone.
        assert!(matches!(
            bind(&spec, &options),
            Err(ListenError::InUse { .. })
        ));
        drop(first);
        // Nobody listens any more: the stale file is replaced.
        let again = bind(&spec, &options).unwrap();
        assert_eq!(again.created_path.as_deref(), Some(path.as_path()));
        // A regular file is never removed.
        let file = temp("unix").join("not-a-socket");
        std::fs::write(&file, "x").unwrap();
        let spec = ListenSpec {
            protocol: Protocol::Uwsgi,
            addr: ListenAddr::Unix(file.clone()),
        };
        assert!(matches!(
            bind(&spec, &options),
            Err(ListenError::NotASocket { .. })
        ));
        assert!(file.exists());
    }

    #[test]
    fn inherited_sockets_match_by_address() {
        let inherited = bind(
            &ListenSpec {
                protocol: Protocol::Uwsgi,
                addr: ListenAddr::Tcp {
                    host: "127.0.0.1".into(),
                    port: 0,
                },
            },
            &SocketOptions::default(),
        )
        .unwrap();
        let port = inherited
            .socket
            .local_addr()
            .unwrap()
            .as_socket()
            .unwrap()
            .port();
        let specs = [ListenSpec {
            protocol: Protocol::Http,
            addr: ListenAddr::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
        }];
        // Binding the same port again would fail: it must reuse the inherited socket.
        let out = bind_all(
            &specs,
            &SocketOptions::default(),
            vec![inherited.socket],
            Protocol::Uwsgi,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].protocol, Protocol::Http);
        assert!(out[0].created_path.is_none());
    }

    #[test]
    fn owners() {
        assert_eq!(
            parse_owner("0:0").unwrap(),
            (Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
        );
        assert_eq!(parse_owner("root").unwrap(), (Some(Uid::from_raw(0)), None));
        assert!(
            parse_owner("no-such-user-ferrule")
                .unwrap_err()
                .contains("no user named")
        );
        assert!(
            parse_owner("root:no-such-group-ferrule")
                .unwrap_err()
                .contains("no group")
        );
    }
}

//! uWSGI-compatible options for the `ferrule` binary: the option table, the command line and
//! ini files (`parse`), and the typed result ([`Options`]).
//!
//! The rules follow uWSGI: options apply in order (an `--ini` file's keys take the place of
//! the `--ini` argument), a scalar option given twice keeps the last value, list options
//! (`socket`, `pythonpath`, `mount`, …) collect every value. Unknown ini keys are uWSGI
//! placeholders: usable as `%(name)`, and warned about when never used. Options that would
//! change behaviour and that ferrule does not implement are errors, never silently dropped.

mod parse;
mod table;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use parse::{Origin, Parsed, Setting, command, parse_args};
pub use table::{Kind, OPTIONS, OptSpec, find};

/// What is wrong with the options. Each message names the option and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// clap refused the command line (also `--help` and `--version`: print and exit 0).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// An ini file could not be read.
    #[error("{from}: cannot read ini file {}: {source}", file.display())]
    ReadIni {
        /// The file.
        file: PathBuf,
        /// Where it was named.
        from: Origin,
        /// The I/O error.
        source: io::Error,
    },
    /// An ini file is not valid ini, or lacks the section.
    #[error("ini file {}: {message}", file.display())]
    BadIni {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// ini files include each other more than 8 deep.
    #[error("ini files include each other too deeply (at {})", file.display())]
    IniDepth {
        /// The file that would go one level too deep.
        file: PathBuf,
    },
    /// A uWSGI option that ferrule does not support and that would change behaviour.
    #[error("{origin}: option `{name}` is not supported by ferrule: {why}")]
    Unsupported {
        /// Where it came from.
        origin: Origin,
        /// The option.
        name: &'static str,
        /// What to do instead.
        why: &'static str,
    },
    /// An unknown ini key with `strict` on.
    #[error("{origin}: unknown option `{name}` (strict mode)")]
    UnknownStrict {
        /// Where it came from.
        origin: Origin,
        /// The key.
        name: String,
    },
    /// A value that does not fit its option.
    #[error("{origin}: `{name} = {value}`: {message}")]
    BadValue {
        /// Where it came from.
        origin: Origin,
        /// The option.
        name: String,
        /// The value as given.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// Options that cannot work together, or a missing one.
    #[error("{0}")]
    Conflict(String),
}

/// The address part of a listener option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `HOST:PORT` or `:PORT` (all IPv4 interfaces, as uWSGI does). The host may be a name.
    Tcp {
        /// Host name or address; `0.0.0.0` for `:PORT`. IPv6 without brackets.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A unix socket path (any value without a `:`, as uWSGI reads it).
    Unix(PathBuf),
}

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The binary uwsgi protocol (nginx `uwsgi_pass`).
    Uwsgi,
    /// HTTP/1.1.
    Http,
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// What it speaks.
    pub protocol: Protocol,
    /// Where it listens.
    pub address: Address,
}

/// One `mount = /PREFIX=APP` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The prefix (`/app`), without a trailing slash; `""` mounts at the root.
    pub prefix: String,
    /// The app: `module:callable` or a path to a `.py` file.
    pub app: String,
}

/// Where the app comes from and how Python is set up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppOptions {
    /// `module`: `module`, `module:callable` or `module:factory()`.
    pub module: Option<String>,
    /// `wsgi-file`: a Python file holding the app.
    pub wsgi_file: Option<PathBuf>,
    /// `callable`: the app's name in the module or file. Default: `application`.
    pub callable: Option<String>,
    /// `chdir`.
    pub chdir: Option<PathBuf>,
    /// `env` entries (`KEY`, `VALUE`), set before the app is loaded, in order.
    pub env: Vec<(String, String)>,
    /// `pythonpath` entries, in order.
    pub pythonpath: Vec<PathBuf>,
    /// `virtualenv` / `venv` / `home`.
    pub virtualenv: Option<PathBuf>,
    /// `mount` entries.
    pub mounts: Vec<Mount>,
    /// `manage-script-name`.
    pub manage_script_name: bool,
}

/// The typed options of one `ferrule` run, with uWSGI's defaults where uWSGI has one that
/// works, and better ones where uWSGI's is known to hurt (noted per field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `socket` / `http-socket` / `http` (+ `protocol`), in order.
    pub listeners: Vec<Listener>,
    /// `protocol`: what `socket` listeners, and sockets passed by systemd, speak. Default
    /// uwsgi.
    pub socket_protocol: Protocol,
    /// `listen`: backlog of each socket. Default 1024 (uWSGI: 100, which overflows under load).
    pub listen: u32,
    /// `chmod-socket`: mode of unix sockets. Default: left to the umask.
    pub chmod_socket: Option<u32>,
    /// `chown-socket`: owner of unix sockets, `USER` or `USER:GROUP`.
    pub chown_socket: Option<String>,
    /// `vacuum`: remove unix sockets and the pidfile on exit. Default off.
    pub vacuum: bool,
    /// `buffer-size`: largest uwsgi vars block or HTTP head, in bytes. Default 65535
    /// (uWSGI: 4096, which makes nginx answer 502 to requests with big cookies).
    pub buffer_size: u16,
    /// `socket-timeout`: client read/write timeout. Default 4 s (uWSGI's).
    pub socket_timeout: Duration,
    /// `post-buffering`: bytes of body read before calling the app (0 = off). Default 0.
    pub post_buffering: u64,
    /// `limit-post`: largest request body in bytes. Default: none.
    pub limit_post: Option<u64>,
    /// The app.
    pub app: AppOptions,
    /// `master`. Default off (then one worker runs in the foreground process).
    pub master: bool,
    /// `processes` / `workers`. Default 1.
    pub processes: usize,
    /// `threads`. Default 1.
    pub threads: usize,
    /// `harakiri`: request time limit. Default none.
    pub harakiri: Option<Duration>,
    /// `max-requests`: recycle a worker after this many requests. Default none.
    pub max_requests: Option<u64>,
    /// `uid`.
    pub uid: Option<String>,
    /// `gid`.
    pub gid: Option<String>,
    /// `pidfile`.
    pub pidfile: Option<PathBuf>,
    /// `daemonize`: log file to detach to.
    pub daemonize: Option<PathBuf>,
    /// `disable-logging`: no access log. Default off.
    pub disable_logging: bool,
    /// `logto`: log file. Default stderr.
    pub logto: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listeners: Vec::new(),
            socket_protocol: Protocol::Uwsgi,
            listen: 1024,
            chmod_socket: None,
            chown_socket: None,
            vacuum: false,
            buffer_size: u16::MAX,
            socket_timeout: Duration::from_secs(4),
            post_buffering: 0,
            limit_post: None,
            app: AppOptions::default(),
            master: false,
            processes: 1,
            threads: 1,
            harakiri: None,
            max_requests: None,
            uid: None,
            gid: None,
            pidfile: None,
            daemonize: None,
            disable_logging: false,
            logto: None,
        }
    }
}

/// uWSGI's booleans: empty, `true`/`1`/`yes`/`on`/`y` and `false`/`0`/`no`/`off`/`n`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" | "on" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

/// Parses a listener address as uWSGI does: with a `:` it is TCP (`:PORT` is all IPv4
/// interfaces, `[v6]:PORT` an IPv6 address), otherwise a unix socket path.
pub fn parse_address(value: &str) -> Result<Address, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("empty address".into());
    }
    let Some((host, port)) = value.rsplit_once(':') else {
        return Ok(Address::Unix(PathBuf::from(value)));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` is not a TCP port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(Address::Tcp {
        host: host.to_string(),
        port,
    })
}

impl Options {
    /// Parses a command line and its ini files into options.
    ///
    /// Returns the options and the warnings to log (ignored options, unknown ini keys).
    ///
    /// # Errors
    ///
    /// Any [`OptionsError`]: unreadable ini, unsupported option, bad value, or no app /
    /// no listener.
    pub fn from_args<I, T>(
        args: I,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Options, Vec<String>), OptionsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let parsed = parse_args(args, env)?;
        let options = Options::from_settings(&parsed.settings)?;
        // systemd socket activation hands listeners over in LISTEN_FDS.
        if options.listeners.is_empty() && env("LISTEN_FDS").is_none() {
            return Err(OptionsError::Conflict(
                "no listener: give --socket, --http-socket or --http (or a LISTEN_FDS socket from systemd)"
                    .into(),
            ));
        }
        Ok((options, parsed.warnings))
    }

    /// Builds typed options from settings in application order.
    ///
    /// # Errors
    ///
    /// [`OptionsError::BadValue`] naming the first value that does not fit its option;
    /// [`OptionsError::Conflict`] when no app is given. Listeners may be empty here (systemd
    /// can hand them over); [`Options::from_args`] checks that.
    pub fn from_settings(settings: &[Setting]) -> Result<Options, OptionsError> {
        let mut o = Options::default();
        let mut sockets: Vec<(Address, bool)> = Vec::new();
        let mut socket_protocol = Protocol::Uwsgi;
        for s in settings {
            let bad = |message: String| OptionsError::BadValue {
                origin: s.origin.clone(),
                name: s.spec.name.to_string(),
                value: s.value.clone(),
                message,
            };
            let flag = || parse_bool(&s.value).ok_or_else(|| bad("expected true or false".into()));
            let number = || -> Result<u64, OptionsError> {
                s.value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| bad("expected a whole number".into()))
            };
            let path = || PathBuf::from(s.value.trim());
            match s.spec.name {
                "socket" => sockets.push((parse_address(&s.value).map_err(bad)?, false)),
                "http-socket" | "http" => {
                    sockets.push((parse_address(&s.value).map_err(bad)?, true))
                }
                "protocol" => {
                    socket_protocol = match s.value.trim() {
                        "uwsgi" => Protocol::Uwsgi,
                        "http" => Protocol::Http,
                        other => {
                            return Err(bad(format!("unknown protocol `{other}` (uwsgi or http)")));
                        }
                    }
                }
                "listen" => {
                    o.listen = u32::try_from(number()?)
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("expected a backlog between 1 and 4294967295".into()))?
                }
                "module" => o.app.module = Some(s.value.trim().to_string()),
                "wsgi-file" => o.app.wsgi_file = Some(path()),
                "callable" => o.app.callable = Some(s.value.trim().to_string()),
                "chdir" => o.app.chdir = Some(path()),
                "pythonpath" => o.app.pythonpath.push(path()),
                "env" => {
                    let (key, value) = s
                        .value
                        .split_once('=')
                        .filter(|(k, _)| !k.trim().is_empty())
                        .ok_or_else(|| bad("expected KEY=VALUE".into()))?;
                    o.app.env.push((key.trim().to_string(), value.to_string()));
                }
                "virtualenv" => o.app.virtualenv = Some(path()),
                "mount" => {
                    let (prefix, app) = s
                        .value
                        .split_once('=')
                        .ok_or_else(|| bad("expected /PREFIX=APP".into()))?;
                    let prefix = prefix.trim().trim_end_matches('/');
                    if !prefix.is_empty() && !prefix.starts_with('/') {
                        return Err(bad("the mount prefix must start with /".into()));
                    }
                    o.app.mounts.push(Mount {
                        prefix: prefix.to_string(),
                        app: app.trim().to_string(),
                    });
                }
                "manage-script-name" => o.app.manage_script_name = flag()?,
                "need-app" | "lazy-apps" | "enable-threads" | "die-on-term" | "strict" => {
                    flag()?;
                }
                "master" => o.master = flag()?,
                "processes" => {
                    o.processes = usize::try_from(number()?)
                        .ok()
                        .filter(|n| (1..=1024).contains(n))
                        .ok_or_else(|| bad("expected 1 to 1024 processes".into()))?
                }
                "threads" => {
                    o.threads = usize::try_from(number()?)
                        .ok()
                        .filter(|n| (1..=4096).contains(n))
                        .ok_or_else(|| bad("expected 1 to 4096 threads".into()))?
                }
                "harakiri" => {
                    let secs = number()?;
                    o.harakiri = (secs > 0).then(|| Duration::from_secs(secs));
                }
                "max-requests" => {
                    let n = number()?;
                    o.max_requests = (n > 0).then_some(n);
                }
                "uid" => o.uid = Some(s.value.trim().to_string()),
                "gid" => o.gid = Some(s.value.trim().to_string()),
                "pidfile" => o.pidfile = Some(path()),
                "daemonize" => o.daemonize = Some(path()),
                "chmod-socket" => {
                    let mode = u32::from_str_radix(s.value.trim(), 8)
                        .ok()
                        .filter(|m| *m <= 0o777)
                        .ok_or_else(|| bad("expected an octal mode such as 660".into()))?;
                    o.chmod_socket = Some(mode);
                }
                "chown-socket" => o.chown_socket = Some(s.value.trim().to_string()),
                "vacuum" => o.vacuum = flag()?,
                "buffer-size" => {
                    let n = number()?;
                    if n < 512 {
                        return Err(bad(
                            "buffer-size below 512 bytes cannot hold a request".into()
                        ));
                    }
                    // The uwsgi datasize field is 16 bits: more cannot be used.
                    o.buffer_size = u16::try_from(n).unwrap_or(u16::MAX);
                }
                "socket-timeout" => {
                    let secs = number()?;
                    if secs == 0 {
                        return Err(bad("the timeout must be at least 1 second".into()));
                    }
                    o.socket_timeout = Duration::from_secs(secs);
                }
                "post-buffering" => o.post_buffering = number()?,
                "limit-post" => {
                    let n = number()?;
                    o.limit_post = (n > 0).then_some(n);
                }
                "disable-logging" => o.disable_logging = flag()?,
                "logto" => o.logto = Some(path()),
                other => unreachable!("option `{other}` is in the table but not handled"),
            }
        }
        o.socket_protocol = socket_protocol;
        o.listeners = sockets
            .into_iter()
            .map(|(address, http)| Listener {
                protocol: if http {
                    Protocol::Http
                } else {
                    socket_protocol
                },
                address,
            })
            .collect();
        if o.app.module.is_none() && o.app.wsgi_file.is_none() && o.app.mounts.is_empty() {
            return Err(OptionsError::Conflict(
                "no app: give --module, --wsgi-file or --mount".into(),
            ));
        }
        Ok(o)
    }
}

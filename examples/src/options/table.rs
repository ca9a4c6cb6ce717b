//! The table of uWSGI options ferrule knows: what each takes, and what it does here.

/// How an option takes values and what ferrule does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// On/off. CLI: `--name` alone. ini: `name = true|false|1|0|yes|no|on|off` (empty is on).
    Flag,
    /// One value; a later occurrence replaces an earlier one (uWSGI's rule for scalars).
    Value,
    /// A value that may be left out on the CLI (`--chmod-socket` alone means 666).
    OptionalValue(&'static str),
    /// Repeatable; every occurrence adds a value (`socket`, `pythonpath`, `mount`, …).
    List,
    /// Accepted so existing files run, but changes nothing here; a warning names it.
    Ignored {
        /// Whether it takes a value on the CLI.
        takes_value: bool,
        /// Why ignoring it is safe.
        why: &'static str,
    },
    /// A uWSGI option that would change behaviour and that ferrule does not support: an error.
    Unsupported {
        /// Whether it takes a value on the CLI.
        takes_value: bool,
        /// What to do instead.
        why: &'static str,
    },
}

/// One option: its uWSGI name, aliases, short flag, kind and help text.
#[derive(Debug)]
pub struct OptSpec {
    /// The uWSGI long name (`socket`, `http-socket`, …).
    pub name: &'static str,
    /// Other long names uWSGI accepts for it.
    pub aliases: &'static [&'static str],
    /// uWSGI's short flag, if any.
    pub short: Option<char>,
    /// How it takes values.
    pub kind: Kind,
    /// The `--help` group.
    pub group: &'static str,
    /// One line of help.
    pub help: &'static str,
}

const LISTEN: &str = "Listeners";
const APP: &str = "Application";
const PROC: &str = "Processes";
const SOCK: &str = "Sockets and requests";
const LOG: &str = "Logging";
const CONF: &str = "Configuration";
const COMPAT: &str = "Accepted for compatibility (no effect)";

macro_rules! opt {
    ($name:literal, $aliases:expr, $short:expr, $kind:expr, $group:expr, $help:literal) => {
        OptSpec {
            name: $name,
            aliases: $aliases,
            short: $short,
            kind: $kind,
            group: $group,
            help: $help,
        }
    };
}

const fn ignored(takes_value: bool, why: &'static str) -> Kind {
    Kind::Ignored { takes_value, why }
}

const fn unsupported(takes_value: bool, why: &'static str) -> Kind {
    Kind::Unsupported { takes_value, why }
}

/// Every option ferrule recognises, in `--help` order.
#[rustfmt::skip]
pub static OPTIONS: &[OptSpec] = &[
    // Listeners
    opt!("socket", &["uwsgi-socket"], Some('s'), Kind::List, LISTEN,
        "uwsgi-protocol listener: HOST:PORT, :PORT or a unix socket path (repeatable)"),
    opt!("http-socket", &[], None, Kind::List, LISTEN,
        "HTTP/1.1 listener: HOST:PORT, :PORT or a unix socket path (repeatable)"),
    opt!("http", &[], None, Kind::List, LISTEN,
        "same as --http-socket: ferrule has no separate HTTP router process, the workers speak HTTP themselves"),
    opt!("protocol", &["socket-protocol"], None, Kind::Value, LISTEN,
        "protocol of --socket listeners: uwsgi (default) or http"),
    opt!("listen", &[], Some('l'), Kind::Value, LISTEN,
        "listen queue (backlog) of each socket [default: 1024]"),
    // Application
    opt!("module", &["wsgi"], Some('w'), Kind::Value, APP,
        "WSGI app to load: module, module:callable or module:factory()"),
    opt!("wsgi-file", &["file"], None, Kind::Value, APP,
        "load the WSGI app from this Python file"),
    opt!("callable", &[], None, Kind::Value, APP,
        "name of the WSGI callable in the module or file [default: application]"),
    opt!("chdir", &[], None, Kind::Value, APP,
        "change to this directory before binding sockets and loading the app"),
    opt!("env", &[], None, Kind::List, APP,
        "set an environment variable before loading the app: KEY=VALUE (repeatable)"),
    opt!("pythonpath", &["python-path", "pp"], None, Kind::List, APP,
        "add a directory to sys.path (repeatable)"),
    opt!("virtualenv", &["venv", "home", "pyhome"], Some('H'), Kind::Value, APP,
        "virtualenv (made with python3 -m venv) whose packages the app imports"),
    opt!("mount", &[], None, Kind::List, APP,
        "mount an app at a prefix: /PREFIX=module:callable or /PREFIX=path/to/file.py (repeatable)"),
    opt!("manage-script-name", &[], None, Kind::Flag, APP,
        "move the matching mount prefix from PATH_INFO to SCRIPT_NAME"),
    opt!("need-app", &[], None, Kind::Flag, APP,
        "exit if the app cannot be loaded (always the case in ferrule; accepted)"),
    opt!("lazy-apps", &["lazy"], None, Kind::Flag, APP,
        "load the app in each worker after fork (ferrule always does; accepted)"),
    // Processes
    opt!("master", &[], Some('M'), Kind::Flag, PROC,
        "run a master process that starts, watches and reloads the workers"),
    opt!("processes", &["workers"], Some('p'), Kind::Value, PROC,
        "number of worker processes [default: 1]"),
    opt!("threads", &[], None, Kind::Value, PROC,
        "Python threads per worker [default: 1: the app runs on the I/O thread]"),
    opt!("enable-threads", &[], Some('T'), Kind::Flag, PROC,
        "accepted: Python threads are always enabled in ferrule"),
    opt!("harakiri", &[], Some('t'), Kind::Value, PROC,
        "seconds one request may take before its worker is killed and replaced"),
    opt!("max-requests", &[], Some('R'), Kind::Value, PROC,
        "recycle a worker after this many requests"),
    opt!("die-on-term", &[], None, Kind::Flag, PROC,
        "accepted: SIGTERM always stops ferrule gracefully"),
    opt!("uid", &[], None, Kind::Value, PROC,
        "user (name or id) to run as after binding sockets, when started as root"),
    opt!("gid", &[], None, Kind::Value, PROC,
        "group (name or id) to run as after binding sockets, when started as root"),
    opt!("pidfile", &[], None, Kind::Value, PROC,
        "write the master's pid to this file"),
    opt!("daemonize", &[], Some('d'), Kind::Value, PROC,
        "detach into the background and log to this file"),
    // Sockets and requests
    opt!("chmod-socket", &[], Some('C'), Kind::OptionalValue("666"), SOCK,
        "permissions of unix sockets, octal as uWSGI reads it (660, 664, 666) [alone: 666]"),
    opt!("chown-socket", &[], None, Kind::Value, SOCK,
        "owner of unix sockets: USER or USER:GROUP (names or ids)"),
    opt!("vacuum", &[], None, Kind::Flag, SOCK,
        "remove unix sockets and the pidfile on exit"),
    opt!("buffer-size", &[], Some('b'), Kind::Value, SOCK,
        "largest uwsgi vars block / HTTP request head, in bytes [default: 65535]"),
    opt!("socket-timeout", &[], Some('z'), Kind::Value, SOCK,
        "seconds to wait on a client read or write [default: 4]"),
    opt!("post-buffering", &[], None, Kind::Value, SOCK,
        "read request bodies up to this many bytes into memory (more spills to a temp file) before calling the app"),
    opt!("limit-post", &[], None, Kind::Value, SOCK,
        "largest request body, in bytes (larger: 413 on HTTP, close on uwsgi)"),
    // Logging
    opt!("disable-logging", &[], Some('L'), Kind::Flag, LOG,
        "no access log line per request"),
    opt!("logto", &["logto2"], None, Kind::Value, LOG,
        "append logs to this file instead of stderr"),
    // Configuration
    opt!("ini", &[], None, Kind::List, CONF,
        "read options from the [uwsgi] section of an ini file (FILE or FILE:SECTION)"),
    opt!("strict", &[], None, Kind::Flag, CONF,
        "unknown keys in ini files are errors instead of placeholders"),
    // Accepted, no effect
    opt!("plugin", &["plugins"], None, ignored(true, "the Python support is built in"), COMPAT, "ignored"),
    opt!("single-interpreter", &[], Some('i'), ignored(false, "ferrule always uses one interpreter per worker"), COMPAT, "ignored"),
    opt!("thunder-lock", &[], None, ignored(false, "ferrule does not use uWSGI's accept lock"), COMPAT, "ignored"),
    opt!("no-orphans", &[], None, ignored(false, "workers always exit when the master dies"), COMPAT, "ignored"),
    opt!("http-keepalive", &[], None, ignored(true, "HTTP keep-alive is always on"), COMPAT, "ignored"),
    opt!("log-date", &["logdate"], None, ignored(true, "log lines always carry a timestamp"), COMPAT, "ignored"),
    opt!("memory-report", &[], None, ignored(false, "not reported"), COMPAT, "ignored"),
    opt!("auto-procname", &[], None, ignored(false, "process titles are not changed"), COMPAT, "ignored"),
    opt!("procname-prefix", &["procname-prefix-spaced"], None, ignored(true, "process titles are not changed"), COMPAT, "ignored"),
    opt!("max-fd", &[], None, ignored(true, "file descriptor limits are left to the system"), COMPAT, "ignored"),
    opt!("reload-mercy", &["worker-reload-mercy"], None, ignored(true, "graceful stop uses its own bound"), COMPAT, "ignored"),
    opt!("stats", &[], None, ignored(true, "no stats server"), COMPAT, "ignored"),
    opt!("py-tracebacker", &[], None, ignored(true, "tracebacks go to the error log"), COMPAT, "ignored"),
    opt!("harakiri-verbose", &[], None, ignored(false, "harakiri always logs the request it kills"), COMPAT, "ignored"),
    opt!("http-timeout", &[], None, ignored(true, "there is no HTTP router process; --socket-timeout applies"), COMPAT, "ignored"),
    opt!("offload-threads", &[], None, ignored(true, "responses are written by the worker's I/O loop"), COMPAT, "ignored"),
    opt!("log-4xx", &[], None, ignored(false, "every request is logged unless --disable-logging"), COMPAT, "ignored"),
    opt!("log-5xx", &[], None, ignored(false, "every request is logged unless --disable-logging"), COMPAT, "ignored"),
    opt!("log-format", &["logformat"], None, ignored(true, "the access log has one fixed format (see --help)"), COMPAT, "ignored"),
    opt!("ignore-sigpipe", &[], None, ignored(false, "SIGPIPE never kills a ferrule worker"), COMPAT, "ignored"),
    opt!("ignore-write-errors", &[], None, ignored(false, "a client that went away is logged at debug level only"), COMPAT, "ignored"),
    opt!("disable-write-exception", &[], None, ignored(false, "a client that went away never raises in the app"), COMPAT, "ignored"),
    // Not supported (would change behaviour)
    opt!("emperor", &[], None, unsupported(true, "run one ferrule per app under systemd or supervisor"), COMPAT, "not supported"),
    opt!("cheaper", &[], None, unsupported(true, "ferrule runs a fixed number of workers (--processes)"), COMPAT, "not supported"),
    opt!("spooler", &[], None, unsupported(true, "use a task queue (Celery, RQ) instead"), COMPAT, "not supported"),
    opt!("mule", &[], None, unsupported(true, "run background work in its own process"), COMPAT, "not supported"),
    opt!("static-map", &[], None, unsupported(true, "serve static files with ferrule-proxy --static or nginx"), COMPAT, "not supported"),
    opt!("route", &[], None, unsupported(true, "route with ferrule-proxy or nginx"), COMPAT, "not supported"),
    opt!("https", &[], None, unsupported(true, "terminate TLS in ferrule-proxy or nginx"), COMPAT, "not supported"),
    opt!("gevent", &[], None, unsupported(true, "use --threads"), COMPAT, "not supported"),
    opt!("async", &[], None, unsupported(true, "use --threads"), COMPAT, "not supported"),
    opt!("touch-reload", &[], None, unsupported(true, "send SIGHUP to the master to reload"), COMPAT, "not supported"),
    opt!("py-autoreload", &[], None, unsupported(true, "send SIGHUP to the master to reload"), COMPAT, "not supported"),
    opt!("attach-daemon", &[], None, unsupported(true, "run other daemons under systemd or supervisor"), COMPAT, "not supported"),
    opt!("cron", &[], None, unsupported(true, "use systemd timers or cron"), COMPAT, "not supported"),
    opt!("add-header", &[], None, unsupported(true, "add headers in the app or the front proxy"), COMPAT, "not supported"),
    opt!("exec-asap", &["exec-pre-app", "exec-post-app", "hook-asap", "hook-pre-app"], None,
        unsupported(true, "run setup commands from the service manager (systemd ExecStartPre=)"), COMPAT, "not supported"),
    opt!("vhost", &[], None, unsupported(false, "dynamic apps chosen by the client are unsafe; use --mount"), COMPAT, "not supported"),
    opt!("umask", &[], None, unsupported(true, "set the umask in the service manager (systemd UMask=)"), COMPAT, "not supported"),
    opt!("cgi-mode", &[], None, unsupported(false, "ferrule always sends an HTTP status line"), COMPAT, "not supported"),
];

/// Looks an option up by its name or one of its aliases.
pub fn find(name: &str) -> Option<&'static OptSpec> {
    OPTIONS
        .iter()
        .find(|o| o.name == name || o.aliases.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique() {
        let mut seen = std::collections::HashSet::new();
        let mut shorts = std::collections::HashSet::new();
        for o in OPTIONS {
            for n in std::iter::once(&o.name).chain(o.aliases) {
                assert!(seen.insert(*n), "duplicate option name {n}");
            }
            if let Some(s) = o.short {
                assert!(shorts.insert(s), "duplicate short -{s}");
            }
        }
        assert_eq!(find("workers").unwrap().name, "processes");
        assert!(find("nope").is_none());
    }
}

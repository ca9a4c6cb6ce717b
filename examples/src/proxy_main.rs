//! The `ferrule-proxy` binary: command-line parsing and composition of
//! [`proxy_core::server`]. Quick flags for the common case, or `--config FILE` (TOML).
//!
//! Signals: SIGTERM stops gracefully (requests in flight finish), SIGINT and SIGQUIT stop at
//! once, SIGHUP re-reads the configuration (new connections use it; established ones keep
//! theirs; a broken file is logged and the old configuration stays).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};
use proxy_core::config::{ProxyConfig, QuickFlags};
use proxy_core::server::{Options, Server, run_with_signals, runtime};

fn command() -> Command {
    Command::new("ferrule-proxy")
        .about("The ferrule front proxy: static files, uwsgi and HTTP upstreams, TLS")
        .after_help(
            "Without --config, one server listens on every --listen address: --static \
             prefixes serve files, / goes to the --uwsgi-pass pool or the --proxy-pass \
             server.\n\nSignals: SIGTERM stops gracefully, SIGINT/SIGQUIT stop at once, \
             SIGHUP re-reads the configuration. Logging: FERRULE_LOG (e.g. info, \
             warn,access=off).",
        )
        .arg(
            Arg::new("listen")
                .long("listen")
                .value_name("ADDR")
                .action(ArgAction::Append)
                .help("Listen on ADDR (PORT, IP:PORT or [IPv6]:PORT); repeatable"),
        )
        .arg(
            Arg::new("uwsgi-pass")
                .long("uwsgi-pass")
                .value_name("unix:PATH|HOST:PORT")
                .action(ArgAction::Append)
                .help("Pass requests to a uwsgi server; repeat for a round-robin pool"),
        )
        .arg(
            Arg::new("proxy-pass")
                .long("proxy-pass")
                .value_name("http://HOST:PORT|http://unix:PATH")
                .help("Pass requests to an HTTP/1.1 server"),
        )
        .arg(
            Arg::new("static")
                .long("static")
                .value_name("PREFIX=DIR")
                .action(ArgAction::Append)
                .help("Serve files under DIR at URL PREFIX; repeatable"),
        )
        .arg(
            Arg::new("workers")
                .long("workers")
                .value_name("N")
                .value_parser(clap::value_parser!(usize))
                .help("Runtime threads (default: the number of cores)"),
        )
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .conflicts_with_all(["listen", "uwsgi-pass", "proxy-pass", "static"])
                .help("Read the configuration from a TOML file"),
        )
}

fn init_logging() -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FERRULE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| e.to_string())
}

/// Where the configuration comes from, to read it again on SIGHUP.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Flags(QuickFlags),
}

impl Source {
    fn load(&self) -> Result<ProxyConfig, proxy_core::ConfigError> {
        match self {
            Source::File(path) => ProxyConfig::load(path),
            Source::Flags(flags) => ProxyConfig::from_flags(flags),
        }
    }
}

/// Runs `ferrule-proxy` with the process arguments.
pub fn main() -> ExitCode {
    let matches = command().get_matches();
    let strings = |name: &str| -> Vec<String> {
        matches
            .get_many::<String>(name)
            .map(|v| v.cloned().collect())
            .unwrap_or_default()
    };
    let source = match matches.get_one::<PathBuf>("config") {
        Some(path) => Source::File(path.clone()),
        None => Source::Flags(QuickFlags {
            listen: strings("listen"),
            uwsgi_pass: strings("uwsgi-pass"),
            proxy_pass: matches.get_one::<String>("proxy-pass").cloned(),
            statics: strings("static"),
        }),
    };
    let config = match source.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = init_logging() {
        eprintln!("ferrule-proxy: cannot set up logging: {e}");
    }
    let workers = matches
        .get_one::<usize>("workers")
        .copied()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rt = match runtime(workers) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrule-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        // Static files are served on the runtime thread, as nginx serves them from its event
        // loop: the lookups are a few cached system calls, cheaper than a thread hop.
        let options = Options {
            static_inline: true,
            ..Options::default()
        };
        let server = Server::bind(config, options)?;
        for addr in server.local_addrs() {
            tracing::info!("ferrule-proxy listening on {addr} ({workers} threads)");
        }
        run_with_signals(server, move || match source.load() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!("reload: {e}");
                None
            }
        })
        .await
    });
    match result {
        Ok(()) => {
            tracing::info!("ferrule-proxy stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrule-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The `ferrule` application server: options → logging → `chdir` → listeners → privileges →
//! master (or a single worker) → workers serving the app. Composition only: the protocol,
//! the WSGI bridge and the process runtime live in the library crates.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use pyo3::Python;
use wsgi_host::runtime::handoff::{WorkerHandoff, systemd_listeners};
use wsgi_host::runtime::listen::{
    self, BoundListener, ListenAddr, ListenSpec, SocketOptions, bind_all, lookup_group, lookup_user,
};
use wsgi_host::runtime::master::{EXIT_LOAD_FAILED, MasterConfig, run_master};
use wsgi_host::runtime::watchdog::die_with_master;
use wsgi_host::{AppSpec, AppTable, LoadError, PythonConfig, ServerConfig, Worker};

use crate::options::{Address, Options, OptionsError, Protocol};

/// Exit status for bad options or a failed set-up (listeners, privileges).
const EXIT_CONFIG: u8 = 1;

/// Runs `ferrule` with the process's arguments and environment; returns the exit status.
pub fn main() -> ExitCode {
    if let Ok(dir) = std::env::current_dir() {
        let _ = START_DIR.set(dir);
    }
    // A worker started by our master finds its sockets in the environment; read them
    // before anything else can open descriptors.
    let handoff = match WorkerHandoff::from_env() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("ferrule: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let args: Vec<OsString> = std::env::args_os().collect();
    let env = |key: &str| std::env::var(key).ok();
    let (options, warnings) = match Options::from_args(args.iter().cloned(), &env) {
        Ok(parsed) => parsed,
        Err(OptionsError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("ferrule: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if handoff.is_none()
        && let Some(log) = &options.daemonize
    {
        // Before any thread exists: daemon(3) forks.
        if let Err(e) = nix::unistd::daemon(true, false) {
            eprintln!("ferrule: cannot daemonize: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
        tracing::debug!("daemonized, logging to {}", log.display());
    }
    let log_file = options.logto.as_deref().or(options.daemonize.as_deref());
    if let Err(e) = init_logging(log_file) {
        eprintln!("ferrule: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    if handoff.is_none() {
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
    }
    if let Some(dir) = &options.app.chdir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        tracing::error!("chdir {}: {e}", dir.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    match handoff {
        Some(handoff) => worker_process(&options, handoff),
        None => master_or_single(&options, &args),
    }
}

/// The first process: binds, drops privileges, then supervises workers (master) or serves
/// itself (one process, no master).
fn master_or_single(options: &Options, args: &[OsString]) -> ExitCode {
    let listeners = match bind_listeners(options) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for l in &listeners {
        tracing::info!("{} listener on {}", l.protocol.as_str(), l.name);
    }
    if let Err(e) = drop_privileges(options) {
        tracing::error!("{e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let vacuum_paths: Vec<PathBuf> = listeners
        .iter()
        .filter_map(|l| l.created_path.clone())
        .collect();
    if options.master || options.processes > 1 {
        let config = MasterConfig {
            processes: options.processes,
            pidfile: options.pidfile.clone(),
            vacuum: options.vacuum,
            ..MasterConfig::default()
        };
        let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(&args[0]));
        let result = run_master(&config, &listeners, || {
            let mut cmd = Command::new(&program);
            cmd.args(&args[1..]);
            if let Some(dir) = START_DIR.get() {
                cmd.current_dir(dir);
            }
            cmd
        });
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::from(EXIT_CONFIG)
            }
        };
    }
    if let Some(pidfile) = &options.pidfile
        && let Err(e) = std::fs::write(pidfile, format!("{}\n", std::process::id()))
    {
        tracing::error!("cannot write pidfile {}: {e}", pidfile.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    let code = serve_worker(options, listeners, None);
    if options.vacuum {
        for path in vacuum_paths.iter().chain(options.pidfile.as_ref()) {
            let _ = std::fs::remove_file(path);
        }
    }
    code
}

/// The directory the process started in, before `chdir`: workers start there too, so
/// relative ini paths and `chdir` resolve the same way as in the master.
static START_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// A worker started by the master.
fn worker_process(options: &Options, handoff: WorkerHandoff) -> ExitCode {
    if let Err(e) = die_with_master(handoff.master_pid) {
        tracing::warn!("cannot ask to die with the master: {e}");
    }
    let mut handoff = handoff;
    let listeners = std::mem::take(&mut handoff.listeners);
    serve_worker(options, listeners, Some(handoff))
}

/// Loads the app and serves `listeners` until SIGTERM (graceful), SIGINT/SIGQUIT
/// (immediate) or `max-requests`.
fn serve_worker(
    options: &Options,
    listeners: Vec<BoundListener>,
    mut handoff: Option<WorkerHandoff>,
) -> ExitCode {
    for (key, value) in &options.app.env {
        // SAFETY: the worker has not started any thread yet (no runtime, no interpreter).
        unsafe { std::env::set_var(key, value) };
    }
    // SIGINT and SIGQUIT stop the worker at once, even while the app holds the runtime
    // thread (threads = 1): the handler itself ends the process (async-signal-safe _exit).
    let now = Arc::new(std::sync::atomic::AtomicBool::new(true));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGQUIT] {
        if let Err(e) =
            signal_hook::flag::register_conditional_shutdown(signal, 0, Arc::clone(&now))
        {
            tracing::warn!("cannot install the immediate-stop handler for signal {signal}: {e}");
        }
    }
    let mut python = PythonConfig::new();
    for dir in &options.app.pythonpath {
        python.pythonpath(dir);
    }
    if let Some(venv) = &options.app.virtualenv {
        python.virtualenv(venv);
    }
    if let Err(e) = wsgi_host::initialize(&python) {
        log_load_error(&e);
        return ExitCode::from(EXIT_LOAD_FAILED as u8);
    }
    let worker = match Python::attach(|py| load_worker(py, options)) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            log_load_error(&e);
            return ExitCode::from(EXIT_LOAD_FAILED as u8);
        }
    };
    if let Some(h) = handoff.as_mut() {
        h.notify_ready();
    }
    tracing::info!(
        "worker {} ready ({} thread{})",
        std::process::id(),
        options.threads,
        if options.threads == 1 { "" } else { "s" }
    );
    let result = wsgi_host::serve(worker, listeners, shutdown_signal());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Resolves on SIGTERM (graceful stop). SIGINT and SIGQUIT end the process from their
/// handler (see `serve_worker`).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        tracing::error!("cannot install the SIGTERM handler; stop with SIGINT or SIGKILL");
        return std::future::pending().await;
    };
    term.recv().await;
    tracing::info!(
        "worker {}: SIGTERM, finishing requests in flight",
        std::process::id()
    );
}

fn load_worker(py: Python<'_>, options: &Options) -> Result<Worker, LoadError> {
    let callable = options.app.callable.as_deref();
    let mut table = AppTable::new();
    let mut root = None;
    if let Some(module) = &options.app.module {
        root = Some(module_spec(module, callable)?);
    }
    if let Some(file) = &options.app.wsgi_file {
        if root.is_some() {
            tracing::warn!(
                "both module and wsgi-file are set; serving module (wsgi-file {} is not loaded)",
                file.display()
            );
        } else {
            root = Some(AppSpec::wsgi_file(file, callable)?);
        }
    }
    if let Some(spec) = root {
        let app = wsgi_host::load_app(py, &spec)?;
        tracing::info!("loaded app {}", spec.target());
        table.mount("", app)?;
    }
    for mount in &options.app.mounts {
        let spec = if mount.app.ends_with(".py") {
            AppSpec::wsgi_file(&mount.app, callable)?
        } else {
            module_spec(&mount.app, callable)?
        };
        let app = wsgi_host::load_app(py, &spec)?;
        tracing::info!("mounted {} at {:?}", spec.target(), mount.prefix);
        table.mount(&mount.prefix, app)?;
    }
    table.manage_script_name(options.app.manage_script_name);
    let mut config = ServerConfig::new();
    config
        .threads(options.threads)
        .processes(options.processes)
        .socket_timeout(options.socket_timeout)
        .buffer_size(options.buffer_size)
        .limit_post(options.limit_post.unwrap_or(0))
        .post_buffering(usize::try_from(options.post_buffering).unwrap_or(usize::MAX))
        .harakiri(options.harakiri)
        .max_requests(options.max_requests)
        .access_log(!options.disable_logging);
    Worker::new(py, table, config).map_err(|err| LoadError::Setup {
        message: err.to_string(),
        traceback: String::new(),
    })
}

/// `module` or `module:callable`, with `--callable` applying when no callable is named.
fn module_spec(module: &str, callable: Option<&str>) -> Result<AppSpec, LoadError> {
    match (module.contains(':'), callable) {
        (false, Some(callable)) => AppSpec::parse_module(&format!("{module}:{callable}")),
        _ => AppSpec::parse_module(module),
    }
}

fn log_load_error(err: &LoadError) {
    let traceback = err.traceback();
    if traceback.is_empty() {
        tracing::error!("cannot load the app: {err}");
    } else {
        tracing::error!("cannot load the app: {err}\n{}", traceback.trim_end());
    }
}

fn bind_listeners(options: &Options) -> Result<Vec<BoundListener>, String> {
    let specs: Vec<ListenSpec> = options
        .listeners
        .iter()
        .map(|l| ListenSpec {
            protocol: protocol(l.protocol),
            addr: match &l.address {
                Address::Tcp { host, port } => ListenAddr::Tcp {
                    host: host.clone(),
                    port: *port,
                },
                Address::Unix(path) => ListenAddr::Unix(path.clone()),
            },
        })
        .collect();
    let socket_options = SocketOptions {
        backlog: i32::try_from(options.listen).unwrap_or(i32::MAX),
        chmod: options.chmod_socket,
        chown: options.chown_socket.clone(),
    };
    let inherited = systemd_listeners().map_err(|e| format!("systemd sockets: {e}"))?;
    if !inherited.is_empty() {
        tracing::info!("{} socket(s) passed by systemd", inherited.len());
    }
    bind_all(
        &specs,
        &socket_options,
        inherited,
        protocol(options.socket_protocol),
    )
    .map_err(|e| e.to_string())
}

fn protocol(p: Protocol) -> listen::Protocol {
    match p {
        Protocol::Uwsgi => listen::Protocol::Uwsgi,
        Protocol::Http => listen::Protocol::Http,
    }
}

/// `gid`, then `uid`, when started as root (uWSGI's order: group first, while still root).
fn drop_privileges(options: &Options) -> Result<(), String> {
    if options.uid.is_none() && options.gid.is_none() {
        return Ok(());
    }
    if !nix::unistd::Uid::effective().is_root() {
        tracing::warn!("uid/gid ignored: ferrule is not running as root");
        return Ok(());
    }
    if let Some(group) = &options.gid {
        let gid = lookup_group(group)?;
        nix::unistd::setgroups(&[gid]).map_err(|e| format!("setgroups({group}): {e}"))?;
        nix::unistd::setgid(gid).map_err(|e| format!("setgid({group}): {e}"))?;
    }
    if let Some(user) = &options.uid {
        let uid = lookup_user(user)?;
        nix::unistd::setuid(uid).map_err(|e| format!("setuid({user}): {e}"))?;
    }
    tracing::info!(
        "running as uid {} gid {}",
        nix::unistd::getuid(),
        nix::unistd::getgid()
    );
    Ok(())
}

fn init_logging(file: Option<&Path>) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FERRULE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init()
                .map_err(|e| e.to_string())
        }
        None => builder
            .with_writer(std::io::stderr)
            .try_init()
            .map_err(|e| e.to_string()),
    }
}

//! Interpreter set-up and app loading: every way to name an app, and every way loading
//! fails (one clear line plus the traceback, as a typed error).

mod support;

use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use support::*;
use wsgi_host::{
    AppSpec, AppTable, InterpreterInfo, LoadError, PythonConfig, ServerConfig, UwsgiListener,
    Worker, load_app,
};

fn config() -> PythonConfig {
    let mut config = PythonConfig::new();
    // chdir to the apps directory: bare module names and the relative wsgi-file path
    // resolve from there (the working directory goes on sys.path, as with uWSGI).
    config.chdir(apps_dir()).pythonpath("filedir");
    config
}

/// The checks that must fail *before* the interpreter starts run first, then the real
/// initialisation; every test goes through here.
fn interpreter() -> &'static InterpreterInfo {
    static INFO: OnceLock<InterpreterInfo> = OnceLock::new();
    INFO.get_or_init(|| {
        init_logging();
        let mut missing = config();
        missing.virtualenv("/nonexistent/ferrule-venv");
        match wsgi_host::initialize(&missing) {
            Err(LoadError::VirtualenvMissing { path }) => {
                assert_eq!(path.to_str(), Some("/nonexistent/ferrule-venv"));
            }
            other => panic!("expected VirtualenvMissing, got {other:?}"),
        }
        let not_a_venv = tempfile::tempdir().unwrap();
        let mut wrong = config();
        wrong.virtualenv(not_a_venv.path());
        match wsgi_host::initialize(&wrong) {
            Err(err @ LoadError::VirtualenvMismatch { .. }) => {
                assert!(err.to_string().contains("site-packages"), "{err}");
            }
            other => panic!("expected VirtualenvMismatch, got {other:?}"),
        }
        assert!(!wsgi_host::is_initialized());
        wsgi_host::initialize(&config()).expect("interpreter")
    })
}

fn load(spec: &AppSpec) -> Result<wsgi_host::WsgiApp, LoadError> {
    interpreter();
    Python::attach(|py| load_app(py, spec))
}

fn module(spec: &str) -> Result<wsgi_host::WsgiApp, LoadError> {
    load(&AppSpec::parse_module(spec).expect("spec parses"))
}

#[test]
fn the_embedded_interpreter_is_the_build_interpreter() {
    // Guards the rpath: without it the loader picks the system libpython3.11.
    let info = interpreter();
    let build_python = env!("FERRULE_BUILD_PYTHON");
    let out = std::process::Command::new(build_python)
        .args([
            "-c",
            "import sys; print(sys.base_prefix); print(sys.version.splitlines()[0])",
        ])
        .output()
        .expect("run the build interpreter");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(info.base_prefix.as_str()), "{info:?}");
    assert_eq!(lines.next(), Some(info.version.as_str()), "{info:?}");
    assert!(wait_for_log("embedded Python 3.11"));
    // sys.executable is a Python, not the test binary (multiprocessing spawn needs that).
    let name = std::path::Path::new(&info.executable)
        .file_name()
        .unwrap()
        .to_string_lossy();
    assert!(name.starts_with("python"), "{info:?}");
}

#[test]
fn reinitialising_with_another_configuration_is_refused() {
    interpreter();
    assert!(wsgi_host::initialize(&config()).is_ok());
    let mut other = config();
    other.pythonpath("/elsewhere");
    assert!(matches!(
        wsgi_host::initialize(&other),
        Err(LoadError::AlreadyInitialized)
    ));
}

#[test]
fn module_callable_default_and_factory() {
    assert_eq!(
        module("probe_app:application").unwrap().target(),
        "probe_app:application"
    );
    assert_eq!(
        module("probe_app").unwrap().target(),
        "probe_app:application"
    );
    let app = module("probe_app:create_app()").unwrap();
    let name = Python::attach(|py| {
        app.callable()
            .bind(py)
            .getattr("__name__")
            .unwrap()
            .to_string()
    });
    assert_eq!(
        name, "raw_application",
        "the factory's result, not the factory"
    );
}

#[test]
fn spec_parsing() {
    for bad in [
        "",
        ":app",
        "mod:",
        "a b:c",
        "mod:f(1)",
        "mod:1x",
        "mod..x:app",
    ] {
        assert!(
            matches!(AppSpec::parse_module(bad), Err(LoadError::BadSpec { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(
        AppSpec::parse_module(" pkg.mod : obj.app ").unwrap(),
        AppSpec::Module {
            module: "pkg.mod".into(),
            callable: "obj.app".into(),
            factory: false
        }
    );
}

#[test]
fn module_not_found() {
    let err = module("no_such_module_here:app").unwrap_err();
    assert!(matches!(err, LoadError::ModuleNotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("No module named 'no_such_module_here'"),
        "{err}"
    );
    assert!(
        err.traceback().contains("ModuleNotFoundError"),
        "{}",
        err.traceback()
    );
    assert!(wait_for_log("cannot import module \"no_such_module_here\""));
}

#[test]
fn a_missing_dependency_is_an_import_failure_not_a_missing_module() {
    let err = module("import_error_app:application").unwrap_err();
    assert!(matches!(err, LoadError::ImportFailed { .. }), "{err:?}");
    assert!(
        err.to_string().contains("this_dependency_does_not_exist"),
        "{err}"
    );
    assert!(
        err.traceback().contains("import_error_app.py"),
        "{}",
        err.traceback()
    );
}

#[test]
fn import_raising() {
    let err = module("raising_app").unwrap_err();
    assert!(matches!(err, LoadError::ImportFailed { .. }), "{err:?}");
    assert!(
        err.to_string().contains("ValueError: module-level failure"),
        "{err}"
    );
    assert!(err.traceback().contains("raising_app.py"));
}

#[test]
fn attribute_missing() {
    let err = module("probe_app:nope").unwrap_err();
    assert!(matches!(err, LoadError::AttributeMissing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "module \"probe_app\" has no attribute \"nope\""
    );
}

#[test]
fn not_callable() {
    let err = module("probe_app:not_callable").unwrap_err();
    assert_eq!(
        err.to_string(),
        "probe_app:not_callable is not callable (it is a int)"
    );
}

#[test]
fn factory_failure_carries_the_traceback() {
    let err = module("probe_app:broken_factory()").unwrap_err();
    assert!(matches!(err, LoadError::FactoryFailed { .. }), "{err:?}");
    assert!(
        err.to_string().contains("RuntimeError: factory exploded"),
        "{err}"
    );
    assert!(
        err.traceback().contains("in broken_factory"),
        "{}",
        err.traceback()
    );
}

#[test]
fn wsgi_file_missing() {
    let err = load(&AppSpec::wsgi_file("filedir/nope.py", None).unwrap()).unwrap_err();
    assert!(matches!(err, LoadError::FileNotFound { .. }), "{err:?}");
}

#[test]
fn wsgi_file_with_callable_and_factory_serves() {
    let app = load(&AppSpec::wsgi_file("filedir/wsgi_file_app.py", None).unwrap()).unwrap();
    let factory =
        load(&AppSpec::wsgi_file("filedir/wsgi_file_app.py", Some("make()")).unwrap()).unwrap();
    let worker = Python::attach(|py| {
        let mut apps = AppTable::single(app);
        apps.mount("/factory", factory).unwrap();
        apps.manage_script_name(true);
        Arc::new(Worker::new(py, apps, ServerConfig::new()).unwrap())
    });
    let listener = UwsgiListener::bind_unix(unix_socket_path("file.sock")).unwrap();
    spawn_worker(worker, listener, "wsgi-file");
    let target = Target::Unix(unix_socket_path("file.sock"));
    for uri in ["/", "/factory/x"] {
        let resp = get(&target, uri);
        assert_eq!(resp.status, 200, "{uri}: {}", resp.text());
        assert_eq!(resp.text(), "hello from a wsgi-file");
    }
    // No app mounted for a path and no default: 404 with a log line.
    let worker = Python::attach(|py| {
        let app = module("probe_app:raw_application").unwrap();
        let mut apps = AppTable::new();
        apps.mount("/only", app).unwrap();
        apps.manage_script_name(true);
        Arc::new(Worker::new(py, apps, ServerConfig::new()).unwrap())
    });
    let listener = UwsgiListener::bind_unix(unix_socket_path("only.sock")).unwrap();
    spawn_worker(worker, listener, "only");
    let resp = get(&Target::Unix(unix_socket_path("only.sock")), "/elsewhere");
    assert_eq!(resp.status, 404);
    assert!(wait_for_log("no application mounted for this path"));
}

#[test]
fn pythonpath_entries_are_importable() {
    // "filedir" is a pythonpath entry (relative to chdir): its modules import by name.
    assert!(module("wsgi_file_app:application").is_ok());
}

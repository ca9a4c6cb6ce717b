//! Interpreter set-up: once per process, before any worker thread or runtime exists.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::LoadError;

/// Process-wide interpreter settings (uWSGI's `chdir`, `pythonpath`, `virtualenv`/`home`).
///
/// Applied once by [`initialize`]. Plain data with `&mut self` setters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PythonConfig {
    chdir: Option<PathBuf>,
    pythonpath: Vec<PathBuf>,
    virtualenv: Option<PathBuf>,
}

impl PythonConfig {
    /// A configuration with every setting at its default.
    pub fn new() -> PythonConfig {
        PythonConfig::default()
    }

    /// Directory to `chdir` to before the interpreter starts (uWSGI `chdir`). Relative
    /// `pythonpath` entries and `wsgi-file` paths are then relative to it. Default is none
    /// (stay where the process started).
    pub fn chdir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.chdir = Some(dir.into());
        self
    }

    /// Adds a directory to the front of `sys.path` (uWSGI `pythonpath`, repeatable; entries
    /// keep the order they were added in). Default is none.
    pub fn pythonpath(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.pythonpath.push(dir.into());
        self
    }

    /// A venv made with `python3 -m venv` (uWSGI `virtualenv`/`home`/`venv`/`pyhome`).
    ///
    /// Unlike uWSGI's `Py_SetPythonHome`, this does **not** replace the standard library (a
    /// venv has none): the venv's `site-packages` is added with `site.addsitedir` (so `.pth`
    /// files work) ahead of the base interpreter's site-packages, and `sys.prefix` /
    /// `sys.exec_prefix` are set to the venv, as the venv's own `python` would. Default is none.
    pub fn virtualenv(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.virtualenv = Some(dir.into());
        self
    }
}

/// What the embedded interpreter turned out to be, logged at start-up so a wrong
/// `libpython` (see the crate docs on rpath) is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpreterInfo {
    /// `sys.version`, first line.
    pub version: String,
    /// `sys.prefix` after the virtualenv (if any) was applied.
    pub prefix: String,
    /// `sys.base_prefix`: the installation the interpreter runs from.
    pub base_prefix: String,
    /// `sys.executable` as the embedded interpreter reports it.
    pub executable: String,
}

struct Initialized {
    config: PythonConfig,
    /// `Err` holds the one-line message of a failed first set-up.
    info: Result<InterpreterInfo, String>,
}

static INITIALIZED: OnceLock<Initialized> = OnceLock::new();

/// Starts the embedded interpreter and applies `config`. Call it once per process, before
/// starting workers; never fork afterwards.
///
/// Order: `chdir`, validate the venv path (relative to the new directory; a missing or
/// wrong venv fails before the interpreter starts), `Py_InitializeEx(0)` (no Python signal handlers: the Rust runtime owns signals), the
/// venv's site-packages, then the `pythonpath` entries and the current directory at the
/// front of `sys.path` (uWSGI and gunicorn put the working directory there too). Logs the
/// interpreter's version and `sys.prefix` at `info`.
///
/// Calling it again with an equal configuration returns the same [`InterpreterInfo`].
///
/// # Errors
///
/// [`LoadError::VirtualenvMissing`], [`LoadError::VirtualenvMismatch`],
/// [`LoadError::Chdir`], [`LoadError::AlreadyInitialized`] (called before with another
/// configuration), [`LoadError::Setup`] for a Python error while adjusting `sys`.
pub fn initialize(config: &PythonConfig) -> Result<InterpreterInfo, LoadError> {
    if let Some(done) = INITIALIZED.get() {
        return previous(done, config);
    }
    if let Some(dir) = &config.chdir {
        std::env::set_current_dir(dir).map_err(|source| LoadError::Chdir {
            path: dir.clone(),
            source,
        })?;
    }
    // After chdir, as uWSGI resolves `home` at interpreter start; before the interpreter,
    // so a bad venv never half-starts it.
    if let Some(venv) = &config.virtualenv {
        check_virtualenv(venv)?;
    }
    let mut first_error = None;
    let done = INITIALIZED.get_or_init(|| {
        Python::initialize();
        let info = Python::attach(|py| configure(py, config)).map_err(|err| {
            let line = err.to_string();
            first_error = Some(err);
            line
        });
        Initialized {
            config: config.clone(),
            info,
        }
    });
    if let Some(err) = first_error {
        return Err(err);
    }
    let info = previous(done, config)?;
    tracing::info!(
        version = %info.version,
        prefix = %info.prefix,
        base_prefix = %info.base_prefix,
        "embedded Python {} (sys.prefix {})",
        info.version,
        info.prefix
    );
    Ok(info)
}

fn previous(done: &Initialized, config: &PythonConfig) -> Result<InterpreterInfo, LoadError> {
    if done.config != *config {
        return Err(LoadError::AlreadyInitialized);
    }
    done.info.clone().map_err(|message| LoadError::Setup {
        message: format!("an earlier set-up failed: {message}"),
        traceback: String::new(),
    })
}

/// Whether [`initialize`] has run in this process.
pub fn is_initialized() -> bool {
    INITIALIZED.get().is_some()
}

fn configure(py: Python<'_>, config: &PythonConfig) -> Result<InterpreterInfo, LoadError> {
    let sys = py.import("sys").map_err(|e| setup_error(py, &e))?;
    if let Some(venv) = &config.virtualenv {
        apply_virtualenv(py, &sys, venv)?;
    }
    fix_executable(py).map_err(|e| setup_error(py, &e))?;
    let path = sys
        .getattr("path")
        .and_then(|p| p.cast_into::<PyList>().map_err(PyErr::from))
        .map_err(|e| setup_error(py, &e))?;
    // Front of sys.path: pythonpath entries in order, then the working directory.
    let cwd = std::env::current_dir()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|_| ".".to_owned());
    let mut front: Vec<String> = config
        .pythonpath
        .iter()
        .map(|p| absolute(p).to_string_lossy().into_owned())
        .collect();
    front.push(cwd);
    for (index, entry) in front.iter().enumerate() {
        path.insert(index, entry).map_err(|e| setup_error(py, &e))?;
    }
    let get = |name: &str| -> String {
        sys.getattr(name)
            .and_then(|v| v.str().map(|s| s.to_string()))
            .unwrap_or_default()
    };
    let version = get("version");
    Ok(InterpreterInfo {
        version: version.lines().next().unwrap_or_default().to_owned(),
        prefix: get("prefix"),
        base_prefix: get("base_prefix"),
        executable: get("executable"),
    })
}

fn apply_virtualenv(
    py: Python<'_>,
    sys: &Bound<'_, PyModule>,
    venv: &Path,
) -> Result<(), LoadError> {
    let venv = absolute(venv);
    let (major, minor): (u8, u8) = sys
        .getattr("version_info")
        .and_then(|v| Ok((v.get_item(0)?.extract()?, v.get_item(1)?.extract()?)))
        .map_err(|e| setup_error(py, &e))?;
    let version = format!("{major}.{minor}");
    let site_packages = venv_site_packages(&venv, &version);
    if !site_packages.is_dir() {
        return Err(LoadError::VirtualenvMismatch {
            path: venv,
            version,
            expected: site_packages,
        });
    }
    let code = c"
def _ferrule_venv(sys, site, venv, site_packages):
    base = [p for p in sys.path]
    known = set(base)
    site.addsitedir(site_packages)
    added = [p for p in sys.path if p not in known]
    rest = [p for p in sys.path if p in known]
    # The venv's packages win over the base interpreter's site-packages, but not over
    # the standard library: insert before the first site-packages/dist-packages entry.
    at = next((i for i, p in enumerate(rest)
               if p.endswith(('site-packages', 'dist-packages'))), len(rest))
    sys.path[:] = rest[:at] + added + rest[at:]
    sys.prefix = venv
    sys.exec_prefix = venv
";
    let globals = pyo3::types::PyDict::new(py);
    py.run(code, Some(&globals), None)
        .and_then(|()| {
            let func = globals
                .get_item("_ferrule_venv")?
                .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("venv helper missing"))?;
            func.call1((
                sys,
                py.import("site")?,
                venv.to_string_lossy().as_ref(),
                site_packages.to_string_lossy().as_ref(),
            ))?;
            Ok(())
        })
        .map_err(|e| setup_error(py, &e))?;
    tracing::info!(virtualenv = %venv.display(), "virtualenv site-packages added: {}", site_packages.display());
    Ok(())
}

/// Embedded, `sys.executable` names the host binary, so `multiprocessing` (spawn) and
/// `subprocess.run([sys.executable, ...])` would start ferrule instead of Python. Point it
/// at the venv's `python3`, or the base installation's `pythonX.Y`, when that file exists
/// (uWSGI needs `py-sys-executable` for the same fix).
fn fix_executable(py: Python<'_>) -> PyResult<()> {
    let code = c"
def _ferrule_fix_executable():
    import os, sys
    name = os.path.basename(sys.executable or '')
    if name.startswith('python'):
        return None
    version = 'python%d.%d' % sys.version_info[:2]
    for candidate in (os.path.join(sys.prefix, 'bin', 'python3'),
                      os.path.join(sys.base_prefix, 'bin', version)):
        if os.access(candidate, os.X_OK):
            sys.executable = candidate
            return candidate
    return None
";
    let globals = pyo3::types::PyDict::new(py);
    py.run(code, Some(&globals), None)?;
    let func = globals
        .get_item("_ferrule_fix_executable")?
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("helper missing"))?;
    let fixed = func.call0()?;
    if !fixed.is_none() {
        tracing::debug!("sys.executable set to {fixed}");
    }
    Ok(())
}

/// The embedded interpreter's `X.Y`, fixed at build time by the libpython it links.
pub(crate) const PYTHON_VERSION: &str = env!("FERRULE_PYTHON_VERSION");

/// Checks a venv before the interpreter starts, so a bad path never half-starts it.
fn check_virtualenv(venv: &Path) -> Result<(), LoadError> {
    if !venv.is_dir() {
        return Err(LoadError::VirtualenvMissing {
            path: venv.to_path_buf(),
        });
    }
    let expected = venv_site_packages(venv, PYTHON_VERSION);
    if !expected.is_dir() {
        return Err(LoadError::VirtualenvMismatch {
            path: venv.to_path_buf(),
            version: PYTHON_VERSION.to_owned(),
            expected,
        });
    }
    Ok(())
}

fn venv_site_packages(venv: &Path, version: &str) -> PathBuf {
    absolute(venv)
        .join("lib")
        .join(format!("python{version}"))
        .join("site-packages")
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn setup_error(py: Python<'_>, err: &PyErr) -> LoadError {
    LoadError::Setup {
        message: exception_line(py, err),
        traceback: format_traceback(py, err),
    }
}

/// `Type: message` for an exception, as the last line of a traceback shows it.
pub(crate) fn exception_line(py: Python<'_>, err: &PyErr) -> String {
    let type_name = err
        .get_type(py)
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".to_owned());
    let value = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if value.is_empty() {
        type_name
    } else {
        format!("{type_name}: {value}")
    }
}

/// The full traceback of `err`, formatted by Python's `traceback` module (chained
/// exceptions included). Falls back to `Type: message` if formatting itself fails.
pub(crate) fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let traceback = py.import("traceback")?;
        // Python <= 3.11 keeps the traceback beside the exception until something catches
        // it, so pass it explicitly rather than relying on `__traceback__`.
        let lines = traceback.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        let joined = pyo3::types::PyString::new(py, "").call_method1("join", (lines,))?;
        joined.extract()
    })();
    formatted.unwrap_or_else(|_| exception_line(py, err))
}

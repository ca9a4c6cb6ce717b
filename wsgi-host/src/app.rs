//! Loading WSGI applications and choosing one per request (mount points).

use std::path::{Path, PathBuf};

use pyo3::exceptions::PyModuleNotFoundError;
use pyo3::prelude::*;

use crate::LoadError;
use crate::interpreter::{exception_line, format_traceback};

/// Where an application comes from, the ways uWSGI, gunicorn and the tutorials name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSpec {
    /// `module:callable` (uWSGI `module`, gunicorn's argument) or `module:factory()`, whose
    /// factory is called once, with no arguments, at load time.
    Module {
        /// Dotted module name, imported with `importlib.import_module`.
        module: String,
        /// Attribute of the module (dotted paths such as `pkg.app` are followed).
        callable: String,
        /// Whether `callable` is a factory (`name()` in the spec) to call once.
        factory: bool,
    },
    /// `wsgi-file` + `callable`: a Python file executed as a fresh module.
    File {
        /// The file's path (relative paths are taken from the working directory after
        /// `chdir`).
        path: PathBuf,
        /// Attribute of the executed module; uWSGI's default is `application`.
        callable: String,
        /// Whether `callable` is a factory to call once.
        factory: bool,
    },
}

/// uWSGI's default `callable`.
pub const DEFAULT_CALLABLE: &str = "application";

impl AppSpec {
    /// Parses `module`, `module:callable` or `module:factory()`.
    ///
    /// Without a `:` the callable is `application` (uWSGI's default). Surrounding whitespace
    /// is ignored. Factory arguments are not supported (`create_app(1)` is an error).
    ///
    /// ```
    /// use wsgi_host::AppSpec;
    ///
    /// let spec = AppSpec::parse_module("hello:create_app()")?;
    /// assert_eq!(
    ///     spec,
    ///     AppSpec::Module { module: "hello".into(), callable: "create_app".into(), factory: true }
    /// );
    /// # Ok::<(), wsgi_host::LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`LoadError::BadSpec`] for an empty module or callable, or a malformed factory call.
    pub fn parse_module(spec: &str) -> Result<AppSpec, LoadError> {
        let bad = |reason| LoadError::BadSpec {
            spec: spec.to_owned(),
            reason,
        };
        let trimmed = spec.trim();
        let (module, callable) = match trimmed.split_once(':') {
            Some((m, c)) => (m.trim(), c.trim()),
            None => (trimmed, DEFAULT_CALLABLE),
        };
        if module.is_empty() || !module.split('.').all(is_identifier) {
            return Err(bad("the module must be a dotted Python name"));
        }
        let (callable, factory) = split_factory(callable).ok_or_else(|| {
            bad("the callable must be a dotted name, optionally followed by `()`")
        })?;
        Ok(AppSpec::Module {
            module: module.to_owned(),
            callable,
            factory,
        })
    }

    /// A `wsgi-file` spec; `callable` defaults to `application`, and may end in `()` for a
    /// factory.
    ///
    /// # Errors
    ///
    /// [`LoadError::BadSpec`] for a malformed callable.
    pub fn wsgi_file(
        path: impl Into<PathBuf>,
        callable: Option<&str>,
    ) -> Result<AppSpec, LoadError> {
        let path = path.into();
        let raw = callable.unwrap_or(DEFAULT_CALLABLE).trim();
        let (callable, factory) = split_factory(raw).ok_or_else(|| LoadError::BadSpec {
            spec: raw.to_owned(),
            reason: "the callable must be a dotted name, optionally followed by `()`",
        })?;
        Ok(AppSpec::File {
            path,
            callable,
            factory,
        })
    }

    /// `module:callable` or `path:callable`, for messages.
    pub fn target(&self) -> String {
        match self {
            AppSpec::Module {
                module,
                callable,
                factory,
            } => format!("{module}:{callable}{}", if *factory { "()" } else { "" }),
            AppSpec::File {
                path,
                callable,
                factory,
            } => format!(
                "{}:{callable}{}",
                path.display(),
                if *factory { "()" } else { "" }
            ),
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn split_factory(callable: &str) -> Option<(String, bool)> {
    let (name, factory) = match callable.strip_suffix("()") {
        Some(name) => (name.trim_end(), true),
        None => (callable, false),
    };
    (!name.is_empty() && name.split('.').all(is_identifier)).then(|| (name.to_owned(), factory))
}

/// A loaded WSGI application: the callable and where it came from.
#[derive(Debug)]
pub struct WsgiApp {
    callable: Py<PyAny>,
    target: String,
}

impl WsgiApp {
    /// Wraps an already-loaded callable (for embedding and tests); `target` names it in logs.
    pub fn from_callable(callable: Py<PyAny>, target: impl Into<String>) -> WsgiApp {
        WsgiApp {
            callable,
            target: target.into(),
        }
    }

    /// The application callable.
    pub fn callable(&self) -> &Py<PyAny> {
        &self.callable
    }

    /// `module:callable`, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }
}

/// Imports the module (or executes the file), resolves the callable, calls a factory once,
/// and checks that the result is callable.
///
/// # Errors
///
/// [`LoadError::ModuleNotFound`], [`LoadError::ImportFailed`], [`LoadError::FileNotFound`],
/// [`LoadError::AttributeMissing`], [`LoadError::NotCallable`],
/// [`LoadError::FactoryFailed`]. Each carries one clear line; the Python ones also carry the
/// traceback ([`LoadError::traceback`]). The error is also logged at `error` level.
pub fn load_app(py: Python<'_>, spec: &AppSpec) -> Result<WsgiApp, LoadError> {
    let result = load_inner(py, spec);
    match &result {
        Ok(app) => tracing::info!(app = %app.target, "WSGI app loaded"),
        Err(err) => {
            tracing::error!(app = %spec.target(), "{err}");
            if !err.traceback().is_empty() {
                tracing::error!("{}", err.traceback().trim_end());
            }
        }
    }
    result
}

fn load_inner(py: Python<'_>, spec: &AppSpec) -> Result<WsgiApp, LoadError> {
    let (module, module_name, callable, factory) = match spec {
        AppSpec::Module {
            module,
            callable,
            factory,
        } => (
            import_module(py, module)?,
            module.clone(),
            callable,
            *factory,
        ),
        AppSpec::File {
            path,
            callable,
            factory,
        } => {
            let (module, name) = exec_file(py, path)?;
            (module, name, callable, *factory)
        }
    };
    let mut object = module.into_any();
    for part in callable.split('.') {
        object = match object.getattr_opt(part) {
            Ok(Some(next)) => next,
            Ok(None) => {
                return Err(LoadError::AttributeMissing {
                    module: module_name,
                    attribute: callable.clone(),
                });
            }
            Err(err) => {
                return Err(LoadError::ImportFailed {
                    module: module_name,
                    message: exception_line(py, &err),
                    traceback: format_traceback(py, &err),
                });
            }
        };
    }
    let target = spec.target();
    let not_callable = |object: &Bound<'_, PyAny>, target: String| LoadError::NotCallable {
        target,
        type_name: object
            .get_type()
            .qualname()
            .map(|n| n.to_string())
            .unwrap_or_default(),
    };
    if !object.is_callable() {
        return Err(not_callable(&object, target));
    }
    if factory {
        object = object.call0().map_err(|err| LoadError::FactoryFailed {
            target: target.clone(),
            message: exception_line(py, &err),
            traceback: format_traceback(py, &err),
        })?;
        if !object.is_callable() {
            return Err(not_callable(
                &object,
                format!("the object returned by {target}"),
            ));
        }
    }
    Ok(WsgiApp {
        callable: object.unbind(),
        target,
    })
}

fn import_module<'py>(py: Python<'py>, module: &str) -> Result<Bound<'py, PyModule>, LoadError> {
    py.import(module).map_err(|err| {
        let message = exception_line(py, &err);
        let traceback = format_traceback(py, &err);
        // ModuleNotFoundError for the module itself (not for something it imports) is
        // "not found"; anything else raised while importing is an import failure.
        let missing_itself = err.is_instance_of::<PyModuleNotFoundError>(py)
            && err
                .value(py)
                .getattr("name")
                .and_then(|n| n.extract::<String>())
                .is_ok_and(|name| module == name || module.starts_with(&format!("{name}.")));
        if missing_itself {
            LoadError::ModuleNotFound {
                module: module.to_owned(),
                message,
                traceback,
            }
        } else {
            LoadError::ImportFailed {
                module: module.to_owned(),
                message,
                traceback,
            }
        }
    })
}

/// Executes a `wsgi-file` as a module named `uwsgi_file_<mangled path>` (uWSGI's naming),
/// registered in `sys.modules`, with the file's directory added to `sys.path` so sibling
/// imports work.
fn exec_file<'py>(
    py: Python<'py>,
    path: &Path,
) -> Result<(Bound<'py, PyModule>, String), LoadError> {
    if !path.is_file() {
        return Err(LoadError::FileNotFound {
            path: path.to_path_buf(),
        });
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let shown = path.display().to_string();
    let name: String = format!(
        "uwsgi_file_{}",
        absolute
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    );
    let code = c"
def _ferrule_exec_file(name, path):
    import importlib.util, os, sys
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
";
    let run = || -> PyResult<Bound<'py, PyModule>> {
        let globals = pyo3::types::PyDict::new(py);
        py.run(code, Some(&globals), None)?;
        let func = globals
            .get_item("_ferrule_exec_file")?
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("loader helper missing"))?;
        let module = func.call1((name.as_str(), absolute.to_string_lossy().as_ref()))?;
        Ok(module.cast_into::<PyModule>()?)
    };
    match run() {
        Ok(module) => Ok((module, shown)),
        Err(err) => Err(LoadError::ImportFailed {
            module: shown,
            message: exception_line(py, &err),
            traceback: format_traceback(py, &err),
        }),
    }
}

/// The applications of one worker and how a request picks one (uWSGI `mount` and
/// `manage-script-name`).
///
/// - The app mounted at `""` (or `/`) is the default app.
/// - With `manage-script-name`, the **longest** mount point that matches the start of
///   `PATH_INFO` at a `/` boundary wins; its prefix moves from `PATH_INFO` to `SCRIPT_NAME`
///   (`/app` matches `/app` and `/app/x`, not `/apple`).
/// - Without it, a request is routed by the `SCRIPT_NAME` var (as nginx sets it with
///   `uwsgi_param SCRIPT_NAME /app;`), and `PATH_INFO` is left as it is.
/// - No match and no default app: the request gets a 404 and a log line.
#[derive(Debug)]
pub struct AppTable {
    /// Sorted by prefix length, longest first.
    mounts: Vec<(String, WsgiApp)>,
    default: Option<WsgiApp>,
    manage_script_name: bool,
}

impl AppTable {
    /// A table with one default app (mounted at `""`).
    pub fn single(app: WsgiApp) -> AppTable {
        AppTable {
            mounts: Vec::new(),
            default: Some(app),
            manage_script_name: false,
        }
    }

    /// An empty table (every request gets a 404 until apps are added).
    pub fn new() -> AppTable {
        AppTable {
            mounts: Vec::new(),
            default: None,
            manage_script_name: false,
        }
    }

    /// Mounts `app` at `prefix` (uWSGI `mount = /prefix=module:app`). `""` and `"/"` set the
    /// default app; a trailing `/` is dropped. A second app at the same prefix replaces the
    /// first.
    ///
    /// # Errors
    ///
    /// [`LoadError::BadSpec`] if `prefix` is neither empty nor starts with `/`.
    pub fn mount(&mut self, prefix: &str, app: WsgiApp) -> Result<&mut Self, LoadError> {
        let trimmed = prefix.trim_end_matches('/');
        if trimmed.is_empty() {
            self.default = Some(app);
            return Ok(self);
        }
        if !trimmed.starts_with('/') {
            return Err(LoadError::BadSpec {
                spec: prefix.to_owned(),
                reason: "a mount point must start with `/`",
            });
        }
        self.mounts.retain(|(p, _)| p != trimmed);
        self.mounts.push((trimmed.to_owned(), app));
        self.mounts.sort_by_key(|m| std::cmp::Reverse(m.0.len()));
        Ok(self)
    }

    /// Turns `manage-script-name` on or off. Default is off.
    pub fn manage_script_name(&mut self, on: bool) -> &mut Self {
        self.manage_script_name = on;
        self
    }

    /// Whether `manage-script-name` is on.
    pub fn manages_script_name(&self) -> bool {
        self.manage_script_name
    }

    /// Picks the app for a request; returns it and the new `(SCRIPT_NAME, PATH_INFO)` split
    /// as byte lengths: `script_len` bytes of `PATH_INFO` move to `SCRIPT_NAME` (0 = none).
    pub(crate) fn route(&self, script_name: &[u8], path_info: &[u8]) -> Option<(&WsgiApp, usize)> {
        if self.manage_script_name {
            for (prefix, app) in &self.mounts {
                let p = prefix.as_bytes();
                if path_info.starts_with(p)
                    && (path_info.len() == p.len() || path_info[p.len()] == b'/')
                {
                    return Some((app, p.len()));
                }
            }
        } else if !script_name.is_empty() {
            let wanted = script_name.strip_suffix(b"/").unwrap_or(script_name);
            if let Some((_, app)) = self.mounts.iter().find(|(p, _)| p.as_bytes() == wanted) {
                return Some((app, 0));
            }
        }
        self.default.as_ref().map(|app| (app, 0))
    }

    /// Every app, for start-up logs.
    pub fn apps(&self) -> impl Iterator<Item = (&str, &WsgiApp)> {
        self.default
            .iter()
            .map(|a| ("", a))
            .chain(self.mounts.iter().map(|(p, a)| (p.as_str(), a)))
    }
}

impl Default for AppTable {
    fn default() -> Self {
        AppTable::new()
    }
}

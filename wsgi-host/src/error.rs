//! Typed errors of app loading and of serving.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why the interpreter could not be set up or an application could not be loaded.
///
/// Every variant's `Display` is one clear line; the Python traceback, when there is one, is
/// in [`LoadError::traceback`]. The `ferrule` binary prints both and exits non-zero, as
/// uWSGI does with `need-app`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// `virtualenv`/`home` points at a path that is not a directory.
    #[error("virtualenv {path:?} does not exist or is not a directory")]
    VirtualenvMissing {
        /// The configured path.
        path: PathBuf,
    },
    /// `virtualenv`/`home` is a directory but has no `lib/pythonX.Y/site-packages` for the
    /// embedded interpreter's version (made for another Python, or not a venv at all).
    #[error(
        "virtualenv {path:?} has no site-packages for the embedded Python {version} \
         (looked for {expected:?}); recreate it with this interpreter's `python3 -m venv`"
    )]
    VirtualenvMismatch {
        /// The configured path.
        path: PathBuf,
        /// The embedded interpreter's `X.Y`.
        version: String,
        /// The site-packages directory that was expected.
        expected: PathBuf,
    },
    /// `chdir` failed.
    #[error("cannot chdir to {path:?}: {source}")]
    Chdir {
        /// The configured directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The interpreter was already initialised with a different configuration; it is set up
    /// once per process and never again.
    #[error("the Python interpreter is already initialised with another configuration")]
    AlreadyInitialized,
    /// A `module:callable` / `module:factory()` string that cannot be parsed.
    #[error("invalid application spec {spec:?}: {reason}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The module (or one it imports) cannot be found.
    #[error("cannot import module {module:?}: {message}")]
    ModuleNotFound {
        /// The module that was imported.
        module: String,
        /// Python's message (`No module named 'x'`).
        message: String,
        /// The formatted Python traceback.
        traceback: String,
    },
    /// Importing the module (or executing the `wsgi-file`) raised.
    #[error("importing {module:?} raised {message}")]
    ImportFailed {
        /// The module or file that was imported.
        module: String,
        /// The exception, as `Type: message`.
        message: String,
        /// The formatted Python traceback.
        traceback: String,
    },
    /// A `wsgi-file` path that does not exist or is not a file.
    #[error("wsgi-file {path:?} does not exist or is not a file")]
    FileNotFound {
        /// The configured path.
        path: PathBuf,
    },
    /// The module has no attribute of the callable's name.
    #[error("module {module:?} has no attribute {attribute:?}")]
    AttributeMissing {
        /// The module.
        module: String,
        /// The missing attribute.
        attribute: String,
    },
    /// The attribute (or what the factory returned) is not callable.
    #[error("{target} is not callable (it is a {type_name})")]
    NotCallable {
        /// `module:attribute` (or `module:factory()`).
        target: String,
        /// Its Python type name.
        type_name: String,
    },
    /// Calling the factory (`module:factory()`) raised.
    #[error("calling the application factory {target} raised {message}")]
    FactoryFailed {
        /// `module:factory()`.
        target: String,
        /// The exception, as `Type: message`.
        message: String,
        /// The formatted Python traceback.
        traceback: String,
    },
    /// Any other Python error while setting up the interpreter.
    #[error("setting up the Python interpreter failed: {message}")]
    Setup {
        /// The exception, as `Type: message`.
        message: String,
        /// The formatted Python traceback.
        traceback: String,
    },
}

impl LoadError {
    /// The formatted Python traceback behind this error, or `""` when the error did not come
    /// from a Python exception.
    pub fn traceback(&self) -> &str {
        match self {
            LoadError::ModuleNotFound { traceback, .. }
            | LoadError::ImportFailed { traceback, .. }
            | LoadError::FactoryFailed { traceback, .. }
            | LoadError::Setup { traceback, .. } => traceback,
            _ => "",
        }
    }
}

/// Why a listener could not be served.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Creating the runtime, or a listener operation, failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The configuration is inconsistent (for example `threads = 0`).
    #[error("invalid server configuration: {0}")]
    Config(String),
    /// The interpreter has not been initialised (call [`crate::initialize`] first).
    #[error("the Python interpreter is not initialised")]
    NotInitialized,
}

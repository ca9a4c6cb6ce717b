//! The PEP 3333 bridge to embedded CPython: interpreter set-up, app loading, the environ,
//! `start_response`, `wsgi.input`/`wsgi.errors`/`wsgi.file_wrapper`, the executors, and the
//! uwsgi-socket request path nginx uses (`uwsgi_pass`).
//!
//! This is the only crate of the workspace that links pyo3. It uses only the safe PyO3 API
//! (`#![deny(unsafe_code)]`).
//!
//! # What it does
//!
//! - [`initialize`] starts the interpreter once per process with a [`PythonConfig`]
//!   (`chdir`, `pythonpath`, `virtualenv`) and logs its version and `sys.prefix`.
//! - [`load_app`] loads an [`AppSpec`] (`module:callable`, `module:factory()`, `wsgi-file`);
//!   every failure is a typed [`LoadError`] with one clear line and the traceback.
//! - [`AppTable`] holds the apps of a worker and routes requests (mount points,
//!   `manage-script-name`).
//! - [`EnvironTemplate`] / [`EnvironBuilder`] build the environ from CGI vars (uwsgi vars
//!   now, HTTP request heads later) with interned keys and pre-built values.
//! - [`serve_uwsgi`] serves a [`UwsgiListener`] with a [`Worker`]: decode, environ, app,
//!   raw `HTTP/1.1` response, drain, close. `threads = 1` runs the app on the runtime thread;
//!   `threads = N` on N Python threads ([`ServerConfig::threads`]).
//!
//! # Serving an app on a uwsgi socket
//!
//! ```standalone_crate
//! use std::io::{Read, Write};
//! use std::sync::Arc;
//! use pyo3::Python;
//! use wsgi_host::{AppSpec, AppTable, PythonConfig, ServerConfig, UwsgiListener, Worker};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let project = std::env::temp_dir().join(format!("wsgi-host-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&project)?;
//! std::fs::write(
//!     project.join("wsgi.py"),
//!     "def app(environ, start_response):\n\
//!      \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
//!      \x20   return [environ['PATH_INFO'].encode()]\n",
//! )?;
//! let mut python = PythonConfig::new();
//! python.pythonpath(&project); // and .chdir(..), .virtualenv(..) as a deployment needs
//! wsgi_host::initialize(&python)?; // once per process, before any thread
//! let worker = Python::attach(|py| -> Result<_, Box<dyn std::error::Error>> {
//!     let app = wsgi_host::load_app(py, &AppSpec::parse_module("wsgi:app")?)?;
//!     let mut config = ServerConfig::new();
//!     config.threads(4);
//!     Ok(Arc::new(Worker::new(py, AppTable::single(app), config)?))
//! })?;
//! let socket = project.join("app.sock");
//! let listener = UwsgiListener::bind_unix(&socket)?;
//!
//! // A client doing what nginx's uwsgi_pass does, then the shutdown.
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let client = std::thread::spawn(move || -> std::io::Result<String> {
//!     let mut conn = std::os::unix::net::UnixStream::connect(&socket)?;
//!     let mut packet = bytes::BytesMut::new();
//!     let vars = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/hi"), ("SERVER_PROTOCOL", "HTTP/1.1")];
//!     uwsgi_proto::encode_request(uwsgi_proto::Modifier1::WSGI, 0, &vars, &mut packet)
//!         .expect("small packet");
//!     conn.write_all(&packet)?;
//!     let mut response = String::new();
//!     conn.read_to_string(&mut response)?;
//!     let _ = stop.send(());
//!     Ok(response)
//! });
//! wsgi_host::serve_uwsgi(worker, listener, async {
//!     let _ = stopped.await;
//! })?;
//! let response = client.join().expect("client thread")?;
//! assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
//! assert!(response.ends_with("\r\n\r\n/hi"), "{response}");
//! # std::fs::remove_dir_all(&project)?;
//! # Ok(())
//! # }
//! ```
//!
//! # What it does not do (yet)
//!
//! HTTP listeners (waiting for `http-front`), ini parsing and the access log come in later
//! issues. The process side (binding listeners, the master that supervises workers, the
//! handoff of sockets to workers, harakiri) is in [`runtime`]; it holds no Python state.
//!
//! # Finding libpython (rpath)
//!
//! pyo3 links against the interpreter it found at build time (`PYO3_PYTHON`, else `python3`
//! on PATH). This crate's build script adds `-Wl,-rpath,<that interpreter's LIBDIR>` to its
//! own tests, benches and examples, and exports the directory as `DEP_FERRULE_PYTHON_LIBDIR`
//! to the build scripts of crates that depend on it. A binary crate must turn that into its
//! own rpath, because link arguments do not propagate:
//!
//! ```text
//! // build.rs of the binary crate (which depends on wsgi-host)
//! fn main() {
//!     if let Ok(dir) = std::env::var("DEP_FERRULE_PYTHON_LIBDIR") {
//!         println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
//!     }
//! }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(no_crate_inject, attr(deny(warnings))))]

mod app;
pub use app::{AppSpec, AppTable, DEFAULT_CALLABLE, WsgiApp, load_app};

mod environ;
pub use environ::{EnvironBuilder, EnvironConfig, EnvironError, EnvironTemplate};

mod error;
pub use error::{LoadError, ServeError};

mod errors;
pub use errors::ErrorStream;

mod executor;

mod fdio;

pub mod http;

mod file_wrapper;
pub use file_wrapper::FileWrapper;

mod input;
pub use input::{
    BodyError, BodySource, BodySpooler, EmptyBody, FileBody, MemoryBody, WsgiInput, buffer_body,
};

mod interpreter;
pub use interpreter::{InterpreterInfo, PythonConfig, initialize, is_initialized};

mod response;
pub use response::{Outcome, ResponseHead, ResponseSink, StartResponse, WriteCallable};

mod uwsgi;
pub use uwsgi::{UwsgiListener, serve_uwsgi};

mod worker;
pub use worker::{
    DEFAULT_CHUNKED_LIMIT, RequestBody, RequestError, RequestOptions, ServerConfig, Worker,
};

pub mod runtime;

mod server;
pub use server::serve;

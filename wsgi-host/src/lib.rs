//! The PEP 3333 bridge to embedded CPython, and the ferrule server runtime.
//!
//! This crate will be the only one in the workspace that links pyo3: interpreter set-up, app
//! loading, the environ, `start_response`, `wsgi.input`/`wsgi.errors`/`wsgi.file_wrapper`, the
//! executors, and the listeners/workers/master runtime. It is being built in the wsgi-host
//! issue; until then it exports nothing.
#![deny(unsafe_code)]
#![deny(missing_docs)]

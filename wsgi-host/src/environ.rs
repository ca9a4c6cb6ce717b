//! The WSGI environ (PEP 3333 "environ Variables"), built from a protocol-neutral stream of
//! CGI vars.
//!
//! The builder consumes `(key, value)` byte pairs in CGI form, the way a uwsgi packet
//! carries them; [`EnvironBuilder::header`] turns an HTTP field into its `HTTP_*` form, so
//! the HTTP front can feed the same builder with method, target, version and fields.

use std::fmt;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::app::{AppTable, WsgiApp};

macro_rules! known_keys {
    ($( $variant:ident = $name:literal, )*) => {
        /// CGI and header keys that get a pre-interned `str`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        enum Key { $( $variant, )* }

        const KEY_NAMES: &[&str] = &[ $( $name, )* ];

        const KEYS: &[Key] = &[ $( Key::$variant, )* ];

        /// Linear reference lookup (tests check the hash table against it).
        #[cfg(test)]
        fn lookup_key(key: &[u8]) -> Option<Key> {
            match key {
                $( k if k == $name.as_bytes() => Some(Key::$variant), )*
                _ => None,
            }
        }
    };
}

known_keys! {
    RequestMethod = "REQUEST_METHOD",
    QueryString = "QUERY_STRING",
    ContentType = "CONTENT_TYPE",
    ContentLength = "CONTENT_LENGTH",
    RequestUri = "REQUEST_URI",
    PathInfo = "PATH_INFO",
    ScriptName = "SCRIPT_NAME",
    DocumentRoot = "DOCUMENT_ROOT",
    ServerProtocol = "SERVER_PROTOCOL",
    RequestScheme = "REQUEST_SCHEME",
    Https = "HTTPS",
    RemoteAddr = "REMOTE_ADDR",
    RemotePort = "REMOTE_PORT",
    ServerAddr = "SERVER_ADDR",
    ServerPort = "SERVER_PORT",
    ServerName = "SERVER_NAME",
    RawUri = "RAW_URI",
    UwsgiScheme = "UWSGI_SCHEME",
    UwsgiRouter = "UWSGI_ROUTER",
    HttpHost = "HTTP_HOST",
    HttpUserAgent = "HTTP_USER_AGENT",
    HttpAccept = "HTTP_ACCEPT",
    HttpAcceptLanguage = "HTTP_ACCEPT_LANGUAGE",
    HttpAcceptEncoding = "HTTP_ACCEPT_ENCODING",
    HttpConnection = "HTTP_CONNECTION",
    HttpCookie = "HTTP_COOKIE",
    HttpReferer = "HTTP_REFERER",
    HttpCacheControl = "HTTP_CACHE_CONTROL",
    HttpPragma = "HTTP_PRAGMA",
    HttpAuthorization = "HTTP_AUTHORIZATION",
    HttpOrigin = "HTTP_ORIGIN",
    HttpIfModifiedSince = "HTTP_IF_MODIFIED_SINCE",
    HttpIfNoneMatch = "HTTP_IF_NONE_MATCH",
    HttpXForwardedFor = "HTTP_X_FORWARDED_FOR",
    HttpXForwardedProto = "HTTP_X_FORWARDED_PROTO",
    HttpXRealIp = "HTTP_X_REAL_IP",
    HttpXRequestedWith = "HTTP_X_REQUESTED_WITH",
    HttpUpgradeInsecureRequests = "HTTP_UPGRADE_INSECURE_REQUESTS",
    HttpDnt = "HTTP_DNT",
    HttpTe = "HTTP_TE",
    HttpTransferEncoding = "HTTP_TRANSFER_ENCODING",
    HttpSecFetchDest = "HTTP_SEC_FETCH_DEST",
    HttpSecFetchMode = "HTTP_SEC_FETCH_MODE",
    HttpSecFetchSite = "HTTP_SEC_FETCH_SITE",
    HttpSecFetchUser = "HTTP_SEC_FETCH_USER",
    HttpContentType = "HTTP_CONTENT_TYPE",
    HttpContentLength = "HTTP_CONTENT_LENGTH",
    WsgiVersion = "wsgi.version",
    WsgiInput = "wsgi.input",
    WsgiErrors = "wsgi.errors",
    WsgiMultithread = "wsgi.multithread",
    WsgiMultiprocess = "wsgi.multiprocess",
    WsgiRunOnce = "wsgi.run_once",
    WsgiUrlScheme = "wsgi.url_scheme",
    WsgiInputTerminated = "wsgi.input_terminated",
    WsgiFileWrapper = "wsgi.file_wrapper",
}

macro_rules! known_values {
    ($( $name:literal, )*) => {
        const VALUE_NAMES: &[&str] = &[ $( $name, )* ];
    };
}

// Values worth pre-building: methods, protocols, schemes, the empty string.
known_values! {
    "", "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "HTTP/1.1", "HTTP/1.0",
    "HTTP/2.0", "http", "https", "/", "on", "80", "443", "uwsgi",
}

/// A cheap hash for the key table: length plus the first and last 8 bytes, mixed with one
/// multiply. Keys are short CGI names that differ at the end (`HTTP_ACCEPT_*`); equality is
/// checked anyway, and the table is fixed (never grows from input), so collisions cost a
/// probe at worst and HashDoS is not a concern.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        let word = |b: &[u8]| {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        let (head, tail) = if n >= 8 {
            (word(&bytes[..8]), word(&bytes[n - 8..]))
        } else {
            (word(bytes), 0)
        };
        let mixed = (self.0.rotate_left(23) ^ head.rotate_left(7) ^ tail ^ n as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = mixed ^ (mixed >> 29);
    }
}

type KeyTable =
    std::collections::HashMap<&'static [u8], Key, std::hash::BuildHasherDefault<KeyHasher>>;

fn key_table() -> KeyTable {
    KEY_NAMES
        .iter()
        .zip(KEYS)
        .map(|(name, key)| (name.as_bytes(), *key))
        .collect()
}

/// Per-listener settings of the environ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironConfig {
    multithread: bool,
    multiprocess: bool,
    server_name: String,
    server_port: String,
}

impl Default for EnvironConfig {
    fn default() -> Self {
        EnvironConfig {
            multithread: false,
            multiprocess: false,
            server_name: "localhost".to_owned(),
            server_port: String::new(),
        }
    }
}

impl EnvironConfig {
    /// A configuration with every setting at its default.
    pub fn new() -> EnvironConfig {
        EnvironConfig::default()
    }

    /// `wsgi.multithread`: whether other threads of this process may call the app at the same
    /// time (`threads > 1`). Default is `false`.
    pub fn multithread(&mut self, on: bool) -> &mut Self {
        self.multithread = on;
        self
    }

    /// `wsgi.multiprocess`: whether other processes serve the same app (`processes > 1`).
    /// Default is `false`.
    pub fn multiprocess(&mut self, on: bool) -> &mut Self {
        self.multiprocess = on;
        self
    }

    /// `SERVER_NAME` when the request carries none and has no `Host` (nginx always sends
    /// one). Default is `"localhost"`.
    pub fn server_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.server_name = name.into();
        self
    }

    /// `SERVER_PORT` when the request carries none; empty means "80" or "443" by scheme.
    /// Default is empty.
    pub fn server_port(&mut self, port: impl Into<String>) -> &mut Self {
        self.server_port = port.into();
        self
    }
}

/// Everything about the environ that does not change between requests on one listener:
/// interned keys, pre-built common values and a base dict holding the constant `wsgi.*`
/// entries (`version`, `errors`, `multithread`, `multiprocess`, `run_once`,
/// `input_terminated`, `file_wrapper`). Each request starts from a `dict.copy()` of it.
pub struct EnvironTemplate {
    base: Py<PyDict>,
    table: KeyTable,
    keys: Vec<Py<PyString>>,
    values: Vec<Py<PyString>>,
    http: Py<PyString>,
    https: Py<PyString>,
    server_name: Py<PyString>,
    server_port: Option<Py<PyString>>,
}

impl fmt::Debug for EnvironTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvironTemplate")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl EnvironTemplate {
    /// Builds the template: interns the keys, pre-builds values and fills the base dict.
    ///
    /// `errors` becomes `wsgi.errors` and `file_wrapper` `wsgi.file_wrapper` (normally
    /// [`crate::ErrorStream`] and the [`crate::FileWrapper`] type).
    ///
    /// # Errors
    ///
    /// A Python error while building the dict (out of memory).
    pub fn new(
        py: Python<'_>,
        config: &EnvironConfig,
        errors: Bound<'_, PyAny>,
        file_wrapper: Bound<'_, PyAny>,
    ) -> PyResult<EnvironTemplate> {
        let keys: Vec<Py<PyString>> = KEY_NAMES
            .iter()
            .map(|k| PyString::intern(py, k).unbind())
            .collect();
        let values: Vec<Py<PyString>> = VALUE_NAMES
            .iter()
            .map(|v| PyString::intern(py, v).unbind())
            .collect();
        let base = PyDict::new(py);
        let key = |k: Key| keys[k as usize].bind(py);
        base.set_item(key(Key::WsgiVersion), PyTuple::new(py, [1, 0])?)?;
        base.set_item(key(Key::WsgiErrors), errors)?;
        base.set_item(key(Key::WsgiMultithread), config.multithread)?;
        base.set_item(key(Key::WsgiMultiprocess), config.multiprocess)?;
        base.set_item(key(Key::WsgiRunOnce), false)?;
        base.set_item(key(Key::WsgiInputTerminated), true)?;
        base.set_item(key(Key::WsgiFileWrapper), file_wrapper)?;
        // Keys every request sets (`finish` guarantees them; a request without
        // REQUEST_METHOD is refused). Present here as placeholders, they give each request's
        // copy the capacity it needs up front: CPython copies a dict without deleted entries
        // by cloning its key table, so the per-request inserts do not grow (re-allocate and
        // rehash) the dict. Every placeholder is overwritten before the app sees the environ.
        for always in [
            Key::RequestMethod,
            Key::ScriptName,
            Key::PathInfo,
            Key::QueryString,
            Key::ServerName,
            Key::ServerPort,
            Key::WsgiUrlScheme,
            Key::WsgiInput,
        ] {
            base.set_item(key(always), py.None())?;
        }
        Ok(EnvironTemplate {
            base: base.unbind(),
            table: key_table(),
            http: PyString::intern(py, "http").unbind(),
            https: PyString::intern(py, "https").unbind(),
            server_name: PyString::new(py, &config.server_name).unbind(),
            server_port: (!config.server_port.is_empty())
                .then(|| PyString::new(py, &config.server_port).unbind()),
            keys,
            values,
        })
    }

    /// Starts the environ of one request (a copy of the base dict).
    ///
    /// # Errors
    ///
    /// A Python error from `dict.copy()` (out of memory).
    pub fn builder<'py, 't, 'a>(
        &'t self,
        py: Python<'py>,
    ) -> PyResult<EnvironBuilder<'py, 't, 'a>> {
        Ok(EnvironBuilder {
            py,
            template: self,
            dict: self.base.bind(py).copy()?,
            seen: 0,
            script_name: b"",
            path_info: b"",
            decoded_path: None,
            server_port: None,
            tls: false,
            uwsgi_scheme: None,
            https: None,
            request_scheme: None,
            host: None,
            has_method: false,
            has_query: false,
            has_server_name: false,
            has_server_port: false,
            strip_script_name: false,
        })
    }

    fn key<'py>(&self, py: Python<'py>, key: Key) -> &Bound<'py, PyString> {
        self.keys[key as usize].bind(py)
    }
}

/// Why an environ could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum EnvironError {
    /// The request has no `REQUEST_METHOD` (PEP 3333 requires one; nginx always sends it).
    MissingMethod,
    /// No mounted app matches and there is no default app.
    NoApp,
    /// A Python error (out of memory while building strings).
    Python(PyErr),
}

impl fmt::Display for EnvironError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvironError::MissingMethod => f.write_str("request has no REQUEST_METHOD var"),
            EnvironError::NoApp => f.write_str("no application is mounted for this path"),
            EnvironError::Python(err) => {
                write!(f, "Python error while building the environ: {err}")
            }
        }
    }
}

impl std::error::Error for EnvironError {}

impl From<PyErr> for EnvironError {
    fn from(err: PyErr) -> Self {
        EnvironError::Python(err)
    }
}

/// Builds one request's environ from CGI vars, applying PEP 3333 and uWSGI's rules:
///
/// - every var becomes a key, key and value decoded **latin-1** (any byte survives);
/// - `HTTP_CONTENT_TYPE`/`HTTP_CONTENT_LENGTH` (nginx's duplicates) are dropped, empty
///   `CONTENT_TYPE`/`CONTENT_LENGTH` are omitted;
/// - an `HTTP_*` key seen again is joined with `", "` (`"; "` for `HTTP_COOKIE`), as nginx
///   ≥ 1.23 joins repeated headers; for other keys the last value wins (uWSGI);
/// - `SCRIPT_NAME` defaults to `""` (never `"/"`), `QUERY_STRING` to `""`, `SERVER_NAME` to
///   the `Host` or the listener's name, `SERVER_PORT` to the listener's port or 80/443;
/// - `wsgi.url_scheme` from `UWSGI_SCHEME`, then `HTTPS` (`on`/`1`), then `REQUEST_SCHEME`,
///   else `http`; only `http`/`https` values count. `HTTP_X_FORWARDED_PROTO` is not trusted.
/// - uWSGI's magic vars (`UWSGI_SETENV`, `UWSGI_CHDIR`, `UWSGI_POSTFILE`, …) are passed as
///   plain strings and never acted on.
pub struct EnvironBuilder<'py, 't, 'a> {
    py: Python<'py>,
    template: &'t EnvironTemplate,
    dict: Bound<'py, PyDict>,
    /// Bit per [`Key`]: already inserted.
    seen: u64,
    script_name: &'a [u8],
    path_info: &'a [u8],
    /// A percent-decoded `PATH_INFO` from [`EnvironBuilder::request_line`] (wins over
    /// `path_info`).
    decoded_path: Option<Vec<u8>>,
    /// The listener's port, from [`EnvironBuilder::connection`].
    server_port: Option<u16>,
    /// The request came over TLS (the HTTP front's own listener).
    tls: bool,
    uwsgi_scheme: Option<&'a [u8]>,
    https: Option<&'a [u8]>,
    request_scheme: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
    has_method: bool,
    has_query: bool,
    has_server_name: bool,
    has_server_port: bool,
    strip_script_name: bool,
}

impl fmt::Debug for EnvironBuilder<'_, '_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvironBuilder")
            .field("len", &self.dict.len())
            .finish_non_exhaustive()
    }
}

const _: () = assert!(KEY_NAMES.len() <= 64, "the seen-set is a u64");

impl<'py, 't, 'a> EnvironBuilder<'py, 't, 'a> {
    /// Adds one CGI var (a uwsgi pair, or what the HTTP front derives from the request line).
    ///
    /// # Errors
    ///
    /// A Python error (out of memory).
    pub fn var(&mut self, key: &[u8], value: &'a [u8]) -> PyResult<()> {
        let known = self.template.table.get(key).copied();
        if let Some(k) = known {
            match k {
                Key::HttpContentType | Key::HttpContentLength => return Ok(()),
                Key::ContentType | Key::ContentLength if value.is_empty() => return Ok(()),
                Key::PathInfo => {
                    self.path_info = value;
                    self.decoded_path = None;
                    return Ok(());
                }
                Key::ScriptName => {
                    self.script_name = value;
                    return Ok(());
                }
                Key::UwsgiScheme => self.uwsgi_scheme = Some(value),
                Key::Https => self.https = Some(value),
                Key::RequestScheme => self.request_scheme = Some(value),
                Key::HttpHost => self.host = Some(value),
                Key::RequestMethod => self.has_method = true,
                Key::QueryString => self.has_query = true,
                Key::ServerName => self.has_server_name = true,
                Key::ServerPort => self.has_server_port = true,
                // wsgi.* keys cannot come from the wire: they would overwrite server objects.
                Key::WsgiVersion
                | Key::WsgiInput
                | Key::WsgiErrors
                | Key::WsgiMultithread
                | Key::WsgiMultiprocess
                | Key::WsgiRunOnce
                | Key::WsgiUrlScheme
                | Key::WsgiInputTerminated
                | Key::WsgiFileWrapper => {
                    tracing::debug!("ignoring request var that names a wsgi.* key");
                    return Ok(());
                }
                _ => {}
            }
            let bit = 1u64 << (k as u8);
            let key_obj = self.template.key(self.py, k);
            if self.seen & bit != 0 && key.starts_with(b"HTTP_") {
                return self.join(key_obj.clone().into_any(), key, value);
            }
            self.seen |= bit;
            let value = match k {
                Key::RequestMethod
                | Key::ServerProtocol
                | Key::RequestScheme
                | Key::Https
                | Key::ServerPort => self.value(value),
                _ if value.is_empty() => self.empty(),
                _ => latin1(self.py, value),
            };
            return self.dict.set_item(key_obj, value);
        }
        if key.starts_with(b"wsgi.") {
            tracing::debug!("ignoring request var that names a wsgi.* key");
            return Ok(());
        }
        let key_obj = latin1(self.py, key);
        if key.starts_with(b"HTTP_") && self.dict.contains(&key_obj)? {
            return self.join(key_obj.into_any(), key, value);
        }
        let value = if value.is_empty() {
            self.empty()
        } else {
            latin1(self.py, value)
        };
        self.dict.set_item(key_obj, value)
    }

    /// Adds one HTTP request field, as the HTTP front parsed it: `name` becomes `HTTP_` +
    /// upper-cased name with `-` → `_`; `Content-Type`/`Content-Length` become
    /// `CONTENT_TYPE`/`CONTENT_LENGTH`; names containing `_` are dropped (so
    /// `X_Forwarded_For` cannot pose as `X-Forwarded-For`, as gunicorn and waitress do);
    /// repeated fields are joined.
    ///
    /// # Errors
    ///
    /// A Python error (out of memory).
    pub fn header(&mut self, name: &[u8], value: &'a [u8]) -> PyResult<()> {
        if name.contains(&b'_') || name.is_empty() {
            tracing::debug!(name = %name.escape_ascii(), "dropping request field with `_` in its name");
            return Ok(());
        }
        if name.eq_ignore_ascii_case(b"content-type") {
            return self.var(b"CONTENT_TYPE", value);
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            return self.var(b"CONTENT_LENGTH", value);
        }
        let mut key = Vec::with_capacity(5 + name.len());
        key.extend_from_slice(b"HTTP_");
        key.extend(name.iter().map(|&b| match b {
            b'-' => b'_',
            b => b.to_ascii_uppercase(),
        }));
        self.var(&key, value)
    }

    /// Adds the CGI vars of an HTTP request line: `REQUEST_METHOD`, `SERVER_PROTOCOL`,
    /// `REQUEST_URI` and `RAW_URI` (the target as sent), `QUERY_STRING` (after the first
    /// `?`) and `PATH_INFO` (the path, percent-decoded, as latin-1; an absolute-form target
    /// `http://host/p` contributes `/p`; `*` gives `""`). Malformed `%` escapes are kept as
    /// they are, as werkzeug and gunicorn do.
    ///
    /// # Errors
    ///
    /// A Python error (out of memory).
    pub fn request_line(
        &mut self,
        method: &'a [u8],
        target: &'a [u8],
        version: &'a [u8],
    ) -> PyResult<()> {
        self.var(b"REQUEST_METHOD", method)?;
        self.var(b"SERVER_PROTOCOL", version)?;
        self.var(b"REQUEST_URI", target)?;
        self.var(b"RAW_URI", target)?;
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(q) => (&target[..q], &target[q + 1..]),
            None => (target, &b""[..]),
        };
        self.var(b"QUERY_STRING", query)?;
        let path = origin_path(path);
        self.path_info = path;
        self.decoded_path = path.contains(&b'%').then(|| percent_decode(path));
        Ok(())
    }

    /// Adds what the connection knows: `REMOTE_ADDR`/`REMOTE_PORT` from the peer and the
    /// listener's port as the `SERVER_PORT` default; `tls` makes `wsgi.url_scheme` `https`.
    ///
    /// # Errors
    ///
    /// A Python error (out of memory).
    pub fn connection(
        &mut self,
        remote: Option<std::net::SocketAddr>,
        local: Option<std::net::SocketAddr>,
        tls: bool,
    ) -> PyResult<()> {
        let py = self.py;
        if let Some(remote) = remote {
            let ip = remote.ip().to_string();
            let port = remote.port().to_string();
            self.dict.set_item(
                self.template.key(py, Key::RemoteAddr),
                PyString::new(py, &ip),
            )?;
            self.dict.set_item(
                self.template.key(py, Key::RemotePort),
                PyString::new(py, &port),
            )?;
        }
        self.server_port = local.map(|l| l.port());
        self.tls = tls;
        Ok(())
    }

    /// Strips `SCRIPT_NAME` from the front of `PATH_INFO` at a `/` boundary: uwsgi
    /// modifier1 30 as its docs describe it (uWSGI 2.0 under Python 3 silently does nothing).
    pub fn strip_script_name(&mut self, on: bool) -> &mut Self {
        self.strip_script_name = on;
        self
    }

    /// Finishes the environ: picks the app (mount points), sets `SCRIPT_NAME`, `PATH_INFO`,
    /// the defaults, `wsgi.url_scheme` and `wsgi.input`.
    ///
    /// # Errors
    ///
    /// [`EnvironError::MissingMethod`], [`EnvironError::NoApp`], or a Python error.
    pub fn finish<'t2>(
        mut self,
        apps: &'t2 AppTable,
        input: &Bound<'py, PyAny>,
    ) -> Result<(Bound<'py, PyDict>, &'t2 WsgiApp), EnvironError> {
        if !self.has_method {
            return Err(EnvironError::MissingMethod);
        }
        let py = self.py;
        let t = self.template;
        let mut script = self.script_name;
        let decoded = self.decoded_path.take();
        let mut path = decoded.as_deref().unwrap_or(self.path_info);
        if script == b"/" {
            script = b"";
        }
        if self.strip_script_name && !script.is_empty() && boundary_prefix(path, script) {
            path = &path[script.len()..];
        }
        let (app, moved) = apps.route(script, path).ok_or(EnvironError::NoApp)?;
        if moved > 0 {
            script = &path[..moved];
            path = &path[moved..];
        }
        let script = script.strip_suffix(b"/").unwrap_or(script);
        self.dict
            .set_item(t.key(py, Key::ScriptName), self.value(script))?;
        self.dict
            .set_item(t.key(py, Key::PathInfo), self.value(path))?;
        if !self.has_query {
            self.dict
                .set_item(t.key(py, Key::QueryString), self.value(b""))?;
        }
        let https = self.tls
            || scheme(self.uwsgi_scheme)
                .or_else(|| {
                    self.https
                        .map(|v| v.eq_ignore_ascii_case(b"on") || v == b"1")
                })
                .or_else(|| scheme(self.request_scheme))
                .unwrap_or(false);
        if !self.has_server_name {
            let name = match self.host {
                Some(host) => self.value(host_name(host)),
                None => t.server_name.bind(py).clone(),
            };
            self.dict.set_item(t.key(py, Key::ServerName), name)?;
        }
        if !self.has_server_port {
            let port = match (&t.server_port, self.host.and_then(host_port)) {
                (_, Some(port)) => self.value(port),
                (_, None) if self.server_port.is_some() => {
                    let port = self.server_port.unwrap_or_default().to_string();
                    PyString::new(py, &port)
                }
                (Some(port), None) => port.bind(py).clone(),
                (None, None) => self.value(if https { b"443" } else { b"80" }),
            };
            self.dict.set_item(t.key(py, Key::ServerPort), port)?;
        }
        let url_scheme = if https { &t.https } else { &t.http };
        self.dict
            .set_item(t.key(py, Key::WsgiUrlScheme), url_scheme.bind(py))?;
        self.dict.set_item(t.key(py, Key::WsgiInput), input)?;
        Ok((self.dict, app))
    }

    fn join(&mut self, key: Bound<'py, PyAny>, raw_key: &[u8], value: &[u8]) -> PyResult<()> {
        let separator = if raw_key == b"HTTP_COOKIE" {
            "; "
        } else {
            ", "
        };
        let joined = match self.dict.get_item(&key)? {
            Some(old) => {
                let mut s: String = old.extract()?;
                s.push_str(separator);
                push_latin1(&mut s, value);
                PyString::new(self.py, &s)
            }
            None => self.value(value),
        };
        self.dict.set_item(key, joined)
    }

    fn empty(&self) -> Bound<'py, PyString> {
        // VALUE_NAMES[0] is "".
        self.template.values[0].bind(self.py).clone()
    }

    fn value(&self, value: &[u8]) -> Bound<'py, PyString> {
        if value.len() <= 8 {
            for (i, v) in VALUE_NAMES.iter().enumerate() {
                if v.as_bytes() == value {
                    return self.template.values[i].bind(self.py).clone();
                }
            }
        }
        latin1(self.py, value)
    }
}

/// The path of a request target: origin-form as is, absolute-form without scheme and
/// authority, `*` (asterisk-form) as empty.
fn origin_path(target: &[u8]) -> &[u8] {
    if target == b"*" {
        return b"";
    }
    if target.first() == Some(&b'/') {
        return target;
    }
    match target.windows(3).position(|w| w == b"://") {
        Some(at) => {
            let rest = &target[at + 3..];
            match rest.iter().position(|&b| b == b'/') {
                Some(slash) => &rest[slash..],
                None => b"",
            }
        }
        None => target,
    }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
fn percent_decode(path: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                path.get(i + 1).copied().and_then(hex),
                path.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

/// `Some(true)` for `https`, `Some(false)` for `http` (any case), `None` otherwise.
fn scheme(value: Option<&[u8]>) -> Option<bool> {
    match value? {
        v if v.eq_ignore_ascii_case(b"https") => Some(true),
        v if v.eq_ignore_ascii_case(b"http") => Some(false),
        _ => None,
    }
}

fn boundary_prefix(path: &[u8], prefix: &[u8]) -> bool {
    path.starts_with(prefix) && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}

/// The host part of a `Host` value (`[v6]:port`, `name:port`, `name`).
fn host_name(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

fn host_port(host: &[u8]) -> Option<&[u8]> {
    let after = match host.iter().rposition(|&b| b == b']') {
        Some(end) => &host[end + 1..],
        None => host,
    };
    let colon = after.iter().position(|&b| b == b':')?;
    let port = &after[colon + 1..];
    (!port.is_empty() && port.iter().all(u8::is_ascii_digit)).then_some(port)
}

/// Decodes bytes as latin-1 into a Python `str` (PEP 3333 native string): ASCII goes
/// through the UTF-8 fast path, other bytes map one-to-one to U+0000..U+00FF.
pub(crate) fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(bytes) {
        Ok(s) if bytes.is_ascii() => PyString::new(py, s),
        _ => {
            let mut s = String::with_capacity(bytes.len() * 2);
            push_latin1(&mut s, bytes);
            PyString::new(py, &s)
        }
    }
}

fn push_latin1(s: &mut String, bytes: &[u8]) {
    s.extend(bytes.iter().map(|&b| char::from(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_found() {
        let table = key_table();
        assert_eq!(table.len(), KEY_NAMES.len(), "no duplicate names");
        for (i, name) in KEY_NAMES.iter().enumerate() {
            assert_eq!(
                table.get(name.as_bytes()).map(|k| *k as usize),
                Some(i),
                "{name}"
            );
            assert_eq!(
                lookup_key(name.as_bytes()).map(|k| k as usize),
                Some(i),
                "{name}"
            );
        }
        assert_eq!(lookup_key(b"HTTP_X_UNKNOWN"), None);
        assert_eq!(table.get(&b"HTTP_X_UNKNOWN"[..]), None);
        assert_eq!(VALUE_NAMES[0], "");
    }

    #[test]
    fn host_parts() {
        assert_eq!(host_name(b"example.org:8080"), b"example.org");
        assert_eq!(host_port(b"example.org:8080"), Some(&b"8080"[..]));
        assert_eq!(host_name(b"[::1]:81"), b"[::1]");
        assert_eq!(host_port(b"[::1]:81"), Some(&b"81"[..]));
        assert_eq!(host_port(b"[::1]"), None);
        assert_eq!(host_name(b"example.org"), b"example.org");
        assert_eq!(host_port(b"example.org:"), None);
    }

    #[test]
    fn targets() {
        assert_eq!(origin_path(b"/a/b"), b"/a/b");
        assert_eq!(origin_path(b"http://example.org/a?x"), b"/a?x");
        assert_eq!(origin_path(b"http://example.org"), b"");
        assert_eq!(origin_path(b"*"), b"");
        assert_eq!(
            percent_decode(b"/w%20rld/%e2%82%ac"),
            b"/w rld/\xe2\x82\xac"
        );
        assert_eq!(percent_decode(b"/100%/%zz/%4"), b"/100%/%zz/%4");
        assert_eq!(percent_decode(b"%2F"), b"/");
    }

    /// The HTTP path through the same builder: request line, fields, connection.
    #[test]
    fn http_request_through_the_builder() {
        Python::initialize();
        Python::attach(|py| {
            let app = py.eval(c"lambda e, s: []", None, None).unwrap().unbind();
            let mut apps = AppTable::single(WsgiApp::from_callable(app, "t"));
            apps.manage_script_name(true);
            let errors = py.None().into_bound(py);
            let template =
                EnvironTemplate::new(py, &EnvironConfig::new(), errors.clone(), errors.clone())
                    .unwrap();
            let mut b = template.builder(py).unwrap();
            b.request_line(b"GET", b"/caf%C3%A9/x%20y?q=1&r=%20", b"HTTP/1.1")
                .unwrap();
            b.header(b"Host", b"example.org:8080").unwrap();
            b.header(b"X-Dup", b"a").unwrap();
            b.header(b"x-dup", b"b").unwrap();
            b.header(b"Cookie", b"c1=1").unwrap();
            b.header(b"Cookie", b"c2=2").unwrap();
            b.header(b"Content-Type", b"text/plain").unwrap();
            b.header(b"Content-Length", b"").unwrap();
            b.header(b"X_Under_Score", b"spoof").unwrap();
            b.connection(
                Some("192.0.2.1:4321".parse().unwrap()),
                Some("127.0.0.1:8000".parse().unwrap()),
                true,
            )
            .unwrap();
            let (env, _) = b.finish(&apps, &errors).unwrap();
            let get = |k: &str| -> Option<String> {
                env.get_item(k)
                    .unwrap()
                    .map(|v| v.extract::<String>().unwrap())
            };
            assert_eq!(get("PATH_INFO").as_deref(), Some("/caf\u{c3}\u{a9}/x y"));
            assert_eq!(get("QUERY_STRING").as_deref(), Some("q=1&r=%20"));
            assert_eq!(
                get("RAW_URI").as_deref(),
                Some("/caf%C3%A9/x%20y?q=1&r=%20")
            );
            assert_eq!(get("SERVER_PROTOCOL").as_deref(), Some("HTTP/1.1"));
            assert_eq!(get("HTTP_X_DUP").as_deref(), Some("a, b"));
            assert_eq!(get("HTTP_COOKIE").as_deref(), Some("c1=1; c2=2"));
            assert_eq!(get("CONTENT_TYPE").as_deref(), Some("text/plain"));
            assert_eq!(get("CONTENT_LENGTH"), None);
            assert_eq!(get("HTTP_X_UNDER_SCORE"), None);
            assert_eq!(get("SERVER_NAME").as_deref(), Some("example.org"));
            assert_eq!(get("SERVER_PORT").as_deref(), Some("8080"));
            assert_eq!(get("REMOTE_ADDR").as_deref(), Some("192.0.2.1"));
            assert_eq!(get("REMOTE_PORT").as_deref(), Some("4321"));
            assert_eq!(get("SCRIPT_NAME").as_deref(), Some(""));
            assert_eq!(get("wsgi.url_scheme").as_deref(), Some("https"));
        });
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme(Some(b"HTTPS")), Some(true));
        assert_eq!(scheme(Some(b"http")), Some(false));
        assert_eq!(scheme(Some(b"ftp")), None);
        assert!(boundary_prefix(b"/app/x", b"/app"));
        assert!(boundary_prefix(b"/app", b"/app"));
        assert!(!boundary_prefix(b"/apple", b"/app"));
    }
}

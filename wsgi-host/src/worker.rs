//! A worker: the loaded apps, the environ template and the server settings.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::app::AppTable;
use crate::environ::{EnvironBuilder, EnvironConfig, EnvironError, EnvironTemplate};
use crate::errors::ErrorStream;
use crate::file_wrapper::FileWrapper;
use crate::input::{BodyError, BodySource, InputState, SharedInput, WsgiInput};
use crate::interpreter::format_traceback;
use crate::response::{Exchange, Outcome, ResponseHead, ResponseSink, ResponseState, run_app};
use crate::runtime::watchdog::Harakiri;
use crate::uwsgi::UwsgiSettings;

/// Largest chunk-framed request body when `limit-post` is 0, in bytes (1 GiB, waitress's
/// `max_request_body_size` default).
pub const DEFAULT_CHUNKED_LIMIT: u64 = 1 << 30;

/// Settings of one worker (uWSGI option names in brackets). Plain data with `&mut self`
/// setters.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub(crate) threads: usize,
    pub(crate) processes: usize,
    pub(crate) socket_timeout: Duration,
    pub(crate) buffer_size: u16,
    pub(crate) max_vars: usize,
    pub(crate) limit_post: u64,
    pub(crate) post_buffering: usize,
    pub(crate) drain_limit: u64,
    pub(crate) drain_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) server_name: String,
    pub(crate) harakiri: Option<Duration>,
    pub(crate) max_requests: Option<u64>,
    pub(crate) access_log: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            threads: 1,
            processes: 1,
            socket_timeout: Duration::from_secs(4),
            buffer_size: u16::MAX,
            max_vars: 512,
            limit_post: 0,
            post_buffering: 0,
            drain_limit: 16 << 20,
            drain_timeout: Duration::from_secs(2),
            max_connections: 1024,
            server_name: "localhost".to_owned(),
            harakiri: None,
            max_requests: None,
            access_log: true,
        }
    }
}

impl ServerConfig {
    /// A configuration with every setting at its default.
    pub fn new() -> ServerConfig {
        ServerConfig::default()
    }

    /// Python threads running the app (uWSGI `threads`). `1` runs the app on the worker's I/O
    /// thread (no hand-off); `N > 1` starts N Python threads, each attached once, so a slow
    /// request never delays requests on other connections. `0` is treated as 1. Sets
    /// `wsgi.multithread` to `N > 1`. Default is 1.
    pub fn threads(&mut self, threads: usize) -> &mut Self {
        self.threads = threads.max(1);
        self
    }

    /// Worker processes serving the same app (uWSGI `processes`); only sets `wsgi.multiprocess`
    /// here (the master that forks them comes later). Default is 1.
    pub fn processes(&mut self, processes: usize) -> &mut Self {
        self.processes = processes.max(1);
        self
    }

    /// Longest wait for the request head, for each body read and each response write
    /// (uWSGI `socket-timeout`). Default is 4 s (uWSGI's).
    pub fn socket_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.socket_timeout = timeout;
        self
    }

    /// Largest uwsgi vars block accepted, in bytes (uWSGI `buffer-size`). Default is 65535 (nginx
    /// may send that much; uWSGI's own 4096 breaks big cookies).
    pub fn buffer_size(&mut self, bytes: u16) -> &mut Self {
        self.buffer_size = bytes;
        self
    }

    /// Most vars in one packet [`max-vars`, counted in pairs]. Default is 512.
    pub fn max_vars(&mut self, count: usize) -> &mut Self {
        self.max_vars = count;
        self
    }

    /// Largest request body, in bytes; 0 = no limit (uWSGI `limit-post`). A larger
    /// `CONTENT_LENGTH` closes the connection before the app runs; a chunked body is cut
    /// when it passes the limit (the app's read raises `OSError`). With 0, chunked bodies
    /// still stop at [`DEFAULT_CHUNKED_LIMIT`]. Default is 0.
    pub fn limit_post(&mut self, bytes: u64) -> &mut Self {
        self.limit_post = bytes;
        self
    }

    /// Read the whole body before calling the app, keeping up to this many bytes in memory
    /// and spilling larger bodies to a temporary file; 0 = stream (uWSGI `post-buffering`).
    /// Default is 0.
    pub fn post_buffering(&mut self, bytes: usize) -> &mut Self {
        self.post_buffering = bytes;
        self
    }

    /// Most unread request-body bytes discarded after the response before closing (so the
    /// close does not reset the connection and make nginx answer 502). Default is 16 MiB.
    pub fn drain_limit(&mut self, bytes: u64) -> &mut Self {
        self.drain_limit = bytes;
        self
    }

    /// Longest time spent draining the unread body after the response. Default is 2 s.
    pub fn drain_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.drain_timeout = timeout;
        self
    }

    /// Longest a single request may run (uWSGI `harakiri`, seconds there): past it, a
    /// watchdog thread logs the request's worker and kills the process with SIGKILL, and the
    /// master starts a new worker. It fires even while the app holds the GIL. Default: none.
    pub fn harakiri(&mut self, limit: Option<Duration>) -> &mut Self {
        self.harakiri = limit.filter(|d| !d.is_zero());
        self
    }

    /// Recycle the worker after this many requests (uWSGI `max-requests`): it stops
    /// accepting, finishes what is in flight and [`serve`](crate::serve) returns, so the
    /// process exits and the master starts a fresh one. Default: none.
    pub fn max_requests(&mut self, count: Option<u64>) -> &mut Self {
        self.max_requests = count.filter(|n| *n > 0);
        self
    }

    /// Log one line per request (target `access`): remote address, time, request line,
    /// status, body bytes, referer, user agent (the combined format), then the time taken
    /// in milliseconds. `false` is uWSGI's `disable-logging`. Default is `true`.
    pub fn access_log(&mut self, on: bool) -> &mut Self {
        self.access_log = on;
        self
    }

    /// Most connections open at once (reading heads or waiting for a thread); further
    /// connections wait in the kernel's accept queue (backpressure). Default is 1024.
    pub fn max_connections(&mut self, count: usize) -> &mut Self {
        self.max_connections = count.max(1);
        self
    }

    /// `SERVER_NAME` for requests that carry neither it nor a `Host`. Default is
    /// `"localhost"`.
    pub fn server_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.server_name = name.into();
        self
    }
}

/// What a worker serves: the apps, the environ template, the settings. Shared by every
/// connection (`Arc<Worker>`); build it with the interpreter attached, after
/// [`crate::initialize`] and [`crate::load_app`].
pub struct Worker {
    apps: AppTable,
    template: EnvironTemplate,
    config: ServerConfig,
    harakiri: Option<Harakiri>,
    served: AtomicU64,
    /// Set to `true` when `max-requests` is reached: the accept loops stop.
    recycle: tokio::sync::watch::Sender<bool>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("apps", &self.apps)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Builds the worker: one `wsgi.errors` stream and one environ template for it.
    ///
    /// # Errors
    ///
    /// A Python error while building the template (out of memory).
    pub fn new(py: Python<'_>, apps: AppTable, config: ServerConfig) -> PyResult<Worker> {
        let mut environ = EnvironConfig::new();
        environ
            .multithread(config.threads > 1)
            .multiprocess(config.processes > 1)
            .server_name(config.server_name.clone());
        let errors = Bound::new(py, ErrorStream::new())?;
        let file_wrapper = py.get_type::<FileWrapper>();
        let template =
            EnvironTemplate::new(py, &environ, errors.into_any(), file_wrapper.into_any())?;
        let harakiri = match config.harakiri {
            Some(limit) => Some(Harakiri::start(limit, config.threads + 1).map_err(|e| {
                pyo3::exceptions::PyOSError::new_err(format!(
                    "cannot start the harakiri watchdog: {e}"
                ))
            })?),
            None => None,
        };
        Ok(Worker {
            apps,
            template,
            config,
            harakiri,
            served: AtomicU64::new(0),
            recycle: tokio::sync::watch::channel(false).0,
        })
    }

    /// A receiver that turns `true` once the worker has served `max-requests` requests.
    pub(crate) fn recycle_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.recycle.subscribe()
    }

    /// Requests served so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Counts a finished request and asks the accept loops to stop at `max-requests`.
    fn count_request(&self) {
        let served = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        if self.config.max_requests == Some(served) {
            tracing::info!(
                "worker {} served {served} requests (max-requests): recycling",
                std::process::id()
            );
            self.recycle.send_replace(true);
        }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The apps.
    pub fn apps(&self) -> &AppTable {
        &self.apps
    }

    /// The environ template (for building environs outside a listener, e.g. benches).
    pub fn template(&self) -> &EnvironTemplate {
        &self.template
    }

    /// Runs one request: the protocol-neutral core both listeners share.
    ///
    /// `fill` feeds the request's CGI vars to the [`EnvironBuilder`] (uwsgi vars as they
    /// are; the HTTP front calls [`EnvironBuilder::var`] for the request line and
    /// [`EnvironBuilder::header`] for each field). `body` is what `wsgi.input` reads: a
    /// streaming source, or the result of `post-buffering` (which the listener does before
    /// it calls this, asynchronously, so a slow upload never holds a Python thread; see
    /// [`BodySpooler`](crate::BodySpooler)). Then the app is picked (mount points), called,
    /// and its response written to `sink`. Blocking: call it on an attached thread; it releases the GIL around every
    /// wait.
    ///
    /// An unmounted path gets a 404, a Python error before the headers a 500 (both logged);
    /// the returned [`RequestBody`] lets the caller drain the unread body before it closes
    /// or reuses the connection.
    ///
    /// # Errors
    ///
    /// [`RequestError::Environ`] ([`EnvironError::MissingMethod`]): nothing was sent; close
    /// the connection (uwsgi) or answer 400 (HTTP).
    pub fn run_request<'py, 'a>(
        &self,
        py: Python<'py>,
        fill: impl FnOnce(&mut EnvironBuilder<'py, '_, 'a>) -> PyResult<()>,
        body: Box<dyn BodySource>,
        sink: Box<dyn ResponseSink>,
        options: RequestOptions,
    ) -> Result<(Outcome, RequestBody), RequestError> {
        let _harakiri = self.harakiri.as_ref().map(Harakiri::begin_current);
        let result = self.run_request_inner(py, fill, body, sink, options);
        self.count_request();
        result
    }

    fn run_request_inner<'py, 'a>(
        &self,
        py: Python<'py>,
        fill: impl FnOnce(&mut EnvironBuilder<'py, '_, 'a>) -> PyResult<()>,
        body: Box<dyn BodySource>,
        sink: Box<dyn ResponseSink>,
        options: RequestOptions,
    ) -> Result<(Outcome, RequestBody), RequestError> {
        let input: SharedInput = Arc::new(Mutex::new(InputState::new(body)));
        let exchange = Exchange {
            response: Arc::new(Mutex::new(ResponseState::new(sink, options.head))),
        };
        let prepared = (|| -> Result<_, EnvironError> {
            let input_obj = Bound::new(py, WsgiInput::new(Arc::clone(&input)))?;
            let mut builder = self.template.builder(py)?;
            builder.strip_script_name(options.strip_script_name);
            fill(&mut builder)?;
            builder.finish(&self.apps, input_obj.as_any())
        })();
        let started = self.config.access_log.then(std::time::Instant::now);
        let outcome = match prepared {
            Ok((environ, app)) => {
                let outcome = run_app(py, app.callable().bind(py), &environ, &exchange);
                if let Some(started) = started {
                    let (status, sent) = lock_response(&exchange.response).summary();
                    access_log(&environ, status, sent, started.elapsed());
                }
                outcome
            }
            Err(EnvironError::NoApp) => {
                tracing::warn!("no application mounted for this path; answering 404");
                send_plain(&exchange, "404 Not Found", options.head)
            }
            Err(EnvironError::Python(err)) => {
                let traceback = format_traceback(py, &err);
                tracing::error!(
                    "internal error preparing the request\n{}",
                    traceback.trim_end()
                );
                match send_plain(&exchange, "500 Internal Server Error", options.head) {
                    Outcome::Complete => Outcome::ServerError,
                    other => other,
                }
            }
            Err(err) => return Err(RequestError::Environ(err)),
        };
        Ok((outcome, RequestBody(input)))
    }

    pub(crate) fn uwsgi_settings(&self) -> UwsgiSettings {
        let mut limits = uwsgi_proto::Limits::default();
        limits.max_datasize = self.config.buffer_size;
        limits.max_vars = self.config.max_vars;
        if self.config.limit_post > 0 {
            limits.max_body = self.config.limit_post;
        }
        UwsgiSettings {
            socket_timeout: self.config.socket_timeout,
            limits,
            post_buffering: self.config.post_buffering,
            // A chunked body has no announced length: without limit-post it still stops at
            // DEFAULT_CHUNKED_LIMIT, so an endless body cannot exhaust memory or disk.
            chunked_limit: if self.config.limit_post > 0 {
                self.config.limit_post
            } else {
                DEFAULT_CHUNKED_LIMIT
            },
            drain_limit: self.config.drain_limit,
            drain_timeout: self.config.drain_timeout,
        }
    }
}

/// Per-request switches for [`Worker::run_request`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestOptions {
    /// A `HEAD` request: the head goes out, no body bytes. Default is `false`.
    pub head: bool,
    /// Strip `SCRIPT_NAME` from the front of `PATH_INFO` (uwsgi modifier1 30). Default is
    /// `false`.
    pub strip_script_name: bool,
}

impl RequestOptions {
    /// Options for a request with this method and modifier behaviour.
    pub fn new(head: bool, strip_script_name: bool) -> RequestOptions {
        RequestOptions {
            head,
            strip_script_name,
        }
    }
}

/// Why [`Worker::run_request`] sent nothing.
#[derive(Debug)]
#[non_exhaustive]
pub enum RequestError {
    /// The request cannot become an environ (no `REQUEST_METHOD`).
    Environ(EnvironError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Environ(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl std::error::Error for RequestError {}

/// The request body after the response: drain it before closing (uwsgi) or reusing
/// (HTTP keep-alive) the connection.
pub struct RequestBody(SharedInput);

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestBody").finish_non_exhaustive()
    }
}

impl RequestBody {
    /// Reads and discards up to about `max` more body bytes (one source chunk may overshoot).
    /// Returns the bytes discarded and whether the end of the body was reached. Blocking;
    /// call it detached.
    ///
    /// # Errors
    ///
    /// The body source's [`BodyError`] (timeout, client gone, malformed chunked framing).
    pub fn drain(&self, max: u64) -> Result<(u64, bool), BodyError> {
        crate::input::lock(&self.0).drain(max)
    }
}

/// Answers with a short `text/plain` body, for responses the app never saw.
fn send_plain(exchange: &Exchange, status: &str, head_request: bool) -> Outcome {
    let body = status.as_bytes().get(4..).unwrap_or_default();
    let headers = [
        ("Content-Type".to_owned(), "text/plain".to_owned()),
        ("Content-Length".to_owned(), body.len().to_string()),
    ];
    let head = ResponseHead {
        status,
        code: status.get(..3).and_then(|c| c.parse().ok()).unwrap_or(500),
        headers: &headers,
    };
    let mut state = exchange.response.lock().unwrap_or_else(|p| p.into_inner());
    let body: &[&[u8]] = if head_request { &[] } else { &[body] };
    match state.sink_mut().send_head(&head, body) {
        Ok(()) => Outcome::Complete,
        Err(_) => Outcome::ClientGone,
    }
}

fn lock_response(
    state: &crate::response::SharedResponse,
) -> std::sync::MutexGuard<'_, ResponseState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// One access-log line in the combined format plus the time taken:
/// `127.0.0.1 - - [21/Nov/2026:05:56:00 +0000] "GET / HTTP/1.1" 200 13 "-" "curl/8.0" 0.412ms`.
fn access_log(environ: &Bound<'_, PyDict>, status: u16, sent: u64, took: Duration) {
    let get = |key: &str| -> String {
        environ
            .get_item(key)
            .ok()
            .flatten()
            .and_then(|v| v.extract::<String>().ok())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "-".to_owned())
    };
    let uri = match get("REQUEST_URI") {
        u if u != "-" => u,
        _ => get("PATH_INFO"),
    };
    tracing::info!(
        target: "access",
        "{} - - [{}] \"{} {} {}\" {status} {sent} \"{}\" \"{}\" {:.3}ms",
        get("REMOTE_ADDR"),
        clf_time(),
        get("REQUEST_METHOD"),
        uri.escape_debug(),
        get("SERVER_PROTOCOL"),
        get("HTTP_REFERER").escape_debug(),
        get("HTTP_USER_AGENT").escape_debug(),
        took.as_secs_f64() * 1000.0,
    );
}

/// `21/Nov/2026:05:56:00 +0000` (the common log format's time, in UTC).
fn clf_time() -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::now_utc()
        .format(FORMAT)
        .unwrap_or_else(|_| "-".to_owned())
}

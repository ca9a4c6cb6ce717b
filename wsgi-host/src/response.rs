//! `start_response`, `write()` and running the application (PEP 3333 "The
//! start_response() Callable", "Buffering and Streaming", "The write() Callable").

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::exceptions::{PyIOError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::file_wrapper::FileWrapper;
use crate::interpreter::format_traceback;

/// The response head as the app gave it: `status` is `"NNN reason"` (validated), headers
/// are `(name, value)` pairs in the app's order, validated (token names, no CR/LF/NUL, no
/// hop-by-hop fields, latin-1).
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// `"200 OK"`.
    pub status: &'a str,
    /// The status code parsed from `status`.
    pub code: u16,
    /// The app's headers.
    pub headers: &'a [(String, String)],
}

/// Where a response goes: the protocol side of the bridge.
///
/// Implementations block (the caller has released the GIL). The uwsgi listener writes a raw
/// `HTTP/1.1` head and the body as is (never chunked); the HTTP front will choose its own
/// framing from [`ResponseHead::headers`] and `body_complete`.
pub trait ResponseSink: Send {
    /// Sends the head together with the first body pieces (may be empty: a body-less
    /// response), ideally in one write.
    ///
    /// # Errors
    ///
    /// An I/O error: the client is gone; the response is abandoned.
    fn send_head(&mut self, head: &ResponseHead<'_>, body: &[&[u8]]) -> io::Result<()>;

    /// Sends more body bytes.
    ///
    /// # Errors
    ///
    /// An I/O error: the client is gone.
    fn send_body(&mut self, body: &[&[u8]]) -> io::Result<()>;

    /// Sends `len` bytes of `file` from its current position. The default reads 64 KiB
    /// blocks and calls [`send_body`](Self::send_body); socket sinks override it with
    /// `sendfile(2)`. Returns the bytes sent (less than `len` if the file is shorter).
    ///
    /// # Errors
    ///
    /// An I/O error reading the file or writing the socket.
    fn send_file(&mut self, file: &mut File, len: u64) -> io::Result<u64> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < len {
            let want = usize::try_from(len - sent)
                .unwrap_or(buf.len())
                .min(buf.len());
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            self.send_body(&[&buf[..n]])?;
            sent += n as u64;
        }
        Ok(sent)
    }
}

/// How a request ended, for the connection layer (close, drain, log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The whole response was sent.
    Complete,
    /// The app sent less than its own `Content-Length`: the connection must be closed.
    Short,
    /// The app failed before headers were sent; a 500 was sent instead.
    ServerError,
    /// The app failed after headers were sent: the connection must be cut.
    Cut,
    /// The client went away while the response was being written.
    ClientGone,
}

/// Why writing the body failed.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// `start_response` has not been called yet.
    NotStarted,
    /// The client is gone.
    Io(io::Error),
}

pub(crate) struct ResponseState {
    status: Option<(String, u16)>,
    headers: Vec<(String, String)>,
    head_sent: bool,
    content_length: Option<u64>,
    sent: u64,
    head_request: bool,
    suppress_body: bool,
    overflow_logged: bool,
    broken: bool,
    sink: Box<dyn ResponseSink>,
}

impl fmt::Debug for ResponseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseState")
            .field("status", &self.status)
            .field("head_sent", &self.head_sent)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

pub(crate) type SharedResponse = Arc<Mutex<ResponseState>>;

fn lock(state: &SharedResponse) -> MutexGuard<'_, ResponseState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl ResponseState {
    /// The status code sent (or chosen) so far, and the body bytes sent: for the access log.
    pub(crate) fn summary(&self) -> (u16, u64) {
        (self.status.as_ref().map_or(0, |(_, code)| *code), self.sent)
    }

    pub(crate) fn new(sink: Box<dyn ResponseSink>, head_request: bool) -> ResponseState {
        ResponseState {
            status: None,
            headers: Vec::new(),
            head_sent: false,
            content_length: None,
            sent: 0,
            head_request,
            suppress_body: head_request,
            overflow_logged: false,
            broken: false,
            sink,
        }
    }

    fn set(&mut self, status: String, code: u16, headers: Vec<(String, String)>) {
        self.content_length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<u64>().ok());
        self.suppress_body = self.head_request || code < 200 || code == 204 || code == 304;
        self.status = Some((status, code));
        self.headers = headers;
    }

    /// Sends body pieces, the head first if it has not gone out yet. Empty pieces do not
    /// trigger the head (PEP 3333: headers wait for the first non-empty chunk).
    fn write(&mut self, pieces: &[&[u8]]) -> Result<(), WriteError> {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        if total == 0 {
            return Ok(());
        }
        if self.status.is_none() {
            return Err(WriteError::NotStarted);
        }
        if self.broken {
            return Err(WriteError::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "client already gone",
            )));
        }
        // Content-Length from the app: never send more than it promised.
        let mut allowed = match self.content_length {
            Some(cl) => cl.saturating_sub(self.sent),
            None => u64::MAX,
        };
        let mut kept: Vec<&[u8]> = Vec::with_capacity(pieces.len());
        if !self.suppress_body {
            for piece in pieces.iter().filter(|p| !p.is_empty()) {
                if allowed == 0 {
                    break;
                }
                let take = usize::try_from(allowed).map_or(piece.len(), |a| a.min(piece.len()));
                kept.push(&piece[..take]);
                allowed -= take as u64;
            }
            let kept_len: usize = kept.iter().map(|p| p.len()).sum();
            if kept_len < total && !self.overflow_logged {
                self.overflow_logged = true;
                tracing::warn!(
                    content_length = self.content_length,
                    "application sent more bytes than its Content-Length; extra bytes dropped"
                );
            }
            self.sent += kept_len as u64;
        }
        let result = if self.head_sent {
            if kept.is_empty() {
                Ok(())
            } else {
                self.sink.send_body(&kept)
            }
        } else {
            self.send_head(&kept)
        };
        result.map_err(|e| {
            self.broken = true;
            WriteError::Io(e)
        })
    }

    fn send_head(&mut self, body: &[&[u8]]) -> io::Result<()> {
        let Some((status, code)) = &self.status else {
            return Err(io::Error::other("no status"));
        };
        self.head_sent = true;
        let head = ResponseHead {
            status,
            code: *code,
            headers: &self.headers,
        };
        self.sink.send_head(&head, body)
    }

    /// Sends the head with no body if it has not gone out yet.
    fn finish_head(&mut self) -> Result<(), WriteError> {
        if self.head_sent {
            return Ok(());
        }
        if self.status.is_none() {
            return Err(WriteError::NotStarted);
        }
        self.send_head(&[]).map_err(|e| {
            self.broken = true;
            WriteError::Io(e)
        })
    }

    fn send_file(&mut self, file: &mut File, len: u64) -> Result<u64, WriteError> {
        let len = match self.content_length {
            Some(cl) => len.min(cl.saturating_sub(self.sent)),
            None => len,
        };
        self.finish_head()?;
        if self.suppress_body || len == 0 {
            return Ok(0);
        }
        match self.sink.send_file(file, len) {
            Ok(n) => {
                self.sent += n;
                Ok(n)
            }
            Err(e) => {
                self.broken = true;
                Err(WriteError::Io(e))
            }
        }
    }

    fn send_500(&mut self) -> io::Result<()> {
        const BODY: &[u8] = b"Internal Server Error";
        self.set(
            "500 Internal Server Error".to_owned(),
            500,
            vec![
                ("Content-Type".to_owned(), "text/plain".to_owned()),
                ("Content-Length".to_owned(), BODY.len().to_string()),
            ],
        );
        let body: &[&[u8]] = if self.head_request { &[] } else { &[BODY] };
        self.send_head(body)
    }

    /// The protocol side, for answers the app never saw (404 for an unmounted path).
    pub(crate) fn sink_mut(&mut self) -> &mut dyn ResponseSink {
        self.head_sent = true;
        self.sink.as_mut()
    }

    fn short(&self) -> bool {
        !self.suppress_body && self.content_length.is_some_and(|cl| self.sent < cl)
    }
}

/// Hop-by-hop fields (RFC 9110 §7.6.1) a WSGI app must not set (PEP 3333).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Validates `"NNN reason"`; returns the code.
fn check_status(status: &str) -> PyResult<u16> {
    let bytes = status.as_bytes();
    let valid = bytes.len() >= 5
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && bytes[0] != b'0'
        && bytes[3] == b' '
        && bytes[4] != b' '
        && status
            .chars()
            .all(|c| c == '\t' || (c >= ' ' && c != '\x7f' && (c as u32) < 256))
        && !status.ends_with([' ', '\t']);
    if !valid {
        return Err(PyValueError::new_err(format!(
            "status must be a 3-digit code, a space and a reason phrase, like '200 OK' \
             (got {status:?})"
        )));
    }
    Ok(u16::from(bytes[0] - b'0') * 100
        + u16::from(bytes[1] - b'0') * 10
        + u16::from(bytes[2] - b'0'))
}

fn check_headers(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "response headers must be a list of (name, value) tuples, not {}",
            type_name(headers)
        ))
    })?;
    let mut out = Vec::with_capacity(list.len());
    for item in list.iter() {
        let tuple = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "each response header must be a (name, value) tuple, not {}",
                type_name(&item)
            ))
        })?;
        if tuple.len() != 2 {
            return Err(PyTypeError::new_err(format!(
                "each response header must be a 2-tuple, got {} items",
                tuple.len()
            )));
        }
        let name = tuple.get_item(0)?;
        let value = tuple.get_item(1)?;
        let (Ok(name), Ok(value)) = (name.cast::<PyString>(), value.cast::<PyString>()) else {
            return Err(PyTypeError::new_err(
                "response header names and values must be str (native strings)",
            ));
        };
        let name = name.to_str()?;
        let value = value.to_str()?;
        if name.is_empty() || !name.chars().all(is_tchar) {
            return Err(PyValueError::new_err(format!(
                "invalid response header name {name:?}"
            )));
        }
        if value
            .chars()
            .any(|c| (c < ' ' && c != '\t') || c == '\x7f' || (c as u32) > 255)
        {
            return Err(PyValueError::new_err(format!(
                "response header {name:?} has a control character (CR, LF, NUL) or a \
                 non-latin-1 character in its value"
            )));
        }
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            return Err(PyValueError::new_err(format!(
                "hop-by-hop header {name:?} is not allowed from a WSGI application (PEP 3333)"
            )));
        }
        out.push((name.to_owned(), value.to_owned()));
    }
    Ok(out)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// The `start_response` callable handed to the app.
#[pyclass(frozen, module = "ferrule", name = "StartResponse")]
pub struct StartResponse {
    state: SharedResponse,
}

impl fmt::Debug for StartResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartResponse").finish_non_exhaustive()
    }
}

#[pymethods]
impl StartResponse {
    /// start_response(status, response_headers, exc_info=None) -> write
    ///
    /// - `exc_info` given and headers already sent: re-raises it.
    /// - `exc_info` given before that: replaces status and headers (no duplicates).
    /// - called again without `exc_info`: `RuntimeError`.
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__(
        &self,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<WriteCallable> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let guard = lock(&self.state);
            if let Some(exc_info) = exc_info {
                if guard.head_sent {
                    drop(guard);
                    let value = exc_info.get_item(1)?;
                    return Err(PyErr::from_value(value));
                }
            } else if guard.status.is_some() {
                return Err(PyRuntimeError::new_err(
                    "start_response() called a second time without exc_info (PEP 3333)",
                ));
            }
        }
        let status = status.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!("status must be a str, not {}", type_name(status)))
        })?;
        let status = status.to_str()?.to_owned();
        let code = check_status(&status)?;
        let headers = check_headers(headers)?;
        let mut guard = lock(&self.state);
        if guard.head_sent {
            // Another thread sent the head in between: same as exc_info after headers.
            return Err(PyRuntimeError::new_err(
                "response headers were already sent",
            ));
        }
        guard.set(status, code, headers);
        drop(guard);
        Ok(WriteCallable {
            state: Arc::clone(&self.state),
        })
    }
}

/// The `write(data)` callable `start_response` returns (for legacy apps): sends `data`
/// at once (the head first), blocking with the GIL released.
#[pyclass(frozen, module = "ferrule", name = "write")]
pub struct WriteCallable {
    state: SharedResponse,
}

impl fmt::Debug for WriteCallable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteCallable").finish_non_exhaustive()
    }
}

#[pymethods]
impl WriteCallable {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!("write() takes bytes, not {}", type_name(data)))
        })?;
        let backed = PyBackedBytes::from(bytes.clone());
        let state = &self.state;
        py.detach(|| lock(state).write(&[&backed]))
            .map_err(|e| match e {
                WriteError::NotStarted => {
                    PyRuntimeError::new_err("write() called before start_response()")
                }
                WriteError::Io(e) => PyIOError::new_err(format!("client disconnected: {e}")),
            })
    }
}

/// What one request needs to run: the shared response state.
pub(crate) struct Exchange {
    pub(crate) response: SharedResponse,
}

/// Calls the app and sends its response. Never raises: every Python error is logged with
/// its traceback and turned into a 500 (before headers) or a cut connection (after).
pub(crate) fn run_app(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    environ: &Bound<'_, PyDict>,
    exchange: &Exchange,
) -> Outcome {
    let state = &exchange.response;
    let start_response = match Bound::new(
        py,
        StartResponse {
            state: Arc::clone(state),
        },
    ) {
        Ok(s) => s,
        Err(err) => return fail(py, environ, state, &err, "creating start_response"),
    };
    let result = match app.call1((environ, start_response)) {
        Ok(result) => result,
        Err(err) => return fail(py, environ, state, &err, "calling the application"),
    };
    let mut outcome = send_result(py, environ, state, &result);
    // PEP 3333: close() is called whatever happened, also on error and disconnect. An exact
    // list or tuple has no close(): skip the lookup, whose miss would build and discard an
    // AttributeError on every request (the common `return [body]`).
    let plain_sequence =
        result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>();
    let close = if plain_sequence {
        Ok(None)
    } else {
        result.getattr_opt("close")
    };
    match close {
        Ok(Some(close)) => {
            if let Err(err) = close.call0() {
                outcome = merge(
                    outcome,
                    fail(py, environ, state, &err, "calling close() on the response"),
                );
            }
        }
        Ok(None) => {}
        Err(err) => {
            outcome = merge(
                outcome,
                fail(py, environ, state, &err, "looking up close()"),
            );
        }
    }
    if outcome == Outcome::Complete {
        let finished = py.detach(|| lock(state).finish_head());
        match finished {
            Ok(()) => {}
            Err(WriteError::NotStarted) => {
                let err = PyRuntimeError::new_err(
                    "the application returned without calling start_response()",
                );
                return fail(py, environ, state, &err, "finishing the response");
            }
            Err(WriteError::Io(e)) => return client_gone(environ, &e),
        }
        let guard = lock(state);
        if guard.short() {
            tracing::warn!(
                request = %request_line(environ),
                content_length = guard.content_length,
                sent = guard.sent,
                "application sent fewer bytes than its Content-Length; closing the connection"
            );
            return Outcome::Short;
        }
    }
    outcome
}

fn merge(a: Outcome, b: Outcome) -> Outcome {
    if a == Outcome::Complete { b } else { a }
}

fn send_result(
    py: Python<'_>,
    environ: &Bound<'_, PyDict>,
    state: &SharedResponse,
    result: &Bound<'_, PyAny>,
) -> Outcome {
    // Fast path: a list or tuple of bytes goes out in one write with the head.
    if let Ok(list) = result.cast_exact::<PyList>() {
        return send_sequence(py, environ, state, list.iter());
    }
    if let Ok(tuple) = result.cast_exact::<PyTuple>() {
        return send_sequence(py, environ, state, tuple.iter());
    }
    if let Ok(wrapper) = result.cast::<FileWrapper>()
        && let Some(mut file) = wrapper.get().sendfile(py)
    {
        let sent = py.detach(|| lock(state).send_file(&mut file.file, file.len));
        return match sent {
            Ok(n) => {
                tracing::debug!(bytes = n, "file_wrapper response sent with sendfile");
                Outcome::Complete
            }
            Err(WriteError::NotStarted) => {
                let err = PyRuntimeError::new_err(
                    "the application returned a file_wrapper without calling start_response()",
                );
                fail(py, environ, state, &err, "sending the file")
            }
            Err(WriteError::Io(e)) => client_gone(environ, &e),
        };
    }
    if result.is_instance_of::<PyBytes>() || result.is_instance_of::<PyString>() {
        // Iterating would yield ints or 1-char strs; say what is wrong instead.
        let err = PyTypeError::new_err(format!(
            "the application returned a {} object; a WSGI application must return an \
             iterable of bytes, e.g. [body]",
            type_name(result)
        ));
        return fail(py, environ, state, &err, "sending the response");
    }
    let iter = match result.try_iter() {
        Ok(iter) => iter,
        Err(err) => return fail(py, environ, state, &err, "iterating the response"),
    };
    for item in iter {
        let item = match item {
            Ok(item) => item,
            Err(err) => return fail(py, environ, state, &err, "iterating the response"),
        };
        match write_chunk(py, state, &item) {
            Ok(()) => {}
            Err(ChunkError::Python(err)) => {
                return fail(py, environ, state, &err, "sending the response");
            }
            Err(ChunkError::Gone(e)) => return client_gone(environ, &e),
        }
        // HEAD and body-less statuses: once the head is out, nothing more goes on the wire.
        let guard = lock(state);
        if guard.head_sent && guard.suppress_body {
            break;
        }
    }
    Outcome::Complete
}

fn send_sequence<'py>(
    py: Python<'py>,
    environ: &Bound<'py, PyDict>,
    state: &SharedResponse,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
) -> Outcome {
    let mut chunks: Vec<PyBackedBytes> = Vec::new();
    for item in items {
        match item.cast::<PyBytes>() {
            Ok(bytes) => chunks.push(PyBackedBytes::from(bytes.clone())),
            Err(_) => {
                let err = PyTypeError::new_err(format!(
                    "the response iterable yielded {}, not bytes",
                    type_name(&item)
                ));
                // Send what came before the bad item, as a streamed response would have.
                let pieces: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
                let _ = py.detach(|| lock(state).write(&pieces));
                return fail(py, environ, state, &err, "sending the response");
            }
        }
    }
    let pieces: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
    match py.detach(|| lock(state).write(&pieces)) {
        Ok(()) => Outcome::Complete,
        Err(WriteError::NotStarted) => {
            let err = PyRuntimeError::new_err(
                "the application returned a body without calling start_response()",
            );
            fail(py, environ, state, &err, "sending the response")
        }
        Err(WriteError::Io(e)) => client_gone(environ, &e),
    }
}

enum ChunkError {
    Python(PyErr),
    Gone(io::Error),
}

fn write_chunk(
    py: Python<'_>,
    state: &SharedResponse,
    item: &Bound<'_, PyAny>,
) -> Result<(), ChunkError> {
    let bytes = item.cast::<PyBytes>().map_err(|_| {
        ChunkError::Python(PyTypeError::new_err(format!(
            "the response iterable yielded {}, not bytes",
            type_name(item)
        )))
    })?;
    if bytes.as_bytes().is_empty() {
        return Ok(());
    }
    let backed = PyBackedBytes::from(bytes.clone());
    py.detach(|| lock(state).write(&[&backed]))
        .map_err(|e| match e {
            WriteError::NotStarted => ChunkError::Python(PyRuntimeError::new_err(
                "the application yielded body bytes before calling start_response()",
            )),
            WriteError::Io(e) => ChunkError::Gone(e),
        })
}

/// Logs a Python failure with its traceback; answers 500 if nothing was sent yet.
fn fail(
    py: Python<'_>,
    environ: &Bound<'_, PyDict>,
    state: &SharedResponse,
    err: &PyErr,
    during: &str,
) -> Outcome {
    let traceback = format_traceback(py, err);
    let request = request_line(environ);
    let (head_sent, broken) = {
        let guard = lock(state);
        (guard.head_sent, guard.broken)
    };
    if broken {
        tracing::info!(%request, "error after the client went away ({during}): {}", traceback.trim_end());
        return Outcome::ClientGone;
    }
    if head_sent {
        tracing::error!(
            %request,
            "application error after the response headers were sent ({during}); cutting the \
             connection\n{}",
            traceback.trim_end()
        );
        return Outcome::Cut;
    }
    tracing::error!(%request, "application error ({during}); answering 500\n{}", traceback.trim_end());
    match py.detach(|| lock(state).send_500()) {
        Ok(()) => Outcome::ServerError,
        Err(e) => client_gone(environ, &e),
    }
}

fn client_gone(environ: &Bound<'_, PyDict>, err: &io::Error) -> Outcome {
    tracing::info!(request = %request_line(environ), "client went away while the response was sent: {err}");
    Outcome::ClientGone
}

/// `METHOD URI` from the environ, for log lines.
pub(crate) fn request_line(environ: &Bound<'_, PyDict>) -> String {
    let get = |k: &str| -> String {
        environ
            .get_item(k)
            .ok()
            .flatten()
            .and_then(|v| v.extract::<String>().ok())
            .unwrap_or_default()
    };
    let uri = get("REQUEST_URI");
    let uri = if uri.is_empty() {
        format!("{}{}", get("SCRIPT_NAME"), get("PATH_INFO"))
    } else {
        uri
    };
    format!("{} {}", get("REQUEST_METHOD"), uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rules() {
        assert_eq!(check_status("200 OK").unwrap(), 200);
        assert_eq!(check_status("404 Not Found").unwrap(), 404);
        for bad in [
            "200",
            "200 ",
            "200OK",
            "20 OK",
            "abc OK",
            "200 OK\r\n",
            "200  OK",
            "099 X",
            "200 OK ",
        ] {
            assert!(check_status(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hop_by_hop_list_is_lower_case() {
        assert!(
            HOP_BY_HOP
                .iter()
                .all(|h| h.chars().all(|c| !c.is_ascii_uppercase()))
        );
        assert!(is_tchar('-') && !is_tchar(':') && !is_tchar(' '));
    }
}

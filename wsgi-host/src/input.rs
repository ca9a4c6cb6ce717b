//! `wsgi.input`: a streaming reader over the request body (PEP 3333 "Input and Error
//! Streams"), and `post-buffering`.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::{PyIOError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// Why the body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The peer closed the connection before the whole body arrived.
    #[error("client closed the connection {received} bytes into the request body")]
    Truncated {
        /// Body bytes received before the end, in bytes.
        received: u64,
    },
    /// No bytes arrived within the socket timeout.
    #[error("timed out waiting for the request body")]
    TimedOut,
    /// The chunk framing of a raw chunked body is malformed.
    #[error("malformed request body: {0}")]
    Malformed(String),
    /// The body is longer than the configured limit (uWSGI `limit-post`).
    #[error("request body is over the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Any other I/O error.
    #[error("I/O error reading the request body: {0}")]
    Io(#[from] io::Error),
}

impl From<BodyError> for PyErr {
    fn from(err: BodyError) -> PyErr {
        PyIOError::new_err(err.to_string())
    }
}

/// A request body as a sequence of byte chunks. Implementations block (the caller has
/// released the GIL) and are bounded by the body's framing: `Ok(None)` marks the end.
pub trait BodySource: Send {
    /// The next non-empty chunk, or `None` at the end of the body.
    ///
    /// # Errors
    ///
    /// A [`BodyError`]; after an error the source is not read again.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError>;
}

/// An empty body.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyBody;

impl BodySource for EmptyBody {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        Ok(None)
    }
}

/// A body already held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryBody(Option<Bytes>);

impl MemoryBody {
    /// A body of these bytes.
    pub fn new(bytes: Bytes) -> MemoryBody {
        MemoryBody((!bytes.is_empty()).then_some(bytes))
    }
}

impl BodySource for MemoryBody {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        Ok(self.0.take())
    }
}

/// A body spooled to an anonymous temporary file by `post-buffering`.
#[derive(Debug)]
pub struct FileBody {
    file: File,
    remaining: u64,
}

impl BodySource for FileBody {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = usize::try_from(self.remaining.min(64 * 1024)).unwrap_or(64 * 1024);
        let mut buf = vec![0; want];
        let n = self.file.read(&mut buf)?;
        if n == 0 {
            return Err(BodyError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "spooled body file is shorter than what was written",
            )));
        }
        buf.truncate(n);
        self.remaining -= n as u64;
        Ok(Some(Bytes::from(buf)))
    }
}

/// Collects a whole request body for `post-buffering N`: up to `in_memory` bytes stay in
/// memory; a longer body goes to an anonymous temporary file (in `$TMPDIR`) and is read back
/// from there. Feed it with [`push`](Self::push) (from a blocking or an async reader), then
/// [`finish`](Self::finish) gives the body source the app reads.
#[derive(Debug)]
pub struct BodySpooler {
    in_memory: usize,
    memory: BytesMut,
    spool: Option<File>,
    total: u64,
}

impl BodySpooler {
    /// A spooler that keeps up to `in_memory` bytes in memory.
    pub fn new(in_memory: usize) -> BodySpooler {
        BodySpooler {
            in_memory,
            memory: BytesMut::new(),
            spool: None,
            total: 0,
        }
    }

    /// Bytes received so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Appends body bytes, moving everything to the temporary file once `in_memory` is
    /// passed.
    ///
    /// # Errors
    ///
    /// An I/O error creating or writing the temporary file.
    pub fn push(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.total += chunk.len() as u64;
        match &mut self.spool {
            Some(file) => file.write_all(chunk),
            None if self.memory.len() + chunk.len() <= self.in_memory => {
                self.memory.extend_from_slice(chunk);
                Ok(())
            }
            None => {
                let mut file = tempfile::tempfile()?;
                file.write_all(&self.memory)?;
                file.write_all(chunk)?;
                self.memory = BytesMut::new();
                self.spool = Some(file);
                Ok(())
            }
        }
    }

    /// The collected body as a source.
    ///
    /// # Errors
    ///
    /// An I/O error rewinding the temporary file.
    pub fn finish(self) -> io::Result<Box<dyn BodySource>> {
        Ok(match self.spool {
            Some(mut file) => {
                file.seek(SeekFrom::Start(0))?;
                tracing::debug!(
                    bytes = self.total,
                    "request body spooled to a temporary file"
                );
                Box::new(FileBody {
                    file,
                    remaining: self.total,
                })
            }
            None => Box::new(MemoryBody::new(self.memory.freeze())),
        })
    }
}

/// Reads all of `source` through a [`BodySpooler`] (uWSGI `post-buffering N`). Blocking;
/// call it with the GIL released.
///
/// # Errors
///
/// The source's [`BodyError`], or an I/O error creating or writing the temporary file.
pub fn buffer_body(
    source: &mut dyn BodySource,
    in_memory: usize,
) -> Result<Box<dyn BodySource>, BodyError> {
    let mut spooler = BodySpooler::new(in_memory);
    while let Some(chunk) = source.next_chunk()? {
        spooler.push(&chunk)?;
    }
    Ok(spooler.finish()?)
}

/// The reading state behind `wsgi.input`: a source plus a look-ahead buffer.
pub(crate) struct InputState {
    source: Box<dyn BodySource>,
    buf: BytesMut,
    done: bool,
    failed: Option<String>,
    consumed: u64,
}

impl fmt::Debug for InputState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputState")
            .field("buffered", &self.buf.len())
            .field("done", &self.done)
            .field("consumed", &self.consumed)
            .finish_non_exhaustive()
    }
}

impl InputState {
    pub(crate) fn new(source: Box<dyn BodySource>) -> InputState {
        InputState {
            source,
            buf: BytesMut::new(),
            done: false,
            failed: None,
            consumed: 0,
        }
    }

    /// Pulls one more chunk into the buffer. `Ok(false)` at the end of the body.
    fn fill(&mut self) -> Result<bool, BodyError> {
        if self.done {
            return Ok(false);
        }
        if let Some(message) = &self.failed {
            return Err(BodyError::Malformed(format!(
                "earlier read failed: {message}"
            )));
        }
        match self.source.next_chunk() {
            Ok(Some(chunk)) => {
                if self.buf.is_empty() {
                    self.buf = BytesMut::from(chunk);
                } else {
                    self.buf.extend_from_slice(&chunk);
                }
                Ok(true)
            }
            Ok(None) => {
                self.done = true;
                Ok(false)
            }
            Err(err) => {
                self.failed = Some(err.to_string());
                Err(err)
            }
        }
    }

    fn take(&mut self, n: usize) -> Bytes {
        let n = n.min(self.buf.len());
        self.consumed += n as u64;
        self.buf.split_to(n).freeze()
    }

    /// `read(size)`: up to `size` bytes (all the rest for `None`); `b""` only at the end.
    pub(crate) fn read(&mut self, size: Option<usize>) -> Result<Bytes, BodyError> {
        match size {
            Some(0) => Ok(Bytes::new()),
            Some(n) => {
                while self.buf.len() < n && self.fill()? {}
                Ok(self.take(n))
            }
            None => {
                while self.fill()? {}
                Ok(self.take(self.buf.len()))
            }
        }
    }

    /// `readline(limit)`: up to and including the next `\n`, at most `limit` bytes.
    pub(crate) fn readline(&mut self, limit: Option<usize>) -> Result<Bytes, BodyError> {
        let mut scanned = 0;
        loop {
            let window = match limit {
                Some(l) => self.buf.len().min(l),
                None => self.buf.len(),
            };
            if let Some(pos) = self.buf[scanned..window].iter().position(|&b| b == b'\n') {
                return Ok(self.take(scanned + pos + 1));
            }
            if limit.is_some_and(|l| self.buf.len() >= l) {
                return Ok(self.take(window));
            }
            scanned = window;
            if !self.fill()? {
                return Ok(self.take(self.buf.len()));
            }
        }
    }

    /// Reads and discards the rest of the body, at most `max` bytes. Returns how many
    /// bytes were discarded and whether the body's end was reached.
    pub(crate) fn drain(&mut self, max: u64) -> Result<(u64, bool), BodyError> {
        let mut discarded = self.buf.len() as u64;
        self.buf.clear();
        while discarded <= max {
            if !self.fill()? {
                return Ok((discarded, true));
            }
            discarded += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok((discarded, false))
    }

    /// Whether the whole body has been read from the source.
    #[cfg(test)]
    fn is_done(&self) -> bool {
        self.done
    }
}

/// Shared handle to one request's body.
pub(crate) type SharedInput = Arc<Mutex<InputState>>;

pub(crate) fn lock(input: &SharedInput) -> MutexGuard<'_, InputState> {
    // A panic while holding the lock leaves consistent (if partial) state; keep going.
    input
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `wsgi.input`: a file-like, read-only byte stream over the request body.
///
/// - `read(size=-1)`, `read(n)`: up to `n` bytes, `b""` only at the end of the body (never
///   blocks past `CONTENT_LENGTH` or the chunked end).
/// - `readline(size=-1)`: one line **with** its `\n` (Granian drops it), at most `size` bytes.
/// - `readlines(hint=-1)`: lines until their total length reaches `hint`.
/// - iteration yields lines; `close()` is a no-op (the server owns the body).
///
/// Every call releases the GIL while it waits for bytes. A read error raises `OSError`
/// (client gone, timeout, malformed chunked body).
#[pyclass(frozen, module = "ferrule", name = "Input")]
pub struct WsgiInput {
    state: SharedInput,
}

impl fmt::Debug for WsgiInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsgiInput").finish_non_exhaustive()
    }
}

impl WsgiInput {
    pub(crate) fn new(state: SharedInput) -> WsgiInput {
        WsgiInput { state }
    }
}

fn size_arg(size: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    match size {
        None => Ok(None),
        Some(obj) if obj.is_none() => Ok(None),
        Some(obj) => {
            let n: i64 = obj.extract()?;
            Ok(usize::try_from(n).ok())
        }
    }
}

#[pymethods]
impl WsgiInput {
    /// read(size=-1, /)
    #[pyo3(signature = (size = None, /))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let size = size_arg(size)?;
        let state = &self.state;
        let data = py.detach(|| lock(state).read(size))?;
        Ok(PyBytes::new(py, &data))
    }

    /// readline(size=-1, /)
    #[pyo3(signature = (size = None, /))]
    fn readline<'py>(
        &self,
        py: Python<'py>,
        size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let size = size_arg(size)?;
        let state = &self.state;
        let data = py.detach(|| lock(state).readline(size))?;
        Ok(PyBytes::new(py, &data))
    }

    /// readlines(hint=-1, /)
    #[pyo3(signature = (hint = None, /))]
    fn readlines<'py>(
        &self,
        py: Python<'py>,
        hint: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = size_arg(hint)?.filter(|&h| h > 0);
        let state = &self.state;
        let lines = py.detach(|| -> Result<Vec<Bytes>, BodyError> {
            let mut guard = lock(state);
            let mut lines = Vec::new();
            let mut total = 0usize;
            loop {
                let line = guard.readline(None)?;
                if line.is_empty() {
                    break;
                }
                total += line.len();
                lines.push(line);
                if hint.is_some_and(|h| total >= h) {
                    break;
                }
            }
            Ok(lines)
        })?;
        PyList::new(py, lines.iter().map(|l| PyBytes::new(py, l)))
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let state = &self.state;
        let line = py.detach(|| lock(state).readline(None))?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }

    /// No-op: the server owns the body and drains it after the response.
    fn close(&self) {}

    fn readable(&self) -> bool {
        true
    }

    fn seekable(&self) -> bool {
        false
    }

    /// `fileno()` is not available: the stream is not a plain file descriptor.
    fn fileno(&self) -> PyResult<i64> {
        Err(io_unsupported("fileno"))
    }
}

fn io_unsupported(what: &str) -> PyErr {
    PyValueError::new_err(format!("wsgi.input does not support {what}()"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that yields the given pieces one by one.
    struct Pieces(std::collections::VecDeque<&'static [u8]>);

    impl BodySource for Pieces {
        fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
            Ok(self.0.pop_front().map(Bytes::from_static))
        }
    }

    fn state(pieces: &[&'static [u8]]) -> InputState {
        InputState::new(Box::new(Pieces(pieces.iter().copied().collect())))
    }

    #[test]
    fn readline_keeps_newline_across_chunks() {
        let mut s = state(&[b"li", b"ne1\nline", b"2\n", b"line3"]);
        assert_eq!(s.readline(None).unwrap(), &b"line1\n"[..]);
        assert_eq!(s.readline(None).unwrap(), &b"line2\n"[..]);
        assert_eq!(s.readline(None).unwrap(), &b"line3"[..]);
        assert_eq!(s.readline(None).unwrap(), &b""[..]);
    }

    #[test]
    fn readline_limit() {
        let mut s = state(&[b"abcdef\n", b"gh\n"]);
        assert_eq!(s.readline(Some(4)).unwrap(), &b"abcd"[..]);
        assert_eq!(s.readline(Some(10)).unwrap(), &b"ef\n"[..]);
        assert_eq!(s.readline(Some(2)).unwrap(), &b"gh"[..]);
        assert_eq!(s.readline(Some(2)).unwrap(), &b"\n"[..]);
    }

    #[test]
    fn read_sizes() {
        let mut s = state(&[b"hello ", b"wor", b"ld"]);
        assert_eq!(s.read(Some(0)).unwrap(), &b""[..]);
        assert_eq!(s.read(Some(8)).unwrap(), &b"hello wo"[..]);
        assert_eq!(s.read(None).unwrap(), &b"rld"[..]);
        assert_eq!(s.read(Some(5)).unwrap(), &b""[..]);
        assert!(s.is_done());
    }

    #[test]
    fn drain_is_bounded() {
        let mut s = state(&[b"0123456789", b"0123456789", b"0123456789"]);
        assert_eq!(s.drain(15).unwrap(), (20, false));
        let mut s = state(&[b"0123456789"]);
        assert_eq!(s.drain(100).unwrap(), (10, true));
    }

    #[test]
    fn post_buffering_spills() {
        let mut source = Pieces([&b"abc"[..], b"defgh"].into_iter().collect());
        let mut body = buffer_body(&mut source, 4).unwrap();
        let mut all = Vec::new();
        while let Some(chunk) = body.next_chunk().unwrap() {
            all.extend_from_slice(&chunk);
        }
        assert_eq!(all, b"abcdefgh");
        let mut source = Pieces([&b"abc"[..]].into_iter().collect());
        let mut body = buffer_body(&mut source, 4).unwrap();
        assert_eq!(body.next_chunk().unwrap().unwrap(), &b"abc"[..]);
        assert!(body.next_chunk().unwrap().is_none());
    }
}

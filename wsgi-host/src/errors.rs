//! `wsgi.errors`: the server's error log, line-buffered (PEP 3333 "Input and Error Streams").

use std::fmt;
use std::sync::Mutex;

use pyo3::prelude::*;

/// Longest partial line kept before it is logged anyway, in bytes.
const MAX_PENDING: usize = 8 * 1024;

/// `wsgi.errors`: a text stream whose lines go to the server's error log (`tracing` target
/// `wsgi.errors`, level `error`), one event per line.
///
/// Writes are buffered until a `\n`; `flush()` logs a pending partial line; a partial line
/// longer than 8 KiB is logged as it is, so memory stays bounded. `write` accepts `str`
/// (and, leniently, `bytes`, decoded as UTF-8 with replacement). One instance is shared by
/// every request of a listener, like uWSGI's.
#[pyclass(frozen, module = "ferrule", name = "ErrorStream")]
pub struct ErrorStream {
    pending: Mutex<String>,
}

impl fmt::Debug for ErrorStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorStream").finish_non_exhaustive()
    }
}

impl Default for ErrorStream {
    fn default() -> Self {
        ErrorStream::new()
    }
}

impl ErrorStream {
    /// A stream with an empty buffer.
    pub fn new() -> ErrorStream {
        ErrorStream {
            pending: Mutex::new(String::new()),
        }
    }

    fn push(&self, text: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.push_str(text);
        while let Some(pos) = pending.find('\n') {
            let line: String = pending.drain(..=pos).collect();
            emit(line.trim_end_matches(['\n', '\r']));
        }
        if pending.len() > MAX_PENDING {
            emit(&pending);
            pending.clear();
        }
    }

    fn flush_pending(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !pending.is_empty() {
            emit(&pending);
            pending.clear();
        }
    }
}

fn emit(line: &str) {
    tracing::error!(target: "wsgi.errors", "{line}");
}

#[pymethods]
impl ErrorStream {
    /// write(s, /) -> number of characters written
    fn write(&self, text: &Bound<'_, PyAny>) -> PyResult<usize> {
        if let Ok(s) = text.extract::<&str>() {
            self.push(s);
            return Ok(s.chars().count());
        }
        let bytes: &[u8] = text.extract()?;
        self.push(&String::from_utf8_lossy(bytes));
        Ok(bytes.len())
    }

    /// writelines(lines, /)
    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    /// flush(): logs a pending partial line.
    fn flush(&self) {
        self.flush_pending();
    }

    fn writable(&self) -> bool {
        true
    }
}

//! `wsgi.file_wrapper` (PEP 3333 "Optional Platform-Specific File Handling").

use std::fmt;
use std::fs::File;
use std::io::{Seek, SeekFrom};

use pyo3::prelude::*;

/// `wsgi.file_wrapper(filelike, block_size=8192)`.
///
/// An iterable over `filelike.read(block_size)` blocks with a `close()` that closes the
/// file. When the app returns one **unwrapped** (not hidden behind middleware) and the file
/// has a real `fileno()` of a regular file, the server sends it with `sendfile(2)` from the
/// file's current position instead of iterating; otherwise it is iterated like any other
/// result.
#[pyclass(frozen, module = "ferrule", name = "FileWrapper")]
pub struct FileWrapper {
    filelike: Py<PyAny>,
    block_size: usize,
}

impl fmt::Debug for FileWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileWrapper")
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, block_size = 8192))]
    fn py_new(filelike: Py<PyAny>, block_size: i64) -> FileWrapper {
        FileWrapper {
            filelike,
            block_size: usize::try_from(block_size)
                .unwrap_or(8192)
                .clamp(1, 16 << 20),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let block = self
            .filelike
            .bind(py)
            .call_method1("read", (self.block_size,))?;
        Ok(block.is_truthy()?.then_some(block))
    }

    /// Closes the file-like object if it has a `close()`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(close) = self.filelike.bind(py).getattr_opt("close")? {
            close.call0()?;
        }
        Ok(())
    }

    /// The wrapped object.
    #[getter]
    fn filelike(&self, py: Python<'_>) -> Py<PyAny> {
        self.filelike.clone_ref(py)
    }
}

/// A file the server can `sendfile`: a fresh descriptor for the wrapped file (opened read-only
/// through `/proc/self/fd`, so no unsafe descriptor juggling), positioned where the Python
/// file object stood, and the number of bytes left in it.
#[derive(Debug)]
pub(crate) struct SendFile {
    pub(crate) file: File,
    pub(crate) len: u64,
}

impl FileWrapper {
    /// The sendfile form of this wrapper, or `None` if the file-like has no usable
    /// `fileno()`/`tell()` or is not a regular file (pipes, sockets, `BytesIO`).
    pub(crate) fn sendfile(&self, py: Python<'_>) -> Option<SendFile> {
        let filelike = self.filelike.bind(py);
        let fd: i32 = filelike.call_method0("fileno").ok()?.extract().ok()?;
        let position: u64 = match filelike.call_method0("tell") {
            Ok(pos) => pos.extract().ok()?,
            Err(_) => return None,
        };
        // Anything the Python object buffered but has not handed out would be skipped.
        if let Ok(Some(flush)) = filelike.getattr_opt("flush") {
            let _ = flush.call0();
        }
        let mut file = File::open(format!("/proc/self/fd/{fd}")).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let len = meta.len().saturating_sub(position);
        file.seek(SeekFrom::Start(position)).ok()?;
        Some(SendFile { file, len })
    }
}

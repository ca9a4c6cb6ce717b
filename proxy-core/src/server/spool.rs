//! The request body buffer: memory up to a threshold, then an anonymous temporary file, so
//! the upstream always gets a `CONTENT_LENGTH` (nginx's request buffering).

use std::io::{self, SeekFrom};

use bytes::{Bytes, BytesMut};
use http_front::RequestBody;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

/// A buffered request body.
#[derive(Debug)]
pub(crate) enum Spool {
    /// Held in memory.
    Mem(Bytes),
    /// Spilled to a temporary file (deleted when closed) of `len` bytes.
    File { file: std::fs::File, len: u64 },
}

/// Why buffering failed.
#[derive(Debug)]
pub(crate) enum SpoolError {
    /// The client's body failed (the driver answers it: 400/408/413).
    Client(http_front::Error),
    /// The body is larger than the server's `client_max_body_size`.
    TooLarge,
    /// The temporary file failed.
    Io(io::Error),
}

impl Spool {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Spool::Mem(b) => b.len() as u64,
            Spool::File { len, .. } => *len,
        }
    }

    /// Reads the whole body from the client.
    pub(crate) async fn read(
        body: &mut RequestBody<'_>,
        threshold: usize,
        max: u64,
    ) -> Result<Spool, SpoolError> {
        // One chunk is kept as it is (no copy); a second one starts a buffer.
        let mut single: Option<Bytes> = None;
        let mut mem = BytesMut::new();
        let mut file: Option<(tokio::fs::File, u64)> = None;
        while let Some(chunk) = body.chunk().await {
            let chunk = chunk.map_err(SpoolError::Client)?;
            let held = single.as_ref().map_or(0, Bytes::len) + mem.len();
            let total = held as u64 + file.as_ref().map_or(0, |f| f.1) + chunk.len() as u64;
            if total > max {
                return Err(SpoolError::TooLarge);
            }
            match &mut file {
                Some((f, len)) => {
                    f.write_all(&chunk).await.map_err(SpoolError::Io)?;
                    *len += chunk.len() as u64;
                }
                None if held + chunk.len() <= threshold => {
                    if held == 0 {
                        single = Some(chunk);
                    } else {
                        if let Some(first) = single.take() {
                            mem.extend_from_slice(&first);
                        }
                        mem.extend_from_slice(&chunk);
                    }
                }
                None => {
                    let std_file = tempfile::tempfile().map_err(SpoolError::Io)?;
                    let mut f = tokio::fs::File::from_std(std_file);
                    if let Some(first) = single.take() {
                        f.write_all(&first).await.map_err(SpoolError::Io)?;
                    }
                    f.write_all(&mem).await.map_err(SpoolError::Io)?;
                    f.write_all(&chunk).await.map_err(SpoolError::Io)?;
                    mem = BytesMut::new();
                    file = Some((f, total));
                }
            }
        }
        match (file, single) {
            (None, Some(b)) => Ok(Spool::Mem(b)),
            (None, None) => Ok(Spool::Mem(mem.freeze())),
            (Some((mut f, len)), _) => {
                f.flush().await.map_err(SpoolError::Io)?;
                let file = f.into_std().await;
                Ok(Spool::File { file, len })
            }
        }
    }

    /// Writes the body to `dst`, each write bounded by `timeout` (nginx's send timeout is
    /// between two writes).
    pub(crate) async fn send<W>(&self, dst: &mut W, timeout: std::time::Duration) -> io::Result<()>
    where
        W: AsyncWrite + Unpin,
    {
        match self {
            Spool::Mem(b) => write_all_timeout(dst, b, timeout).await,
            Spool::File { file, len } => {
                let mut f = tokio::fs::File::from_std(file.try_clone()?);
                f.seek(SeekFrom::Start(0)).await?;
                let mut left = *len;
                let mut buf = vec![0u8; 64 * 1024];
                while left > 0 {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = f.read(&mut buf[..want]).await?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "request body temporary file truncated",
                        ));
                    }
                    write_all_timeout(dst, &buf[..n], timeout).await?;
                    left -= n as u64;
                }
                Ok(())
            }
        }
    }
}

/// `tokio::time::timeout($timeout, $io)`, except that I/O that completes at once arms no
/// timer: `$io` is polled once first (see [`poll_once`]) and only rebuilt under the timeout
/// when it would wait. `$io` is an expression evaluated up to twice. Yields
/// `Result<Output, Elapsed>`, like `timeout`.
macro_rules! ready_or_timeout {
    ($timeout:expr, $io:expr) => {
        match $crate::server::spool::poll_once($io) {
            Some(out) => Ok(out),
            None => tokio::time::timeout($timeout, $io).await,
        }
    };
}
pub(crate) use ready_or_timeout;

/// Polls `fut` once with a no-op waker: `Some(output)` when it completes at once, `None`
/// when it would wait (the caller then awaits a fresh future under its timeout, which
/// registers the real waker). Saves the clock read and timer entry of a timeout for the
/// I/O that needs no waiting, which on a keep-alive exchange is most of it.
pub(crate) fn poll_once<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// `write_all` where each write must make progress within `timeout`.
pub(crate) async fn write_all_timeout<W>(
    dst: &mut W,
    mut data: &[u8],
    timeout: std::time::Duration,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    while !data.is_empty() {
        // Most writes go through at once: only one that has to wait arms a timer.
        let n = match ready_or_timeout!(timeout, dst.write(data)) {
            Ok(r) => r?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout")),
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    Ok(())
}

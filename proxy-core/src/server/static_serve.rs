//! Serving a static location: resolve (which opens the file) and plan, inline or on a
//! blocking thread, then stream the byte range from the open file in 64 KiB reads (small
//! bodies are read with one `pread` in the same call).

use std::fs::File;
use std::io::SeekFrom;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http_front::{ChannelBody, Either, Full, RequestHead, ResponseHead};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::static_files::{ByteRange, Resolved, ResponsePlan, StaticLocation, StaticRequest};

/// Read size when streaming, and the largest body read in one go.
const CHUNK: usize = 64 * 1024;

/// What a static location answers.
#[derive(Debug)]
pub(crate) enum StaticAnswer {
    /// A response (file, 304, 416, redirect, 403, ...).
    Response(ResponseHead, Either<Full, ChannelBody>),
    /// No such file: 404, or the fallback upstream.
    NotFound,
    /// An error status (400, 403, 500).
    Status(u16),
}

enum Blocking {
    NotFound,
    Forbidden,
    Redirect(Vec<u8>),
    Plan(ResponsePlan, PlannedBody),
    Error(u16, String),
}

/// The body of a planned response.
enum PlannedBody {
    /// No body bytes (HEAD, 304, 405, 412, 416).
    None,
    /// The whole range, read already.
    Read(Bytes),
    /// A range too large to read at once: streamed from the open file.
    Stream(File, ByteRange),
}

/// Reads `range` (at most [`CHUNK`] bytes) with one positioned read (`pread`: no seek) into
/// a buffer from the runtime thread's [`pool`].
fn read_range(file: &File, range: ByteRange) -> std::io::Result<Bytes> {
    let len = usize::try_from(range.len).unwrap_or(usize::MAX).min(CHUNK);
    let mut buf = pool::PooledBuf::take(len);
    file.read_exact_at(buf.as_mut(), range.start)?;
    Ok(Bytes::from_owner(buf))
}

/// Body buffers for small files, reused per thread, as nginx reads a file into its request
/// pool's buffer: no allocation or zeroing per response, and the buffer the CPU copies from
/// into the socket is one it has in cache. Each buffer is [`CHUNK`] bytes plus
/// [`ALIGN`](pool::ALIGN) (a 64-byte aligned window: the kernel's copy of an unaligned
/// source cost up to twice as much in profiles); at most [`MAX_IDLE`](pool::MAX_IDLE) idle
/// buffers per thread (1 MiB).
mod pool {
    use std::cell::RefCell;

    use super::CHUNK;

    /// Alignment of the window handed out, in bytes (a cache line).
    pub(super) const ALIGN: usize = 64;
    /// Idle buffers kept per thread; more are freed on drop.
    pub(super) const MAX_IDLE: usize = 16;

    thread_local! {
        static IDLE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
    }

    /// `len` bytes (at most [`CHUNK`]) of a pooled buffer; back to the pool of the thread
    /// that drops it.
    pub(super) struct PooledBuf {
        buf: Box<[u8]>,
        start: usize,
        len: usize,
    }

    impl PooledBuf {
        pub(super) fn take(len: usize) -> PooledBuf {
            let buf = IDLE
                .try_with(|idle| idle.borrow_mut().pop())
                .ok()
                .flatten()
                .unwrap_or_else(|| vec![0; CHUNK + ALIGN].into_boxed_slice());
            // `align_offset` of a byte pointer always succeeds; the `min` keeps a bogus
            // answer in bounds anyway.
            let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
            PooledBuf {
                buf,
                start,
                len: len.min(CHUNK),
            }
        }
    }

    impl AsRef<[u8]> for PooledBuf {
        fn as_ref(&self) -> &[u8] {
            &self.buf[self.start..self.start + self.len]
        }
    }

    impl AsMut<[u8]> for PooledBuf {
        fn as_mut(&mut self) -> &mut [u8] {
            &mut self.buf[self.start..self.start + self.len]
        }
    }

    impl Drop for PooledBuf {
        fn drop(&mut self) {
            let buf = std::mem::take(&mut self.buf);
            // During thread teardown the pool may be gone: the buffer is then just freed.
            let _ = IDLE.try_with(|idle| {
                let mut idle = idle.borrow_mut();
                if idle.len() < MAX_IDLE {
                    idle.push(buf);
                }
            });
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn windows_are_aligned_and_buffers_reused() {
            let a = PooledBuf::take(10);
            assert_eq!(a.as_ref().len(), 10);
            assert_eq!(a.as_ref().as_ptr() as usize % ALIGN, 0);
            let ptr = a.buf.as_ptr();
            drop(a);
            let b = PooledBuf::take(CHUNK);
            assert_eq!(b.buf.as_ptr(), ptr, "the idle buffer is reused");
            assert_eq!(b.as_ref().len(), CHUNK);
            assert_eq!(PooledBuf::take(CHUNK + 1).as_ref().len(), CHUNK);
        }

        #[test]
        fn idle_buffers_are_bounded() {
            let many: Vec<_> = (0..MAX_IDLE + 5).map(|_| PooledBuf::take(1)).collect();
            drop(many);
            assert_eq!(IDLE.with(|idle| idle.borrow().len()), MAX_IDLE);
        }
    }
}

fn resolve_and_plan(
    files: &StaticLocation,
    path: &[u8],
    accept: Option<&[u8]>,
    sreq: &StaticRequest,
) -> Blocking {
    match files.resolve_open(path, accept) {
        Ok((Resolved::File(file), Some(opened))) => {
            // The wall clock only matters for `Expires`.
            let now = if files.reads_clock() {
                SystemTime::now()
            } else {
                SystemTime::UNIX_EPOCH
            };
            let plan = files.plan(sreq, &file, now);
            match plan.body {
                Some(range) if range.len <= CHUNK as u64 => match read_range(&opened, range) {
                    Ok(b) => Blocking::Plan(plan, PlannedBody::Read(b)),
                    Err(e) => Blocking::Error(500, e.to_string()),
                },
                Some(range) => Blocking::Plan(plan, PlannedBody::Stream(opened, range)),
                None => Blocking::Plan(plan, PlannedBody::None),
            }
        }
        // `resolve_open` always hands back the file of a `Resolved::File`.
        Ok((Resolved::File(file), None)) => {
            Blocking::Error(500, format!("{} was not opened", file.path.display()))
        }
        Ok((Resolved::NotFound, _)) => Blocking::NotFound,
        Ok((Resolved::Forbidden, _)) => Blocking::Forbidden,
        Ok((Resolved::RedirectToDirectory(loc), _)) => Blocking::Redirect(loc),
        Err(e) => Blocking::Error(e.status(), e.to_string()),
    }
}

/// Answers a request for a static location. With `inline`, the filesystem calls (resolve,
/// and reading a body of up to 64 KiB) run on the runtime thread, as nginx does them in its
/// event loop; otherwise on tokio's blocking pool (one thread hop per request).
pub(crate) async fn serve(
    files: &StaticLocation,
    head: &RequestHead,
    raw_path: &[u8],
    query: Option<&[u8]>,
    inline: bool,
) -> StaticAnswer {
    let accept = head.field("accept-encoding");
    let sreq = StaticRequest::from_fields(
        head.raw_method(),
        head.fields().map(|f| (f.raw_name(), f.value())),
    );
    let blocking = if inline {
        Ok(resolve_and_plan(files, raw_path, accept, &sreq))
    } else {
        let files = files.clone();
        let path = raw_path.to_vec();
        let accept = accept.map(<[u8]>::to_vec);
        tokio::task::spawn_blocking(move || {
            resolve_and_plan(&files, &path, accept.as_deref(), &sreq)
        })
        .await
    };
    let blocking = match blocking {
        Ok(b) => b,
        Err(e) => Blocking::Error(500, e.to_string()),
    };
    match blocking {
        Blocking::NotFound => StaticAnswer::NotFound,
        Blocking::Forbidden => StaticAnswer::Status(403),
        Blocking::Error(status, msg) => {
            if status >= 500 {
                tracing::error!("static file: {msg}");
            } else {
                tracing::debug!("static file: {msg}");
            }
            StaticAnswer::Status(status)
        }
        Blocking::Redirect(mut location) => {
            if let Some(q) = query {
                location.push(b'?');
                location.extend_from_slice(q);
            }
            let Ok(mut rh) = ResponseHead::new(301) else {
                return StaticAnswer::Status(500);
            };
            if rh.append("Location", &location).is_err() {
                return StaticAnswer::Status(400);
            }
            let _ = rh.append("Content-Type", "text/html");
            let body =
                Full::new(&b"<html><body><h1>301 Moved Permanently</h1></body></html>\n"[..]);
            StaticAnswer::Response(rh, Either::Left(body))
        }
        Blocking::Plan(plan, planned) => {
            let Ok(mut rh) = ResponseHead::new(plan.status) else {
                return StaticAnswer::Status(500);
            };
            for (name, value) in &plan.headers {
                if rh.append(name, value.as_bytes()).is_err() {
                    return StaticAnswer::Status(500);
                }
            }
            if let Some(n) = plan.content_length {
                let _ = rh.set_content_length(n);
            }
            let body = match planned {
                PlannedBody::None if plan.content_length.is_some_and(|n| n > 0) => super::no_body(),
                PlannedBody::None => Either::Left(Full::empty()),
                PlannedBody::Read(data) => Either::Left(Full::new(data)),
                PlannedBody::Stream(file, range) => {
                    Either::Right(stream_file(file, plan.file, range))
                }
            };
            StaticAnswer::Response(rh, body)
        }
    }
}

/// Streams `range` of the open `file` (at `path`, for the log) through a channel, 64 KiB
/// per read.
fn stream_file(file: File, path: std::path::PathBuf, range: ByteRange) -> ChannelBody {
    let (tx, body) = ChannelBody::channel(2);
    tokio::spawn(async move {
        let result: std::io::Result<()> = async {
            let mut f = tokio::fs::File::from_std(file);
            f.seek(SeekFrom::Start(range.start)).await?;
            let mut left = range.len;
            while left > 0 {
                let want = CHUNK.min(usize::try_from(left).unwrap_or(CHUNK));
                let mut buf = BytesMut::with_capacity(want);
                let n = (&mut f).take(want as u64).read_buf(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file shrank while being sent",
                    ));
                }
                left -= n as u64;
                if tx.send(Ok(buf.freeze())).await.is_err() {
                    return Ok(()); // the client went away
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!("streaming {}: {e}", path.display());
            let _ = tx.send(Err(Box::new(e))).await;
        }
    });
    body
}

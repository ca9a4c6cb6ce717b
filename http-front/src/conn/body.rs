//! The request body reader the driver lends to the handler.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Conn;
use crate::body::{BodyDecoder, BodyEvent, Trailers};
use crate::error::{Error, Kind, TimeoutKind};
use crate::handler::BodySource;
use crate::head::BodyLength;
use crate::response::CONTINUE;

/// Reads one request body from the connection, on demand.
pub(super) struct BodyReader<'c, 'cfg, IO> {
    pub(super) conn: &'c mut Conn<'cfg, IO>,
    pub(super) decoder: BodyDecoder,
    pub(super) length: BodyLength,
    /// `100 Continue` is owed before the first read from the socket.
    pub(super) continue_owed: bool,
    /// The first failure; later polls return the same kind.
    pub(super) fault: Option<Kind>,
    pub(super) trailers: Option<Trailers>,
    timer_armed: bool,
}

impl<'c, 'cfg, IO> BodyReader<'c, 'cfg, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    pub(super) fn new(
        conn: &'c mut Conn<'cfg, IO>,
        decoder: BodyDecoder,
        length: BodyLength,
        continue_owed: bool,
    ) -> Self {
        BodyReader {
            conn,
            decoder,
            length,
            continue_owed,
            fault: None,
            trailers: None,
            timer_armed: false,
        }
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<Bytes, Error>>> {
        self.fault = Some(e.kind());
        Poll::Ready(Some(Err(e)))
    }

    /// Arms the body timeout on the first `Pending` of a wait, and reports whether it fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.timer_armed {
            let deadline = Instant::now() + self.conn.config.body_timeout;
            self.conn.timer.as_mut().reset(deadline.into());
            self.timer_armed = true;
        }
        self.conn.timer.as_mut().poll(cx).is_ready()
    }
}

impl<IO> BodySource for BodyReader<'_, '_, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if let Some(kind) = self.fault {
            return Poll::Ready(Some(Err(Error::new(kind))));
        }
        loop {
            match self.decoder.decode(&mut self.conn.rbuf) {
                Ok(Some(BodyEvent::Data(data))) => {
                    self.timer_armed = false;
                    return Poll::Ready(Some(Ok(data)));
                }
                Ok(Some(BodyEvent::End(trailers))) => {
                    self.trailers = Some(trailers);
                    return Poll::Ready(None);
                }
                Ok(None) if self.decoder.is_done() => return Poll::Ready(None),
                Ok(None) => {}
                Err(e) => return self.fail(e),
            }
            if self.continue_owed {
                // Owed only while nothing of the body has arrived (RFC 9110 §10.1.1).
                self.continue_owed = false;
                if self.conn.rbuf.is_empty() {
                    self.conn.wbuf.extend_from_slice(CONTINUE);
                }
            }
            // Pending responses (pipelining) and 100 Continue go out before we wait.
            if !self.conn.wbuf.is_empty() {
                match self.conn.poll_write_wbuf(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return self.fail(e),
                    Poll::Pending => {
                        if self.poll_timer(cx) {
                            return self.fail(Error::new(Kind::Timeout(TimeoutKind::Write)));
                        }
                        return Poll::Pending;
                    }
                }
            }
            if self.conn.read_eof {
                return self.fail(Error::new(Kind::IncompleteBody));
            }
            match self.conn.poll_read(cx) {
                Poll::Ready(Ok(0)) => {
                    self.conn.read_eof = true;
                    return self.fail(Error::new(Kind::IncompleteBody));
                }
                Poll::Ready(Ok(_)) => self.timer_armed = false,
                Poll::Ready(Err(e)) => return self.fail(e),
                Poll::Pending => {
                    if self.poll_timer(cx) {
                        return self.fail(Error::new(Kind::Timeout(TimeoutKind::Body)));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn length(&self) -> BodyLength {
        self.length
    }

    fn received(&self) -> u64 {
        self.decoder.received()
    }

    fn trailers(&self) -> Option<&Trailers> {
        self.trailers.as_ref()
    }
}

impl<IO> Conn<'_, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    /// One read into the read buffer (reserving `read_buffer` bytes first).
    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, Error>> {
        if self.rbuf.capacity() - self.rbuf.len() < self.config.read_buffer / 2 {
            self.rbuf.reserve(self.config.read_buffer);
        }
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            &mut self.rbuf
        ))
        .map_err(Error::io)?;
        Poll::Ready(Ok(n))
    }

    /// Writes the whole write buffer (no flush of the IO object).
    pub(super) fn poll_write_wbuf(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while !self.wbuf.is_empty() {
            let n = ready!(tokio_util::io::poll_write_buf(
                Pin::new(&mut self.io),
                cx,
                &mut self.wbuf
            ))
            .map_err(Error::io)?;
            if n == 0 {
                return Poll::Ready(Err(Error::io(std::io::ErrorKind::WriteZero.into())));
            }
        }
        Poll::Ready(Ok(()))
    }
}

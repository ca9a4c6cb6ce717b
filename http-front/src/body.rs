//! Sans-IO request body framing: Content-Length and chunked (RFC 9112 §6.3, §7.1).
//!
//! Chunked framing is decoded by the workspace's strict decoder,
//! [`uwsgi_proto::chunked::ChunkedDecoder`] (at least one hex digit, overflow checked, CRLF
//! everywhere, no LF in extensions, extension and trailer byte caps). Trailers are parsed with
//! `httparse::parse_headers`, capped, and handed out separately: they are never merged into
//! the [`RequestHead`](crate::RequestHead) (RFC 9112 §7.1.2).
//!
//! Data comes out as [`Bytes`] split off the read buffer, never copied or coalesced.

use std::fmt;

use bytes::{Bytes, BytesMut};
use uwsgi_proto::chunked::{ChunkedDecoder, ChunkedEvent, ChunkedLimits};

use crate::config::BodyConfig;
use crate::error::{Error, Fault};
use crate::head::{BodyLength, Fields};

/// What the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEvent {
    /// Body bytes, split off the input buffer without copying. Never empty.
    Data(Bytes),
    /// The body is complete. Trailers are empty unless a chunked body carried some.
    End(Trailers),
}

#[derive(Debug)]
enum State {
    Length {
        remaining: u64,
    },
    Chunked(Box<ChunkedDecoder>),
    /// All bytes consumed; the `End` event is still to be returned.
    Ended(Trailers),
    /// `End` was returned.
    Done,
}

/// Sans-IO decoder for one request body.
///
/// Feed it the read buffer after the head was split off; it takes exactly the body's bytes
/// and leaves what follows (a pipelined request) in the buffer. Every body ends with exactly
/// one [`BodyEvent::End`].
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use http_front::body::{BodyDecoder, BodyEvent};
/// use http_front::{BodyConfig, BodyLength};
///
/// let mut buf = BytesMut::from(&b"4\r\nWiki\r\n0\r\nX-Sum: 9\r\n\r\nGET /next"[..]);
/// let mut body = BodyDecoder::new(BodyLength::Chunked, &BodyConfig::default())?;
/// assert_eq!(body.decode(&mut buf)?, Some(BodyEvent::Data("Wiki".into())));
/// match body.decode(&mut buf)? {
///     Some(BodyEvent::End(trailers)) => assert_eq!(trailers.field("x-sum"), Some(&b"9"[..])),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(&buf[..], b"GET /next");
/// # Ok::<(), http_front::Error>(())
/// ```
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
    max_body: u64,
    received: u64,
    max_trailer_fields: usize,
}

impl BodyDecoder {
    /// A decoder for a body framed as `length`.
    ///
    /// # Errors
    ///
    /// 413 ([`Error::is_body_too_large`]) when a Content-Length is over
    /// [`BodyConfig::max_body_bytes`]: refused before any body byte is read.
    pub fn new(length: BodyLength, config: &BodyConfig) -> Result<BodyDecoder, Error> {
        let state = match length {
            BodyLength::Empty => State::Ended(Trailers::default()),
            BodyLength::Length(n) if n > config.max_body_bytes => {
                return Err(Error::parse(Fault::BodyTooLarge));
            }
            BodyLength::Length(n) => State::Length { remaining: n },
            BodyLength::Chunked => {
                let mut limits = ChunkedLimits::default();
                limits.max_extensions = config.max_chunk_extensions;
                limits.max_trailers = config.max_trailer_bytes;
                State::Chunked(Box::new(ChunkedDecoder::with_limits(limits)))
            }
        };
        Ok(BodyDecoder {
            state,
            max_body: config.max_body_bytes,
            received: 0,
            max_trailer_fields: config.max_trailer_fields,
        })
    }

    /// Whether all body bytes have been consumed (the `End` event may still be pending).
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Ended(_) | State::Done)
    }

    /// Whether the `End` event has been returned.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether the body is chunked.
    pub fn is_chunked(&self) -> bool {
        matches!(self.state, State::Chunked(_))
    }

    /// Body bytes still expected for a Content-Length body (`Some(0)` once complete); `None`
    /// for a chunked body that has not ended.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length { remaining } => Some(remaining),
            State::Chunked(_) => None,
            State::Ended(_) | State::Done => Some(0),
        }
    }

    /// Body bytes returned so far (decoded bytes, for chunked).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Takes the next event from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds no complete event (read more and call again), and
    /// after the `End` event.
    ///
    /// # Errors
    ///
    /// 400 for broken chunked framing or trailers, 431 for trailers over their limits, 413
    /// when a chunked body grows past [`BodyConfig::max_body_bytes`]. The decoder must not be
    /// used after an error, and the connection must be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BodyEvent>, Error> {
        match &mut self.state {
            State::Done => Ok(None),
            State::Ended(_) => match std::mem::replace(&mut self.state, State::Done) {
                State::Ended(trailers) => Ok(Some(BodyEvent::End(trailers))),
                _ => unreachable!("matched Ended above"),
            },
            State::Length { remaining } => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.state = State::Ended(Trailers::default());
                }
                self.received += n as u64;
                Ok(Some(BodyEvent::Data(buf.split_to(n).freeze())))
            }
            State::Chunked(decoder) => match decoder.decode(buf).map_err(Error::chunked)? {
                None => Ok(None),
                Some(ChunkedEvent::Data(data)) => {
                    self.received += data.len() as u64;
                    if self.received > self.max_body {
                        return Err(Error::parse(Fault::BodyTooLarge));
                    }
                    Ok(Some(BodyEvent::Data(data)))
                }
                Some(ChunkedEvent::End { trailers }) => {
                    let trailers = Trailers::parse(&trailers, self.max_trailer_fields)?;
                    self.state = State::Done;
                    Ok(Some(BodyEvent::End(trailers)))
                }
            },
        }
    }
}

/// The trailer section of a chunked body (RFC 9112 §7.1.2), parsed and capped.
///
/// Kept apart from the head: a trailer named `Content-Length`, `Host` or `Transfer-Encoding`
/// changes nothing. Field names and values follow the same syntax rules as the head's.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Trailers {
    /// Trailer lines plus the final empty line; empty when there were none.
    buf: Bytes,
    count: usize,
}

impl Trailers {
    /// Parses raw trailer lines (each ending in CRLF, without the final empty line), as
    /// [`ChunkedEvent::End`] hands them out. Copies them once (trailers are rare and small).
    fn parse(raw: &[u8], max_fields: usize) -> Result<Trailers, Error> {
        if raw.is_empty() {
            return Ok(Trailers::default());
        }
        let mut owned = Vec::with_capacity(raw.len() + 2);
        owned.extend_from_slice(raw);
        owned.extend_from_slice(b"\r\n");
        let buf = Bytes::from(owned);
        let mut slots = vec![httparse::EMPTY_HEADER; max_fields];
        let count = match httparse::parse_headers(&buf, &mut slots) {
            Ok(httparse::Status::Complete((_, headers))) => headers.len(),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::parse(Fault::TrailersTooLarge));
            }
            // Partial cannot happen: the section ends in an empty line.
            _ => return Err(Error::parse(Fault::Trailer)),
        };
        Ok(Trailers { buf, count })
    }

    /// Whether there are no trailer fields.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of trailer fields.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The trailer fields in wire order.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            buf: &self.buf,
            rest: &self.buf,
            skip_underscores: false,
        }
    }

    /// The value of the first trailer named `name` (ASCII case-insensitive).
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|f| f.name().eq_ignore_ascii_case(name))
            .map(|f| f.value())
    }
}

impl fmt::Debug for Trailers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Trailers").field(&self.fields()).finish()
    }
}

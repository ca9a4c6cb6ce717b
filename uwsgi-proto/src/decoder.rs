//! The sans-IO stream decoder: header, vars, then body chunks.

use bytes::{Buf, Bytes, BytesMut};

use crate::body::BodyScan;
use crate::chunked::{ChunkedDecoder, ChunkedEvent};
use crate::encode::checked_datasize;
use crate::sniff_foreign_protocol;
use crate::vars::validate;
use crate::{BodyKind, EncodeError, Error, HEADER_LEN, Header, Limits, Modifier1, OwnedVars};

/// A request packet's head: the header, the validated vars and the body framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The packet header; `header.modifier1.is_request()` is true.
    pub header: Header,
    /// The vars, as [`Bytes`] slices of one frozen buffer.
    pub vars: OwnedVars,
    /// How the body that follows is framed (from `CONTENT_LENGTH` / `HTTP_TRANSFER_ENCODING`).
    pub body: BodyKind,
}

/// A packet that is not an HTTP-style request (ping, RPC, cache, signal, …): the header
/// and its raw payload. No body follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The packet header.
    pub header: Header,
    /// The `datasize` bytes after the header (empty for a ping); parse RPC and cache
    /// payloads with [`Array`](crate::Array).
    pub payload: Bytes,
}

impl Packet {
    /// A packet whose `datasize` is the payload's length.
    ///
    /// # Errors
    ///
    /// [`EncodeError::PayloadTooLarge`] if `payload` is over 65535 bytes.
    pub fn new(modifier1: Modifier1, modifier2: u8, payload: Bytes) -> Result<Packet, EncodeError> {
        let datasize = checked_datasize(payload.len())?;
        Ok(Packet {
            header: Header::new(modifier1, datasize, modifier2),
            payload,
        })
    }
}

/// One item decoded from a uwsgi stream.
///
/// A [`Frame::Request`] is always followed by zero or more [`Frame::Body`] and exactly one
/// [`Frame::BodyEnd`]; a [`Frame::Packet`] stands alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The head of an HTTP-style request (modifier1 0, 5, 7, 30, …).
    Request(RequestHead),
    /// Any other packet (ping, RPC, …) with its payload.
    Packet(Packet),
    /// Request body bytes, split off the read buffer without copying. Never empty.
    Body(Bytes),
    /// The end of the current request's body.
    BodyEnd {
        /// The raw trailer lines of a chunk-framed body (empty otherwise); see
        /// [`ChunkedEvent::End`].
        trailers: Bytes,
    },
}

#[derive(Debug, Clone)]
enum State {
    Header,
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
    End,
}

/// Sans-IO decoder for a uwsgi byte stream, as a server reads it.
///
/// Feed it the connection's read buffer; it splits frames off the front. Incomplete input
/// returns `Ok(None)` and reserves room for what it needs next (at most the rest of the
/// vars block, or 8 KiB of body), never an error. After a request's [`Frame::BodyEnd`] it
/// expects a new header; uWSGI and nginx use one request per connection, so a server usually
/// closes there instead.
///
/// ```
/// use bytes::BytesMut;
/// use uwsgi_proto::{BodyKind, Frame, RequestDecoder, encode_request, Modifier1};
///
/// let mut wire = BytesMut::new();
/// encode_request(Modifier1::WSGI, 0, &[("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "5")], &mut wire)?;
/// wire.extend_from_slice(b"hello");
///
/// let mut decoder = RequestDecoder::new();
/// let Some(Frame::Request(head)) = decoder.decode(&mut wire)? else { panic!() };
/// assert_eq!(head.vars.get(b"REQUEST_METHOD"), Some(&b"POST"[..]));
/// assert_eq!(head.body, BodyKind::Length(5));
/// assert_eq!(decoder.decode(&mut wire)?, Some(Frame::Body("hello".into())));
/// assert!(matches!(decoder.decode(&mut wire)?, Some(Frame::BodyEnd { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequestDecoder {
    limits: Limits,
    state: State,
}

/// How much body to ask the buffer to reserve at a time, in bytes.
const BODY_RESERVE: usize = 8 * 1024;

impl Default for RequestDecoder {
    fn default() -> Self {
        RequestDecoder::new()
    }
}

impl RequestDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> RequestDecoder {
        RequestDecoder::with_limits(Limits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> RequestDecoder {
        RequestDecoder {
            limits,
            state: State::Header,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the decoder is between packets (no header, vars or body half read).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Header)
    }

    /// Splits the next frame off the front of `src`.
    ///
    /// # Errors
    ///
    /// Any [`Error`] means the stream is corrupt and the connection should be closed (uWSGI
    /// closes without a reply). [`Error::LooksLikeHttp`] and [`Error::LooksLikeTls`] are
    /// reported as soon as 4 bytes are in, so a server can log a helpful line.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        match &mut self.state {
            State::Header => self.decode_head(src),
            State::Length { remaining } => {
                if *remaining == 0 {
                    self.state = State::Header;
                    return Ok(Some(Frame::BodyEnd {
                        trailers: Bytes::new(),
                    }));
                }
                if src.is_empty() {
                    let want = usize::try_from(*remaining).unwrap_or(usize::MAX);
                    src.reserve(want.min(BODY_RESERVE));
                    return Ok(None);
                }
                let n = usize::try_from(*remaining).map_or(src.len(), |r| r.min(src.len()));
                *remaining -= n as u64;
                Ok(Some(Frame::Body(src.split_to(n).freeze())))
            }
            State::Chunked(chunked) => match chunked.decode(src)? {
                Some(ChunkedEvent::Data(data)) => Ok(Some(Frame::Body(data))),
                Some(ChunkedEvent::End { trailers }) => {
                    self.state = State::Header;
                    Ok(Some(Frame::BodyEnd { trailers }))
                }
                None => {
                    src.reserve(BODY_RESERVE);
                    Ok(None)
                }
            },
            State::End => {
                self.state = State::Header;
                Ok(Some(Frame::BodyEnd {
                    trailers: Bytes::new(),
                }))
            }
        }
    }

    /// Like [`decode`](Self::decode), for when the peer has closed its side: anything left
    /// half-read is [`Error::UnexpectedEof`].
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode), plus [`Error::UnexpectedEof`] when the stream ends in the
    /// middle of a header, vars block or body.
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && self.is_idle() => Ok(None),
            None => Err(Error::UnexpectedEof),
        }
    }

    fn decode_head(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if self.limits.sniff_foreign
            && let Some(err) = sniff_foreign_protocol(src)
        {
            return Err(err);
        }
        let Some(header) = Header::decode(src) else {
            src.reserve(HEADER_LEN - src.len());
            return Ok(None);
        };
        if header.datasize > self.limits.max_datasize {
            return Err(Error::DatasizeTooLarge {
                datasize: usize::from(header.datasize),
                limit: self.limits.max_datasize,
            });
        }
        let total = HEADER_LEN + usize::from(header.datasize);
        if header.modifier1.is_request() && header.datasize == 0 {
            return Err(Error::EmptyRequest);
        }
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(usize::from(header.datasize)).freeze();
        if !header.modifier1.is_request() {
            return Ok(Some(Frame::Packet(Packet { header, payload })));
        }
        // One walk validates the vars and picks out the framing vars.
        let mut scan = BodyScan::default();
        let len = validate(&payload, &self.limits, |k, v| scan.observe(k, v))?;
        let body = scan.finish(&self.limits)?;
        let vars = OwnedVars::from_validated(payload, len);
        self.state = match body {
            BodyKind::Empty => State::End,
            BodyKind::Length(remaining) => State::Length { remaining },
            BodyKind::Chunked => State::Chunked(ChunkedDecoder::with_limits(self.limits.chunked)),
        };
        Ok(Some(Frame::Request(RequestHead { header, vars, body })))
    }
}

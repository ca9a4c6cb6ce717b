//! [`UwsgiCodec`]: a tokio-util `Decoder`/`Encoder` over [`RequestDecoder`].

use std::io;

use bytes::{BufMut, BytesMut};
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

use crate::chunked::{encode_chunk, encode_last_chunk};
use crate::encode::checked_datasize;
use crate::{BodyKind, EncodeError, Error, Frame, HEADER_LEN, Header, Limits, RequestDecoder};

/// The error type of [`UwsgiCodec`]: a protocol fault, an unencodable frame, or I/O.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The peer sent something that is not valid uwsgi; close the connection.
    #[error(transparent)]
    Protocol(#[from] Error),
    /// A frame handed to the encoder cannot be put on the wire.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A tokio-util codec for uwsgi streams, server side for decoding, and the matching encoder.
///
/// Decoding yields [`Frame`]s exactly as [`RequestDecoder`] does: `Ok(None)` for incomplete
/// input (never an error), having reserved room for the next piece. Encoding a [`Frame`]
/// writes it back in wire form: a request's header and vars block, a packet's header and
/// payload, body bytes raw, or, after a head whose body is [`BodyKind::Chunked`], as chunks
/// ending with the last chunk and trailers. So decoding what was encoded gives the same
/// frames back (body bytes may be split differently).
///
/// ```
/// use bytes::BytesMut;
/// use futures_util::StreamExt;
/// use tokio::io::AsyncWriteExt;
/// use tokio_util::codec::FramedRead;
/// use uwsgi_proto::{Frame, Modifier1, UwsgiCodec, encode_request};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // One end of a connection, as a front server such as nginx writes to it.
/// let (mut front, stream) = tokio::io::duplex(4096);
/// let mut wire = BytesMut::new();
/// let vars = [("PATH_INFO", "/upload"), ("CONTENT_LENGTH", "5")];
/// encode_request(Modifier1::WSGI, 0, &vars, &mut wire)?;
/// wire.extend_from_slice(b"hello");
/// front.write_all(&wire).await?;
///
/// let mut frames = FramedRead::new(stream, UwsgiCodec::new());
/// let mut body = Vec::new();
/// while let Some(frame) = frames.next().await {
///     match frame? {
///         Frame::Request(head) => assert_eq!(head.vars.get(b"PATH_INFO"), Some(&b"/upload"[..])),
///         Frame::Body(bytes) => body.extend_from_slice(&bytes),
///         Frame::BodyEnd { .. } => break, // one request per connection, like uWSGI
///         Frame::Packet(packet) => println!("{:?}", packet.header.modifier1),
///     }
/// }
/// assert_eq!(body, b"hello");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct UwsgiCodec {
    decoder: RequestDecoder,
    encoding_chunked: bool,
}

impl UwsgiCodec {
    /// A codec with the default [`Limits`].
    pub fn new() -> UwsgiCodec {
        UwsgiCodec::with_limits(Limits::default())
    }

    /// A codec with the given limits (applied when decoding).
    pub fn with_limits(limits: Limits) -> UwsgiCodec {
        UwsgiCodec {
            decoder: RequestDecoder::with_limits(limits),
            encoding_chunked: false,
        }
    }
}

impl Decoder for UwsgiCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decoder.decode_eof(src)?)
    }
}

impl Encoder<Frame> for UwsgiCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        match frame {
            Frame::Request(head) => {
                let block = head.vars.as_bytes();
                let datasize = checked_datasize(block.len())?;
                dst.reserve(HEADER_LEN + block.len());
                Header {
                    datasize,
                    ..head.header
                }
                .write(dst);
                dst.put_slice(block);
                self.encoding_chunked = head.body == BodyKind::Chunked;
            }
            Frame::Packet(packet) => {
                let datasize = checked_datasize(packet.payload.len())?;
                dst.reserve(HEADER_LEN + packet.payload.len());
                Header {
                    datasize,
                    ..packet.header
                }
                .write(dst);
                dst.put_slice(&packet.payload);
            }
            Frame::Body(data) if self.encoding_chunked => encode_chunk(&data, dst),
            Frame::Body(data) => dst.put_slice(&data),
            Frame::BodyEnd { trailers } => {
                if std::mem::take(&mut self.encoding_chunked) {
                    encode_last_chunk(&trailers, dst);
                }
            }
        }
        Ok(())
    }
}

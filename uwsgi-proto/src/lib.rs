//! A zero-copy, sans-IO codec for the **uwsgi** wire protocol, as nginx (`uwsgi_pass`) and
//! uWSGI speak it.
//!
//! # The protocol in one paragraph
//!
//! Every uwsgi message is a 4-byte [`Header`] (`modifier1`: u8 packet type, `datasize`: u16
//! **little-endian** payload length, `modifier2`: u8 subtype) followed by `datasize` bytes of
//! payload. For a request (modifier1 0) the payload is a **vars block**: CGI-style
//! `(key, value)` pairs, each written as `u16 LE key_len | key | u16 LE val_len | val`, with
//! no terminator. The request body follows the vars unframed; its length is the
//! `CONTENT_LENGTH` var. The server answers with a plain HTTP/1.x response on the same stream
//! and closes: one request per connection. A ping (modifier1 100) is answered with a pong
//! (modifier1 100, modifier2 1). The facts here were checked against nginx 1.22 and uWSGI
//! 2.0 (`reference/uwsgi-protocol.md` in the project's shared notes).
//!
//! # What this crate does
//!
//! - [`Header`] and [`Modifier1`]: the packet header and the table of packet types.
//! - [`Vars`]: a borrowed, validating parser over `&[u8]` (no allocation; pairs in wire
//!   order; repeated keys kept; [`Vars::get`] returns the last value, as uWSGI does).
//!   [`OwnedVars`]: the same over one frozen [`Bytes`](bytes::Bytes) buffer.
//! - [`BodyKind`] and [`parse_content_length`]: how the body is framed, strictly.
//! - [`chunked`]: a strict RFC 9112 chunked decoder for the raw chunked bodies uWSGI's HTTP
//!   router sends with `--http-chunked-input`.
//! - [`RequestDecoder`]: the stream state machine that yields the head, then body chunks.
//! - [`encode_request`], [`encode_ping`], [`encode_pong`], [`encode_generic_response`]: the
//!   encoder (one `reserve` per packet; an oversize vars block is refused, never truncated).
//! - [`Array`], [`encode_array`], [`encode_rpc`]: uwsgi arrays, the payload of RPC packets.
//! - With the default `codec` feature, `UwsgiCodec`: a tokio-util `Decoder`/`Encoder`.
//!
//! It does **no I/O**, has no clock and no runtime: feed it bytes, get frames back. Writing
//! the HTTP response, timeouts and draining an unread body before close are the server's job.
//!
//! # Decoding a request
//!
//! ```
//! use uwsgi_proto::{Header, Limits, Modifier1, Vars};
//!
//! // What nginx sends for `GET /hello?x=1` (shortened), straight off the socket.
//! let packet: &[u8] = b"\x00\x3b\x00\x00\
//!     \x0c\x00QUERY_STRING\x03\x00x=1\
//!     \x0e\x00REQUEST_METHOD\x03\x00GET\
//!     \x09\x00PATH_INFO\x06\x00/hello";
//!
//! let header = Header::decode(packet).expect("4 bytes are there");
//! assert_eq!(header.modifier1, Modifier1::WSGI);
//! let block = &packet[4..4 + usize::from(header.datasize)];
//! let vars = Vars::parse(block, &Limits::default())?;
//! assert_eq!(vars.get(b"PATH_INFO"), Some(&b"/hello"[..]));
//! assert_eq!(vars.get(b"QUERY_STRING"), Some(&b"x=1"[..]));
//! # Ok::<(), uwsgi_proto::Error>(())
//! ```
//!
//! For a byte stream, [`RequestDecoder`] (or `UwsgiCodec` with tokio) does the buffering:
//! it returns `Ok(None)` until a whole head is in, then the body in pieces.
//!
//! # Encoding a request
//!
//! ```
//! use bytes::BytesMut;
//! use uwsgi_proto::{Modifier1, encode_request};
//!
//! let body = b"name=ferrule";
//! let len = body.len().to_string();
//! let mut out = BytesMut::new();
//! encode_request(
//!     Modifier1::WSGI,
//!     0,
//!     &[
//!         ("REQUEST_METHOD", "POST"),
//!         ("PATH_INFO", "/form"),
//!         ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
//!         ("CONTENT_LENGTH", len.as_str()),
//!     ],
//!     &mut out,
//! )?;
//! out.extend_from_slice(body); // the body follows the vars, unframed
//! assert_eq!(out[0], 0); // modifier1
//! # Ok::<(), uwsgi_proto::EncodeError>(())
//! ```
//!
//! # Limits and their defaults
//!
//! | [`Limits`] field | default | why |
//! |---|---|---|
//! | `max_datasize` | 65535 bytes | nginx sends up to 65535; uWSGI's 4096 default breaks big cookies |
//! | `max_vars` | 512 pairs | uWSGI stops near 128; nginx can send hundreds of small headers |
//! | `max_body` | `u64::MAX` bytes | uWSGI's `--limit-post` is off by default |
//! | `chunked.max_extensions` | 16 KiB per body | as hyper |
//! | `chunked.max_trailers` | 16 KiB | |
//! | `sniff_foreign` | `true` | name plain HTTP / TLS clients at once (a server's view) |
//!
//! # What it deliberately does differently from uWSGI
//!
//! - `CONTENT_LENGTH` must be `1*DIGIT` (uWSGI reads leading digits: `"12abc"` is 12).
//! - A repeated `CONTENT_LENGTH` with different values is refused.
//! - Zero-length [`Array`] items are kept (uWSGI skips them).
//! - uWSGI's state-changing "magic" vars (`UWSGI_SETENV`, …) mean nothing here: the crate
//!   only carries bytes; acting on vars is the host's business, and ferrule never does.
//!
//! # Features
//!
//! - `codec` (default): `UwsgiCodec`, implementing tokio-util's `Decoder` and `Encoder`.
//!
//! # Stability
//!
//! Pre-1.0. Error enums are `#[non_exhaustive]`; new [`Modifier1`] names may be added.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(no_crate_inject, attr(deny(warnings))))]

mod array;
pub use array::{Array, ArrayIter, array_len, encode_array, encode_rpc};

mod body;
pub use body::{BodyKind, parse_content_length};

pub mod chunked;

#[cfg(feature = "codec")]
mod codec;
#[cfg(feature = "codec")]
#[cfg_attr(docsrs, doc(cfg(feature = "codec")))]
pub use codec::{CodecError, UwsgiCodec};

mod decoder;
pub use decoder::{Frame, Packet, RequestDecoder, RequestHead};

mod encode;
pub use encode::{encode_generic_response, encode_ping, encode_pong, encode_request, vars_len};

mod error;
pub use error::{EncodeError, Error};

mod header;
pub use header::{
    HEADER_LEN, Header, MAX_DATASIZE, MODIFIER2_PONG, Modifier1, sniff_foreign_protocol,
};

mod vars;
pub use vars::{OwnedVars, Vars, VarsIter};

use chunked::ChunkedLimits;

/// Limits applied while decoding. Every field has a documented default; change fields on a
/// `Limits::default()` value (the struct is `#[non_exhaustive]` so that limits can be added).
///
/// ```
/// let mut limits = uwsgi_proto::Limits::default();
/// limits.max_datasize = 4096; // uWSGI's own default buffer-size
/// limits.max_body = 10 << 20; // like `--limit-post 10485760`
/// let decoder = uwsgi_proto::RequestDecoder::with_limits(limits);
/// assert_eq!(decoder.limits().max_datasize, 4096);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted `datasize` (vars block), in bytes. Default is 65535, the protocol's
    /// maximum and what nginx may send (uWSGI's `--buffer-size`; its own default of 4096 makes
    /// nginx answer 502 to requests with big cookies).
    pub max_datasize: u16,
    /// Most pairs in one vars block. Default is 512.
    pub max_vars: usize,
    /// Largest accepted `CONTENT_LENGTH`, in bytes (uWSGI's `--limit-post`). Default is
    /// `u64::MAX` (no limit). A chunk-framed body is not limited here: count its bytes as
    /// they arrive.
    pub max_body: u64,
    /// Limits of the chunked decoder for raw chunked bodies. Default: [`ChunkedLimits::default`].
    pub chunked: ChunkedLimits,
    /// Report plain HTTP and TLS sent to a uwsgi socket as [`Error::LooksLikeHttp`] /
    /// [`Error::LooksLikeTls`] as soon as 4 bytes are in (see [`sniff_foreign_protocol`]),
    /// instead of waiting for a `datasize` that will never arrive. Default is `true`, right
    /// for a WSGI server. The check can mistake a legitimate packet for a foreign protocol
    /// when its first bytes happen to spell one (modifier1 22, raw eval, with a `datasize`
    /// whose low byte is 3; or modifier1 71 `'G'` with `datasize` 21573): a generic uwsgi
    /// peer that uses such packets sets this to `false`.
    pub sniff_foreign: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_datasize: MAX_DATASIZE,
            max_vars: 512,
            max_body: u64::MAX,
            chunked: ChunkedLimits::default(),
            sniff_foreign: true,
        }
    }
}

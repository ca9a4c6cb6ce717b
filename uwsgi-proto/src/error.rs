//! The errors of the codec: one named variant per protocol fault.

use thiserror::Error;

use crate::chunked::ChunkedError;

/// A protocol fault found while decoding a uwsgi packet or its body.
///
/// Every variant is a reason to drop the connection: uWSGI answers none of them and closes
/// (reference: `core/protocol.c` `uwsgi_parse_vars`, `proto/uwsgi.c`), and nginx then answers
/// 502 to its client. Incomplete input is **never** an error; decoders return `Ok(None)`.
///
/// The type is `Copy` and its `Display` strings are static, so logging it costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The header's `datasize` is above the configured limit ([`Limits::max_datasize`]).
    ///
    /// uWSGI logs `invalid request block size: N (max M)...skip` and closes.
    ///
    /// [`Limits::max_datasize`]: crate::Limits::max_datasize
    #[error("uwsgi datasize {datasize} is over the limit of {limit} bytes")]
    DatasizeTooLarge {
        /// The `datasize` the header announced (or the block's length), in bytes.
        datasize: usize,
        /// The configured limit, in bytes.
        limit: u16,
    },
    /// The first bytes are an HTTP request line (`GET `, `POST`, …), not a uwsgi header.
    ///
    /// `GET ` read as a uwsgi header gives `datasize` 21573, the number uWSGI's docs tell
    /// users to look for. A server should log that the client speaks HTTP and that it should
    /// use an HTTP listener or a front proxy.
    #[error("plain HTTP sent to a uwsgi socket (use an HTTP listener or put a front proxy here)")]
    LooksLikeHttp,
    /// The first bytes are a TLS handshake record, not a uwsgi header.
    #[error("TLS handshake sent to a uwsgi socket (the client must speak plain uwsgi)")]
    LooksLikeTls,
    /// A request packet (modifier1 0, 5, 7, …) with `datasize` 0: it carries no vars at all.
    ///
    /// uWSGI logs `Empty python request. skip.` and closes.
    #[error("uwsgi request packet with an empty vars block")]
    EmptyRequest,
    /// A key length of 0. uWSGI: `uwsgi key cannot be null`.
    #[error("uwsgi var at offset {offset} has a zero-length key")]
    EmptyKey {
        /// Offset of the pair's key length field inside the vars block, in bytes.
        offset: usize,
    },
    /// The key runs past the end of the block, or leaves no room for the value length.
    #[error("uwsgi var at offset {offset}: key runs past the end of the vars block")]
    KeyOverflow {
        /// Offset of the pair's key length field inside the vars block, in bytes.
        offset: usize,
    },
    /// The value runs past the end of the block. uWSGI: `invalid uwsgi request (current strsize: N)`.
    #[error("uwsgi var at offset {offset}: value runs past the end of the vars block")]
    ValueOverflow {
        /// Offset of the pair's key length field inside the vars block, in bytes.
        offset: usize,
    },
    /// One or two bytes are left after the last pair: too few for another key length and key.
    ///
    /// uWSGI requires more than 2 bytes for each pair and rejects such blocks.
    #[error("{count} stray byte(s) after the last uwsgi var")]
    TrailingBytes {
        /// How many bytes were left over (1 or 2).
        count: u8,
    },
    /// More pairs than [`Limits::max_vars`].
    ///
    /// uWSGI's own limit is about 128 pairs (`--max-vars 64`); nginx can send several
    /// hundred small headers.
    ///
    /// [`Limits::max_vars`]: crate::Limits::max_vars
    #[error("more than {limit} uwsgi vars in one packet")]
    TooManyVars {
        /// The configured limit, in pairs.
        limit: usize,
    },
    /// `CONTENT_LENGTH` is not `1*DIGIT` or does not fit in a `u64`.
    ///
    /// Stricter than uWSGI, which reads the leading digits (`"12abc"` is 12): a server that
    /// frames a body differently from its front end desynchronises the stream.
    #[error("CONTENT_LENGTH is not a decimal number of bytes")]
    InvalidContentLength,
    /// `CONTENT_LENGTH` appears more than once with different values.
    #[error("CONTENT_LENGTH appears more than once with different values")]
    ConflictingContentLength,
    /// `CONTENT_LENGTH` is above [`Limits::max_body`] (uWSGI's `--limit-post`).
    ///
    /// [`Limits::max_body`]: crate::Limits::max_body
    #[error("CONTENT_LENGTH {length} is over the body limit of {limit} bytes")]
    BodyTooLarge {
        /// The announced body length, in bytes.
        length: u64,
        /// The configured limit, in bytes.
        limit: u64,
    },
    /// An item of a uwsgi array runs past the end of the payload.
    #[error("uwsgi array item at offset {offset} runs past the end of the payload")]
    ArrayItemOverflow {
        /// Offset of the item's length field inside the payload, in bytes.
        offset: usize,
    },
    /// The stream ended inside a packet header, vars block or body.
    #[error("connection closed in the middle of a uwsgi packet or body")]
    UnexpectedEof,
    /// The chunk-framed body (uWSGI's HTTP router with `--http-chunked-input`) is malformed.
    #[error("chunked request body: {0}")]
    Chunked(#[from] ChunkedError),
}

/// A request that cannot be encoded. The encoder refuses; it never truncates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The vars block (or array payload) would be longer than 65535 bytes, the most a
    /// 16-bit `datasize` can describe.
    ///
    /// nginx answers 500 in this case (`uwsgi request is too big`); it must never be
    /// truncated, which is how nginx's 255-byte param name bug produces malformed packets.
    #[error("uwsgi payload of {size} bytes is over the 65535-byte maximum")]
    PayloadTooLarge {
        /// The size the payload would have had, in bytes.
        size: usize,
    },
    /// A key of length 0: the decoder (and uWSGI) would reject the packet.
    #[error("uwsgi var keys cannot be empty")]
    EmptyKey,
}

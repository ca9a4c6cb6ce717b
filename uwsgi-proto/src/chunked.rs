//! A strict, sans-IO decoder (and small encoder) for the chunked transfer coding.
//!
//! uWSGI's HTTP router with `--http-chunked-input` forwards a client's chunked body raw after
//! the vars (`reference/uwsgi-protocol.md` §5.3), so a uwsgi server must be able to take the
//! framing apart. The same decoder serves the workspace's HTTP front, so both paths share one
//! strict implementation of RFC 9112 §7.1:
//!
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size   = 1*HEXDIG
//! last-chunk   = 1*("0") [ chunk-ext ] CRLF
//! ```
//!
//! Stricter than `httparse::parse_chunk_size` and than many servers, on purpose (see the
//! smuggling checklist in `reference/http1-and-proxy.md`): at least one hex digit, at most 16
//! (a `u64`), CRLF required after the size line, after each chunk's data and after each trailer
//! line (a bare LF or bare CR is an error), no CTL other than HTAB in extensions, a cap on the
//! extension bytes of a whole body, trailers capped and without obs-fold. Trailers are handed
//! back raw and are never merged into the request head.
//!
//! ```
//! use bytes::BytesMut;
//! use uwsgi_proto::chunked::{ChunkedDecoder, ChunkedEvent};
//!
//! let mut src = BytesMut::from(&b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"[..]);
//! let mut decoder = ChunkedDecoder::new();
//! let mut body = Vec::new();
//! loop {
//!     match decoder.decode(&mut src)? {
//!         Some(ChunkedEvent::Data(data)) => body.extend_from_slice(&data),
//!         Some(ChunkedEvent::End { trailers }) => {
//!             assert_eq!(&trailers[..], b"X-Sum: 1\r\n");
//!             break;
//!         }
//!         None => unreachable!("the whole body is in the buffer"),
//!     }
//! }
//! assert_eq!(body, b"hello world");
//! # Ok::<(), uwsgi_proto::chunked::ChunkedError>(())
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Limits of the chunked decoder. Every field has a documented default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChunkedLimits {
    /// Most chunk-extension bytes (everything after the size up to CRLF) accepted over the
    /// **whole body**, in bytes. Default is 16 KiB, as hyper does: extensions carry nothing we
    /// use, and a stream of tiny chunks with long extensions would only burn CPU.
    pub max_extensions: usize,
    /// Most trailer-section bytes (all trailer field lines with their CRLFs), in bytes.
    /// Default is 16 KiB.
    pub max_trailers: usize,
}

impl Default for ChunkedLimits {
    fn default() -> Self {
        ChunkedLimits {
            max_extensions: 16 * 1024,
            max_trailers: 16 * 1024,
        }
    }
}

/// A fault in chunked framing. Each one means the body (and the connection) is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChunkedError {
    /// The size line does not start with a hex digit, or has a stray byte after the digits.
    #[error("invalid chunk size")]
    InvalidSize,
    /// More than 16 hex digits: the size cannot fit in a `u64`.
    #[error("chunk size overflows 64 bits")]
    SizeOverflow,
    /// A chunk extension contains a control character other than HTAB.
    #[error("invalid byte in chunk extension")]
    InvalidExtension,
    /// The chunk extensions of the body add up to more than [`ChunkedLimits::max_extensions`].
    #[error("chunk extensions over the limit")]
    ExtensionsTooLong,
    /// A line ends in a bare LF (RFC 9112 §7.1 requires CRLF).
    #[error("bare LF in chunked framing")]
    BareLf,
    /// A CR is not followed by LF.
    #[error("CR not followed by LF in chunked framing")]
    BareCr,
    /// The bytes after a chunk's data are not CRLF.
    #[error("chunk data not followed by CRLF")]
    MissingDataCrlf,
    /// A trailer line starts with whitespace (obs-fold, RFC 9112 §5.2).
    #[error("obs-fold in trailer section")]
    TrailerFold,
    /// A trailer line contains a NUL or another control character other than HTAB.
    #[error("invalid byte in trailer section")]
    InvalidTrailer,
    /// The trailer section is longer than [`ChunkedLimits::max_trailers`].
    #[error("trailer section over the limit")]
    TrailersTooLong,
}

/// What the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkedEvent {
    /// Body bytes: a [`Bytes`] split off the front of the input buffer, never copied. One
    /// chunk on the wire may arrive as several `Data` events; an empty `Data` never appears.
    Data(Bytes),
    /// The last chunk and the trailer section have been read.
    End {
        /// The raw trailer field lines, each with its CRLF, without the final empty line.
        /// Empty when there were none. Validated for CRLF, CTLs and obs-fold only; parse the
        /// fields with an HTTP field parser.
        trailers: Bytes,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a size line.
    Size { value: u64, digits: u8 },
    /// Whitespace after the size (BWS before `;`).
    SizeWs { value: u64 },
    /// Inside a chunk extension.
    Ext { value: u64 },
    /// Saw CR at the end of a size line.
    SizeLf { value: u64 },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// Inside the trailer section; bytes stay in the buffer until the section is complete.
    Trailers { scanned: usize, line: Line },
    /// The body is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At the first byte of a line.
    Start,
    /// Inside a field line.
    Field,
    /// Saw CR in a field line.
    FieldLf,
    /// Saw CR on an empty line: the end of the section.
    EndLf,
}

/// Sans-IO decoder for one chunked body. See the [module docs](self) for the rules.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    limits: ChunkedLimits,
    extension_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    /// A decoder with the default [`ChunkedLimits`].
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder::with_limits(ChunkedLimits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: ChunkedLimits) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            limits,
            extension_bytes: 0,
        }
    }

    /// Whether the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing from the front of `src` and returns the next event.
    ///
    /// Returns `Ok(None)` when `src` holds no complete event yet (feed more bytes and call
    /// again; already-read framing is not scanned twice), or once the body is done. Data is
    /// split off `src` without copying; bytes after the end of the body stay in `src`.
    ///
    /// # Errors
    ///
    /// A [`ChunkedError`] names the first framing fault. The decoder must not be used after
    /// an error.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ChunkedEvent>, ChunkedError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Data { remaining } => {
                    if src.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(remaining).map_or(src.len(), |r| r.min(src.len()));
                    let remaining = remaining - n as u64;
                    self.state = if remaining == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining }
                    };
                    return Ok(Some(ChunkedEvent::Data(src.split_to(n).freeze())));
                }
                State::Trailers { scanned, line } => return self.trailers(src, scanned, line),
                _ => {
                    if !self.framing(src)? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Runs the byte-at-a-time states (size line, extensions, CRLF after data) over `src`.
    /// Returns whether it reached a state that can make progress without more input.
    fn framing(&mut self, src: &mut BytesMut) -> Result<bool, ChunkedError> {
        let mut used = 0;
        let result = loop {
            let Some(&b) = src.get(used) else {
                break Ok(false);
            };
            used += 1;
            match self.step(b) {
                Ok(true) => break Ok(true),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
        };
        bytes::Buf::advance(src, used);
        result
    }

    /// Feeds one framing byte. Returns `Ok(true)` when the next state is data, trailers or done.
    fn step(&mut self, b: u8) -> Result<bool, ChunkedError> {
        self.state = match self.state {
            State::Size { value, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits == 16 {
                        return Err(ChunkedError::SizeOverflow);
                    }
                    let digit = (b as char).to_digit(16).unwrap_or(0);
                    State::Size {
                        value: (value << 4) | u64::from(digit),
                        digits: digits + 1,
                    }
                }
                _ if digits == 0 => return Err(ChunkedError::InvalidSize),
                b'\r' => State::SizeLf { value },
                b'\n' => return Err(ChunkedError::BareLf),
                b';' => self.extension_byte(value)?,
                b' ' | b'\t' => State::SizeWs { value },
                _ => return Err(ChunkedError::InvalidSize),
            },
            State::SizeWs { value } => match b {
                b' ' | b'\t' => State::SizeWs { value },
                b';' => self.extension_byte(value)?,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::InvalidSize),
            },
            State::Ext { value } => match b {
                b'\r' => State::SizeLf { value },
                b'\n' => return Err(ChunkedError::BareLf),
                b'\t' => self.extension_byte(value)?,
                0..=0x1f | 0x7f => return Err(ChunkedError::InvalidExtension),
                _ => self.extension_byte(value)?,
            },
            State::SizeLf { value } => match b {
                b'\n' if value == 0 => State::Trailers {
                    scanned: 0,
                    line: Line::Start,
                },
                b'\n' => State::Data { remaining: value },
                _ => return Err(ChunkedError::BareCr),
            },
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(ChunkedError::MissingDataCrlf),
            },
            State::DataLf => match b {
                b'\n' => State::Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(ChunkedError::MissingDataCrlf),
            },
            State::Data { .. } | State::Trailers { .. } | State::Done => {
                unreachable!("framing() runs only in byte-at-a-time states")
            }
        };
        Ok(matches!(
            self.state,
            State::Data { .. } | State::Trailers { .. }
        ))
    }

    fn extension_byte(&mut self, value: u64) -> Result<State, ChunkedError> {
        self.extension_bytes += 1;
        if self.extension_bytes > self.limits.max_extensions {
            return Err(ChunkedError::ExtensionsTooLong);
        }
        Ok(State::Ext { value })
    }

    /// Scans the trailer section in place; splits it off `src` once the empty line is seen.
    fn trailers(
        &mut self,
        src: &mut BytesMut,
        mut scanned: usize,
        mut line: Line,
    ) -> Result<Option<ChunkedEvent>, ChunkedError> {
        while let Some(&b) = src.get(scanned) {
            scanned += 1;
            line = match (line, b) {
                (Line::Start, b'\r') => Line::EndLf,
                (Line::Start, b' ' | b'\t') => return Err(ChunkedError::TrailerFold),
                (Line::Field, b'\r') => Line::FieldLf,
                (Line::Start | Line::Field, b'\n') => return Err(ChunkedError::BareLf),
                (Line::Field, b'\t') => Line::Field,
                (Line::Start | Line::Field, 0..=0x1f | 0x7f) => {
                    return Err(ChunkedError::InvalidTrailer);
                }
                (Line::Start | Line::Field, _) => Line::Field,
                (Line::FieldLf, b'\n') => Line::Start,
                (Line::EndLf, b'\n') => {
                    let section = src.split_to(scanned).freeze();
                    self.state = State::Done;
                    return Ok(Some(ChunkedEvent::End {
                        trailers: section.slice(..scanned - 2),
                    }));
                }
                (Line::FieldLf | Line::EndLf, _) => return Err(ChunkedError::BareCr),
            };
            // The final CRLF is not counted against the limit.
            if scanned > self.limits.max_trailers + 2 {
                return Err(ChunkedError::TrailersTooLong);
            }
        }
        self.state = State::Trailers { scanned, line };
        Ok(None)
    }
}

/// Appends one chunk (`hex-size CRLF data CRLF`) to `dst`, with a single `reserve`.
///
/// Writes nothing for empty `data`: an empty chunk would end the body.
pub fn encode_chunk(data: &[u8], dst: &mut BytesMut) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let size = hex_digits(data.len() as u64, &mut hex);
    dst.reserve(size.len() + data.len() + 4);
    dst.put_slice(size);
    dst.put_slice(b"\r\n");
    dst.put_slice(data);
    dst.put_slice(b"\r\n");
}

/// Appends the size line of a chunk of `len` bytes (`hex-size CRLF`), for callers that write
/// the data themselves (vectored writes). `len` must not be 0.
pub fn encode_chunk_head(len: u64, dst: &mut BytesMut) {
    let mut hex = [0u8; 16];
    let size = hex_digits(len, &mut hex);
    dst.reserve(size.len() + 2);
    dst.put_slice(size);
    dst.put_slice(b"\r\n");
}

/// Appends the last chunk, the given raw trailer lines (each ending in CRLF, may be empty)
/// and the final CRLF: `0 CRLF trailers CRLF`.
pub fn encode_last_chunk(trailers: &[u8], dst: &mut BytesMut) {
    dst.reserve(5 + trailers.len());
    dst.put_slice(b"0\r\n");
    dst.put_slice(trailers);
    dst.put_slice(b"\r\n");
}

fn hex_digits(mut n: u64, buf: &mut [u8; 16]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, Bytes, usize), ChunkedError> {
        let mut src = BytesMut::from(input);
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        loop {
            match decoder.decode(&mut src)? {
                Some(ChunkedEvent::Data(d)) => {
                    assert!(!d.is_empty());
                    body.extend_from_slice(&d)
                }
                Some(ChunkedEvent::End { trailers }) => return Ok((body, trailers, src.len())),
                None => panic!("incomplete: {:?}", decoder.state),
            }
        }
    }

    #[test]
    fn valid_bodies() {
        let (body, trailers, left) = decode_all(b"3\r\nabc\r\n0\r\n\r\nNEXT").unwrap();
        assert_eq!((&body[..], &trailers[..], left), (&b"abc"[..], &b""[..], 4));
        let (body, ..) = decode_all(b"A\r\n0123456789\r\n000\r\n\r\n").unwrap();
        assert_eq!(body, b"0123456789");
        let (body, ..) = decode_all(b"1 ;a=b ; c\r\nx\r\n0;z\r\n\r\n").unwrap();
        assert_eq!(body, b"x");
        let (_, trailers, _) = decode_all(b"0\r\nA: 1\r\nB:\t2\r\n\r\n").unwrap();
        assert_eq!(&trailers[..], b"A: 1\r\nB:\t2\r\n");
        // 16 hex digits is the most that fits in a u64, and is accepted.
        let mut d = ChunkedDecoder::new();
        let mut src = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
        assert_eq!(
            d.decode(&mut src),
            Ok(Some(ChunkedEvent::Data(Bytes::from_static(b"ab"))))
        );
        assert_eq!(
            d.state,
            State::Data {
                remaining: u64::MAX - 2
            }
        );
    }

    #[test]
    fn strict_faults() {
        let cases: &[(&[u8], ChunkedError)] = &[
            (b"\r\n", ChunkedError::InvalidSize),
            (b"x\r\n", ChunkedError::InvalidSize),
            (b"-1\r\n", ChunkedError::InvalidSize),
            (b"+1\r\n", ChunkedError::InvalidSize),
            (b" 1\r\n", ChunkedError::InvalidSize),
            (b"0x1\r\n", ChunkedError::InvalidSize),
            (b"1 2\r\n", ChunkedError::InvalidSize),
            (b"10000000000000000\r\n", ChunkedError::SizeOverflow),
            (b"1\nx\r\n", ChunkedError::BareLf),
            (b"1\rx", ChunkedError::BareCr),
            (b"1;a\nb\r\n", ChunkedError::BareLf),
            (b"1;a\x00\r\n", ChunkedError::InvalidExtension),
            (b"1;a\rb", ChunkedError::BareCr),
            (b"1\r\nxy", ChunkedError::MissingDataCrlf),
            (b"1\r\nx\rx", ChunkedError::MissingDataCrlf),
            (b"1\r\nx\n", ChunkedError::MissingDataCrlf),
            (b"0\r\nA: 1\n", ChunkedError::BareLf),
            (b"0\r\n\n", ChunkedError::BareLf),
            (b"0\r\nA: 1\r\n b\r\n\r\n", ChunkedError::TrailerFold),
            (b"0\r\nA: \x001\r\n\r\n", ChunkedError::InvalidTrailer),
            (b"0\r\n\rx", ChunkedError::BareCr),
        ];
        for (input, want) in cases {
            let got = decode_all(input);
            assert_eq!(
                got.err(),
                Some(*want),
                "input {:?}",
                input.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn limits() {
        let limits = ChunkedLimits {
            max_extensions: 4,
            max_trailers: 6,
        };
        let run = |input: &[u8]| {
            let mut d = ChunkedDecoder::with_limits(limits);
            let mut src = BytesMut::from(input);
            loop {
                match d.decode(&mut src) {
                    Ok(Some(ChunkedEvent::End { .. })) => return Ok(()),
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("incomplete"),
                    Err(e) => return Err(e),
                }
            }
        };
        assert_eq!(run(b"1;abc\r\nx\r\n0\r\n\r\n"), Ok(()));
        assert_eq!(
            run(b"1;abc\r\nx\r\n0;\r\n\r\n"),
            Err(ChunkedError::ExtensionsTooLong)
        );
        assert_eq!(run(b"0\r\nA: 12\r\n\r\n"), Ok(()));
        assert_eq!(
            run(b"0\r\nA: 123\r\n\r\n"),
            Err(ChunkedError::TrailersTooLong)
        );
    }

    #[test]
    fn every_split_gives_the_same_result() {
        let input: &[u8] = b"5;x=y\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nT: v\r\n\r\n";
        let (want_body, want_trailers, _) = decode_all(input).unwrap();
        for split in 0..=input.len() {
            let mut decoder = ChunkedDecoder::new();
            let mut src = BytesMut::from(&input[..split]);
            let mut body = Vec::new();
            let mut trailers = None;
            let mut fed_rest = false;
            loop {
                match decoder.decode(&mut src).unwrap() {
                    Some(ChunkedEvent::Data(d)) => body.extend_from_slice(&d),
                    Some(ChunkedEvent::End { trailers: t }) => {
                        trailers = Some(t);
                        break;
                    }
                    None if !fed_rest => {
                        src.extend_from_slice(&input[split..]);
                        fed_rest = true;
                    }
                    None => break,
                }
            }
            assert_eq!(body, want_body, "split at {split}");
            assert_eq!(trailers.as_ref(), Some(&want_trailers), "split at {split}");
        }
    }

    #[test]
    fn encoder_round_trips() {
        let mut dst = BytesMut::new();
        encode_chunk(b"hello", &mut dst);
        encode_chunk(b"", &mut dst);
        encode_chunk(&[b'x'; 300], &mut dst);
        encode_chunk_head(16, &mut dst);
        dst.put_slice(b"0123456789abcdef\r\n");
        encode_last_chunk(b"X: y\r\n", &mut dst);
        assert!(dst.starts_with(b"5\r\nhello\r\n12c\r\n"));
        let (body, trailers, left) = decode_all(&dst).unwrap();
        assert_eq!(body.len(), 5 + 300 + 16);
        assert_eq!(&trailers[..], b"X: y\r\n");
        assert_eq!(left, 0);
    }
}

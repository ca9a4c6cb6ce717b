//! How a request's body is framed on a uwsgi stream.

use crate::{Error, Limits};

/// How the body that follows a request's vars block is framed.
///
/// The rule (`reference/uwsgi-protocol.md` §4.4 and §5.3):
///
/// 1. A non-empty `CONTENT_LENGTH` frames the body, **whatever `HTTP_TRANSFER_ENCODING` says**:
///    nginx de-chunks a chunked client body, sets `CONTENT_LENGTH` to the decoded length and
///    still passes `HTTP_TRANSFER_ENCODING: chunked` through.
/// 2. Otherwise, if `HTTP_TRANSFER_ENCODING`'s last coding is `chunked`, the body is the raw
///    chunked stream that uWSGI's HTTP router sends with `--http-chunked-input`.
/// 3. Otherwise there is no body (uWSGI: no `CONTENT_LENGTH`, no body, even if bytes follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// No body: `CONTENT_LENGTH` missing, empty or `0`, and no chunked framing.
    Empty,
    /// Exactly this many body bytes follow the vars (`CONTENT_LENGTH`), in bytes. Never 0.
    Length(u64),
    /// A chunk-framed body follows; decode it with [`ChunkedDecoder`](crate::chunked::ChunkedDecoder).
    Chunked,
}

impl BodyKind {
    /// Works out the body framing from a request's vars, by the rule above.
    ///
    /// Takes any iterator of `(key, value)` pairs, such as [`Vars::iter`](crate::Vars::iter)
    /// or [`OwnedVars::iter`](crate::OwnedVars::iter). A `CONTENT_LENGTH` repeated with the
    /// same value is accepted; with different values it is an error.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidContentLength`]: a non-empty value that is not `1*DIGIT` within `u64`
    ///   (see [`parse_content_length`]).
    /// - [`Error::ConflictingContentLength`]: two different non-empty values.
    /// - [`Error::BodyTooLarge`]: a length above `limits.max_body`.
    pub fn from_vars<'a>(
        vars: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        limits: &Limits,
    ) -> Result<BodyKind, Error> {
        let mut scan = BodyScan::default();
        for (key, value) in vars {
            scan.observe(key, value)?;
        }
        scan.finish(limits)
    }
}

/// The framing-relevant vars seen so far, so the decoder can work out [`BodyKind`] during
/// its one validation walk instead of a second pass.
#[derive(Debug, Default)]
pub(crate) struct BodyScan<'a> {
    content_length: Option<&'a [u8]>,
    transfer_encoding: Option<&'a [u8]>,
}

impl<'a> BodyScan<'a> {
    /// Looks at one pair.
    pub(crate) fn observe(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), Error> {
        // Length and first byte first: most keys are rejected without a `memcmp`, which
        // matters because this runs for every var of every request.
        match (key.len(), key.first()) {
            (14, Some(b'C')) if key == b"CONTENT_LENGTH" && !value.is_empty() => {
                match self.content_length {
                    Some(seen) if seen != value => return Err(Error::ConflictingContentLength),
                    _ => self.content_length = Some(value),
                }
            }
            // nginx 1.22 repeats the key for a repeated header: the last one holds the
            // final coding.
            (22, Some(b'H')) if key == b"HTTP_TRANSFER_ENCODING" => {
                self.transfer_encoding = Some(value)
            }
            _ => {}
        }
        Ok(())
    }

    /// The framing, by the rule on [`BodyKind`].
    pub(crate) fn finish(self, limits: &Limits) -> Result<BodyKind, Error> {
        if let Some(value) = self.content_length {
            let length = parse_content_length(value)?;
            if length > limits.max_body {
                return Err(Error::BodyTooLarge {
                    length,
                    limit: limits.max_body,
                });
            }
            return Ok(if length == 0 {
                BodyKind::Empty
            } else {
                BodyKind::Length(length)
            });
        }
        Ok(match self.transfer_encoding {
            Some(te) if last_coding_is_chunked(te) => BodyKind::Chunked,
            _ => BodyKind::Empty,
        })
    }
}

/// Parses a `CONTENT_LENGTH` value strictly: `1*DIGIT`, no sign, no spaces, no list, and it
/// must fit in a `u64`. Returns the length in bytes.
///
/// This is stricter than uWSGI, which reads the leading digits and ignores the rest (`"12abc"`
/// is 12, `""` is 0) with no overflow check. nginx only ever sends a plain number or an empty
/// string, so the strict rule costs real clients nothing, and a server that reads a different
/// length than its front end meant is the root of request smuggling (RFC 9112 §6.3).
///
/// # Errors
///
/// [`Error::InvalidContentLength`] for an empty value, any non-digit byte, or overflow.
pub fn parse_content_length(value: &[u8]) -> Result<u64, Error> {
    if value.is_empty() || value.len() > 20 {
        return Err(Error::InvalidContentLength);
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return Err(Error::InvalidContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(Error::InvalidContentLength)?;
    }
    Ok(n)
}

/// Whether the last comma-separated coding of a Transfer-Encoding value is `chunked`
/// (case-insensitive, optional whitespace around it).
fn last_coding_is_chunked(value: &[u8]) -> bool {
    let last = value.rsplit(|&b| b == b',').next().unwrap_or(value);
    last.trim_ascii().eq_ignore_ascii_case(b"chunked")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(pairs: &[(&[u8], &[u8])]) -> Result<BodyKind, Error> {
        BodyKind::from_vars(pairs.iter().copied(), &Limits::default())
    }

    #[test]
    fn content_length_is_strict() {
        assert_eq!(parse_content_length(b"0"), Ok(0));
        assert_eq!(parse_content_length(b"0012"), Ok(12));
        assert_eq!(parse_content_length(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b""[..],
            b"12abc",
            b" 12",
            b"12 ",
            b"+12",
            b"-1",
            b"1,1",
            b"0x10",
            b"18446744073709551616",
            b"000000000000000000001",
        ] {
            assert_eq!(
                parse_content_length(bad),
                Err(Error::InvalidContentLength),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn framing_rules() {
        assert_eq!(kind(&[]), Ok(BodyKind::Empty));
        assert_eq!(kind(&[(b"CONTENT_LENGTH", b"")]), Ok(BodyKind::Empty));
        assert_eq!(kind(&[(b"CONTENT_LENGTH", b"0")]), Ok(BodyKind::Empty));
        assert_eq!(kind(&[(b"CONTENT_LENGTH", b"5")]), Ok(BodyKind::Length(5)));
        // nginx: de-chunked body with CONTENT_LENGTH, TE still passed through.
        assert_eq!(
            kind(&[
                (b"CONTENT_LENGTH", b"11"),
                (b"HTTP_TRANSFER_ENCODING", b"chunked")
            ]),
            Ok(BodyKind::Length(11))
        );
        // uWSGI router raw mode.
        assert_eq!(
            kind(&[(b"HTTP_TRANSFER_ENCODING", b"chunked")]),
            Ok(BodyKind::Chunked)
        );
        assert_eq!(
            kind(&[
                (b"CONTENT_LENGTH", b""),
                (b"HTTP_TRANSFER_ENCODING", b"gzip, Chunked ")
            ]),
            Ok(BodyKind::Chunked)
        );
        assert_eq!(
            kind(&[(b"HTTP_TRANSFER_ENCODING", b"chunked, gzip")]),
            Ok(BodyKind::Empty)
        );
        assert_eq!(
            kind(&[(b"CONTENT_LENGTH", b"5"), (b"CONTENT_LENGTH", b"5")]),
            Ok(BodyKind::Length(5))
        );
        assert_eq!(
            kind(&[(b"CONTENT_LENGTH", b"5"), (b"CONTENT_LENGTH", b"6")]),
            Err(Error::ConflictingContentLength)
        );
        assert_eq!(
            kind(&[(b"CONTENT_LENGTH", b"12abc")]),
            Err(Error::InvalidContentLength)
        );
        let limits = Limits {
            max_body: 10,
            ..Limits::default()
        };
        assert_eq!(
            BodyKind::from_vars([(&b"CONTENT_LENGTH"[..], &b"11"[..])], &limits),
            Err(Error::BodyTooLarge {
                length: 11,
                limit: 10
            })
        );
    }
}

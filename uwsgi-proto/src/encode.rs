//! Encoding packets: requests from pairs, ping, pong, generic responses.

use bytes::{BufMut, BytesMut};

use crate::{EncodeError, HEADER_LEN, Header, Modifier1};

/// Length of the vars block that `pairs` encode to, in bytes (`4 + key + value` per pair).
///
/// Returns the exact size even past 65535; compare it with [`MAX_DATASIZE`](crate::MAX_DATASIZE) yourself, or
/// let [`encode_request`] refuse.
pub fn vars_len<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> usize {
    pairs
        .iter()
        .map(|(k, v)| 4 + k.as_ref().len() + v.as_ref().len())
        .sum()
}

/// Appends a request packet (header + vars block) to `dst` with a single `reserve`.
///
/// Pairs are written in the order given; repeated keys are written as given. The body, if
/// any, is the caller's to write after the packet (with a matching `CONTENT_LENGTH` var).
///
/// ```
/// use bytes::BytesMut;
/// use uwsgi_proto::{Limits, Modifier1, Vars, encode_request};
///
/// let mut dst = BytesMut::new();
/// encode_request(Modifier1::WSGI, 0, &[("REQUEST_METHOD", "GET"), ("PATH_INFO", "/")], &mut dst)?;
/// assert_eq!(&dst[..4], &[0, 35, 0, 0]); // datasize 35, little-endian
/// let vars = Vars::parse(&dst[4..], &Limits::default()).unwrap();
/// assert_eq!(vars.get(b"REQUEST_METHOD"), Some(&b"GET"[..]));
/// # Ok::<(), uwsgi_proto::EncodeError>(())
/// ```
///
/// # Errors
///
/// - [`EncodeError::PayloadTooLarge`] if the vars block would exceed 65535 bytes; nothing is
///   written (never truncated).
/// - [`EncodeError::EmptyKey`] if a key is empty; nothing is written.
pub fn encode_request<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    modifier1: Modifier1,
    modifier2: u8,
    pairs: &[(K, V)],
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    // One pass: the size, and no empty key.
    let mut size = 0usize;
    for (k, v) in pairs {
        let k = k.as_ref();
        if k.is_empty() {
            return Err(EncodeError::EmptyKey);
        }
        size += 4 + k.len() + v.as_ref().len();
    }
    let datasize = checked_datasize(size)?;
    // One reserve, then plain slice copies (cheaper than a `BufMut` call per field).
    let start = dst.len();
    dst.resize(start + HEADER_LEN + size, 0);
    let out = &mut dst[start..];
    out[..HEADER_LEN].copy_from_slice(&Header::new(modifier1, datasize, modifier2).encode());
    let mut at = HEADER_LEN;
    for (k, v) in pairs {
        // Each length is <= size <= 65535, checked above.
        at = put_field(out, at, k.as_ref());
        at = put_field(out, at, v.as_ref());
    }
    debug_assert_eq!(at, out.len());
    Ok(())
}

/// Writes `u16 LE len | bytes` at `at`; returns the offset after it.
fn put_field(out: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    out[at..at + 2].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
    let end = at + 2 + bytes.len();
    out[at + 2..end].copy_from_slice(bytes);
    end
}

/// Appends a ping request: modifier1 100, datasize 0, modifier2 0 (what `uwsgi --ping` sends).
pub fn encode_ping(dst: &mut BytesMut) {
    Header::ping().write(dst);
}

/// Appends a pong: modifier1 100, modifier2 1, followed by `warning` (empty for a healthy
/// server; `uwsgi --ping` exits 0 for an empty pong and 2 when a warning is present).
///
/// # Errors
///
/// [`EncodeError::PayloadTooLarge`] if `warning` is longer than 65535 bytes.
pub fn encode_pong(warning: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
    let datasize = checked_datasize(warning.len())?;
    dst.reserve(HEADER_LEN + warning.len());
    Header::pong(datasize).write(dst);
    dst.put_slice(warning);
    Ok(())
}

/// Appends a generic response header (modifier1 255, datasize 0) whose modifier2 carries a
/// status: uWSGI answers signal (110) and spooler (17) packets with 1 for success, 0 for failure.
pub fn encode_generic_response(modifier2: u8, dst: &mut BytesMut) {
    Header::new(Modifier1::RESPONSE, 0, modifier2).write(dst);
}

pub(crate) fn checked_datasize(size: usize) -> Result<u16, EncodeError> {
    // MAX_DATASIZE is u16::MAX: whatever fits in the 16-bit field is allowed.
    u16::try_from(size).map_err(|_| EncodeError::PayloadTooLarge { size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_oversized_and_empty_keys() {
        let mut dst = BytesMut::new();
        let big = vec![b'v'; 65535 - 4 - 1];
        encode_request(Modifier1::WSGI, 0, &[(&b"K"[..], &big[..])], &mut dst).unwrap();
        assert_eq!(dst.len(), 4 + 65535);
        assert_eq!(&dst[1..3], &[0xff, 0xff]);

        let mut dst = BytesMut::new();
        let big = vec![b'v'; 65535 - 4];
        assert_eq!(
            encode_request(Modifier1::WSGI, 0, &[(&b"K"[..], &big[..])], &mut dst),
            Err(EncodeError::PayloadTooLarge { size: 65536 })
        );
        assert!(dst.is_empty());
        assert_eq!(
            encode_request(Modifier1::WSGI, 0, &[("", "x")], &mut dst),
            Err(EncodeError::EmptyKey)
        );
        assert!(dst.is_empty());
    }

    #[test]
    fn ping_pong_response() {
        let mut dst = BytesMut::new();
        encode_ping(&mut dst);
        encode_pong(b"", &mut dst).unwrap();
        encode_pong(b"busy", &mut dst).unwrap();
        encode_generic_response(1, &mut dst);
        assert_eq!(
            &dst[..],
            &[
                100, 0, 0, 0, 100, 0, 0, 1, 100, 4, 0, 1, b'b', b'u', b's', b'y', 255, 0, 0, 1
            ]
        );
    }
}

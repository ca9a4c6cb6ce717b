//! uwsgi arrays: the payload of RPC (modifier1 173) and cache-set (111) packets.
//!
//! An array is a run of `u16 LE length | bytes` items with no keys and no terminator
//! (`uwsgi_parse_array` in uWSGI's `core/protocol.c`).

use bytes::{BufMut, BytesMut};

use crate::encode::checked_datasize;
use crate::{EncodeError, Error, HEADER_LEN, Header, Modifier1};

/// A validated uwsgi array borrowed from a packet payload.
///
/// Unlike uWSGI, which silently skips zero-length items, zero-length items are kept, so
/// that encoding and decoding are exact inverses; skip them yourself where uWSGI's view is
/// wanted.
///
/// ```
/// use uwsgi_proto::Array;
///
/// let array = Array::parse(b"\x05\x00hello\x03\x00abc")?;
/// let items: Vec<&[u8]> = array.iter().collect();
/// assert_eq!(items, [&b"hello"[..], b"abc"]);
/// # Ok::<(), uwsgi_proto::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Array<'buf> {
    payload: &'buf [u8],
    len: usize,
}

impl<'buf> Array<'buf> {
    /// Validates `payload` as an array. O(items), no allocation.
    ///
    /// # Errors
    ///
    /// - [`Error::TrailingBytes`] if one byte is left over (too short for a length).
    /// - [`Error::ArrayItemOverflow`] if an item runs past the end, with its offset.
    pub fn parse(payload: &'buf [u8]) -> Result<Array<'buf>, Error> {
        let mut rest = payload;
        let mut len = 0;
        while !rest.is_empty() {
            let offset = payload.len() - rest.len();
            let Some((n, tail)) = rest.split_first_chunk::<2>() else {
                return Err(Error::TrailingBytes { count: 1 });
            };
            let Some((_, tail)) = tail.split_at_checked(usize::from(u16::from_le_bytes(*n))) else {
                return Err(Error::ArrayItemOverflow { offset });
            };
            rest = tail;
            len += 1;
        }
        Ok(Array { payload, len })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The items in order.
    pub fn iter(&self) -> ArrayIter<'buf> {
        ArrayIter { rest: self.payload }
    }
}

impl<'buf> IntoIterator for &Array<'buf> {
    type Item = &'buf [u8];
    type IntoIter = ArrayIter<'buf>;

    fn into_iter(self) -> ArrayIter<'buf> {
        self.iter()
    }
}

/// Iterator over the items of a validated [`Array`].
#[derive(Debug, Clone)]
pub struct ArrayIter<'buf> {
    rest: &'buf [u8],
}

impl<'buf> Iterator for ArrayIter<'buf> {
    type Item = &'buf [u8];

    fn next(&mut self) -> Option<&'buf [u8]> {
        let (n, tail) = self.rest.split_first_chunk::<2>()?;
        let (item, tail) = tail.split_at_checked(usize::from(u16::from_le_bytes(*n)))?;
        self.rest = tail;
        Some(item)
    }
}

/// Length of the array payload that `items` encode to, in bytes (`2 + len` per item).
pub fn array_len<T: AsRef<[u8]>>(items: &[T]) -> usize {
    items.iter().map(|i| 2 + i.as_ref().len()).sum()
}

/// Appends the array payload for `items` (no packet header) to `dst`.
///
/// # Errors
///
/// [`EncodeError::PayloadTooLarge`] if the payload would exceed 65535 bytes; nothing is written.
pub fn encode_array<T: AsRef<[u8]>>(items: &[T], dst: &mut BytesMut) -> Result<u16, EncodeError> {
    let size = array_len(items);
    let datasize = checked_datasize(size)?;
    dst.reserve(size);
    put_items(items, dst);
    Ok(datasize)
}

/// Appends an RPC request packet (modifier1 173): the header, then an array of the function
/// name followed by its arguments, as `uwsgi.rpc()` sends it. `modifier2` picks the reply
/// style (0 framed, 1 raw; reference §2.1).
///
/// # Errors
///
/// [`EncodeError::PayloadTooLarge`] if the array would exceed 65535 bytes; nothing is written.
pub fn encode_rpc<T: AsRef<[u8]>>(
    function: &[u8],
    args: &[T],
    modifier2: u8,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let size = 2 + function.len() + array_len(args);
    let datasize = checked_datasize(size)?;
    dst.reserve(HEADER_LEN + size);
    Header::new(Modifier1::RPC, datasize, modifier2).write(dst);
    put_items(&[function], dst);
    put_items(args, dst);
    Ok(())
}

fn put_items<T: AsRef<[u8]>>(items: &[T], dst: &mut BytesMut) {
    for item in items {
        let item = item.as_ref();
        // Callers checked the total against 65535, so each length fits.
        dst.put_u16_le(item.len() as u16);
        dst.put_slice(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_faults() {
        let mut dst = BytesMut::new();
        let items: [&[u8]; 3] = [b"fn", b"", b"arg"];
        let n = encode_array(&items, &mut dst).unwrap();
        assert_eq!(usize::from(n), dst.len());
        let array = Array::parse(&dst).unwrap();
        assert_eq!(array.iter().collect::<Vec<_>>(), items);
        assert_eq!(
            Array::parse(b"\x01"),
            Err(Error::TrailingBytes { count: 1 })
        );
        assert_eq!(
            Array::parse(b"\x01\x00a\x05\x00abc"),
            Err(Error::ArrayItemOverflow { offset: 3 })
        );
        assert!(Array::parse(b"").unwrap().is_empty());

        let mut dst = BytesMut::new();
        encode_rpc(b"hello", &[b"world"], 0, &mut dst).unwrap();
        assert_eq!(&dst[..4], &[173, 14, 0, 0]);
        let items: Vec<_> = Array::parse(&dst[4..]).unwrap().iter().collect();
        assert_eq!(items, [&b"hello"[..], b"world"]);
    }
}

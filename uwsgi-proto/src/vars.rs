//! The vars block: `u16 LE key_len | key | u16 LE val_len | val`, repeated.

use std::fmt;

use bytes::Bytes;

use crate::{Error, Limits};

/// A validated vars block borrowed from the read buffer.
///
/// Parsing walks the block once, checks every length exactly as uWSGI's
/// `uwsgi_parse_vars` does (`reference/uwsgi-protocol.md` §3.3 and §6.2) and allocates
/// nothing. Pairs keep their wire order and repeated keys are all kept; keys and values are
/// opaque bytes (nginx forwards header bytes as they came, so they need not be UTF-8).
///
/// ```
/// use uwsgi_proto::{Limits, Vars};
///
/// let block = b"\x0e\x00REQUEST_METHOD\x03\x00GET\x09\x00PATH_INFO\x01\x00/";
/// let vars = Vars::parse(block, &Limits::default())?;
/// assert_eq!(vars.len(), 2);
/// assert_eq!(vars.get(b"PATH_INFO"), Some(&b"/"[..]));
/// let keys: Vec<&[u8]> = vars.iter().map(|(k, _)| k).collect();
/// assert_eq!(keys, [&b"REQUEST_METHOD"[..], b"PATH_INFO"]);
/// # Ok::<(), uwsgi_proto::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Vars<'buf> {
    block: &'buf [u8],
    len: usize,
}

impl<'buf> Vars<'buf> {
    /// Validates `block` (exactly the `datasize` bytes after the header) as a vars block.
    ///
    /// O(number of pairs), no allocation, no copy.
    ///
    /// # Errors
    ///
    /// - [`Error::DatasizeTooLarge`] if `block` is longer than `limits.max_datasize`.
    /// - [`Error::EmptyKey`], [`Error::KeyOverflow`], [`Error::ValueOverflow`],
    ///   [`Error::TrailingBytes`] for a malformed pair, with the pair's offset.
    /// - [`Error::TooManyVars`] past `limits.max_vars` pairs.
    ///
    /// An empty block is valid here (zero pairs); the request decoder refuses empty
    /// *requests* separately ([`Error::EmptyRequest`]).
    pub fn parse(block: &'buf [u8], limits: &Limits) -> Result<Vars<'buf>, Error> {
        let len = validate(block, limits, |_, _| Ok(()))?;
        Ok(Vars { block, len })
    }

    /// Number of pairs, repeated keys counted each time.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block holds no pairs.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw block, exactly as it came off the wire.
    pub fn as_bytes(&self) -> &'buf [u8] {
        self.block
    }

    /// The pairs in wire order, as `(key, value)` slices of the block.
    pub fn iter(&self) -> VarsIter<'buf> {
        VarsIter {
            rest: self.block,
            remaining: self.len,
        }
    }

    /// The value of the **last** pair whose key is `key`, as uWSGI's environ sees it.
    pub fn get(&self, key: &[u8]) -> Option<&'buf [u8]> {
        self.get_all(key).last()
    }

    /// Every value of `key`, in wire order (nginx 1.22 repeats a key for a repeated header).
    pub fn get_all<'k>(&self, key: &'k [u8]) -> impl Iterator<Item = &'buf [u8]> + use<'buf, 'k> {
        self.iter().filter(move |(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl fmt::Debug for Vars<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_pairs(f, self.iter())
    }
}

impl<'buf> IntoIterator for &Vars<'buf> {
    type Item = (&'buf [u8], &'buf [u8]);
    type IntoIter = VarsIter<'buf>;

    fn into_iter(self) -> VarsIter<'buf> {
        self.iter()
    }
}

/// Iterator over the `(key, value)` pairs of a validated block, in wire order.
#[derive(Clone, Debug)]
pub struct VarsIter<'buf> {
    rest: &'buf [u8],
    remaining: usize,
}

impl<'buf> Iterator for VarsIter<'buf> {
    type Item = (&'buf [u8], &'buf [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // The block was validated, so these reads cannot fail; `?` keeps it panic-free.
        let (key, rest) = split_field(self.rest)?;
        let (value, rest) = split_field(rest)?;
        self.rest = rest;
        self.remaining -= 1;
        Some((key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for VarsIter<'_> {}

/// A validated vars block that owns its bytes: one frozen [`Bytes`] buffer, no other
/// allocation.
///
/// Keys and values come out as `&[u8]` views or as [`Bytes`] slices of the same buffer;
/// nothing is copied. Iteration walks the (already validated) block, exactly like
/// [`Vars`]. This is the form the request decoder hands out, because it can outlive the read
/// buffer and be sent to another task or thread.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnedVars {
    block: Bytes,
    len: usize,
}

impl OwnedVars {
    /// Validates `block` like [`Vars::parse`] and keeps it. No allocation, no copy.
    ///
    /// # Errors
    ///
    /// The same as [`Vars::parse`].
    pub fn parse(block: Bytes, limits: &Limits) -> Result<OwnedVars, Error> {
        let len = validate(&block, limits, |_, _| Ok(()))?;
        Ok(OwnedVars { block, len })
    }

    /// Wraps a block that [`validate`] accepted with `len` pairs.
    pub(crate) fn from_validated(block: Bytes, len: usize) -> OwnedVars {
        OwnedVars { block, len }
    }

    /// An empty block (no pairs).
    pub fn empty() -> OwnedVars {
        OwnedVars {
            block: Bytes::new(),
            len: 0,
        }
    }

    /// Number of pairs, repeated keys counted each time.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block holds no pairs.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw block, exactly as it came off the wire. O(1), no copy.
    pub fn as_bytes(&self) -> &Bytes {
        &self.block
    }

    /// A borrowed view of the same block (no re-validation, no copy).
    pub fn as_vars(&self) -> Vars<'_> {
        Vars {
            block: &self.block,
            len: self.len,
        }
    }

    /// The pairs in wire order, as `(key, value)` slices.
    pub fn iter(&self) -> VarsIter<'_> {
        self.as_vars().iter()
    }

    /// The pairs in wire order, as [`Bytes`] slices of the block (reference-count bumps only).
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (Bytes, Bytes)> + '_ {
        self.iter()
            .map(|(k, v)| (self.block.slice_ref(k), self.block.slice_ref(v)))
    }

    /// The key of pair `index` as a [`Bytes`] slice, or `None` past the end. O(index).
    pub fn key(&self, index: usize) -> Option<Bytes> {
        self.iter().nth(index).map(|(k, _)| self.block.slice_ref(k))
    }

    /// The value of pair `index` as a [`Bytes`] slice, or `None` past the end. O(index).
    pub fn value(&self, index: usize) -> Option<Bytes> {
        self.iter().nth(index).map(|(_, v)| self.block.slice_ref(v))
    }

    /// The value of the **last** pair whose key is `key` (uWSGI semantics).
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.as_vars().get(key)
    }

    /// Every value of `key`, in wire order.
    pub fn get_all<'s, 'k>(
        &'s self,
        key: &'k [u8],
    ) -> impl Iterator<Item = &'s [u8]> + use<'s, 'k> {
        self.as_vars().get_all(key)
    }
}

impl fmt::Debug for OwnedVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_pairs(f, self.iter())
    }
}

/// Splits one `u16 LE length | bytes` field off the front of `buf`.
fn split_field(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = buf.split_first_chunk::<2>()?;
    rest.split_at_checked(usize::from(u16::from_le_bytes(*len)))
}

/// The one strict walk over a vars block, shared by [`Vars`] and [`OwnedVars`].
///
/// Calls `pair(key, value)` for each pair and returns the pair count. Follows
/// `uwsgi_parse_vars`: each pair needs more than 2 bytes left, a non-zero key length, a key
/// that ends with room for the value length, and a value that ends inside the block.
pub(crate) fn validate<'b>(
    block: &'b [u8],
    limits: &Limits,
    mut pair: impl FnMut(&'b [u8], &'b [u8]) -> Result<(), Error>,
) -> Result<usize, Error> {
    if block.len() > usize::from(limits.max_datasize) {
        return Err(Error::DatasizeTooLarge {
            datasize: block.len(),
            limit: limits.max_datasize,
        });
    }
    let mut rest = block;
    let mut count = 0usize;
    while !rest.is_empty() {
        let offset = block.len() - rest.len();
        let Some((key_len, after)) = rest.split_first_chunk::<2>().filter(|(_, a)| !a.is_empty())
        else {
            // 1 or 2 bytes cannot hold a key length and a key.
            return Err(Error::TrailingBytes {
                count: rest.len() as u8,
            });
        };
        let key_len = usize::from(u16::from_le_bytes(*key_len));
        if key_len == 0 {
            return Err(Error::EmptyKey { offset });
        }
        // The key must end with at least 2 bytes to spare for the value length.
        let Some((key, after)) = after
            .split_at_checked(key_len)
            .filter(|(_, a)| a.len() >= 2)
        else {
            return Err(Error::KeyOverflow { offset });
        };
        let Some((value_len, after)) = after.split_first_chunk::<2>() else {
            return Err(Error::KeyOverflow { offset });
        };
        let Some((value, after)) =
            after.split_at_checked(usize::from(u16::from_le_bytes(*value_len)))
        else {
            return Err(Error::ValueOverflow { offset });
        };
        count += 1;
        if count > limits.max_vars {
            return Err(Error::TooManyVars {
                limit: limits.max_vars,
            });
        }
        pair(key, value)?;
        rest = after;
    }
    Ok(count)
}

fn debug_pairs<'a>(
    f: &mut fmt::Formatter<'_>,
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> fmt::Result {
    f.debug_map()
        .entries(pairs.map(|(k, v)| (k.escape_ascii().to_string(), v.escape_ascii().to_string())))
        .finish()
}

//! Request paths: splitting the target, percent-decoding, and normalising as nginx does.
//!
//! Two decoders share the same rules for escapes and differ in how strict they are:
//!
//! - [`document_uri`] produces what nginx calls `$uri` / `$document_uri`: every `%XX` is
//!   decoded (an encoded `/` or `.` then counts as a separator or dot, as in nginx's
//!   `ngx_http_parse_complex_uri`), runs of `/` are merged (`merge_slashes on`), `.` segments
//!   are removed and `..` segments remove the previous one. A `..` that would climb above
//!   `/` is an error (nginx answers 400). Used for `PATH_INFO` and location matching.
//! - [`static_path`] is for mapping a URL onto the filesystem and is stricter: it refuses
//!   any `..` segment (even one that would stay inside the root), an encoded slash (`%2F`),
//!   and a NUL byte, instead of normalising them away.
//!
//! Both work on bytes: a decoded path may hold any byte except NUL, including non-UTF-8.
//! Both borrow the raw path when it is already decoded and normal (no `%`, no `//`, no `.`
//! or `..` segment), as nearly every request path is, and allocate only otherwise.

use std::borrow::Cow;

use thiserror::Error;

/// Why a request path was refused. Every variant maps to `400 Bad Request`, except where
/// the variant's doc says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/` (an asterisk-form or authority-form target, or an
    /// empty path).
    #[error("the request path does not start with '/'")]
    NotAbsolute,
    /// A `%` is not followed by two hex digits (nginx: 400).
    #[error("bad percent-escape at byte {offset} of the request path")]
    BadEscape {
        /// Offset of the `%` in the raw path, in bytes.
        offset: usize,
    },
    /// The path holds a NUL byte, raw or as `%00` (nginx: 400).
    #[error("NUL byte in the request path")]
    Nul,
    /// A `..` segment climbs above `/` (nginx: 400).
    #[error("the request path climbs above '/' with '..'")]
    AboveRoot,
    /// [`static_path`] only: the path has a `..` segment (raw or percent-encoded).
    #[error("'..' segment in a static file path")]
    DotDot,
    /// [`static_path`] only: the path has an encoded slash (`%2F` or `%2f`).
    #[error("encoded slash (%2F) in a static file path")]
    EncodedSlash,
}

/// Splits a raw request-target into its path and query.
///
/// The query is everything after the first `?` (without it), `None` when there is no `?`.
/// A fragment (`#...`, which a conforming client never sends) is cut from the path. For an
/// absolute-form target (`http://host/p?q`) the scheme and authority are dropped first, as
/// nginx does for `$request_uri`; an absolute-form target with no path gives `/`.
///
/// O(n), no copy.
///
/// ```
/// use proxy_core::path::split_target;
/// assert_eq!(split_target(b"/a/b?x=1"), (&b"/a/b"[..], Some(&b"x=1"[..])));
/// assert_eq!(split_target(b"http://h:8080"), (&b"/"[..], None));
/// ```
pub fn split_target(target: &[u8]) -> (&[u8], Option<&[u8]>) {
    let target = origin_form(target);
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], Some(&target[q + 1..])),
        None => (target, None),
    };
    let path = match path.iter().position(|&b| b == b'#') {
        Some(h) => &path[..h],
        None => path,
    };
    (path, query)
}

/// The origin-form part of a request-target: for `http://host[:port]/p?q` the `/p?q`
/// (`/` when the target has no path), any other target unchanged. This is nginx's
/// `$request_uri` for absolute-form targets.
pub fn origin_form(target: &[u8]) -> &[u8] {
    let lower_starts =
        |p: &[u8]| target.len() >= p.len() && target[..p.len()].eq_ignore_ascii_case(p);
    let rest = if lower_starts(b"http://") {
        &target[7..]
    } else if lower_starts(b"https://") {
        &target[8..]
    } else {
        return target;
    };
    match rest.iter().position(|&b| b == b'/' || b == b'?') {
        Some(i) if rest[i] == b'/' => &rest[i..],
        // `http://h?q` has an empty path: nginx answers it as `/`. Keep the query.
        Some(_) | None => b"/",
    }
}

/// Decodes `%XX` escapes. NUL (raw or encoded) and malformed escapes are errors.
/// Returns the decoded bytes and whether an encoded slash was seen.
fn percent_decode(raw: &[u8]) -> Result<(Vec<u8>, bool), PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut encoded_slash = false;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        match b {
            0 => return Err(PathError::Nul),
            b'%' => {
                let (Some(h), Some(l)) = (
                    raw.get(i + 1).and_then(|&c| hex(c)),
                    raw.get(i + 2).and_then(|&c| hex(c)),
                ) else {
                    return Err(PathError::BadEscape { offset: i });
                };
                let v = h << 4 | l;
                if v == 0 {
                    return Err(PathError::Nul);
                }
                encoded_slash |= v == b'/';
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok((out, encoded_slash))
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// nginx's `$document_uri` for a raw path (the part of the target before `?`).
///
/// Decodes every `%XX` escape (including `%2F`, which then separates segments, and `%2E`),
/// merges repeated slashes, drops `.` segments and resolves `..` segments. A path that
/// ends in `/`, `/.` or `/..` keeps a trailing slash (`/a/b/..` gives `/a/`), as nginx does.
/// `+` is not a space in a path and is left alone.
///
/// O(n). Borrows `raw_path` when it has nothing to decode or normalise; otherwise one
/// allocation for the result.
///
/// ```
/// use proxy_core::path::document_uri;
/// assert_eq!(&*document_uri(b"/a%20b//c/./d/../e").unwrap(), b"/a b/c/e");
/// assert!(matches!(document_uri(b"/static/app.css"), Ok(std::borrow::Cow::Borrowed(_))));
/// ```
///
/// # Errors
///
/// [`PathError::NotAbsolute`], [`PathError::BadEscape`], [`PathError::Nul`] and
/// [`PathError::AboveRoot`]; nginx answers each of them with 400.
pub fn document_uri(raw_path: &[u8]) -> Result<Cow<'_, [u8]>, PathError> {
    if raw_path.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if already_normal(raw_path) {
        return Ok(Cow::Borrowed(raw_path));
    }
    let (decoded, _) = percent_decode(raw_path)?;
    normalize(&decoded, false).map(Cow::Owned)
}

/// The decoded path to map onto a static root, with every traversal trick refused.
///
/// Like [`document_uri`] (escapes decoded, slashes merged, `.` segments dropped, trailing
/// slash kept) but refuses outright, instead of resolving: any `..` segment, raw or encoded
/// (`%2e%2e`, `.%2E`), and any encoded slash (`%2F`). The result never contains NUL,
/// never contains a `..` segment and always starts with `/`.
///
/// ```
/// use proxy_core::path::{static_path, PathError};
/// assert_eq!(&*static_path(b"/css/site%20v2.css").unwrap(), b"/css/site v2.css");
/// assert_eq!(static_path(b"/%2e%2e/etc/passwd"), Err(PathError::DotDot));
/// assert_eq!(static_path(b"/a%2Fb"), Err(PathError::EncodedSlash));
/// ```
///
/// # Errors
///
/// [`PathError::NotAbsolute`], [`PathError::BadEscape`], [`PathError::Nul`],
/// [`PathError::DotDot`] and [`PathError::EncodedSlash`]; answer each with 400 (nginx
/// answers 400 for the first three and for `..` above the root).
pub fn static_path(raw_path: &[u8]) -> Result<Cow<'_, [u8]>, PathError> {
    if raw_path.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if already_normal(raw_path) {
        return Ok(Cow::Borrowed(raw_path));
    }
    let (decoded, encoded_slash) = percent_decode(raw_path)?;
    if encoded_slash {
        return Err(PathError::EncodedSlash);
    }
    normalize(&decoded, true).map(Cow::Owned)
}

/// Whether an absolute raw path is its own decoded, normalised form: no `%` escape, no NUL,
/// no empty segment but a trailing one (`/a/` is normal, `/a//b` is not) and no `.` or `..`
/// segment. One pass; for such a path [`normalize`] would return the same bytes.
fn already_normal(raw_path: &[u8]) -> bool {
    // Segment contents seen since the last '/': 0 = empty, 1 = ".", 2 = "..", 3 = other.
    let mut segment = 0u8;
    for &b in &raw_path[1..] {
        match b {
            b'%' | 0 => return false,
            b'/' if segment < 3 => return false,
            b'/' => segment = 0,
            b'.' if segment < 2 => segment += 1,
            _ => segment = 3,
        }
    }
    // A final "." or ".." segment needs normalising; a final empty one is a trailing slash.
    !matches!(segment, 1 | 2)
}

/// Merges slashes and handles dot segments of a decoded absolute path.
fn normalize(decoded: &[u8], refuse_dot_dot: bool) -> Result<Vec<u8>, PathError> {
    let mut out: Vec<u8> = Vec::with_capacity(decoded.len());
    // Start offsets in `out` of each kept segment's leading '/'.
    let mut starts: Vec<usize> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded.split(|&b| b == b'/').skip(1) {
        trailing_slash = false;
        match segment {
            b"" | b"." => trailing_slash = true,
            b".." => {
                if refuse_dot_dot {
                    return Err(PathError::DotDot);
                }
                let start = starts.pop().ok_or(PathError::AboveRoot)?;
                out.truncate(start);
                trailing_slash = true;
            }
            _ => {
                starts.push(out.len());
                out.push(b'/');
                out.extend_from_slice(segment);
            }
        }
    }
    if trailing_slash || out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The borrowing shortcut gives exactly what decoding and normalising would, for every
    /// path of up to 8 bytes over the bytes that matter (and `%2e`, `%2f` escapes).
    #[test]
    fn shortcut_agrees_with_the_full_decode() {
        const ALPHABET: [&[u8]; 6] = [b"/", b".", b"a", b"%2e", b"%2f", b"\0"];
        let mut paths: Vec<Vec<u8>> = vec![b"/".to_vec()];
        let mut frontier = paths.clone();
        for _ in 0..7 {
            let mut next = Vec::new();
            for p in &frontier {
                for piece in ALPHABET {
                    let mut q = p.clone();
                    q.extend_from_slice(piece);
                    next.push(q);
                }
            }
            paths.extend(next.iter().cloned());
            frontier = next;
        }
        for raw in &paths {
            if !already_normal(raw) {
                continue;
            }
            let (decoded, slash) = percent_decode(raw).expect("no escape, no NUL");
            assert!(!slash);
            for refuse in [false, true] {
                assert_eq!(
                    normalize(&decoded, refuse).as_deref(),
                    Ok(&raw[..]),
                    "{:?}",
                    raw.escape_ascii().to_string()
                );
            }
        }
        assert!(already_normal(b"/"));
        assert!(already_normal(b"/static/10k.bin"));
        assert!(already_normal(b"/a/.b/c../..."));
        for odd in [&b"//"[..], b"/a/./b", b"/a/..", b"/a/.", b"/%41", b"/a//"] {
            assert!(!already_normal(odd), "{:?}", odd.escape_ascii().to_string());
        }
    }
}

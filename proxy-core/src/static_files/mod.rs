//! Static files: mapping a URL onto a root or alias directory safely, and deciding the
//! response (status, headers, byte range) for a file, as nginx's static, index,
//! not_modified, range, gzip_static and headers (`expires`) modules do.
//!
//! The work is split in two so that the server stays thin and the rules stay testable:
//!
//! 1. [`StaticLocation::resolve`] turns a raw request path into a file on disk. It does
//!    blocking filesystem calls (opening the file beneath the root, `fstat`; run it on a
//!    blocking thread or where nginx would, in the event loop) but never reads a file;
//!    [`StaticLocation::resolve_open`] hands back the opened file. It refuses `..`, `%2e%2e`, `%2F`, NUL and symlinks
//!    that lead out of the root; finds the index file of a directory; and picks a
//!    precompressed `.br`/`.gz` sibling when the client's `Accept-Encoding` allows it.
//! 2. [`StaticLocation::plan`] is pure: from the file's metadata, the request's method and
//!    conditional/range fields and the wall-clock time, it builds a [`ResponsePlan`]: the
//!    status, the header fields, and which bytes of which file to stream.
//!
//! Not done here: opening and streaming the file (the server does it, never reading the
//! whole file into memory), `Date`/`Server` fields, error-page bodies, multipart ranges
//! (several ranges are answered with the whole file, which RFC 9110 §14.2 allows), and
//! `autoindex` (a directory without an index file is 403, as nginx's default).

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::path::{PathError, static_path};

mod conditional;
pub use conditional::etag_list_matches;
use conditional::{
    RangeDecision, http_date, if_range_holds, max_http_time, parse_date, parse_range, unix_secs,
};
mod encoding;
pub use encoding::{choose_coding, coding_quality};

/// A content coding of a precompressed sibling file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCoding {
    /// `gzip`: the sibling `<file>.gz` (nginx `gzip_static`).
    Gzip,
    /// `br`: the sibling `<file>.br` (the ngx_brotli module's `brotli_static`).
    Brotli,
}

impl ContentCoding {
    /// The coding's token as sent in `Content-Encoding` (`"gzip"`, `"br"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Brotli => "br",
        }
    }

    /// The file-name suffix of the sibling (`".gz"`, `".br"`).
    pub fn suffix(self) -> &'static str {
        match self {
            ContentCoding::Gzip => ".gz",
            ContentCoding::Brotli => ".br",
        }
    }
}

/// The `Expires` / `Cache-Control: max-age` policy of a location (nginx's `expires`).
///
/// Applied to 200, 206 and 304 responses, as nginx applies it to successful and
/// redirect statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expires {
    /// No `Expires` and no `max-age` (`expires off`, the default).
    #[default]
    Off,
    /// `Expires: <now + d>` and `Cache-Control: max-age=<d in seconds>` (`expires 1h`).
    After(Duration),
    /// `Expires: Thu, 01 Jan 1970 00:00:01 GMT` and `Cache-Control: no-cache`
    /// (`expires epoch`).
    Epoch,
    /// `Expires: Thu, 31 Dec 2037 23:55:55 GMT` and `Cache-Control: max-age=315360000`
    /// (`expires max`).
    Max,
}

/// How `If-Modified-Since` is compared with the file's modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfModifiedSince {
    /// 304 only when the date equals `Last-Modified` to the second (nginx's default,
    /// `if_modified_since exact`).
    #[default]
    Exact,
    /// 304 when the file was not modified after the date (RFC 9110 §13.1.3;
    /// nginx's `if_modified_since before`).
    Before,
    /// Ignore `If-Modified-Since` (`if_modified_since off`).
    Off,
}

/// A static location: where its files live and how they are served.
///
/// Built with [`StaticLocation::root`] or [`StaticLocation::alias`], then the setters.
#[derive(Debug, Clone)]
pub struct StaticLocation {
    prefix: Vec<u8>,
    dir: PathBuf,
    /// `dir` opened and canonicalised on first use and kept: the root is configuration, so
    /// this is done once per location instead of once per request (a moved root is picked
    /// up on reload, which builds new locations).
    root: std::sync::OnceLock<std::sync::Arc<Root>>,
    alias: bool,
    index: Vec<String>,
    gzip_static: bool,
    brotli_static: bool,
    expires: Expires,
    cache_control: Option<String>,
    charset: Option<String>,
    if_modified_since: IfModifiedSince,
}

/// Metadata of a file that the response decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// Size, in bytes.
    pub len: u64,
    /// Last modification time (wall clock). Times before 1970 are treated as 1970 for
    /// `ETag` and `Last-Modified`.
    pub modified: SystemTime,
}

impl FileMeta {
    /// Reads size and modification time from `std::fs::Metadata` (a platform without
    /// modification times gives the Unix epoch).
    pub fn from_metadata(meta: &fs::Metadata) -> FileMeta {
        FileMeta {
            len: meta.len(),
            modified: meta.modified().unwrap_or(UNIX_EPOCH),
        }
    }

    /// nginx's `ETag`: `"<mtime seconds in hex>-<size in hex>"`, e.g. `"5f5e1000-1a"`.
    pub fn etag(&self) -> String {
        // nginx's form: `"<mtime hex>-<length hex>"`, written without the fmt machinery.
        let mut etag = String::with_capacity(2 + 16 + 1 + 16);
        etag.push('"');
        push_hex(&mut etag, unix_secs(self.modified));
        etag.push('-');
        push_hex(&mut etag, self.len);
        etag.push('"');
        etag
    }

    /// `Last-Modified` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), via `httpdate`.
    /// The text of the last time formatted on this thread is kept: a server sends the same
    /// few files over and over, and `httpdate` formats through `fmt` on every call.
    pub fn last_modified(&self) -> String {
        use std::cell::RefCell;
        thread_local! {
            static LAST: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
        }
        let t = self.modified.clamp(UNIX_EPOCH, max_http_time());
        let secs = unix_secs(t);
        LAST.try_with(|last| {
            let mut last = last.borrow_mut();
            if last.0 != secs {
                *last = (secs, http_date(t));
            }
            last.1.clone()
        })
        .unwrap_or_else(|_| http_date(t))
    }
}

/// A file chosen by [`StaticLocation::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticFile {
    /// The file to stream: the requested file, or its precompressed sibling.
    pub path: PathBuf,
    /// The metadata of [`path`](Self::path) (the sibling's when one was chosen, as nginx's
    /// `gzip_static` uses the `.gz` file's size and time for `ETag` and `Last-Modified`).
    pub meta: FileMeta,
    /// The requested (uncompressed) file; its extension gives the `Content-Type`.
    pub original: PathBuf,
    /// The sibling's coding when a precompressed file was chosen.
    pub encoding: Option<ContentCoding>,
    /// Whether the response depends on `Accept-Encoding` (a precompressed sibling exists),
    /// so `Vary: Accept-Encoding` must be sent.
    pub vary: bool,
}

/// The outcome of [`StaticLocation::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A regular file to serve.
    File(StaticFile),
    /// The path names a directory but does not end in `/`: answer `301` with this
    /// `Location` (the raw path plus `/`; the caller appends `?query` if there was one),
    /// as nginx does.
    RedirectToDirectory(Vec<u8>),
    /// Nothing there (or the path is not under this location). With a fallback upstream
    /// (`try_files $uri @app`) the request goes there; otherwise 404.
    NotFound,
    /// Refused with 403: a directory without an index file, a file that is not a regular
    /// file, a permission error, or a path that resolves (through a symlink) outside the
    /// root.
    Forbidden,
}

/// A failure of [`StaticLocation::resolve`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StaticError {
    /// The request path is malformed or tries to escape (`..`, `%2F`, NUL): answer 400.
    #[error("bad static file path: {0}")]
    BadPath(#[from] PathError),
    /// An unexpected filesystem error (not "not found" or "permission denied"): answer 500.
    #[error("filesystem error on {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl StaticError {
    /// The HTTP status to answer with: 400 for a bad path, 500 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            StaticError::BadPath(_) => 400,
            StaticError::Io { .. } => 500,
        }
    }
}

/// What the server must send for a static file request.
///
/// `headers` never contains `Content-Length`, `Date`, `Server` or `Connection`: the server
/// frames the body with [`content_length`](Self::content_length) and adds its own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePlan {
    /// The status code: 200, 206, 304, 405, 412 or 416.
    pub status: u16,
    /// Header fields in the order they should be written, names in canonical case; fixed
    /// values are borrowed, computed ones owned.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    /// The value of `Content-Length`, in bytes: the length of the selected
    /// representation or range (also for HEAD, where no body follows), 0 for 405/412/416,
    /// `None` for 304 (no `Content-Length` is sent).
    pub content_length: Option<u64>,
    /// The bytes to stream from [`file`](Self::file): `None` when no body is sent
    /// (HEAD, 304, 405, 412, 416).
    pub body: Option<ByteRange>,
    /// The file to stream from (the precompressed sibling when one was chosen).
    pub file: PathBuf,
}

impl ResponsePlan {
    /// The value of the first header field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// A byte range of a file: `len` bytes from offset `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte, as an offset from the start of the file.
    pub start: u64,
    /// Number of bytes.
    pub len: u64,
}

/// The request fields the response decision reads, collected from the request's fields.
///
/// Repeated list fields (`If-None-Match`, `If-Match`) are joined with `", "` (RFC 9110
/// §5.3); for the others the first occurrence counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticRequest {
    /// The request method, e.g. `b"GET"`.
    pub method: Vec<u8>,
    /// `If-Match`.
    pub if_match: Option<Vec<u8>>,
    /// `If-None-Match`.
    pub if_none_match: Option<Vec<u8>>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<Vec<u8>>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<Vec<u8>>,
    /// `Range`.
    pub range: Option<Vec<u8>>,
    /// `If-Range`.
    pub if_range: Option<Vec<u8>>,
}

impl StaticRequest {
    /// Collects the fields that matter from a request's `(name, value)` pairs (names are
    /// compared ASCII case-insensitively).
    pub fn from_fields<'a, I>(method: &[u8], fields: I) -> StaticRequest
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let mut req = StaticRequest {
            method: method.to_vec(),
            ..StaticRequest::default()
        };
        for (name, value) in fields {
            let (slot, list) = if name.eq_ignore_ascii_case(b"if-none-match") {
                (&mut req.if_none_match, true)
            } else if name.eq_ignore_ascii_case(b"if-match") {
                (&mut req.if_match, true)
            } else if name.eq_ignore_ascii_case(b"if-modified-since") {
                (&mut req.if_modified_since, false)
            } else if name.eq_ignore_ascii_case(b"if-unmodified-since") {
                (&mut req.if_unmodified_since, false)
            } else if name.eq_ignore_ascii_case(b"range") {
                (&mut req.range, false)
            } else if name.eq_ignore_ascii_case(b"if-range") {
                (&mut req.if_range, false)
            } else {
                continue;
            };
            match slot {
                None => *slot = Some(value.to_vec()),
                Some(existing) if list => {
                    existing.extend_from_slice(b", ");
                    existing.extend_from_slice(value);
                }
                Some(_) => {}
            }
        }
        req
    }
}

// ===== impl StaticLocation =====

impl StaticLocation {
    /// A location whose files live at `dir` + the full request path (nginx `root`).
    ///
    /// `prefix` is the location's URL prefix (e.g. `/static/`); with `root` it only
    /// decides which requests [`resolve`](Self::resolve) accepts. Defaults: index
    /// `index.html`, no precompressed files, `expires off`, no extra `Cache-Control`,
    /// charset `utf-8` for text types, `if_modified_since exact`.
    pub fn root(prefix: &str, dir: impl Into<PathBuf>) -> StaticLocation {
        StaticLocation::new(prefix, dir.into(), false)
    }

    /// A location whose files live at `dir` + the request path **minus** `prefix` (nginx
    /// `alias`): with prefix `/static/` and alias `/srv/assets/`, `/static/a.css` is
    /// `/srv/assets/a.css`. Same defaults as [`root`](Self::root).
    pub fn alias(prefix: &str, dir: impl Into<PathBuf>) -> StaticLocation {
        StaticLocation::new(prefix, dir.into(), true)
    }

    fn new(prefix: &str, dir: PathBuf, alias: bool) -> StaticLocation {
        StaticLocation {
            prefix: prefix.as_bytes().to_vec(),
            dir,
            root: std::sync::OnceLock::new(),
            alias,
            index: vec!["index.html".to_owned()],
            gzip_static: false,
            brotli_static: false,
            expires: Expires::Off,
            cache_control: None,
            charset: Some("utf-8".to_owned()),
            if_modified_since: IfModifiedSince::Exact,
        }
    }

    /// Index file names tried, in order, for a path ending in `/` (nginx `index`).
    /// An empty list turns index files off. Default is `["index.html"]`.
    pub fn index(&mut self, names: Vec<String>) -> &mut Self {
        self.index = names;
        self
    }

    /// Serve `<file>.gz` with `Content-Encoding: gzip` when it exists and the client
    /// accepts gzip (nginx `gzip_static on`). Default is off.
    pub fn gzip_static(&mut self, on: bool) -> &mut Self {
        self.gzip_static = on;
        self
    }

    /// Serve `<file>.br` with `Content-Encoding: br` when it exists and the client accepts
    /// br (`brotli_static on`). Preferred over gzip when both are equally acceptable.
    /// Default is off.
    pub fn brotli_static(&mut self, on: bool) -> &mut Self {
        self.brotli_static = on;
        self
    }

    /// The `expires` policy. Default is [`Expires::Off`].
    pub fn expires(&mut self, expires: Expires) -> &mut Self {
        self.expires = expires;
        self
    }

    /// Extra `Cache-Control` directives (e.g. `public, immutable`), appended after the
    /// `max-age`/`no-cache` that [`expires`](Self::expires) produces, or sent alone. The
    /// value must be a valid field value (no CR, LF or NUL; the config validates it).
    /// Default is none.
    pub fn cache_control(&mut self, directives: Option<String>) -> &mut Self {
        self.cache_control = directives;
        self
    }

    /// The `charset` parameter added to `text/*` and JavaScript content types; `None` adds
    /// none (nginx's default `charset off`). Default is `Some("utf-8")`.
    pub fn charset(&mut self, charset: Option<String>) -> &mut Self {
        self.charset = charset;
        self
    }

    /// How `If-Modified-Since` is compared. Default is [`IfModifiedSince::Exact`].
    pub fn if_modified_since(&mut self, mode: IfModifiedSince) -> &mut Self {
        self.if_modified_since = mode;
        self
    }

    /// The location's URL prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The root or alias directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Maps a decoded path (from [`static_path`]) onto the filesystem, without touching it.
    ///
    /// Returns `None` when the path is not under this location's prefix, when it holds a
    /// `..` segment, or when, for an alias whose prefix does not end in `/`, the rest does
    /// not start at a segment boundary: under `location /img { alias /data/img/; }`
    /// nginx lets `/img../x` reach `/data/x` (the classic off-by-slash hole) and reads
    /// `/imgfoo` as `/data/img/foo`. Pure.
    pub fn map_path(&self, decoded: &[u8]) -> Option<PathBuf> {
        if !decoded.starts_with(&self.prefix) {
            return None;
        }
        let relative = if self.alias {
            let rest = &decoded[self.prefix.len()..];
            // With a prefix that does not end in '/', nginx glues `<alias>` and the rest
            // (`/staticfoo` reads `<alias>foo`); refuse instead.
            if !self.prefix.ends_with(b"/") && !rest.is_empty() && rest[0] != b'/' {
                return None;
            }
            rest
        } else {
            decoded
        };
        let mut path = PathBuf::with_capacity(self.dir.as_os_str().len() + relative.len() + 1);
        path.push(&self.dir);
        for segment in relative.split(|&b| b == b'/') {
            match segment {
                b"" | b"." => {}
                b".." => return None,
                _ => path.push(os_str(segment)?),
            }
        }
        Some(path)
    }

    /// Resolves a raw request path (the target before `?`) to a file under this location.
    ///
    /// Decodes with [`static_path`], maps with [`map_path`](Self::map_path), then checks
    /// the filesystem: the path, with every symlink followed, must stay inside the root or
    /// alias directory; a directory gets its index file (when the path ends in `/`) or a
    /// redirect to `path/`; a precompressed sibling is chosen with [`choose_coding`] when
    /// enabled, present, inside the root, and acceptable.
    ///
    /// Blocking filesystem calls. The same as [`resolve_open`](Self::resolve_open), without
    /// keeping the opened file.
    ///
    /// # Errors
    ///
    /// [`StaticError::BadPath`] (400) for a malformed or escaping path;
    /// [`StaticError::Io`] (500) for filesystem errors other than not-found (then
    /// [`Resolved::NotFound`]) and permission denied (then [`Resolved::Forbidden`]).
    pub fn resolve(
        &self,
        raw_path: &[u8],
        accept_encoding: Option<&[u8]>,
    ) -> Result<Resolved, StaticError> {
        self.resolve_open(raw_path, accept_encoding)
            .map(|(resolved, _)| resolved)
    }

    /// [`resolve`](Self::resolve), also returning the file that was opened for a
    /// [`Resolved::File`] (the chosen sibling when one was chosen), so the server reads it
    /// without opening it again.
    ///
    /// On Linux (5.6 and later) each candidate is opened with one `openat2` call relative to
    /// the root directory, opened once, with `RESOLVE_BENEATH`: `..` and symlinks that would
    /// leave the root fail in the kernel, with no `realpath` walk. A path that the kernel
    /// refuses that way (an escaping or absolute symlink) is checked again the portable way,
    /// by canonicalising it and comparing with the canonical root, so an absolute symlink
    /// that stays inside is still served. Files are opened non-blocking, so a FIFO in the
    /// root cannot stall the caller (it is then refused as not a regular file).
    ///
    /// # Errors
    ///
    /// As [`resolve`](Self::resolve).
    pub fn resolve_open(
        &self,
        raw_path: &[u8],
        accept_encoding: Option<&[u8]>,
    ) -> Result<(Resolved, Option<fs::File>), StaticError> {
        let decoded = static_path(raw_path)?;
        let Some(candidate) = self.map_path(&decoded) else {
            return Ok((Resolved::NotFound, None));
        };
        let root = match self.root.get() {
            Some(root) => root.clone(),
            None => match Root::new(&self.dir) {
                Ok(root) => self.root.get_or_init(|| root.into()).clone(),
                Err(e) => return settle(e, &self.dir).map(|r| (r, None)),
            },
        };
        let not_opened = |r: Result<Resolved, StaticError>| r.map(|r| (r, None));
        // `real` is `None` when it is the path that was asked for.
        let (real, file, meta) = match root.open(&candidate) {
            Ok(Some((real, f, m))) => (resolved(real), f, m),
            Ok(None) => return Ok((Resolved::Forbidden, None)),
            Err(e) => return not_opened(settle(e, &candidate)),
        };
        let (original, real, file, meta) = if meta.is_dir() {
            if decoded.last() != Some(&b'/') {
                let mut location = raw_path.to_vec();
                location.push(b'/');
                return Ok((Resolved::RedirectToDirectory(location), None));
            }
            let mut found = None;
            for name in &self.index {
                let index = candidate.join(name);
                match root.open(&index) {
                    Ok(Some((r, f, m))) if m.is_file() => {
                        let r = resolved(r);
                        found = Some((index, r, f, m));
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if quiet(&e) => {}
                    Err(e) => return not_opened(settle(e, &index)),
                }
            }
            match found {
                Some(found) => found,
                None => return Ok((Resolved::Forbidden, None)),
            }
        } else {
            (candidate, real, file, meta)
        };
        if !meta.is_file() {
            return Ok((Resolved::Forbidden, None));
        }
        let mut chosen = StaticFile {
            path: real.unwrap_or_else(|| original.clone()),
            meta: FileMeta::from_metadata(&meta),
            original,
            encoding: None,
            vary: false,
        };
        let mut opened = file;
        let mut siblings: Vec<(ContentCoding, PathBuf, fs::File, FileMeta)> = Vec::new();
        for (enabled, coding) in [
            (self.brotli_static, ContentCoding::Brotli),
            (self.gzip_static, ContentCoding::Gzip),
        ] {
            if !enabled {
                continue;
            }
            let mut name = chosen.path.as_os_str().to_owned();
            name.push(coding.suffix());
            let sibling = PathBuf::from(name);
            match root.open(&sibling) {
                Ok(Some((r, f, m))) if m.is_file() => {
                    let r = resolved(r);
                    siblings.push((coding, r.unwrap_or(sibling), f, FileMeta::from_metadata(&m)))
                }
                Ok(_) => {}
                Err(e) if quiet(&e) => {}
                Err(e) => return not_opened(settle(e, &sibling)),
            }
        }
        if !siblings.is_empty() {
            chosen.vary = true;
            let available: Vec<ContentCoding> = siblings.iter().map(|s| s.0).collect();
            if let Some(coding) = choose_coding(accept_encoding, &available) {
                if let Some((c, p, f, m)) = siblings.into_iter().find(|s| s.0 == coding) {
                    chosen.encoding = Some(c);
                    chosen.path = p;
                    chosen.meta = m;
                    opened = f;
                }
            }
        }
        Ok((Resolved::File(chosen), Some(opened)))
    }

    /// Decides the response for `file` (pure; `now` is the wall-clock time, used only for
    /// `Expires`).
    ///
    /// In order (RFC 9110 §13.2.2): a method other than GET or HEAD gets 405 with
    /// `Allow: GET, HEAD`; a failed `If-Match` (strong comparison, or `If-Unmodified-Since`
    /// when there is no `If-Match`) gets 412; a matching `If-None-Match` (weak comparison,
    /// `*`, lists) gets 304, and only when there is no `If-None-Match` does
    /// `If-Modified-Since` count; then `Range` (GET and HEAD, only when `If-Range` is
    /// absent or matches): one satisfiable range gets 206 with `Content-Range`, an
    /// unsatisfiable one gets 416 with `Content-Range: bytes */<len>`, a syntactically
    /// invalid `bytes=` range gets 416 (as nginx), several ranges or another unit get the
    /// whole file with 200. HEAD gets the same status and fields as GET without a body.
    ///
    /// Fields: `Content-Type` (mime_guess from the original file's extension,
    /// `application/octet-stream` when unknown, plus the charset for text),
    /// `Last-Modified`, `ETag`, `Accept-Ranges: bytes`, `Content-Encoding` and
    /// `Vary: Accept-Encoding` for precompressed files, `Content-Range`, `Cache-Control`
    /// and `Expires`.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// use proxy_core::static_files::{FileMeta, StaticFile, StaticLocation, StaticRequest};
    ///
    /// let loc = StaticLocation::root("/", "/srv/www");
    /// let file = StaticFile {
    ///     path: "/srv/www/a.css".into(),
    ///     original: "/srv/www/a.css".into(),
    ///     meta: FileMeta { len: 1000, modified: UNIX_EPOCH + Duration::from_secs(1_700_000_000) },
    ///     encoding: None,
    ///     vary: false,
    /// };
    /// let req = StaticRequest::from_fields(b"GET", [(&b"Range"[..], &b"bytes=0-99"[..])]);
    /// let plan = loc.plan(&req, &file, SystemTime::now());
    /// assert_eq!(plan.status, 206);
    /// assert_eq!(plan.header("Content-Range"), Some("bytes 0-99/1000"));
    /// assert_eq!(plan.header("ETag"), Some("\"6553f100-3e8\""));
    /// assert_eq!(plan.content_length, Some(100));
    /// ```
    pub fn plan(&self, req: &StaticRequest, file: &StaticFile, now: SystemTime) -> ResponsePlan {
        let len = file.meta.len;
        let etag = file.meta.etag();
        let last_modified = file.meta.last_modified();
        let mut plan = ResponsePlan {
            status: 200,
            // Content-Type, Last-Modified, ETag, Accept-Ranges and room for the rest.
            headers: Vec::with_capacity(8),
            content_length: Some(0),
            body: None,
            file: file.path.clone(),
        };
        let head = req.method == b"HEAD";
        if req.method != b"GET" && !head {
            plan.status = 405;
            plan.headers.push(("Allow", Cow::Borrowed("GET, HEAD")));
            return plan;
        }
        // RFC 9110 §13.2.2 steps 1-2.
        let precondition_failed = match (&req.if_match, &req.if_unmodified_since) {
            (Some(if_match), _) => !etag_list_matches(if_match, &etag, false),
            (None, Some(date)) => match parse_date(date) {
                Some(date) => unix_secs(file.meta.modified) > date,
                None => false,
            },
            (None, None) => false,
        };
        if precondition_failed {
            plan.status = 412;
            return plan;
        }
        // Steps 3-4.
        let not_modified = match (&req.if_none_match, &req.if_modified_since) {
            (Some(inm), _) => etag_list_matches(inm, &etag, true),
            (None, Some(date)) => match (self.if_modified_since, parse_date(date)) {
                (IfModifiedSince::Exact, Some(d)) => unix_secs(file.meta.modified) == d,
                (IfModifiedSince::Before, Some(d)) => unix_secs(file.meta.modified) <= d,
                _ => false,
            },
            (None, None) => false,
        };
        if not_modified {
            plan.status = 304;
            plan.content_length = None;
            plan.headers.push(("Last-Modified", last_modified.into()));
            plan.headers.push(("ETag", etag.into()));
            self.push_cache_fields(&mut plan.headers, now);
            if file.vary {
                plan.headers
                    .push(("Vary", Cow::Borrowed("Accept-Encoding")));
            }
            return plan;
        }
        // Step 5: Range, guarded by If-Range.
        let range = match &req.range {
            Some(range) if if_range_holds(req.if_range.as_deref(), &etag, file.meta.modified) => {
                parse_range(range, len)
            }
            _ => RangeDecision::Whole,
        };
        let range = match range {
            RangeDecision::Unsatisfiable => {
                plan.status = 416;
                plan.headers
                    .push(("Content-Range", format!("bytes */{len}").into()));
                return plan;
            }
            RangeDecision::Whole => ByteRange { start: 0, len },
            RangeDecision::Partial(r) => {
                plan.status = 206;
                r
            }
        };
        plan.headers
            .push(("Content-Type", self.content_type(&file.original)));
        if let Some(coding) = file.encoding {
            plan.headers
                .push(("Content-Encoding", Cow::Borrowed(coding.as_str())));
        }
        if file.vary {
            plan.headers
                .push(("Vary", Cow::Borrowed("Accept-Encoding")));
        }
        plan.headers.push(("Last-Modified", last_modified.into()));
        plan.headers.push(("ETag", etag.into()));
        plan.headers.push(("Accept-Ranges", Cow::Borrowed("bytes")));
        if plan.status == 206 {
            let last = range.start + range.len - 1;
            plan.headers.push((
                "Content-Range",
                format!("bytes {}-{last}/{len}", range.start).into(),
            ));
        }
        self.push_cache_fields(&mut plan.headers, now);
        plan.content_length = Some(range.len);
        plan.body = if head || range.len == 0 {
            None
        } else {
            Some(range)
        };
        plan
    }

    /// `Content-Type` for a file name: mime_guess's first guess, the charset for `text/*`
    /// and JavaScript, `application/octet-stream` (nginx's `default_type`) when unknown.
    pub fn content_type(&self, path: &Path) -> Cow<'static, str> {
        let mime = guess_mime(path);
        let Some(mime) = mime else {
            return Cow::Borrowed("application/octet-stream");
        };
        match &self.charset {
            Some(cs) if mime.starts_with("text/") || mime == "application/javascript" => {
                Cow::Owned(format!("{mime}; charset={cs}"))
            }
            _ => Cow::Borrowed(mime),
        }
    }

    /// Whether [`plan`](Self::plan) reads its `now` (only for `Expires` with a duration).
    pub(crate) fn reads_clock(&self) -> bool {
        matches!(self.expires, Expires::After(_))
    }

    fn push_cache_fields(
        &self,
        headers: &mut Vec<(&'static str, Cow<'static, str>)>,
        now: SystemTime,
    ) {
        let (expires, directive) = match self.expires {
            Expires::Off => (None, None),
            Expires::After(d) => {
                let at = now.checked_add(d).unwrap_or(max_http_time());
                (
                    Some(Cow::Owned(http_date(at))),
                    Some(Cow::Owned(format!("max-age={}", d.as_secs()))),
                )
            }
            Expires::Epoch => (
                Some(Cow::Borrowed("Thu, 01 Jan 1970 00:00:01 GMT")),
                Some(Cow::Borrowed("no-cache")),
            ),
            Expires::Max => (
                Some(Cow::Borrowed("Thu, 31 Dec 2037 23:55:55 GMT")),
                Some(Cow::Borrowed("max-age=315360000")),
            ),
        };
        let cache_control = match (directive, &self.cache_control) {
            (Some(d), Some(extra)) => Some(Cow::Owned(format!("{d}, {extra}"))),
            (Some(d), None) => Some(d),
            (None, Some(extra)) => Some(Cow::Owned(extra.clone())),
            (None, None) => None,
        };
        if let Some(cc) = cache_control {
            headers.push(("Cache-Control", cc));
        }
        if let Some(e) = expires {
            headers.push(("Expires", e));
        }
    }
}

/// The path [`Root::open`] read, when it differs from the one asked for.
fn resolved(real: Cow<'_, Path>) -> Option<PathBuf> {
    match real {
        Cow::Borrowed(_) => None,
        Cow::Owned(p) => Some(p),
    }
}

/// Whether an I/O error is an expected "not there / not allowed" outcome.
fn quiet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::PermissionDenied
    ) || e.raw_os_error() == Some(36) // ENAMETOOLONG on Linux
        || e.raw_os_error() == Some(40) // ELOOP on Linux
}

/// Turns an I/O error into the matching resolution, or a 500.
fn settle(e: io::Error, path: &Path) -> Result<Resolved, StaticError> {
    match e.kind() {
        io::ErrorKind::PermissionDenied => Ok(Resolved::Forbidden),
        _ if quiet(&e) => Ok(Resolved::NotFound),
        _ => Err(StaticError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// A location's directory, opened once.
#[derive(Debug)]
pub(crate) struct Root {
    /// The directory itself (`O_PATH`), for `openat2(RESOLVE_BENEATH)`; `None` where
    /// `openat2` is missing (not Linux, Linux before 5.6, or refused by a seccomp filter).
    #[cfg(target_os = "linux")]
    fd: Option<std::os::fd::OwnedFd>,
    /// The directory with every symlink resolved, for the portable check.
    canonical: PathBuf,
    /// The directory as configured: request paths are built on it.
    dir: PathBuf,
}

impl Root {
    fn new(dir: &Path) -> io::Result<Root> {
        let canonical = fs::canonicalize(dir)?;
        #[cfg(target_os = "linux")]
        {
            use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
            use nix::sys::stat::Mode;
            let fd = open(
                &canonical,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            // Probe once: ENOSYS (old kernel) or EPERM (seccomp) means the portable check.
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_BENEATH);
            let fd = match openat2(&fd, ".", how) {
                Ok(_) => Some(fd),
                Err(e) => {
                    tracing::debug!("openat2 unavailable ({e}); static files use realpath checks");
                    None
                }
            };
            Ok(Root {
                dir: dir.to_owned(),
                fd,
                canonical,
            })
        }
        #[cfg(not(target_os = "linux"))]
        Ok(Root {
            dir: dir.to_owned(),
            canonical,
        })
    }

    /// Opens `path` (the configured directory joined with plain segments, as
    /// [`StaticLocation::map_path`] builds it) when it stays inside the root: the path to
    /// read (`path` itself, borrowed, unless a symlink had to be resolved), the open file and
    /// its metadata. `Ok(None)` when it leaves the root.
    fn open<'p>(
        &self,
        path: &'p Path,
    ) -> io::Result<Option<(Cow<'p, Path>, fs::File, fs::Metadata)>> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
            let rel = relative_to(path, &self.dir);
            let rel = if rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                rel
            };
            let how = OpenHow::new()
                .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            match openat2(fd, rel, how) {
                Ok(fd) => {
                    let file = fs::File::from(fd);
                    let meta = file.metadata()?;
                    return Ok(Some((Cow::Borrowed(path), file, meta)));
                }
                // Leaving the root, or an absolute symlink: decide the portable way below.
                Err(nix::errno::Errno::EXDEV) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let real = fs::canonicalize(path)?;
        if !real.starts_with(&self.canonical) {
            return Ok(None);
        }
        let file = open_nonblocking(&real)?;
        let meta = file.metadata()?;
        Ok(Some((Cow::Owned(real), file, meta)))
    }
}

/// `path` below `dir` (`path` itself when it is not below `dir`). Paths here are built by
/// [`StaticLocation::map_path`] as `dir` + `/` + segments, so a byte-prefix test decides;
/// `Path::strip_prefix` (a component-by-component walk) only when that test fails.
#[cfg(target_os = "linux")]
fn relative_to<'a>(path: &'a Path, dir: &Path) -> &'a Path {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let dir_bytes = dir.as_os_str().as_bytes();
    match bytes.strip_prefix(dir_bytes) {
        Some(rest) if rest.first() == Some(&b'/') || rest.is_empty() => {
            let rest = rest.strip_prefix(b"/").unwrap_or(rest);
            Path::new(OsStr::from_bytes(rest))
        }
        // `dir` itself ends in '/' (the root directory): the rest starts right after it.
        Some(rest) if dir_bytes.ends_with(b"/") => Path::new(OsStr::from_bytes(rest)),
        _ => path.strip_prefix(dir).unwrap_or(path),
    }
}

fn open_nonblocking(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
}

#[cfg(unix)]
fn os_str(bytes: &[u8]) -> Option<&OsStr> {
    use std::os::unix::ffi::OsStrExt;
    Some(OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn os_str(bytes: &[u8]) -> Option<&OsStr> {
    std::str::from_utf8(bytes).ok().map(OsStr::new)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// `mime_guess`'s first type for the extension of `path`, through a small per-thread cache
/// of recent extensions (`mime_guess` searches its table with case-insensitive compares on
/// every call, which showed in static-file profiles). At most [`MIME_CACHE`] entries.
fn guess_mime(path: &Path) -> Option<&'static str> {
    use std::cell::RefCell;
    use std::ffi::OsString;
    thread_local! {
        static RECENT: RefCell<Vec<(OsString, Option<&'static str>)>> =
            const { RefCell::new(Vec::new()) };
    }
    let ext = path.extension()?;
    let lookup = || mime_guess::from_ext(ext.to_str()?).first_raw();
    RECENT
        .try_with(|recent| {
            let mut recent = recent.borrow_mut();
            if let Some((_, mime)) = recent.iter().find(|(e, _)| e == ext) {
                return *mime;
            }
            let mime = lookup();
            if recent.len() == MIME_CACHE {
                recent.remove(0);
            }
            recent.push((ext.to_owned(), mime));
            mime
        })
        .unwrap_or_else(|_| lookup())
}

/// Extensions remembered per thread by [`guess_mime`].
const MIME_CACHE: usize = 16;

/// Appends `n` in lower-case hex without leading zeros (`0` for zero).
fn push_hex(out: &mut String, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(char::from(DIGITS[((n >> (i * 4)) & 0xf) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_matches_fmt() {
        for n in [0u64, 1, 0xf, 0x10, 0x2800, 0x6b01_529d, u64::MAX] {
            let mut s = String::new();
            push_hex(&mut s, n);
            assert_eq!(s, format!("{n:x}"));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn relative_paths_below_the_directory() {
        let rel = |p: &str, d: &str| relative_to(Path::new(p), Path::new(d)).to_owned();
        assert_eq!(rel("/srv/www/a/b.txt", "/srv/www"), Path::new("a/b.txt"));
        assert_eq!(rel("/srv/www", "/srv/www"), Path::new(""));
        assert_eq!(rel("/a.txt", "/"), Path::new("a.txt"));
        // A sibling with the same leading bytes is not below the directory.
        assert_eq!(rel("/srv/wwwx/a", "/srv/www"), Path::new("/srv/wwwx/a"));
    }
}

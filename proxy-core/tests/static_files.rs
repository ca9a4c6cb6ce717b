//! Static files: path resolution on a real temp-dir tree, and the response plan.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_core::static_files::{
    ByteRange, ContentCoding, Expires, FileMeta, IfModifiedSince, Resolved, ResponsePlan,
    StaticError, StaticFile, StaticLocation, StaticRequest, choose_coding, coding_quality,
    etag_list_matches,
};

const MTIME: u64 = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 GMT
const MTIME_HTTP: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

/// A temp tree:
/// root/index.html, root/a.txt (26 bytes), root/app.js + .gz + .br, root/dir/ (no index),
/// root/sub/index.html, root/empty.bin, root/noext; outside/secret; root/link -> outside.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn write(path: &Path, data: &[u8]) {
    fs::write(path, data).unwrap();
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(MTIME))
        .unwrap();
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(root.join("dir")).unwrap();
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    write(&root.join("index.html"), b"<h1>home</h1>");
    write(&root.join("a.txt"), b"abcdefghijklmnopqrstuvwxyz");
    write(&root.join("app.js"), b"console.log('hello, world');");
    write(&root.join("app.js.gz"), b"GZ");
    write(&root.join("app.js.br"), b"BR!");
    write(&root.join("sub/index.html"), b"sub");
    write(&root.join("empty.bin"), b"");
    write(&root.join("noext"), b"x");
    write(&root.join("a b.css"), b"body{}");
    write(&outside.join("secret"), b"top secret");
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("secret.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("a.txt"), root.join("inner-link.txt")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("only.js.gz")).unwrap();
    write(&root.join("only.js"), b"only");
    Tree {
        root: fs::canonicalize(&root).unwrap(),
        outside,
        _tmp: tmp,
    }
}

fn file(res: Result<Resolved, StaticError>) -> StaticFile {
    match res.unwrap() {
        Resolved::File(f) => f,
        other => panic!("expected a file, got {other:?}"),
    }
}

#[test]
fn resolves_files_index_and_directories() {
    let t = tree();
    let loc = StaticLocation::root("/", &t.root);
    let f = file(loc.resolve(b"/a.txt", None));
    assert_eq!(f.path, t.root.join("a.txt"));
    assert_eq!(f.meta.len, 26);
    assert_eq!(f.encoding, None);
    assert!(!f.vary);

    let f = file(loc.resolve(b"/", None));
    assert_eq!(f.path, t.root.join("index.html"));
    let f = file(loc.resolve(b"/sub/", None));
    assert_eq!(f.path, t.root.join("sub/index.html"));
    assert_eq!(f.original, t.root.join("sub/index.html"));
    let f = file(loc.resolve(b"/a%20b.css", None));
    assert_eq!(f.path, t.root.join("a b.css"));

    assert_eq!(
        loc.resolve(b"/sub", None).unwrap(),
        Resolved::RedirectToDirectory(b"/sub/".to_vec())
    );
    assert_eq!(loc.resolve(b"/dir/", None).unwrap(), Resolved::Forbidden);
    assert_eq!(
        loc.resolve(b"/missing.txt", None).unwrap(),
        Resolved::NotFound
    );
    assert_eq!(loc.resolve(b"/a.txt/x", None).unwrap(), Resolved::NotFound);

    let mut no_index = StaticLocation::root("/", &t.root);
    no_index.index(vec![]);
    assert_eq!(
        no_index.resolve(b"/sub/", None).unwrap(),
        Resolved::Forbidden
    );
    let mut other_index = StaticLocation::root("/", &t.root);
    other_index.index(vec!["nope.html".into(), "a.txt".into()]);
    assert_eq!(
        file(other_index.resolve(b"/", None)).path,
        t.root.join("a.txt")
    );
}

#[test]
fn refuses_traversal_before_touching_the_filesystem() {
    let t = tree();
    let loc = StaticLocation::root("/", t.root.join("sub"));
    for raw in [
        &b"/../a.txt"[..],
        b"/%2e%2e/a.txt",
        b"/%2E%2e%2fa.txt",
        b"/..%2Fa.txt",
        b"/x/../../a.txt",
        b"/a.txt%00.html",
        b"/%zz",
    ] {
        let err = loc.resolve(raw, None).unwrap_err();
        assert_eq!(err.status(), 400, "{}", String::from_utf8_lossy(raw));
        assert!(matches!(err, StaticError::BadPath(_)));
    }
}

#[test]
fn symlinks_leaving_the_root_are_forbidden() {
    let t = tree();
    let loc = StaticLocation::root("/", &t.root);
    assert_eq!(
        loc.resolve(b"/link/secret", None).unwrap(),
        Resolved::Forbidden
    );
    assert_eq!(
        loc.resolve(b"/secret.txt", None).unwrap(),
        Resolved::Forbidden
    );
    // A symlink that stays inside is fine, and the real path is what gets streamed.
    let f = file(loc.resolve(b"/inner-link.txt", None));
    assert_eq!(f.path, t.root.join("a.txt"));
    assert_eq!(f.original, t.root.join("inner-link.txt"));
    // The outside file really exists: the refusal is about the root, not a missing file.
    assert!(t.outside.join("secret").exists());
}

#[test]
fn relative_symlinks_are_checked_beneath_the_root() {
    let t = tree();
    std::os::unix::fs::symlink("a.txt", t.root.join("rel-inner.txt")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", t.root.join("rel-escape.txt")).unwrap();
    std::os::unix::fs::symlink("../../outside", t.root.join("sub/up")).unwrap();
    let loc = StaticLocation::root("/", &t.root);
    let (resolved, opened) = loc.resolve_open(b"/rel-inner.txt", None).unwrap();
    let Resolved::File(f) = resolved else {
        panic!("{resolved:?}")
    };
    assert_eq!(f.meta.len, 26);
    // The opened file is the one to stream.
    let mut body = String::new();
    std::io::Read::read_to_string(&mut opened.expect("opened"), &mut body).unwrap();
    assert_eq!(body, "abcdefghijklmnopqrstuvwxyz");
    for escape in [&b"/rel-escape.txt"[..], b"/sub/up/secret"] {
        assert_eq!(
            loc.resolve_open(escape, None).unwrap().0,
            Resolved::Forbidden,
            "{}",
            String::from_utf8_lossy(escape)
        );
    }
}

#[test]
fn special_files_are_refused_without_blocking() {
    let t = tree();
    let fifo = t.root.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let loc = StaticLocation::root("/", &t.root);
    // Opening a FIFO for reading would wait for a writer; it is opened non-blocking and
    // refused as not a regular file.
    assert_eq!(loc.resolve(b"/pipe", None).unwrap(), Resolved::Forbidden);
}

#[test]
fn alias_strips_the_prefix_and_closes_the_off_by_slash_hole() {
    let t = tree();
    let loc = StaticLocation::alias("/static/", t.root.join("sub"));
    assert_eq!(
        file(loc.resolve(b"/static/index.html", None)).path,
        t.root.join("sub/index.html")
    );
    assert_eq!(
        file(loc.resolve(b"/static/", None)).path,
        t.root.join("sub/index.html")
    );
    assert_eq!(
        loc.resolve(b"/other/a.txt", None).unwrap(),
        Resolved::NotFound
    );

    // nginx's classic mistake: `location /img { alias /data/img/; }` lets `/img../x` out.
    let loc = StaticLocation::alias("/s", t.root.join("sub"));
    assert_eq!(loc.map_path(b"/s../a.txt"), None);
    assert_eq!(
        loc.resolve(b"/s../a.txt", None).unwrap(),
        Resolved::NotFound
    );
    assert_eq!(
        loc.map_path(b"/s/index.html"),
        Some(t.root.join("sub/index.html"))
    );
    assert_eq!(
        loc.map_path(b"/sindex.html"),
        None,
        "no gluing across the boundary"
    );
    assert_eq!(loc.map_path(b"/s"), Some(t.root.join("sub")));

    let root = StaticLocation::root("/static/", "/srv/www");
    assert_eq!(
        root.map_path(b"/static/x/y.css"),
        Some(PathBuf::from("/srv/www/static/x/y.css"))
    );
    assert_eq!(root.map_path(b"/other"), None);
}

#[test]
fn missing_root_is_not_found_not_a_crash() {
    let loc = StaticLocation::root("/", "/nonexistent/ferrule/root");
    assert_eq!(loc.resolve(b"/a", None).unwrap(), Resolved::NotFound);
}

#[test]
fn precompressed_siblings_follow_accept_encoding() {
    let t = tree();
    let mut loc = StaticLocation::root("/", &t.root);
    loc.gzip_static(true).brotli_static(true);

    let f = file(loc.resolve(b"/app.js", Some(b"gzip, deflate, br")));
    assert_eq!(f.encoding, Some(ContentCoding::Brotli));
    assert_eq!(f.path, t.root.join("app.js.br"));
    assert_eq!(f.meta.len, 3);
    assert!(f.vary);

    let f = file(loc.resolve(b"/app.js", Some(b"gzip")));
    assert_eq!(f.encoding, Some(ContentCoding::Gzip));
    assert_eq!(f.path, t.root.join("app.js.gz"));

    let f = file(loc.resolve(b"/app.js", Some(b"br;q=0.5, gzip;q=0.8")));
    assert_eq!(f.encoding, Some(ContentCoding::Gzip));

    let f = file(loc.resolve(b"/app.js", Some(b"gzip;q=0, br;q=0")));
    assert_eq!(f.encoding, None);
    assert_eq!(f.path, t.root.join("app.js"));
    assert!(f.vary, "the answer still depends on Accept-Encoding");

    let f = file(loc.resolve(b"/app.js", None));
    assert_eq!(f.encoding, None);

    // gzip only enabled.
    let mut gz = StaticLocation::root("/", &t.root);
    gz.gzip_static(true);
    let f = file(gz.resolve(b"/app.js", Some(b"br, gzip")));
    assert_eq!(f.encoding, Some(ContentCoding::Gzip));

    // No sibling: no Vary.
    let f = file(loc.resolve(b"/a.txt", Some(b"gzip")));
    assert_eq!((f.encoding, f.vary), (None, false));

    // A sibling that is a symlink out of the root is ignored.
    let f = file(loc.resolve(b"/only.js", Some(b"gzip")));
    assert_eq!((f.encoding, f.vary), (None, false));
}

#[test]
fn accept_encoding_q_values() {
    use ContentCoding::{Brotli, Gzip};
    assert_eq!(coding_quality(Some(b"gzip"), "gzip"), 1000);
    assert_eq!(coding_quality(Some(b"GZIP;Q=0.5"), "gzip"), 500);
    assert_eq!(coding_quality(Some(b"x-gzip"), "gzip"), 1000);
    assert_eq!(coding_quality(Some(b"gzip;q=0.123"), "gzip"), 123);
    assert_eq!(coding_quality(Some(b"gzip;q=1.0"), "gzip"), 1000);
    assert_eq!(
        coding_quality(Some(b"gzip;q=1.5"), "gzip"),
        0,
        "malformed q ignored"
    );
    assert_eq!(coding_quality(Some(b"gzip;q=0.1234"), "gzip"), 0);
    assert_eq!(coding_quality(Some(b"*"), "br"), 1000);
    assert_eq!(coding_quality(Some(b"*;q=0.2, br;q=0.9"), "br"), 900);
    assert_eq!(coding_quality(Some(b"deflate"), "gzip"), 0);
    assert_eq!(coding_quality(Some(b""), "identity"), 1000);
    assert_eq!(coding_quality(Some(b"*;q=0"), "identity"), 0);
    assert_eq!(coding_quality(Some(b"identity;q=0"), "identity"), 0);
    assert_eq!(coding_quality(None, "gzip"), 0);

    let both = [Brotli, Gzip];
    assert_eq!(choose_coding(Some(b"gzip, br"), &both), Some(Brotli));
    assert_eq!(choose_coding(Some(b"gzip;q=0.5, identity"), &both), None);
    assert_eq!(
        choose_coding(Some(b"gzip;q=0.5, identity;q=0"), &both),
        Some(Gzip)
    );
    assert_eq!(
        choose_coding(Some(b"identity;q=0"), &both),
        None,
        "nothing acceptable: send as is"
    );
    assert_eq!(choose_coding(Some(b"*"), &both), Some(Brotli));
    assert_eq!(choose_coding(Some(b"*, br;q=0"), &both), Some(Gzip));
    assert_eq!(choose_coding(Some(b"br"), &[Gzip]), None);
}

fn meta(len: u64) -> FileMeta {
    FileMeta {
        len,
        modified: UNIX_EPOCH + Duration::from_secs(MTIME),
    }
}

fn static_file(name: &str, len: u64) -> StaticFile {
    StaticFile {
        path: PathBuf::from("/srv").join(name),
        meta: meta(len),
        original: PathBuf::from("/srv").join(name),
        encoding: None,
        vary: false,
    }
}

fn get(fields: &[(&str, &str)]) -> StaticRequest {
    req("GET", fields)
}

fn req(method: &str, fields: &[(&str, &str)]) -> StaticRequest {
    StaticRequest::from_fields(
        method.as_bytes(),
        fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
    )
}

fn plan(req: &StaticRequest, len: u64) -> ResponsePlan {
    StaticLocation::root("/", "/srv").plan(req, &static_file("a.txt", len), SystemTime::now())
}

const ETAG: &str = "\"6553f100-1a\"";

#[test]
fn plain_get_and_head() {
    let p = plan(&get(&[]), 26);
    assert_eq!(p.status, 200);
    assert_eq!(p.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(p.header("ETag"), Some(ETAG));
    assert_eq!(p.header("Last-Modified"), Some(MTIME_HTTP));
    assert_eq!(p.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(p.header("Content-Encoding"), None);
    assert_eq!(p.header("Cache-Control"), None);
    assert_eq!(p.content_length, Some(26));
    assert_eq!(p.body, Some(ByteRange { start: 0, len: 26 }));
    assert_eq!(p.file, PathBuf::from("/srv/a.txt"));

    let h = plan(&req("HEAD", &[]), 26);
    assert_eq!(h.status, 200);
    assert_eq!(h.content_length, Some(26));
    assert_eq!(h.body, None);
    assert_eq!(h.headers, p.headers);

    let empty = plan(&get(&[]), 0);
    assert_eq!(
        (empty.status, empty.content_length, empty.body),
        (200, Some(0), None)
    );
}

#[test]
fn other_methods_get_405() {
    for m in ["POST", "PUT", "DELETE", "get"] {
        let p = plan(&req(m, &[]), 26);
        assert_eq!(p.status, 405, "{m}");
        assert_eq!(p.header("Allow"), Some("GET, HEAD"));
        assert_eq!(p.body, None);
    }
}

#[test]
fn etag_and_last_modified_formats() {
    assert_eq!(meta(26).etag(), ETAG);
    assert_eq!(meta(26).last_modified(), MTIME_HTTP);
    let before_epoch = FileMeta {
        len: 1,
        modified: UNIX_EPOCH - Duration::from_secs(10),
    };
    assert_eq!(before_epoch.etag(), "\"0-1\"");
    assert_eq!(
        before_epoch.last_modified(),
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
    let far = FileMeta {
        len: 1,
        modified: UNIX_EPOCH + Duration::from_secs(400_000_000_000),
    };
    assert_eq!(far.last_modified(), "Fri, 31 Dec 9999 23:59:59 GMT");
}

#[test]
fn if_none_match_gives_304() {
    for inm in [
        ETAG.to_string(),
        format!("W/{ETAG}"),
        "*".to_string(),
        format!("\"other\", {ETAG}"),
        format!("W/\"x\",W/{ETAG}"),
        format!("  {ETAG}  "),
        "\"a,b\", \"6553f100-1a\"".to_string(),
    ] {
        let p = plan(&get(&[("If-None-Match", &inm)]), 26);
        assert_eq!(p.status, 304, "{inm}");
        assert_eq!(p.content_length, None);
        assert_eq!(p.body, None);
        assert_eq!(p.header("ETag"), Some(ETAG));
        assert_eq!(p.header("Content-Type"), None);
    }
    // Two field lines form one list.
    let p = plan(
        &get(&[("If-None-Match", "\"x\""), ("if-none-match", ETAG)]),
        26,
    );
    assert_eq!(p.status, 304);
    for inm in [
        "\"other\"",
        "\"6553f100-1b\"",
        "6553f100-1a",
        "\"6553f100-1a",
        "",
    ] {
        assert_eq!(
            plan(&get(&[("If-None-Match", inm)]), 26).status,
            200,
            "{inm}"
        );
    }
    let h = plan(&req("HEAD", &[("If-None-Match", ETAG)]), 26);
    assert_eq!(h.status, 304);
}

#[test]
fn if_modified_since_and_precedence() {
    assert_eq!(
        plan(&get(&[("If-Modified-Since", MTIME_HTTP)]), 26).status,
        304
    );
    // RFC 850 and asctime forms parse too.
    assert_eq!(
        plan(
            &get(&[("If-Modified-Since", "Tuesday, 14-Nov-23 22:13:20 GMT")]),
            26
        )
        .status,
        304
    );
    assert_eq!(
        plan(
            &get(&[("If-Modified-Since", "Tue Nov 14 22:13:20 2023")]),
            26
        )
        .status,
        304
    );
    let later = "Wed, 15 Nov 2023 00:00:00 GMT";
    let earlier = "Mon, 13 Nov 2023 00:00:00 GMT";
    // nginx's default is exact.
    assert_eq!(plan(&get(&[("If-Modified-Since", later)]), 26).status, 200);
    assert_eq!(
        plan(&get(&[("If-Modified-Since", "garbage")]), 26).status,
        200
    );
    let mut before = StaticLocation::root("/", "/srv");
    before.if_modified_since(IfModifiedSince::Before);
    let f = static_file("a.txt", 26);
    let now = SystemTime::now();
    assert_eq!(
        before
            .plan(&get(&[("If-Modified-Since", later)]), &f, now)
            .status,
        304
    );
    assert_eq!(
        before
            .plan(&get(&[("If-Modified-Since", earlier)]), &f, now)
            .status,
        200
    );
    let mut off = StaticLocation::root("/", "/srv");
    off.if_modified_since(IfModifiedSince::Off);
    assert_eq!(
        off.plan(&get(&[("If-Modified-Since", MTIME_HTTP)]), &f, now)
            .status,
        200
    );

    // If-None-Match present: If-Modified-Since is not evaluated (RFC 9110 §13.2.2).
    let p = plan(
        &get(&[
            ("If-None-Match", "\"other\""),
            ("If-Modified-Since", MTIME_HTTP),
        ]),
        26,
    );
    assert_eq!(p.status, 200);
    let p = plan(
        &get(&[("If-Modified-Since", earlier), ("If-None-Match", ETAG)]),
        26,
    );
    assert_eq!(p.status, 304);
}

#[test]
fn if_match_and_if_unmodified_since_give_412() {
    assert_eq!(plan(&get(&[("If-Match", "\"other\"")]), 26).status, 412);
    assert_eq!(plan(&get(&[("If-Match", ETAG)]), 26).status, 200);
    assert_eq!(plan(&get(&[("If-Match", "*")]), 26).status, 200);
    // Strong comparison: a weak tag never matches.
    assert_eq!(
        plan(&get(&[("If-Match", &format!("W/{ETAG}"))]), 26).status,
        412
    );
    let earlier = "Mon, 13 Nov 2023 00:00:00 GMT";
    assert_eq!(
        plan(&get(&[("If-Unmodified-Since", earlier)]), 26).status,
        412
    );
    assert_eq!(
        plan(&get(&[("If-Unmodified-Since", MTIME_HTTP)]), 26).status,
        200
    );
    // If-Match present: If-Unmodified-Since is ignored.
    let p = plan(
        &get(&[("If-Match", ETAG), ("If-Unmodified-Since", earlier)]),
        26,
    );
    assert_eq!(p.status, 200);
    // 412 beats 304.
    let p = plan(&get(&[("If-Match", "\"x\""), ("If-None-Match", ETAG)]), 26);
    assert_eq!(p.status, 412);
}

#[test]
fn etag_list_parser() {
    assert!(etag_list_matches(b"\"a\"", "\"a\"", false));
    assert!(!etag_list_matches(b"W/\"a\"", "\"a\"", false));
    assert!(etag_list_matches(b"W/\"a\"", "\"a\"", true));
    assert!(!etag_list_matches(b"\"a\" garbage, \"b\"", "\"b\"", true));
    assert!(!etag_list_matches(b"", "\"a\"", true));
    assert!(etag_list_matches(b" * ", "\"a\"", false));
}

fn range(value: &str, len: u64) -> ResponsePlan {
    plan(&get(&[("Range", value)]), len)
}

#[test]
fn single_ranges_give_206() {
    let cases = [
        ("bytes=0-0", 0, 1, "bytes 0-0/26"),
        ("bytes=0-9", 0, 10, "bytes 0-9/26"),
        ("bytes=10-", 10, 16, "bytes 10-25/26"),
        ("bytes=20-100", 20, 6, "bytes 20-25/26"),
        ("bytes=-5", 21, 5, "bytes 21-25/26"),
        ("bytes=-100", 0, 26, "bytes 0-25/26"),
        ("BYTES=1-2", 1, 2, "bytes 1-2/26"),
        ("bytes= 3 - 4 ", 3, 2, "bytes 3-4/26"),
        ("bytes=5-5,", 5, 1, "bytes 5-5/26"),
        ("bytes=25-25", 25, 1, "bytes 25-25/26"),
    ];
    for (value, start, len, content_range) in cases {
        let p = range(value, 26);
        assert_eq!(p.status, 206, "{value}");
        assert_eq!(p.body, Some(ByteRange { start, len }), "{value}");
        assert_eq!(p.content_length, Some(len));
        assert_eq!(p.header("Content-Range"), Some(content_range), "{value}");
        assert_eq!(p.header("ETag"), Some(ETAG));
    }
    let h = plan(&req("HEAD", &[("Range", "bytes=0-9")]), 26);
    assert_eq!((h.status, h.content_length, h.body), (206, Some(10), None));
}

#[test]
fn unsatisfiable_and_invalid_ranges_give_416() {
    for value in [
        "bytes=26-",
        "bytes=100-200",
        "bytes=-0",
        "bytes=5-2",
        "bytes=abc",
        "bytes=",
        "bytes=1",
        "bytes=-",
        "bytes=99999999999999999999-",
        "bytes=+1-2",
    ] {
        let p = range(value, 26);
        assert_eq!(p.status, 416, "{value}");
        assert_eq!(p.header("Content-Range"), Some("bytes */26"), "{value}");
        assert_eq!(p.body, None);
        assert_eq!(p.content_length, Some(0));
    }
    assert_eq!(range("bytes=0-", 0).status, 416);
}

#[test]
fn multiple_ranges_and_other_units_give_the_whole_file() {
    for value in ["bytes=0-1,3-4", "bytes=0-1, -2", "items=0-1", "0-1"] {
        let p = range(value, 26);
        assert_eq!(p.status, 200, "{value}");
        assert_eq!(p.body, Some(ByteRange { start: 0, len: 26 }));
        assert_eq!(p.header("Content-Range"), None);
    }
}

#[test]
fn if_range_guards_the_range() {
    let with = |if_range: &str| plan(&get(&[("Range", "bytes=0-1"), ("If-Range", if_range)]), 26);
    assert_eq!(with(ETAG).status, 206);
    assert_eq!(with(MTIME_HTTP).status, 206);
    assert_eq!(with("\"other\"").status, 200);
    assert_eq!(with(&format!("W/{ETAG}")).status, 200);
    assert_eq!(with("Mon, 13 Nov 2023 00:00:00 GMT").status, 200);
    assert_eq!(with("nonsense").status, 200);
}

#[test]
fn content_types() {
    let loc = StaticLocation::root("/", "/srv");
    let ct = |name: &str| loc.content_type(Path::new(name));
    assert_eq!(ct("a.html"), "text/html; charset=utf-8");
    assert_eq!(ct("a.css"), "text/css; charset=utf-8");
    assert!(ct("a.js").contains("javascript") && ct("a.js").ends_with("; charset=utf-8"));
    assert_eq!(ct("a.png"), "image/png");
    assert_eq!(ct("a.json"), "application/json");
    assert_eq!(ct("noext"), "application/octet-stream");
    assert_eq!(ct("a.unknownext"), "application/octet-stream");
    let mut no_charset = StaticLocation::root("/", "/srv");
    no_charset.charset(None);
    assert_eq!(no_charset.content_type(Path::new("a.html")), "text/html");
}

#[test]
fn precompressed_plan_fields() {
    let loc = StaticLocation::root("/", "/srv");
    let f = StaticFile {
        path: PathBuf::from("/srv/app.js.gz"),
        meta: meta(2),
        original: PathBuf::from("/srv/app.js"),
        encoding: Some(ContentCoding::Gzip),
        vary: true,
    };
    let p = loc.plan(&get(&[]), &f, SystemTime::now());
    assert_eq!(p.file, PathBuf::from("/srv/app.js.gz"));
    assert!(p.header("Content-Type").unwrap().contains("javascript"));
    assert_eq!(p.header("Content-Encoding"), Some("gzip"));
    assert_eq!(p.header("Vary"), Some("Accept-Encoding"));
    assert_eq!(p.header("ETag"), Some("\"6553f100-2\""));
    assert_eq!(p.content_length, Some(2));
    let nm = loc.plan(
        &get(&[("If-None-Match", "\"6553f100-2\"")]),
        &f,
        SystemTime::now(),
    );
    assert_eq!(nm.status, 304);
    assert_eq!(nm.header("Vary"), Some("Accept-Encoding"));
}

#[test]
fn expires_and_cache_control() {
    let f = static_file("a.txt", 26);
    let now = UNIX_EPOCH + Duration::from_secs(MTIME);
    let mut loc = StaticLocation::root("/", "/srv");
    loc.expires(Expires::After(Duration::from_secs(3600)));
    let p = loc.plan(&get(&[]), &f, now);
    assert_eq!(p.header("Cache-Control"), Some("max-age=3600"));
    assert_eq!(p.header("Expires"), Some("Tue, 14 Nov 2023 23:13:20 GMT"));
    loc.cache_control(Some("public, immutable".into()));
    let p = loc.plan(&get(&[]), &f, now);
    assert_eq!(
        p.header("Cache-Control"),
        Some("max-age=3600, public, immutable")
    );
    // 304 carries them too.
    let p = loc.plan(&get(&[("If-None-Match", ETAG)]), &f, now);
    assert_eq!(
        p.header("Cache-Control"),
        Some("max-age=3600, public, immutable")
    );
    assert!(p.header("Expires").is_some());
    // But not the 412/416 errors.
    let p = loc.plan(&get(&[("Range", "bytes=99-")]), &f, now);
    assert_eq!(p.header("Cache-Control"), None);

    loc.expires(Expires::Epoch).cache_control(None);
    let p = loc.plan(&get(&[]), &f, now);
    assert_eq!(p.header("Cache-Control"), Some("no-cache"));
    assert_eq!(p.header("Expires"), Some("Thu, 01 Jan 1970 00:00:01 GMT"));
    loc.expires(Expires::Max);
    let p = loc.plan(&get(&[]), &f, now);
    assert_eq!(p.header("Cache-Control"), Some("max-age=315360000"));
    assert_eq!(p.header("Expires"), Some("Thu, 31 Dec 2037 23:55:55 GMT"));
    loc.expires(Expires::Off)
        .cache_control(Some("no-store".into()));
    let p = loc.plan(&get(&[]), &f, now);
    assert_eq!(p.header("Cache-Control"), Some("no-store"));
    assert_eq!(p.header("Expires"), None);
    // A huge duration cannot overflow or panic.
    loc.expires(Expires::After(Duration::from_secs(u64::MAX)));
    let p = loc.plan(&get(&[]), &f, now);
    assert_eq!(p.header("Expires"), Some("Fri, 31 Dec 9999 23:59:59 GMT"));
}

#[test]
fn end_to_end_resolve_then_plan() {
    let t = tree();
    let mut loc = StaticLocation::root("/", &t.root);
    loc.gzip_static(true);
    let f = file(loc.resolve(b"/app.js", Some(b"gzip")));
    let p = loc.plan(&get(&[("Range", "bytes=0-0")]), &f, SystemTime::now());
    assert_eq!(p.status, 206);
    assert_eq!(p.file, t.root.join("app.js.gz"));
    assert_eq!(p.header("Content-Range"), Some("bytes 0-0/2"));
    let empty = file(loc.resolve(b"/empty.bin", None));
    let p = loc.plan(&get(&[]), &empty, SystemTime::now());
    assert_eq!((p.status, p.content_length, p.body), (200, Some(0), None));
}

/// Whatever path an attacker builds from traversal pieces, a resolved file is inside the
/// root (checked on the real tree, symlinks included).
#[test]
fn no_path_resolves_outside_the_root() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let t = tree();
    let root_loc = StaticLocation::root("/", &t.root);
    let alias_loc = StaticLocation::alias("/s", t.root.join("sub"));
    let pieces = prop::sample::select(vec![
        "/",
        "..",
        ".",
        "%2e",
        "%2E%2e",
        ".%2e",
        "%2f",
        "%2F",
        "a.txt",
        "sub",
        "link",
        "secret",
        "secret.txt",
        "inner-link.txt",
        "%00",
        "index.html",
        "s",
        "%20",
        "//",
        "%",
        "%5c",
        "\\",
        "only.js.gz",
        "outside",
    ]);
    let strategy = prop::collection::vec(pieces, 0..8).prop_map(|v| format!("/{}", v.concat()));
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        ..Config::default()
    });
    // (files served, forbidden, bad requests): the walk must reach all three outcomes.
    let seen = std::cell::Cell::new((0u32, 0u32, 0u32));
    runner
        .run(&strategy, |raw| {
            for loc in [&root_loc, &alias_loc] {
                let (files, forbidden, bad) = seen.get();
                match loc.resolve(raw.as_bytes(), Some(b"gzip")) {
                    Ok(Resolved::Forbidden) => seen.set((files, forbidden + 1, bad)),
                    Err(_) => seen.set((files, forbidden, bad + 1)),
                    Ok(Resolved::File(_)) => seen.set((files + 1, forbidden, bad)),
                    Ok(_) => {}
                }
                match loc.resolve(raw.as_bytes(), Some(b"gzip")) {
                    Ok(Resolved::File(f)) => {
                        prop_assert!(f.path.starts_with(&t.root), "{raw} -> {:?}", f.path);
                        prop_assert!(f.path.is_file());
                        prop_assert!(!f.path.starts_with(&t.outside));
                    }
                    Ok(_) => {}
                    Err(e) => prop_assert_eq!(e.status(), 400, "{}: {}", raw, e),
                }
            }
            Ok(())
        })
        .unwrap();
    let (files, forbidden, bad) = seen.get();
    assert!(files > 20 && forbidden > 20 && bad > 20, "{:?}", seen.get());
}

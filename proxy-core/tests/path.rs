//! Request-path decoding: nginx's `$document_uri` and the strict static-file variant.

use proxy_core::path::{PathError, document_uri, origin_form, split_target, static_path};

fn uri(raw: &str) -> Result<String, PathError> {
    document_uri(raw.as_bytes()).map(|v| String::from_utf8(v.into_owned()).unwrap())
}

fn stat(raw: &str) -> Result<String, PathError> {
    static_path(raw.as_bytes()).map(|v| String::from_utf8(v.into_owned()).unwrap())
}

#[test]
fn document_uri_matches_nginx_normalisation() {
    let cases = [
        ("/", "/"),
        ("/a", "/a"),
        ("/a/", "/a/"),
        ("//a///b", "/a/b"),
        ("/a/./b", "/a/b"),
        ("/a/.", "/a/"),
        ("/a/b/..", "/a/"),
        ("/a/b/../c", "/a/c"),
        ("/a/..", "/"),
        ("/w%20rld", "/w rld"),
        ("/caf%C3%A9", "/café"),
        ("/a%2Fb", "/a/b"),
        ("/a%2F..%2Fb", "/b"),
        ("/a/%2e%2e/b", "/b"),
        ("/a/.%2E/b", "/b"),
        ("/100%25", "/100%"),
        ("/a+b", "/a+b"),
        ("/%23x", "/#x"),
        ("/a..b/c", "/a..b/c"),
        ("/.hidden", "/.hidden"),
    ];
    for (raw, want) in cases {
        assert_eq!(uri(raw).as_deref(), Ok(want), "{raw}");
    }
}

#[test]
fn document_uri_errors() {
    assert_eq!(uri("/.."), Err(PathError::AboveRoot));
    assert_eq!(uri("/a/../.."), Err(PathError::AboveRoot));
    assert_eq!(uri("/%2e%2e/x"), Err(PathError::AboveRoot));
    assert_eq!(uri("/a%00b"), Err(PathError::Nul));
    assert_eq!(document_uri(b"/a\0b"), Err(PathError::Nul));
    assert_eq!(uri("/a%zz"), Err(PathError::BadEscape { offset: 2 }));
    assert_eq!(uri("/a%2"), Err(PathError::BadEscape { offset: 2 }));
    assert_eq!(uri("/a%"), Err(PathError::BadEscape { offset: 2 }));
    assert_eq!(uri("*"), Err(PathError::NotAbsolute));
    assert_eq!(uri(""), Err(PathError::NotAbsolute));
    assert_eq!(uri("%2Fa"), Err(PathError::NotAbsolute));
}

#[test]
fn document_uri_keeps_non_utf8_bytes() {
    assert_eq!(document_uri(b"/%FF%FE").unwrap(), vec![b'/', 0xff, 0xfe]);
}

#[test]
fn static_path_refuses_every_traversal_form() {
    for raw in [
        "/..",
        "/a/..",
        "/a/../b",
        "/%2e%2e/etc/passwd",
        "/%2E%2E/etc/passwd",
        "/.%2e/x",
        "/%2e./x",
        "/a/b/../../..",
    ] {
        assert_eq!(stat(raw), Err(PathError::DotDot), "{raw}");
    }
    for raw in ["/a%2Fb", "/a%2fb", "/%2F", "/..%2F..%2Fetc"] {
        assert_eq!(stat(raw), Err(PathError::EncodedSlash), "{raw}");
    }
    assert_eq!(stat("/a%00.txt"), Err(PathError::Nul));
    assert_eq!(stat("/bad%g0"), Err(PathError::BadEscape { offset: 4 }));
    assert_eq!(stat("a"), Err(PathError::NotAbsolute));
}

#[test]
fn static_path_normalises_harmless_forms() {
    assert_eq!(stat("/css//site.css").as_deref(), Ok("/css/site.css"));
    assert_eq!(stat("/./css/./a%20b.css").as_deref(), Ok("/css/a b.css"));
    assert_eq!(stat("/dir/").as_deref(), Ok("/dir/"));
    assert_eq!(stat("/dir/.").as_deref(), Ok("/dir/"));
    assert_eq!(stat("/a..b").as_deref(), Ok("/a..b"));
    assert_eq!(stat("/...").as_deref(), Ok("/..."));
}

#[test]
fn split_target_and_origin_form() {
    assert_eq!(split_target(b"/p"), (&b"/p"[..], None));
    assert_eq!(split_target(b"/p?"), (&b"/p"[..], Some(&b""[..])));
    assert_eq!(split_target(b"/p?a=1?b"), (&b"/p"[..], Some(&b"a=1?b"[..])));
    assert_eq!(split_target(b"/p#frag"), (&b"/p"[..], None));
    assert_eq!(split_target(b"HTTP://h/x?y"), (&b"/x"[..], Some(&b"y"[..])));
    assert_eq!(origin_form(b"https://h:443/x?y"), b"/x?y");
    assert_eq!(origin_form(b"http://h"), b"/");
    assert_eq!(origin_form(b"http://h?q"), b"/");
    assert_eq!(origin_form(b"/plain"), b"/plain");
    assert_eq!(origin_form(b"*"), b"*");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever comes in, a successful result is absolute, has no `.`/`..` segments,
        /// no `//` and no NUL; and normalising it again changes nothing.
        #[test]
        fn document_uri_output_is_normal(raw in "/[a-z./%0-9A-F]{0,24}") {
            if let Ok(out) = document_uri(raw.as_bytes()) {
                prop_assert_eq!(out[0], b'/');
                prop_assert!(!out.contains(&0));
                prop_assert!(!out.windows(2).any(|w| w == b"//"));
                for seg in out.split(|&b| b == b'/') {
                    prop_assert!(seg != b"." && seg != b"..");
                }
                // Re-encode '%' so a second pass sees the same bytes.
                let mut again = Vec::new();
                for &b in out.iter() {
                    if b == b'%' { again.extend_from_slice(b"%25") } else { again.push(b) }
                }
                prop_assert_eq!(document_uri(&again).unwrap(), out);
            }
        }

        /// static_path never yields a `..` segment and agrees with document_uri whenever
        /// it accepts.
        #[test]
        fn static_path_is_a_stricter_document_uri(raw in "/[a-z./%0-9A-F]{0,24}") {
            if let Ok(out) = static_path(raw.as_bytes()) {
                prop_assert!(!out.split(|&b| b == b'/').any(|s| s == b".."));
                prop_assert_eq!(document_uri(raw.as_bytes()).unwrap(), out);
            }
        }
    }
}

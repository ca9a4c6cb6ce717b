//! Table tests for the request-head rules of the parser checklist
//! (`reference/http1-and-proxy.md`, "Parser rules checklist", section D). One generated
//! `#[test]` per case; every case is also fed split at every byte offset.

mod support;

use http_front::{BodyLength, HeadConfig, TargetForm, UnderscorePolicy, Version};
use support::fields;

/// `req!(name, bytes, status N)` expects a refusal with status N;
/// `req!(name, bytes, |head| { ... })` expects acceptance and runs the checks.
/// `req!(name, config(cfg), ...)` does the same with a non-default [`HeadConfig`].
macro_rules! req {
    ($name:ident, $input:expr, status $status:expr) => {
        req!($name, config(HeadConfig::default()), $input, status $status);
    };
    ($name:ident, $input:expr, |$h:ident| $body:block) => {
        req!($name, config(HeadConfig::default()), $input, |$h| $body);
    };
    ($name:ident, config($cfg:expr), $input:expr, status $status:expr) => {
        #[test]
        fn $name() {
            let cfg: HeadConfig = $cfg;
            let r = support::parse_split_checked(&cfg, $input);
            assert_eq!(
                r.as_ref().err().and_then(|e| e.status()),
                Some($status),
                "{}",
                support::summary(&r)
            );
        }
    };
    ($name:ident, config($cfg:expr), $input:expr, |$h:ident| $body:block) => {
        #[test]
        fn $name() {
            let cfg: HeadConfig = $cfg;
            let $h = support::parse_split_checked(&cfg, $input)
                .unwrap_or_else(|e| panic!("refused: {e}"));
            $body
        }
    };
}

fn cfg(f: impl FnOnce(&mut HeadConfig)) -> HeadConfig {
    let mut c = HeadConfig::default();
    f(&mut c);
    c
}

// ----- Baseline -----

req!(
    simple_get,
    b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
    |h| {
        assert_eq!(h.method(), "GET");
        assert_eq!(h.target(), "/a/b?x=1&y");
        assert_eq!(h.path(), "/a/b");
        assert_eq!(h.query(), Some("x=1&y"));
        assert_eq!(h.version(), Version::Http11);
        assert_eq!(h.target_form(), TargetForm::Origin);
        assert_eq!(
            fields(&h),
            [
                ("Host".into(), "example.com".into()),
                ("Accept".into(), "*/*".into())
            ]
        );
        assert_eq!(h.host(), Some(&b"example.com"[..]));
        assert_eq!(h.body_length(), BodyLength::Empty);
        assert!(h.keep_alive());
    }
);

// ----- Rule 1: CL + TE (RFC 9112 §6.1, §6.3 item 3): 400 -----

req!(r01_cl_then_te, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", status 400);
req!(r01_te_then_cl, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", status 400);
req!(r01_cl_zero_and_te, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", status 400);

// ----- Rule 2: chunked not last (RFC 9112 §6.3 item 4): 400 -----

req!(r02_chunked_then_gzip, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", status 400);
req!(r02_chunked_line_then_other, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", status 400);
req!(r02_only_unknown, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", status 400);
req!(r02_chunked_twice, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status 400);
req!(r02_empty_te, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", status 400);
req!(
    r02_chunked_ok,
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
    |h| {
        assert_eq!(h.body_length(), BodyLength::Chunked);
    }
);

// ----- Rule 3: unknown transfer coding (RFC 9112 §6.1): 501 -----

req!(r03_gzip_chunked, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status 501);
req!(r03_gzip_line_chunked_line, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", status 501);
req!(r03_identity_chunked, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", status 501);

// ----- Rule 4: TE in HTTP/1.0 (RFC 9112 §6.1): 400 -----

req!(r04_te_http10, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status 400);

// ----- Rule 5: Content-Length syntax (RFC 9112 §6.3 item 5, RFC 9110 §8.6): 400 -----

req!(
    r05_cl_ok,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n",
    |h| {
        assert_eq!(h.body_length(), BodyLength::Length(42));
    }
);
req!(
    r05_cl_leading_zeros,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\n",
    |h| {
        assert_eq!(h.body_length(), BodyLength::Length(3));
    }
);
req!(
    r05_cl_ows_trimmed,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \t 7 \t\r\n\r\n",
    |h| {
        assert_eq!(h.body_length(), BodyLength::Length(7));
    }
);
req!(r05_cl_plus, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", status 400);
req!(r05_cl_minus, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status 400);
req!(r05_cl_list, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", status 400);
req!(r05_cl_inner_space, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4 2\r\n\r\n", status 400);
req!(r05_cl_hex, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", status 400);
req!(r05_cl_empty, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", status 400);
req!(r05_cl_overflow, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", status 400);
req!(r05_cl_differing, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", status 400);
// Identical duplicates are refused too (nginx's choice; RFC 9112 §6.3 allows either).
req!(r05_cl_identical_duplicates, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", status 400);

// ----- Rule 6: no CL and no TE (RFC 9112 §6.3 item 6): empty body -----

req!(
    r06_post_without_length,
    b"POST / HTTP/1.1\r\nHost: a\r\n\r\nGET",
    |h| {
        assert_eq!(h.body_length(), BodyLength::Empty);
    }
);
req!(
    r06_cl_zero_is_empty,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    |h| {
        assert_eq!(h.body_length(), BodyLength::Empty);
    }
);

// ----- Rule 10: bare LF in the head (RFC 9112 §2.2): 400 by default, configurable -----

req!(r10_bare_lf_request_line, b"GET / HTTP/1.1\nHost: a\r\n\r\n", status 400);
req!(r10_bare_lf_field, b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", status 400);
req!(r10_bare_lf_end, b"GET / HTTP/1.1\r\nHost: a\r\n\n", status 400);
req!(
    r10_bare_lf_allowed,
    config(cfg(|c| {
        c.allow_bare_lf(true);
    })),
    b"GET / HTTP/1.1\nHost: a\nX: y\n\n",
    |h| {
        assert_eq!(
            fields(&h),
            [("Host".into(), "a".into()), ("X".into(), "y".into())]
        );
    }
);

// ----- Rule 11: bare CR (RFC 9112 §2.2): 400 -----

req!(r11_bare_cr_in_value, b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", status 400);
req!(r11_bare_cr_request_line, b"GET / HTTP/1.1\rHost: a\r\n\r\n", status 400);
req!(r11_cr_before_lf_in_leading_line, b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", status 400);

// ----- Rule 12: leading empty lines (RFC 9112 §2.2): a few are skipped -----

req!(
    r12_leading_crlf,
    b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    |h| {
        assert_eq!(h.method(), "GET");
    }
);
req!(r12_too_many_leading_crlf, b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", status 400);

// ----- Rule 13: whitespace before the first field (RFC 9112 §2.2): 400 -----

req!(r13_space_before_first_field, b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", status 400);
req!(r13_tab_before_first_field, b"GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", status 400);

// ----- Rule 14: request line = method SP target SP version (RFC 9112 §3) -----

req!(r14_double_space, b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r14_tab_delimiter, b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r14_leading_space, b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r14_trailing_space, b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", status 400);
req!(r14_http09, b"GET /\r\n\r\n", status 400);

// ----- Rule 15: method is a case-sensitive token (RFC 9110 §9.1) -----

req!(
    r15_lowercase_method_kept,
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    |h| {
        assert_eq!(h.method(), "get");
        assert!(!h.is_head());
    }
);
req!(
    r15_extension_method,
    b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n",
    |h| {
        assert_eq!(h.method(), "PURGE");
    }
);
req!(r15_non_token_method, b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", status 400);

// ----- Rule 16: request line too long (RFC 9112 §3): 414 -----

#[test]
fn r16_request_line_over_limit() {
    let mut req = b"GET /".to_vec();
    req.extend(std::iter::repeat_n(b'a', 9000));
    req.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = support::parse_with(&HeadConfig::default(), &req);
    assert_eq!(r.unwrap_err().status(), Some(414));
}

#[test]
fn r16_request_line_over_limit_before_head_ends() {
    // 414 as soon as the line is known to be too long, not after the whole head.
    let mut parser = http_front::HeadParser::new(HeadConfig::default());
    let mut buf = bytes::BytesMut::from(&b"GET /"[..]);
    buf.extend(std::iter::repeat_n(b'a', 8200));
    assert_eq!(parser.parse(&mut buf).unwrap_err().status(), Some(414));
}

#[test]
fn r16_request_line_at_limit() {
    let mut c = HeadConfig::default();
    c.max_request_line(100);
    // "GET " + target + " HTTP/1.1" = 100 bytes exactly.
    let target = format!("/{}", "a".repeat(100 - 4 - 9 - 1));
    let ok = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(support::parse_with(&c, ok.as_bytes()).is_ok());
    let long = format!("GET {target}b HTTP/1.1\r\nHost: a\r\n\r\n");
    let e = support::parse_with(&c, long.as_bytes()).unwrap_err();
    assert_eq!(e.status(), Some(414));
}

// ----- Rule 17: no whitespace or non-ASCII in the target (RFC 9112 §3.2) -----

req!(r17_space_in_target, b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r17_utf8_in_target, "GET /\u{3b4} HTTP/1.1\r\nHost: a\r\n\r\n".as_bytes(), status 400);
req!(r17_ctl_in_target, b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", status 400);

// ----- Rule 18: target forms (RFC 9112 §3.2.1-3.2.4) -----

req!(
    r18_asterisk_options,
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    |h| {
        assert_eq!(h.target_form(), TargetForm::Asterisk);
        assert_eq!(h.path(), "*");
    }
);
req!(r18_asterisk_get, b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(
    r18_absolute_form,
    b"GET http://other.example:8080/p?q HTTP/1.1\r\nHost: ignored.example\r\n\r\n",
    |h| {
        assert_eq!(h.target_form(), TargetForm::Absolute);
        assert_eq!(h.authority(), Some("other.example:8080"));
        assert_eq!(h.host(), Some(&b"other.example:8080"[..]));
        assert_eq!(h.path(), "/p");
        assert_eq!(h.query(), Some("q"));
    }
);
req!(
    r18_absolute_empty_path,
    b"GET http://a.example?x HTTP/1.1\r\nHost: a\r\n\r\n",
    |h| {
        assert_eq!(h.path(), "/");
        assert_eq!(h.query(), Some("x"));
    }
);
req!(r18_absolute_userinfo, b"GET http://u:p@a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r18_absolute_empty_host, b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r18_absolute_other_scheme, b"GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r18_authority_form_get, b"GET a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r18_connect_refused_by_default, b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", status 501);
req!(
    r18_connect_allowed,
    config(cfg(|c| {
        c.allow_connect(true);
    })),
    b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
    |h| {
        assert_eq!(h.target_form(), TargetForm::Authority);
        assert_eq!(h.authority(), Some("a.example:443"));
    }
);
req!(r18_connect_origin_form, config(cfg(|c| { c.allow_connect(true); })), b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r18_relative_target, b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r18_fragment, b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", status 400);

// ----- Rule 19: Host (RFC 9112 §3.2) -----

req!(r19_missing_host_11, b"GET / HTTP/1.1\r\n\r\n", status 400);
req!(r19_missing_host_10_ok, b"GET / HTTP/1.0\r\n\r\n", |h| {
    assert_eq!(h.host(), None);
    assert_eq!(h.version(), Version::Http10);
});
req!(r19_duplicate_host, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status 400);
req!(r19_duplicate_host_same, b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", status 400);
req!(r19_duplicate_host_10, b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", status 400);
req!(r19_invalid_host_space, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status 400);
req!(r19_invalid_host_slash, b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", status 400);
req!(r19_invalid_host_userinfo, b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", status 400);
req!(r19_invalid_host_port, b"GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", status 400);
req!(r19_empty_host_ok, b"GET / HTTP/1.1\r\nHost:\r\n\r\n", |h| {
    assert_eq!(h.host(), Some(&b""[..]));
});
req!(
    r19_ipv6_host,
    b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    |h| {
        assert_eq!(h.host(), Some(&b"[::1]:8080"[..]));
    }
);

// ----- Rule 20: version (RFC 9112 §2.3): 505 for other HTTP/x.y, 400 for garbage -----

req!(r20_http12, b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", status 505);
req!(r20_http20, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", status 505);
req!(r20_http09_syntax, b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", status 505);
req!(r20_lowercase, b"GET / http/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r20_garbage, b"GET / HTTX/1.1\r\nHost: a\r\n\r\n", status 400);
req!(r20_http10, b"GET / HTTP/1.0\r\n\r\n", |h| {
    assert_eq!(h.version(), Version::Http10);
    assert!(!h.keep_alive());
});

// ----- Rule 21: whitespace between name and colon (RFC 9112 §5.1): 400 -----

req!(r21_space_before_colon, b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", status 400);
req!(r21_tab_before_colon, b"GET / HTTP/1.1\r\nHost: a\r\nX\t: y\r\n\r\n", status 400);

// ----- Rule 22: obs-fold (RFC 9112 §5.2): 400 -----

req!(r22_obs_fold_space, b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n", status 400);
req!(r22_obs_fold_tab, b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\tz\r\n\r\n", status 400);

// ----- Rule 23: CR/LF/NUL/CTL in values (RFC 9110 §5.5): 400; obs-text kept -----

req!(r23_nul_in_value, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", status 400);
req!(r23_vt_in_value, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n", status 400);
req!(r23_esc_in_value, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n", status 400);
req!(r23_del_in_value, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", status 400);
req!(
    r23_htab_and_obs_text_ok,
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\xffc\r\n\r\n",
    |h| {
        assert_eq!(h.field("x"), Some(&b"a\tb\xffc"[..]));
    }
);
req!(
    r23_value_ows_trimmed,
    b"GET / HTTP/1.1\r\nHost: a\r\nX: \t a b \t\r\n\r\n",
    |h| {
        assert_eq!(h.field("X"), Some(&b"a b"[..]));
    }
);
req!(r23_non_token_name, b"GET / HTTP/1.1\r\nHost: a\r\nFo@: x\r\n\r\n", status 400);
req!(r23_empty_name, b"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", status 400);

// ----- Rule 24: names with `_` (CGI collision): dropped by default -----

req!(
    r24_underscore_dropped,
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: 1\r\nX_Foo: 2\r\n\r\n",
    |h| {
        assert_eq!(
            fields(&h),
            [("Host".into(), "a".into()), ("X-Foo".into(), "1".into())]
        );
        // The raw head still holds the line, for logging.
        assert!(h.raw().windows(5).any(|w| w == b"X_Foo"));
    }
);
req!(
    r24_underscore_framing_ignored,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\nTransfer_Encoding: chunked\r\n\r\n",
    |h| {
        assert_eq!(h.body_length(), BodyLength::Empty);
    }
);
req!(
    r24_underscore_kept,
    config(cfg(|c| {
        c.underscores(UnderscorePolicy::Keep);
    })),
    b"GET / HTTP/1.1\r\nHost: a\r\nX_Foo: 2\r\n\r\n",
    |h| {
        assert_eq!(h.field("x_foo"), Some(&b"2"[..]));
    }
);
req!(r24_underscore_rejected, config(cfg(|c| { c.underscores(UnderscorePolicy::Reject); })), b"GET / HTTP/1.1\r\nHost: a\r\nX_Foo: 2\r\n\r\n", status 400);

// ----- Rules 30-31: persistence (RFC 9112 §9.3, §9.6) -----

req!(
    r30_http11_default_keep_alive,
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    |h| {
        assert!(h.keep_alive() && !h.has_close());
    }
);
req!(
    r30_http10_keep_alive,
    b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    |h| {
        assert!(h.keep_alive());
    }
);
req!(
    r31_close_token_wins_across_lines,
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
    |h| {
        assert!(!h.keep_alive() && h.has_close());
    }
);
req!(
    r31_close_in_list,
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n",
    |h| {
        assert!(!h.keep_alive());
    }
);
req!(
    r31_close_http10,
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
    |h| {
        assert!(!h.keep_alive());
    }
);
req!(
    r31_upgrade_flag,
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    |h| {
        assert!(h.is_upgrade_request());
        assert!(h.keep_alive());
    }
);

// ----- Rule 34: Expect (RFC 9110 §10.1.1) -----

req!(
    r34_expect_continue,
    b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
    |h| {
        assert!(h.expects_continue());
    }
);
req!(
    r34_expect_without_body,
    b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    |h| {
        assert!(!h.expects_continue());
    }
);
req!(
    r34_expect_ignored_on_http10,
    b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    |h| {
        assert!(!h.expects_continue());
    }
);
req!(r34_unknown_expectation, b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 3\r\n\r\n", status 417);
req!(
    r34_unknown_expectation_http10_ignored,
    b"POST / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n",
    |h| {
        assert!(!h.expects_continue());
    }
);

// ----- Limits: head bytes and field count (RFC 6585 §5): 431 -----

#[test]
fn limit_too_many_fields() {
    let mut c = HeadConfig::default();
    c.max_fields(3);
    let ok = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert!(support::parse_with(&c, ok).is_ok());
    let over = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        support::parse_with(&c, over).unwrap_err().status(),
        Some(431)
    );
}

#[test]
fn limit_many_fields_on_heap() {
    let mut c = HeadConfig::default();
    c.max_fields(300);
    let mut req = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..250 {
        req.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    assert_eq!(support::parse_with(&c, &req).unwrap().field_count(), 251);
    assert_eq!(
        support::parse_with(&HeadConfig::default(), &req)
            .unwrap_err()
            .status(),
        Some(431)
    );
}

#[test]
fn limit_head_bytes_complete() {
    let mut c = HeadConfig::default();
    c.max_head_bytes(100);
    let mut req = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    req.extend(std::iter::repeat_n(b'v', 100));
    req.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        support::parse_with(&c, &req).unwrap_err().status(),
        Some(431)
    );
}

#[test]
fn limit_head_bytes_partial() {
    // A head that never ends is refused once it passes the limit: memory stays bounded.
    let mut parser = http_front::HeadParser::new(HeadConfig::default());
    let mut buf = bytes::BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]);
    let mut status = None;
    for i in 0..10_000 {
        buf.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(20)).as_bytes());
        match parser.parse(&mut buf) {
            Ok(None) => {}
            Ok(Some(_)) => panic!("complete?"),
            Err(e) => {
                status = e.status();
                break;
            }
        }
        assert!(buf.len() <= 64 * 1024 + 64);
    }
    assert_eq!(status, Some(431));
}

// ----- Zero-copy and incremental parsing -----

#[test]
fn fields_are_slices_of_one_buffer() {
    let h = support::parse(b"GET / HTTP/1.1\r\nHost: a\r\nX: value\r\n\r\n").unwrap();
    let raw = h.raw().as_ptr() as usize..h.raw().as_ptr() as usize + h.raw().len();
    for f in h.fields() {
        assert!(raw.contains(&(f.value_bytes().as_ptr() as usize)));
        assert!(raw.contains(&(f.name_bytes().as_ptr() as usize)));
    }
    assert!(raw.contains(&(h.target_bytes().as_ptr() as usize)));
}

#[test]
fn head_in_pieces_is_not_reparsed_per_read() {
    let mut req = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..50 {
        req.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let mut parser = http_front::HeadParser::new(HeadConfig::default());
    let mut buf = bytes::BytesMut::new();
    let mut head = None;
    for piece in req.chunks(7) {
        buf.extend_from_slice(piece);
        if let Some(h) = parser.parse(&mut buf).unwrap() {
            head = Some(h);
        }
    }
    assert_eq!(head.unwrap().field_count(), 51);
    // One httparse pass on the first piece, one once the end showed up.
    assert_eq!(parser.full_parses(), 2);
}

#[test]
fn pipelined_heads_leave_the_rest() {
    let mut parser = http_front::HeadParser::new(HeadConfig::default());
    let mut buf = bytes::BytesMut::from(
        &b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3"[..],
    );
    assert_eq!(parser.parse(&mut buf).unwrap().unwrap().target(), "/1");
    assert_eq!(parser.parse(&mut buf).unwrap().unwrap().target(), "/2");
    assert!(parser.parse(&mut buf).unwrap().is_none());
    assert_eq!(&buf[..], b"GET /3");
}

// ----- Properties -----

mod properties {
    use super::*;
    use http_front::internal::{fuzz_http_head, serialize_head, summarize};
    use proptest::prelude::*;

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+.^`|~-]{1,12}"
    }

    fn value() -> impl Strategy<Value = Vec<u8>> {
        // VCHAR, SP, HTAB, obs-text; no leading/trailing whitespace (the parser trims it).
        proptest::collection::vec(
            prop_oneof![0x21u8..=0x7e, Just(b' '), Just(b'\t'), 0x80u8..=0xff],
            0..40,
        )
        .prop_map(|mut v| {
            while matches!(v.first(), Some(b' ' | b'\t')) {
                v.remove(0);
            }
            while matches!(v.last(), Some(b' ' | b'\t')) {
                v.pop();
            }
            v
        })
    }

    prop_compose! {
        fn request()(
            method in token(),
            path in "/[A-Za-z0-9._~!$&'()*+,;=:@/%-]{0,40}(\\?[A-Za-z0-9=&/?-]{0,20})?",
            http10 in any::<bool>(),
            fields in proptest::collection::vec((token(), value()), 0..12),
        ) -> (String, String, bool, Vec<(String, Vec<u8>)>) {
            // Keep the semantic fields out: this property is about syntax.
            let fields = fields
                .into_iter()
                .filter(|(n, _)| {
                    !n.contains('_')
                        && ![
                            "host", "content-length", "transfer-encoding", "connection",
                            "expect", "upgrade",
                        ]
                        .contains(&n.to_ascii_lowercase().as_str())
                })
                .collect();
            (method, path, http10, fields)
        }
    }

    proptest! {
        #[test]
        fn generated_requests_parse_to_their_fields((method, path, http10, fields) in request()) {
            let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
            let mut raw = format!("{method} {path} {version}\r\nHost: example.com\r\n").into_bytes();
            for (n, v) in &fields {
                raw.extend_from_slice(n.as_bytes());
                raw.extend_from_slice(b": ");
                raw.extend_from_slice(v);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"\r\n");
            let parsed = support::parse_with(&HeadConfig::default(), &raw);
            let method_ok = method != "CONNECT";
            prop_assume!(method_ok);
            let head = parsed.map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(head.method(), method.as_str());
            prop_assert_eq!(head.target(), path.as_str());
            let got: Vec<(String, Vec<u8>)> = head
                .fields()
                .skip(1)
                .map(|f| (f.name().to_owned(), f.value().to_vec()))
                .collect();
            prop_assert_eq!(got, fields);
            // Re-serialized, it parses to the same thing.
            let mut wire = Vec::new();
            serialize_head(&head, &mut wire);
            let again = support::parse_with(&HeadConfig::default(), &wire).unwrap();
            prop_assert_eq!(summarize(&head), summarize(&again));
        }

        /// The fuzz target's invariant on arbitrary bytes and on mutated valid requests.
        #[test]
        fn fuzz_invariant_holds_on_random_input(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            fuzz_http_head(&data);
        }

        #[test]
        fn fuzz_invariant_holds_on_mutated_requests(
            (method, path, http10, fields) in request(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        ) {
            let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
            let mut raw = vec![0u8];
            raw.extend_from_slice(format!("{method} {path} {version}\r\nHost: a\r\n").as_bytes());
            for (n, v) in &fields {
                raw.extend_from_slice(n.as_bytes());
                raw.extend_from_slice(b": ");
                raw.extend_from_slice(v);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"\r\n");
            for (at, byte) in flips {
                let at = 1 + at % (raw.len() - 1);
                raw[at] = byte;
            }
            fuzz_http_head(&raw);
        }
    }
}

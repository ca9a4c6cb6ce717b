//! Request smuggling: Transfer-Encoding variants sent together with a Content-Length (the
//! "gadgets" of defparam/smuggler, regenerated from their description). Every one must be
//! refused, or framed by exactly one rule: then the body is the Content-Length body and no
//! field named Transfer-Encoding survives to be re-serialized.

mod support;

use http_front::{BodyLength, HeadConfig};

/// The outcome of one gadget.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Refused(u16),
    /// Accepted with Content-Length framing and no Transfer-Encoding field.
    ContentLength,
}

fn request(gadget: &[u8]) -> Vec<u8> {
    let mut r = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n".to_vec();
    r.extend_from_slice(gadget);
    r.extend_from_slice(b"\r\n\r\nhello");
    r
}

/// Parses with `config` and checks the single-rule invariant.
fn outcome_with(config: &HeadConfig, gadget: &[u8]) -> Outcome {
    let input = request(gadget);
    match support::parse_split_checked(config, &input) {
        Err(e) => {
            let status = e.status().expect("refusals carry a status");
            assert!(
                matches!(status, 400 | 501),
                "unexpected status {status} for {:?}",
                gadget.escape_ascii().to_string()
            );
            Outcome::Refused(status)
        }
        Ok(head) => {
            assert_eq!(
                head.body_length(),
                BodyLength::Length(5),
                "accepted {:?} without Content-Length framing",
                gadget.escape_ascii().to_string()
            );
            assert!(
                head.fields()
                    .all(|f| !f.name().eq_ignore_ascii_case("transfer-encoding")),
                "accepted {:?} with a Transfer-Encoding field beside Content-Length",
                gadget.escape_ascii().to_string()
            );
            Outcome::ContentLength
        }
    }
}

fn outcome(gadget: &[u8]) -> Outcome {
    outcome_with(&HeadConfig::default(), gadget)
}

macro_rules! gadget {
    ($name:ident, $gadget:expr, $want:expr) => {
        #[test]
        fn $name() {
            assert_eq!(outcome($gadget), $want);
        }
    };
}

use Outcome::*;

gadget!(plain, b"Transfer-Encoding: chunked", Refused(400));
gadget!(
    chunked_comma_x,
    b"Transfer-Encoding: chunked, x",
    Refused(400)
);
gadget!(
    x_comma_chunked,
    b"Transfer-Encoding: x, chunked",
    Refused(400)
);
gadget!(
    leading_space_value,
    b"Transfer-Encoding:  chunked",
    Refused(400)
);
gadget!(
    leading_tab_value,
    b"Transfer-Encoding:\tchunked",
    Refused(400)
);
gadget!(
    trailing_space_value,
    b"Transfer-Encoding: chunked ",
    Refused(400)
);
gadget!(
    space_before_colon,
    b"Transfer-Encoding : chunked",
    Refused(400)
);
gadget!(
    tab_before_colon,
    b"Transfer-Encoding\t: chunked",
    Refused(400)
);
gadget!(
    vertical_tab_value,
    b"Transfer-Encoding:\x0bchunked",
    Refused(400)
);
gadget!(
    form_feed_value,
    b"Transfer-Encoding:\x0cchunked",
    Refused(400)
);
gadget!(
    nul_in_value,
    b"Transfer-Encoding: chunked\x00",
    Refused(400)
);
gadget!(cr_in_value, b"Transfer-Encoding: chu\rnked", Refused(400));
gadget!(
    duplicate_lines,
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    Refused(400)
);
gadget!(
    duplicate_with_identity,
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
    Refused(400)
);
gadget!(uppercase, b"TRANSFER-ENCODING: CHUNKED", Refused(400));
gadget!(quoted, b"Transfer-Encoding: \"chunked\"", Refused(400));
gadget!(obs_fold, b"Transfer-Encoding:\r\n chunked", Refused(400));
gadget!(
    obs_fold_after_other,
    b"X: y\r\n Transfer-Encoding: chunked",
    Refused(400)
);
gadget!(
    bare_cr_before_name,
    b"X: X\rTransfer-Encoding: chunked",
    Refused(400)
);
gadget!(
    bare_lf_before_name,
    b"X: X\nTransfer-Encoding: chunked",
    Refused(400)
);
gadget!(
    leading_space_line,
    b" Transfer-Encoding: chunked",
    Refused(400)
);
gadget!(
    underscore_name,
    b"Transfer_Encoding: chunked",
    ContentLength
);
gadget!(
    prefixed_name,
    b"X-Transfer-Encoding: chunked",
    ContentLength
);
gadget!(
    non_ascii_in_name,
    b"Transfer-Encod\xc3\xafng: chunked",
    Refused(400)
);
gadget!(
    chunked_with_param,
    b"Transfer-Encoding: chunked;a=b",
    Refused(400)
);
gadget!(
    chunkedchunked,
    b"Transfer-Encoding: chunkedchunked",
    Refused(400)
);
gadget!(empty_value, b"Transfer-Encoding:", Refused(400));
gadget!(second_content_length, b"Content-Length: 6", Refused(400));
gadget!(content_length_list, b"Content-Length: 5", Refused(400));

#[test]
fn bare_lf_gadget_with_bare_lf_allowed_is_still_refused() {
    let mut config = HeadConfig::default();
    config.allow_bare_lf(true);
    assert_eq!(
        outcome_with(&config, b"X: X\nTransfer-Encoding: chunked"),
        Refused(400)
    );
}

#[test]
fn te_without_content_length_is_chunked() {
    let head = support::parse(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    assert_eq!(head.body_length(), BodyLength::Chunked);
}

/// Every byte 0x00-0xFF inserted at the spots smuggler's templates use: each variant is
/// refused or framed by Content-Length alone.
#[test]
fn every_byte_at_every_spot() {
    let templates: &[(&[u8], &[u8])] = &[
        (b"", b"Transfer-Encoding: chunked"),
        (b"Transfer-Encoding", b": chunked"),
        (b"Transfer-Encoding:", b"chunked"),
        (b"Transfer-Encoding: chunked", b""),
        (b"Transfer-Encoding: chun", b"ked"),
        (b"Transfer-", b"Encoding: chunked"),
        (b"X: y", b"Transfer-Encoding: chunked"),
    ];
    let mut refused = 0;
    let mut content_length = 0;
    for (before, after) in templates {
        for byte in 0..=255u8 {
            let mut gadget = before.to_vec();
            gadget.push(byte);
            gadget.extend_from_slice(after);
            match outcome(&gadget) {
                Refused(_) => refused += 1,
                ContentLength => content_length += 1,
            }
        }
    }
    assert_eq!(refused + content_length, templates.len() * 256);
    // Most variants still name Transfer-Encoding and are refused.
    assert!(
        refused > content_length,
        "{refused} refused, {content_length} CL-framed"
    );
}

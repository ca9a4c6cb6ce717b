//! Arbitrary bytes into the uwsgi request decoder. Asserts, beyond "no panic":
//! - every Body frame is non-empty and a Request is followed by exactly one BodyEnd;
//! - without a chunked body or an error, re-encoding the frames plus the undecoded rest
//!   gives back the input byte for byte (consumed + remaining == input);
//! - re-encoding a request's decoded pairs reproduces its header and vars block exactly;
//! - the borrowed parser and the owned parser agree.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Encoder;
use uwsgi_proto::{
    BodyKind, Frame, Limits, RequestDecoder, UwsgiCodec, Vars, encode_request,
};

fuzz_target!(|data: &[u8]| {
    // Feed in two pieces at a data-chosen split, to exercise partial input.
    let split = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let mut decoder = RequestDecoder::new();
    let mut src = BytesMut::from(&data[..split]);
    let mut frames = Vec::new();
    let mut failed = false;
    let mut fed_all = false;
    loop {
        match decoder.decode(&mut src) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) if !fed_all => {
                src.extend_from_slice(&data[split..]);
                fed_all = true;
            }
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !fed_all {
        src.extend_from_slice(&data[split..]);
    }

    let mut chunked = false;
    let mut open_request = false;
    for frame in &frames {
        match frame {
            Frame::Request(head) => {
                assert!(!open_request, "request inside a request");
                open_request = true;
                chunked |= head.body == BodyKind::Chunked;
                let pairs: Vec<(&[u8], &[u8])> = head.vars.iter().collect();
                let mut again = BytesMut::new();
                encode_request(head.header.modifier1, head.header.modifier2, &pairs, &mut again)
                    .expect("decoded pairs re-encode");
                assert_eq!(&again[..4], &head.header.encode()[..]);
                assert_eq!(&again[4..], &head.vars.as_bytes()[..]);
                let borrowed = Vars::parse(head.vars.as_bytes(), &Limits::default())
                    .expect("a decoded block parses again");
                assert!(borrowed.iter().eq(head.vars.iter()));
            }
            Frame::Body(b) => {
                assert!(open_request, "body outside a request");
                assert!(!b.is_empty(), "empty body frame");
            }
            Frame::BodyEnd { .. } => {
                assert!(open_request, "body end outside a request");
                open_request = false;
            }
            Frame::Packet(p) => {
                assert!(!open_request, "packet inside a request");
                assert_eq!(usize::from(p.header.datasize), p.payload.len());
            }
        }
    }

    if !failed && !chunked {
        let mut codec = UwsgiCodec::new();
        let mut out = BytesMut::new();
        for frame in frames {
            codec.encode(frame, &mut out).expect("decoded frames re-encode");
        }
        out.extend_from_slice(&src);
        assert_eq!(&out[..], data, "consumed + remaining != input");
    }
});

//! Property tests: encode → decode is the identity; decoding arbitrary bytes never panics and
//! accounts for every byte.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::Encoder;
use uwsgi_proto::{
    BodyKind, EncodeError, Frame, Limits, Modifier1, OwnedVars, RequestDecoder, UwsgiCodec, Vars,
    encode_request, vars_len,
};

fn pairs() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 1..40),
            prop::collection::vec(any::<u8>(), 0..200),
        ),
        1..40,
    )
}

fn request_modifier() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![0u8, 5, 6, 7, 8, 9, 14, 15, 30])
}

/// Decodes everything in `input`; returns the frames, whether it stopped on an error, and
/// the undecoded rest.
fn decode_all(input: &[u8]) -> (Vec<Frame>, bool, BytesMut) {
    let mut decoder = RequestDecoder::new();
    let mut src = BytesMut::from(input);
    let mut frames = Vec::new();
    loop {
        match decoder.decode(&mut src) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, false, src),
            Err(_) => return (frames, true, src),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_is_identity(pairs in pairs(), m1 in request_modifier(), m2 in any::<u8>()) {
        let mut dst = BytesMut::new();
        encode_request(Modifier1(m1), m2, &pairs, &mut dst).unwrap();
        prop_assert_eq!(dst.len(), 4 + vars_len(&pairs));

        let vars = Vars::parse(&dst[4..], &Limits::default()).unwrap();
        let decoded: Vec<(Vec<u8>, Vec<u8>)> =
            vars.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        prop_assert_eq!(&decoded, &pairs);

        let owned = OwnedVars::parse(Bytes::copy_from_slice(&dst[4..]), &Limits::default()).unwrap();
        prop_assert!(owned.iter().eq(vars.iter()));

        let expected_body = BodyKind::from_vars(vars.iter(), &Limits::default());
        let mut decoder = RequestDecoder::new();
        let mut src = dst.clone();
        match decoder.decode(&mut src) {
            Ok(Some(Frame::Request(head))) => {
                prop_assert_eq!(head.header.modifier1, Modifier1(m1));
                prop_assert_eq!(head.header.modifier2, m2);
                prop_assert!(head.vars.iter().eq(vars.iter()));
                prop_assert_eq!(Ok(head.body), expected_body);
            }
            Err(e) => prop_assert_eq!(Err(e), expected_body),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn oversize_blocks_are_refused_not_truncated(extra in 0usize..300, n in 1usize..4) {
        // n pairs whose total is just over 65535.
        let each = (65536 + extra) / n;
        let value = vec![b'v'; each.saturating_sub(5)];
        let pairs: Vec<(&[u8], &[u8])> = (0..n).map(|_| (&b"K"[..], &value[..])).collect();
        let size = vars_len(&pairs);
        let mut dst = BytesMut::new();
        let result = encode_request(Modifier1::WSGI, 0, &pairs, &mut dst);
        if size > 65535 {
            prop_assert_eq!(result, Err(EncodeError::PayloadTooLarge { size }));
            prop_assert!(dst.is_empty());
        } else {
            prop_assert!(result.is_ok());
            prop_assert_eq!(dst.len(), 4 + size);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_every_byte_is_accounted_for(
        input in prop::collection::vec(any::<u8>(), 0..600)
    ) {
        check_accounting(&input)?;
    }

    #[test]
    fn mutated_valid_streams_never_panic_and_every_byte_is_accounted_for(
        pairs in pairs(),
        body in prop::collection::vec(any::<u8>(), 0..100),
        flip_at in any::<prop::sample::Index>(),
        flip_to in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut input = BytesMut::new();
        let len = body.len().to_string();
        let mut with_len = pairs.clone();
        with_len.push((b"CONTENT_LENGTH".to_vec(), len.into_bytes()));
        encode_request(Modifier1::WSGI, 0, &with_len, &mut input).unwrap();
        input.extend_from_slice(&body);
        let mut input = input.to_vec();
        let at = flip_at.index(input.len());
        input[at] = flip_to;
        let end = cut.index(input.len() + 1);
        check_accounting(&input[..end])?;
    }
}

/// Re-encoding the frames and appending what was left must give back the input exactly,
/// unless decoding stopped on an error or a chunked body (whose framing is not kept).
fn check_accounting(input: &[u8]) -> Result<(), TestCaseError> {
    let (frames, failed, rest) = decode_all(input);
    let chunked = frames
        .iter()
        .any(|f| matches!(f, Frame::Request(h) if h.body == BodyKind::Chunked));
    let mut codec = UwsgiCodec::new();
    let mut out = BytesMut::new();
    for frame in frames {
        if let Frame::Body(b) = &frame {
            prop_assert!(!b.is_empty());
        }
        codec.encode(frame, &mut out).unwrap();
    }
    if !failed && !chunked {
        out.extend_from_slice(&rest);
        prop_assert_eq!(&out[..], input);
    } else {
        prop_assert!(rest.len() <= input.len());
    }
    Ok(())
}

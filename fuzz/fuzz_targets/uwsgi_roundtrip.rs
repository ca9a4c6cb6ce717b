//! Arbitrary pairs through the encoder and back. Asserts that encoding succeeds exactly when
//! the block fits in 65535 bytes and no key is empty, that nothing is written on refusal, and
//! that decoding gives back the pairs, modifiers and body framing.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use uwsgi_proto::{
    BodyKind, EncodeError, Frame, Limits, Modifier1, RequestDecoder, encode_request, vars_len,
};

fuzz_target!(|input: (u8, u8, Vec<(Vec<u8>, Vec<u8>)>)| {
    let (m1, m2, pairs) = input;
    let mut dst = BytesMut::new();
    let result = encode_request(Modifier1(m1), m2, &pairs, &mut dst);
    let size = vars_len(&pairs);
    if size > 65535 {
        assert_eq!(result, Err(EncodeError::PayloadTooLarge { size }));
        assert!(dst.is_empty());
        return;
    }
    if pairs.iter().any(|(k, _)| k.is_empty()) {
        assert_eq!(result, Err(EncodeError::EmptyKey));
        assert!(dst.is_empty());
        return;
    }
    result.expect("encodable pairs");
    assert_eq!(dst.len(), 4 + size);

    let mut limits = Limits::default();
    limits.max_vars = usize::MAX;
    // Exact round trips for every modifier: the foreign-protocol heuristic is a server's
    // policy and can (by design) claim packets whose header spells `GET ` or a TLS record.
    limits.sniff_foreign = false;
    let mut decoder = RequestDecoder::with_limits(limits);
    let mut src = dst.clone();
    let decoded = decoder.decode(&mut src);
    let modifier1 = Modifier1(m1);
    if !modifier1.is_request() {
        let Ok(Some(Frame::Packet(p))) = decoded else {
            panic!("not a packet: {decoded:?}")
        };
        assert_eq!((p.header.modifier1, p.header.modifier2), (modifier1, m2));
        assert_eq!(&p.payload[..], &dst[4..]);
        return;
    }
    if pairs.is_empty() {
        assert_eq!(decoded, Err(uwsgi_proto::Error::EmptyRequest));
        return;
    }
    let expected_body =
        BodyKind::from_vars(pairs.iter().map(|(k, v)| (&k[..], &v[..])), &limits);
    match (decoded, expected_body) {
        (Ok(Some(Frame::Request(head))), Ok(body)) => {
            assert_eq!((head.header.modifier1, head.header.modifier2), (modifier1, m2));
            assert_eq!(head.body, body);
            let got: Vec<(&[u8], &[u8])> = head.vars.iter().collect();
            let want: Vec<(&[u8], &[u8])> =
                pairs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
            assert_eq!(got, want);
        }
        (Err(e), Err(want)) => assert_eq!(e, want),
        (got, want) => panic!("decoded {got:?}, framing {want:?}"),
    }
});

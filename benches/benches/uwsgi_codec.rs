//! uwsgi packet decode and encode against httparse on the same request.
//!
//! Run: `cargo bench -p ferrule-benches --bench uwsgi_codec`. The ratio that matters is
//! `decode/*` against `decode/httparse` in the same group (target: ≥ 3× faster, ≥ 2 GB/s).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ferrule_benches::{BROWSER_HTTP_REQUEST, BROWSER_VARS, browser_packet};
use uwsgi_proto::{Frame, Header, Limits, Modifier1, RequestDecoder, Vars, encode_request};

fn decode(c: &mut Criterion) {
    let packet = browser_packet();
    let limits = Limits::default();
    let mut group = c.benchmark_group("decode");

    group.throughput(Throughput::Bytes(packet.len() as u64));
    group.bench_function("uwsgi_borrowed", |b| {
        b.iter(|| {
            let packet = black_box(&packet[..]);
            let header = Header::decode(packet).unwrap();
            let vars = Vars::parse(&packet[4..4 + usize::from(header.datasize)], &limits).unwrap();
            black_box(vars.get(b"PATH_INFO"));
            vars.len()
        })
    });
    group.bench_function("uwsgi_owned_stream", |b| {
        let mut decoder = RequestDecoder::new();
        b.iter_batched_ref(
            || BytesMut::from(&packet[..]),
            |src| match decoder.decode(src) {
                Ok(Some(Frame::Request(head))) => {
                    // Reset for the next iteration: the empty body's BodyEnd.
                    let end = decoder.decode(src);
                    debug_assert!(matches!(end, Ok(Some(Frame::BodyEnd { .. }))));
                    head.vars.len()
                }
                other => panic!("{other:?}"),
            },
            BatchSize::SmallInput,
        )
    });

    group.throughput(Throughput::Bytes(BROWSER_HTTP_REQUEST.len() as u64));
    group.bench_function("httparse", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let status = req.parse(black_box(BROWSER_HTTP_REQUEST)).unwrap();
            black_box(req.path);
            black_box(status.is_complete());
            req.headers.len()
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let packet = browser_packet();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes(packet.len() as u64));
    group.bench_function("uwsgi_request", |b| {
        let mut dst = BytesMut::with_capacity(1024);
        b.iter(|| {
            dst.clear();
            encode_request(Modifier1::WSGI, 0, black_box(BROWSER_VARS), &mut dst).unwrap();
            dst.len()
        })
    });
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);

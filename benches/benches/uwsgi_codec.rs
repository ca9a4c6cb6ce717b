//! uwsgi packet decode and encode against httparse on the same request.
//!
//! Run: `cargo bench -p ferrule-benches --bench uwsgi_codec`. The ratio that matters is
//! `decode/*` against `decode/httparse` in the same group (target: ≥ 3× faster, ≥ 2 GB/s).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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
    group.bench_function("uwsgi_stream", |b| {
        // Packets back to back in one read buffer, as a socket read leaves them; the
        // buffer is built outside the timed part.
        b.iter_custom(|iters| {
            let mut stream = BytesMut::with_capacity(iters as usize * packet.len());
            for _ in 0..iters {
                stream.extend_from_slice(&packet);
            }
            let mut decoder = RequestDecoder::new();
            let start = std::time::Instant::now();
            while let Some(frame) = decoder.decode(&mut stream).unwrap() {
                if let Frame::Request(head) = frame {
                    black_box(head.vars.len());
                }
            }
            start.elapsed()
        })
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

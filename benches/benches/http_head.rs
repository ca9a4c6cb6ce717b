//! Request head parsing: `http_front::HeadParser` (httparse + policy checks + zero-copy
//! freeze) against bare httparse on the same inputs, in one group so the ratio is read off one
//! run (target: our checks add at most 1.5x httparse's time; `http_front` is the comparison,
//! `http_front+read_copy` adds the socket read's copy into the buffer for reference). Plus chunked body decoding
//! throughput through `http_front::body::BodyDecoder` (uwsgi_proto's strict decoder).
//!
//! The two requests are httparse's own bench fixtures (`benches/parse.rs`): a 68-byte
//! HTTP/1.0 request and a 720-byte browser request.

use std::hint::black_box;
use std::mem::MaybeUninit;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use http_front::body::{BodyDecoder, BodyEvent};
use http_front::{BodyConfig, BodyLength, HeadConfig, HeadParser};

/// Read buffers filled per timed batch. A batch this small stays in L1/L2 cache, as a read
/// buffer the kernel has just written does in a server (and as httparse's input, one static
/// slice, does above); criterion's `SmallInput` batches ran to tens of thousands of buffers
/// (megabytes), so each parse read its input from far caches or DRAM.
const HOT_BATCH: u64 = 64;

const REQ_SHORT: &[u8] = b"\
GET / HTTP/1.0\r\n\
Host: example.com\r\n\
Cookie: session=60; user_id=1\r\n\r\n";

const REQ: &[u8] = b"\
GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n\
Host: www.kittyhell.com\r\n\
User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.6; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n\
Accept-Encoding: gzip,deflate\r\n\
Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n\
Keep-Alive: 115\r\n\
Connection: keep-alive\r\n\
Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral|padding=under256\r\n\r\n";

fn http_head(c: &mut Criterion) {
    assert_eq!(REQ_SHORT.len(), 68);
    assert_eq!(REQ.len(), 720);
    for (name, req) in [("68B", REQ_SHORT), ("720B", REQ)] {
        let mut group = c.benchmark_group(format!("http_head/{name}"));
        group.throughput(Throughput::Bytes(req.len() as u64));
        group.bench_function("httparse", |b| {
            b.iter(|| {
                let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 100];
                let mut r = httparse::Request::new(&mut []);
                let status = httparse::ParserConfig::default()
                    .parse_request_with_uninit_headers(&mut r, black_box(req), &mut headers)
                    .expect("valid fixture");
                assert!(status.is_complete());
                black_box(r.headers.len())
            })
        });
        // Like httparse above, the request is already in memory: each input is a read
        // buffer in its steady state holding the request (filled outside the timing); the
        // timed part is parse + policy + split/freeze and dropping the head.
        let mut parser = HeadParser::new(HeadConfig::default());
        group.bench_function("http_front", |b| {
            b.iter_batched_ref(
                || {
                    let mut buf = read_buffer(req.len());
                    buf.extend_from_slice(req);
                    buf
                },
                |buf| {
                    let head = parser
                        .parse(black_box(buf))
                        .expect("valid fixture")
                        .expect("complete fixture");
                    // Observed in place (a move would only measure the copy), dropped here.
                    black_box(&head);
                },
                BatchSize::NumIterations(HOT_BATCH),
            )
        });
        // The same with the socket read's copy into one reused buffer inside the timing.
        let mut buf = read_buffer(16 * 1024);
        group.bench_function("http_front+read_copy", |b| {
            b.iter(|| {
                buf.extend_from_slice(req);
                let head = parser
                    .parse(black_box(&mut buf))
                    .expect("valid fixture")
                    .expect("complete fixture");
                black_box(&head);
            })
        });
        group.finish();
    }
}

/// A connection's read buffer in its steady state: after the first head of a connection was
/// split off, the buffer is shared, so later splits cost a reference count increment rather
/// than the one-time promotion allocation (as on every request of a keep-alive connection
/// but the first). `capacity` in bytes.
fn read_buffer(capacity: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(capacity);
    drop(buf.split_to(0));
    buf
}

fn chunked_wire(chunk: usize, total: usize) -> BytesMut {
    let data = vec![b'x'; chunk];
    let mut wire = BytesMut::new();
    for _ in 0..total / chunk {
        uwsgi_proto::chunked::encode_chunk(&data, &mut wire);
    }
    uwsgi_proto::chunked::encode_last_chunk(b"", &mut wire);
    wire
}

fn chunked_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunked_decode");
    for chunk in [64usize, 4096, 64 * 1024] {
        let wire = chunked_wire(chunk, 1024 * 1024);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(format!("1MiB_in_{chunk}B_chunks"), |b| {
            b.iter_batched_ref(
                || wire.clone(),
                |buf| {
                    let mut d = BodyDecoder::new(BodyLength::Chunked, &BodyConfig::default())
                        .expect("chunked has no length check");
                    let mut n = 0;
                    while let Some(ev) = d.decode(buf).expect("valid fixture") {
                        match ev {
                            BodyEvent::Data(data) => n += data.len(),
                            BodyEvent::End(_) => break,
                        }
                    }
                    black_box(n)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, http_head, chunked_decode);
criterion_main!(benches);

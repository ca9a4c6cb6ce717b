//! Runs one codec operation N times, for instruction counting under callgrind:
//!
//! ```sh
//! cargo build --release -p ferrule-benches --example codec_icount
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/codec_icount decode_owned 100000
//! ```
//!
//! Instructions per operation = (count for N - count for 0) / N. Unlike wall-clock time,
//! the count does not change with the load on the machine, so the ratio between operations
//! is stable on a shared 2-core host. `scripts/codec-icount.sh` runs the whole table.
//! `decode_stream` is measured against `stream_setup` (same buffer, not decoded).

use std::hint::black_box;

use bytes::BytesMut;
use ferrule_benches::{BROWSER_HTTP_REQUEST, BROWSER_VARS, browser_packet};
use uwsgi_proto::{Frame, Header, Limits, Modifier1, RequestDecoder, Vars, encode_request};

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().expect("usage: codec_icount OP N");
    let n: usize = args.next().and_then(|n| n.parse().ok()).expect("N");
    let packet = browser_packet();
    let limits = Limits::default();
    // The read buffer a server reuses: refilled with the packet for each request.
    let mut read_buf = BytesMut::with_capacity(64 * 1024);
    let mut decoder = RequestDecoder::new();
    let mut out = BytesMut::with_capacity(4096);
    let mut total = 0usize;
    // decode_stream: n packets back to back in one buffer, as a socket read would leave
    // them; `stream_setup` builds the same buffer without decoding, to subtract.
    if op == "decode_stream" || op == "stream_setup" {
        let mut stream = BytesMut::with_capacity(n * packet.len());
        for _ in 0..n {
            stream.extend_from_slice(&packet);
        }
        if op == "decode_stream" {
            while let Ok(Some(frame)) = decoder.decode(&mut stream) {
                if let Frame::Request(head) = frame {
                    total += head.vars.len();
                }
            }
        }
        black_box((total, stream));
        return;
    }
    for _ in 0..n {
        total += match op.as_str() {
            "decode_borrowed" => {
                let p = black_box(&packet[..]);
                let h = Header::decode(p).unwrap();
                Vars::parse(&p[4..4 + usize::from(h.datasize)], &limits)
                    .unwrap()
                    .len()
            }
            "decode_owned" => {
                read_buf.extend_from_slice(black_box(&packet[..]));
                let Ok(Some(Frame::Request(head))) = decoder.decode(&mut read_buf) else {
                    panic!("not a request")
                };
                let Ok(Some(Frame::BodyEnd { .. })) = decoder.decode(&mut read_buf) else {
                    panic!("no body end")
                };
                black_box(&head);
                head.vars.len()
            }
            "httparse" => {
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut req = httparse::Request::new(&mut headers);
                req.parse(black_box(BROWSER_HTTP_REQUEST)).unwrap();
                req.headers.len()
            }
            "encode" => {
                out.clear();
                encode_request(Modifier1::WSGI, 0, black_box(BROWSER_VARS), &mut out).unwrap();
                out.len()
            }
            other => panic!("unknown op {other}"),
        };
    }
    black_box(total);
}

//! Runs HTTP head parsing N times, for instruction counting under callgrind (see
//! `codec_icount.rs`): `httparse_68`, `front_68`, `httparse_720`, `front_720`.
//! `front_*` includes the copy into the read buffer and drops the head unread, as the
//! criterion bench does.

use std::hint::black_box;
use std::mem::MaybeUninit;

use bytes::BytesMut;
use http_front::{HeadConfig, HeadParser};

const REQ_SHORT: &[u8] =
    b"GET / HTTP/1.0\r\nHost: example.com\r\nCookie: session=60; user_id=1\r\n\r\n";

const REQ: &[u8] = b"GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n\
Host: www.kittyhell.com\r\n\
User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.6; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n\
Accept-Encoding: gzip,deflate\r\n\
Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n\
Keep-Alive: 115\r\n\
Connection: keep-alive\r\n\
Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral|padding=under256\r\n\r\n";

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().expect("usage: http_icount OP N");
    let n: usize = args.next().and_then(|n| n.parse().ok()).expect("N");
    let req = if op.ends_with("_68") { REQ_SHORT } else { REQ };
    assert!(REQ_SHORT.len() == 68 && REQ.len() == 720);
    let mut parser = HeadParser::new(HeadConfig::default());
    let mut buf = BytesMut::with_capacity(16 * 1024);
    drop(buf.split_to(0));
    let mut total = 0usize;
    for _ in 0..n {
        if op.starts_with("httparse") {
            let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 100];
            let mut r = httparse::Request::new(&mut []);
            httparse::ParserConfig::default()
                .parse_request_with_uninit_headers(&mut r, black_box(req), &mut headers)
                .expect("valid fixture");
            total += r.headers.len();
        } else {
            buf.extend_from_slice(req);
            let head = parser
                .parse(black_box(&mut buf))
                .expect("valid")
                .expect("complete");
            black_box(&head);
            total += 1;
        }
    }
    black_box(total);
}

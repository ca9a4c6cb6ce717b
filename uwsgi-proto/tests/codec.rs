//! `UwsgiCodec` over real tokio streams, and the Decoder buffer contract.

mod support;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Decoder, FramedRead, FramedWrite};
use uwsgi_proto::{BodyKind, CodecError, Error, Frame, UwsgiCodec};

#[tokio::test]
async fn frames_over_a_unix_stream_written_in_small_pieces() {
    let (client, server) = tokio::net::UnixStream::pair().unwrap();
    let stream = support::post_stream(&vec![7u8; 100_000]);
    let writer = tokio::spawn(async move {
        let mut client = client;
        for piece in stream.chunks(997) {
            client.write_all(piece).await.unwrap();
        }
        client
    });
    let mut frames = FramedRead::new(server, UwsgiCodec::new());
    let Some(Ok(Frame::Request(head))) = frames.next().await else {
        panic!("no head")
    };
    assert_eq!(head.body, BodyKind::Length(100_000));
    let mut body = 0;
    loop {
        match frames.next().await.unwrap().unwrap() {
            Frame::Body(b) => body += b.len(),
            Frame::BodyEnd { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(body, 100_000);
    // The peer closes cleanly between packets: the stream ends without an error.
    drop(writer.await.unwrap());
    assert!(frames.next().await.is_none());
}

#[tokio::test]
async fn encoder_and_decoder_agree_over_a_stream() {
    let (a, b) = tokio::net::UnixStream::pair().unwrap();
    let mut input = BytesMut::from(&support::router_chunked_stream()[..]);
    let mut decoder = UwsgiCodec::new();
    let mut sent = Vec::new();
    while let Some(frame) = decoder.decode(&mut input).unwrap() {
        sent.push(frame);
    }
    let mut sink = FramedWrite::new(a, UwsgiCodec::new());
    for frame in sent.clone() {
        sink.send(frame).await.unwrap();
    }
    drop(sink);
    let received: Vec<Frame> = FramedRead::new(b, UwsgiCodec::new())
        .map(|f| f.unwrap())
        .collect()
        .await;
    assert_eq!(received, sent);
}

#[tokio::test]
async fn truncated_stream_is_an_error_and_http_is_named() {
    let (mut client, server) = tokio::net::UnixStream::pair().unwrap();
    let stream = support::post_stream(b"0123456789");
    client.write_all(&stream[..stream.len() - 3]).await.unwrap();
    drop(client);
    let mut frames = FramedRead::new(server, UwsgiCodec::new());
    assert!(matches!(frames.next().await, Some(Ok(Frame::Request(_)))));
    assert!(matches!(frames.next().await, Some(Ok(Frame::Body(_)))));
    assert!(matches!(
        frames.next().await,
        Some(Err(CodecError::Protocol(Error::UnexpectedEof)))
    ));

    let (mut client, server) = tokio::net::UnixStream::pair().unwrap();
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut frames = FramedRead::new(server, UwsgiCodec::new());
    let err = frames.next().await.unwrap().unwrap_err();
    assert!(matches!(err, CodecError::Protocol(Error::LooksLikeHttp)));
    assert!(err.to_string().contains("HTTP"), "{err}");
}

#[test]
fn decoder_reserves_what_it_needs_next() {
    let stream = support::post_stream(&[1u8; 50_000]);
    let mut codec = UwsgiCodec::new();
    // Only the header: room for the whole vars block is reserved.
    let mut src = BytesMut::from(&stream[..4]);
    assert!(codec.decode(&mut src).unwrap().is_none());
    let datasize = usize::from(u16::from_le_bytes([stream[1], stream[2]]));
    assert!(
        src.capacity() >= 4 + datasize,
        "capacity {}",
        src.capacity()
    );
    // After the head, body room is reserved (bounded: at most 8 KiB at a time).
    let mut src = BytesMut::from(&stream[..4 + datasize]);
    assert!(matches!(
        codec.decode(&mut src).unwrap(),
        Some(Frame::Request(_))
    ));
    assert!(codec.decode(&mut src).unwrap().is_none());
    assert!(src.capacity() >= 8 * 1024 && src.capacity() < 64 * 1024);
}

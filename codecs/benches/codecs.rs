//! Decode and encode cost of each codec, on the same frames the load
//! generator sends (`cargo bench -p metaproxy-codecs`): Dubbo hessian2
//! (100 B and 16 KiB arguments, with and without an attachment mutation),
//! Thrift framed binary, framed compact and THeader binary, and HTTP
//! request-head metadata extraction.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use metaproxy_codecs::dubbo::DubboCodecFactory;
use metaproxy_codecs::http::metadata::request_metadata;
use metaproxy_codecs::thrift::ThriftCodecFactory;
use metaproxy_core::{Codec, CodecOptions, Decoder, Mutation, ProtocolCodecFactory};
use metaproxy_loadgen::echo::{Handler, dubbo::DubboEcho, thrift::ThriftEcho};
use metaproxy_loadgen::proto::{ClientProto, dubbo::DubboClient, thrift::ThriftClient};
use metaproxy_loadgen::thrift_wire::{Proto, Transport};

/// A request frame from `client` and the echo server's answer to it.
fn exchange(client: &mut dyn ClientProto, server: &mut dyn Handler) -> (Vec<u8>, Vec<u8>) {
    let mut request = Vec::new();
    client.write_request(7, &mut request);
    let mut response = Vec::new();
    server
        .handle(&request, &mut response)
        .expect("echo answers")
        .expect("a whole frame");
    (request, response)
}

/// Benches decode of `request`/`response` and encode of both with `codec`.
fn codec_benches<C: Codec>(
    c: &mut Criterion,
    name: &str,
    codec: &C,
    request: &[u8],
    response: &[u8],
    mutation: Option<&Mutation>,
) {
    let mut g = c.benchmark_group(name);
    let decode = |bytes: &[u8]| {
        let mut buf = BytesMut::from(bytes);
        codec
            .decoder()
            .decode(&mut buf)
            .expect("decodes")
            .expect("a whole frame")
    };
    g.bench_function("decode_request", |b| {
        let mut d = codec.decoder();
        b.iter_batched_ref(
            || BytesMut::from(request),
            |buf| black_box(d.decode(buf).expect("decodes")),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("decode_response", |b| {
        let mut d = codec.decoder();
        b.iter_batched_ref(
            || BytesMut::from(response),
            |buf| black_box(d.decode(buf).expect("decodes")),
            BatchSize::SmallInput,
        )
    });
    let req = decode(request);
    let resp = decode(response);
    let none = Mutation::new();
    let mut dst = BytesMut::with_capacity(64 * 1024);
    g.bench_function("encode_request", |b| {
        b.iter(|| {
            dst.clear();
            codec
                .encode_request(&req, 99, &none, &mut dst)
                .expect("encodes");
            black_box(dst.len())
        })
    });
    g.bench_function("encode_response", |b| {
        b.iter(|| {
            dst.clear();
            codec
                .encode_response(&resp, &req, &none, &mut dst)
                .expect("encodes");
            black_box(dst.len())
        })
    });
    if let Some(m) = mutation {
        g.bench_function("encode_request_mutated", |b| {
            b.iter(|| {
                dst.clear();
                codec
                    .encode_request(&req, 99, m, &mut dst)
                    .expect("encodes");
                black_box(dst.len())
            })
        });
    }
    g.finish();
}

fn dubbo(c: &mut Criterion) {
    let codec = DubboCodecFactory::new()
        .listener_codec(&CodecOptions::default())
        .expect("dubbo codec");
    let mut mutation = Mutation::new();
    mutation.set("x-canary", "true");
    for (label, size) in [("100B", 100), ("16KiB", 16 * 1024)] {
        let (request, response) = exchange(&mut DubboClient::new(size), &mut DubboEcho);
        codec_benches(
            c,
            &format!("dubbo/{label}"),
            &codec,
            &request,
            &response,
            Some(&mutation),
        );
    }
}

fn thrift(c: &mut Criterion) {
    for (label, transport, proto, opts) in [
        (
            "framed_binary",
            Transport::Framed,
            Proto::Binary,
            r#"{"transport":"framed","protocol":"binary"}"#,
        ),
        (
            "framed_compact",
            Transport::Framed,
            Proto::Compact,
            r#"{"transport":"framed","protocol":"compact"}"#,
        ),
        (
            "header_binary",
            Transport::Header,
            Proto::Binary,
            r#"{"transport":"header","protocol":"binary"}"#,
        ),
    ] {
        let options = CodecOptions {
            extra: serde_json::from_str(opts).expect("json"),
            ..CodecOptions::default()
        };
        let codec = ThriftCodecFactory::new()
            .listener_codec(&options)
            .expect("thrift codec");
        let (request, response) = exchange(
            &mut ThriftClient::new(transport, proto, 100),
            &mut ThriftEcho,
        );
        let mut mutation = Mutation::new();
        mutation.set("x-canary", "true");
        let m = (transport == Transport::Header).then_some(&mutation);
        codec_benches(
            c,
            &format!("thrift/{label}"),
            &codec,
            &request,
            &response,
            m,
        );
    }
}

fn http(c: &mut Criterion) {
    let req = http::Request::builder()
        .method("POST")
        .uri("/product/items?id=42&color=red")
        .header("host", "shop.example.com")
        .header("user-agent", "loadgen/1")
        .header("accept", "*/*")
        .header("content-type", "application/json")
        .header("content-length", "100")
        .header("x-user", "alice")
        .header("cookie", "sid=abc123; theme=dark")
        .body(())
        .expect("request");
    let (parts, ()) = req.into_parts();
    c.bench_function("http/request_metadata", |b| {
        b.iter(|| black_box(request_metadata(black_box(&parts), "http")))
    });
}

criterion_group!(benches, dubbo, thrift, http);
criterion_main!(benches);

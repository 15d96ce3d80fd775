//! Differential: the same bytes to the lean request-head parser and to
//! `httparse` directly. Ours is stricter on purpose (framing checks, CRLF
//! only), so it may refuse what httparse takes; but a head ours accepts
//! must be one httparse reads as complete, with the same length.
#![no_main]

use std::mem::MaybeUninit;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use metaproxy_codecs::fuzzing::parse_request_head;

const MAX_HEADERS: usize = 128;

fuzz_target!(|data: &[u8]| {
    let ours = parse_request_head(&mut BytesMut::from(data), MAX_HEADERS);
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let theirs = req.parse_with_uninit_headers(data, &mut slots);
    match (&ours, &theirs) {
        (Ok(Some(head)), Ok(httparse::Status::Complete(n))) => {
            assert_eq!(head.len, *n, "head lengths differ");
            assert_eq!(head.headers, req.headers.len(), "header counts differ");
            assert_eq!(head.minor, req.version.unwrap_or(9), "versions differ");
        }
        (Ok(Some(head)), _) => panic!(
            "ours accepted a {}-byte head, httparse: {theirs:?}",
            head.len
        ),
        (Ok(None), Ok(httparse::Status::Complete(n))) => {
            panic!("ours wants more bytes, httparse found a {n}-byte head")
        }
        _ => {}
    }
});

//! Walks arbitrary bytes as a chunked body with the lean path's scanner,
//! whole and in pieces of a fuzzer-chosen size, and checks that both find
//! the same end (or the same error); then decodes them (the decoder of
//! HTTP/2 clients' answers from HTTP/1.1 upstreams) the same two ways and
//! checks it agrees with itself and with the scanner.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaproxy_codecs::fuzzing::{chunked_body_decode, chunked_body_end};

fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let whole = chunked_body_end([data]);
    let pieces = chunked_body_end(data.chunks(step));
    assert_eq!(whole, pieces, "step {step}");
    if let Ok(Some(n)) = whole {
        assert!(n <= data.len());
        // The body ends where it ends, whatever follows it.
        assert_eq!(chunked_body_end([&data[..n]]), Ok(Some(n)));
    }
    let decoded = chunked_body_decode([data]);
    assert_eq!(
        decoded,
        chunked_body_decode(data.chunks(step)),
        "step {step}"
    );
    match (&whole, &decoded) {
        (Ok(Some(n)), Ok((body, _, Some(left)))) => {
            assert_eq!(data.len() - n, *left, "bytes after the body");
            assert!(body.len() < *n, "data is less than its framing");
        }
        (Ok(None), Ok((_, _, None))) => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        other => panic!("scanner and decoder disagree: {other:?}"),
    }
});

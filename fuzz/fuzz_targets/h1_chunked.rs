//! Walks arbitrary bytes as a chunked body with the lean path's scanner,
//! whole and in pieces of a fuzzer-chosen size, and checks that both find
//! the same end (or the same error).
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaproxy_codecs::fuzzing::chunked_body_end;

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
});

//! Feeds arbitrary bytes to the lean HTTP/1 response-head parser, in two
//! reads split at a fuzzer-chosen point, and checks that the split does not
//! change the verdict.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use metaproxy_codecs::fuzzing::parse_response_head;

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(data.len());
    let mut whole = BytesMut::from(data);
    let once = parse_response_head(&mut whole);
    let mut buf = BytesMut::from(&data[..split]);
    let twice = match parse_response_head(&mut buf) {
        Ok(None) => {
            buf.extend_from_slice(&data[split..]);
            parse_response_head(&mut buf)
        }
        first => first,
    };
    match (&once, &twice) {
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!(a, b);
            assert_eq!(whole.len(), data.len() - a.len);
            assert_eq!(&whole[..], &data[a.len..]);
        }
        (Ok(None), Ok(None)) => assert_eq!(whole.len(), data.len()),
        (Err(_), Err(_)) => {}
        _ => panic!("whole: {once:?}, in two reads: {twice:?}"),
    }
});

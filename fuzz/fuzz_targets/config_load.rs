//! Feeds arbitrary text to the config loader (`parse_str`) and builds a
//! snapshot from whatever parses, against the built-in codecs. `tls:`
//! sections are dropped before the build: they name certificate files to
//! read, and this target does no I/O (the build binds nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaproxy_core::config::parse_str;
use metaproxy_core::registry::Registry;
use metaproxy_core::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut loaded) = parse_str(text, "fuzz.yaml") else {
        return;
    };
    for l in &mut loaded.config.listeners {
        l.value.tls = None;
    }
    for c in &mut loaded.config.clusters {
        c.value.tls = None;
    }
    let mut registry = Registry::new();
    metaproxy_codecs::register_all(&mut registry);
    if let Err(e) = Snapshot::build(&loaded, &registry) {
        let _ = e.to_string();
    }
});

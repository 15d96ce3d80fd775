//! Locates the protobuf descriptor set that `envoy-types` ships beside its
//! generated code (`src/generated/types.bin`), for the REST-JSON xDS
//! transport: JSON is mapped onto Envoy's messages through those
//! descriptors (`src/xds/json.rs`), so no message is described twice.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("Cargo.toml");
    // Only the packages of the platform being built: cargo has downloaded
    // those (and not, say, the Windows-only ones) before build scripts run,
    // so this needs no network on a fresh machine.
    let target = std::env::var("TARGET").expect("set by cargo");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &target, "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("run `cargo metadata`");
    assert!(
        out.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let package = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "envoy-types")
        .expect("envoy-types is a dependency");
    let dir = PathBuf::from(package["manifest_path"].as_str().expect("manifest path"));
    let set = dir
        .parent()
        .expect("package directory")
        .join("src/generated/types.bin");
    assert!(set.is_file(), "{} is missing", set.display());
    println!("cargo:rustc-env=ENVOY_DESCRIPTOR_SET={}", set.display());
}

//! What the sandbox refuses at load, and the compiled-component cache.

use crate::sandbox;
use tocsin::sandbox::{Error, Limits, Origin, Sandbox};
use tocsin_tests::guest;

fn load_error(wasm: &[u8]) -> Error {
    match sandbox().load(wasm) {
        Ok(plugin) => panic!("expected {plugin:?} to be refused"),
        Err(e) => e,
    }
}

#[test]
fn a_component_importing_the_filesystem_or_the_wall_clock_is_refused_naming_each_import() {
    let error = load_error(guest("forbidden_fs"));
    let text = error.to_string();
    assert!(matches!(error, Error::ForbiddenImports { .. }), "{text}");
    assert!(
        text.contains("`wasi:filesystem/types@0.2.6` (templates get no filesystem)"),
        "{text}"
    );
    assert!(
        text.contains(
            "`wasi:clocks/wall-clock@0.2.6` (templates get no clock; use the evaluation time in the context)"
        ),
        "{text}"
    );
}

#[test]
fn a_component_importing_sockets_is_refused_naming_the_import() {
    let text = load_error(guest("forbidden_net")).to_string();
    assert!(
        text.contains("`wasi:sockets/tcp@0.2.6` (templates get no network)"),
        "{text}"
    );
}

#[test]
fn a_component_built_against_another_interface_version_is_refused_naming_it() {
    let error = load_error(guest("future_interface"));
    assert!(
        matches!(&error, Error::UnsupportedVersion { found } if found == "2.0.0"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("tocsin:plugin@2.0.0; this host serves tocsin:plugin@1.x")
    );
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let text = load_error(b"not wasm at all").to_string();
    assert!(
        text.starts_with("not a valid WebAssembly component"),
        "{text}"
    );
    // A core module (the magic number, version 1) is named as such.
    let text = load_error(b"\0asm\x01\0\0\0").to_string();
    assert!(
        text.contains("core WebAssembly module, not a component"),
        "{text}"
    );
}

#[test]
fn a_restart_loads_compiled_components_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = tocsin::builtins::get("usage_breach").unwrap();
    let first = Sandbox::new(Limits::default(), Some(dir.path().to_owned())).unwrap();
    assert_eq!(first.load(wasm).unwrap().origin(), Origin::Compiled);
    let artifacts: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(artifacts.len(), 1, "one artifact per component");

    // A new engine, as after a restart: same cache directory, no compilation.
    let second = Sandbox::new(Limits::default(), Some(dir.path().to_owned())).unwrap();
    let plugin = second.load(wasm).unwrap();
    assert_eq!(plugin.origin(), Origin::Cached);
    assert_eq!(plugin.info().id, "usage_breach");
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = tocsin::builtins::get("cloud_alarm").unwrap();
    let sandbox = Sandbox::new(Limits::default(), Some(dir.path().to_owned())).unwrap();
    sandbox.load(wasm).unwrap();
    let artifact = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&artifact, b"garbage").unwrap();
    let plugin = sandbox.load(wasm).unwrap();
    assert_eq!(plugin.origin(), Origin::Compiled);
    assert_eq!(plugin.info().id, "cloud_alarm");
}

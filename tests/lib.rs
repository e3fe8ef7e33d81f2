//! Helpers for the black-box tests: the test-only guest components and paths to shared
//! fixtures.

use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The component bytes of test guest `name` (`hostile`, `forbidden_fs`, …).
pub fn guest(name: &str) -> &'static [u8] {
    GUESTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, wasm)| *wasm)
        .unwrap_or_else(|| panic!("no test guest {name}"))
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

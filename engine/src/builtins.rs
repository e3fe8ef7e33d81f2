//! The built-in templates, compiled from `plugins/` at build time and embedded.

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The component bytes of built-in template `id`.
pub fn get(id: &str) -> Option<&'static [u8]> {
    BUILTINS
        .iter()
        .find(|(name, _)| *name == id)
        .map(|(_, wasm)| *wasm)
}

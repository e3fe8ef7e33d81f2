//! Compiled components on disk, keyed by content hash and engine compatibility, so that a
//! restart loads native code instead of compiling again.

use super::{Error, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Feeds `Hash` output into SHA-256, so the key is stable across processes (std's
/// `DefaultHasher` is randomly keyed).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The file a component's native code is cached in: its digest plus a hash of everything
/// that makes compiled code incompatible (wasmtime version, target, compiler settings).
fn artifact_path(engine: &Engine, dir: &Path, digest: &str) -> PathBuf {
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
}

/// Whether a component was compiled now or loaded from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled from WebAssembly in this process.
    Compiled,
    /// Native code read from the cache directory.
    Cached,
}

/// Compiles `wasm`, or loads its native code from `dir` when an earlier run cached it.
pub fn compile(
    engine: &Engine,
    dir: Option<&Path>,
    wasm: &[u8],
    digest: &str,
) -> Result<(Component, Origin)> {
    let Some(dir) = dir else {
        return Ok((compile_fresh(engine, wasm)?, Origin::Compiled));
    };
    let path = artifact_path(engine, dir, digest);
    if path.exists() {
        match load_artifact(engine, &path) {
            Ok(component) => return Ok((component, Origin::Cached)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached component unusable; recompiling")
            }
        }
    }
    let component = compile_fresh(engine, wasm)?;
    match component.serialize() {
        Ok(bytes) => {
            // Write then rename, so a crash or a concurrent loader never sees a truncated
            // artifact under the key.
            let written = tempfile::NamedTempFile::new_in(dir)
                .and_then(|mut tmp| std::io::Write::write_all(&mut tmp, &bytes).map(|()| tmp))
                .and_then(|tmp| tmp.persist(&path).map_err(|e| e.error));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "could not cache compiled component");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not serialize compiled component"),
    }
    Ok((component, Origin::Compiled))
}

fn compile_fresh(engine: &Engine, wasm: &[u8]) -> Result<Component> {
    if is_core_module(wasm) {
        return Err(Error::Invalid(
            "this is a core WebAssembly module, not a component; build the plugin for wasm32-wasip2".into(),
        ));
    }
    Component::new(engine, wasm).map_err(|e| Error::Invalid(format!("{e:#}")))
}

/// A core module and a component share the magic number and differ in the layer field.
fn is_core_module(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[4..8] == [1, 0, 0, 0]
}

#[allow(unsafe_code)]
fn load_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: deserializing trusts the file to be native code wasmtime produced. The cache
    // directory is Tocsin's own, files in it are written only by `compile` above, under a
    // name derived from the source's SHA-256 and the engine's compatibility hash, and
    // wasmtime itself rejects artifacts from another version or configuration.
    unsafe { Component::deserialize_file(engine, path) }
}

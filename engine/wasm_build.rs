// Builds workspace plugin crates for `wasm32-wasip2` from a build script, and writes a Rust
// file that embeds them. Shared by `engine/build.rs` (the built-in templates) and
// `tests/build.rs` (the test-only guests) through `include!`.
//
// The nested cargo uses its own target directory so it never waits on the lock the outer
// build holds, and a scrubbed environment so the outer build's flags and wrappers (clippy's
// driver, coverage flags) do not leak into the guest build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One component to build: the cargo package and the file stem of its `.wasm`.
struct Guest {
    package: &'static str,
    artifact: &'static str,
}

fn build_guests(guests: &[Guest], const_name: &str, out_file: &str) {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm-guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());

    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--profile", "plugin", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(&target_dir);
    if std::env::var_os("CI").is_some() {
        cmd.arg("--locked");
    }
    for guest in guests {
        cmd.args(["-p", guest.package]);
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key.starts_with("RUSTC") || key.starts_with("RUSTFLAGS") || key == "RUSTDOC" {
            cmd.env_remove(&*key);
        }
    }
    let status = cmd.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the wasm32-wasip2 guests failed; is the target installed? (rustup target add wasm32-wasip2)"
    );

    let wasm_dir = target_dir.join("wasm32-wasip2").join("plugin");
    let mut code = format!("pub const {const_name}: &[(&str, &[u8])] = &[\n");
    for guest in guests {
        let path = wasm_dir.join(format!("{}.wasm", guest.artifact));
        assert!(path.exists(), "missing {}", path.display());
        code.push_str(&format!("    ({:?}, include_bytes!({:?})),\n", guest.artifact, path));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join(out_file);
    std::fs::write(out, code).unwrap();

    rerun_if_changed(&workspace.join("sdk"));
    rerun_if_changed(&workspace.join("Cargo.lock"));
    // The `plugin` profile the guests are built with lives in the workspace manifest.
    rerun_if_changed(&workspace.join("Cargo.toml"));
    for dir in ["plugins", "tests/guests", "sdk/examples"] {
        rerun_if_changed(&workspace.join(dir));
    }
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

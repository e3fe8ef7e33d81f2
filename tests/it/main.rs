//! Black-box tests: built-in and hostile templates through the real sandbox, and the CLI.

mod access;
mod api_errors;
mod cli;
mod cluster;
mod console;
mod escalation;
mod hardening;
mod hooks;
mod hostile;
mod loading;
mod oncall;
mod params;
mod pg;
mod plugins;
mod rosters;
mod server;
mod silences;
mod sns;
mod store_contract;
mod support;
mod templates;
mod togai;

use std::collections::HashMap;
use std::sync::OnceLock;
use tocsin::sandbox::{Limits, Plugin, Sandbox};

/// One sandbox with the production limits, shared by the tests of this binary.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new(Limits::default(), None).expect("sandbox"))
}

/// Built-in template `id`, loaded once.
pub fn builtin(id: &str) -> Plugin {
    static LOADED: OnceLock<HashMap<&'static str, Plugin>> = OnceLock::new();
    let loaded = LOADED.get_or_init(|| {
        tocsin::builtins::BUILTINS
            .iter()
            .map(|(id, wasm)| (*id, sandbox().load(wasm).expect("built-in loads")))
            .collect()
    });
    loaded
        .get(id)
        .unwrap_or_else(|| panic!("no built-in {id}"))
        .clone()
}

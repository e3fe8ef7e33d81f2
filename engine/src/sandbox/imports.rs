//! What a template component may import, checked before it is ever instantiated.
//!
//! A template may import the host interface of `tocsin:plugin` and the handful of WASI
//! interfaces that Rust's standard library links on `wasm32-wasip2` (environment, exit,
//! standard streams, and from Rust 1.97 on the monotonic clock). Those are linked to
//! functions that trap: a guest that calls them fails that evaluation. Anything else
//! (files, sockets, the wall clock, randomness, HTTP) is refused at load, naming the import.

use super::{Error, INTERFACE_MAJOR, Result};
use wasmtime::Engine;
use wasmtime::component::Component;

/// WASI interfaces that std links even when unused; present, but trapping.
const INERT_WASI: &[&str] = &[
    // Rust 1.97's std imports it whether or not the template reads the time (1.95's only
    // when it does). Refusing it would refuse every template built with a current Rust.
    "wasi:clocks/monotonic-clock",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
];

/// Splits `ns:pkg/iface@1.2.3` into (`ns:pkg/iface`, `1.2.3`).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    }
}

fn major(version: Option<&str>) -> Option<u64> {
    version?.split('.').next()?.parse().ok()
}

fn why_forbidden(path: &str) -> &'static str {
    match path.split('/').next().unwrap_or(path) {
        "wasi:filesystem" => "templates get no filesystem",
        "wasi:sockets" | "wasi:http" => "templates get no network",
        "wasi:clocks" => "templates get no clock; use the evaluation time in the context",
        "wasi:random" => "templates get no randomness",
        _ => "it is not part of the tocsin:plugin interface",
    }
}

/// Refuses components whose interface version this host does not serve or that import
/// anything beyond the allowed set.
pub fn check_imports(engine: &Engine, component: &Component) -> Result<()> {
    let ty = component.component_type();
    let mut template_export = None;
    for (name, _) in ty.exports(engine) {
        let (path, version) = split_version(name);
        if path == "tocsin:plugin/template" {
            template_export = Some(version.unwrap_or("0").to_owned());
        }
    }
    match template_export {
        None => return Err(Error::NotATemplate),
        Some(version) if major(Some(&version)) != Some(INTERFACE_MAJOR) => {
            return Err(Error::UnsupportedVersion { found: version });
        }
        Some(_) => {}
    }
    let mut forbidden = Vec::new();
    for (name, _) in ty.imports(engine) {
        let (path, version) = split_version(name);
        let allowed = match path {
            "tocsin:plugin/host" | "tocsin:plugin/types" => {
                if major(version) != Some(INTERFACE_MAJOR) {
                    return Err(Error::UnsupportedVersion {
                        found: version.unwrap_or("unversioned").to_owned(),
                    });
                }
                true
            }
            _ => INERT_WASI.contains(&path) && version.is_some_and(|v| v.starts_with("0.2.")),
        };
        if !allowed {
            forbidden.push(format!("`{name}` ({})", why_forbidden(path)));
        }
    }
    if forbidden.is_empty() {
        Ok(())
    } else {
        Err(Error::ForbiddenImports { imports: forbidden })
    }
}

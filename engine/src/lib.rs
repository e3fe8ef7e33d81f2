//! Tocsin: an alerting rules engine whose rules are sandboxed WebAssembly components.

pub mod builtins;
pub mod cli;
pub mod sandbox;

//! Tocsin: an alerting rules engine whose rules are sandboxed WebAssembly components.

pub mod app;
pub mod builtins;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod console;
pub mod escalation;
pub mod evaluator;
pub mod hooks;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod registry;
pub mod sandbox;
pub mod scheduler;
pub mod store;

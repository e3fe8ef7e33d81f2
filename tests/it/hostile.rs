//! Hostile guests are stopped by the sandbox's limits, with readable errors, and the next
//! evaluation runs normally.

use crate::{builtin, sandbox};
use serde_json::json;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tocsin::sandbox::{Error, Limits, Plugin, Sandbox};
use tocsin_sdk::protocol::Outcome;
use tocsin_sdk::{Context, Verdict};

fn hostile() -> Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN
        .get_or_init(|| {
            sandbox()
                .load(tocsin_tests::guest("hostile"))
                .expect("hostile loads")
        })
        .clone()
}

/// The hostile plugin under the production memory and output caps but a long deadline, so
/// the memory and output tests see those caps even on a machine busy enough to make filling
/// 64 MiB slow.
fn hostile_without_hurry() -> Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN
        .get_or_init(|| {
            let limits = Limits {
                timeout: Duration::from_secs(5),
                ..Limits::default()
            };
            Sandbox::new(limits, None)
                .and_then(|s| s.load(tocsin_tests::guest("hostile")))
                .expect("hostile loads")
        })
        .clone()
}

fn ctx() -> Context {
    Context::at("2026-03-01T00:00:00Z".parse().unwrap())
}

fn evaluate(plugin: &Plugin, params: serde_json::Value) -> Result<Outcome, Error> {
    plugin
        .instance()
        .expect("instance")
        .evaluate(&params.to_string(), &ctx(), &[])
}

/// The next evaluation, on a fresh instance of the same plugin and on a built-in, works.
fn next_evaluation_runs_normally() {
    match evaluate(&hostile(), json!({"mode": "ok"})) {
        Ok(Outcome::Findings(findings)) => {
            assert_eq!(findings.len(), 1);
            assert_eq!(findings[0].verdict, Verdict::Clear);
            assert_eq!(findings[0].summary, "fine");
        }
        other => panic!("expected a finding, got {other:?}"),
    }
    let fixture =
        tocsin_tests::workspace().join("plugins/credit_low_balance/fixtures/breached.json");
    let fixture = tocsin_sdk::testing::Fixture::load(&fixture).unwrap();
    fixture
        .check(&mut builtin("credit_low_balance").instance().unwrap())
        .expect("a built-in still evaluates");
}

#[test]
fn an_infinite_loop_is_stopped_within_the_time_bound() {
    let limit = sandbox().limits().timeout;
    let started = Instant::now();
    let result = evaluate(&hostile(), json!({"mode": "spin"}));
    let elapsed = started.elapsed();
    match result {
        Err(Error::Timeout { limit: reported }) => assert_eq!(reported, limit),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // One epoch tick of overshoot, plus scheduling slack on a 2-core machine busy with the
    // rest of the suite.
    assert!(
        elapsed < limit + Duration::from_millis(400),
        "stopped after {elapsed:?}; the bound is {limit:?}"
    );
    assert!(
        elapsed >= limit,
        "stopped after {elapsed:?}, before the bound {limit:?}"
    );
    next_evaluation_runs_normally();
}

#[test]
fn a_memory_bomb_is_stopped_at_the_cap() {
    let cap = sandbox().limits().memory_bytes;
    match evaluate(&hostile_without_hurry(), json!({"mode": "allocate"})) {
        Err(Error::MemoryExceeded { requested, limit }) => {
            assert_eq!(limit, cap);
            assert!(requested > cap);
        }
        other => panic!("expected the memory cap, got {other:?}"),
    }
    next_evaluation_runs_normally();
}

#[test]
fn a_panic_comes_back_with_its_message() {
    match evaluate(&hostile(), json!({"mode": "panic"})) {
        Err(e @ Error::Panicked { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("boom: the hostile template panicked on purpose"),
                "{text}"
            );
            assert!(text.contains("lib.rs"), "the location is kept: {text}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    next_evaluation_runs_normally();
}

/// Rust's standard library links the monotonic clock (from Rust 1.97 on, into every
/// template), so a component importing it loads; reading it fails that evaluation only.
#[test]
fn reading_the_clock_fails_the_evaluation_naming_the_import() {
    match evaluate(&hostile(), json!({"mode": "clock"})) {
        Err(e @ Error::Trapped(_)) => {
            let text = e.to_string();
            assert!(text.contains("wasi:clocks/monotonic-clock"), "{text}");
            assert!(
                text.contains("which the sandbox does not provide"),
                "{text}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    next_evaluation_runs_normally();
}

#[test]
fn a_hundred_megabyte_result_is_cut_off() {
    // 100 MB cannot even be built under the 64 MiB memory cap: the guest is stopped
    // while trying, before the host copies anything.
    match evaluate(
        &hostile_without_hurry(),
        json!({"mode": "output", "bytes": 100_000_000}),
    ) {
        Err(Error::MemoryExceeded { .. }) => {}
        other => panic!("expected the 100 MB result to be cut off, got {other:?}"),
    }
    next_evaluation_runs_normally();
}

#[test]
fn a_result_over_the_output_cap_is_refused() {
    let cap = sandbox().limits().output_bytes;
    match evaluate(
        &hostile_without_hurry(),
        json!({"mode": "output", "bytes": 4 * cap}),
    ) {
        Err(Error::OutputTooLarge { size, limit }) => {
            assert_eq!(limit, cap);
            assert!(size > 4 * cap);
        }
        other => panic!("expected the output cap, got {other:?}"),
    }
    next_evaluation_runs_normally();
}

#[test]
fn an_instance_that_failed_refuses_further_calls() {
    let mut instance = hostile().instance().unwrap();
    let params = json!({"mode": "panic"}).to_string();
    assert!(matches!(
        instance.evaluate(&params, &ctx(), &[]),
        Err(Error::Panicked { .. })
    ));
    let ok = json!({"mode": "ok"}).to_string();
    assert!(matches!(
        instance.evaluate(&ok, &ctx(), &[]),
        Err(Error::Poisoned)
    ));
}

//! Sandbox throughput against the same template logic compiled natively.
//!
//! For each built-in template, 10,000 alerts are evaluated (plan, the host's answers,
//! evaluate, as many rounds as the template asks): natively, through one sandbox instance
//! serving the whole batch, and through a fresh isolated instance per alert. Also measured:
//! the cost of a fresh instance, compile time, and the cached load of all nine built-ins.
//!
//! Run with `cargo bench -p tocsin --bench sandbox`; the output is the table recorded in
//! BENCHMARKS.md. Batches are timed five times and the fastest run reported. `BENCH_ONLY=id`
//! measures one template.

use std::time::{Duration, Instant};
use tocsin::builtins::BUILTINS;
use tocsin::sandbox::{Limits, Origin, Plugin, Sandbox};
use tocsin_sdk::protocol::{Runner, run};
use tocsin_sdk::testing::{Fixture, Native};
use tocsin_sdk::{Answer, Query};

/// The allocator the `tocsin` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ALERTS: usize = 10_000;
/// Timed runs of each batch; the fastest is reported.
const ROUNDS: usize = 5;

/// The fixture each template is measured on: a breach, with its whole data path.
fn workload(id: &str) -> Fixture {
    let name = match id {
        "usage_breach" => "week_new_york",
        _ => "breached",
    };
    let path = format!(
        "{}/../plugins/{id}/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    Fixture::load(path.as_ref()).expect("fixture")
}

fn native(id: &str) -> Box<dyn Runner<Error = String>> {
    match id {
        "credit_low_balance" => Box::new(Native::<credit_low_balance::CreditLowBalance>::default()),
        "wallet_low_balance" => Box::new(Native::<wallet_low_balance::WalletLowBalance>::default()),
        "entitlement_low_balance" => {
            Box::new(Native::<entitlement_low_balance::EntitlementLowBalance>::default())
        }
        "usage_breach" => Box::new(Native::<usage_breach::UsageBreach>::default()),
        "unprocessed_events" => {
            Box::new(Native::<unprocessed_events::UnprocessedEvents>::default())
        }
        "invoice_due_breach" => Box::new(Native::<invoice_due_breach::InvoiceDueBreach>::default()),
        "invoice_overdue_breach" => {
            Box::new(Native::<invoice_overdue_breach::InvoiceOverdueBreach>::default())
        }
        "unpaid_invoice_amount_breach" => Box::new(Native::<
            unpaid_invoice_amount_breach::UnpaidInvoiceAmountBreach,
        >::default()),
        "cloud_alarm" => Box::new(Native::<cloud_alarm::CloudAlarm>::default()),
        other => panic!("no native build of {other}"),
    }
}

/// Evaluates `ALERTS` alerts on `runner`, answers precomputed so only evaluation is timed.
fn batch<R: Runner + ?Sized>(runner: &mut R, fixture: &Fixture, answers: &[Answer]) -> Duration {
    let params = fixture.params.to_string();
    let mut ctx = fixture.context();
    let started = Instant::now();
    for i in 0..ALERTS {
        ctx.alert_id = format!("alert-{i}");
        let result = run(runner, &params, &ctx, &mut |n, _: &Query| {
            Ok(answers[n].clone())
        });
        assert!(
            result.is_ok(),
            "evaluation failed: {}",
            result.err().unwrap()
        );
    }
    started.elapsed()
}

/// The fastest of a few runs after a warm-up: on a shared machine, the others measure
/// neighbours as much as the code.
fn fastest(mut run: impl FnMut() -> Duration) -> Duration {
    run();
    (0..ROUNDS).map(|_| run()).min().unwrap()
}

fn answers_for(plugin: &Plugin, fixture: &Fixture) -> Vec<Answer> {
    let mut instance = plugin.instance().unwrap();
    let mut answers = Vec::new();
    run(
        &mut instance,
        &fixture.params.to_string(),
        &fixture.context(),
        &mut |n, q| {
            let a = fixture.input.answer(n, q)?;
            answers.push(a.clone());
            Ok(a)
        },
    )
    .unwrap();
    answers
}

fn micros(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let cache = std::env::temp_dir().join(format!("tocsin-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let sandbox = Sandbox::new(Limits::default(), Some(cache.clone())).unwrap();

    println!(
        "| template | native µs/eval | sandbox batched µs/eval | ratio | isolated µs/eval | fresh instance µs | compile ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut worst_ratio: f64 = 0.0;
    let only = std::env::var("BENCH_ONLY").ok();
    for (id, wasm) in BUILTINS {
        if only.as_deref().is_some_and(|only| only != *id) {
            continue;
        }
        let started = Instant::now();
        let plugin = sandbox.load(wasm).unwrap();
        let compile = started.elapsed();
        assert_eq!(plugin.origin(), Origin::Compiled);
        let fixture = workload(id);
        let answers = answers_for(&plugin, &fixture);

        let mut native = native(id);
        let native_time = fastest(|| batch(&mut *native, &fixture, &answers));

        let mut instance = plugin.instance().unwrap();
        let batched = fastest(|| batch(&mut instance, &fixture, &answers));

        let started = Instant::now();
        for _ in 0..ALERTS {
            std::hint::black_box(plugin.instance().unwrap());
        }
        let fresh = started.elapsed();

        let params = fixture.params.to_string();
        let ctx = fixture.context();
        let started = Instant::now();
        for _ in 0..ALERTS {
            let mut instance = plugin.instance().unwrap();
            run(&mut instance, &params, &ctx, &mut |n, _| {
                Ok(answers[n].clone())
            })
            .unwrap();
        }
        let isolated = started.elapsed();

        let ratio = batched.as_secs_f64() / native_time.as_secs_f64();
        worst_ratio = worst_ratio.max(ratio);
        println!(
            "| {id} | {:.2} | {:.2} | {:.1} | {:.2} | {:.1} | {:.0} |",
            micros(native_time, ALERTS),
            micros(batched, ALERTS),
            ratio,
            micros(isolated, ALERTS),
            micros(fresh, ALERTS),
            compile.as_secs_f64() * 1e3,
        );
    }

    println!();
    println!("alerts per template: {ALERTS}");
    println!("worst sandbox/native ratio: {worst_ratio:.1}");
    if only.is_none() {
        // A restart: a new engine over the same cache directory loads all nine.
        let restarted = Sandbox::new(Limits::default(), Some(cache.clone())).unwrap();
        let started = Instant::now();
        for (_, wasm) in BUILTINS {
            assert_eq!(restarted.load(wasm).unwrap().origin(), Origin::Cached);
        }
        println!(
            "cached load of all {} built-ins (deserialize, link, pre-instantiate, describe): {:.1} ms",
            BUILTINS.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
}

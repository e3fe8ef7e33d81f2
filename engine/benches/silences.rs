//! Silences, measured: matching one incident against 1,000 active silences (target
//! ≤ 50 µs), and what 1,000 silences add to starting an incident's loop, the step between
//! an incident opening and its first call (target: unchanged within noise), on a SQLite
//! file and, with `BENCH_POSTGRES` set to a server URL, on a fresh PostgreSQL database.
//!
//! `cargo bench -p tocsin --bench silences`; `BENCH_LOOPS` (default 2,000) loops per store.

#[path = "support/loop_start.rs"]
mod support;

use chrono::Duration;
use std::time::Instant;
use support::{percentile, t0};
use tocsin::store::escalation::{Entry, Member, Roster, Route};
use tocsin::store::silences::{
    MatcherSpec, Quiet, SilenceRecord, add_platform_labels, labels as incident_labels,
};
use tocsin::store::{Database, Store};
use tocsin_domain::silence::Labels;
use tocsin_twilio::PhoneNumber;

const SILENCES: usize = 1_000;

fn matcher(name: &str, op: &str, value: &str) -> MatcherSpec {
    MatcherSpec {
        name: name.into(),
        op: op.into(),
        value: value.into(),
    }
}

/// Silence `i` of the thousand, active for a month from `t0`: equality and regex
/// matchers, positive and negative, on Tocsin's labels and the platform's, none of which
/// holds the bench's incident (every silence is looked at, as for an incident nobody
/// silenced).
fn silence(i: usize) -> SilenceRecord {
    let matchers = match i % 4 {
        0 => vec![matcher("alertId", "=", &format!("alt_{i}"))],
        1 => vec![
            matcher("resource", "=~", &format!("db-{i}-.*")),
            matcher("severity", "!=", "info"),
        ],
        2 => vec![
            matcher("source", "=~", "alertmanager|grafana"),
            matcher("name", "=", &format!("DiskFull{i}")),
        ],
        _ => vec![
            matcher("team", "!~", "storage|network"),
            matcher("integrationId", "=", &format!("int_{i}")),
        ],
    };
    SilenceRecord {
        id: format!("sil_{i:04}"),
        matchers,
        starts_at: t0() - Duration::days(1),
        ends_at: t0() + Duration::days(29),
        comment: "bench".into(),
        created_by: "bench".into(),
        created_at: t0(),
        updated_at: t0(),
    }
}

/// A cloud alarm's incident's labels, Alertmanager's among them.
fn alarm_labels(n: usize) -> Labels {
    let report = serde_json::json!({"source": "alertmanager", "name": "DiskFull",
        "resource": format!("web-{n}"), "severity": "critical"});
    let mut labels = incident_labels(
        &format!("inc_{n}"),
        "alt_ros_plain",
        "cloud_alarm",
        Some("int_x"),
        &format!("int_x:{n:x}"),
        &report,
    );
    add_platform_labels(
        &mut labels,
        &serde_json::json!({"labels": {"team": "storage", "instance": format!("web-{n}:9100")}})
            .to_string(),
    );
    labels
}

/// `Quiet::holding` for one incident against the thousand silences, in microseconds.
fn matching_speed() {
    let records: Vec<SilenceRecord> = (0..SILENCES).map(silence).collect();
    let parsed = Instant::now();
    let quiet = Quiet::new(&records, &[]);
    let parse_ms = parsed.elapsed().as_secs_f64() * 1e3;
    let incidents: Vec<Labels> = (0..1_000).map(alarm_labels).collect();
    let at = t0() + Duration::hours(1);
    let mut times = Vec::new();
    for _ in 0..20 {
        for labels in &incidents {
            let started = Instant::now();
            let holding = quiet.holding(labels, at);
            times.push(started.elapsed().as_secs_f64() * 1e6);
            assert!(holding.is_empty(), "{holding:?}");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "matching an incident against {SILENCES} active silences: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} incidents (target ≤ 50 µs); reading them in: {parse_ms:.2} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1],
        times.len(),
    );
}

/// A roster of one member, and the alert routed to it.
async fn seed(store: &Store) {
    store
        .insert_roster(&Roster {
            id: "ros_plain".into(),
            name: "plain".into(),
            members: vec![Entry::Member(Member {
                name: "Ada".into(),
                phone: PhoneNumber::parse("+15550200001").unwrap(),
                operator_id: None,
                sms_phone: None,
            })],
            loops: 3,
            ring_timeout_seconds: 30,
            fallback_url: None,
            sms: Default::default(),
            created_at: t0(),
            updated_at: t0(),
        })
        .await
        .unwrap();
    store
        .insert_route(&Route {
            id: "rte_plain".into(),
            roster_id: "ros_plain".into(),
            alert_id: Some("alt_ros_plain".into()),
            template_id: None,
            owner_id: None,
            created_at: t0(),
        })
        .await
        .unwrap();
}

/// Loop starts on a store with no silence and on one with the thousand, alternating a
/// quarter of the loops at a time.
async fn loop_start_cost(name: &str, without: Store, with: Store, loops: usize) {
    seed(&without).await;
    seed(&with).await;
    for i in 0..SILENCES {
        with.insert_silence(&silence(i)).await.unwrap();
    }
    let labels = alarm_labels(1);
    support::loop_starts(&without, "ros_plain", 20, &labels).await;
    support::loop_starts(&with, "ros_plain", 20, &labels).await;
    let (mut quiet, mut silenced) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        quiet.extend(support::loop_starts(&without, "ros_plain", loops / 4, &labels).await);
        silenced.extend(support::loop_starts(&with, "ros_plain", loops / 4, &labels).await);
    }
    quiet.sort_by(f64::total_cmp);
    silenced.sort_by(f64::total_cmp);
    let (b50, b99) = (percentile(&quiet, 0.5), percentile(&quiet, 0.99));
    let (p50, p99) = (percentile(&silenced, 0.5), percentile(&silenced, 0.99));
    println!(
        "{name}: loop start, no silence: p50 {b50:.3} ms, p99 {b99:.3} ms; {SILENCES} active silences (none matching): p50 {p50:.3} ms, p99 {p99:.3} ms; they add {:.3} ms at p50, {:.3} ms at p99 (target: unchanged within noise)",
        p50 - b50,
        p99 - b99
    );
    without.close().await;
    with.close().await;
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    matching_speed();
    let loops: usize = std::env::var("BENCH_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let without = Store::open(&Database::Sqlite(dir.path().join("quiet.db")))
        .await
        .unwrap();
    let with = Store::open(&Database::Sqlite(dir.path().join("silenced.db")))
        .await
        .unwrap();
    loop_start_cost("SQLite", without, with, loops).await;
    if let Ok(server) = std::env::var("BENCH_POSTGRES") {
        let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        let mut stores = Vec::new();
        let mut names = Vec::new();
        for part in ["quiet", "silenced"] {
            let name = format!("tocsin_bench_silences_{part}_{}", std::process::id());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await
                .unwrap();
            stores.push(
                Store::open(&Database::Postgres(format!("{server}/{name}")))
                    .await
                    .unwrap(),
            );
            names.push(name);
        }
        let with = stores.pop().unwrap();
        let without = stores.pop().unwrap();
        loop_start_cost("PostgreSQL", without, with, loops).await;
        for name in names {
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .unwrap();
        }
    }
}

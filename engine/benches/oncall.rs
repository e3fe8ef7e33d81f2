//! Who is on call, measured: `on_call(at)` for a schedule of 10 rules over rotations of 50
//! participants each (target ≤ 20 µs), and what expanding a roster of 5 schedule entries
//! adds to starting an incident's loop (the step between an incident opening and its first
//! call; target ≤ 1 ms at p99), on a SQLite file and, with `BENCH_POSTGRES` set to a
//! server URL, on a fresh PostgreSQL database.
//!
//! `cargo bench -p tocsin --bench oncall`; `BENCH_LOOPS` (default 2,000) loops per roster.

#[path = "support/loop_start.rs"]
mod support;

use chrono::{Duration, NaiveDate};
use std::time::Instant;
use support::{percentile, t0};
use tocsin::store::escalation::{Entry, Roster, Route};
use tocsin::store::oncall::{Operator, OverrideRecord, RotationRecord, RuleSpec, ScheduleRecord};
use tocsin::store::{Database, Store};
use tocsin_domain::oncall::{Override, Rotation, Rotations, Rule, Schedule, ShiftUnit, Target};
use tocsin_twilio::PhoneNumber;

const ZONES: [chrono_tz::Tz; 5] = [
    chrono_tz::Europe::London,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kolkata,
    chrono_tz::America::Santiago,
];
const UNITS: [ShiftUnit; 3] = [ShiftUnit::Hourly, ShiftUnit::Daily, ShiftUnit::Weekly];
const DAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Rotation `r` of 50 participants (of 250 operators), in a zone and unit of its own.
fn rotation(r: usize) -> Rotation {
    Rotation {
        time_zone: ZONES[r % ZONES.len()],
        unit: UNITS[r % UNITS.len()],
        shift_length: 1 + (r as u32 % 4),
        handoff_at: NaiveDate::from_ymd_opt(2026, 1, 5)
            .unwrap()
            .and_hms_opt(9, 30, 0)
            .unwrap(),
        participants: (0..50)
            .map(|p| format!("op{}", (r * 50 + p) % 250))
            .collect(),
    }
}

/// Rule `i` of a schedule: rotation `rotations[i % n]`, on some days, some crossing
/// midnight, some all day.
fn rule(i: usize, rotations: &[String]) -> RuleSpec {
    let (start, end) = [
        ("09:00", "17:00"),
        ("22:00", "06:00"),
        ("00:00", "00:00"),
        ("07:30", "19:45"),
    ][i % 4];
    RuleSpec {
        rotation_id: Some(rotations[i % rotations.len()].clone()),
        operator_id: None,
        days: DAYS
            .iter()
            .skip(i % 3)
            .step_by(1 + i % 2)
            .map(|d| (*d).to_owned())
            .collect(),
        start: start.into(),
        end: end.into(),
    }
}

fn on_call_speed() {
    let ids: Vec<String> = (0..10).map(|r| format!("rot{r}")).collect();
    let rotations: Rotations = ids
        .iter()
        .enumerate()
        .map(|(r, id)| (id.clone(), rotation(r)))
        .collect();
    let schedule = Schedule {
        time_zone: chrono_tz::Europe::London,
        rules: (0..10)
            .map(|i| rule(i, &ids).parse("rule").unwrap())
            .collect::<Vec<Rule>>(),
        overrides: (0..5)
            .map(|i| Override {
                add: Some(format!("op{}", 200 + i)),
                remove: (i % 2 == 0).then(|| format!("op{i}")),
                start: t0() + Duration::days(i * 7),
                end: t0() + Duration::days(i * 7 + 2),
            })
            .collect(),
    };
    assert!(
        schedule
            .rules
            .iter()
            .all(|r| matches!(r.target, Target::Rotation(_)))
    );
    // Instants spread over a year, a prime number of minutes apart.
    let samples = 200_000;
    let mut times = Vec::with_capacity(samples);
    let mut on_call = 0usize;
    for i in 0..samples {
        let at = t0() + Duration::minutes((i as i64 * 7919) % (365 * 24 * 60));
        let started = Instant::now();
        let who = schedule.on_call(&rotations, at);
        times.push(started.elapsed().as_secs_f64() * 1e6);
        on_call += who.len();
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "on_call(at), 10 rules over 10 rotations of 50, 5 overrides: mean {mean:.2} µs, p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs ({:.1} on call on average; target ≤ 20 µs)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1],
        on_call as f64 / samples as f64,
    );
}

/// Operators, 10 rotations, 5 schedules, and two rosters: one of the 5 schedules, one of
/// 5 members named outright; an alert routed to each.
async fn seed(store: &Store) {
    for o in 0..250 {
        store
            .insert_operator(&Operator {
                id: format!("op{o}"),
                name: format!("Operator {o}"),
                phone: PhoneNumber::parse(&format!("+1555010{o:04}")).unwrap(),
                sms_phone: None,
                time_zone: None,
                created_at: t0(),
                updated_at: t0(),
            })
            .await
            .unwrap();
    }
    let ids: Vec<String> = (0..10).map(|r| format!("rot{r}")).collect();
    for (r, id) in ids.iter().enumerate() {
        store
            .insert_rotation(&RotationRecord {
                id: id.clone(),
                name: id.clone(),
                rotation: rotation(r),
                created_at: t0(),
                updated_at: t0(),
            })
            .await
            .unwrap();
    }
    for s in 0..5 {
        let id = format!("sch{s}");
        let rotations: Vec<String> = ids
            .iter()
            .skip(s)
            .chain(ids.iter())
            .take(10)
            .cloned()
            .collect();
        store
            .insert_schedule(&ScheduleRecord {
                id: id.clone(),
                name: id.clone(),
                time_zone: ZONES[s % ZONES.len()],
                rules: (0..10).map(|i| rule(i, &rotations)).collect(),
                created_at: t0(),
                updated_at: t0(),
            })
            .await
            .unwrap();
        store
            .insert_override(&OverrideRecord {
                id: format!("ovr{s}"),
                schedule_id: id,
                rule: Override {
                    add: Some(format!("op{}", 240 + s)),
                    remove: None,
                    start: t0(),
                    end: t0() + Duration::days(365),
                },
                created_by: "bench".into(),
                created_at: t0(),
            })
            .await
            .unwrap()
            .unwrap();
    }
    let rosters = [
        (
            "ros_schedules",
            (0..5)
                .map(|s| Entry::Schedule {
                    schedule_id: format!("sch{s}"),
                })
                .collect::<Vec<_>>(),
        ),
        (
            "ros_plain",
            (0..5)
                .map(|o| {
                    Entry::Member(tocsin::store::escalation::Member {
                        name: format!("Member {o}"),
                        phone: PhoneNumber::parse(&format!("+1555020{o:04}")).unwrap(),
                        operator_id: None,
                        sms_phone: None,
                    })
                })
                .collect(),
        ),
    ];
    for (id, members) in rosters {
        store
            .insert_roster(&Roster {
                id: id.into(),
                name: id.into(),
                members,
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
                id: format!("rte_{id}"),
                roster_id: id.into(),
                alert_id: Some(format!("alt_{id}")),
                template_id: None,
                owner_id: None,
                created_at: t0(),
            })
            .await
            .unwrap();
    }
}

async fn loop_start_cost(name: &str, store: Store, loops: usize) {
    seed(&store).await;
    let none = Default::default();
    // Warm both paths, then measure them alternately, a quarter at a time.
    support::loop_starts(&store, "ros_schedules", 20, &none).await;
    support::loop_starts(&store, "ros_plain", 20, &none).await;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        with.extend(support::loop_starts(&store, "ros_schedules", loops / 4, &none).await);
        without.extend(support::loop_starts(&store, "ros_plain", loops / 4, &none).await);
    }
    with.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&with, 0.5), percentile(&with, 0.99));
    let (b50, b99) = (percentile(&without, 0.5), percentile(&without, 0.99));
    println!(
        "{name}: loop start, roster of 5 schedules: p50 {p50:.3} ms, p99 {p99:.3} ms; roster of 5 members: p50 {b50:.3} ms, p99 {b99:.3} ms; expansion adds {:.3} ms at p50, {:.3} ms at p99 (target ≤ 1 ms at p99)",
        p50 - b50,
        p99 - b99
    );
    store.close().await;
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    on_call_speed();
    let loops: usize = std::env::var("BENCH_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Database::Sqlite(dir.path().join("oncall.db")))
        .await
        .unwrap();
    loop_start_cost("SQLite", store, loops).await;
    if let Ok(server) = std::env::var("BENCH_POSTGRES") {
        let name = format!("tocsin_bench_oncall_{}", std::process::id());
        let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let store = Store::open(&Database::Postgres(format!("{server}/{name}")))
            .await
            .unwrap();
        loop_start_cost("PostgreSQL", store, loops).await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&admin)
            .await
            .unwrap();
    }
}

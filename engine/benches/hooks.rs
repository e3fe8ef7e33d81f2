//! Cloud triggers under load, over HTTP on loopback: Alertmanager deliveries of 10 alerts
//! each, from concurrent clients, to one integration. Counts alarms accepted per second
//! (a 200 means durably committed) and, for every alarm, the time from its POST to its
//! incident opening.
//!
//! Run with `cargo bench -p tocsin --bench hooks`; `BENCH_PAYLOADS` sets the deliveries
//! (1,000), `BENCH_RATE` offers alarms at a fixed rate instead of as fast as 32 clients
//! are answered. The load generator shares the server's process and cores.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tocsin::app::{IncidentEvent, Server};
use tocsin::clock::Clock;
use tocsin::config::Config;

/// The allocator the `tocsin` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEY: &str = "bench-admin-key";
/// Deliveries sent; `BENCH_PAYLOADS` overrides it.
fn payloads() -> usize {
    std::env::var("BENCH_PAYLOADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}
/// Alarms per second to offer, open loop; `BENCH_RATE` sets it. Without it, `CLIENTS`
/// clients send as fast as they are answered.
fn rate() -> Option<f64> {
    std::env::var("BENCH_RATE")
        .ok()
        .and_then(|n| n.parse().ok())
}
const ALERTS_PER_PAYLOAD: usize = 10;
const CLIENTS: usize = 32;

fn payload(n: usize) -> (Vec<String>, Vec<u8>) {
    let fingerprints: Vec<String> = (0..ALERTS_PER_PAYLOAD)
        .map(|i| format!("{n:08x}{i:08x}"))
        .collect();
    let alerts: Vec<Value> = fingerprints
        .iter()
        .map(|fp| {
            json!({"status": "firing", "labels": {"alertname": "InstanceDown", "instance": format!("host-{fp}:9100"), "severity": "critical"},
                   "annotations": {"summary": "instance down"}, "startsAt": "2026-11-22T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                   "generatorURL": "http://prometheus:9090/graph", "fingerprint": fp})
        })
        .collect();
    let body = json!({"receiver": "tocsin", "status": "firing", "alerts": alerts, "groupLabels": {}, "commonLabels": {},
                      "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "version": "4",
                      "groupKey": format!("{{}}:{{batch=\"{n}\"}}"), "truncatedAlerts": 0});
    (fingerprints, serde_json::to_vec(&body).unwrap())
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_database(dir.path().join("bench.db"));
    config.admin_key = Some(KEY.into());
    // A Twilio account whose API is a loopback port nothing listens on, dialed at most once
    // every 1,000 s: every opening writes its call loop, as with a real account, and the
    // dialer stays out of the measurement. (Without an account, `serve` starts no loops.)
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config.twilio = Some(tocsin_twilio::Account {
        sid: format!("AC{}", "0".repeat(32)),
        auth_token: "bench".into(),
        from: "+15550000000".into(),
        api_base: format!("http://{}", nowhere.local_addr().unwrap()),
    });
    drop(nowhere);
    config.calls_per_second = 0.001;
    let server = Server::start(config, Clock::System).await.unwrap();
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/integrations"))
        .bearer_auth(KEY)
        .json(&json!({"name": "prometheus", "kind": "alertmanager"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    // A default route to a roster, so every incident also starts its call loop as it opens.
    let roster: Value = client
        .post(format!("{base}/rosters"))
        .bearer_auth(KEY)
        .json(&json!({"name": "on-call", "members": [{"name": "Ada", "phone": "+15550000001"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let route = client
        .post(format!("{base}/routes"))
        .bearer_auth(KEY)
        .json(&json!({"rosterId": roster["id"]}))
        .send()
        .await
        .unwrap();
    assert!(route.status().is_success(), "{}", route.status());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Every incident's opening time, by subject.
    let opened: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut events = server.core().incidents.subscribe();
    let sink = opened.clone();
    let listener = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let IncidentEvent::Opened { subject, .. } = event {
                sink.lock().unwrap().insert(subject, Instant::now());
            }
        }
    });

    let count = payloads();
    let payloads: Vec<(Vec<String>, Vec<u8>)> = (0..count).map(payload).collect();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    // How long each POST took to be answered (its alarms committed).
    let acks: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let url = format!("{base}/hooks/{id}");
    let post = {
        let (sent, acks, client, secret) =
            (sent.clone(), acks.clone(), client.clone(), secret.clone());
        move |(fingerprints, body): (Vec<String>, Vec<u8>)| {
            let (sent, acks, client, url, secret) = (
                sent.clone(),
                acks.clone(),
                client.clone(),
                url.clone(),
                secret.clone(),
            );
            async move {
                let at = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&secret)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                acks.lock().unwrap().push(at.elapsed());
                let mut sent = sent.lock().unwrap();
                for fp in fingerprints {
                    sent.insert(fp, at);
                }
            }
        }
    };
    let started = Instant::now();
    let senders: Vec<_> = match rate() {
        // Open loop: a delivery every 10 / rate seconds, whatever the server's pace.
        Some(rate) => {
            let every = Duration::from_secs_f64(ALERTS_PER_PAYLOAD as f64 / rate);
            let mut senders = Vec::with_capacity(count);
            for (n, payload) in payloads.into_iter().enumerate() {
                tokio::time::sleep_until((started + every * n as u32).into()).await;
                senders.push(tokio::spawn(post(payload)));
            }
            senders
        }
        // Closed loop: each client sends its next delivery when the last is answered.
        None => {
            let queue = Arc::new(Mutex::new(payloads));
            (0..CLIENTS)
                .map(|_| {
                    let (queue, post) = (queue.clone(), post.clone());
                    tokio::spawn(async move {
                        loop {
                            let Some(payload) = queue.lock().unwrap().pop() else {
                                return;
                            };
                            post(payload).await;
                        }
                    })
                })
                .collect()
        }
    };
    for sender in senders {
        sender.await.unwrap();
    }
    let accepted = started.elapsed();
    let total = count * ALERTS_PER_PAYLOAD;
    let deadline = Instant::now() + Duration::from_secs(60);
    while opened.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_open = started.elapsed();
    listener.abort();
    let opened = std::mem::take(&mut *opened.lock().unwrap());
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(fp, at)| Some(opened.get(&format!("{id}:{fp}"))?.duration_since(*at)))
        .collect();
    latencies.sort();
    let pct = |latencies: &[Duration], p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };
    let mut acks = std::mem::take(&mut *acks.lock().unwrap());
    acks.sort();
    let problems = server
        .core()
        .catalog
        .get(created["alertId"].as_str().unwrap())
        .and_then(|a| a.last_evaluation.clone())
        .and_then(|l| l.message);
    if let Some(problem) = problems {
        println!("the integration's alert last failed with: {problem}");
    }
    let load = match rate() {
        Some(rate) => format!("offered at {rate:.0} alarms/s"),
        None => format!("from {CLIENTS} clients"),
    };
    println!(
        "{total} alarms in {count} Alertmanager deliveries {load}: accepted and committed in {:.2} s = {:.0} alarms/s; all {} incidents open after {:.2} s",
        accepted.as_secs_f64(),
        total as f64 / accepted.as_secs_f64(),
        opened.len(),
        all_open.as_secs_f64()
    );
    println!(
        "POST -> 200 (alarms committed, {} deliveries): p50 {:.1} ms, p99 {:.1} ms",
        acks.len(),
        pct(&acks, 0.50),
        pct(&acks, 0.99),
    );
    println!(
        "POST -> incident open ({} alarms): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(&latencies, 0.50),
        pct(&latencies, 0.99),
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    let incidents: Value = client
        .get(format!("{base}/incidents?pageSize=1"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = incidents["data"][0]["id"].as_str().unwrap();
    let timeline: Value = client
        .get(format!("{base}/incidents/{first}/timeline"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["kind"].as_str())
        .collect();
    println!("timeline of the first incident: {kinds:?}");
    assert!(kinds.contains(&"escalation-started"), "{kinds:?}");

    // The integration's alert's turn on the schedule (due hourly), taken now: every alarm
    // judged again, one by one, and the alert's outcome recorded.
    let core = server.core();
    let alert = core
        .catalog
        .get(created["alertId"].as_str().unwrap())
        .unwrap();
    let (evaluations, failures) = (
        core.metrics.evaluations.get(),
        core.metrics.evaluation_failures.get(),
    );
    let started = Instant::now();
    core.evaluate_on_schedule(&alert).await;
    while core.metrics.evaluations.get() - evaluations < total as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "scheduled turn of the integration's alert: {} evaluations, {} failed, in {:.2} s",
        core.metrics.evaluations.get() - evaluations,
        core.metrics.evaluation_failures.get() - failures,
        started.elapsed().as_secs_f64()
    );
    server.stop().await;
}

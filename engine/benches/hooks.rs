//! Cloud triggers under load, over HTTP on loopback: Alertmanager deliveries of 10 alerts
//! each, from concurrent clients, to one integration. Counts alarms accepted per second
//! (a 200 means durably committed) and, for every alarm, the time from its POST to its
//! incident opening.
//!
//! Run with `cargo bench -p tocsin --bench hooks`. The load generator shares the server's
//! process and cores.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tocsin::app::{IncidentEvent, Server};
use tocsin::clock::Clock;
use tocsin::config::Config;

const KEY: &str = "bench-admin-key";
/// Deliveries sent; `BENCH_PAYLOADS` overrides it.
fn payloads() -> usize {
    std::env::var("BENCH_PAYLOADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
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
    let queue = Arc::new(Mutex::new(payloads));
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (queue, sent, client) = (queue.clone(), sent.clone(), client.clone());
            let url = format!("{base}/hooks/{id}");
            let secret = secret.clone();
            tokio::spawn(async move {
                loop {
                    let Some((fingerprints, body)) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let at = Instant::now();
                    let response = client
                        .post(&url)
                        .bearer_auth(&secret)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                    let mut sent = sent.lock().unwrap();
                    for fp in fingerprints {
                        sent.insert(fp, at);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
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
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let problems = server
        .core()
        .catalog
        .get(created["alertId"].as_str().unwrap())
        .and_then(|a| a.last_evaluation.clone())
        .and_then(|l| l.message);
    if let Some(problem) = problems {
        println!("the integration's alert last failed with: {problem}");
    }
    println!(
        "{total} alarms in {count} Alertmanager deliveries from {CLIENTS} clients: accepted and committed in {:.2} s = {:.0} alarms/s; all {} incidents open after {:.2} s",
        accepted.as_secs_f64(),
        total as f64 / accepted.as_secs_f64(),
        opened.len(),
        all_open.as_secs_f64()
    );
    println!(
        "POST -> incident open ({} alarms): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    server.stop().await;
}

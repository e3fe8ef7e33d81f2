//! The server under load, over HTTP on loopback: entity updates per second (each durably
//! committed and evaluated), time from a data change to the incident it opens, and resident
//! memory with 100,000 active alerts.
//!
//! Run with `cargo bench -p tocsin --bench server`. The load generator runs in the same
//! process as the server and shares its two cores, so the numbers are a lower bound.
//! `BENCH_POSTGRES=postgres://user@host:port` runs the throughput and latency on
//! PostgreSQL instead, in a database of its own that it creates and drops; with
//! `BENCH_NODES=2` as well, on two nodes sharing it (both in this process), the clients
//! and the latency samples alternating between them.

mod support;

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tocsin::app::{IncidentEvent, Server};
use tocsin::clock::Clock;
use tocsin::config::Config;
use tocsin::store::alerts::{Alert, AlertStatus, raw_json};
use tocsin::store::incidents::new_id;

/// The allocator the `tocsin` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEY: &str = "bench-admin-key";
const BEARER: &str = "Bearer bench-admin-key";
const ACCOUNTS: usize = 1_000;
const UPDATES: usize = 30_000;
static CLIENTS: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64)
});
const LATENCY_SAMPLES: usize = 300;
const MANY_ALERTS: usize = 100_000;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn cpu_seconds() -> f64 {
    support::cpu_seconds("self")
}

async fn drained(server: &Server) {
    let core = server.core();
    loop {
        let before = core.metrics.evaluations.get();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if core.queue.is_empty() && core.metrics.evaluations.get() == before {
            return;
        }
    }
}

fn alert(account: usize, now: chrono::DateTime<chrono::Utc>) -> Alert {
    Alert {
        id: new_id("alt"),
        template_id: "credit_low_balance".into(),
        version: 1,
        description: None,
        status: AlertStatus::Active,
        interval_minutes: 60,
        validity_minutes: None,
        valid_until: None,
        owner_details: Some(raw_json(&json!({"id": format!("acc{account}")}))),
        entity_details: None,
        parameters: raw_json(&json!({"threshold": 50})),
        created_at: now,
        updated_at: now,
        last_evaluation: None,
        expired_at: None,
    }
}

/// One keep-alive HTTP/1.1 connection of the load generator: the request written as one
/// buffer, the response read until its `content-length` is in. A client library would spend
/// the shared cores on what the bench does not need (hyper spawned a task per connection and
/// took 8% of all samples; reqwest, before it, 16%).
struct Connection {
    stream: tokio::net::TcpStream,
    request: Vec<u8>,
    response: Vec<u8>,
}

impl Connection {
    async fn open(addr: std::net::SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            request: Vec::with_capacity(512),
            response: Vec::with_capacity(1024),
        }
    }

    /// `PUT path` with a JSON body and the bench's key; the response status.
    async fn put(&mut self, path: &str, body: &str) -> u16 {
        use std::io::Write;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.request.clear();
        write!(
            self.request,
            "PUT {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: {BEARER}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        self.stream.write_all(&self.request).await.unwrap();
        self.response.clear();
        loop {
            if let Some((status, length)) = head(&self.response)
                && self.response.len() >= length
            {
                assert_eq!(self.response.len(), length, "one response at a time");
                return status;
            }
            let read = self.stream.read_buf(&mut self.response).await.unwrap();
            assert!(read > 0, "the server closed the connection");
        }
    }
}

/// The status and whole length (head and body) of the response in `buf`, once its head is in.
fn head(buf: &[u8]) -> Option<(u16, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().unwrap())
        })
        .expect("responses carry content-length");
    Some((status, end + length))
}

/// A fresh PostgreSQL database on the server `BENCH_POSTGRES` names, if it names one: its
/// URL, and the server's.
async fn postgres_database() -> Option<(String, String)> {
    use sqlx::Connection as _;
    let server = std::env::var("BENCH_POSTGRES").ok()?;
    let server = server.trim_end_matches('/').to_owned();
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("BENCH_POSTGRES reachable");
    let name = format!("tocsin_bench_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    Some((format!("{server}/{name}"), server))
}

async fn drop_database(server: &str, url: &str) {
    use sqlx::Connection as _;
    let name = url.rsplit('/').next().unwrap();
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

async fn start(dir: &std::path::Path, postgres: Option<&str>, node: &str) -> Server {
    let mut config = match postgres {
        Some(url) => {
            let mut config = Config::for_database(tocsin::store::Database::parse(url));
            config.cache_dir = dir.join("cache");
            config
        }
        None => Config::for_database(dir.join("bench.db")),
    };
    config.admin_key = Some(KEY.into());
    config.node_id = node.into();
    Server::start(config, Clock::System)
        .await
        .expect("server starts")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The memory measurement runs in a process of its own, so what the throughput and
    // latency runs allocated does not count toward it.
    let args: Vec<String> = std::env::args().collect();
    if let [_, step, db] = args.as_slice()
        && step == "import"
    {
        return import(std::path::Path::new(db)).await;
    }
    if args.iter().any(|a| a == "memory") {
        return memory().await;
    }
    let dir = tempfile::tempdir().unwrap();
    let postgres = postgres_database().await;
    let url = postgres.as_ref().map(|(url, _)| url.as_str());
    let server = start(dir.path(), url, "bench-a").await;
    let second = match (url, std::env::var("BENCH_NODES").as_deref()) {
        (Some(url), Ok("2")) => Some(start(dir.path(), Some(url), "bench-b").await),
        _ => None,
    };
    println!(
        "database: {}, {} node(s)",
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        1 + usize::from(second.is_some())
    );
    let servers: Vec<&Server> = std::iter::once(&server).chain(second.as_ref()).collect();
    let addrs: Vec<std::net::SocketAddr> = servers.iter().map(|s| s.addr()).collect();
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();

    // 1,000 accounts, one alert each, all evaluated once (and so indexed) before the load.
    let started = Instant::now();
    let mut alert_of_account = Vec::with_capacity(ACCOUNTS);
    for account in 0..ACCOUNTS {
        let created: serde_json::Value = client
            .post(format!("{base}/alerts"))
            .bearer_auth(KEY)
            .json(&json!({"alertTemplateId": "credit_low_balance", "interval": 60, "status": "ACTIVE",
                          "ownerDetails": {"id": format!("acc{account}")}, "parameters": {"threshold": 50}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        alert_of_account.push(created["id"].as_str().unwrap().to_owned());
    }
    for s in &servers {
        drained(s).await;
    }
    // Every alert claimed by a node, and evaluated there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for s in &servers {
        drained(s).await;
    }
    println!(
        "created {ACCOUNTS} alerts over HTTP, one at a time, in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Throughput: 64 clients push 30,000 credit snapshots that keep every account clear.
    let next = Arc::new(AtomicUsize::new(0));
    let evaluated_so_far = || -> u64 {
        servers
            .iter()
            .map(|s| s.core().metrics.evaluations.get())
            .sum()
    };
    let evaluations_before = evaluated_so_far();
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let clients: Vec<_> = (0..*CLIENTS)
        .map(|client| {
            let (addr, next) = (addrs[client % addrs.len()], next.clone());
            tokio::spawn(async move {
                let mut connection = Connection::open(addr).await;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= UPDATES {
                        return;
                    }
                    let account = i % ACCOUNTS;
                    let body = format!(
                        r#"{{"ownerType":"ACCOUNT","ownerId":"acc{account}","attributes":{{"balance":"{}","granted":"10000"}}}}"#,
                        100 + i
                    );
                    let status = connection
                        .put(&format!("/entities/CREDIT/c{account}"), &body)
                        .await;
                    assert_eq!(status, 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = started.elapsed();
    for s in &servers {
        drained(s).await;
    }
    let evaluated = started.elapsed() - Duration::from_millis(100);
    let evaluations = evaluated_so_far() - evaluations_before;
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "{UPDATES} entity updates from {} clients: all committed and acknowledged in {:.2} s ({:.0} updates/s); \
         evaluations caught up after {:.2} s ({:.0} updates/s evaluated, {evaluations} evaluations: a change that arrives \
         while its alert waits is covered by that one evaluation); CPU {:.0} µs per update, load generator included, \
         {:.2} of the 2 cores busy",
        *CLIENTS,
        acknowledged.as_secs_f64(),
        UPDATES as f64 / acknowledged.as_secs_f64(),
        evaluated.as_secs_f64(),
        UPDATES as f64 / evaluated.as_secs_f64(),
        cpu * 1e6 / UPDATES as f64,
        cpu / evaluated.as_secs_f64(),
    );

    // Latency: a change that breaches, to the incident it opens (committed), one at a time.
    // Incidents open on whichever node holds the alert: both are listened to.
    let (opened, mut events) = tokio::sync::mpsc::unbounded_channel();
    let listeners: Vec<_> = servers
        .iter()
        .map(|s| {
            let mut events = s.core().incidents.subscribe();
            let opened = opened.clone();
            tokio::spawn(async move {
                while let Ok(event) = events.recv().await {
                    if let IncidentEvent::Opened { alert_id, .. } = event
                        && opened.send(alert_id).is_err()
                    {
                        return;
                    }
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for (account, alert_id) in alert_of_account.iter().enumerate().take(LATENCY_SAMPLES) {
        let sent = Instant::now();
        let base = format!("http://{}", addrs[account % addrs.len()]);
        client
            .put(format!("{base}/entities/CREDIT/c{account}"))
            .bearer_auth(KEY)
            .json(&json!({"ownerType": "ACCOUNT", "ownerId": format!("acc{account}"), "attributes": {"balance": "10", "granted": "10000"}}))
            .send()
            .await
            .unwrap();
        while events.recv().await.unwrap() != *alert_id {}
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "change -> incident open ({LATENCY_SAMPLES} samples): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    for listener in listeners {
        listener.abort();
    }
    if let Some(second) = second {
        second.stop().await;
    }
    server.stop().await;
    if let Some((url, server)) = &postgres {
        drop_database(server, url).await;
        return;
    }

    // `BENCH_MEMORY=0` leaves it out, to profile the rest alone.
    if std::env::var("BENCH_MEMORY").as_deref() != Ok("0") {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("memory")
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// 100,000 active alerts written straight to the database, in a process of its own so
/// that building them does not count toward the server's memory.
async fn import(db: &std::path::Path) {
    let store = tocsin::store::Sqlite::open(db).await.unwrap();
    let now = chrono::Utc::now();
    let alerts: Vec<Alert> = (0..MANY_ALERTS).map(|i| alert(i, now)).collect();
    for chunk in alerts.chunks(10_000) {
        store.insert_alerts(chunk).await.unwrap();
    }
    store.close().await;
}

/// Memory: 100,000 active alerts, imported in bulk, loaded at start and all evaluated.
async fn memory() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("import")
        .arg(dir.path().join("bench.db"))
        .status()
        .unwrap();
    assert!(status.success());
    let rss_before = rss_mib();
    let started = Instant::now();
    let server = start(dir.path(), None, "bench").await;
    let loaded = started.elapsed();
    drained(&server).await;
    let evaluations = server.core().metrics.evaluations.get();
    assert!(
        evaluations >= MANY_ALERTS as u64,
        "{evaluations} evaluations"
    );
    println!(
        "{MANY_ALERTS} active alerts: started in {:.2} s, first evaluation of all ({evaluations} evaluations) \
         done after {:.1} s; resident memory {:.0} MiB ({:.0} MiB before the server started)",
        loaded.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        rss_mib(),
        rss_before
    );
    // For a closer look: the process's mappings, and an exit that leaves what is live for
    // a heap profiler to report (`heaptrack` counts it as leaked).
    if let Ok(path) = std::env::var("BENCH_SMAPS") {
        std::fs::copy("/proc/self/smaps", path).unwrap();
        std::process::exit(0);
    }
    server.stop().await;
}

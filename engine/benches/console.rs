//! The console's pages with 10,000 incidents in the store: each page requested over HTTP
//! on loopback, signed in, 200 times; p50 and p99 of the time to the whole page.
//!
//! Run with `cargo bench -p tocsin --bench console` (SQLite; `BENCH_POSTGRES=postgres://…`
//! for PostgreSQL, in a database of its own). The incidents come the way cloud alarms do:
//! a generic integration's deliveries of 500 alarms each, 10,000 alarms in all, of which
//! 2,000 then resolve; every incident has its call loop (a default route to a roster whose
//! Twilio account nobody answers, dialed once per 1,000 s).

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tocsin::app::Server;
use tocsin::clock::Clock;
use tocsin::config::Config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEY: &str = "bench-admin-key";
const INCIDENTS: usize = 10_000;
const RESOLVED: usize = 2_000;
const PER_DELIVERY: usize = 500;
const SAMPLES: usize = 200;

fn delivery(from: usize, state: &str) -> Vec<u8> {
    let alarms: Vec<Value> = (from..from + PER_DELIVERY)
        .map(|n| {
            json!({"key": format!("alarm-{n:05}"), "state": state, "name": "DiskFull",
                   "resource": format!("db-{n}"), "severity": "critical",
                   "summary": "disk full on the primary"})
        })
        .collect();
    json!({"alarms": alarms}).to_string().into_bytes()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    // `RUST_LOG=tocsin=info` (say) shows the server's log on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let dir = tempfile::tempdir().unwrap();
    let database = std::env::var("BENCH_POSTGRES").ok();
    let pg = match &database {
        Some(url) => Some(support_pg::create(url).await),
        None => None,
    };
    let mut config = match &pg {
        Some((url, _)) => Config::for_database(tocsin::store::Database::parse(url)),
        None => Config::for_database(dir.path().join("bench.db")),
    };
    config.admin_key = Some(KEY.into());
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
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str, body: Value| {
        let request = client
            .post(format!("{base}{path}"))
            .bearer_auth(KEY)
            .json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let integration = post(
        "/integrations",
        json!({"name": "monitor", "kind": "generic"}),
    )
    .await;
    let (id, secret) = (
        integration["id"].as_str().unwrap().to_owned(),
        integration["secret"].as_str().unwrap().to_owned(),
    );
    let roster = post(
        "/rosters",
        json!({"name": "on-call", "members": [{"name": "Ada", "phone": "+15550000001"}]}),
    )
    .await;
    post("/routes", json!({"rosterId": roster["id"]})).await;
    post("/operators", json!({"name": "Bo", "phone": "+15550000002"})).await;

    let started = Instant::now();
    let deliver = |body: Vec<u8>| {
        let request = client
            .post(format!("{base}/hooks/{id}"))
            .bearer_auth(&secret)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
        }
    };
    for from in (0..INCIDENTS).step_by(PER_DELIVERY) {
        deliver(delivery(from, "FIRING")).await;
    }
    for from in (0..RESOLVED).step_by(PER_DELIVERY) {
        deliver(delivery(from, "RESOLVED")).await;
    }
    // Until every incident is in: INCIDENTS opened, RESOLVED of them closed.
    let count = |status: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let mut n = 0;
            let mut token: Option<String> = None;
            loop {
                let mut url = format!("{base}/incidents?status={status}&pageSize=500");
                if let Some(t) = &token {
                    url.push_str(&format!("&nextToken={t}"));
                }
                let page: Value = client
                    .get(url)
                    .bearer_auth(KEY)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                n += page["data"].as_array().unwrap().len();
                match page["nextToken"].as_str() {
                    Some(t) => token = Some(t.to_owned()),
                    None => return n,
                }
            }
        }
    };
    let (mut open, mut closed);
    loop {
        (open, closed) = (count("OPEN").await, count("CLOSED").await);
        if open + closed >= INCIDENTS && closed >= RESOLVED {
            break;
        }
        // Pages are measured whatever the store holds, but a resolution that never
        // closed its incident is a defect, and said so.
        if started.elapsed() > Duration::from_secs(120) {
            println!(
                "DEFECT: after {:.0} s, {open} open and {closed} closed of {INCIDENTS} incidents; \
                 {RESOLVED} should have closed",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{} incidents ({closed} closed) in the store after {:.1} s",
        open + closed,
        started.elapsed().as_secs_f64()
    );
    assert!(open > 0, "no open incident to show");

    let signed = client
        .post(format!("{base}/console/sign-in"))
        .form(&[("key", KEY)])
        .send()
        .await
        .unwrap();
    let cookie = signed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page: Value = client
        .get(format!("{base}/incidents?status=OPEN&pageSize=1"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let incident = page["data"][0]["id"].as_str().unwrap().to_owned();
    let pages = [
        "/console/incidents".to_owned(),
        "/console/incidents/rows".to_owned(),
        "/console/incidents?status=ALL".to_owned(),
        format!("/console/incidents/{incident}"),
        format!("/console/incidents/{incident}/live"),
        "/console/on-call".to_owned(),
        "/console/silences".to_owned(),
        "/console/alerts".to_owned(),
        "/console/integrations".to_owned(),
        "/console/operators".to_owned(),
    ];
    let mut worst: f64 = 0.0;
    for path in &pages {
        let mut times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let at = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let body = response.bytes().await.unwrap();
            times.push(at.elapsed().as_secs_f64() * 1e3);
            assert!(!body.is_empty());
        }
        times.sort_by(f64::total_cmp);
        let p99 = percentile(&times, 0.99);
        worst = worst.max(p99);
        println!(
            "{path}: p50 {:.2} ms, p99 {p99:.2} ms",
            percentile(&times, 0.5)
        );
    }
    println!(
        "{}: slowest page p99 {worst:.2} ms (target ≤ 50 ms)",
        if pg.is_some() { "PostgreSQL" } else { "SQLite" }
    );
    server.stop().await;
    if let Some((_, drop)) = pg {
        drop.await;
    }
}

/// A PostgreSQL database of the bench's own, dropped at the end.
mod support_pg {
    use sqlx::Connection;

    pub async fn create(
        server: &str,
    ) -> (
        String,
        std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
    ) {
        let name = format!("tocsin_bench_console_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = format!("{server}/{name}");
        let drop = Box::pin(async move {
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
        });
        (url, drop)
    }
}

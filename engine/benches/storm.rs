//! An alert storm, side by side with Prometheus Alertmanager: the same alerts sent to both
//! (Tocsin receives them as Alertmanager webhook deliveries on an `alertmanager`
//! integration), in interleaved rounds: ingest, an identical re-send, a changed re-send,
//! and resolve. Then the idle cost of each, with nothing to do and (Tocsin) with every
//! loop queued on busy numbers, and what a SIGKILL right after the last acknowledgement
//! leaves.
//!
//! Run with `cargo bench -p tocsin --bench storm`. It installs Debian's
//! `prometheus-alertmanager` when missing. Both servers are processes of their own, so CPU
//! and peak RSS are each one's alone; the load generator is this process. `BENCH_ALERTS`
//! (10,000) and `BENCH_ROUNDS` (10) size it; `BENCH_POSTGRES=postgres://user@host:port`
//! runs Tocsin on PostgreSQL, in a database of its own that it creates and drops.

mod support;

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tocsin_twilio_sim::{SimConfig, SimServer};

const KEY: &str = "bench-admin-key";
const BATCH: usize = 100;
const CLIENTS: usize = 4;
/// The roster's two numbers: each rings out after the longest ring timeout, so while a
/// storm's incidents are open every loop but two waits for a free number.
const PHONES: [&str; 2] = ["+15550500001", "+15550500002"];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

fn cpu_seconds(pid: u32) -> f64 {
    support::cpu_seconds(&pid.to_string())
}

/// A process's peak resident memory, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Alertmanager's binary, installed from Debian's packages when missing.
fn alertmanager_binary() -> String {
    let binary = "/usr/bin/prometheus-alertmanager";
    if std::path::Path::new(binary).exists() {
        return binary.into();
    }
    eprintln!("installing Alertmanager from Debian's packages (prometheus-alertmanager)");
    let install = || {
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "prometheus-alertmanager",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").arg("update").status();
        assert!(install(), "could not install prometheus-alertmanager");
    }
    binary.into()
}

/// One server under test: a child process and how to start it again.
struct Process {
    command: Box<dyn Fn() -> Child>,
    child: Option<Child>,
    health: String,
}

impl Process {
    async fn start(&mut self, client: &reqwest::Client) {
        self.child = Some((self.command)());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client
            .get(&self.health)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "{} did not start", self.health);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(self.pid())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum System {
    Alertmanager,
    Tocsin,
}

/// What both are sent: alert `i` of the set named `set`, firing or resolved, with a
/// summary that a changed re-send alters.
fn labels(set: &str, i: usize) -> Value {
    json!({"alertname": "InstanceDown", "instance": format!("{set}-host-{i}:9100"), "severity": "critical", "job": "node"})
}

fn alertmanager_body(
    set: &str,
    range: std::ops::Range<usize>,
    summary: &str,
    resolved: bool,
) -> Vec<u8> {
    let now = chrono::Utc::now();
    let alerts: Vec<Value> = range
        .map(|i| {
            let mut alert = json!({"labels": labels(set, i), "annotations": {"summary": summary},
                                   "startsAt": "2026-12-03T09:00:00Z", "generatorURL": "http://prometheus:9090/graph"});
            if resolved {
                alert["endsAt"] = json!((now - chrono::Duration::seconds(1)).to_rfc3339());
            }
            alert
        })
        .collect();
    serde_json::to_vec(&alerts).unwrap()
}

fn tocsin_body(set: &str, range: std::ops::Range<usize>, summary: &str, resolved: bool) -> Vec<u8> {
    let status = if resolved { "resolved" } else { "firing" };
    let ends = if resolved {
        "2026-12-03T10:00:00Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    let alerts: Vec<Value> = range
        .map(|i| {
            json!({"status": status, "labels": labels(set, i), "annotations": {"summary": summary},
                   "startsAt": "2026-12-03T09:00:00Z", "endsAt": ends,
                   "generatorURL": "http://prometheus:9090/graph", "fingerprint": format!("{:016x}", fingerprint(set, i))})
        })
        .collect();
    let body = json!({"receiver": "tocsin", "status": status, "alerts": alerts, "groupLabels": {}, "commonLabels": {},
                      "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "version": "4",
                      "groupKey": "{}:{}", "truncatedAlerts": 0});
    serde_json::to_vec(&body).unwrap()
}

fn fingerprint(set: &str, i: usize) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (set, i).hash(&mut hasher);
    hasher.finish()
}

/// Sends `alerts` alerts in batches of [`BATCH`] from [`CLIENTS`] clients, each answered
/// before its client sends the next; returns the time to the last acknowledgement.
async fn send(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    bodies: Vec<Vec<u8>>,
) -> Duration {
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let started = Instant::now();
    let senders: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (queue, client, url, bearer) = (
                queue.clone(),
                client.clone(),
                url.to_owned(),
                bearer.map(str::to_owned),
            );
            tokio::spawn(async move {
                loop {
                    let Some(body) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let mut request = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body);
                    if let Some(bearer) = &bearer {
                        request = request.bearer_auth(bearer);
                    }
                    let response = request.send().await.unwrap();
                    assert!(
                        response.status().is_success(),
                        "{url}: {} {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    );
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    started.elapsed()
}

/// A counter from Tocsin's `/metrics`.
async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Alerts Alertmanager holds as active.
async fn alertmanager_active(client: &reqwest::Client, base: &str) -> usize {
    let alerts: Vec<Value> = client
        .get(format!(
            "{base}/api/v2/alerts?active=true&silenced=false&inhibited=false"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    alerts.len()
}

/// Tocsin's open incidents, counted page by page.
async fn tocsin_open(client: &reqwest::Client, base: &str) -> usize {
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![
            ("status", "OPEN".to_owned()),
            ("pageSize", "500".to_owned()),
        ];
        if let Some(t) = &token {
            query.push(("nextToken", t.clone()));
        }
        let page: Value = client
            .get(format!("{base}/incidents"))
            .query(&query)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        count += page["data"].as_array().map_or(0, Vec::len);
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return count,
        }
    }
}

/// CPU a process uses per second over `over`, in ms.
async fn idle_cpu_ms(process: &Process, over: Duration) -> f64 {
    let before = process.cpu();
    tokio::time::sleep(over).await;
    (process.cpu() - before) * 1000.0 / over.as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[derive(Default)]
struct Figures {
    ingest_per_s: Vec<f64>,
    ingest_cpu_ms: Vec<f64>,
    same_per_s: Vec<f64>,
    changed_per_s: Vec<f64>,
    resolve_s: Vec<f64>,
    resolve_cpu_ms: Vec<f64>,
}

struct Target<'a> {
    system: System,
    process: &'a Process,
    base: String,
    url: String,
    bearer: Option<String>,
}

impl Target<'_> {
    fn bodies(&self, set: &str, alerts: usize, summary: &str, resolved: bool) -> Vec<Vec<u8>> {
        (0..alerts)
            .step_by(BATCH)
            .map(|start| {
                let range = start..(start + BATCH).min(alerts);
                match self.system {
                    System::Alertmanager => alertmanager_body(set, range, summary, resolved),
                    System::Tocsin => tocsin_body(set, range, summary, resolved),
                }
            })
            .collect()
    }

    async fn send(&self, client: &reqwest::Client, bodies: Vec<Vec<u8>>) -> Duration {
        send(client, &self.url, self.bearer.as_deref(), bodies).await
    }

    /// One round: returns when every alert of `set` is cleared.
    async fn round(
        &self,
        client: &reqwest::Client,
        set: &str,
        alerts: usize,
        figures: &mut Figures,
    ) {
        let thousands = alerts as f64 / 1000.0;
        let (opened_before, closed_before) = match self.system {
            System::Tocsin => (
                metric(client, &self.base, "tocsin_incidents_opened_total").await,
                metric(client, &self.base, "tocsin_incidents_closed_total").await,
            ),
            System::Alertmanager => (0.0, 0.0),
        };
        let cpu = self.process.cpu();
        let took = self
            .send(client, self.bodies(set, alerts, "down", false))
            .await;
        figures
            .ingest_per_s
            .push(alerts as f64 / took.as_secs_f64());
        figures
            .ingest_cpu_ms
            .push((self.process.cpu() - cpu) * 1000.0 / thousands);
        if self.system == System::Tocsin {
            // Every incident open before the re-sends and the resolve.
            let deadline = Instant::now() + Duration::from_secs(120);
            while metric(client, &self.base, "tocsin_incidents_opened_total").await - opened_before
                < alerts as f64
            {
                assert!(Instant::now() < deadline, "{set}: not all incidents opened");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let took = self
            .send(client, self.bodies(set, alerts, "down", false))
            .await;
        figures.same_per_s.push(alerts as f64 / took.as_secs_f64());
        let took = self
            .send(
                client,
                self.bodies(set, alerts, "down, and still down", false),
            )
            .await;
        figures
            .changed_per_s
            .push(alerts as f64 / took.as_secs_f64());
        let cpu = self.process.cpu();
        let started = Instant::now();
        self.send(client, self.bodies(set, alerts, "back up", true))
            .await;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let cleared = match self.system {
                System::Alertmanager => alertmanager_active(client, &self.base).await == 0,
                System::Tocsin => {
                    metric(client, &self.base, "tocsin_incidents_closed_total").await
                        - closed_before
                        >= alerts as f64
                }
            };
            if cleared {
                break;
            }
            assert!(Instant::now() < deadline, "{set}: not cleared in time");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        figures.resolve_s.push(started.elapsed().as_secs_f64());
        figures
            .resolve_cpu_ms
            .push((self.process.cpu() - cpu) * 1000.0 / thousands);
    }
}

#[tokio::main]
async fn main() {
    let alerts = env_or("BENCH_ALERTS", 10_000);
    let rounds = env_or("BENCH_ROUNDS", 10);
    let binary = alertmanager_binary();
    let client = reqwest::Client::new();
    let work = tempfile::tempdir().unwrap();

    // Alertmanager: group_by [alertname, instance], a receiver that sends nowhere.
    let am_listen = free_port();
    let am_config = work.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        "route:\n  receiver: 'null'\n  group_by: [alertname, instance]\nreceivers:\n  - name: 'null'\n",
    )
    .unwrap();
    let am_storage = work.path().join("alertmanager");
    let mut alertmanager = Process {
        command: Box::new({
            let (binary, config, storage, listen) = (
                binary.clone(),
                am_config.clone(),
                am_storage.clone(),
                am_listen.clone(),
            );
            move || {
                Command::new(&binary)
                    .arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.path={}", storage.display()))
                    .arg(format!("--web.listen-address={listen}"))
                    .arg("--cluster.listen-address=")
                    .arg("--log.level=warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start Alertmanager")
            }
        }),
        child: None,
        health: format!("http://{am_listen}/-/ready"),
    };
    alertmanager.start(&client).await;

    // Tocsin: `tocsin serve`, its calls placed with the simulator, both numbers ringing out.
    let mut sim_config = SimConfig::new();
    for phone in PHONES {
        sim_config
            .numbers
            .insert(phone.into(), "no-answer".parse().unwrap());
    }
    let (sid, token) = (
        sim_config.account_sid.clone(),
        sim_config.auth_token.clone(),
    );
    let sim = SimServer::start(sim_config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let postgres = match std::env::var("BENCH_POSTGRES") {
        Ok(server) => {
            let name = format!("tocsin_storm_{}", std::process::id());
            let mut admin =
                <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{server}/postgres"))
                    .await
                    .expect("BENCH_POSTGRES reachable");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .unwrap();
            Some((server, name))
        }
        Err(_) => None,
    };
    let database = match &postgres {
        Some((server, name)) => format!("{server}/{name}"),
        None => work.path().join("tocsin.db").to_string_lossy().into_owned(),
    };
    let tocsin_listen = free_port();
    let env: Vec<(&str, String)> = vec![
        ("TOCSIN_DATABASE", database.clone()),
        ("TOCSIN_LISTEN", tocsin_listen.clone()),
        ("TOCSIN_ADMIN_KEY", KEY.to_owned()),
        ("TOCSIN_PUBLIC_URL", format!("http://{tocsin_listen}")),
        (
            "TOCSIN_CACHE_DIR",
            work.path().join("cache").to_string_lossy().into_owned(),
        ),
        ("TWILIO_ACCOUNT_SID", sid),
        ("TWILIO_AUTH_TOKEN", token),
        ("TWILIO_FROM_NUMBER", "+15550009999".to_owned()),
        ("TWILIO_API_BASE", sim.api_base()),
    ];
    let mut tocsin = Process {
        command: Box::new(move || {
            // `BENCH_LOG=<file>` keeps Tocsin's log (at warn) there.
            let log = match std::env::var("BENCH_LOG") {
                Ok(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("open BENCH_LOG"),
                ),
                Err(_) => Stdio::null(),
            };
            Command::new(env!("CARGO_BIN_EXE_tocsin"))
                .arg("serve")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .env(
                    "RUST_LOG",
                    if std::env::var("BENCH_LOG").is_ok() {
                        "tocsin=warn"
                    } else {
                        "tocsin=error"
                    },
                )
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start tocsin")
        }),
        child: None,
        health: format!("http://{tocsin_listen}/healthz"),
    };
    tocsin.start(&client).await;
    let tocsin_base = format!("http://{tocsin_listen}");
    let integration: Value = client
        .post(format!("{tocsin_base}/integrations"))
        .bearer_auth(KEY)
        .json(&json!({"name": "prometheus", "kind": "alertmanager"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roster: Value = client
        .post(format!("{tocsin_base}/rosters"))
        .bearer_auth(KEY)
        .json(&json!({"name": "on-call", "ringTimeoutSeconds": 600,
                      "members": [{"name": "Ada", "phone": PHONES[0]}, {"name": "Grace", "phone": PHONES[1]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let route = client
        .post(format!("{tocsin_base}/routes"))
        .bearer_auth(KEY)
        .json(&json!({"rosterId": roster["id"]}))
        .send()
        .await
        .unwrap();
    assert!(route.status().is_success(), "{}", route.status());
    let hook = format!(
        "{tocsin_base}/hooks/{}",
        integration["id"].as_str().unwrap()
    );
    let secret = integration["secret"].as_str().unwrap().to_owned();

    println!(
        "alert storm: {alerts} alerts in batches of {BATCH} from {CLIENTS} clients, {rounds} rounds interleaved; Tocsin on {}",
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let mut figures = [Figures::default(), Figures::default()];
    for round in 0..rounds {
        let targets = [
            Target {
                system: System::Alertmanager,
                process: &alertmanager,
                base: format!("http://{am_listen}"),
                url: format!("http://{am_listen}/api/v2/alerts"),
                bearer: None,
            },
            Target {
                system: System::Tocsin,
                process: &tocsin,
                base: tocsin_base.clone(),
                url: hook.clone(),
                bearer: Some(secret.clone()),
            },
        ];
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            targets[i]
                .round(&client, &format!("r{round}"), alerts, &mut figures[i])
                .await;
        }
    }

    // Idle, with nothing to do.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = Duration::from_secs(10);
    let am_idle = idle_cpu_ms(&alertmanager, idle).await;
    let tocsin_idle = idle_cpu_ms(&tocsin, idle).await;

    // A storm left open: every loop waits for one of two numbers on a call.
    let opened = metric(&client, &tocsin_base, "tocsin_incidents_opened_total").await;
    let open_bodies = Target {
        system: System::Tocsin,
        process: &tocsin,
        base: tocsin_base.clone(),
        url: hook.clone(),
        bearer: Some(secret.clone()),
    }
    .bodies("open", alerts, "down", false);
    send(&client, &hook, Some(&secret), open_bodies).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(&client, &tocsin_base, "tocsin_incidents_opened_total").await - opened
        < alerts as f64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tocsin_queued = idle_cpu_ms(&tocsin, idle).await;
    let tocsin_rss = peak_rss_mib(tocsin.pid());
    let am_rss = peak_rss_mib(alertmanager.pid());

    // The open storm resolved, then another sent and SIGKILLed right after the last
    // acknowledgement; after a restart, what each still has.
    let open_target = Target {
        system: System::Tocsin,
        process: &tocsin,
        base: tocsin_base.clone(),
        url: hook.clone(),
        bearer: Some(secret.clone()),
    };
    let closed = metric(&client, &tocsin_base, "tocsin_incidents_closed_total").await;
    open_target
        .send(&client, open_target.bodies("open", alerts, "back up", true))
        .await;
    while metric(&client, &tocsin_base, "tocsin_incidents_closed_total").await - closed
        < alerts as f64
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    open_target
        .send(&client, open_target.bodies("killed", alerts, "down", false))
        .await;
    tocsin.kill();
    let am_target = Target {
        system: System::Alertmanager,
        process: &alertmanager,
        base: String::new(),
        url: format!("http://{am_listen}/api/v2/alerts"),
        bearer: None,
    };
    am_target
        .send(&client, am_target.bodies("killed", alerts, "down", false))
        .await;
    alertmanager.kill();
    alertmanager.start(&client).await;
    let am_kept = alertmanager_active(&client, &format!("http://{am_listen}")).await;
    tocsin.start(&client).await;
    // Acknowledged alarms are evaluated again after the restart: wait for them to settle.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tocsin_kept = tocsin_open(&client, &tocsin_base).await;
    while tocsin_kept < alerts && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tocsin_kept = tocsin_open(&client, &tocsin_base).await;
    }

    let row = |name: &str, am: f64, tocsin: f64, unit: &str| {
        println!(
            "{name:<44} {am:>12.2} {tocsin:>12.2} {:>8.2}  {unit}",
            tocsin / am
        );
    };
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "", "Alertmanager", "Tocsin", "T ÷ AM"
    );
    let [am, to] = &mut figures;
    /// One of the figures kept per round.
    type Figure = fn(&mut Figures) -> &mut Vec<f64>;
    let medians: [(&str, Figure, &str); 6] = [
        (
            "ingest, alerts/s acknowledged (median)",
            |f| &mut f.ingest_per_s,
            "alerts/s",
        ),
        (
            "CPU per 1,000 alerts ingested (median)",
            |f| &mut f.ingest_cpu_ms,
            "ms",
        ),
        (
            "identical re-send, alerts/s (median)",
            |f| &mut f.same_per_s,
            "alerts/s",
        ),
        (
            "changed re-send, alerts/s (median)",
            |f| &mut f.changed_per_s,
            "alerts/s",
        ),
        (
            "resolve all, until cleared (median)",
            |f| &mut f.resolve_s,
            "s",
        ),
        (
            "CPU per 1,000 resolved (median)",
            |f| &mut f.resolve_cpu_ms,
            "ms",
        ),
    ];
    for (name, figure, unit) in medians {
        row(name, median(figure(am)), median(figure(to)), unit);
    }
    row(
        "idle, nothing to do, CPU per second",
        am_idle,
        tocsin_idle,
        "ms",
    );
    println!(
        "{:<44} {:>12} {tocsin_queued:>12.2} {:>8}  ms",
        "idle, all loops queued on busy numbers, CPU/s", "—", ""
    );
    row("peak RSS", am_rss, tocsin_rss, "MiB");
    println!(
        "{:<44} {:>12} {:>12}",
        "SIGKILL after the last ack, then restart",
        format!("{am_kept} of {alerts}"),
        format!("{} of {alerts}", tocsin_kept)
    );

    tocsin.kill();
    alertmanager.kill();
    sim.stop().await;
    if let Some((server, name)) = postgres {
        let mut admin =
            <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{server}/postgres"))
                .await
                .unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}

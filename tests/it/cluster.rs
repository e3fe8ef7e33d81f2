//! Several nodes on one PostgreSQL database: each node a `tocsin serve` process of its own
//! (started through the CLI, configured by environment as in production), the Twilio
//! simulator, and what the cluster must keep true when a node is killed.

use crate::pg::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tocsin_twilio_sim::{SimConfig, SimServer};

const ADMIN_KEY: &str = "cluster-admin-key";
/// The simulator's speed: its operators act this much faster than real time.
const SPEED: f64 = 20.0;
/// What the nodes are told: at most this many calls a second, cluster-wide.
const CALLS_PER_SECOND: f64 = 10.0;

/// Runs `tocsin serve` in this process until it is killed: one node of these tests, started
/// by [`Node::start`] with its configuration in the environment.
#[test]
#[ignore = "a node process of the cluster tests"]
fn cluster_node() {
    if std::env::var("TOCSIN_TEST_NODE").is_err() {
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter("tocsin=info")
        .with_writer(std::io::stderr)
        .init();
    use clap::Parser as _;
    tocsin::cli::Cli::parse_from(["tocsin", "serve"])
        .run(&mut std::io::stdout())
        .unwrap();
}

/// A free loopback port's address.
fn free_address() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

/// One node process.
struct Node {
    id: String,
    base: String,
    listen: String,
    log: PathBuf,
    env: Vec<(String, String)>,
    process: Option<std::process::Child>,
}

impl Node {
    /// Starts node `id` on `database`, calling back at `public_url` (its own address when
    /// none), phoning through `phones`.
    fn start(
        id: &str,
        database: &str,
        dir: &Path,
        phones: &Phones,
        public_url: Option<&str>,
    ) -> Self {
        Self::start_on(free_address(), id, database, dir, phones, public_url)
    }

    /// [`Self::start`], listening on `listen`.
    fn start_on(
        listen: String,
        id: &str,
        database: &str,
        dir: &Path,
        phones: &Phones,
        public_url: Option<&str>,
    ) -> Self {
        let base = format!("http://{listen}");
        let env = vec![
            ("TOCSIN_TEST_NODE", "1".to_owned()),
            ("TOCSIN_NODE_ID", id.to_owned()),
            ("TOCSIN_DATABASE", database.to_owned()),
            ("TOCSIN_ADMIN_KEY", ADMIN_KEY.to_owned()),
            (
                "TOCSIN_PUBLIC_URL",
                public_url.map_or(base.clone(), str::to_owned),
            ),
            (
                "TOCSIN_CACHE_DIR",
                dir.join("cache").to_string_lossy().into_owned(),
            ),
            ("TOCSIN_CALLS_PER_SECOND", CALLS_PER_SECOND.to_string()),
            ("TWILIO_ACCOUNT_SID", phones.sid.clone()),
            ("TWILIO_AUTH_TOKEN", phones.token.clone()),
            ("TWILIO_FROM_NUMBER", "+15550009999".to_owned()),
            ("TWILIO_API_BASE", phones.api_base()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut node = Self {
            id: id.to_owned(),
            base,
            listen,
            log: dir.join(format!("{id}.log")),
            env,
            process: None,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let process = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "cluster::cluster_node",
                "--nocapture",
            ])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("TOCSIN_LISTEN", &self.listen)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.process = Some(process);
    }

    /// SIGKILL: no shutdown, no lease released, nothing flushed.
    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().unwrap();
            process.wait().unwrap();
        }
    }

    /// The node's log so far, for a failure's message.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn healthy(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = client
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not start:\n{}",
                self.id,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what each node said.
        if std::thread::panicking() {
            eprintln!("--- node {} log ---\n{}", self.id, self.log());
        }
    }
}

/// Sends a request as the admin; panics on a failure status.
async fn call(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Value,
) -> Value {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(ADMIN_KEY);
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Polls `check` every 100 ms for up to `limit`.
async fn wait_until<F, Fut, T>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The simulator, and the account it knows.
struct Phones {
    server: SimServer,
    sid: String,
    token: String,
}

impl Phones {
    fn api_base(&self) -> String {
        self.server.api_base()
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

async fn start_phones(numbers: &[(String, &str)]) -> Phones {
    let mut config = SimConfig::new();
    config.speed = SPEED;
    for (number, behaviour) in numbers {
        config
            .numbers
            .insert(number.clone(), behaviour.parse().unwrap());
    }
    let (sid, token) = (config.account_sid.clone(), config.auth_token.clone());
    let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Phones { server, sid, token }
}

async fn sim_get(client: &reqwest::Client, phones: &Phones, path: &str) -> Vec<Value> {
    client
        .get(format!("{}{path}", phones.api_base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The node that holds the dialer lease, as `GET /cluster` tells.
async fn dialer(client: &reqwest::Client, base: &str) -> Option<String> {
    let cluster = call(client, base, Method::GET, "/cluster", Value::Null).await;
    cluster["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["dialer"] == true)
        .map(|n| n["id"].as_str().unwrap().to_owned())
}

/// When a call began and ended.
type Span = (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>);

fn at(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_that_reaches_the_node_that_did_not_dial_is_honoured() {
    let Some(db) = TestDatabase::create("callback_elsewhere").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let phones = start_phones(&[("+15550300001".into(), "accept")]).await;
    // Node b is where Twilio's callbacks arrive (as behind a load balancer that sends them
    // there); node a starts first and so places the calls.
    let b_listen = free_address();
    let b_url = format!("http://{b_listen}");
    let a = Node::start("node-a", &db.url, dir.path(), &phones, Some(&b_url));
    a.healthy(&client).await;
    wait_until(
        "node a to hold the dialer lease",
        Duration::from_secs(15),
        || async { (dialer(&client, &a.base).await.as_deref() == Some("node-a")).then_some(()) },
    )
    .await;
    let b = Node::start_on(
        b_listen,
        "node-b",
        &db.url,
        dir.path(),
        &phones,
        Some(&b_url),
    );
    b.healthy(&client).await;
    let cluster = call(&client, &b.base, Method::GET, "/cluster", Value::Null).await;
    let ids: Vec<&str> = cluster["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["node-a", "node-b"], "{cluster}");

    let roster = call(
        &client,
        &b.base,
        Method::POST,
        "/rosters",
        json!({"name": "on-call", "loops": 1,
        "ringTimeoutSeconds": 60, "members": [{"name": "Ada", "phone": "+15550300001"}]}),
    )
    .await;
    call(
        &client,
        &b.base,
        Method::POST,
        "/routes",
        json!({"rosterId": roster["id"]}),
    )
    .await;
    // The alert is made on one node, its alarm arrives at the other.
    let alert = call(
        &client,
        &a.base,
        Method::POST,
        "/alerts",
        json!({"alertTemplateId": "cloud_alarm",
        "interval": 60, "status": "ACTIVE", "parameters": {}, "ownerDetails": {"id": "int1"}}),
    )
    .await;
    let alert_id = alert["id"].as_str().unwrap().to_owned();
    call(&client, &b.base, Method::PUT, "/entities/ALARM/a1", json!({"ownerType": "INTEGRATION", "ownerId": "int1",
        "attributes": {"source": "generic", "name": "DiskFull", "resource": "db-1", "severity": "critical",
                       "state": "FIRING", "summary": "disk full", "startedAt": "2026-03-04T09:58:00Z"}})).await;

    let incident = wait_until("Ada to accept", Duration::from_secs(30), || async {
        let page = call(
            &client,
            &a.base,
            Method::GET,
            &format!("/incidents?alertId={alert_id}"),
            Value::Null,
        )
        .await;
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["status"] == "ACKNOWLEDGED")
            .cloned()
    })
    .await;
    let requests = sim_get(&client, &phones, "/sim/requests").await;
    let creates: Vec<&Value> = requests
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/Calls.json"))
        .collect();
    assert_eq!(creates.len(), 1, "one call placed");
    let voice_url = creates[0]["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "Url")
        .unwrap()[1]
        .as_str()
        .unwrap();
    assert!(
        voice_url.starts_with(&b_url),
        "callbacks go to node b: {voice_url}"
    );
    let details = call(
        &client,
        &a.base,
        Method::GET,
        &format!("/incidents/{}/details", incident["id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    assert_eq!(details["acknowledgedBy"], "Ada");
    assert!(a.log().contains("dialer lease taken"), "{}", a.log());
    drop((a, b));
    phones.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_dialing_node_mid_ring_loses_no_escalation_and_dials_no_step_twice() {
    let Some(db) = TestDatabase::create("dialer_killed").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // Ten integrations, each with its alert and a roster of one operator, who lets the
    // phone ring one second (20 at twenty times speed) and accepts.
    const ALERTS: usize = 10;
    const ALARMS: usize = 10;
    let numbers: Vec<String> = (0..ALERTS).map(|i| format!("+155503100{i:02}")).collect();
    let phones = start_phones(
        &numbers
            .iter()
            .map(|n| (n.clone(), "slow:20:accept"))
            .collect::<Vec<_>>(),
    )
    .await;
    let mut a = Node::start("node-a", &db.url, dir.path(), &phones, None);
    a.healthy(&client).await;
    wait_until(
        "node a to hold the dialer lease",
        Duration::from_secs(15),
        || async { (dialer(&client, &a.base).await.as_deref() == Some("node-a")).then_some(()) },
    )
    .await;
    let b = Node::start("node-b", &db.url, dir.path(), &phones, None);
    b.healthy(&client).await;

    let mut alerts = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        let roster = call(
            &client,
            &a.base,
            Method::POST,
            "/rosters",
            json!({"name": format!("team {i}"), "loops": 1,
            "ringTimeoutSeconds": 60, "members": [{"name": format!("op{i}"), "phone": number}]}),
        )
        .await;
        let alert = call(&client, &b.base, Method::POST, "/alerts", json!({"alertTemplateId": "cloud_alarm",
            "interval": 60, "status": "ACTIVE", "parameters": {}, "ownerDetails": {"id": format!("int{i}")}})).await;
        let alert_id = alert["id"].as_str().unwrap().to_owned();
        call(
            &client,
            &a.base,
            Method::POST,
            "/routes",
            json!({"rosterId": roster["id"], "match": {"alertId": alert_id}}),
        )
        .await;
        alerts.push(alert_id);
    }
    // A hundred alarms, spread over both nodes.
    for i in 0..ALERTS {
        for j in 0..ALARMS {
            let base = if (i + j) % 2 == 0 { &a.base } else { &b.base };
            call(&client, base, Method::PUT, &format!("/entities/ALARM/a{i}-{j}"), json!({"ownerType": "INTEGRATION",
                "ownerId": format!("int{i}"), "attributes": {"source": "generic", "name": "DiskFull",
                "resource": format!("db-{i}-{j}"), "severity": "critical", "state": "FIRING",
                "summary": "disk full", "startedAt": "2026-03-04T09:58:00Z"}})).await;
        }
    }
    wait_until("a phone to ring", Duration::from_secs(30), || async {
        let calls = sim_get(&client, &phones, "/sim/calls").await;
        calls.iter().any(|c| c["status"] == "ringing").then_some(())
    })
    .await;
    let killed_at = chrono::Utc::now();
    a.kill();

    // Polled gently (each incident's timeline read until it ends, then never again): the
    // survivor is the dialer now, and the test's reads must not be what slows it.
    let mut incidents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut opened = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while incidents.len() < ALERTS * ALARMS {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for every escalation to end: {opened} of {} incidents opened, {} ended:\n{}",
            ALERTS * ALARMS,
            incidents.len(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut all = Vec::new();
        for alert in &alerts {
            let page = call(
                &client,
                &b.base,
                Method::GET,
                &format!("/incidents?alertId={alert}&pageSize=100"),
                Value::Null,
            )
            .await;
            all.extend(page["data"].as_array().unwrap().iter().cloned());
        }
        opened = all.len();
        for incident in &all {
            let id = incident["id"].as_str().unwrap();
            if incidents.contains_key(id) {
                continue;
            }
            let timeline = call(
                &client,
                &b.base,
                Method::GET,
                &format!("/incidents/{id}/timeline?pageSize=100"),
                Value::Null,
            )
            .await;
            let kinds: Vec<String> = timeline["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
                .collect();
            if kinds
                .iter()
                .any(|k| k == "acknowledged" || k == "escalation-exhausted")
            {
                incidents.insert(id.to_owned(), kinds);
            }
        }
    }
    assert_eq!(incidents.len(), ALERTS * ALARMS);
    // One step per incident (a roster of one, one loop): exactly one call each, never
    // dialed again after the kill.
    for (id, kinds) in &incidents {
        let started = kinds.iter().filter(|k| *k == "call-started").count();
        assert_eq!(started, 1, "incident {id}: {kinds:?}");
    }
    let calls = sim_get(&client, &phones, "/sim/calls").await;
    assert_eq!(calls.len(), ALERTS * ALARMS, "every call placed once");
    // Never two of our calls to one number at once.
    let mut by_number: HashMap<&str, Vec<Span>> = HashMap::new();
    for c in &calls {
        let end = c["endedAt"]
            .as_str()
            .map_or(chrono::Utc::now(), |e| e.parse().unwrap());
        by_number
            .entry(c["to"].as_str().unwrap())
            .or_default()
            .push((at(&c["createdAt"]), end));
    }
    for (number, mut spans) in by_number {
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "two calls to {number} at once: {pair:?}"
            );
        }
    }
    // Never more than the configured pace, across both nodes.
    let mut created: Vec<_> = calls.iter().map(|c| at(&c["createdAt"])).collect();
    created.sort();
    let window = chrono::Duration::milliseconds(1000);
    for (i, start) in created.iter().enumerate() {
        let in_window = created[i..]
            .iter()
            .take_while(|t| **t < *start + window)
            .count();
        assert!(
            in_window as f64 <= CALLS_PER_SECOND + 1.0,
            "{in_window} calls in the second from {start}"
        );
    }
    // The survivor placed the next call within the stated bound (11 s).
    let first_after = created.iter().find(|t| **t > killed_at).copied();
    if let Some(first) = first_after {
        let took = (first - killed_at).to_std().unwrap();
        eprintln!("failover: node b placed its first call {took:?} after node a was killed");
        assert!(
            took <= Duration::from_secs(15),
            "took over after {took:?}:\n{}",
            b.log()
        );
    }
    assert!(b.log().contains("dialer lease taken"), "{}", b.log());
    drop(b);
    phones.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alertmanager_payload_sent_to_both_nodes_opens_one_incident_per_alert() {
    let Some(db) = TestDatabase::create("alertmanager_twice").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let phones = start_phones(&[]).await;
    let a = Node::start("node-a", &db.url, dir.path(), &phones, None);
    let b = Node::start("node-b", &db.url, dir.path(), &phones, None);
    a.healthy(&client).await;
    b.healthy(&client).await;
    let created = call(
        &client,
        &a.base,
        Method::POST,
        "/integrations",
        json!({"name": "prometheus", "kind": "alertmanager"}),
    )
    .await;
    let (id, secret) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let alert = created["alertId"].as_str().unwrap();
    let firing = std::fs::read(
        tocsin_tests::workspace().join("../shared/fixtures/webhooks/alertmanager_v4-firing.json"),
    )
    .unwrap();
    let post = |base: &str| {
        client
            .post(format!("{base}/hooks/{id}"))
            .bearer_auth(secret)
            .body(firing.clone())
            .send()
    };
    let (to_a, to_b) = tokio::join!(post(&a.base), post(&b.base));
    let mut duplicates = 0;
    for response in [to_a.unwrap(), to_b.unwrap()] {
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        duplicates += usize::from(body["duplicate"] == true);
    }
    assert_eq!(
        duplicates, 1,
        "the same delivery, sent twice, is one delivery"
    );
    let incidents = wait_until("three incidents", Duration::from_secs(30), || async {
        let page = call(
            &client,
            &b.base,
            Method::GET,
            &format!("/incidents?alertId={alert}"),
            Value::Null,
        )
        .await;
        let data = page["data"].as_array().unwrap().clone();
        (data.len() >= 3).then_some(data)
    })
    .await;
    // A moment more, in case a second evaluation would open a second set.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = call(
        &client,
        &a.base,
        Method::GET,
        &format!("/incidents?alertId={alert}"),
        Value::Null,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3, "{incidents:?}");
    drop((a, b));
    phones.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_updates_spread_over_two_nodes_lose_no_acknowledged_write_while_one_restarts() {
    let Some(db) = TestDatabase::create("updates_restart").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let phones = start_phones(&[]).await;
    let a = Node::start("node-a", &db.url, dir.path(), &phones, None);
    let mut b = Node::start("node-b", &db.url, dir.path(), &phones, None);
    a.healthy(&client).await;
    b.healthy(&client).await;
    // The last value each entity was acknowledged with.
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    let mut refused = 0;
    for round in 0..600u64 {
        if round == 200 {
            b.kill();
        }
        if round == 300 {
            b.spawn();
        }
        let entity = format!("w{}", round % 50);
        let base = if round % 2 == 0 { &a.base } else { &b.base };
        let sent = client
            .put(format!("{base}/entities/WALLET/{entity}"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"ownerType": "ACCOUNT", "ownerId": "acc1", "attributes": {"balance": round.to_string()}}))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                acknowledged.insert(entity, round);
            }
            _ => refused += 1,
        }
        if round == 300 {
            b.healthy(&client).await;
        }
    }
    assert!(
        refused > 0 && refused <= 100,
        "{refused} writes refused: only node b's while it was down"
    );
    for (entity, round) in &acknowledged {
        for node in [&a, &b] {
            let stored = call(
                &client,
                &node.base,
                Method::GET,
                &format!("/entities/WALLET/{entity}"),
                Value::Null,
            )
            .await;
            assert_eq!(
                stored["attributes"]["balance"],
                round.to_string(),
                "{entity} on {}",
                node.id
            );
        }
    }
    drop((a, b));
    phones.stop().await;
}

/// `tocsin_evaluations_total` summed over the nodes.
async fn evaluations(client: &reqwest::Client, nodes: &[Node]) -> u64 {
    let mut total = 0;
    for node in nodes {
        let text = client
            .get(format!("{}/metrics", node.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("tocsin_evaluations_total "))
            .map_or(0, |v| v.trim().parse::<u64>().unwrap());
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alerts_interval_turn_runs_once_per_interval_across_three_nodes() {
    let Some(db) = TestDatabase::create("interval_three").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let phones = start_phones(&[]).await;
    let nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|id| Node::start(id, &db.url, dir.path(), &phones, None))
        .collect();
    for node in &nodes {
        node.healthy(&client).await;
    }
    call(
        &client,
        &nodes[1].base,
        Method::POST,
        "/alerts",
        json!({"alertTemplateId": "cloud_alarm",
        "interval": 1, "status": "ACTIVE", "parameters": {}, "ownerDetails": {"id": "int1"}}),
    )
    .await;
    // Created, claimed and evaluated at once; then one turn a minute.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = evaluations(&client, &nodes).await;
    assert!(before >= 1, "evaluated when created");
    tokio::time::sleep(Duration::from_secs(125)).await;
    let turns = evaluations(&client, &nodes).await - before;
    assert_eq!(turns, 2, "two minutes, two turns across the three nodes");
    let holders: HashSet<u64> = {
        let cluster = call(
            &client,
            &nodes[0].base,
            Method::GET,
            "/cluster",
            Value::Null,
        )
        .await;
        cluster["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["alerts"].as_u64().unwrap())
            .collect()
    };
    assert!(
        holders.contains(&1),
        "one node holds the alert: {holders:?}"
    );
    drop(nodes);
    phones.stop().await;
}

/// A node whose own view of its alert leases runs out (here its renewal waits behind a
/// lock on the leases table) while the database still has them as its, judges a change
/// meanwhile as another node's, and no node takes it; once the renewal goes through, the
/// node evaluates its alerts again, so the change opens its incident all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_judged_while_this_nodes_leases_lapsed_is_evaluated_once_they_are_renewed() {
    use sqlx::Connection as _;
    let Some(db) = TestDatabase::create("lease_lapse").await else {
        return;
    };
    let app = crate::support::spawn_app_on_postgres(&db.url).await;
    let alert = app
        .create_alert("credit_low_balance", Some("acc1"), json!({"threshold": 50}))
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "90", "granted": "100"}),
    )
    .await;
    let evaluated = app.wait_for_evaluation(&id, None).await;

    // Past the lease's margin (8 s after the last renewal began, which was at most a tick,
    // 1 s, before the lock), and short of the lease itself (10 s), which the blocked
    // renewal keeps: it began before the lock was taken.
    let mut locker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE leases IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(8_300)).await;
    app.advance(chrono::Duration::seconds(1));
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "10", "granted": "100"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.rollback().await.unwrap();

    let incident = app.wait_for_incident(&id, |i| i["status"] == "OPEN").await;
    assert_eq!(
        incident["reportData"]["remainingBalance"], "10",
        "{incident}"
    );
    assert_ne!(
        app.get(&format!("/alerts/{id}/details")).await["lastEvaluation"],
        evaluated["lastEvaluation"]
    );
    app.stop().await;
}

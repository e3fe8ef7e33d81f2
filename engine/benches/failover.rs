//! Failover of the dialer: two `tocsin serve` processes on one PostgreSQL database place a
//! steady stream of calls to the Twilio simulator; the node placing them is killed with
//! SIGKILL, ten times, and each time this measures how long until the survivor places the
//! next call. The killed node is restarted as the standby before the next kill. Both nodes
//! sit behind one address, as behind a load balancer: a small proxy here that sends each
//! connection to the first node that accepts it. That address is their `TOCSIN_PUBLIC_URL`,
//! so Twilio's callbacks for a call placed by the killed node reach the survivor.
//!
//! Run with `cargo bench -p tocsin --bench failover`; `BENCH_POSTGRES` names the server
//! (default `postgres://postgres@127.0.0.1:5432`), on which a database of its own is
//! created and dropped.

use serde_json::{Value, json};
use sqlx::Connection as _;
use std::time::{Duration, Instant};
use tocsin_twilio_sim::{SimConfig, SimServer};

const KEY: &str = "bench-admin-key";
const KILLS: usize = 10;
const PHONE: &str = "+15550400001";

struct Node {
    id: &'static str,
    base: String,
    env: Vec<(&'static str, String)>,
    process: Option<std::process::Child>,
}

impl Node {
    fn new(
        id: &'static str,
        database: &str,
        public_url: &str,
        sim: &SimServer,
        (sid, token): (&str, &str),
        cache: &std::path::Path,
    ) -> Self {
        let listen = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().to_string()
        };
        let env = vec![
            ("TOCSIN_NODE_ID", id.to_owned()),
            ("TOCSIN_DATABASE", database.to_owned()),
            ("TOCSIN_LISTEN", listen.clone()),
            ("TOCSIN_ADMIN_KEY", KEY.to_owned()),
            ("TOCSIN_PUBLIC_URL", public_url.to_owned()),
            ("TOCSIN_CACHE_DIR", cache.to_string_lossy().into_owned()),
            ("TOCSIN_CALLS_PER_SECOND", "10".to_owned()),
            ("TWILIO_ACCOUNT_SID", sid.to_owned()),
            ("TWILIO_AUTH_TOKEN", token.to_owned()),
            ("TWILIO_FROM_NUMBER", "+15550009999".to_owned()),
            ("TWILIO_API_BASE", sim.api_base()),
            ("RUST_LOG", "tocsin=warn".to_owned()),
        ];
        Self {
            id,
            base: format!("http://{listen}"),
            env,
            process: None,
        }
    }

    async fn start(&mut self, client: &reqwest::Client) {
        let process = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "node {} did not start", self.id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().unwrap();
            process.wait().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn admin(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let response = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

/// When the simulator was asked to place each call, in order.
async fn placed(client: &reqwest::Client, sim: &SimServer) -> Vec<chrono::DateTime<chrono::Utc>> {
    let requests: Vec<Value> = client
        .get(format!("{}/sim/requests", sim.api_base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    requests
        .iter()
        .filter(|r| {
            r["method"] == "POST"
                && r["path"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("/Calls.json")
        })
        .map(|r| r["at"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// The load balancer: each connection to the first node that takes it.
async fn balance(listener: tokio::net::TcpListener, nodes: Vec<String>) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        let nodes = nodes.clone();
        tokio::spawn(async move {
            for node in &nodes {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(node).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    return;
                }
            }
        });
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = std::env::var("BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let server = server.trim_end_matches('/').to_owned();
    let name = format!("tocsin_failover_{}", std::process::id());
    let mut postgres = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("BENCH_POSTGRES reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut postgres)
        .await
        .unwrap();
    let database = format!("{server}/{name}");

    let mut config = SimConfig::new();
    config.speed = 20.0;
    config
        .numbers
        .insert(PHONE.into(), "accept".parse().unwrap());
    let (sid, token) = (config.account_sid.clone(), config.auth_token.clone());
    let sim = SimServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let balancer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", balancer.local_addr().unwrap());
    let account = (sid.as_str(), token.as_str());
    let mut nodes = [
        Node::new("a", &database, &public_url, &sim, account, cache.path()),
        Node::new("b", &database, &public_url, &sim, account, cache.path()),
    ];
    let addresses = nodes
        .iter()
        .map(|n| n.base.trim_start_matches("http://").to_owned())
        .collect();
    tokio::spawn(balance(balancer, addresses));
    nodes[0].start(&client).await;
    nodes[1].start(&client).await;
    let base = nodes[0].base.clone();
    let roster = admin(
        &client,
        &base,
        reqwest::Method::POST,
        "/rosters",
        json!({"name": "on-call", "loops": 1,
        "ringTimeoutSeconds": 30, "members": [{"name": "Ada", "phone": PHONE}]}),
    )
    .await;
    admin(
        &client,
        &base,
        reqwest::Method::POST,
        "/routes",
        json!({"rosterId": roster["id"]}),
    )
    .await;
    admin(
        &client,
        &base,
        reqwest::Method::POST,
        "/alerts",
        json!({"alertTemplateId": "cloud_alarm", "interval": 60,
        "status": "ACTIVE", "parameters": {}, "ownerDetails": {"id": "int1"}}),
    )
    .await;

    let mut takeovers = Vec::with_capacity(KILLS);
    for kill in 0..KILLS {
        let alive = nodes
            .iter()
            .find(|n| n.process.is_some())
            .unwrap()
            .base
            .clone();
        // Work for the loop: alarms whose incidents each take one call, one at a time.
        for alarm in 0..30 {
            admin(&client, &alive, reqwest::Method::PUT, &format!("/entities/ALARM/k{kill}-{alarm}"),
                json!({"ownerType": "INTEGRATION", "ownerId": "int1", "attributes": {"source": "generic",
                "name": "DiskFull", "resource": format!("db-{kill}-{alarm}"), "severity": "critical",
                "state": "FIRING", "summary": "disk full", "startedAt": "2026-03-04T09:58:00Z"}})).await;
        }
        // Calls under way: find the dialer, and kill it.
        let before = placed(&client, &sim).await.len();
        while placed(&client, &sim).await.len() < before + 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cluster = admin(
            &client,
            &alive,
            reqwest::Method::GET,
            "/cluster",
            Value::Null,
        )
        .await;
        let dialer = cluster["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["dialer"] == true)
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .expect("a dialer");
        let victim = nodes.iter().position(|n| n.id == dialer).unwrap();
        let killed_at = chrono::Utc::now();
        nodes[victim].kill();
        let next = loop {
            if let Some(at) = placed(&client, &sim)
                .await
                .into_iter()
                .find(|at| *at > killed_at)
            {
                break at;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let took = (next - killed_at).to_std().unwrap();
        println!(
            "kill {}: node {dialer} killed; the next call placed {:.2} s later",
            kill + 1,
            took.as_secs_f64()
        );
        takeovers.push(took);
        nodes[victim].start(&client).await;
    }
    takeovers.sort();
    println!(
        "failover over {KILLS} SIGKILLs of the dialing node (SIGKILL -> next call placed by the survivor): p50 {:.2} s, max {:.2} s",
        takeovers[KILLS / 2].as_secs_f64(),
        takeovers.last().unwrap().as_secs_f64()
    );
    for node in &mut nodes {
        node.kill();
    }
    sim.stop().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut postgres)
        .await
        .unwrap();
}

//! What a hostile or careless client must not be able to do: brick the server with one
//! number, make it answer in another shape than `{"message"}`, store what no template can
//! read, exhaust its connections, or have a forgotten setting fake an operator.

use crate::support::{ADMIN_KEY, TestApp, spawn_app, spawn_app_at};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn message(body: &Value) -> &str {
    body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"))
}

async fn refused(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Value,
    status: StatusCode,
    says: &str,
) {
    let (got, response) = app
        .call(method.clone(), path, Some(ADMIN_KEY), Some(body.clone()))
        .await;
    assert_eq!(got, status, "{method} {path} {body}: {response}");
    assert!(
        message(&response).contains(says),
        "{method} {path} {body}: {response}"
    );
}

/// A credit_low_balance alert for acc1; a `null` validity is left out (Togai's fields are
/// never null).
fn alert(interval: Value, validity: Value) -> Value {
    let mut body = json!({"alertTemplateId": "credit_low_balance", "interval": interval,
           "status": "ACTIVE", "ownerDetails": {"accountId": "acc1"}, "parameters": {"threshold": 50}});
    if !validity.is_null() {
        body["validity"] = validity;
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_out_of_range_are_refused_naming_the_range_and_the_extremes_survive_a_restart() {
    let app = spawn_app().await;
    for (interval, validity, says) in [
        (
            json!(153_722_867_280i64),
            json!(null),
            "interval 153722867280 is out of range",
        ),
        (json!(525_601), json!(null), "from 1 to 525600"),
        (json!(-1), json!(null), "interval -1 is out of range"),
        (json!(5), json!(i64::MAX), "from 1 to 52560000"),
        (
            json!(5),
            json!(52_560_001),
            "validity 52560001 is out of range",
        ),
        (json!(5), json!(-5), "validity -5 is out of range"),
        (json!(1e300), json!(null), "interval"),
    ] {
        refused(
            &app,
            Method::POST,
            "/alerts",
            alert(interval, validity),
            StatusCode::UNPROCESSABLE_ENTITY,
            says,
        )
        .await;
    }
    assert!(
        app.get("/alerts").await["data"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing stored"
    );

    let mut ids = Vec::new();
    for (interval, validity) in [(525_600, json!(52_560_000)), (1, json!(1)), (0, json!(0))] {
        let created = app
            .send(
                Method::POST,
                "/alerts",
                alert(json!(interval), validity),
                StatusCode::OK,
            )
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    refused(
        &app,
        Method::PATCH,
        &format!("/alerts/{}", ids[0]),
        json!({"interval": 153_722_867_280i64}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "out of range",
    )
    .await;
    refused(
        &app,
        Method::PATCH,
        &format!("/alerts/{}", ids[0]),
        json!({"validity": 9_000_000_000i64}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "out of range",
    )
    .await;
    for (loops, ring) in [(10, 600), (1, 5)] {
        app.send(
            Method::POST,
            "/rosters",
            json!({"name": "edge", "loops": loops, "ringTimeoutSeconds": ring,
            "members": [{"name": "Ada", "phone": "+15550000001"}]}),
            StatusCode::CREATED,
        )
        .await;
    }
    refused(
        &app,
        Method::POST,
        "/rosters",
        json!({"name": "x", "loops": 11, "members": [{"name": "Ada", "phone": "+15550000001"}]}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "loops",
    )
    .await;

    let (dir, clock) = app.stop().await;
    let app = spawn_app_at(dir, clock).await;
    let far = app.get(&format!("/alerts/{}/details", ids[0])).await;
    assert_eq!(far["interval"], 525_600);
    assert_eq!(far["validity"], 52_560_000);
    let until = far["validUntil"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(until).is_ok(),
        "{until}"
    );
    assert!(until.starts_with("2126-"), "{until}");
    let near = app.get(&format!("/alerts/{}/details", ids[1])).await;
    assert_eq!(near["interval"], 1);
    let default = app.get(&format!("/alerts/{}", ids[2])).await;
    assert_eq!(default["validity"], 0);
    assert_eq!(
        app.get("/rosters").await["data"].as_array().unwrap().len(),
        2
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_alert_the_server_cannot_use_is_skipped_and_the_server_starts() {
    let app = spawn_app().await;
    let good = app
        .send(
            Method::POST,
            "/alerts",
            alert(json!(5), json!(null)),
            StatusCode::OK,
        )
        .await;
    let mut bad = Vec::new();
    for _ in 0..3 {
        let created = app
            .send(
                Method::POST,
                "/alerts",
                alert(json!(5), json!(null)),
                StatusCode::OK,
            )
            .await;
        bad.push(created["id"].as_str().unwrap().to_owned());
    }
    let (dir, clock) = app.stop().await;
    // What an older version, or a hand, may have left in the database.
    let store = tocsin::store::Sqlite::open(&dir.path().join("tocsin.db"))
        .await
        .unwrap();
    for (id, set) in bad.iter().zip([
        "interval_minutes = 153722867280",
        "parameters = '{not json'",
        "created_at = 'yesterday', valid_until = 9223372036854775807",
    ]) {
        sqlx::query(&format!("UPDATE alerts SET {set} WHERE id = ?"))
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
    }
    store.close().await;

    let app = spawn_app_at(dir, clock).await;
    let listed: Vec<String> = app.get("/alerts").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, [good["id"].as_str().unwrap()]);
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "1", "granted": "9"}),
    )
    .await;
    app.wait_for_incident(good["id"].as_str().unwrap(), |_| true)
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_an_object_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "5"}),
    )
    .await;
    refused(
        &app,
        Method::PUT,
        "/entities/CREDIT/c1",
        json!([null, null]),
        StatusCode::UNPROCESSABLE_ENTITY,
        "must be a JSON object, not an array",
    )
    .await;
    assert_eq!(
        app.get("/entities/CREDIT/c1").await["attributes"],
        json!({"balance": "5"})
    );
    let keys = app.get("/api_keys").await["data"].as_array().unwrap().len();
    refused(
        &app,
        Method::POST,
        "/api_keys",
        json!(["k", "admin"]),
        StatusCode::UNPROCESSABLE_ENTITY,
        "not an array",
    )
    .await;
    refused(
        &app,
        Method::POST,
        "/events",
        json!("events"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "not a string",
    )
    .await;
    refused(
        &app,
        Method::POST,
        "/rosters",
        json!(null),
        StatusCode::UNPROCESSABLE_ENTITY,
        "not null",
    )
    .await;
    assert_eq!(
        app.get("/api_keys").await["data"].as_array().unwrap().len(),
        keys
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_no_template_could_read_are_refused_at_ingest_with_the_reason() {
    let app = spawn_app().await;
    let entity = |attributes: &str| {
        format!(r#"{{"ownerType": "ACCOUNT", "ownerId": "acc1", "attributes": {attributes}}}"#)
    };
    for (body, says) in [
        (
            entity(r#"{"balance": 1e30}"#),
            r#"1e30 (at "balance") is beyond"#,
        ),
        (
            entity(r#"{"balance": 123456789012345678901234567890123}"#),
            "is beyond",
        ),
        (
            entity(r#"{"name": "a\ud800"}"#),
            r#"(at "name") holds an unpaired"#,
        ),
        (
            entity(&format!(
                r#"{{"deep": {}{}}}"#,
                "[".repeat(40),
                "]".repeat(40)
            )),
            "deeper than 32",
        ),
    ] {
        let response = app
            .client
            .put(format!("{}/entities/CREDIT/c1", app.base))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let text: Value = response.json().await.unwrap();
        assert!(message(&text).contains(says), "{body}: {text}");
    }
    let (status, _) = app
        .call(Method::GET, "/entities/CREDIT/c1", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored");

    refused(
        &app,
        Method::POST,
        "/events",
        json!({"events": [{"id": "e1", "timestamp": "2026-03-04T09:00:00Z",
        "attributes": {"n": 1e300}}]}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "beyond",
    )
    .await;
    // A threshold the API accepts is one the template can read.
    for threshold in [
        json!("1e30"),
        json!("99999999999999999999999999999999"),
        json!(1e30),
    ] {
        let mut body = alert(json!(5), json!(null));
        body["parameters"]["threshold"] = threshold.clone();
        let (status, response) = app
            .call(Method::POST, "/alerts", Some(ADMIN_KEY), Some(body))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{threshold}: {response}"
        );
        assert!(
            message(&response).contains("threshold") || message(&response).contains("beyond"),
            "{response}"
        );
    }
    let mut body = alert(json!(5), json!(null));
    body["parameters"]["threshold"] = json!("79228162514264337593543950335");
    app.send(Method::POST, "/alerts", body, StatusCode::OK)
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_whoever_writes_it_is_a_message() {
    let app = spawn_app().await;
    let raw = |method: Method, path: String| {
        app.client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(ADMIN_KEY)
    };
    let check = |what: String, response: reqwest::Response, status: StatusCode| async move {
        assert_eq!(response.status(), status, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{what}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(!message(&body).is_empty(), "{what}: {body}");
        assert!(message(&body).chars().count() <= 500, "{what}: {body}");
        body
    };
    for list in [
        "/alerts",
        "/incidents",
        "/alert_templates",
        "/rosters",
        "/routes",
        "/api_keys",
        "/integrations",
        "/entities/CREDIT",
        "/events",
        "/audit",
    ] {
        for query in [
            "pageSize=abc",
            "pageSize=0",
            "pageSize=501",
            "nextToken=%00garbage",
            "pageSize=1&pageSize=2",
        ] {
            let path = format!("{list}?{query}");
            let response = raw(Method::GET, path.clone()).send().await.unwrap();
            check(path, response, StatusCode::BAD_REQUEST).await;
        }
    }
    let response = raw(Method::GET, "/alerts/%FF%FE".into())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    check("bad path bytes".into(), response, StatusCode::BAD_REQUEST).await;
    let response = raw(Method::DELETE, "/alerts".into()).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST,GET,HEAD");
    let body = check(
        "DELETE /alerts".into(),
        response,
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    assert!(message(&body).contains("Allow"), "{body}");
    let long = format!("/alerts?x={}", "a".repeat(10_000));
    let response = raw(Method::GET, long).send().await.unwrap();
    check("a long URI".into(), response, StatusCode::URI_TOO_LONG).await;
    let response = raw(Method::PUT, "/entities/CREDIT/c1".into())
        .header("content-type", "application/json")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .unwrap();
    check("2 MiB".into(), response, StatusCode::PAYLOAD_TOO_LARGE).await;
    for content_type in ["application/", "text/plain", ";;;"] {
        let response = raw(Method::POST, "/alerts".into())
            .header("content-type", content_type)
            .body(alert(json!(5), json!(null)).to_string())
            .send()
            .await
            .unwrap();
        check(
            content_type.into(),
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
    }
    let response = raw(Method::POST, "/alerts".into())
        .header("content-type", "application/json")
        .body("{\"alertTemplateId\": ")
        .send()
        .await
        .unwrap();
    check("truncated JSON".into(), response, StatusCode::BAD_REQUEST).await;
    app.stop().await;
}

/// `tocsin` run as a real process, as an operator runs it: the command line and the
/// environment, nothing else. The test binary is the executable: this ignored test is its
/// entry point when `TOCSIN_CHILD_ARGS` is set.
#[test]
#[ignore = "a child process of the hardening tests"]
fn cli_child() {
    let Ok(args) = std::env::var("TOCSIN_CHILD_ARGS") else {
        return;
    };
    tracing_subscriber::fmt()
        .with_env_filter("tocsin=info")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let argv = std::iter::once("tocsin").chain(args.split(' '));
    let cli = <tocsin::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    cli.run(&mut std::io::stdout()).unwrap();
}

struct Child {
    process: std::process::Child,
    base: String,
    log: std::path::PathBuf,
    client: reqwest::Client,
}

impl Child {
    /// `tocsin <args>` on a database in `dir`, without any Twilio variable; `shell` runs
    /// before it (to set a file limit).
    async fn start(dir: &Path, args: &str, env: &[(&str, &str)], shell: &str) -> Self {
        let listen = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().to_string()
        };
        let log = dir.join("tocsin.log");
        let mut command = std::process::Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "{shell} exec \"$0\" --ignored --exact hardening::cli_child --nocapture"
            ))
            .arg(std::env::current_exe().unwrap())
            .env("TOCSIN_CHILD_ARGS", args)
            .env("TOCSIN_LISTEN", &listen)
            .env("TOCSIN_DATABASE", dir.join("tocsin.db"))
            .env("TOCSIN_ADMIN_KEY", ADMIN_KEY)
            .env(
                "TOCSIN_CACHE_DIR",
                std::env::temp_dir().join("tocsin-test-component-cache"),
            )
            .env_remove("TWILIO_ACCOUNT_SID")
            .env_remove("TWILIO_AUTH_TOKEN")
            .env_remove("TWILIO_FROM_NUMBER")
            .env_remove("TWILIO_API_BASE")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = Self {
            process: command.spawn().unwrap(),
            base: format!("http://{listen}"),
            log,
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = child
                .client
                .get(format!("{}/healthz", child.base))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {}",
                child.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        child
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    async fn incident(&self, alert: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = self
                .call(Method::GET, &format!("/incidents?alertId={alert}"), None)
                .await;
            for incident in page["data"].as_array().unwrap() {
                let details = self
                    .call(
                        Method::GET,
                        &format!("/incidents/{}/details", incident["id"].as_str().unwrap()),
                        None,
                    )
                    .await;
                if pred(&details) {
                    return details;
                }
            }
            assert!(Instant::now() < deadline, "no such incident: {page}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, and waits for a clean exit.
    fn stop(mut self) -> String {
        let pid = self.process.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let status = self.process.wait().unwrap();
        assert!(status.success(), "{status}: {}", self.log());
        self.log()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A firing alarm of integration `int1`, with an alert over it.
async fn fire(child: &Child) -> String {
    let alert = child
        .call(
            Method::POST,
            "/alerts",
            Some(json!({"alertTemplateId": "cloud_alarm", "interval": 60,
            "status": "ACTIVE", "ownerDetails": {"integrationId": "int1"}, "parameters": {}})),
        )
        .await;
    child
        .call(Method::PUT, "/entities/ALARM/a1", Some(json!({"ownerType": "INTEGRATION", "ownerId": "int1",
            "attributes": {"source": "generic", "name": "DiskFull", "resource": "db-1", "severity": "critical",
                           "state": "FIRING", "summary": "disk full on db-1", "startedAt": "2026-11-22T09:58:00Z"}})))
        .await;
    alert["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_twilio_account_opens_incidents_phones_nobody_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), "serve", &[], "").await;
    let health = child
        .client
        .get(format!("{}/healthz", child.base))
        .send()
        .await
        .unwrap();
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["escalation"], "unavailable");
    assert!(
        health["node"].as_str().is_some_and(|n| !n.is_empty()),
        "{health}"
    );
    let metrics = child
        .client
        .get(format!("{}/metrics", child.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tocsin_escalation_available 0"),
        "{metrics}"
    );

    let alert = fire(&child).await;
    let incident = child.incident(&alert, |i| i["status"] == "OPEN").await;
    let timeline = child
        .call(
            Method::GET,
            &format!("/incidents/{}/timeline", incident["id"].as_str().unwrap()),
            None,
        )
        .await;
    let kinds: Vec<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["opened", "escalation-unavailable"], "{timeline}");
    assert!(
        child.call(Method::GET, "/rosters", None).await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let log = child.stop();
    assert!(
        log.contains("WARN") && log.contains("escalation unavailable"),
        "{log}"
    );
    assert!(!log.contains("simulat"), "nothing simulated: {log}");
    assert!(!log.contains("calling"), "nobody called: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_rings_the_simulated_roster_and_says_it_is_simulated() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), "demo", &[("TOCSIN_DEMO_SPEED", "10")], "").await;
    let health: Value = child
        .client
        .get(format!("{}/healthz", child.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["escalation"], "simulated");
    let rosters = child.call(Method::GET, "/rosters", None).await;
    assert_eq!(rosters["data"][0]["name"], "Demo on-call (simulated)");

    let alert = fire(&child).await;
    let incident = child
        .incident(&alert, |i| i["status"] == "ACKNOWLEDGED")
        .await;
    assert_eq!(incident["acknowledgedBy"], "Linus (simulated)");
    let timeline = child
        .call(
            Method::GET,
            &format!("/incidents/{}/timeline", incident["id"].as_str().unwrap()),
            None,
        )
        .await;
    let started = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "escalation-started")
        .unwrap();
    assert_eq!(started["detail"]["phones"], "simulated");
    let outcomes: Vec<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "call-outcome")
        .map(|e| e["detail"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["passed", "busy", "accepted"]);
    let log = child.stop();
    assert!(log.contains("every call is simulated"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_neither_starves_health_checks_nor_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    // 256 descriptors: 128 for connections, the rest kept for SQLite and the rest.
    let child = Child::start(
        dir.path(),
        "serve",
        &[("TOCSIN_IDLE_TIMEOUT_SECONDS", "2")],
        "ulimit -n 256 &&",
    )
    .await;
    let addr = child.base.trim_start_matches("http://").to_owned();
    let mut flood = Vec::new();
    for i in 0..400 {
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        match i % 3 {
            // Silent.
            0 => {}
            // Half-sent headers.
            1 => socket
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow")
                .await
                .unwrap(),
            // A finished request, then idle on keep-alive.
            _ => socket
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap(),
        }
        flood.push(socket);
    }
    // Beyond the cap, yet a health check gets in at once, as would Twilio's webhooks.
    for _ in 0..5 {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .get(format!("{}/healthz", child.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap_or_else(|e| panic!("/healthz under a flood: {e}\n{}", child.log()));
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // After the idle timeout every flooding socket has been closed by the server.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, socket) in flood.iter_mut().enumerate() {
        let mut buffer = [0u8; 4096];
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                // The answer to the finished request; the close comes after it.
                Ok(Ok(_)) => continue,
                Err(_) => break false,
            }
        };
        assert!(closed, "socket {i} is still open");
    }
    let log = child.stop();
    assert!(log.contains("max_connections=128"), "{log}");
}

//! `spawn_app()`: the real server on an ephemeral loopback port, over a fresh SQLite file,
//! with a manual clock the test moves.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tocsin::app::Server;
use tocsin::clock::Clock;
use tocsin::config::Config;

/// The admin key every test server is seeded with.
pub const ADMIN_KEY: &str = "tsk_test_admin_key";

/// A running test server.
pub struct TestApp {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The client.
    pub client: reqwest::Client,
    /// The clock the server reads.
    pub clock: Clock,
    /// Holds the database file.
    pub dir: Arc<tempfile::TempDir>,
    server: Option<Server>,
}

/// Where every test server caches compiled components, so only the first compiles them.
fn shared_cache() -> PathBuf {
    std::env::temp_dir().join("tocsin-test-component-cache")
}

/// Starts a server on a fresh database at 2026-03-04T10:00:00Z.
pub async fn spawn_app() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let clock = Clock::manual("2026-03-04T10:00:00Z".parse().unwrap());
    spawn_app_at(dir, clock).await
}

/// Starts a server on the PostgreSQL database at `url` at 2026-03-04T10:00:00Z.
pub async fn spawn_app_on_postgres(url: &str) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let clock = Clock::manual("2026-03-04T10:00:00Z".parse().unwrap());
    let database = tocsin::store::Database::parse(url);
    spawn_app_with(dir, clock, move |config| config.database = database).await
}

/// Starts a server on the database in `dir`.
pub async fn spawn_app_at(dir: Arc<tempfile::TempDir>, clock: Clock) -> TestApp {
    spawn_app_with(dir, clock, |_| {}).await
}

/// The configuration every test server starts from.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::for_database(dir.join("tocsin.db"));
    config.admin_key = Some(ADMIN_KEY.into());
    config.cache_dir = shared_cache();
    config
}

/// Starts a server on the database in `dir`, its configuration adjusted by `configure`.
pub async fn spawn_app_with(
    dir: Arc<tempfile::TempDir>,
    clock: Clock,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = test_config(dir.path());
    configure(&mut config);
    let server = Server::start(config, clock.clone())
        .await
        .expect("server starts");
    TestApp {
        base: format!("http://{}", server.addr()),
        client: reqwest::Client::new(),
        clock,
        dir,
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server gracefully, keeping its database.
    pub async fn stop(mut self) -> (Arc<tempfile::TempDir>, Clock) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        (self.dir.clone(), self.clock.clone())
    }

    /// A request with `key` (`None` for no key) and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// GET as admin, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, Some(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Sends as admin, expecting `expected`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Value,
        expected: StatusCode,
    ) -> Value {
        let (status, response) = self
            .call(method.clone(), path, Some(ADMIN_KEY), Some(body))
            .await;
        assert_eq!(status, expected, "{method} {path}: {response}");
        response
    }

    /// Creates an ACTIVE alert.
    pub async fn create_alert(
        &self,
        template: &str,
        owner: Option<&str>,
        parameters: Value,
    ) -> Value {
        let mut body = json!({"alertTemplateId": template, "interval": 60, "status": "ACTIVE", "parameters": parameters});
        if let Some(owner) = owner {
            body["ownerDetails"] = json!({"id": owner});
        }
        self.send(Method::POST, "/alerts", body, StatusCode::OK)
            .await
    }

    /// Upserts an entity snapshot.
    pub async fn put_entity(
        &self,
        entity_type: &str,
        id: &str,
        owner: Option<(&str, &str)>,
        attributes: Value,
    ) -> Value {
        let mut body = json!({"attributes": attributes});
        if let Some((owner_type, owner_id)) = owner {
            body["ownerType"] = json!(owner_type);
            body["ownerId"] = json!(owner_id);
        }
        self.send(
            Method::PUT,
            &format!("/entities/{entity_type}/{id}"),
            body,
            StatusCode::OK,
        )
        .await
    }

    /// Posts events.
    pub async fn post_events(&self, events: Value) -> Value {
        self.send(
            Method::POST,
            "/events",
            json!({ "events": events }),
            StatusCode::OK,
        )
        .await
    }

    /// The alert's incidents, each in Tocsin's view (`/incidents/{id}/details`: Togai's
    /// fields, the subject, summary, snapshots, who acknowledged or closed it).
    pub async fn incidents_of(&self, alert_id: &str) -> Vec<Value> {
        let page = self
            .get(&format!("/incidents?alertId={alert_id}&pageSize=500"))
            .await;
        let mut incidents = Vec::new();
        for incident in page["data"].as_array().into_iter().flatten() {
            incidents.push(self.incident(incident["id"].as_str().unwrap()).await);
        }
        incidents
    }

    /// One incident in Tocsin's view.
    pub async fn incident(&self, id: &str) -> Value {
        self.get(&format!("/incidents/{id}/details")).await
    }

    /// Waits (up to 10 s) until the alert has an incident matching `pred`, and returns it.
    pub async fn wait_for_incident(&self, alert_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..400 {
            if let Some(found) = self
                .incidents_of(alert_id)
                .await
                .into_iter()
                .find(|i| pred(i))
            {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "no matching incident for {alert_id}: {:?}",
            self.incidents_of(alert_id).await
        );
    }

    /// Waits until the alert's `lastEvaluation` differs from `after` (or exists, for
    /// `None`), returning the alert. Under the manual clock, move the clock first so a new
    /// evaluation is told apart from the last.
    pub async fn wait_for_evaluation(&self, alert_id: &str, after: Option<&Value>) -> Value {
        for _ in 0..400 {
            let alert = self.get(&format!("/alerts/{alert_id}/details")).await;
            let last = &alert["lastEvaluation"];
            if !last.is_null() && Some(last) != after {
                return alert;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("alert {alert_id} was not evaluated");
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that panicked before `stop` must not leave its server running: dropping
        // the handle closes its shutdown channel, which stops the HTTP server, and its
        // evaluator and scheduler end with the test's runtime.
        drop(self.server.take());
    }
}

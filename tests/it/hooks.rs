//! Cloud triggers through the real server: every shared webhook fixture, signatures,
//! secrets, bad deliveries, duplicates, and one alarm all the way to a phone call.

use crate::support::{ADMIN_KEY, TestApp, spawn_app, spawn_app_at, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tocsin::clock::Clock;

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        tocsin_tests::workspace()
            .join("../shared/fixtures/webhooks")
            .join(name),
    )
    .unwrap()
}

/// Creates an integration; returns (id, secret, alert id).
pub(crate) async fn integration(
    app: &TestApp,
    kind: &str,
    extra: Value,
) -> (String, String, String) {
    let mut body = json!({"name": format!("{kind} hook"), "kind": kind});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = app
        .send(Method::POST, "/integrations", body, StatusCode::CREATED)
        .await;
    let text = |k: &str| created[k].as_str().unwrap().to_owned();
    app.wait_for_evaluation(&text("alertId"), None).await;
    (text("id"), text("secret"), text("alertId"))
}

pub(crate) async fn deliver(
    app: &TestApp,
    id: &str,
    secret: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/hooks/{id}", app.base))
        .bearer_auth(secret)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn alarms_of(app: &TestApp, integration: &str) -> Vec<Value> {
    app.get(&format!("/entities/ALARM?ownerId={integration}"))
        .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the alert's open incidents number `n`, and returns them.
pub(crate) async fn open_incidents(app: &TestApp, alert: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let open: Vec<Value> = app
            .incidents_of(alert)
            .await
            .into_iter()
            .filter(|i| i["status"] != "CLOSED")
            .collect();
        if open.len() == n {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{alert} never had {n} open incidents: {:?}",
        app.incidents_of(alert).await
    );
}

struct Expect {
    file: &'static str,
    kind: &'static str,
    /// (key, state, name, severity) of each alarm, in any order.
    alarms: &'static [(
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    )],
    open_incidents: usize,
    acknowledged: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_becomes_the_expected_alarms_and_incidents() {
    let table = [
        Expect {
            file: "alertmanager_v4-firing.json",
            kind: "alertmanager",
            alarms: &[
                (
                    "72a2002704e27a2e",
                    "FIRING",
                    "主机CPU使用率",
                    Some("exception"),
                ),
                (
                    "ba18df1a61fe8e0b",
                    "FIRING",
                    "主机CPU使用率",
                    Some("exception"),
                ),
                (
                    "5a6e9db40eb24b04",
                    "FIRING",
                    "主机CPU使用率",
                    Some("exception"),
                ),
            ],
            open_incidents: 3,
            acknowledged: false,
        },
        Expect {
            file: "alertmanager_v4-resolved.json",
            kind: "alertmanager",
            alarms: &[("20453f227ff62f33", "RESOLVED", "Grafana进程存活", None)],
            open_incidents: 0,
            acknowledged: false,
        },
        Expect {
            file: "aws-eventbridge_cloudwatch-alarm-state-change.json",
            kind: "aws-eventbridge",
            alarms: &[(
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh",
                "FIRING",
                "ServerCpuTooHigh",
                None,
            )],
            open_incidents: 1,
            acknowledged: false,
        },
        Expect {
            file: "azure-monitor_common-schema-fired.json",
            kind: "azure-monitor",
            alarms: &[(
                "/subscriptions/12345a-1234b-123c-123d-12345678e/providers/Microsoft.AlertsManagement/alerts/12345a-1234b-123c-123d-12345678e",
                "FIRING",
                "AcmeRule",
                Some("INFO"),
            )],
            open_incidents: 1,
            acknowledged: false,
        },
        Expect {
            file: "gcp-monitoring_incident-open.json",
            kind: "gcp-monitoring",
            alarms: &[(
                "0.nrwotmyokd9n",
                "FIRING",
                "Test-incident-canary",
                Some("ERROR"),
            )],
            open_incidents: 1,
            acknowledged: false,
        },
        Expect {
            file: "gcp-monitoring_test-notification.json",
            kind: "gcp-monitoring",
            alarms: &[],
            open_incidents: 0,
            acknowledged: true,
        },
        Expect {
            file: "grafana_unified-firing.json",
            kind: "grafana",
            alarms: &[("e6349a25f5ef0e9e", "FIRING", "Memory (copy)", None)],
            open_incidents: 1,
            acknowledged: false,
        },
        Expect {
            file: "pingdom_down.json",
            kind: "pingdom",
            alarms: &[("2048467", "FIRING", "Test check", Some("CRITICAL"))],
            open_incidents: 1,
            acknowledged: false,
        },
        Expect {
            file: "uptime-kuma_down.json",
            kind: "uptime-kuma",
            alarms: &[("89", "FIRING", "test", Some("CRITICAL"))],
            open_incidents: 1,
            acknowledged: false,
        },
    ];
    let app = spawn_app().await;
    for expect in table {
        let (id, secret, alert) = integration(&app, expect.kind, json!({})).await;
        let (status, response) = deliver(&app, &id, &secret, fixture(expect.file)).await;
        assert_eq!(status, StatusCode::OK, "{}: {response}", expect.file);
        assert_eq!(
            response["alarms"],
            expect.alarms.len(),
            "{}: {response}",
            expect.file
        );
        assert_eq!(
            response["acknowledged"].is_string(),
            expect.acknowledged,
            "{}",
            expect.file
        );
        let stored = alarms_of(&app, &id).await;
        assert_eq!(
            stored.len(),
            expect.alarms.len(),
            "{}: {stored:?}",
            expect.file
        );
        for (key, state, name, severity) in expect.alarms {
            let entity = stored
                .iter()
                .find(|e| e["entityId"] == format!("{id}:{key}"))
                .unwrap_or_else(|| panic!("{}: no alarm {key} in {stored:?}", expect.file));
            let a = &entity["attributes"];
            assert_eq!(a["state"], *state, "{}", expect.file);
            assert_eq!(a["name"], *name, "{}", expect.file);
            assert_eq!(a["severity"].as_str(), *severity, "{}", expect.file);
            assert_eq!(a["source"], expect.kind, "{}", expect.file);
        }
        let incidents = open_incidents(&app, &alert, expect.open_incidents).await;
        for incident in &incidents {
            assert_eq!(incident["reportData"]["state"], "FIRING", "{}", expect.file);
        }
    }

    // The AWS certificate we have expired in August 2022: today it cannot be pinned.
    let pem = String::from_utf8(fixture(
        "aws-sns_signing-cert-7ff5318490ec183fbaddaa2a969abfda.pem",
    ))
    .unwrap();
    let (status, body) = app
        .call(
            Method::POST,
            "/integrations",
            Some(ADMIN_KEY),
            Some(json!({"name": "sns", "kind": "aws-sns", "pinnedCertificates": [pem]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("pinnedCertificates[0] expired on Aug 17 23:59:59 2022 GMT"),
        "{body}"
    );
    app.stop().await;

    // The SNS captures, on a server whose clock reads the hour AWS signed the "Hello
    // world", with that certificate pinned: the signed "Hello world" verifies but carries
    // no alarm; the OK was signed with a certificate we do not have; the documentation's
    // confirmation has a placeholder signature. Each is refused and raises nothing
    // (tests/it/sns.rs re-signs them to follow them further).
    let app = spawn_app_at(
        Arc::new(tempfile::tempdir().unwrap()),
        Clock::manual("2022-07-28T23:00:00Z".parse().unwrap()),
    )
    .await;
    for (file, problem) in [
        (
            "aws-sns_notification-signed-v1.json",
            "the SNS Message is not a CloudWatch alarm notification",
        ),
        (
            "aws-sns_cloudwatch-alarm-OK.json",
            "the SNS signature does not verify with any of the integration's 1 pinned certificates",
        ),
        (
            "aws-sns_subscription-confirmation.json",
            "the SNS signature does not verify",
        ),
    ] {
        let (id, secret, alert) =
            integration(&app, "aws-sns", json!({"pinnedCertificates": [pem]})).await;
        let (status, response) = deliver(&app, &id, &secret, fixture(file)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{file}: {response}");
        assert!(
            response["message"].as_str().unwrap().contains(problem),
            "{file}: {response}"
        );
        assert!(alarms_of(&app, &id).await.is_empty(), "{file}");
        assert!(app.incidents_of(&alert).await.is_empty(), "{file}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_closes_and_duplicates_change_nothing() {
    let app = spawn_app().await;
    let (id, secret, alert) = integration(&app, "alertmanager", json!({})).await;
    let firing = fixture("alertmanager_v4-firing.json");
    assert_eq!(
        deliver(&app, &id, &secret, firing.clone()).await.0,
        StatusCode::OK
    );
    let opened = open_incidents(&app, &alert, 3).await;
    let (status, again) = deliver(&app, &id, &secret, firing.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["duplicate"], true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(open_incidents(&app, &alert, 3).await.len(), opened.len());

    // The same group, resolved (Alertmanager resends it with each alert's status).
    let mut resolved: Value = serde_json::from_slice(&firing).unwrap();
    resolved["status"] = json!("resolved");
    for alert in resolved["alerts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .take(2)
    {
        alert["status"] = json!("resolved");
    }
    let (status, _) = deliver(&app, &id, &secret, resolved.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    let still_open = open_incidents(&app, &alert, 1).await;
    assert_eq!(
        still_open[0]["subject"],
        format!("{id}:5a6e9db40eb24b04"),
        "per-alert status, not the group's"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_signatures_and_bad_payloads_are_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let (id, secret, alert) = integration(&app, "grafana", json!({"hmacKey": "grafana-key"})).await;
    let body = fixture("grafana_unified-firing.json");

    // An unknown integration and a wrong secret look the same.
    let (unknown, unknown_body) = deliver(&app, "int_nope", &secret, body.clone()).await;
    let (wrong, wrong_body) = deliver(&app, &id, "tsk_wrong", body.clone()).await;
    assert_eq!(
        (unknown, wrong),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(unknown_body, wrong_body);

    // A wrong Grafana signature, or none.
    for signature in [None, Some("00ff")] {
        let mut request = app
            .client
            .post(format!("{}/hooks/{id}?token={secret}", app.base))
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("X-Grafana-Alerting-Signature", signature);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let message: Value = response.json().await.unwrap();
        assert!(
            message["message"]
                .as_str()
                .unwrap()
                .contains("X-Grafana-Alerting-Signature"),
            "{message}"
        );
    }
    assert!(alarms_of(&app, &id).await.is_empty());
    let rejected = app.get(&format!("/integrations/{id}/rejected")).await;
    assert_eq!(rejected["data"].as_array().unwrap().len(), 2, "{rejected}");
    assert!(
        rejected["data"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("X-Grafana-Alerting-Signature")
    );

    // The right signature, with the secret as ?token=.
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"grafana-key").unwrap();
    mac.update(&body);
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let response = app
        .client
        .post(format!("{}/hooks/{id}?token={secret}", app.base))
        .header("X-Grafana-Alerting-Signature", signature)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    open_incidents(&app, &alert, 1).await;

    // Not JSON, a payload of another platform, and an oversized one.
    let (plain, plain_secret, _) = integration(&app, "pingdom", json!({})).await;
    let (status, response) = deliver(&app, &plain, &plain_secret, b"{not json".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
    assert!(
        response["message"]
            .as_str()
            .unwrap()
            .contains("the body is not JSON"),
        "{response}"
    );
    let (status, response) = deliver(
        &app,
        &plain,
        &plain_secret,
        fixture("uptime-kuma_down.json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        response["message"]
            .as_str()
            .unwrap()
            .contains("not a pingdom payload: /current_state is missing"),
        "{response}"
    );
    let (status, _) = deliver(&app, &plain, &plain_secret, vec![b' '; 300 << 10]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(alarms_of(&app, &plain).await.is_empty());
    let rejected = app.get(&format!("/integrations/{plain}/rejected")).await;
    assert_eq!(rejected["data"].as_array().unwrap().len(), 2, "{rejected}");

    // Rotating the secret: the old one stops working.
    let rotated = app
        .send(
            Method::POST,
            &format!("/integrations/{plain}/rotate"),
            json!(null),
            StatusCode::OK,
        )
        .await;
    let (status, _) = deliver(&app, &plain, &plain_secret, fixture("pingdom_down.json")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = deliver(
        &app,
        &plain,
        rotated["secret"].as_str().unwrap(),
        fixture("pingdom_down.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Kinds: nonsense is refused.
    for (kind, message) in [("smoke-signals", "is not one of")] {
        let response = app
            .send(
                Method::POST,
                "/integrations",
                json!({"name": "x", "kind": kind}),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert!(
            response["message"].as_str().unwrap().contains(message),
            "{response}"
        );
    }
    let (status, _) = app.call(Method::GET, "/integrations", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let audit = app.get("/audit").await.to_string();
    assert!(audit.contains("integration.create") && audit.contains("integration.rotate"));
    let _ = ADMIN_KEY;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_alarms_are_pruned_an_hour_after_their_incident_closed() {
    let app = spawn_app().await;
    let (id, secret, alert) = integration(&app, "generic", json!({})).await;
    let alarm = |key: &str, state: &str| {
        json!({"key": key, "state": state, "name": "Down", "resource": "web"})
            .to_string()
            .into_bytes()
    };
    for key in ["a", "b"] {
        deliver(&app, &id, &secret, alarm(key, "FIRING")).await;
    }
    open_incidents(&app, &alert, 2).await;
    deliver(&app, &id, &secret, alarm("a", "RESOLVED")).await;
    open_incidents(&app, &alert, 1).await;

    app.advance(chrono::Duration::minutes(61));
    // The next delivery prunes: "a" resolved an hour ago; "b" still fires.
    deliver(&app, &id, &secret, alarm("c", "FIRING")).await;
    let keys: Vec<String> = alarms_of(&app, &id)
        .await
        .iter()
        .map(|e| e["entityId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(!keys.contains(&format!("{id}:a")), "{keys:?}");
    let closed = app.incidents_of(&alert).await;
    assert!(
        closed
            .iter()
            .any(|i| i["subject"] == format!("{id}:a") && i["status"] == "CLOSED"),
        "the incident keeps its record"
    );

    // Delivery digests are remembered a day: a resend within it is a duplicate, after it
    // (once a delivery has triggered pruning) it is taken again.
    let (_, again) = deliver(&app, &id, &secret, alarm("b", "FIRING")).await;
    assert_eq!(again["duplicate"], true);
    app.advance(chrono::Duration::hours(25));
    deliver(&app, &id, &secret, alarm("d", "FIRING")).await;
    let (_, later) = deliver(&app, &id, &secret, alarm("b", "FIRING")).await;
    assert_eq!(
        (&later["duplicate"], &later["alarms"]),
        (&json!(false), &json!(1))
    );
    app.stop().await;
}

/// A second connection to a test server's database, for statements behind its back.
enum Beside {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Beside {
    async fn execute(&mut self, statement: &str) {
        use sqlx::Executor;
        match self {
            Self::Sqlite(conn) => conn.execute(statement).await.map(drop),
            Self::Postgres(conn) => conn.execute(statement).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// An evaluation whose results the store refuses to write (here a constraint a second
/// connection adds, as a deadlock or a full disk would) is not lost: it is evaluated again
/// and written, once, when the store takes it. On SQLite, or on the PostgreSQL at `pg`.
async fn a_refused_evaluation_is_written_once_the_store_takes_it(
    pg: Option<&str>,
    refuse: &str,
    accept: &str,
) {
    use sqlx::Connection;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = Clock::manual("2026-03-04T10:00:00Z".parse().unwrap());
    let app = spawn_app_with(dir.clone(), clock, |config| {
        if let Some(url) = pg {
            config.database = tocsin::store::Database::parse(url);
        }
    })
    .await;
    let mut beside = match pg {
        Some(url) => Beside::Postgres(sqlx::PgConnection::connect(url).await.unwrap()),
        None => {
            let url = format!("sqlite://{}", dir.path().join("tocsin.db").display());
            Beside::Sqlite(sqlx::SqliteConnection::connect(&url).await.unwrap())
        }
    };
    let (id, secret, alert) = integration(&app, "generic", json!({})).await;
    beside.execute(refuse).await;

    let body = json!({"key": "refused", "state": "FIRING", "name": "Down", "resource": "web"});
    let (status, _) = deliver(&app, &id, &secret, body.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    // Evaluated and refused, more than once (a refused batch is evaluated again each second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(app.incidents_of(&alert).await.is_empty());

    beside.execute(accept).await;
    let open = open_incidents(&app, &alert, 1).await;
    assert_eq!(open[0]["subject"], format!("{id}:refused"));
    let incident = open[0]["id"].as_str().unwrap();
    let timeline = app.get(&format!("/incidents/{incident}/timeline")).await;
    let opened = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "opened")
        .count();
    assert_eq!(opened, 1, "{timeline}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_the_store_refused_is_written_once_it_takes_it() {
    a_refused_evaluation_is_written_once_the_store_takes_it(
        None,
        "CREATE TRIGGER refuse BEFORE INSERT ON incidents WHEN NEW.subject LIKE '%:refused'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        "DROP TRIGGER refuse",
    )
    .await;
    if let Some(db) = crate::pg::TestDatabase::create("refused_evaluation").await {
        a_refused_evaluation_is_written_once_the_store_takes_it(
            Some(&db.url),
            "ALTER TABLE incidents ADD CONSTRAINT refuse CHECK (subject NOT LIKE '%:refused')",
            "ALTER TABLE incidents DROP CONSTRAINT refuse",
        )
        .await;
    }
}

/// An integration's alert is narrowed alarm by alarm wherever it is evaluated at once, not
/// only on its turn: changed, it is judged alarm by alarm too. Whole, the findings of
/// 5,000 alarms are more than a plugin may return (1 MiB), and the evaluation failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_alert_of_thousands_of_alarms_is_evaluated_alarm_by_alarm() {
    const ALARMS: usize = 5_000;
    let app = spawn_app().await;
    let (id, secret, alert) = integration(&app, "generic", json!({})).await;
    for from in (0..ALARMS).step_by(500) {
        let alarms: Vec<Value> = (from..from + 500)
            .map(|n| {
                json!({"key": format!("alarm-{n:05}"), "state": "FIRING", "name": "DiskFull",
                       "resource": format!("db-{n}"), "severity": "critical",
                       "summary": "disk full on the primary"})
            })
            .collect();
        let (status, _) = deliver(
            &app,
            &id,
            &secret,
            json!({ "alarms": alarms }).to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut opened = 0;
    for _ in 0..600 {
        opened = open_count(&app, &alert).await;
        if opened == ALARMS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(opened, ALARMS, "every alarm opens its incident");

    let before = app.get(&format!("/alerts/{alert}/details")).await;
    app.advance(chrono::Duration::seconds(1));
    app.send(
        Method::PATCH,
        &format!("/alerts/{alert}"),
        json!({"description": "disks"}),
        StatusCode::OK,
    )
    .await;
    let after = app
        .wait_for_evaluation(&alert, Some(&before["lastEvaluation"]))
        .await;
    assert_eq!(after["lastEvaluation"]["outcome"], "ok", "{after}");
    assert_eq!(open_count(&app, &alert).await, ALARMS);
    app.stop().await;
}

/// On PostgreSQL, the node that creates an integration holds its alert's lease from the
/// start, so the alert's first evaluation (whole) runs before any alarm arrives, as on
/// SQLite. Left to the next lease renewal, it met the 5,000 alarms delivered at once,
/// outgrew a plugin's output and failed, and no incident opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_flooded_at_once_on_postgresql_opens_every_incident() {
    const ALARMS: usize = 5_000;
    let Some(db) = crate::pg::TestDatabase::create("flooded_at_once").await else {
        return;
    };
    let app = crate::support::spawn_app_on_postgres(&db.url).await;
    let created = app
        .send(
            Method::POST,
            "/integrations",
            json!({"name": "flood", "kind": "generic"}),
            StatusCode::CREATED,
        )
        .await;
    let (id, secret, alert) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
        created["alertId"].as_str().unwrap(),
    );
    for from in (0..ALARMS).step_by(500) {
        let alarms: Vec<Value> = (from..from + 500)
            .map(|n| {
                json!({"key": format!("alarm-{n:05}"), "state": "FIRING", "name": "DiskFull",
                       "resource": format!("db-{n}"), "severity": "critical"})
            })
            .collect();
        let (status, _) = deliver(
            &app,
            id,
            secret,
            json!({ "alarms": alarms }).to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut opened = 0;
    for _ in 0..300 {
        let page = app.get(&format!("/alerts/{alert}/details")).await;
        assert_ne!(page["lastEvaluation"]["outcome"], "error", "{page}");
        opened = open_count(&app, alert).await;
        if opened == ALARMS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(opened, ALARMS, "every alarm opens its incident");
    app.stop().await;
}

/// How many incidents of `alert` are open.
async fn open_count(app: &TestApp, alert: &str) -> usize {
    let (mut n, mut token) = (0, None::<String>);
    loop {
        let mut path = format!("/incidents?alertId={alert}&status=OPEN&pageSize=500");
        if let Some(t) = &token {
            path.push_str(&format!("&nextToken={t}"));
        }
        let page = app.get(&path).await;
        n += page["data"].as_array().unwrap().len();
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return n,
        }
    }
}

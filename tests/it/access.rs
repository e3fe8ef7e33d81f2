//! Keys, roles and the audit log: every role against every resource family.

use crate::support::{ADMIN_KEY, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn key(app: &TestApp, role: &str) -> String {
    let created = app
        .send(
            Method::POST,
            "/api_keys",
            json!({"name": format!("{role} key"), "role": role}),
            StatusCode::CREATED,
        )
        .await;
    created["secret"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_is_allowed_exactly_its_resource_families() {
    let app = spawn_app().await;
    let alert = app
        .create_alert("credit_low_balance", Some("acc1"), json!({"threshold": 50}))
        .await;
    let alert_id = alert["id"].as_str().unwrap().to_owned();
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "1", "granted": "2"}),
    )
    .await;
    let incident = app
        .wait_for_incident(&alert_id, |i| i["status"] == "OPEN")
        .await;
    let incident_id = incident["id"].as_str().unwrap().to_owned();

    let keys = [
        ("admin", ADMIN_KEY.to_owned()),
        ("editor", key(&app, "editor").await),
        ("viewer", key(&app, "viewer").await),
        ("ingest", key(&app, "ingest").await),
    ];
    let roster = app
        .send(
            Method::POST,
            "/rosters",
            json!({"name": "on-call", "members": [{"name": "Ada", "phone": "+15550000001"}]}),
            StatusCode::CREATED,
        )
        .await;
    let roster_id = roster["id"].as_str().unwrap().to_owned();
    let wasm = tocsin_tests::guest("percent_credits_used").to_vec();
    // (family, method, path, body, roles allowed)
    type Row = (
        &'static str,
        Method,
        String,
        Option<Value>,
        &'static [&'static str],
    );
    let matrix: Vec<Row> = vec![
        (
            "templates",
            Method::GET,
            "/alert_templates".into(),
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            "alerts",
            Method::GET,
            "/alerts".into(),
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            "alerts",
            Method::POST,
            "/alerts".into(),
            Some(
                json!({"alertTemplateId": "credit_low_balance", "interval": 5, "status": "INACTIVE", "parameters": {"threshold": 1}}),
            ),
            &["admin", "editor"],
        ),
        (
            "alerts",
            Method::PATCH,
            format!("/alerts/{alert_id}"),
            Some(json!({"description": "x"})),
            &["admin", "editor"],
        ),
        (
            "incidents",
            Method::GET,
            "/incidents".into(),
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            "incidents",
            Method::GET,
            format!("/incidents/{incident_id}/timeline"),
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            "entities",
            Method::PUT,
            "/entities/WALLET/w1".into(),
            Some(json!({"attributes": {}})),
            &["admin", "editor", "ingest"],
        ),
        (
            "entities",
            Method::GET,
            "/entities/CREDIT/c1".into(),
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            "events",
            Method::POST,
            "/events".into(),
            Some(json!({"events": [{"id": "e", "timestamp": "2026-03-04T09:00:00Z"}]})),
            &["admin", "editor", "ingest"],
        ),
        (
            "events",
            Method::GET,
            "/events".into(),
            None,
            &["admin", "editor", "viewer"],
        ),
        ("keys", Method::GET, "/api_keys".into(), None, &["admin"]),
        (
            "keys",
            Method::POST,
            "/api_keys".into(),
            Some(json!({"name": "n", "role": "viewer"})),
            &["admin"],
        ),
        ("audit", Method::GET, "/audit".into(), None, &["admin"]),
        (
            "rosters",
            Method::GET,
            "/rosters".into(),
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            "rosters",
            Method::POST,
            "/rosters".into(),
            Some(json!({"name": "ops", "members": [{"name": "Ada", "phone": "+15550000001"}]})),
            &["admin"],
        ),
        (
            "routes",
            Method::GET,
            "/routes".into(),
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            "routes",
            Method::POST,
            "/routes".into(),
            Some(json!({"rosterId": roster_id, "match": {"ownerId": "acc1"}})),
            &["admin"],
        ),
    ];
    for (family, method, path, body, allowed) in &matrix {
        for (role, secret) in &keys {
            let (status, response) = app
                .call(method.clone(), path, Some(secret), body.clone())
                .await;
            if allowed.contains(role) {
                assert!(
                    status.is_success(),
                    "{role} should be allowed {method} {path} ({family}): {status} {response}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} must be denied {method} {path} ({family}): {response}"
                );
                assert!(
                    response["message"].as_str().unwrap().contains(role),
                    "{response}"
                );
            }
        }
        let (status, _) = app.call(method.clone(), path, None, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "no key: {method} {path}");
        let (status, _) = app
            .call(method.clone(), path, Some("tsk_wrong"), body.clone())
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "wrong key: {method} {path}"
        );
    }
    // Plugin uploads and closing incidents, once per role (they change state).
    for (role, secret) in &keys {
        let response = app
            .client
            .post(format!("{}/plugins", app.base))
            .bearer_auth(secret)
            .header("content-type", "application/wasm")
            .body(wasm.clone())
            .send()
            .await
            .unwrap();
        if *role == "admin" {
            assert!(response.status().is_success(), "admin uploads");
        } else {
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{role} must not upload"
            );
        }
    }
    for (role, secret) in keys.iter().rev() {
        let (status, _) = app
            .call(
                Method::PUT,
                &format!("/incidents/{incident_id}/status"),
                Some(secret),
                Some(json!({"status": "CLOSED"})),
            )
            .await;
        let allowed = matches!(*role, "admin" | "editor");
        assert_eq!(
            status.is_success(),
            allowed,
            "{role} closing an incident: {status}"
        );
    }
    // X-API-Key works as well as the bearer scheme.
    let response = app
        .client
        .get(format!("{}/alerts", app.base))
        .header("X-API-Key", &keys[2].1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_changes_are_audited_and_revoked_keys_stop_working() {
    let app = spawn_app().await;
    let created = app
        .send(
            Method::POST,
            "/api_keys",
            json!({"name": "ci", "role": "ingest"}),
            StatusCode::CREATED,
        )
        .await;
    let secret = created["secret"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let listed = app.get("/api_keys").await;
    assert!(
        listed.to_string().contains(id) && !listed.to_string().contains(secret),
        "keys are listed without secrets"
    );
    app.send(
        Method::DELETE,
        &format!("/api_keys/{id}"),
        json!(null),
        StatusCode::NO_CONTENT,
    )
    .await;
    let (status, _) = app
        .call(
            Method::POST,
            "/events",
            Some(secret),
            Some(json!({"events": [{"id": "e", "timestamp": "2026-03-04T09:00:00Z"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let audit = app.get("/audit").await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["api_key.revoke", "api_key.create"]);
    let entry = &audit["data"][1];
    assert!(entry["actor"].as_str().unwrap().starts_with("key_"));
    assert_eq!(entry["resource"], format!("api_keys/{id}"));
    assert_eq!(entry["detail"]["role"], "ingest");
    assert!(entry["at"].is_string());
    app.stop().await;
}

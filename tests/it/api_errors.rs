//! Bad input gets a 4xx with a message naming the problem, and nothing is stored.

use crate::support::{ADMIN_KEY, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> &str {
    body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"))
}

async fn nothing_stored(app: &TestApp) {
    assert!(
        app.get("/alerts").await["data"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no alert was stored"
    );
    assert_eq!(
        app.get("/alert_templates").await["data"]
            .as_array()
            .unwrap()
            .len(),
        9,
        "no template was added"
    );
    assert!(
        app.get("/incidents").await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_a_message_and_store_nothing() {
    let app = spawn_app().await;

    let (status, body) = raw(
        &app,
        Method::POST,
        "/alerts",
        "application/json",
        b"{\"alertTemplateId\": ".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("JSON"), "{body}");

    let (status, body) = app
        .call(Method::POST, "/alerts", Some(ADMIN_KEY), Some(json!({"alertTemplateId": "credit_low_balance", "interval": "hourly", "status": "ACTIVE"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("interval"), "{body}");

    let (status, body) = app
        .call(
            Method::POST,
            "/alerts",
            Some(ADMIN_KEY),
            Some(json!({"alertTemplateId": "credit_low_balance", "interval": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("missing field `status`"), "{body}");

    let (status, body) = app
        .call(
            Method::POST,
            "/alerts",
            Some(ADMIN_KEY),
            Some(json!({"alertTemplateId": "no_such_template", "interval": 5, "status": "ACTIVE"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message(&body).contains("\"no_such_template\" is not a registered alert template"),
        "{body}"
    );

    let (status, body) = app
        .call(Method::POST, "/alerts", Some(ADMIN_KEY), Some(json!({"alertTemplateId": "invoice_due_breach", "interval": 5, "status": "ACTIVE", "parameters": {"thresholdDays": -3, "thresholdAmount": 1}})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message(&body).contains("parameters at /thresholdDays"),
        "{body}"
    );

    let (status, body) = app
        .call(Method::POST, "/alerts", Some(ADMIN_KEY), Some(json!({"alertTemplateId": "credit_low_balance", "interval": 5, "status": "ACTIVE", "validity": -1, "parameters": {"threshold": 1}})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("validity"), "{body}");

    let huge = format!(
        "{{\"events\": [{}]}}",
        vec!["{\"id\":\"x\",\"timestamp\":\"2026-03-04T09:00:00Z\"}"; 40_000].join(",")
    );
    let (status, body) = raw(
        &app,
        Method::POST,
        "/events",
        "application/json",
        huge.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(message(&body).contains("limit"), "{body}");

    let (status, body) = raw(&app, Method::POST, "/alerts", "text/plain", b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");

    let (status, body) = app
        .call(
            Method::POST,
            "/events",
            Some(ADMIN_KEY),
            Some(json!({"events": [{"id": "e1", "timestamp": "yesterday"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message(&body).contains("timestamp")
            || message(&body).contains("input contains invalid characters"),
        "{body}"
    );
    let (status, body) = app
        .call(Method::POST, "/events", Some(ADMIN_KEY), Some(json!({"events": [{"id": "e1", "timestamp": "2026-03-04T09:00:00Z", "value": "ten"}]})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message(&body).contains("\"ten\" is not a decimal number"),
        "{body}"
    );
    assert!(
        app.get("/events").await["data"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no event was stored"
    );

    for attributes in [json!([1, 2]), json!(null), json!("balance")] {
        let (status, body) = app
            .call(
                Method::PUT,
                "/entities/CREDIT/c1",
                Some(ADMIN_KEY),
                Some(json!({ "attributes": attributes })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            message(&body).contains("attributes must be a JSON object"),
            "{body}"
        );
    }
    let (status, _) = app
        .call(Method::GET, "/entities/CREDIT/c1", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no entity was stored");

    for (method, path, body) in [
        (Method::GET, "/alerts/alt_nope", None),
        (
            Method::PATCH,
            "/alerts/alt_nope",
            Some(json!({"description": "x"})),
        ),
        (Method::GET, "/alerts/alt_nope/problems", None),
        (Method::GET, "/incidents/inc_nope", None),
        (
            Method::PUT,
            "/incidents/inc_nope/status",
            Some(json!({"status": "CLOSED"})),
        ),
        (Method::GET, "/incidents/inc_nope/timeline", None),
        (Method::GET, "/alert_templates/nope", None),
        (Method::GET, "/entities/CREDIT/nope", None),
        (Method::GET, "/events/nope", None),
        (Method::DELETE, "/api_keys/key_nope", None),
        (Method::GET, "/no/such/route", None),
    ] {
        let (status, response) = app.call(method.clone(), path, Some(ADMIN_KEY), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {response}");
        assert!(!message(&response).is_empty());
    }

    let (status, body) = raw(
        &app,
        Method::POST,
        "/plugins",
        "application/wasm",
        b"this is not wasm".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message(&body).contains("not a valid WebAssembly component"),
        "{body}"
    );
    let (status, body) = raw(
        &app,
        Method::POST,
        "/plugins",
        "application/octet-stream",
        tocsin_tests::guest("percent_credits_used").to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(message(&body).contains("application/wasm"), "{body}");
    let (status, body) = raw(
        &app,
        Method::POST,
        "/plugins",
        "application/wasm",
        tocsin_tests::guest("forbidden_fs").to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&body).contains("wasi:filesystem"), "{body}");

    nothing_stored(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_closed_can_be_set_on_an_incident() {
    let app = spawn_app().await;
    let alert = app
        .create_alert("credit_low_balance", Some("acc1"), json!({"threshold": 50}))
        .await;
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "1", "granted": "2"}),
    )
    .await;
    let incident = app
        .wait_for_incident(alert["id"].as_str().unwrap(), |i| i["status"] == "OPEN")
        .await;
    let path = format!("/incidents/{}/status", incident["id"].as_str().unwrap());
    let (status, body) = app
        .call(
            Method::PUT,
            &path,
            Some(ADMIN_KEY),
            Some(json!({"status": "ACKNOWLEDGED"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .call(
            Method::PUT,
            &path,
            Some(ADMIN_KEY),
            Some(json!({"status": "SOLVED"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        app.get(&path.replace("/status", "")).await["status"],
        "OPEN"
    );
    app.stop().await;
}

//! Uploading a third-party template: registered, evaluated, upgraded in place.

use crate::support::{ADMIN_KEY, TestApp, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn upload(app: &TestApp, wasm: &[u8]) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/plugins", app.base))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/wasm")
        .body(wasm.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_template_runs_and_a_newer_version_takes_over_without_a_restart() {
    let app = spawn_app().await;
    let v1 = tocsin_tests::guest("percent_credits_used");
    let (status, template) = upload(&app, v1).await;
    assert_eq!(status, StatusCode::CREATED, "{template}");
    assert_eq!(template["id"], "percent_credits_used");
    assert_eq!(template["version"], "1.0.0");
    assert_eq!(template["builtin"], false);
    assert_eq!(
        app.get("/plugins/percent_credits_used").await["version"],
        "1.0.0"
    );

    let alert = app
        .create_alert("percent_credits_used", Some("acc1"), json!({"percent": 75}))
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "20", "granted": "100"}),
    )
    .await;
    let incident = app.wait_for_incident(&id, |i| i["status"] == "OPEN").await;
    assert_eq!(
        incident["reportData"],
        json!({"usedPercent": "80", "used": "80", "granted": "100", "accountId": "acc1"})
    );
    assert_eq!(
        app.get(&format!("/alerts/{id}/details")).await["lastEvaluation"]["templateVersion"],
        "1.0.0"
    );

    // The same component again changes nothing.
    let (status, _) = upload(&app, v1).await;
    assert_eq!(status, StatusCode::OK);

    // Version 1.1.0 takes over for the next evaluation.
    let (status, upgraded) = upload(&app, tocsin_tests::guest("percent_credits_used_v2")).await;
    assert_eq!(status, StatusCode::OK, "{upgraded}");
    assert_eq!(upgraded["version"], "1.1.0");
    let before = app.get(&format!("/alerts/{id}/details")).await["lastEvaluation"].clone();
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "10", "granted": "100"}),
    )
    .await;
    let evaluated = app.wait_for_evaluation(&id, Some(&before)).await;
    assert_eq!(evaluated["lastEvaluation"]["templateVersion"], "1.1.0");

    // Going back to 1.0.0 is refused and changes nothing.
    let (status, body) = upload(&app, v1).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["message"].as_str().unwrap().contains("higher version"),
        "{body}"
    );
    assert_eq!(
        app.get("/plugins/percent_credits_used").await["version"],
        "1.1.0"
    );

    let audit = app.get("/audit").await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["plugin.upgrade", "plugin.register"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_template_survives_a_restart() {
    let app = spawn_app().await;
    upload(&app, tocsin_tests::guest("percent_credits_used")).await;
    let (dir, clock) = app.stop().await;
    let app = crate::support::spawn_app_at(dir, clock).await;
    assert_eq!(
        app.get("/plugins/percent_credits_used").await["builtin"],
        false
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_state_crosses_from_one_alerts_evaluation_to_another_alerts() {
    let app = spawn_app().await;
    let (status, body) = upload(&app, tocsin_tests::guest("hostile")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Each evaluation of "count" reports how often its instance has been called.
    let mut ids = Vec::new();
    for owner in ["acc1", "acc2", "acc3", "acc4", "acc5", "acc6"] {
        let alert = app
            .create_alert("hostile", Some(owner), json!({"mode": "count"}))
            .await;
        ids.push(alert["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let incident = app.wait_for_incident(id, |i| i["status"] == "OPEN").await;
        assert_eq!(incident["reportData"], json!({"calls": 1}));
    }
    // One tick makes all six due at once: they are evaluated side by side, in batches.
    app.advance(chrono::Duration::minutes(61));
    for id in &ids {
        let incident = app
            .wait_for_incident(id, |i| i["lastCheckedAt"] != i["createdAt"])
            .await;
        assert_eq!(incident["latestReportData"], json!({"calls": 1}), "{id}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_for_one_entity_is_recorded_as_that_entitys_failure() {
    let app = spawn_app().await;
    let (status, body) = upload(&app, tocsin_tests::guest("hostile")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for gadget in ["g1", "g2"] {
        app.put_entity("GADGET", gadget, None, json!({})).await;
    }
    // "failAlone" judges every gadget in a whole run, and fails to judge one alone.
    let alert = app
        .create_alert("hostile", None, json!({"mode": "failAlone"}))
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    let whole = app.wait_for_evaluation(&id, None).await;
    assert_eq!(whole["lastEvaluation"]["outcome"], "ok", "{whole}");

    // A change to one gadget has it judged alone; that run fails, and the failure is the
    // gadget's. The alert is not evaluated whole instead, which would hide it.
    let mut last = whole["lastEvaluation"].clone();
    for gadget in ["g1", "g2"] {
        app.advance(chrono::Duration::seconds(1));
        app.put_entity("GADGET", gadget, None, json!({"changed": true}))
            .await;
        let failed = app.wait_for_evaluation(&id, Some(&last)).await;
        last = failed["lastEvaluation"].clone();
        assert_eq!(last["outcome"], "error", "{failed}");
        let message = last["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("cannot judge {gadget} alone")),
            "{message}"
        );
        let problems = app.get(&format!("/alerts/{id}/problems")).await;
        assert_eq!(problems["data"][0]["subject"], gadget, "{problems}");
        assert_eq!(problems["data"][0]["outcome"], "error", "{problems}");
    }
    app.stop().await;
}

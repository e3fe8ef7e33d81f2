//! The server's behaviour over time and under load: the scheduler, restarts, concurrent
//! writers, and the operations endpoints.

use crate::support::{ADMIN_KEY, spawn_app, spawn_app_at};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_aging_past_threshold_days_opens_an_incident_on_the_schedulers_tick() {
    let app = spawn_app().await;
    // Issued 29 days and 1 hour before now: not yet more than 30 days old.
    app.put_entity(
        "INVOICE",
        "i1",
        Some(("ACCOUNT", "acc1")),
        json!({"status": "DUE", "issueDate": "2026-02-03T09:00:00Z", "amount": "500"}),
    )
    .await;
    let alert = app
        .create_alert(
            "invoice_due_breach",
            Some("acc1"),
            json!({"thresholdDays": 30, "thresholdAmount": 100}),
        )
        .await;
    let id = alert["id"].as_str().unwrap();
    let first = app.wait_for_evaluation(id, None).await;
    assert_eq!(first["lastEvaluation"]["outcome"], "ok");
    assert!(app.incidents_of(id).await.is_empty());

    // No new data: only time passes. The next tick (interval 60 minutes) sees it aged.
    app.advance(chrono::Duration::hours(24));
    let incident = app.wait_for_incident(id, |i| i["status"] == "OPEN").await;
    assert_eq!(
        incident["reportData"],
        json!({"invoiceSum": "500", "invoiceCount": 1, "accountId": "acc1"})
    );
    assert_eq!(
        incident["createdAt"].as_str().unwrap(),
        "2026-03-05T10:00:00Z"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_everything_is_there_and_evaluation_goes_on() {
    let app = spawn_app().await;
    let alert = app
        .create_alert("credit_low_balance", Some("acc1"), json!({"threshold": 50}))
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "10", "granted": "100"}),
    )
    .await;
    let incident = app.wait_for_incident(&id, |i| i["status"] == "OPEN").await;
    let incident_id = incident["id"].as_str().unwrap().to_owned();
    let alerts_before = app.get("/alerts").await;
    let timeline_before = app.get(&format!("/incidents/{incident_id}/timeline")).await;
    let (dir, clock) = app.stop().await;

    let app = spawn_app_at(dir, clock).await;
    let alerts_after = app.get("/alerts").await;
    assert_eq!(
        alerts_after["data"][0]["id"],
        alerts_before["data"][0]["id"]
    );
    assert_eq!(
        alerts_after["data"][0]["parameters"],
        alerts_before["data"][0]["parameters"]
    );
    assert_eq!(
        app.get(&format!("/incidents/{incident_id}")).await["reportData"],
        incident["reportData"]
    );
    assert_eq!(
        app.get(&format!("/incidents/{incident_id}/timeline")).await,
        timeline_before
    );

    // The dependency index came back too: a change reaches the alert at once.
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "90", "granted": "100"}),
    )
    .await;
    let closed = app
        .wait_for_incident(&id, |i| i["status"] == "CLOSED")
        .await;
    assert_eq!(closed["id"], incident_id.as_str());
    assert_eq!(closed["closingReportData"]["remainingBalance"], "90");

    // Later, an evaluation that changes nothing but its time (still clear, nothing open):
    // nothing is written then, yet the time is saved by the time the server stops.
    let before = app.get(&format!("/alerts/{id}/details")).await["lastEvaluation"].clone();
    app.clock.advance(chrono::Duration::minutes(5));
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "95", "granted": "100"}),
    )
    .await;
    app.wait_for_evaluation(&id, Some(&before)).await;
    let last = app.get(&format!("/alerts/{id}/details")).await["lastEvaluation"].clone();
    assert_eq!(last["outcome"], "ok");
    assert_eq!(last["at"], "2026-03-04T10:05:00Z");
    let (dir, clock) = app.stop().await;
    let app = spawn_app_at(dir, clock).await;
    assert_eq!(
        app.get(&format!("/alerts/{id}/details")).await["lastEvaluation"],
        last
    );
    app.stop().await;
}

/// Every alert, through `/alerts` a page at a time.
async fn all_alerts(app: &crate::support::TestApp) -> Vec<serde_json::Value> {
    let mut alerts = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .get(&format!("/alerts?pageSize=500&nextToken={token}"))
            .await;
        alerts.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["nextToken"].as_str() {
            Some(next) => token = next.to_owned(),
            None => return alerts,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_brings_back_more_alerts_than_one_page_of_loading_with_what_they_read() {
    // The server loads alerts 1,000 rows at a time: 1,001 make a second page.
    const ALERTS: usize = 1_001;
    let app = spawn_app().await;
    let creators: Vec<_> = (0..4)
        .map(|worker| {
            let (client, base) = (app.client.clone(), app.base.clone());
            tokio::spawn(async move {
                for i in (worker..ALERTS).step_by(4) {
                    let response = client
                        .post(format!("{base}/alerts"))
                        .bearer_auth(ADMIN_KEY)
                        .json(&json!({"alertTemplateId": "credit_low_balance", "interval": 60, "status": "ACTIVE",
                                      "ownerDetails": {"id": format!("acc{i}")}, "parameters": {"threshold": 50}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for creator in creators {
        creator.await.unwrap();
    }
    // Every alert evaluated once, so each has recorded what it reads.
    for _ in 0..400 {
        if all_alerts(&app)
            .await
            .iter()
            .all(|a| !a["lastEvaluation"].is_null())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = all_alerts(&app).await;
    assert_eq!(before.len(), ALERTS);
    let (dir, clock) = app.stop().await;

    let app = spawn_app_at(dir, clock).await;
    assert_eq!(all_alerts(&app).await, before);
    // The last alert loaded (on the second page) is reached by a change to what it read.
    let last = before.last().unwrap();
    let owner = last["ownerDetails"]["id"].as_str().unwrap();
    app.put_entity(
        "CREDIT",
        "c-last",
        Some(("ACCOUNT", owner)),
        json!({"balance": "10", "granted": "100"}),
    )
    .await;
    let incident = app
        .wait_for_incident(last["id"].as_str().unwrap(), |i| i["status"] == "OPEN")
        .await;
    assert_eq!(incident["reportData"]["remainingBalance"], "10");
    app.stop().await;
}

/// Attribute numbers with more digits than a binary float holds reach the template as
/// written, through the API, the store and the sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_in_attributes_keep_every_digit() {
    let app = spawn_app().await;
    // Sent as text: a serde_json::Value would round the numbers on this side already.
    let put = |id: &'static str, attributes: &'static str| {
        app.client
            .put(format!("{}/entities/CREDIT/{id}", app.base))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"ownerType": "ACCOUNT", "ownerId": "acc1", "attributes": {attributes}}}"#
            ))
            .send()
    };
    let response = put("c1", r#"{"balance": 1234567890.123456789, "granted": 2e9}"#)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Exactly, the balance is not below the threshold; read through an f64
    // (1234567890.1234567) it would be.
    let alert = app
        .create_alert(
            "credit_low_balance",
            Some("acc1"),
            json!({"threshold": "1234567890.12345676"}),
        )
        .await;
    let id = alert["id"].as_str().unwrap();
    let evaluated = app.wait_for_evaluation(id, None).await;
    assert_eq!(evaluated["lastEvaluation"]["outcome"], "ok");
    assert!(app.incidents_of(id).await.is_empty());

    // Three hundred-millionths less, and it is below.
    let response = put("c2", r#"{"balance": -0.00000003, "granted": 0}"#)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let incident = app.wait_for_incident(id, |i| i["status"] == "OPEN").await;
    assert_eq!(
        incident["reportData"],
        json!({"remainingBalance": "1234567890.123456759", "totalGranted": "2000000000",
               "accountId": "acc1"})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_writers_never_open_two_incidents_for_one_subject() {
    let app = spawn_app().await;
    let alert = app
        .create_alert(
            "credit_low_balance",
            Some("acc1"),
            json!({"threshold": 1000}),
        )
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    app.wait_for_evaluation(&id, None).await;
    let writers: Vec<_> = (0..50)
        .map(|i| {
            let (client, base) = (app.client.clone(), app.base.clone());
            tokio::spawn(async move {
                // The account's three credits sum below the threshold unless one holds
                // 2000: incidents open and resolve while the writes race.
                let balance = if i % 2 == 0 { "10" } else { "2000" };
                let response = client
                    .put(format!("{base}/entities/CREDIT/c{}", i % 3))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"ownerType": "ACCOUNT", "ownerId": "acc1", "attributes": {"balance": balance, "granted": "5000"}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    // Settle: one more write that breaches, a second later, then wait for the evaluation
    // that follows it.
    let before = app.get(&format!("/alerts/{id}/details")).await["lastEvaluation"].clone();
    app.advance(chrono::Duration::seconds(1));
    for c in ["c0", "c1", "c2"] {
        app.put_entity(
            "CREDIT",
            c,
            Some(("ACCOUNT", "acc1")),
            json!({"balance": "1", "granted": "5000"}),
        )
        .await;
    }
    app.wait_for_evaluation(&id, Some(&before)).await;
    app.wait_for_incident(&id, |i| i["status"] == "OPEN").await;
    let incidents = app.incidents_of(&id).await;
    let unclosed = incidents.iter().filter(|i| i["status"] != "CLOSED").count();
    assert_eq!(unclosed, 1, "{incidents:?}");
    assert!(incidents.iter().all(|i| i["subject"] == "acc1"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_of_a_builtin_evaluated_side_by_side_each_judge_their_own_parameters_and_data() {
    let app = spawn_app().await;
    // A built-in's instance serves every alert of the template in a batch. Neighbours must
    // not see each other's parameters (the first two have the same parameter text, the
    // next ones other texts) or data: (account, balance, threshold, breached).
    let cases = [
        ("acc1", "40", 50, true),
        ("acc2", "60", 50, false),
        ("acc3", "10", 20, true),
        ("acc4", "30", 20, false),
        ("acc5", "70", 80, true),
        ("acc6", "90", 80, false),
    ];
    let mut ids = Vec::new();
    for (account, balance, threshold, _) in cases {
        app.put_entity(
            "CREDIT",
            &format!("credit-{account}"),
            Some(("ACCOUNT", account)),
            json!({"balance": balance, "granted": "100"}),
        )
        .await;
        let alert = app
            .create_alert(
                "credit_low_balance",
                Some(account),
                json!({ "threshold": threshold }),
            )
            .await;
        ids.push(alert["id"].as_str().unwrap().to_owned());
    }
    let mut first = Vec::new();
    for id in &ids {
        first.push(app.wait_for_evaluation(id, None).await["lastEvaluation"].clone());
    }
    // One tick makes all six due at once: they are evaluated side by side, in batches.
    app.advance(chrono::Duration::minutes(61));
    for ((id, first), (account, balance, _, breached)) in ids.iter().zip(&first).zip(cases) {
        app.wait_for_evaluation(id, Some(first)).await;
        let incidents = app.incidents_of(id).await;
        if !breached {
            assert!(incidents.is_empty(), "{account}: {incidents:?}");
            continue;
        }
        assert_eq!(incidents.len(), 1, "{account}: {incidents:?}");
        let incident = &incidents[0];
        assert_eq!(incident["status"], "OPEN", "{account}: {incident}");
        assert_ne!(
            incident["lastCheckedAt"], incident["createdAt"],
            "{account}"
        );
        assert_eq!(
            incident["latestReportData"],
            json!({"remainingBalance": balance, "totalGranted": "100", "accountId": account})
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_failures_are_recorded_per_alert_and_never_fatal() {
    let app = spawn_app().await;
    // usage_breach cannot work without an owner: every evaluation fails, readably.
    let broken = app
        .create_alert("usage_breach", None, json!({"threshold": 1}))
        .await;
    let id = broken["id"].as_str().unwrap();
    let evaluated = app.wait_for_evaluation(id, None).await;
    assert_eq!(evaluated["lastEvaluation"]["outcome"], "error");
    assert!(
        evaluated["lastEvaluation"]["message"]
            .as_str()
            .unwrap()
            .contains("ownerDetails.id")
    );
    let problems = app.get(&format!("/alerts/{id}/problems")).await;
    assert_eq!(problems["data"][0]["outcome"], "error");

    // Missing data is recorded as no data, and opens nothing.
    let starved = app
        .create_alert("credit_low_balance", Some("acc9"), json!({"threshold": 1}))
        .await;
    let starved_id = starved["id"].as_str().unwrap();
    let evaluated = app.wait_for_evaluation(starved_id, None).await;
    assert_eq!(evaluated["lastEvaluation"]["outcome"], "noData");
    assert_eq!(
        evaluated["lastEvaluation"]["message"],
        "account acc9 has no CREDIT entities"
    );
    assert!(app.incidents_of(starved_id).await.is_empty());

    // The server still serves and evaluates.
    let fine = app
        .create_alert("credit_low_balance", Some("acc1"), json!({"threshold": 50}))
        .await;
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "1", "granted": "2"}),
    )
    .await;
    app.wait_for_incident(fine["id"].as_str().unwrap(), |i| i["status"] == "OPEN")
        .await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tocsin_evaluation_failures_total"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_the_openapi_document_are_served() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let openapi = app.get("/openapi.json").await;
    for path in [
        "/alert_templates",
        "/alerts",
        "/alerts/{alert_id}",
        "/incidents",
        "/incidents/{incident_id}/status",
        "/entities/{entity_type}/{entity_id}",
        "/events",
        "/plugins",
        "/api_keys",
        "/audit",
        "/incidents/{incident_id}/timeline",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} is missing from /openapi.json"
        );
    }
    assert!(openapi["components"]["securitySchemes"]["bearerAuth"].is_object());
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "tocsin_evaluations_total",
        "tocsin_incidents_opened_total",
        "tocsin_incidents_closed_total",
        "tocsin_evaluation_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_and_events_read_back_and_events_are_idempotent_by_id() {
    let app = spawn_app().await;
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "1"}),
    )
    .await;
    app.put_entity(
        "CREDIT",
        "c1",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "2"}),
    )
    .await;
    let entity = app.get("/entities/CREDIT/c1").await;
    assert_eq!(entity["attributes"]["balance"], "2");
    assert_eq!(
        app.get("/entities/CREDIT?ownerId=acc1").await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let event = json!({"id": "e1", "type": "usage", "ownerType": "ACCOUNT", "ownerId": "acc1", "timestamp": "2026-03-04T09:00:00Z", "value": "5"});
    app.post_events(json!([event])).await;
    let mut again = event.clone();
    again["value"] = json!("7");
    app.post_events(json!([again])).await;
    assert_eq!(app.get("/events/e1").await["value"], "7");
    assert_eq!(
        app.get("/events?ownerId=acc1").await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_next_token() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.put_entity("WALLET", &format!("w{i}"), None, json!({}))
            .await;
    }
    let first = app.get("/entities/WALLET?pageSize=2").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let token = first["nextToken"].as_str().unwrap();
    let second = app
        .get(&format!("/entities/WALLET?pageSize=2&nextToken={token}"))
        .await;
    assert_eq!(second["data"][0]["entityId"], "w2");
    let (status, body) = app
        .call(Method::GET, "/alerts?nextToken=%%%", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_in_the_store_open_one_incident_per_subject() {
    use tocsin::store::Store;
    use tocsin::store::incidents::{Change, Observation};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("race.db").into())
        .await
        .unwrap();
    let report = json!({"remainingBalance": "1"});
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, report) = (store.clone(), report.clone());
            tokio::spawn(async move {
                let observation = Observation {
                    alert_id: "alt_race",
                    alert_version: 1,
                    template_id: "credit_low_balance",
                    valid_until: None,
                    subject: "acc1",
                    breached: true,
                    auto_resolvable: true,
                    report: &report,
                    summary: "low",
                    at: "2026-03-04T10:00:00Z".parse().unwrap(),
                };
                store.apply_finding(&observation).await.unwrap()
            })
        })
        .collect();
    let mut opened = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Change::Opened(_)) {
            opened += 1;
        }
    }
    assert_eq!(opened, 1);
    let unclosed = store.unclosed_incidents_of("alt_race").await.unwrap();
    assert_eq!(unclosed.len(), 1);
    store.close().await;
}

async fn narrowed_evaluations(app: &crate::support::TestApp) -> u64 {
    counter(app, "tocsin_narrowed_evaluations_total").await
}

async fn counter(app: &crate::support::TestApp, name: &str) -> u64 {
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_judged_alone_only_where_the_template_judges_entities_alone() {
    use crate::hooks::{deliver, integration, open_incidents};
    let app = spawn_app().await;

    // cloud_alarm judges each alarm alone: after the integration's first whole
    // evaluation, each delivered alarm is evaluated by itself.
    let (hook, secret, alarms_alert) = integration(&app, "generic", json!({})).await;
    let firing = |key: &str| json!({"key": key, "state": "FIRING", "name": key}).to_string();
    for key in ["a", "b", "c"] {
        let (status, _) = deliver(&app, &hook, &secret, firing(key).into_bytes()).await;
        assert_eq!(status, StatusCode::OK);
    }
    open_incidents(&app, &alarms_alert, 3).await;
    let narrowed = narrowed_evaluations(&app).await;
    assert!(narrowed >= 1, "{narrowed}");
    let resolved = json!({"key": "b", "state": "RESOLVED", "name": "b"}).to_string();
    deliver(&app, &hook, &secret, resolved.into_bytes()).await;
    let open = open_incidents(&app, &alarms_alert, 2).await;
    assert!(open.iter().all(|i| i["subject"] != format!("{hook}:b")));
    assert!(narrowed_evaluations(&app).await > narrowed);

    // On the schedule, too, each alarm is judged alone: three narrowed runs, no whole one
    // (which over thousands of alarms would overrun the sandbox's deadline).
    let before = app.wait_for_evaluation(&alarms_alert, None).await;
    let (all, narrowed) = (
        counter(&app, "tocsin_evaluations_total").await,
        narrowed_evaluations(&app).await,
    );
    app.advance(chrono::Duration::minutes(61));
    app.wait_for_evaluation(&alarms_alert, Some(&before["lastEvaluation"]))
        .await;
    for _ in 0..100 {
        if narrowed_evaluations(&app).await == narrowed + 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(narrowed_evaluations(&app).await, narrowed + 3);
    assert_eq!(counter(&app, "tocsin_evaluations_total").await, all + 3);
    open_incidents(&app, &alarms_alert, 2).await;

    // credit_low_balance sums an account's credits under the account's subject: judging
    // the changed credit alone would be wrong, so the alert is evaluated whole.
    for (credit, balance) in [("c1", "30"), ("c2", "30")] {
        app.put_entity(
            "CREDIT",
            credit,
            Some(("ACCOUNT", "acc1")),
            json!({"balance": balance, "granted": "100"}),
        )
        .await;
    }
    let alert = app
        .create_alert("credit_low_balance", Some("acc1"), json!({"threshold": 50}))
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    app.wait_for_evaluation(&id, None).await;
    assert!(app.incidents_of(&id).await.is_empty(), "60 is not below 50");
    app.put_entity(
        "CREDIT",
        "c2",
        Some(("ACCOUNT", "acc1")),
        json!({"balance": "10", "granted": "100"}),
    )
    .await;
    let incident = app.wait_for_incident(&id, |i| i["status"] == "OPEN").await;
    assert_eq!(incident["subject"], "acc1");
    assert_eq!(incident["reportData"]["remainingBalance"], "40");
    app.stop().await;
}

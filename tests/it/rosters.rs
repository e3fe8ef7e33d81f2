//! `/rosters` and `/routes`: validation, who sees full numbers, reordering, and which
//! route wins.

use crate::support::{ADMIN_KEY, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn roster_body(members: &[(&str, &str)]) -> Value {
    json!({
        "name": "on-call",
        "members": members.iter().map(|(n, p)| json!({"name": n, "phone": p})).collect::<Vec<_>>(),
        "loops": 2,
        "ringTimeoutSeconds": 25,
        "fallbackUrl": null,
    })
}

async fn create(app: &TestApp, members: &[(&str, &str)]) -> String {
    let roster = app
        .send(
            Method::POST,
            "/rosters",
            roster_body(members),
            StatusCode::CREATED,
        )
        .await;
    roster["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rosters_are_refused_naming_the_problem_and_nothing_is_stored() {
    let app = spawn_app().await;
    let good = roster_body(&[("Ada", "+15550000001"), ("Bo", "+15550000002")]);
    let cases = [
        (
            "/members/1/phone",
            json!("555-0100"),
            "members[1].phone \"555-0100\" is not an E.164 number",
        ),
        (
            "/members/1/phone",
            json!("+15550000001"),
            "members[1].phone repeats members[0].phone",
        ),
        ("/members", json!([]), "members must list 1 to 50 operators"),
        ("/loops", json!(11), "loops 11 must be between 1 and 10"),
        ("/loops", json!(0), "loops 0 must be between 1 and 10"),
        (
            "/ringTimeoutSeconds",
            json!(1),
            "ringTimeoutSeconds 1 must be between 5 and 600",
        ),
        (
            "/fallbackUrl",
            json!("ftp://x"),
            "fallbackUrl \"ftp://x\" is not an http or https URL",
        ),
        (
            "/members/0/name",
            json!(" "),
            "members[0].name must not be empty",
        ),
    ];
    for (pointer, value, message) in cases {
        let mut body = good.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        let response = app
            .send(
                Method::POST,
                "/rosters",
                body,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert!(
            response["message"].as_str().unwrap().contains(message),
            "{pointer}: {response}"
        );
    }
    let (status, _) = app
        .call(
            Method::POST,
            "/rosters",
            Some(ADMIN_KEY),
            Some(json!({"name": "x", "members": "Ada"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/rosters").await["data"], json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_full_numbers_others_masked_and_a_put_reorders_members() {
    let app = spawn_app().await;
    let id = create(&app, &[("Ada", "+15550000001"), ("Bo", "+15550000002")]).await;
    let viewer = app
        .send(
            Method::POST,
            "/api_keys",
            json!({"name": "v", "role": "viewer"}),
            StatusCode::CREATED,
        )
        .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, seen) = app
        .call(Method::GET, &format!("/rosters/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["members"][0]["phone"], "…0001");
    assert!(!seen.to_string().contains("+1555"), "{seen}");
    assert_eq!(
        app.get(&format!("/rosters/{id}")).await["members"][0]["phone"],
        "+15550000001"
    );

    let reordered = app
        .send(
            Method::PUT,
            &format!("/rosters/{id}"),
            roster_body(&[("Bo", "+15550000002"), ("Ada", "+15550000001")]),
            StatusCode::OK,
        )
        .await;
    assert_eq!(reordered["members"][0]["name"], "Bo");
    assert_eq!(
        app.get(&format!("/rosters/{id}")).await["members"][1]["name"],
        "Ada"
    );
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/rosters/{id}"),
            Some(&viewer),
            Some(roster_body(&[("Eve", "+15550000009")])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let route = app
        .send(
            Method::POST,
            "/routes",
            json!({"rosterId": id}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(route["isDefault"], true);
    let conflict = app
        .send(
            Method::DELETE,
            &format!("/rosters/{id}"),
            json!(null),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        conflict["message"]
            .as_str()
            .unwrap()
            .contains(route["id"].as_str().unwrap())
    );
    app.send(
        Method::DELETE,
        &format!("/routes/{}", route["id"].as_str().unwrap()),
        json!(null),
        StatusCode::NO_CONTENT,
    )
    .await;
    app.send(
        Method::DELETE,
        &format!("/rosters/{id}"),
        json!(null),
        StatusCode::NO_CONTENT,
    )
    .await;
    app.send(
        Method::GET,
        &format!("/rosters/{id}"),
        json!(null),
        StatusCode::NOT_FOUND,
    )
    .await;

    let audit = app.get("/audit").await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "roster.create",
        "roster.update",
        "roster.delete",
        "route.create",
        "route.delete",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(
        !audit.to_string().contains("+15550000001"),
        "the audit log masks numbers too"
    );
    app.stop().await;
}

/// The roster an incident's escalation started with.
async fn routed_to(app: &TestApp, alert: &str) -> String {
    let incident = app.wait_for_incident(alert, |_| true).await;
    let timeline = app
        .get(&format!(
            "/incidents/{}/timeline",
            incident["id"].as_str().unwrap()
        ))
        .await;
    timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        // These servers have no Twilio account: the timeline names the roster that would
        // have rung.
        .find(|e| e["kind"] == "escalation-started" || e["kind"] == "escalation-unavailable")
        .and_then(|e| e["detail"]["rosterId"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_most_specific_route_wins() {
    let app = spawn_app().await;
    let fallback = create(&app, &[("Ada", "+15550000001")]).await;
    let by_template = create(&app, &[("Bo", "+15550000002")]).await;
    let by_owner = create(&app, &[("Cy", "+15550000003")]).await;
    let by_alert = create(&app, &[("Di", "+15550000004")]).await;

    let alert = |owner: &'static str| {
        let app = &app;
        async move {
            let a = app
                .create_alert("cloud_alarm", Some(owner), json!({}))
                .await;
            let id = a["id"].as_str().unwrap().to_owned();
            app.wait_for_evaluation(&id, None).await;
            id
        }
    };
    let pinned = alert("int1").await;
    let same_owner = alert("int1").await;
    let other_owner = alert("int2").await;
    for (roster, criteria) in [
        (&fallback, json!({})),
        (&by_template, json!({"alertTemplateId": "cloud_alarm"})),
        (&by_owner, json!({"ownerId": "int1"})),
        (&by_alert, json!({"alertId": pinned})),
    ] {
        app.send(
            Method::POST,
            "/routes",
            json!({"rosterId": roster, "match": criteria}),
            StatusCode::CREATED,
        )
        .await;
    }
    let duplicate = app
        .send(
            Method::POST,
            "/routes",
            json!({"rosterId": by_owner, "match": {}}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        duplicate["message"]
            .as_str()
            .unwrap()
            .contains("already matches"),
        "{duplicate}"
    );
    for (body, message) in [
        (
            json!({"rosterId": "ros_nope"}),
            "rosterId \"ros_nope\": no such roster",
        ),
        (
            json!({"rosterId": fallback, "match": {"alertId": "alert_nope"}}),
            "match.alertId \"alert_nope\": no such alert",
        ),
        (
            json!({"rosterId": fallback, "match": {"alertTemplateId": "nope"}}),
            "match.alertTemplateId \"nope\": no such template",
        ),
    ] {
        let response = app
            .send(
                Method::POST,
                "/routes",
                body,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert!(
            response["message"].as_str().unwrap().contains(message),
            "{response}"
        );
    }

    for (owner, id) in [("int1", "a1"), ("int2", "a2")] {
        app.put_entity(
            "ALARM",
            id,
            Some(("INTEGRATION", owner)),
            json!({"source": "generic", "name": "Down", "resource": "web", "severity": "critical",
                   "state": "FIRING", "summary": "web is down", "startedAt": "2026-03-04T09:58:00Z"}),
        )
        .await;
    }
    assert_eq!(routed_to(&app, &pinned).await, by_alert);
    assert_eq!(routed_to(&app, &same_owner).await, by_owner);
    assert_eq!(routed_to(&app, &other_owner).await, by_template);
    app.stop().await;
}

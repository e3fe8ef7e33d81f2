//! Silences, end to end with the injected clock and the Twilio simulator: the API and its
//! refusals; a silenced incident called only once the silence ends, and one that resolved
//! meanwhile never; a ringing call ended by a silence and overlapping silences; an
//! integration's maintenance and Alertmanager's labels; a weekly window across DST.

use crate::escalation::{
    Phones, alarm, alarm_alert, escalating_app, incident_where, kinds, route_all_to, timeline,
    wait_until,
};
use crate::hooks::{deliver, fixture, integration};
use crate::oncall::key;
use crate::support::{ADMIN_KEY, TestApp, spawn_app};
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tocsin::store::seam::CallLoops;

const A: &str = "+15550000001";

fn ends_in(app: &TestApp, minutes: i64) -> String {
    (app.clock.now() + Duration::minutes(minutes)).to_rfc3339()
}

/// Makes a silence of `matchers` for `minutes`; returns its id.
async fn silence(app: &TestApp, matchers: Value, minutes: i64) -> String {
    let body = json!({"matchers": matchers, "endsAt": ends_in(app, minutes), "comment": "database reboot"});
    app.send(Method::POST, "/silences", body, StatusCode::CREATED)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn roster_of_one(app: &TestApp, extra: Value) -> String {
    let mut body = json!({"name": "primary", "members": [{"name": "Ada", "phone": A}], "loops": 1});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let roster = app
        .send(Method::POST, "/rosters", body, StatusCode::CREATED)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    route_all_to(app, &roster).await;
    roster
}

async fn silenced_incidents(app: &TestApp) -> Vec<Value> {
    app.get("/incidents?silenced=true").await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Moves the test's clock to `at`.
fn move_to(app: &TestApp, at: &str) {
    let at: DateTime<Utc> = at.parse().unwrap();
    let by = at - app.clock.now();
    assert!(by >= Duration::zero(), "the clock only moves forward");
    app.advance(by);
}

/// Lets a stray call or state change show itself before counting.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_are_made_moved_replaced_and_expired_and_bad_ones_refused_with_the_reason() {
    let app = spawn_app().await;
    let good = json!([{"name": "severity", "op": "=", "value": "critical"}]);
    let refusals = [
        (
            json!([{"name": "severity", "op": "<", "value": "x"}]),
            ends_in(&app, 60),
            "matchers[0]: op \"<\" is not one of",
        ),
        (
            json!([{"name": "resource", "op": "=~", "value": "db-("}]),
            ends_in(&app, 60),
            "is not a regex (RE2 syntax)",
        ),
        (
            json!([{"name": "region", "op": "=~", "value": ".*"}, {"name": "team", "op": "!=", "value": "x"}]),
            ends_in(&app, 60),
            "at least one matcher must not match the empty string",
        ),
        (json!([]), ends_in(&app, 60), "at least one matcher"),
        (
            json!([{"name": "", "op": "=", "value": "x"}]),
            ends_in(&app, 60),
            "matchers[0]: name must not be empty",
        ),
        (
            good.clone(),
            ends_in(&app, 31 * 24 * 60),
            "more than 30 days ahead",
        ),
        (good.clone(), ends_in(&app, -5), "must be after startsAt"),
    ];
    for (matchers, ends_at, why) in refusals {
        let body = json!({"matchers": matchers, "endsAt": ends_at, "comment": "x"});
        let (status, answer) = app
            .call(Method::POST, "/silences", Some(ADMIN_KEY), Some(body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(why), "{message:?} should say {why:?}");
    }
    let body = json!({"matchers": good, "endsAt": ends_in(&app, 60), "comment": " "});
    let (status, answer) = app
        .call(Method::POST, "/silences", Some(ADMIN_KEY), Some(body))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["message"].as_str().unwrap().contains("comment"));

    // Viewers read, editors write; the maker is the key's name.
    let viewer = key(&app, "viewer").await;
    let editor = key(&app, "editor").await;
    let body = |minutes: i64| json!({"matchers": good, "endsAt": ends_in(&app, minutes), "comment": "reboot"});
    let (status, _) = app
        .call(Method::POST, "/silences", Some(&viewer), Some(body(60)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, made) = app
        .call(Method::POST, "/silences", Some(&editor), Some(body(60)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["createdBy"], "editor key");
    assert_eq!(made["state"], "active");
    let id = made["id"].as_str().unwrap().to_owned();
    let later = json!({"matchers": good, "startsAt": ends_in(&app, 30), "endsAt": ends_in(&app, 90), "comment": "later"});
    let pending = app
        .send(Method::POST, "/silences", later, StatusCode::CREATED)
        .await;
    assert_eq!(pending["state"], "pending");
    let ids = |page: Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(app.get("/silences?state=active").await), [id.as_str()]);
    assert_eq!(
        ids(app.get("/silences?state=pending").await),
        [pending["id"].as_str().unwrap()]
    );
    let (status, seen) = app
        .call(Method::GET, &format!("/silences/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["matchers"], good);

    // Moving an active silence's end keeps it; any other change replaces it.
    let moved = app
        .send(
            Method::PUT,
            &format!("/silences/{id}"),
            body(120),
            StatusCode::OK,
        )
        .await;
    assert_eq!(moved["id"], json!(id));
    let ends_at: DateTime<Utc> = moved["endsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends_at, app.clock.now() + Duration::minutes(120));
    let changed = json!({"matchers": [{"name": "severity", "op": "=~", "value": "critical|error"}],
        "endsAt": ends_in(&app, 120), "comment": "reboot"});
    let replaced = app
        .send(
            Method::PUT,
            &format!("/silences/{id}"),
            changed,
            StatusCode::CREATED,
        )
        .await;
    let new_id = replaced["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    assert_eq!(
        app.get(&format!("/silences/{id}")).await["state"],
        "expired"
    );
    let (status, answer) = app
        .call(
            Method::PUT,
            &format!("/silences/{id}"),
            Some(ADMIN_KEY),
            Some(body(60)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");

    // DELETE expires it now, once.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/silences/{new_id}"),
            Some(&editor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/silences/{new_id}")).await["state"],
        "expired"
    );
    let (status, answer) = app
        .call(
            Method::DELETE,
            &format!("/silences/{new_id}"),
            Some(&editor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("already expired")
    );

    // Every change is audited.
    let audit = app.get("/audit").await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "silence.create",
        "silence.update",
        "silence.replace",
        "silence.expire",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    // Expired silences are kept five days.
    app.advance(Duration::days(4));
    let expired = app.get("/silences?state=expired").await;
    assert_eq!(expired["data"].as_array().unwrap().len(), 3, "{expired}");
    app.advance(Duration::days(2));
    assert!(ids(app.get("/silences").await).is_empty());
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/silences/{id}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_incident_is_called_when_the_silence_ends_and_one_resolved_meanwhile_never_is() {
    let phones = Phones::start(&[(A, "accept")]).await;
    let app = escalating_app(&phones).await;
    roster_of_one(&app, json!({})).await;
    let alert = alarm_alert(&app).await;
    let quiet = silence(
        &app,
        json!([{"name": "name", "op": "=", "value": "DiskFull"}]),
        60,
    )
    .await;

    alarm(&app, "a1", "FIRING").await;
    alarm(&app, "a2", "FIRING").await;
    wait_until("both incidents silenced", || async {
        (silenced_incidents(&app).await.len() == 2).then_some(())
    })
    .await;
    alarm(&app, "a2", "RESOLVED").await;
    let resolved = incident_where(&app, &alert, |i| i["status"] == "CLOSED").await;
    settle().await;
    assert!(
        phones.called().await.is_empty(),
        "nobody is called under a silence"
    );
    let held = silenced_incidents(&app).await;
    assert_eq!(held.len(), 1, "{held:?}");
    let open = held[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&format!("/incidents/{open}")).await["status"],
        "OPEN",
        "incidents go on as ever"
    );

    // Past endsAt: the open one is called; the resolved one never rings.
    app.advance(Duration::minutes(61));
    let acknowledged = incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    assert_eq!(acknowledged["id"], json!(open));
    settle().await;
    assert_eq!(phones.called().await, [A]);
    assert!(silenced_incidents(&app).await.is_empty());

    let entries = timeline(&app, &open).await;
    let kinds = kinds(&entries);
    let at = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
    assert!(
        at("silenced") < at("unsilenced") && at("unsilenced") < at("call-started"),
        "{kinds:?}"
    );
    let silenced = entries.iter().find(|e| e["kind"] == "silenced").unwrap();
    assert_eq!(silenced["detail"]["silences"], json!([quiet]));
    let entries = timeline(&app, resolved["id"].as_str().unwrap()).await;
    let kinds = crate::escalation::kinds(&entries);
    assert!(kinds.contains(&"silenced"), "{kinds:?}");
    assert!(kinds.contains(&"escalation-stopped"), "{kinds:?}");
    assert!(!kinds.contains(&"unsilenced"), "{kinds:?}");
    assert!(!kinds.contains(&"call-started"), "{kinds:?}");
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_ends_a_ringing_call_and_overlapping_silences_hold_until_the_last_ends() {
    let phones = Phones::start(&[(A, "no-answer")]).await;
    let app = escalating_app(&phones).await;
    roster_of_one(&app, json!({"ringTimeoutSeconds": 600})).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;
    let incident = incident_where(&app, &alert, |_| true).await;
    let incident = incident["id"].as_str().unwrap().to_owned();
    wait_until("the phone ringing", || async {
        let calls = phones.calls().await;
        (calls.len() == 1 && calls[0]["status"] == "ringing").then_some(())
    })
    .await;

    let first = silence(
        &app,
        json!([{"name": "name", "op": "=", "value": "DiskFull"}]),
        60,
    )
    .await;
    wait_until("the ringing call ended", || async {
        let calls = phones.calls().await;
        (calls[0]["status"] != "ringing").then_some(())
    })
    .await;
    let second = silence(
        &app,
        json!([{"name": "resource", "op": "=~", "value": "db-a[0-9]+"}]),
        120,
    )
    .await;
    wait_until("the end on the timeline", || async {
        let entries = timeline(&app, &incident).await;
        kinds(&entries).contains(&"call-ended").then_some(())
    })
    .await;
    phones
        .http
        .put(format!("{}/sim/numbers/{A}", phones.account.api_base))
        .body("accept")
        .send()
        .await
        .unwrap();

    // The first ends; the second still holds.
    app.advance(Duration::minutes(90));
    settle().await;
    assert_eq!(phones.calls().await.len(), 1);
    assert_eq!(
        app.get(&format!("/incidents/{incident}")).await["status"],
        "OPEN"
    );
    // The last ends: the same member is called again, and accepts.
    app.advance(Duration::minutes(31));
    let acknowledged = incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    assert_eq!(acknowledged["acknowledgedBy"], "Ada");
    settle().await;
    assert_eq!(phones.called().await, [A, A]);

    let entries = timeline(&app, &incident).await;
    let outcomes: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "call-outcome")
        .map(|e| e["detail"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["silenced", "accepted"]);
    let kinds = kinds(&entries);
    assert_eq!(kinds.iter().filter(|k| **k == "unsilenced").count(), 1);
    let silenced = entries.iter().find(|e| e["kind"] == "silenced").unwrap();
    assert_eq!(silenced["detail"]["silences"], json!([first]));
    assert!(!silenced["detail"]["silences"].to_string().contains(&second));
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_silences_one_integrations_alarms_and_alertmanager_labels_match() {
    let phones = Phones::start(&[(A, "accept")]).await;
    let app = escalating_app(&phones).await;
    roster_of_one(&app, json!({})).await;
    let (monitor, monitor_secret, monitor_alert) =
        integration(&app, "alertmanager", json!({})).await;
    let (other, other_secret, other_alert) = integration(&app, "generic", json!({})).await;

    let (status, answer) = app
        .call(
            Method::POST,
            &format!("/integrations/{monitor}/maintenance"),
            Some(ADMIN_KEY),
            Some(json!({"minutes": 1441})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let maintenance = app
        .send(
            Method::POST,
            &format!("/integrations/{monitor}/maintenance"),
            json!({"minutes": 60}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        maintenance["matchers"],
        json!([{"name": "integrationId", "op": "=", "value": monitor}])
    );
    let listed = app.get("/silences?state=active").await;
    assert_eq!(listed["data"][0]["id"], maintenance["id"]);

    // Alertmanager's three alerts open three incidents, all held; the other
    // integration's alarm is called.
    let (status, _) = deliver(
        &app,
        &monitor,
        &monitor_secret,
        fixture("alertmanager_v4-firing.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let alarm = json!({"key": "web-down", "state": "FIRING", "name": "Down", "resource": "web"});
    let (status, _) = deliver(&app, &other, &other_secret, alarm.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    incident_where(&app, &other_alert, |i| i["status"] == "ACKNOWLEDGED").await;
    wait_until("three held incidents", || async {
        (silenced_incidents(&app).await.len() == 3).then_some(())
    })
    .await;
    settle().await;
    assert_eq!(phones.called().await, [A]);

    // A silence on the platform's own labels, regex anchored: nodes 1 and 2, not 3.
    silence(
        &app,
        json!([{"name": "serviceRoleName", "op": "=", "value": "node"},
               {"name": "instance", "op": "=~", "value": "k8s-node[12]:.*"}]),
        120,
    )
    .await;
    let id = maintenance["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/silences/{id}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    incident_where(&app, &monitor_alert, |i| i["status"] == "ACKNOWLEDGED").await;
    settle().await;
    assert_eq!(phones.called().await, [A, A]);
    assert_eq!(silenced_incidents(&app).await.len(), 2);
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sunday_window_in_berlin_holds_exactly_its_local_hours_across_the_dst_changes() {
    let phones = Phones::start(&[(A, "accept")]).await;
    let app = escalating_app(&phones).await;
    roster_of_one(&app, json!({})).await;
    let alert = alarm_alert(&app).await;
    let body = |days: Value, zone: &str| {
        json!({"name": "database reboot", "matchers": [{"name": "alertTemplateId", "op": "=", "value": "cloud_alarm"}],
               "timeZone": zone, "days": days, "start": "02:00", "end": "04:00"})
    };
    for (days, zone, why) in [
        (
            json!(["SUNDAY"]),
            "Europe/Berlin",
            "days[0] \"SUNDAY\" is not one of",
        ),
        (
            json!([]),
            "Europe/Berlin",
            "days must name at least one day",
        ),
        (json!(["SUN"]), "Europe/Bonn", "is not an IANA time zone"),
    ] {
        let (status, answer) = app
            .call(
                Method::POST,
                "/maintenance_windows",
                Some(ADMIN_KEY),
                Some(body(days, zone)),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(why),
            "{answer}"
        );
    }
    let window = app
        .send(
            Method::POST,
            "/maintenance_windows",
            body(json!(["SUN"]), "Europe/Berlin"),
            StatusCode::CREATED,
        )
        .await;
    let path = format!("/maintenance_windows/{}", window["id"].as_str().unwrap());

    // (instant, open, next change): 02:00-04:00 local, whatever the offset. On 2026-03-29
    // 02:00 does not exist in Berlin (clocks go from 02:00 to 03:00 CEST): the window opens
    // at the first instant after the gap and lasts one hour; on 2026-10-25 02:00 happens
    // twice: it opens at the first and lasts three.
    let table = [
        ("2026-03-22T00:59:00Z", false, "2026-03-22T01:00:00Z"),
        ("2026-03-22T01:00:00Z", true, "2026-03-22T03:00:00Z"),
        ("2026-03-22T03:00:00Z", false, "2026-03-29T01:00:00Z"),
        ("2026-03-29T00:59:00Z", false, "2026-03-29T01:00:00Z"),
        ("2026-03-29T01:00:00Z", true, "2026-03-29T02:00:00Z"),
    ];
    for (at, open, next) in table {
        move_to(&app, at);
        let seen = app.get(&path).await;
        assert_eq!(seen["open"], json!(open), "{at}: {seen}");
        assert_eq!(seen["nextChangeAt"], json!(next), "{at}: {seen}");
    }
    // Inside the short window, an incident waits; at 04:00 CEST it is called.
    move_to(&app, "2026-03-29T01:30:00Z");
    alarm(&app, "a1", "FIRING").await;
    wait_until("the incident held", || async {
        (silenced_incidents(&app).await.len() == 1).then_some(())
    })
    .await;
    let held = &silenced_incidents(&app).await[0];
    let entries = timeline(&app, held["id"].as_str().unwrap()).await;
    let silenced = entries.iter().find(|e| e["kind"] == "silenced").unwrap();
    assert_eq!(
        silenced["detail"]["maintenanceWindows"],
        json!([window["id"]])
    );
    settle().await;
    assert!(phones.called().await.is_empty());
    move_to(&app, "2026-03-29T02:00:00Z");
    incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    assert_eq!(phones.called().await, [A]);

    for (at, open, next) in [
        ("2026-10-24T23:59:00Z", false, "2026-10-25T00:00:00Z"),
        ("2026-10-25T00:00:00Z", true, "2026-10-25T03:00:00Z"),
        ("2026-10-25T02:59:00Z", true, "2026-10-25T03:00:00Z"),
        ("2026-10-25T03:00:00Z", false, "2026-11-01T01:00:00Z"),
    ] {
        move_to(&app, at);
        let seen = app.get(&path).await;
        assert_eq!(seen["open"], json!(open), "{at}: {seen}");
        assert_eq!(seen["nextChangeAt"], json!(next), "{at}: {seen}");
    }
    app.stop().await;
    phones.server.stop().await;
}

/// A running loop as the version before silences wrote it: an incident, its loop at step 1
/// (Grace), Ada's missed call and the text it sent her. Times as each database keeps them.
fn older_rows(at: &str) -> [String; 4] {
    let roster = r#"{"id":"ros_1","name":"r","members":[{"name":"Ada","phone":"+15550000001"},{"name":"Grace","phone":"+15550000002"}],"loops":1,"ringTimeoutSeconds":30,"fallbackUrl":null,"createdAt":"2026-03-04T10:00:00Z","updatedAt":"2026-03-04T10:00:00Z"}"#;
    let report = r#"{"source":"generic","name":"DiskFull","resource":"db-1","severity":"CRITICAL","state":"FIRING"}"#;
    [
        format!(
            "INSERT INTO incidents (id, alert_id, alert_version, template_id, subject, status, summary, report_open, report_latest, created_at, updated_at, last_checked_at)
             VALUES ('inc_1', 'alt_1', 1, 'cloud_alarm', 'int1:a1', 'OPEN', 'disk full', '{report}', '{report}', {at}, {at}, {at})"
        ),
        format!(
            "INSERT INTO escalations (incident_id, roster_id, roster, state, step, ready_at, created_at, updated_at)
             VALUES ('inc_1', 'ros_1', '{roster}', 'ACTIVE', 1, 1, {at}, {at})"
        ),
        format!(
            "INSERT INTO calls (id, incident_id, step, loop_index, position, member, phone, sid, status, outcome, created_at, updated_at)
             VALUES ('call_1', 'inc_1', 0, 0, 0, 'Ada', '+15550000001', 'CA1', 'no-answer', 'no-answer', {at}, {at})"
        ),
        format!(
            "INSERT INTO texts (id, incident_id, call_id, member, phone, body, status, sid, created_at, updated_at)
             VALUES ('txt_1', 'inc_1', 'call_1', 'Ada', '+15550000001', 'disk full Reply 1 to accept', 'sent', 'SM1', {at}, {at})"
        ),
    ]
}

/// A database with a running loop, migrated only up to before `before` (the silences
/// migration), then opened by this version: the loop, its call and its text are all there,
/// the loop carries its incident's labels, a silence holds it, and the text's reply works.
async fn a_running_loop_survives_the_silences_migration(
    database: tocsin::store::Database,
    dir: &str,
    before: i64,
) {
    let (_copies, older) = crate::oncall::migrations_before(dir, before).await;
    match &database {
        tocsin::store::Database::Sqlite(path) => {
            let pool = sqlx::SqlitePool::connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
            older.run(&pool).await.unwrap();
            let at = chrono::DateTime::parse_from_rfc3339("2026-03-04T10:00:00Z")
                .unwrap()
                .timestamp_micros()
                .to_string();
            for row in older_rows(&at) {
                sqlx::query(&row).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        tocsin::store::Database::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            older.run(&pool).await.unwrap();
            for row in older_rows("'2026-03-04T10:00:00Z'") {
                sqlx::query(&row).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
    let store = tocsin::store::Store::open(&database).await.unwrap();
    let at: DateTime<Utc> = "2026-03-04T10:01:00Z".parse().unwrap();
    let next = store
        .next_call()
        .await
        .unwrap()
        .expect("the loop still waits");
    assert_eq!(
        (next.incident_id.as_str(), next.member().name.as_str()),
        ("inc_1", "Grace")
    );
    store
        .insert_silence(&tocsin::store::silences::SilenceRecord {
            id: "sil_1".into(),
            matchers: vec![tocsin::store::silences::MatcherSpec {
                name: "resource".into(),
                op: "=".into(),
                value: "db-1".into(),
            }],
            starts_at: at,
            ends_at: at + Duration::hours(1),
            comment: "reboot".into(),
            created_by: "ops".into(),
            created_at: at,
            updated_at: at,
        })
        .await
        .unwrap();
    assert_eq!(store.silence_loops(at).await.unwrap().silenced, 1);
    assert!(store.next_call().await.unwrap().is_none());
    let accepted = store
        .text_reply("+15550000001", "1", "SM2", at)
        .await
        .unwrap()
        .expect("Ada's text is still hers to answer");
    assert_eq!(accepted.incident_id, "inc_1");
    // Foreign keys still hold.
    let nowhere = tocsin::store::escalation::Route {
        id: "rte_1".into(),
        roster_id: "ros_nowhere".into(),
        alert_id: None,
        template_id: None,
        owner_id: None,
        created_at: at,
    };
    assert!(store.insert_route(&nowhere).await.is_err());
    store.close().await;
}

#[tokio::test]
async fn a_running_loop_survives_the_silences_migration_on_both_databases() {
    let dir = tempfile::tempdir().unwrap();
    a_running_loop_survives_the_silences_migration(dir.path().join("old.db").into(), "sqlite", 9)
        .await;
    if let Some(db) = crate::pg::TestDatabase::create("silences_migration").await {
        a_running_loop_survives_the_silences_migration(
            tocsin::store::Database::parse(&db.url),
            "postgres",
            7,
        )
        .await;
    }
}

//! Who is on call, end to end: operators, rotations, schedules and overrides through the
//! API; a rotation handing over under the injected clock and the next loop calling the
//! new holder through the Twilio simulator; refusals naming the field; roles and masking;
//! roster members of an older database becoming operators.

use crate::escalation::{
    Phones, alarm, alarm_alert, escalating_app, incident_where, kinds, route_all_to, timeline,
};
use crate::support::{ADMIN_KEY, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const A: &str = "+15550000001";
const B: &str = "+15550000002";
const C: &str = "+15550000003";

async fn create(app: &TestApp, path: &str, body: Value) -> String {
    let created = app
        .send(Method::POST, path, body, StatusCode::CREATED)
        .await;
    created["id"].as_str().unwrap().to_owned()
}

async fn operator(app: &TestApp, name: &str, phone: &str) -> String {
    create(app, "/operators", json!({"name": name, "phone": phone})).await
}

/// A new key of `role`, named `<role> key`; its secret.
pub(crate) async fn key(app: &TestApp, role: &str) -> String {
    app.send(
        Method::POST,
        "/api_keys",
        json!({"name": format!("{role} key"), "role": role}),
        StatusCode::CREATED,
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_rotation_hands_over_and_the_next_loop_calls_the_new_holder() {
    let phones = Phones::start(&[(A, "accept"), (B, "accept")]).await;
    let app = escalating_app(&phones).await;
    let ada = operator(&app, "Ada", A).await;
    let bo = operator(&app, "Bo", B).await;
    // Mondays 09:00 in London; the clock reads Wednesday 2026-03-04 10:00Z: Ada's week.
    let rotation = create(
        &app,
        "/rotations",
        json!({"name": "primary", "timeZone": "Europe/London", "type": "weekly", "shiftLength": 1,
               "handoffAt": "2026-03-02T09:00", "participants": [ada, bo]}),
    )
    .await;
    let seen = app.get(&format!("/rotations/{rotation}")).await;
    assert_eq!(seen["holder"], json!(ada));
    assert_eq!(seen["nextHandoffAt"], "2026-03-09T09:00:00Z");
    let roster = create(
        &app,
        "/rosters",
        json!({"name": "primary on-call", "members": [{"rotationId": rotation}], "loops": 1}),
    )
    .await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;

    alarm(&app, "a1", "FIRING").await;
    let first = incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    assert_eq!(first["acknowledgedBy"], "Ada");
    let entries = timeline(&app, first["id"].as_str().unwrap()).await;
    let resolved = entries
        .iter()
        .find(|e| e["kind"] == "roster-resolved")
        .expect("roster-resolved on the timeline");
    assert_eq!(resolved["detail"]["members"][0]["operatorId"], json!(ada));
    assert_eq!(resolved["detail"]["members"][0]["name"], "Ada");

    // A week on, past Monday's 09:00 handoff: Bo holds it, and the next loop calls Bo.
    app.advance(chrono::Duration::days(7));
    assert_eq!(
        app.get(&format!("/rotations/{rotation}")).await["holder"],
        json!(bo)
    );
    alarm(&app, "a2", "FIRING").await;
    let second = incident_where(&app, &alert, |i| {
        i["status"] == "ACKNOWLEDGED" && i["id"] != first["id"]
    })
    .await;
    assert_eq!(second["acknowledgedBy"], "Bo");
    assert_eq!(phones.called().await, [A, B]);
    let entries = timeline(&app, second["id"].as_str().unwrap()).await;
    let kinds = kinds(&entries);
    let resolved = kinds.iter().position(|k| *k == "roster-resolved");
    let started = kinds.iter().position(|k| *k == "escalation-started");
    assert!(resolved.is_some() && resolved < started, "{kinds:?}");
    let resolved = &entries[resolved.unwrap()];
    assert_eq!(resolved["detail"]["members"][0]["name"], "Bo");
    assert_eq!(
        resolved["detail"]["entries"][0]["rotationId"],
        json!(rotation)
    );
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_answer_who_is_on_call_with_overrides_and_rosters_resolve_without_calling() {
    let app = spawn_app().await;
    let ada = operator(&app, "Ada", A).await;
    let bo = operator(&app, "Bo", B).await;
    let cy = operator(&app, "Cy", C).await;
    // Daily at 09:00 New York, Ada then Bo; weekdays 09–17 Cy too.
    let rotation = create(
        &app,
        "/rotations",
        json!({"name": "daily", "timeZone": "America/New_York", "type": "daily", "shiftLength": 1,
               "handoffAt": "2026-03-02T09:00", "participants": [ada, bo]}),
    )
    .await;
    let every_day = json!(["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]);
    let schedule = create(
        &app,
        "/schedules",
        json!({"name": "db", "timeZone": "America/New_York", "rules": [
            {"rotationId": rotation, "days": every_day, "start": "00:00", "end": "00:00"},
            {"operatorId": cy, "days": ["MON", "TUE", "WED", "THU", "FRI"], "start": "09:00", "end": "17:00"},
        ]}),
    )
    .await;
    let on_call = |body: &Value| -> Vec<String> {
        body["operators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // Wed 2026-03-04 10:00Z is 05:00 EST: Tuesday's shift (Bo), before Cy's hours.
    let now = app.get(&format!("/schedules/{schedule}/on-call")).await;
    assert_eq!(on_call(&now), ["Bo"]);
    // 15:00Z is 10:00 EST: Wednesday's shift (Ada), and Cy.
    let later = app
        .get(&format!(
            "/schedules/{schedule}/on-call?at=2026-03-04T15:00:00Z"
        ))
        .await;
    assert_eq!(on_call(&later), ["Ada", "Cy"]);

    // Bo covers for Cy from 16:00Z to 18:00Z.
    let over = json!({"add": bo, "remove": cy, "start": "2026-03-04T16:00:00Z", "end": "2026-03-04T18:00:00Z"});
    create(&app, &format!("/schedules/{schedule}/overrides"), over).await;
    let replaced = app
        .get(&format!(
            "/schedules/{schedule}/on-call?at=2026-03-04T16:30:00Z"
        ))
        .await;
    assert_eq!(on_call(&replaced), ["Ada", "Bo"]);
    let clash = app
        .send(
            Method::POST,
            &format!("/schedules/{schedule}/overrides"),
            json!({"remove": cy, "start": "2026-03-04T17:00:00Z", "end": "2026-03-04T19:00:00Z"}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        clash["message"].as_str().unwrap().contains("override ovr_"),
        "{clash}"
    );

    // Shifts over Wednesday, New York time (EST, UTC-5).
    let shifts = app
        .get(&format!(
            "/schedules/{schedule}/shifts?from=2026-03-04T05:00:00Z&to=2026-03-05T05:00:00Z"
        ))
        .await;
    let spans: Vec<(String, String, String)> = shifts["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["start"].as_str().unwrap().to_owned(),
                s["end"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let span = |who: &str, from: &str, to: &str| (who.to_owned(), from.to_owned(), to.to_owned());
    assert_eq!(
        spans,
        [
            span("Bo", "2026-03-04T05:00:00Z", "2026-03-04T14:00:00Z"),
            span("Ada", "2026-03-04T14:00:00Z", "2026-03-05T05:00:00Z"),
            span("Cy", "2026-03-04T14:00:00Z", "2026-03-04T16:00:00Z"),
            span("Bo", "2026-03-04T16:00:00Z", "2026-03-04T18:00:00Z"),
            span("Cy", "2026-03-04T18:00:00Z", "2026-03-04T22:00:00Z"),
        ]
    );
    let too_long = app
        .call(
            Method::GET,
            &format!(
                "/schedules/{schedule}/shifts?from=2026-03-01T00:00:00Z&to=2026-04-02T00:00:00Z"
            ),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(too_long.0, StatusCode::BAD_REQUEST, "{}", too_long.1);

    // The dry run: a roster of the schedule, then Cy named outright (already on call at
    // 15:00Z: called once), then someone named by number.
    let roster = create(
        &app,
        "/rosters",
        json!({"name": "db on-call", "members": [{"scheduleId": schedule}, {"operatorId": cy}, {"name": "Dee", "phone": "+15550000004"}]}),
    )
    .await;
    let dry = app
        .get(&format!(
            "/rosters/{roster}/resolve?at=2026-03-04T15:00:00Z"
        ))
        .await;
    let names: Vec<&str> = dry["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada", "Cy", "Dee"]);
    assert_eq!(dry["members"][0]["phone"], A, "admins see numbers");
    // Viewers see masked numbers everywhere.
    let viewer = key(&app, "viewer").await;
    for path in [
        format!("/rosters/{roster}/resolve?at=2026-03-04T15:00:00Z"),
        format!("/schedules/{schedule}/on-call?at=2026-03-04T15:00:00Z"),
        format!("/operators/{ada}"),
        "/operators".to_owned(),
    ] {
        let (status, body) = app.call(Method::GET, &path, Some(&viewer), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(!body.to_string().contains("+1555"), "{path}: {body}");
        assert!(body.to_string().contains("…000"), "{path}: {body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_on_call_writes_are_refused_naming_the_field_and_only_admins_write() {
    let app = spawn_app().await;
    let ada = operator(&app, "Ada", A).await;
    let rotation = create(
        &app,
        "/rotations",
        json!({"name": "r", "timeZone": "UTC", "type": "daily", "shiftLength": 1,
               "handoffAt": "2026-03-02T09:00", "participants": [ada]}),
    )
    .await;
    let schedule = create(
        &app,
        "/schedules",
        json!({"name": "s", "timeZone": "UTC", "rules": [{"operatorId": ada, "days": ["MON"], "start": "09:00", "end": "17:00"}]}),
    )
    .await;
    let operator_body =
        json!({"name": "Bo", "phone": B, "smsPhone": B, "timeZone": "Europe/Paris"});
    let rotation_body = json!({"name": "r", "timeZone": "UTC", "type": "daily", "shiftLength": 1,
        "handoffAt": "2026-03-02T09:00", "participants": [ada]});
    let schedule_body = json!({"name": "s", "timeZone": "UTC",
        "rules": [{"operatorId": ada, "days": ["MON"], "start": "09:00", "end": "17:00"}]});
    let override_body =
        json!({"add": ada, "start": "2026-03-05T00:00:00Z", "end": "2026-03-06T00:00:00Z"});
    let roster_body = json!({"name": "x", "members": [{"operatorId": ada}]});
    let handoff_body = json!({"to": ada});
    let overrides = format!("/schedules/{schedule}/overrides");
    let handoff = format!("/rotations/{rotation}/handoff");
    // (path, valid body, pointer, bad value, status, message)
    let cases: Vec<(&str, &Value, &str, Value, StatusCode, &str)> = vec![
        (
            "/operators",
            &operator_body,
            "/phone",
            json!("555"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "phone \"555\" is not an E.164 number",
        ),
        (
            "/operators",
            &operator_body,
            "/smsPhone",
            json!("x"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "smsPhone",
        ),
        (
            "/operators",
            &operator_body,
            "/timeZone",
            json!("Mars/Olympus"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "timeZone \"Mars/Olympus\" is not an IANA time zone",
        ),
        (
            "/operators",
            &operator_body,
            "/name",
            json!(""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name must not be empty",
        ),
        (
            "/operators",
            &operator_body,
            "/phone",
            json!(A),
            StatusCode::CONFLICT,
            "already another operator's",
        ),
        (
            "/rotations",
            &rotation_body,
            "/timeZone",
            json!("Nowhere/City"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "timeZone \"Nowhere/City\"",
        ),
        (
            "/rotations",
            &rotation_body,
            "/type",
            json!("monthly"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "type",
        ),
        (
            "/rotations",
            &rotation_body,
            "/shiftLength",
            json!(9001),
            StatusCode::UNPROCESSABLE_ENTITY,
            "shiftLength 9001 must be between 1 and 9000",
        ),
        (
            "/rotations",
            &rotation_body,
            "/handoffAt",
            json!("2026-03-02 9am"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "handoffAt \"2026-03-02 9am\" is not a local date-time",
        ),
        (
            "/rotations",
            &rotation_body,
            "/participants",
            json!([]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "participants must list 1 to 200",
        ),
        (
            "/rotations",
            &rotation_body,
            "/participants",
            json!([ada, "op_nobody"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "participants[1] \"op_nobody\": no such operator",
        ),
        (
            "/schedules",
            &schedule_body,
            "/rules",
            json!([]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "rules must list 1 to 100",
        ),
        (
            "/schedules",
            &schedule_body,
            "/rules/0/rotationId",
            json!(rotation),
            StatusCode::UNPROCESSABLE_ENTITY,
            "rules[0] must name exactly one of rotationId and operatorId",
        ),
        (
            "/schedules",
            &schedule_body,
            "/rules/0/days",
            json!(["MON", "FUNDAY"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "rules[0].days[1] \"FUNDAY\"",
        ),
        (
            "/schedules",
            &schedule_body,
            "/rules/0/start",
            json!("24:00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "rules[0].start \"24:00\" is not a time HH:MM",
        ),
        (
            "/schedules",
            &schedule_body,
            "/rules/0/operatorId",
            json!("op_nobody"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "rules[0].operatorId \"op_nobody\": no such operator",
        ),
        (
            "/schedules",
            &schedule_body,
            "/timeZone",
            json!(""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "timeZone",
        ),
        (
            &overrides,
            &override_body,
            "/add",
            json!(null),
            StatusCode::UNPROCESSABLE_ENTITY,
            "an override needs add, remove, or both",
        ),
        (
            &overrides,
            &override_body,
            "/end",
            json!("2026-03-04T00:00:00Z"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "end 2026-03-04T00:00:00+00:00 must be after start",
        ),
        (
            &overrides,
            &override_body,
            "/add",
            json!("op_nobody"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "add \"op_nobody\": no such operator",
        ),
        (
            "/rosters",
            &roster_body,
            "/members/0/scheduleId",
            json!(schedule),
            StatusCode::UNPROCESSABLE_ENTITY,
            "members[0] must be exactly one of",
        ),
        (
            "/rosters",
            &roster_body,
            "/members/0/operatorId",
            json!("op_nobody"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "members[0].operatorId \"op_nobody\": no such operator",
        ),
        (
            &handoff,
            &handoff_body,
            "/to",
            json!("op_nobody"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "to \"op_nobody\" is not a participant",
        ),
    ];
    for (path, valid, pointer, bad, status, message) in cases {
        let mut body = valid.clone();
        if bad.is_null() {
            body.as_object_mut().unwrap().remove(&pointer[1..]);
        } else if let Some(slot) = body.pointer_mut(pointer) {
            *slot = bad;
        } else {
            let (parent, field) = pointer.rsplit_once('/').unwrap();
            body.pointer_mut(parent).unwrap()[field] = bad;
        }
        let (got, response) = app
            .call(Method::POST, path, Some(ADMIN_KEY), Some(body))
            .await;
        assert_eq!(got, status, "{path} {pointer}: {response}");
        assert!(
            response["message"].as_str().unwrap().contains(message),
            "{path} {pointer}: {response}"
        );
    }
    assert_eq!(
        app.get("/operators").await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Editors and viewers read but never write; every admin write is audited.
    let editor = key(&app, "editor").await;
    let writes: Vec<(Method, String, Value)> = vec![
        (Method::POST, "/operators".into(), operator_body.clone()),
        (
            Method::PUT,
            format!("/operators/{ada}"),
            operator_body.clone(),
        ),
        (Method::DELETE, format!("/operators/{ada}"), json!({})),
        (Method::POST, "/rotations".into(), rotation_body.clone()),
        (
            Method::PUT,
            format!("/rotations/{rotation}"),
            rotation_body.clone(),
        ),
        (Method::POST, handoff.clone(), json!({"to": ada})),
        (Method::DELETE, format!("/rotations/{rotation}"), json!({})),
        (Method::POST, "/schedules".into(), schedule_body.clone()),
        (
            Method::PUT,
            format!("/schedules/{schedule}"),
            schedule_body.clone(),
        ),
        (Method::POST, overrides.clone(), override_body.clone()),
        (Method::DELETE, format!("/schedules/{schedule}"), json!({})),
    ];
    for (method, path, body) in &writes {
        let (status, response) = app
            .call(method.clone(), path, Some(&editor), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {response}");
    }
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/schedules/{schedule}/shifts"),
            Some(&editor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.send(Method::POST, &handoff, json!({"to": ada}), StatusCode::OK)
        .await;
    app.send(Method::POST, &overrides, override_body, StatusCode::CREATED)
        .await;
    let audit = app.get("/audit?pageSize=500").await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "operator.create",
        "rotation.create",
        "schedule.create",
        "rotation.handoff",
        "schedule.override.create",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_in_use_is_not_deleted_and_says_what_uses_them() {
    let app = spawn_app().await;
    let ada = operator(&app, "Ada", A).await;
    let bo = operator(&app, "Bo", B).await;
    let rotation = create(
        &app,
        "/rotations",
        json!({"name": "r", "timeZone": "UTC", "type": "hourly", "shiftLength": 8,
               "handoffAt": "2026-03-02T00:00", "participants": [ada, bo]}),
    )
    .await;
    let roster = create(
        &app,
        "/rosters",
        json!({"name": "x", "members": [{"operatorId": ada}, {"rotationId": rotation}]}),
    )
    .await;
    let refused = app
        .send(
            Method::DELETE,
            &format!("/operators/{ada}"),
            json!({}),
            StatusCode::CONFLICT,
        )
        .await;
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("rosters/{roster}"))
            && message.contains(&format!("rotations/{rotation}")),
        "{message}"
    );
    let refused = app
        .send(
            Method::DELETE,
            &format!("/rotations/{rotation}"),
            json!({}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        refused["message"].as_str().unwrap().contains(&roster),
        "{refused}"
    );
    app.send(
        Method::DELETE,
        &format!("/rosters/{roster}"),
        json!({}),
        StatusCode::NO_CONTENT,
    )
    .await;
    app.send(
        Method::DELETE,
        &format!("/rotations/{rotation}"),
        json!({}),
        StatusCode::NO_CONTENT,
    )
    .await;
    app.send(
        Method::DELETE,
        &format!("/operators/{ada}"),
        json!({}),
        StatusCode::NO_CONTENT,
    )
    .await;
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/operators/{ada}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// The migrations of `dir` (`sqlite` or `postgres`) before version `before`: what an
/// older Tocsin ran. The directory holds the copies while the migrator is used.
pub(crate) async fn migrations_before(
    dir: &str,
    before: i64,
) -> (tempfile::TempDir, sqlx::migrate::Migrator) {
    let copies = tempfile::tempdir().unwrap();
    let source = tocsin_tests::workspace()
        .join("engine/migrations")
        .join(dir);
    for file in std::fs::read_dir(&source).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().into_string().unwrap();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version < before {
            std::fs::copy(file.path(), copies.path().join(&name)).unwrap();
        }
    }
    let older = sqlx::migrate::Migrator::new(copies.path()).await.unwrap();
    (copies, older)
}

/// A database migrated only up to (not including) `before`, with two rosters that share a
/// number, then opened by this version: the members become operators, one per number.
async fn members_become_operators(database: tocsin::store::Database, dir: &str, before: i64) {
    let (_copies, older) = migrations_before(dir, before).await;
    let insert = match &database {
        tocsin::store::Database::Sqlite(_) => {
            "INSERT INTO rosters (id, name, members, loops, ring_timeout_seconds, created_at, updated_at)
             VALUES (?, ?, ?, 1, 30, ?, ?)"
        }
        tocsin::store::Database::Postgres(_) => {
            "INSERT INTO rosters (id, name, members, loops, ring_timeout_seconds, created_at, updated_at)
             VALUES ($1, $2, $3, 1, 30, $4, $5)"
        }
    };
    let rosters = [
        (
            "ros_a",
            r#"[{"name":"Ada","phone":"+15550000001"},{"name":"Bo","phone":"+15550000002"}]"#,
        ),
        (
            "ros_b",
            r#"[{"name":"Bo again","phone":"+15550000002"},{"name":"Cy","phone":"+15550000003"}]"#,
        ),
    ];
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
            for (i, (id, members)) in rosters.iter().enumerate() {
                sqlx::query(insert)
                    .bind(id)
                    .bind("r")
                    .bind(members)
                    .bind(i as i64)
                    .bind(i as i64)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
        tocsin::store::Database::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            older.run(&pool).await.unwrap();
            for (i, (id, members)) in rosters.iter().enumerate() {
                sqlx::query(insert)
                    .bind(id)
                    .bind("r")
                    .bind(members)
                    .bind(chrono::DateTime::from_timestamp(i as i64, 0).unwrap())
                    .bind(chrono::DateTime::from_timestamp(i as i64, 0).unwrap())
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
    }
    let store = tocsin::store::Store::open(&database).await.unwrap();
    let operators = store.list_operators(None, 50).await.unwrap();
    let mut by_phone: Vec<(String, String)> = operators
        .iter()
        .map(|o| (o.phone.as_str().to_owned(), o.name.clone()))
        .collect();
    by_phone.sort();
    assert_eq!(
        by_phone,
        [
            ("+15550000001".to_owned(), "Ada".to_owned()),
            ("+15550000002".to_owned(), "Bo".to_owned()),
            ("+15550000003".to_owned(), "Cy".to_owned()),
        ],
        "one operator per number, named as on the oldest roster"
    );
    let id_of = |phone: &str| {
        operators
            .iter()
            .find(|o| o.phone.as_str() == phone)
            .unwrap()
            .id
            .clone()
    };
    use tocsin::store::escalation::Entry;
    let named = |ids: [&str; 2]| -> Vec<Entry> {
        ids.iter()
            .map(|phone| Entry::Operator {
                operator_id: id_of(phone),
            })
            .collect()
    };
    let a = store.roster("ros_a").await.unwrap().unwrap();
    assert_eq!(a.members, named(["+15550000001", "+15550000002"]));
    let b = store.roster("ros_b").await.unwrap().unwrap();
    assert_eq!(b.members, named(["+15550000002", "+15550000003"]));
    store.close().await;
}

#[tokio::test]
async fn roster_members_of_an_older_database_become_operators() {
    let dir = tempfile::tempdir().unwrap();
    members_become_operators(dir.path().join("old.db").into(), "sqlite", 8).await;
    if let Some(db) = crate::pg::TestDatabase::create("members_become_operators").await {
        members_become_operators(tocsin::store::Database::parse(&db.url), "postgres", 6).await;
    }
}

/// A roster of `members` (operator ids) that texts missed calls, every incident routed to
/// it, and an alarm alert.
async fn texting_roster(app: &TestApp, members: &[&str], loops: u32) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"operatorId": id})).collect();
    let roster = create(
        app,
        "/rosters",
        json!({"name": "texting", "members": members, "loops": loops, "ringTimeoutSeconds": 20, "sms": "on-miss"}),
    )
    .await;
    assert_eq!(
        app.get(&format!("/rosters/{roster}")).await["sms"],
        "on-miss"
    );
    route_all_to(app, &roster).await;
    alarm_alert(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_call_is_texted_once_and_the_members_reply_accepts() {
    let phones = Phones::start(&[(A, "no-answer"), (B, "no-answer")]).await;
    let app = escalating_app(&phones).await;
    // Ada is texted on a number of her own, which answers the text with "1".
    let ada = create(
        &app,
        "/operators",
        json!({"name": "Ada", "phone": A, "smsPhone": "+15550000011"}),
    )
    .await;
    let bo = operator(&app, "Bo", B).await;
    phones
        .http
        .put(format!(
            "{}/sim/replies/+15550000011",
            phones.account.api_base
        ))
        .json(&json!({"reply": "1", "webhook": format!("{}/twilio/sms", app.base)}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let alert = texting_roster(&app, &[&ada, &bo], 1).await;
    alarm(&app, "a1", "FIRING").await;

    let incident = incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    assert_eq!(incident["acknowledgedBy"], "Ada");
    let id = incident["id"].as_str().unwrap();
    // Bo's call, ringing when Ada's reply came, is ended; Bo is not texted for it.
    crate::escalation::wait_until("Bo's call to end", || async {
        let calls = phones.calls().await;
        (calls.len() == 2 && calls[1]["status"] == "canceled").then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let messages = phones.get("/sim/messages").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["to"], "+15550000011");
    assert_eq!(
        messages[0]["body"],
        "critical alarm DiskFull on db-a1 is FIRING: disk full on the primary Reply 1 to accept"
    );
    let entries = timeline(&app, id).await;
    let kinds = kinds(&entries);
    for kind in ["sms-sent", "sms-accepted"] {
        assert_eq!(
            kinds.iter().filter(|k| **k == kind).count(),
            1,
            "{kind}: {kinds:?}"
        );
    }
    assert!(!kinds.contains(&"escalation-exhausted"), "{kinds:?}");
    // Every request to Twilio, the message among them, is one its API defines.
    let spec = crate::escalation::TwilioSpec::load();
    let requests = phones.requests().await;
    assert!(
        requests
            .iter()
            .any(|r| r["path"].as_str().unwrap().ends_with("/Messages.json"))
    );
    for request in &requests {
        spec.check(request);
    }
    app.stop().await;
    phones.server.stop().await;
}

/// Posts a reply to `/twilio/sms` as Twilio would, signed with `token`.
async fn reply(app: &TestApp, token: &str, from: &str, body: &str) -> StatusCode {
    let url = format!("{}/twilio/sms", app.base);
    let params: Vec<(String, String)> = [
        ("AccountSid", "ACtest"),
        ("Body", body),
        ("From", from),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("To", "+15550009999"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let signature = tocsin_twilio::signature::sign(token, &url, &params);
    app.client
        .post(&url)
        .header("X-Twilio-Signature", signature)
        .form(&params)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_texted_members_signed_reply_of_1_accepts_and_only_once() {
    let phones = Phones::start(&[(A, "no-answer")]).await;
    let app = escalating_app(&phones).await;
    let ada = operator(&app, "Ada", A).await;
    let alert = texting_roster(&app, &[&ada], 1).await;
    alarm(&app, "a1", "FIRING").await;
    // Ada misses the one call: the loop is spent, she is texted, the incident stays OPEN.
    let incident = incident_where(&app, &alert, |_| true).await;
    let id = incident["id"].as_str().unwrap().to_owned();
    crate::escalation::wait_until("the text", || async {
        let entries = timeline(&app, &id).await;
        kinds(&entries).contains(&"sms-sent").then_some(())
    })
    .await;
    let token = phones.account.auth_token.clone();
    let open = || async { app.incident(&id).await["status"] == "OPEN" };
    assert_eq!(
        reply(&app, "not the token", A, "1").await,
        StatusCode::FORBIDDEN
    );
    assert!(open().await, "a forged signature accepts nothing");
    assert_eq!(reply(&app, &token, C, "1").await, StatusCode::OK);
    assert!(open().await, "another number's reply accepts nothing");
    assert_eq!(reply(&app, &token, A, "2").await, StatusCode::OK);
    assert!(open().await, "a reply other than 1 accepts nothing");
    assert_eq!(reply(&app, &token, A, " 1 ").await, StatusCode::OK);
    let incident = app.incident(&id).await;
    assert_eq!(incident["status"], "ACKNOWLEDGED");
    assert_eq!(incident["acknowledgedBy"], "Ada");
    assert_eq!(reply(&app, &token, A, "1").await, StatusCode::OK);
    let entries = timeline(&app, &id).await;
    let kinds = kinds(&entries);
    assert_eq!(
        kinds.iter().filter(|k| **k == "sms-accepted").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(phones.get("/sim/messages").await.len(), 1);
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operators_answers_are_counted_and_exported() {
    let phones = Phones::start(&[(A, "pass"), (B, "accept")]).await;
    let app = escalating_app(&phones).await;
    let ada = operator(&app, "Ada", A).await;
    let bo = operator(&app, "Bo", B).await;
    let roster = create(
        &app,
        "/rosters",
        json!({"name": "r", "members": [{"operatorId": ada}, {"operatorId": bo}]}),
    )
    .await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;
    incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;

    let stats = |id: String| {
        let app = &app;
        async move { app.get(&format!("/operators/{id}/stats")).await }
    };
    let ada_stats = stats(ada.clone()).await;
    assert_eq!(
        (
            ada_stats["calls"].clone(),
            ada_stats["answered"].clone(),
            ada_stats["passed"].clone(),
            ada_stats["accepted"].clone(),
            ada_stats["missed"].clone()
        ),
        (json!(1), json!(1), json!(1), json!(0), json!(0)),
        "{ada_stats}"
    );
    assert_eq!(ada_stats["medianSecondsToAccept"], Value::Null);
    let bo_stats = stats(bo.clone()).await;
    assert_eq!(bo_stats["accepted"], 1, "{bo_stats}");
    assert!(bo_stats["medianSecondsToAccept"].is_number(), "{bo_stats}");
    // Before the calls, nothing.
    let before = app
        .get(&format!(
            "/operators/{ada}/stats?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z"
        ))
        .await;
    assert_eq!(before["calls"], 0);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/operators/{ada}/stats?from=2025-01-01T00:00:00Z&to=2026-03-01T00:00:00Z"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "over 366 days");

    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "tocsin_calls_total{outcome=\"passed\"} 1",
        "tocsin_calls_total{outcome=\"accepted\"} 1",
        "tocsin_time_to_acknowledge_seconds_count 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_with_nobody_on_call_calls_no_one_and_fires_its_fallback() {
    let phones = Phones::start(&[(A, "accept")]).await;
    let app = escalating_app(&phones).await;
    let (url, received, receiver) = crate::escalation::fallback_receiver().await;
    let ada = operator(&app, "Ada", A).await;
    // Ada is on call on weekends only; the clock reads Wednesday.
    let schedule = create(
        &app,
        "/schedules",
        json!({"name": "weekends", "timeZone": "UTC", "rules": [
            {"operatorId": ada, "days": ["SAT", "SUN"], "start": "00:00", "end": "00:00"}]}),
    )
    .await;
    let roster = create(
        &app,
        "/rosters",
        json!({"name": "weekend on-call", "members": [{"scheduleId": schedule}], "loops": 2, "fallbackUrl": url}),
    )
    .await;
    assert_eq!(
        app.get(&format!("/rosters/{roster}/resolve")).await["members"],
        json!([])
    );
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;
    let incident = incident_where(&app, &alert, |_| true).await;
    let id = incident["id"].as_str().unwrap();
    let entries = crate::escalation::wait_until("the fallback", || async {
        let entries = timeline(&app, id).await;
        kinds(&entries).contains(&"fallback").then_some(entries)
    })
    .await;
    let kinds = kinds(&entries);
    for kind in ["roster-resolved", "no-one-on-call", "escalation-exhausted"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(!kinds.contains(&"call-started"), "{kinds:?}");
    assert!(phones.called().await.is_empty());
    let fallbacks = received.lock().unwrap().clone();
    assert_eq!(fallbacks.len(), 1, "{fallbacks:?}");
    assert_eq!(fallbacks[0]["incidentId"], id);
    receiver.abort();
    app.stop().await;
    phones.server.stop().await;
}

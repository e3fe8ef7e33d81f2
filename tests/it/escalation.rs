//! Phone escalation end to end: the real server, the Twilio simulator on its own loopback
//! port, scripted operators, signed webhooks, and a server killed mid-call.

use crate::support::{ADMIN_KEY, TestApp, spawn_app_with, test_config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tocsin::clock::Clock;
use tocsin::config::Config;
use tocsin_twilio::{Account, signature};
use tocsin_twilio_sim::{SimConfig, SimServer};

const A: &str = "+15550000001";
const B: &str = "+15550000002";
const C: &str = "+15550000003";

/// The simulator runs ten times faster than real time: a 30 s ring is 3 s.
const SPEED: f64 = 10.0;

/// A running Twilio simulator and the account it knows.
pub(crate) struct Phones {
    pub(crate) server: SimServer,
    pub(crate) account: Account,
    pub(crate) http: reqwest::Client,
}

impl Phones {
    pub(crate) async fn start(numbers: &[(&str, &str)]) -> Self {
        let mut config = SimConfig::new();
        config.speed = SPEED;
        for (number, behaviour) in numbers {
            config
                .numbers
                .insert((*number).into(), behaviour.parse().unwrap());
        }
        let account = Account {
            sid: config.account_sid.clone(),
            auth_token: config.auth_token.clone(),
            from: "+15550009999".into(),
            api_base: String::new(),
        };
        let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let account = Account {
            api_base: server.api_base(),
            ..account
        };
        Self {
            server,
            account,
            http: reqwest::Client::new(),
        }
    }

    /// Points a server's configuration at this simulator.
    pub(crate) fn configure(&self, config: &mut Config) {
        config.twilio = Some(self.account.clone());
        config.calls_per_second = 50.0;
    }

    pub(crate) async fn calls(&self) -> Vec<Value> {
        self.get("/sim/calls").await
    }

    pub(crate) async fn requests(&self) -> Vec<Value> {
        self.get("/sim/requests").await
    }

    pub(crate) async fn get(&self, path: &str) -> Vec<Value> {
        self.http
            .get(format!("{}{path}", self.account.api_base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The numbers called, in order.
    pub(crate) async fn called(&self) -> Vec<String> {
        self.calls()
            .await
            .iter()
            .map(|c| c["to"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Polls `check` every 50 ms for up to 30 s.
pub(crate) async fn wait_until<F, Fut, T>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn escalating_app(phones: &Phones) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = Clock::manual("2026-03-04T10:00:00Z".parse().unwrap());
    spawn_app_with(dir, clock, |config| phones.configure(config)).await
}

async fn create_roster(app: &TestApp, members: &[(&str, &str)], extra: Value) -> String {
    let mut body = json!({
        "name": "on-call",
        "members": members.iter().map(|(name, phone)| json!({"name": name, "phone": phone})).collect::<Vec<_>>(),
        "loops": 1,
        "ringTimeoutSeconds": 30,
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let roster = app
        .send(Method::POST, "/rosters", body, StatusCode::CREATED)
        .await;
    roster["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn route_all_to(app: &TestApp, roster: &str) {
    app.send(
        Method::POST,
        "/routes",
        json!({"rosterId": roster}),
        StatusCode::CREATED,
    )
    .await;
}

/// An ACTIVE cloud_alarm alert on integration `int1`, evaluated once.
pub(crate) async fn alarm_alert(app: &TestApp) -> String {
    let alert = app
        .create_alert("cloud_alarm", Some("int1"), json!({}))
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    app.wait_for_evaluation(&id, None).await;
    id
}

pub(crate) async fn alarm(app: &TestApp, id: &str, state: &str) {
    app.put_entity(
        "ALARM",
        id,
        Some(("INTEGRATION", "int1")),
        json!({"source": "generic", "name": "DiskFull", "resource": format!("db-{id}"), "severity": "critical",
               "state": state, "summary": "disk full on the primary", "startedAt": "2026-03-04T09:58:00Z"}),
    )
    .await;
}

pub(crate) async fn timeline(app: &TestApp, incident: &str) -> Vec<Value> {
    app.get(&format!("/incidents/{incident}/timeline")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) fn kinds(timeline: &[Value]) -> Vec<&str> {
    timeline
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

fn count(timeline: &[Value], kind: &str) -> usize {
    kinds(timeline).iter().filter(|k| **k == kind).count()
}

pub(crate) async fn incident_where(
    app: &TestApp,
    alert: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    wait_until("the incident", || async {
        app.incidents_of(alert).await.into_iter().find(|i| pred(i))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_then_busy_then_accept_makes_three_calls_and_acknowledges() {
    let phones = Phones::start(&[(A, "pass"), (B, "busy"), (C, "accept")]).await;
    let app = escalating_app(&phones).await;
    let roster = create_roster(&app, &[("Ada", A), ("Bo", B), ("Cy", C)], json!({})).await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;

    let incident = incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    assert_eq!(incident["acknowledgedBy"], "Cy");
    // Let any stray call show itself before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(phones.called().await, [A, B, C]);
    let calls = phones.calls().await;
    assert_eq!(calls[0]["digits"], json!(["2"]));
    assert_eq!(calls[1]["status"], "busy");
    assert_eq!(calls[2]["digits"], json!(["1"]));

    let timeline = timeline(&app, incident["id"].as_str().unwrap()).await;
    let outcomes: Vec<&str> = timeline
        .iter()
        .filter(|e| e["kind"] == "call-outcome")
        .map(|e| e["detail"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["passed", "busy", "accepted"]);
    assert_eq!(count(&timeline, "call-started"), 3);
    assert_eq!(count(&timeline, "acknowledged"), 1);
    let started: Vec<&Value> = timeline
        .iter()
        .filter(|e| e["kind"] == "call-started")
        .collect();
    assert_eq!(started[2]["detail"]["position"], 3);
    assert_eq!(
        started[2]["detail"]["phone"], "…0003",
        "timelines never show full numbers"
    );
    app.stop().await;
    phones.server.stop().await;
}

/// A loopback receiver for fallback webhooks, counting what it gets.
pub(crate) async fn fallback_receiver()
-> (String, Arc<Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/fallback",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/fallback", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, received, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_passing_twice_exhausts_the_loop_and_fires_the_fallback_once() {
    let phones = Phones::start(&[(A, "pass"), (B, "pass"), (C, "pass")]).await;
    let app = escalating_app(&phones).await;
    let (url, received, receiver) = fallback_receiver().await;
    let roster = create_roster(
        &app,
        &[("Ada", A), ("Bo", B), ("Cy", C)],
        json!({"loops": 2, "fallbackUrl": url}),
    )
    .await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;
    let incident = incident_where(&app, &alert, |_| true).await;
    let id = incident["id"].as_str().unwrap();

    let timeline = wait_until("the fallback", || async {
        let t = timeline(&app, id).await;
        (count(&t, "fallback") > 0).then_some(t)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(phones.called().await, [A, B, C, A, B, C]);
    assert_eq!(count(&timeline, "escalation-exhausted"), 1);
    let fallbacks = received.lock().unwrap().clone();
    assert_eq!(fallbacks.len(), 1, "{fallbacks:?}");
    assert_eq!(fallbacks[0]["incidentId"], id);
    assert_eq!(fallbacks[0]["event"], "escalation.exhausted");
    assert_eq!(
        app.get(&format!("/incidents/{id}")).await["status"],
        "OPEN",
        "nobody accepted"
    );
    receiver.abort();
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicemail_never_accepts_and_silence_reprompts_once_before_moving_on() {
    let phones = Phones::start(&[(A, "voicemail"), (B, "accept")]).await;
    let app = escalating_app(&phones).await;
    let roster = create_roster(&app, &[("Ada", A), ("Bo", B)], json!({})).await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;

    let incident = incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    assert_eq!(incident["acknowledgedBy"], "Bo");
    let calls = phones.calls().await;
    assert_eq!(calls.len(), 2);
    let voicemail = &calls[0];
    assert_eq!(voicemail["digits"], json!([]));
    let heard: Vec<&str> = voicemail["heard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(heard.len(), 3, "prompt, one re-prompt, goodbye: {heard:?}");
    assert!(heard[0].contains("disk full on the primary"), "{heard:?}");
    assert!(heard[1].starts_with("Are you there?"), "{heard:?}");
    assert!(heard[2].contains("No answer"), "{heard:?}");

    let timeline = timeline(&app, incident["id"].as_str().unwrap()).await;
    assert_eq!(count(&timeline, "call-silence"), 1);
    let first_outcome = timeline
        .iter()
        .find(|e| e["kind"] == "call-outcome")
        .unwrap();
    assert_eq!(first_outcome["detail"]["outcome"], "no-key-press");
    assert_eq!(first_outcome["actor"], "Ada");
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_while_the_second_phone_rings_ends_that_call_and_stops_the_loop() {
    let phones = Phones::start(&[(A, "pass"), (B, "slow:50:accept"), (C, "accept")]).await;
    let app = escalating_app(&phones).await;
    let roster = create_roster(
        &app,
        &[("Ada", A), ("Bo", B), ("Cy", C)],
        json!({"ringTimeoutSeconds": 60}),
    )
    .await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;

    wait_until("Ada to hang up and the second phone to ring", || async {
        let calls = phones.calls().await;
        (calls.len() == 2 && calls[0]["status"] == "completed" && calls[1]["status"] == "ringing")
            .then_some(())
    })
    .await;
    alarm(&app, "a1", "RESOLVED").await;
    let incident = incident_where(&app, &alert, |i| i["status"] == "CLOSED").await;
    let call = wait_until("the ringing call to end", || async {
        let calls = phones.calls().await;
        (calls[1]["status"] == "canceled").then(|| calls[1].clone())
    })
    .await;
    assert_eq!(call["endedByApi"], true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        phones.called().await,
        [A, B],
        "no call after the incident closed"
    );
    let timeline = timeline(&app, incident["id"].as_str().unwrap()).await;
    assert_eq!(count(&timeline, "escalation-stopped"), 1);
    assert_eq!(count(&timeline, "call-ended"), 1);

    TwilioSpec::load().check_all(&phones.requests().await);
    app.stop().await;
    phones.server.stop().await;
}

/// POSTs a form to one of the server's Twilio webhooks, signed with `token` (none: no
/// signature header).
async fn post_webhook(
    app: &TestApp,
    path: &str,
    params: &[(&str, &str)],
    token: Option<&str>,
) -> (StatusCode, String) {
    let url = format!("{}{path}", app.base);
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut request = app.client.post(&url).form(&owned);
    if let Some(token) = token {
        request = request.header("X-Twilio-Signature", signature::sign(token, &url, &owned));
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_missing_and_replayed_webhooks_change_nothing() {
    let phones = Phones::start(&[(A, "pass"), (B, "accept")]).await;
    let app = escalating_app(&phones).await;
    let roster = create_roster(&app, &[("Ada", A), ("Bo", B)], json!({})).await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;
    let incident = incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    let id = incident["id"].as_str().unwrap();
    // Wait for the last status callback, then take the state to compare against.
    let before = wait_until("both calls to be over", || async {
        let t = timeline(&app, id).await;
        (t.iter()
            .filter(|e| e["kind"] == "call-status" && e["detail"]["status"] == "completed")
            .count()
            == 2)
            .then_some(t)
    })
    .await;
    let placed: Vec<&Value> = before
        .iter()
        .filter(|e| e["kind"] == "call-placed")
        .collect();
    let (ada_call, ada_sid) = (
        placed[0]["detail"]["callId"].as_str().unwrap(),
        placed[0]["detail"]["sid"].as_str().unwrap(),
    );
    let token = phones.account.auth_token.clone();
    let base = [
        ("AccountSid", phones.account.sid.as_str()),
        ("CallSid", ada_sid),
        ("From", "+15550009999"),
        ("To", A),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut p = base.to_vec();
        p.extend_from_slice(extra);
        p
    };

    // Ada accepting now, forged, unsigned, or signed with another token: refused.
    let accept = with(&[("Digits", "1")]);
    let gather = format!("/twilio/gather/{ada_call}?prompt=1");
    let (status, body) = post_webhook(&app, &gather, &accept, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("X-Twilio-Signature is missing"), "{body}");
    let (status, body) = post_webhook(&app, &gather, &accept, Some("not-the-token")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("does not match"), "{body}");
    // A valid signature over other parameters than those sent: refused.
    let url = format!("{}{gather}", app.base);
    let signed_for_pass = signature::sign(
        &token,
        &url,
        &with(&[("Digits", "2")])
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>(),
    );
    let response = app
        .client
        .post(&url)
        .header("X-Twilio-Signature", signed_for_pass)
        .form(&accept)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let status_path = format!("/twilio/status/{ada_call}");
    let (status, _) = post_webhook(
        &app,
        &status_path,
        &with(&[("CallStatus", "no-answer")]),
        Some("forged"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Replays and late callbacks, validly signed: accepted by HTTP, no change.
    let (status, twiml) = post_webhook(&app, &gather, &accept, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(twiml.contains("no longer needs you"), "{twiml}");
    for late in ["ringing", "in-progress", "completed", "no-answer"] {
        let params = with(&[("CallStatus", late)]);
        let (status, _) = post_webhook(&app, &status_path, &params, Some(&token)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, _) = post_webhook(
        &app,
        &format!("/twilio/voice/{ada_call}?prompt=1"),
        &with(&[("CallStatus", "in-progress")]),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Another call's SID on Ada's call: not hers.
    let (status, _) = post_webhook(
        &app,
        &gather,
        &[
            ("CallSid", "CA00000000000000000000000000000000"),
            ("Digits", "1"),
        ],
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(timeline(&app, id).await, before);
    let after = app.incident(id).await;
    assert_eq!(after["status"], "ACKNOWLEDGED");
    assert_eq!(after["acknowledgedBy"], "Bo");
    assert_eq!(phones.calls().await.len(), 2);
    app.stop().await;
    phones.server.stop().await;
}

#[test]
fn every_shared_signature_vector_validates() {
    let path = tocsin_tests::workspace().join("../shared/contracts/twilio-signature-vectors.json");
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let token = vectors["authToken"].as_str().unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for case in cases {
        let url = case["url"].as_str().unwrap();
        let mut params = Vec::new();
        for (name, value) in case["params"].as_object().into_iter().flatten() {
            match value {
                Value::Array(values) => {
                    for v in values {
                        params.push((name.clone(), v.as_str().unwrap().to_owned()));
                    }
                }
                v => params.push((name.clone(), v.as_str().unwrap().to_owned())),
            }
        }
        let body = case["body"].as_str().map(str::as_bytes);
        let expected = case["signature"].as_str().unwrap();
        let name = case["name"].as_str().unwrap();
        assert!(
            signature::is_valid(token, url, &params, body, expected),
            "{name}"
        );
        assert!(
            !signature::is_valid("54321", url, &params, body, expected),
            "{name}: another token"
        );
        if let Some(body) = body {
            let mut tampered = body.to_vec();
            tampered[0] = b' ';
            assert!(
                !signature::is_valid(token, url, &params, Some(&tampered), expected),
                "{name}: another body"
            );
        } else {
            let mut other = params.clone();
            other[0].1.push('0');
            assert!(
                !signature::is_valid(token, url, &other, None, expected),
                "{name}: other params"
            );
        }
    }
}

/// Twilio's OpenAPI document, to check every request our client made.
pub(crate) struct TwilioSpec(Value);

impl TwilioSpec {
    pub(crate) fn load() -> Self {
        let path = tocsin_tests::workspace().join("../shared/contracts/twilio_api_v2010.json");
        Self(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                self.0.pointer(pointer).unwrap()
            }
            None => schema,
        }
    }

    /// The spec's path template matching `path`, e.g. `/2010-04-01/Accounts/{AccountSid}/Calls.json`.
    fn operation(&self, method: &str, path: &str) -> (&str, &Value) {
        let paths = self.0["paths"].as_object().unwrap();
        for (template, item) in paths {
            let pattern = regex_of(template);
            if pattern(path)
                && let Some(op) = item.get(method.to_lowercase())
            {
                return (template, op);
            }
        }
        panic!("{method} {path} is not in Twilio's API");
    }

    /// Checks one recorded request: path parameters against their patterns, form
    /// parameters against the request body schema (known names, required ones present,
    /// types, enums).
    pub(crate) fn check(&self, request: &Value) {
        let method = request["method"].as_str().unwrap();
        let path = request["path"].as_str().unwrap();
        let (template, op) = self.operation(method, path);
        let params: Vec<(String, String)> =
            serde_json::from_value(request["params"].clone()).unwrap();
        for parameter in op["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "path" {
                let pattern = parameter["schema"]["pattern"].as_str().unwrap_or(".*");
                let name = parameter["name"].as_str().unwrap();
                let value = path_value(template, path, name);
                assert!(
                    matches_pattern(pattern, &value),
                    "{path}: {name} {value:?} does not match {pattern}"
                );
            }
        }
        if method != "POST" {
            for (name, _) in &params {
                assert!(
                    op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|p| p["in"] == "query" && p["name"] == name.as_str()),
                    "{path}: {name} is not a query parameter of {template}"
                );
            }
            return;
        }
        let schema = &op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
        let properties = schema["properties"].as_object().unwrap();
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap();
            assert!(
                params.iter().any(|(k, _)| k == required),
                "{path}: {required} is required"
            );
        }
        for (name, value) in &params {
            let property = self.resolve(
                properties
                    .get(name)
                    .unwrap_or_else(|| panic!("{path}: {name} is not a parameter of {template}")),
            );
            let kind = property["type"].as_str().unwrap_or("string");
            match kind {
                "integer" => assert!(
                    value.parse::<i64>().is_ok(),
                    "{path}: {name}={value:?} is not an integer"
                ),
                "boolean" => assert!(
                    value == "true" || value == "false",
                    "{path}: {name}={value:?}"
                ),
                "array" | "string" => {}
                other => panic!("{path}: {name} has type {other}"),
            }
            if let Some(choices) = property["enum"].as_array() {
                assert!(
                    choices.iter().any(|c| c == value),
                    "{path}: {name}={value:?} is not one of {choices:?}"
                );
            }
            if property["format"] == "uri" {
                assert!(
                    reqwest::Url::parse(value).is_ok(),
                    "{path}: {name}={value:?} is not a URI"
                );
            }
            if name == "To" || name == "From" {
                assert!(tocsin_twilio::is_e164(value), "{path}: {name}={value:?}");
            }
        }
    }

    fn check_all(&self, requests: &[Value]) {
        assert!(
            requests
                .iter()
                .any(|r| r["path"].as_str().unwrap().ends_with("/Calls.json"))
        );
        for request in requests {
            self.check(request);
        }
    }
}

/// Whether `path` fits a `{Param}` path template.
fn regex_of(template: &str) -> impl Fn(&str) -> bool + '_ {
    move |path: &str| {
        let t: Vec<&str> = template.split('/').collect();
        let p: Vec<&str> = path.split('/').collect();
        t.len() == p.len()
            && t.iter()
                .zip(&p)
                .all(|(t, p)| match (t.find('{'), t.find('}')) {
                    (Some(open), Some(close)) => {
                        p.starts_with(&t[..open])
                            && p.ends_with(&t[close + 1..])
                            && p.len() > open + t.len() - close - 1
                    }
                    _ => t == p,
                })
    }
}

fn path_value(template: &str, path: &str, name: &str) -> String {
    let marker = format!("{{{name}}}");
    for (t, p) in template.split('/').zip(path.split('/')) {
        if let Some(open) = t.find(&marker) {
            let suffix = &t[open + marker.len()..];
            return p[open..p.len() - suffix.len()].to_owned();
        }
    }
    panic!("{name} is not in {template}");
}

/// The spec's SID patterns: `^XX[0-9a-fA-F]{32}$`.
fn matches_pattern(pattern: &str, value: &str) -> bool {
    match pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix("[0-9a-fA-F]{32}$"))
    {
        Some(prefix) => {
            value.len() == prefix.len() + 32
                && value.starts_with(prefix)
                && value[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => pattern == ".*",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_paced_one_number_at_a_time_first_come_first_served() {
    let phones = Phones::start(&[(A, "pass"), (B, "pass")]).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = Clock::manual("2026-03-04T10:00:00Z".parse().unwrap());
    let app = spawn_app_with(dir, clock, |config| {
        phones.configure(config);
        config.calls_per_second = 4.0;
    })
    .await;
    let roster = create_roster(&app, &[("Ada", A), ("Bo", B)], json!({})).await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    for id in ["a1", "a2", "a3"] {
        alarm(&app, id, "FIRING").await;
        incident_where(&app, &alert, |i| i["subject"] == id).await;
    }
    let calls = wait_until("six calls to end", || async {
        let calls = phones.calls().await;
        (calls.len() == 6 && calls.iter().all(|c| !c["endedAt"].is_null())).then_some(calls)
    })
    .await;

    let at = |c: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(c[field].as_str().unwrap()).unwrap()
    };
    for pair in calls.windows(2) {
        let gap = at(&pair[1], "createdAt") - at(&pair[0], "createdAt");
        assert!(
            gap >= chrono::Duration::milliseconds(240),
            "calls {gap} apart at 4 a second"
        );
    }
    for number in [A, B] {
        let mine: Vec<&Value> = calls.iter().filter(|c| c["to"] == number).collect();
        assert_eq!(mine.len(), 3);
        for pair in mine.windows(2) {
            assert!(
                at(pair[1], "createdAt") >= at(pair[0], "endedAt"),
                "{number} was on two calls at once"
            );
        }
    }
    // First come, first served: each number is called for the incidents in the order they
    // opened.
    let mut incidents = app.incidents_of(&alert).await;
    incidents.sort_by_key(|i| i["id"].as_str().unwrap().to_owned());
    let mut sid_incident = std::collections::HashMap::new();
    for (n, incident) in incidents.iter().enumerate() {
        for entry in timeline(&app, incident["id"].as_str().unwrap()).await {
            if entry["kind"] == "call-placed" {
                sid_incident.insert(entry["detail"]["sid"].as_str().unwrap().to_owned(), n);
            }
        }
    }
    for number in [A, B] {
        let order: Vec<usize> = calls
            .iter()
            .filter(|c| c["to"] == number)
            .map(|c| sid_incident[c["sid"].as_str().unwrap()])
            .collect();
        assert_eq!(order, [0, 1, 2], "{number}");
    }
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_number_is_called_while_more_than_a_page_of_loops_wait_for_a_busy_one() {
    // A rings out slowly; every loop but the last waits for A.
    let phones = Phones::start(&[(A, "no-answer"), (B, "accept")]).await;
    let app = escalating_app(&phones).await;
    let only_a = create_roster(&app, &[("Ada", A)], json!({})).await;
    let only_b = create_roster(&app, &[("Bo", B)], json!({})).await;
    let mut alerts = Vec::new();
    for (integration, roster) in [("int1", &only_a), ("int2", &only_b)] {
        let alert = app
            .create_alert("cloud_alarm", Some(integration), json!({}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.wait_for_evaluation(&alert, None).await;
        app.send(
            Method::POST,
            "/routes",
            json!({"rosterId": roster, "match": {"alertId": alert}}),
            StatusCode::CREATED,
        )
        .await;
        alerts.push(alert);
    }
    let on_a = &alerts[0];
    // More loops wait for A than one read of the call queue returns (64).
    for n in 0..70 {
        alarm(&app, &format!("a{n}"), "FIRING").await;
    }
    wait_until("70 incidents for A", || async {
        let page = app
            .get(&format!("/incidents?alertId={on_a}&pageSize=100"))
            .await;
        (page["data"].as_array().unwrap().len() == 70).then_some(())
    })
    .await;
    app.put_entity(
        "ALARM",
        "b1",
        Some(("INTEGRATION", "int2")),
        json!({"source": "generic", "name": "DiskFull", "resource": "db-b1", "severity": "critical",
               "state": "FIRING", "summary": "disk full", "startedAt": "2026-03-04T09:58:00Z"}),
    )
    .await;
    // B is called while A still rings its first calls (each rings out in 3 s). Reading only
    // the first page of the queue, B would wait until A's queue was down to 63 loops.
    let calls = wait_until("a call to B", || async {
        let calls = phones.calls().await;
        calls.iter().any(|c| c["to"] == B).then_some(calls)
    })
    .await;
    let to_a = calls.iter().filter(|c| c["to"] == A).count();
    assert!(to_a <= 2, "B was called only after {to_a} calls to A");
    app.stop().await;
    phones.server.stop().await;
}

/// Runs a server in this process until it is killed: the child of
/// `a_server_killed_mid_ring_resumes_without_calling_twice`.
#[test]
#[ignore = "a child process of the SIGKILL test"]
fn child_server() {
    let Ok(dir) = std::env::var("TOCSIN_CHILD_DIR") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut config = test_config(std::path::Path::new(&dir));
        config.listen = std::env::var("TOCSIN_CHILD_LISTEN")
            .unwrap()
            .parse()
            .unwrap();
        config.twilio = Some(Account {
            sid: std::env::var("TOCSIN_CHILD_SID").unwrap(),
            auth_token: std::env::var("TOCSIN_CHILD_TOKEN").unwrap(),
            from: "+15550009999".into(),
            api_base: std::env::var("TOCSIN_CHILD_API").unwrap(),
        });
        config.calls_per_second = 50.0;
        let _server = tocsin::app::Server::start(config, Clock::System)
            .await
            .unwrap();
        std::future::pending::<()>().await;
    });
}

struct Child {
    process: std::process::Child,
}

impl Child {
    fn spawn(dir: &std::path::Path, listen: &str, phones: &Phones) -> Self {
        let process = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "escalation::child_server",
                "--nocapture",
            ])
            .env("TOCSIN_CHILD_DIR", dir)
            .env("TOCSIN_CHILD_LISTEN", listen)
            .env("TOCSIN_CHILD_SID", &phones.account.sid)
            .env("TOCSIN_CHILD_TOKEN", &phones.account.auth_token)
            .env("TOCSIN_CHILD_API", &phones.account.api_base)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Self { process }
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    fn kill(&mut self) {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    wait_until("the server to start", || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_ring_resumes_without_calling_twice() {
    // Bo lets it ring five seconds (50 at ten times speed), long enough to kill and restart
    // the server meanwhile.
    let phones = Phones::start(&[(A, "pass"), (B, "slow:50:accept"), (C, "accept")]).await;
    let dir = tempfile::tempdir().unwrap();
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    let mut child = Child::spawn(dir.path(), &listen, &phones);
    wait_healthy(&client, &base).await;
    let call = |method: Method, path: &str, body: Value| {
        let request = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(ADMIN_KEY)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.unwrap_or(Value::Null)
        }
    };
    let roster = call(Method::POST, "/rosters", json!({"name": "on-call", "loops": 1, "ringTimeoutSeconds": 120,
        "members": [{"name": "Ada", "phone": A}, {"name": "Bo", "phone": B}, {"name": "Cy", "phone": C}]})).await;
    call(Method::POST, "/routes", json!({"rosterId": roster["id"]})).await;
    let alert = call(
        Method::POST,
        "/alerts",
        json!({"alertTemplateId": "cloud_alarm", "interval": 60, "status": "ACTIVE",
        "parameters": {}, "ownerDetails": {"id": "int1"}}),
    )
    .await;
    call(Method::PUT, "/entities/ALARM/a1", json!({"ownerType": "INTEGRATION", "ownerId": "int1",
        "attributes": {"source": "generic", "name": "DiskFull", "resource": "db-1", "severity": "critical",
                       "state": "FIRING", "summary": "disk full", "startedAt": "2026-03-04T09:58:00Z"}})).await;

    wait_until("Bo's phone to ring", || async {
        let calls = phones.calls().await;
        (calls.len() == 2 && calls[1]["status"] == "ringing").then_some(())
    })
    .await;
    child.kill();
    let mut child = Child::spawn(dir.path(), &listen, &phones);
    wait_healthy(&client, &base).await;

    let alert_id = alert["id"].as_str().unwrap();
    let incident = wait_until("Bo to accept", || async {
        let page = call(
            Method::GET,
            &format!("/incidents?alertId={alert_id}"),
            Value::Null,
        )
        .await;
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["status"] == "ACKNOWLEDGED")
            .cloned()
    })
    .await;
    let incident = call(
        Method::GET,
        &format!("/incidents/{}/details", incident["id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    assert_eq!(incident["acknowledgedBy"], "Bo");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        phones.called().await,
        [A, B],
        "no step dialed twice, nobody after Bo"
    );
    let timeline = call(
        Method::GET,
        &format!("/incidents/{}/timeline", incident["id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    let timeline = timeline["data"].as_array().unwrap();
    assert_eq!(count(timeline, "call-started"), 2);
    assert_eq!(count(timeline, "acknowledged"), 1);
    TwilioSpec::load().check_all(&phones.requests().await);
    child.kill();
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_and_failing_move_on_and_star_repeats_the_prompt() {
    let phones = Phones::start(&[(A, "hang-up"), (B, "failed"), (C, "keys:*1")]).await;
    let app = escalating_app(&phones).await;
    let roster = create_roster(&app, &[("Ada", A), ("Bo", B), ("Cy", C)], json!({})).await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;

    let incident = incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    assert_eq!(incident["acknowledgedBy"], "Cy");
    let calls = phones.calls().await;
    assert_eq!(phones.called().await, [A, B, C]);
    assert_eq!(calls[0]["digits"], json!([]));
    assert_eq!(calls[1]["status"], "failed");
    assert_eq!(calls[2]["digits"], json!(["*", "1"]));
    let heard = calls[2]["heard"].as_array().unwrap();
    assert_eq!(heard[0], heard[1], "star repeats the prompt");
    let timeline = timeline(&app, incident["id"].as_str().unwrap()).await;
    let outcomes: Vec<&str> = timeline
        .iter()
        .filter(|e| e["kind"] == "call-outcome")
        .map(|e| e["detail"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["no-key-press", "failed", "accepted"]);
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_bad_requests_with_twilios_errors() {
    use tocsin_twilio::{Client, Error, NewCall};
    let phones = Phones::start(&[]).await;
    let call = |to: &'static str| NewCall {
        to,
        voice_url: "http://127.0.0.1:9/voice",
        status_callback: "http://127.0.0.1:9/status",
        ring_timeout_seconds: 30,
    };
    let client = Client::new(phones.account.clone());
    match client.create_call(&call("555-0100")).await {
        Err(Error::Api {
            status: 400,
            code: Some(21211),
            message,
        }) => {
            assert!(message.contains("555-0100"), "{message}")
        }
        other => panic!("a bad To: {other:?}"),
    }
    let wrong = Client::new(Account {
        auth_token: "wrong".into(),
        ..phones.account.clone()
    });
    match wrong.create_call(&call(A)).await {
        Err(Error::Api {
            status: 401,
            code: Some(20003),
            ..
        }) => {}
        other => panic!("bad credentials: {other:?}"),
    }
    match client
        .fetch_call("CA00000000000000000000000000000000")
        .await
    {
        Err(Error::Api {
            status: 404,
            code: Some(20404),
            ..
        }) => {}
        other => panic!("an unknown call: {other:?}"),
    }
    let placed = client.create_call(&call(A)).await.unwrap();
    assert!(placed.sid.starts_with("CA") && placed.sid.len() == 34);
    let ended = client.end_call(&placed.sid).await.unwrap();
    assert_eq!(ended.status, tocsin_twilio::CallStatus::Canceled);
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_alarm_rings_an_operator_and_its_resolution_closes_the_incident() {
    let phones = Phones::start(&[(A, "accept")]).await;
    let app = escalating_app(&phones).await;
    let roster = create_roster(&app, &[("Ada", A)], json!({})).await;
    route_all_to(&app, &roster).await;
    let created = app
        .send(
            Method::POST,
            "/integrations",
            json!({"name": "prometheus", "kind": "alertmanager"}),
            StatusCode::CREATED,
        )
        .await;
    let (id, secret) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let alert = created["alertId"].as_str().unwrap();
    let firing = std::fs::read(
        tocsin_tests::workspace().join("../shared/fixtures/webhooks/alertmanager_v4-firing.json"),
    )
    .unwrap();
    let post = |body: Vec<u8>| {
        app.client
            .post(format!("{}/hooks/{id}", app.base))
            .bearer_auth(secret)
            .body(body)
            .send()
    };
    assert_eq!(post(firing.clone()).await.unwrap().status(), StatusCode::OK);

    // Three alarms, three incidents; Ada takes each, one call at a time.
    let acknowledged = wait_until("Ada to accept all three", || async {
        let incidents = app.incidents_of(alert).await;
        (incidents.len() == 3 && incidents.iter().all(|i| i["status"] == "ACKNOWLEDGED"))
            .then_some(incidents)
    })
    .await;
    assert!(acknowledged.iter().all(|i| i["acknowledgedBy"] == "Ada"));
    assert_eq!(phones.called().await, [A, A, A]);

    let mut resolved: Value = serde_json::from_slice(&firing).unwrap();
    resolved["status"] = json!("resolved");
    for alarm in resolved["alerts"].as_array_mut().unwrap() {
        alarm["status"] = json!("resolved");
    }
    assert_eq!(
        post(resolved.to_string().into_bytes())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let closed = wait_until("the incidents to close", || async {
        let incidents = app.incidents_of(alert).await;
        incidents
            .iter()
            .all(|i| i["status"] == "CLOSED")
            .then_some(incidents)
    })
    .await;
    assert!(
        closed.iter().all(|i| i["closedBy"] == "auto-resolve"),
        "{closed:?}"
    );
    assert_eq!(phones.calls().await.len(), 3);
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_full_of_control_characters_is_still_spoken_and_accepted() {
    let phones = Phones::start(&[(A, "accept")]).await;
    let app = escalating_app(&phones).await;
    let roster = create_roster(&app, &[("Ada\u{7}\u{0}", A)], json!({})).await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    app.put_entity(
        "ALARM",
        "a1",
        Some(("INTEGRATION", "int1")),
        json!({"source": "generic", "name": "DiskFull", "resource": "db-1", "severity": "critical",
               "state": "FIRING", "summary": "disk\u{0}full\u{b}on \u{1b}[31mdb-1\u{FFFE}\u{202E} <now> & \"then\"",
               "startedAt": "2026-03-04T09:58:00Z"}),
    )
    .await;

    let incident = incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    assert_eq!(incident["acknowledgedBy"], "Ada\u{7}\u{0}");
    let calls = phones.calls().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["digits"], json!(["1"]));
    let heard = calls[0]["heard"][0].as_str().unwrap();
    assert!(
        heard.starts_with("This is Tocsin. Ada, an incident needs you: ")
            && heard.contains("disk full on [31mdb-1 <now> & \"then\". Press 1 to accept"),
        "{heard:?}"
    );
    assert!(!heard.chars().any(char::is_control), "{heard:?}");
    app.stop().await;
    phones.server.stop().await;
}

/// A call whose placing request Twilio answers too late (the request timed out here) and
/// whose callbacks never arrive (here the public URL leads nowhere, as for the callbacks of
/// a node that died) is found at Twilio by its number and time: the loop goes on from how
/// it really went, within the sweep's 30 s, instead of waiting the ring timeout and a
/// minute more to give it up as lost; its step is not dialed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_placing_was_never_answered_here_is_found_at_twilio() {
    // Twilio's reply to Ada's placing comes after 30 s (300 at ten times speed), past the
    // client's 15 s.
    let phones = Phones::start(&[(A, "late-reply:300:accept"), (B, "accept")]).await;
    let nowhere = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_with(dir, Clock::System, |config| {
        phones.configure(config);
        config.public_url = Some(format!("http://{nowhere}"));
    })
    .await;
    let roster = create_roster(
        &app,
        &[("Ada", A), ("Bo", B)],
        json!({"ringTimeoutSeconds": 60}),
    )
    .await;
    route_all_to(&app, &roster).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;

    // Given up as lost, Ada's call would let Bo be dialed 120 s after it was placed.
    let started = Instant::now();
    loop {
        if phones.called().await.len() >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(75),
            "Bo was not dialed: {:?}",
            phones.calls().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(phones.called().await, [A, B], "Ada's step dialed once");
    let incident = app.incidents_of(&alert).await.remove(0);
    let timeline = timeline(&app, incident["id"].as_str().unwrap()).await;
    let ada_sid = phones.calls().await[0]["sid"].clone();
    let outcomes: Vec<&Value> = timeline
        .iter()
        .filter(|e| e["kind"] == "call-outcome")
        .map(|e| &e["detail"])
        .collect();
    assert!(
        outcomes.iter().all(|o| o["outcome"] != "lost"),
        "{outcomes:?}"
    );
    assert!(
        timeline
            .iter()
            .any(|e| e["detail"].to_string().contains(ada_sid.as_str().unwrap())),
        "Ada's call is known by Twilio's SID: {timeline:?}"
    );
    let requests = phones.requests().await;
    assert!(
        requests
            .iter()
            .any(|r| r["method"] == "GET" && r["path"].as_str().unwrap().ends_with("/Calls.json")),
        "looked for at Twilio by listing its calls"
    );
    TwilioSpec::load().check_all(&requests);
    app.stop().await;
    phones.server.stop().await;
}

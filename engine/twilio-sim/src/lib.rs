//! The Twilio simulator: Twilio's call API (`Calls.json`, `Calls/{sid}.json`) and messages
//! (`Messages.json`, with replies scripted per number: `PUT /sim/replies/{number}`), with the
//! same request parameters, response fields, status codes and error bodies, whose "phones"
//! are scripted operators. It drives the caller's voice and status webhooks with Twilio's
//! parameter names and valid `X-Twilio-Signature`s, and records every call, prompt and key
//! press (`GET /sim/calls`), every message (`GET /sim/messages`) and every API request
//! (`GET /sim/requests`).
//!
//! Time runs `speed` times faster than real: ring timeouts, gather timeouts and speech.

pub mod twiml;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tocsin_twilio::twiml::Verb;
use tocsin_twilio::{CallStatus, is_e164, signature};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// What a simulated phone does when called.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Answers, listens, presses 1.
    Accept,
    /// Answers, listens, presses 2.
    Pass,
    /// Answers and presses these keys, one per prompt, then stays silent.
    Keys(String),
    /// Rings until the call's timeout.
    NoAnswer,
    /// The line is busy.
    Busy,
    /// The call cannot be placed.
    Failed,
    /// A voicemail box: answers, listens, never presses a key.
    Voicemail,
    /// Answers and hangs up in the middle of the first prompt.
    HangUp,
    /// Answers the request that places the call only after `seconds` (the call goes on
    /// meanwhile), as when Twilio's reply is lost on the way; the call behaves as `then`.
    LateReply {
        /// Seconds before the reply.
        seconds: f64,
        /// How the call goes.
        then: Box<Behaviour>,
    },
    /// Rings for `seconds`, then behaves as `then` (rings out if that is past the timeout).
    Slow {
        /// Seconds of ringing before the answer.
        seconds: f64,
        /// What happens then.
        then: Box<Behaviour>,
    },
}

impl FromStr for Behaviour {
    type Err = String;

    /// `accept`, `pass`, `keys:<digits>`, `no-answer`, `busy`, `failed`, `voicemail`,
    /// `hang-up`, `slow:<seconds>:<behaviour>`, `late-reply:<seconds>:<behaviour>`.
    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "accept" => Self::Accept,
            "pass" => Self::Pass,
            "no-answer" => Self::NoAnswer,
            "busy" => Self::Busy,
            "failed" => Self::Failed,
            "voicemail" => Self::Voicemail,
            "hang-up" => Self::HangUp,
            _ => {
                if let Some(keys) = text.strip_prefix("keys:") {
                    Self::Keys(keys.to_owned())
                } else if let Some(rest) = text.strip_prefix("late-reply:") {
                    let (seconds, then) = rest.split_once(':').ok_or_else(|| {
                        format!("{text:?}: expected late-reply:<seconds>:<behaviour>")
                    })?;
                    Self::LateReply {
                        seconds: seconds
                            .parse()
                            .map_err(|e| format!("{text:?}: seconds: {e}"))?,
                        then: Box::new(then.parse()?),
                    }
                } else if let Some(rest) = text.strip_prefix("slow:") {
                    let (seconds, then) = rest
                        .split_once(':')
                        .ok_or_else(|| format!("{text:?}: expected slow:<seconds>:<behaviour>"))?;
                    Self::Slow {
                        seconds: seconds
                            .parse()
                            .map_err(|e| format!("{text:?}: seconds: {e}"))?,
                        then: Box::new(then.parse()?),
                    }
                } else {
                    return Err(format!(
                        "unknown behaviour {text:?}; expected accept, pass, keys:<digits>, no-answer, busy, failed, voicemail, hang-up, slow:<seconds>:<behaviour> or late-reply:<seconds>:<behaviour>"
                    ));
                }
            }
        })
    }
}

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The one account it knows (`AC` + 32 hex digits).
    pub account_sid: String,
    /// That account's auth token: checks API requests, signs webhooks.
    pub auth_token: String,
    /// How much faster than real time it runs.
    pub speed: f64,
    /// What numbers without a script do.
    pub default_behaviour: Behaviour,
    /// Scripted numbers.
    pub numbers: HashMap<String, Behaviour>,
    /// Where the times it records and signs come from: the caller's clock.
    pub clock: SimClock,
}

/// The clock a simulator reads: the system's by default, or the one its user injects.
#[derive(Clone)]
pub struct SimClock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl SimClock {
    /// Reads `now` for the time.
    pub fn new(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for SimClock {
    fn default() -> Self {
        Self::new(Utc::now)
    }
}

impl std::fmt::Debug for SimClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SimClock").field(&self.now()).finish()
    }
}

impl SimConfig {
    /// A fresh random account, real time, every number unanswered unless scripted.
    pub fn new() -> Self {
        Self {
            account_sid: format!("AC{}", random_hex()),
            auth_token: random_hex(),
            speed: 1.0,
            default_behaviour: Behaviour::NoAnswer,
            numbers: HashMap::new(),
            clock: SimClock::default(),
        }
    }
}

/// 32 random hex digits, the tail of Twilio's SIDs.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    hex::encode(bytes)
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// One step of a simulated call.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub what: String,
}

/// A simulated call, as `GET /sim/calls` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimCall {
    /// `CA…`.
    pub sid: String,
    /// Called number.
    pub to: String,
    /// Caller id.
    pub from: String,
    /// Twilio status.
    pub status: CallStatus,
    /// The script the number followed.
    pub behaviour: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Whether an API request ended it.
    pub ended_by_api: bool,
    /// Keys pressed.
    pub digits: Vec<String>,
    /// What the caller heard.
    pub heard: Vec<String>,
    /// Every step.
    pub log: Vec<LogEntry>,
    #[serde(skip)]
    url: String,
    #[serde(skip)]
    status_callback: Option<String>,
    #[serde(skip)]
    events: Vec<String>,
    #[serde(skip)]
    timeout: u32,
    #[serde(skip)]
    sequence: u32,
}

/// An API request the simulator received.
#[derive(Debug, Clone, Serialize)]
pub struct ApiRequest {
    /// When.
    pub at: DateTime<Utc>,
    /// `GET` or `POST`.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query or form parameters, in order.
    pub params: Vec<(String, String)>,
}

struct Sim {
    config: SimConfig,
    http: reqwest::Client,
    numbers: Mutex<HashMap<String, Behaviour>>,
    calls: Mutex<Vec<SimCall>>,
    ends: Mutex<HashMap<String, Arc<Notify>>>,
    requests: Mutex<Vec<ApiRequest>>,
    messages: Mutex<Vec<SimMessage>>,
    replies: Mutex<HashMap<String, ScriptedReply>>,
}

/// A text message the simulator was asked to send.
#[derive(Debug, Clone, Serialize)]
pub struct SimMessage {
    /// `SM…`.
    pub sid: String,
    /// To.
    pub to: String,
    /// From.
    pub from: String,
    /// What it says.
    pub body: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// How a number answers a text: `reply`, posted (signed) to `webhook` as Twilio posts an
/// incoming message to the number's messaging URL.
#[derive(Debug, Clone, Deserialize)]
pub struct ScriptedReply {
    /// The reply's body.
    pub reply: String,
    /// Where incoming messages go (the caller's `/twilio/sms`).
    pub webhook: String,
}

type Shared = Arc<Sim>;

/// A running simulator.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl SimServer {
    /// Serves the simulator on `listen`.
    pub async fn start(config: SimConfig, listen: SocketAddr) -> std::io::Result<Self> {
        let sim = Arc::new(Sim {
            numbers: Mutex::new(config.numbers.clone()),
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .expect("an HTTP client without TLS settings builds"),
            calls: Mutex::default(),
            ends: Mutex::default(),
            requests: Mutex::default(),
            messages: Mutex::default(),
            replies: Mutex::default(),
        });
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create_call).get(list_calls),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{file}",
                get(fetch_call).post(update_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(create_message),
            )
            .route("/sim/messages", get(sim_messages))
            .route("/sim/replies/{number}", put(script_reply))
            .route("/sim/calls", get(sim_calls))
            .route("/sim/requests", get(sim_requests))
            .route("/sim/numbers/{number}", put(script_number))
            .fallback(|| async {
                twilio_error(
                    StatusCode::NOT_FOUND,
                    20404,
                    "The requested resource was not found",
                )
            })
            .with_state(sim);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await;
        });
        tracing::info!(%addr, "Twilio simulator serving");
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give a Twilio client (`TWILIO_API_BASE`).
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving. Calls in progress stop where they are.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Twilio's error body: `code`, `message`, `more_info`, `status`.
#[derive(Debug)]
struct TwilioError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({
                "code": self.code,
                "message": self.message,
                "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
                "status": self.status.as_u16(),
            })),
        )
            .into_response()
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    fail(status, code, message).into_response()
}

fn fail(status: StatusCode, code: u32, message: &str) -> TwilioError {
    TwilioError {
        status,
        code,
        message: message.to_owned(),
    }
}

fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

impl Sim {
    /// Checks basic auth and the account in the path, as Twilio does.
    fn authorize(&self, headers: &HeaderMap, account: &str) -> Result<(), TwilioError> {
        let credentials = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        let expected = format!("{}:{}", self.config.account_sid, self.config.auth_token);
        if credentials.as_deref() != Some(expected.as_str()) {
            return Err(fail(StatusCode::UNAUTHORIZED, 20003, "Authenticate"));
        }
        if account != self.config.account_sid {
            return Err(fail(
                StatusCode::NOT_FOUND,
                20404,
                &format!(
                    "The requested resource /2010-04-01/Accounts/{account}/Calls.json was not found"
                ),
            ));
        }
        Ok(())
    }

    fn record_request(&self, method: &str, path: String, params: &[(String, String)]) {
        self.requests.lock().expect("sim lock").push(ApiRequest {
            at: self.now(),
            method: method.into(),
            path,
            params: params.to_vec(),
        });
    }

    fn resource(&self, call: &SimCall) -> Value {
        let base = format!(
            "/2010-04-01/Accounts/{}/Calls/{}",
            self.config.account_sid, call.sid
        );
        let duration = match (call.answered_at, call.ended_at) {
            (Some(a), Some(e)) => Some((e - a).num_seconds().to_string()),
            (None, Some(_)) => Some("0".to_owned()),
            _ => None,
        };
        json!({
            "sid": call.sid,
            "date_created": rfc2822(call.created_at),
            "date_updated": rfc2822(call.log.last().map_or(call.created_at, |l| l.at)),
            "parent_call_sid": null,
            "account_sid": self.config.account_sid,
            "to": call.to,
            "to_formatted": call.to,
            "from": call.from,
            "from_formatted": call.from,
            "phone_number_sid": null,
            "status": call.status,
            "start_time": call.answered_at.map(rfc2822),
            "end_time": call.ended_at.map(rfc2822),
            "duration": duration,
            "price": null,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": null,
            "api_version": "2010-04-01",
            "forwarded_from": null,
            "group_sid": null,
            "caller_name": null,
            "queue_time": "0",
            "trunk_sid": null,
            "uri": format!("{base}.json"),
            "subresource_uris": {
                "notifications": format!("{base}/Notifications.json"),
                "recordings": format!("{base}/Recordings.json"),
                "payments": format!("{base}/Payments.json"),
                "events": format!("{base}/Events.json"),
                "siprec": format!("{base}/Siprec.json"),
                "streams": format!("{base}/Streams.json"),
                "transcriptions": format!("{base}/Transcriptions.json"),
                "user_defined_message_subscriptions": format!("{base}/UserDefinedMessageSubscriptions.json"),
                "user_defined_messages": format!("{base}/UserDefinedMessages.json"),
            },
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.config.clock.now()
    }

    fn with_call<T>(&self, sid: &str, f: impl FnOnce(&mut SimCall) -> T) -> Option<T> {
        let mut calls = self.calls.lock().expect("sim lock");
        calls.iter_mut().find(|c| c.sid == sid).map(f)
    }

    fn log(&self, sid: &str, what: impl Into<String>) {
        let what = what.into();
        tracing::debug!(call = %sid, "{what}");
        self.with_call(sid, |c| {
            c.log.push(LogEntry {
                at: self.now(),
                what,
            })
        });
    }

    fn pause(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds / self.config.speed).max(0.0))
    }
}

fn form(body: &[u8]) -> Result<Vec<(String, String)>, TwilioError> {
    serde_urlencoded::from_bytes(body).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            20001,
            &format!("The request body is not form-encoded: {e}"),
        )
    })
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn create_call(
    State(sim): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let params = match form(&body) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    sim.record_request(
        "POST",
        format!("/2010-04-01/Accounts/{account}/Calls.json"),
        &params,
    );
    if let Err(r) = sim.authorize(&headers, &account) {
        return r.into_response();
    }
    let Some(to) = param(&params, "To") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21201,
            "No 'To' number is specified",
        );
    };
    if !is_e164(to) {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("Invalid 'To' Phone Number: {to}"),
        );
    }
    let Some(from) = param(&params, "From") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    };
    let Some(url) = param(&params, "Url") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21205, "Url parameter is required.");
    };
    if reqwest::Url::parse(url).is_err() {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21205,
            &format!("Url is not a valid URL: {url}"),
        );
    }
    let timeout = match param(&params, "Timeout").map(str::parse::<u32>) {
        None => 60,
        Some(Ok(t)) => t.clamp(1, 600),
        Some(Err(_)) => {
            return twilio_error(StatusCode::BAD_REQUEST, 21216, "Timeout must be an integer");
        }
    };
    let behaviour = sim
        .numbers
        .lock()
        .expect("sim lock")
        .get(to)
        .cloned()
        .unwrap_or_else(|| sim.config.default_behaviour.clone());
    let (reply_after, behaviour) = match behaviour {
        Behaviour::LateReply { seconds, then } => (seconds, *then),
        behaviour => (0.0, behaviour),
    };
    let mut events: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    if events.is_empty() {
        events.push("completed".into());
    }
    let sid = format!("CA{}", random_hex());
    let call = SimCall {
        sid: sid.clone(),
        to: to.to_owned(),
        from: from.to_owned(),
        status: CallStatus::Queued,
        behaviour: format!("{behaviour:?}"),
        created_at: sim.now(),
        answered_at: None,
        ended_at: None,
        ended_by_api: false,
        digits: Vec::new(),
        heard: Vec::new(),
        log: vec![LogEntry {
            at: sim.now(),
            what: "queued".into(),
        }],
        url: url.to_owned(),
        status_callback: param(&params, "StatusCallback").map(str::to_owned),
        events,
        timeout,
        sequence: 0,
    };
    let resource = sim.resource(&call);
    sim.calls.lock().expect("sim lock").push(call);
    let end = Arc::new(Notify::new());
    sim.ends
        .lock()
        .expect("sim lock")
        .insert(sid.clone(), end.clone());
    tracing::info!(call = %sid, %to, ?behaviour, "simulated call placed");
    tokio::spawn(drive(sim.clone(), sid, behaviour, end));
    if reply_after > 0.0 {
        tokio::time::sleep(sim.pause(reply_after)).await;
    }
    (StatusCode::CREATED, Json(resource)).into_response()
}

async fn list_calls(
    State(sim): State<Shared>,
    Path(account): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    sim.record_request(
        "GET",
        format!("/2010-04-01/Accounts/{account}/Calls.json"),
        &query,
    );
    if let Err(r) = sim.authorize(&headers, &account) {
        return r.into_response();
    }
    let to = param(&query, "To");
    let status = param(&query, "Status");
    let page_size: usize = param(&query, "PageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let calls: Vec<Value> = sim
        .calls
        .lock()
        .expect("sim lock")
        .iter()
        .rev()
        .filter(|c| to.is_none_or(|t| c.to == t))
        .filter(|c| status.is_none_or(|s| c.status.as_str() == s))
        .take(page_size)
        .map(|c| sim.resource(c))
        .collect();
    let uri = format!("/2010-04-01/Accounts/{account}/Calls.json?PageSize={page_size}&Page=0");
    Json(json!({
        "calls": calls,
        "end": calls.len().saturating_sub(1),
        "first_page_uri": uri,
        "next_page_uri": null,
        "page": 0,
        "page_size": page_size,
        "previous_page_uri": null,
        "start": 0,
        "uri": uri,
    }))
    .into_response()
}

fn sid_of(file: &str) -> &str {
    file.strip_suffix(".json").unwrap_or(file)
}

fn not_found(account: &str, file: &str) -> Response {
    twilio_error(
        StatusCode::NOT_FOUND,
        20404,
        &format!(
            "The requested resource /2010-04-01/Accounts/{account}/Calls/{file} was not found"
        ),
    )
}

async fn fetch_call(
    State(sim): State<Shared>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    sim.record_request(
        "GET",
        format!("/2010-04-01/Accounts/{account}/Calls/{file}"),
        &[],
    );
    if let Err(r) = sim.authorize(&headers, &account) {
        return r.into_response();
    }
    let sid = sid_of(&file);
    match sim.with_call(sid, |c| sim.resource(c)) {
        Some(resource) => Json(resource).into_response(),
        None => not_found(&account, &file),
    }
}

async fn update_call(
    State(sim): State<Shared>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let params = match form(&body) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    sim.record_request(
        "POST",
        format!("/2010-04-01/Accounts/{account}/Calls/{file}"),
        &params,
    );
    if let Err(r) = sim.authorize(&headers, &account) {
        return r.into_response();
    }
    let sid = sid_of(&file);
    let wanted = match param(&params, "Status") {
        None => None,
        Some("canceled") => Some(CallStatus::Canceled),
        Some("completed") => Some(CallStatus::Completed),
        Some(other) => {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                21218,
                &format!("Invalid Status {other:?}: expected canceled or completed"),
            );
        }
    };
    let ended = sim.with_call(sid, |c| {
        let applies = match wanted {
            Some(CallStatus::Canceled) => c.status.rank() <= CallStatus::Ringing.rank(),
            Some(CallStatus::Completed) => c.status == CallStatus::InProgress,
            _ => false,
        };
        if applies {
            c.status = wanted.expect("applies only with a status");
            c.ended_by_api = true;
            c.ended_at = Some(sim.now());
            c.log.push(LogEntry {
                at: sim.now(),
                what: format!("ended by API: {}", c.status.as_str()),
            });
        }
        (applies, sim.resource(c))
    });
    let Some((applies, resource)) = ended else {
        return not_found(&account, &file);
    };
    if applies && let Some(end) = sim.ends.lock().expect("sim lock").get(sid) {
        end.notify_one();
    }
    Json(resource).into_response()
}

/// Twilio's longest message body, in characters.
const BODY_LIMIT: usize = 1_600;

/// `POST Messages.json`: records the message and, when its number has a scripted reply,
/// posts the reply to that number's webhook a moment later, signed like Twilio's.
async fn create_message(
    State(sim): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let params = match form(&body) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    sim.record_request(
        "POST",
        format!("/2010-04-01/Accounts/{account}/Messages.json"),
        &params,
    );
    if let Err(r) = sim.authorize(&headers, &account) {
        return r.into_response();
    }
    let Some(to) = param(&params, "To").filter(|to| is_e164(to)) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            "The 'To' number is not a valid phone number.",
        );
    };
    let Some(from) = param(&params, "From") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    };
    let Some(text) = param(&params, "Body").filter(|b| !b.is_empty()) else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    if text.chars().count() > BODY_LIMIT {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }
    let message = SimMessage {
        sid: format!("SM{}", random_hex()),
        to: to.to_owned(),
        from: from.to_owned(),
        body: text.to_owned(),
        at: sim.now(),
    };
    sim.messages.lock().expect("sim lock").push(message.clone());
    let scripted = sim.replies.lock().expect("sim lock").get(to).cloned();
    if let Some(script) = scripted {
        let sim = sim.clone();
        let message = message.clone();
        tokio::spawn(async move {
            tokio::time::sleep(sim.pause(2.0)).await;
            let params: Vec<(String, String)> = [
                ("AccountSid", sim.config.account_sid.as_str()),
                ("ApiVersion", "2010-04-01"),
                ("Body", script.reply.as_str()),
                ("From", message.to.as_str()),
                ("MessageSid", &format!("SM{}", random_hex())),
                ("NumMedia", "0"),
                ("To", message.from.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            if let Err(e) = post_signed(&sim, &script.webhook, &params).await {
                tracing::warn!(error = %e, "the simulator's scripted reply was refused");
            }
        });
    }
    let now = rfc2822(message.at);
    (
        StatusCode::CREATED,
        Json(json!({
            "account_sid": sim.config.account_sid,
            "api_version": "2010-04-01",
            "body": message.body,
            "date_created": now,
            "date_sent": null,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": message.from,
            "messaging_service_sid": null,
            "num_media": "0",
            "num_segments": (message.body.chars().count().div_ceil(153)).max(1).to_string(),
            "price": null,
            "price_unit": "USD",
            "sid": message.sid,
            "status": "queued",
            "subresource_uris": {"media": format!("/2010-04-01/Accounts/{account}/Messages/{}/Media.json", message.sid)},
            "to": message.to,
            "uri": format!("/2010-04-01/Accounts/{account}/Messages/{}.json", message.sid),
        })),
    )
        .into_response()
}

async fn sim_messages(State(sim): State<Shared>) -> Json<Vec<SimMessage>> {
    Json(sim.messages.lock().expect("sim lock").clone())
}

async fn script_reply(
    State(sim): State<Shared>,
    Path(number): Path<String>,
    Json(script): Json<ScriptedReply>,
) -> StatusCode {
    sim.replies.lock().expect("sim lock").insert(number, script);
    StatusCode::NO_CONTENT
}

async fn sim_calls(State(sim): State<Shared>) -> Json<Vec<SimCall>> {
    Json(sim.calls.lock().expect("sim lock").clone())
}

async fn sim_requests(State(sim): State<Shared>) -> Json<Vec<ApiRequest>> {
    Json(sim.requests.lock().expect("sim lock").clone())
}

async fn script_number(
    State(sim): State<Shared>,
    Path(number): Path<String>,
    body: String,
) -> Response {
    match body.trim().parse::<Behaviour>() {
        Ok(behaviour) => {
            sim.numbers
                .lock()
                .expect("sim lock")
                .insert(number, behaviour);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    }
}

/// How a call ended, from the driver's side.
enum End {
    /// An API request ended it (its status is already set).
    ByApi,
    /// It ended with this status.
    With(CallStatus),
}

/// Plays one call through: ringing, answering per the script, the TwiML conversation with
/// the caller's webhooks, and the status callbacks.
async fn drive(sim: Shared, sid: String, behaviour: Behaviour, end: Arc<Notify>) {
    let end_status = match converse(&sim, &sid, behaviour, &end).await {
        End::ByApi => sim.with_call(&sid, |c| c.status),
        End::With(status) => sim.with_call(&sid, |c| {
            if !c.status.is_final() {
                c.status = status;
                c.ended_at = Some(sim.now());
            }
            c.status
        }),
    };
    if let Some(status) = end_status {
        sim.log(&sid, format!("ended: {}", status.as_str()));
        callback(&sim, &sid, "completed").await;
    }
    sim.ends.lock().expect("sim lock").remove(&sid);
}

/// Waits `seconds` of simulated time; false when an API request ended the call meanwhile.
async fn hold(sim: &Sim, end: &Notify, seconds: f64) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(sim.pause(seconds)) => true,
        _ = end.notified() => false,
    }
}

fn set_status(sim: &Sim, sid: &str, status: CallStatus) {
    sim.with_call(sid, |c| {
        c.status = status;
        if status == CallStatus::InProgress {
            c.answered_at = Some(sim.now());
        }
    });
    sim.log(sid, status.as_str());
}

async fn converse(sim: &Shared, sid: &str, mut behaviour: Behaviour, end: &Notify) -> End {
    let timeout = sim.with_call(sid, |c| c.timeout).unwrap_or(60) as f64;
    callback(sim, sid, "initiated").await;
    if !hold(sim, end, 0.2).await {
        return End::ByApi;
    }
    set_status(sim, sid, CallStatus::Ringing);
    callback(sim, sid, "ringing").await;
    let mut ring = 1.0;
    if let Behaviour::Slow { seconds, then } = behaviour {
        ring = seconds;
        behaviour = *then;
    }
    match behaviour {
        Behaviour::Failed => return End::With(CallStatus::Failed),
        Behaviour::Busy => {
            return if hold(sim, end, 0.5).await {
                End::With(CallStatus::Busy)
            } else {
                End::ByApi
            };
        }
        Behaviour::NoAnswer => ring = timeout,
        _ => {}
    }
    if ring >= timeout {
        return if hold(sim, end, timeout).await {
            End::With(CallStatus::NoAnswer)
        } else {
            End::ByApi
        };
    }
    if !hold(sim, end, ring).await {
        return End::ByApi;
    }
    set_status(sim, sid, CallStatus::InProgress);
    callback(sim, sid, "answered").await;

    let mut keys: std::collections::VecDeque<char> = match &behaviour {
        Behaviour::Accept => "1".chars().collect(),
        Behaviour::Pass => "2".chars().collect(),
        Behaviour::Keys(keys) => keys.chars().collect(),
        _ => Default::default(),
    };
    let hang_up = behaviour == Behaviour::HangUp;
    let Some(mut url) = sim.with_call(sid, |c| c.url.clone()) else {
        return End::With(CallStatus::Completed);
    };
    let mut extra: Vec<(String, String)> = Vec::new();
    // Twilio follows at most this many documents in one call; ours needs a handful.
    for _ in 0..20 {
        let document = match webhook(sim, sid, &url, std::mem::take(&mut extra)).await {
            Ok(document) => document,
            Err(problem) => {
                sim.log(sid, format!("application error: {problem}"));
                return End::With(CallStatus::Completed);
            }
        };
        let verbs = match twiml::parse(&document) {
            Ok(verbs) => verbs,
            Err(problem) => {
                sim.log(sid, format!("application error: {problem}"));
                return End::With(CallStatus::Completed);
            }
        };
        let mut next = None;
        for verb in verbs {
            match verb {
                Verb::Say(text) => {
                    if !say(sim, sid, end, &text, hang_up).await {
                        return end_of(sim, sid, hang_up);
                    }
                }
                Verb::Gather {
                    action,
                    timeout,
                    say: texts,
                } => {
                    for text in &texts {
                        if !say(sim, sid, end, text, hang_up).await {
                            return end_of(sim, sid, hang_up);
                        }
                    }
                    if let Some(key) = keys.pop_front() {
                        if !hold(sim, end, 0.3).await {
                            return End::ByApi;
                        }
                        sim.with_call(sid, |c| c.digits.push(key.to_string()));
                        sim.log(sid, format!("pressed {key}"));
                        extra = vec![("Digits".into(), key.to_string())];
                        next = Some(action);
                        break;
                    }
                    sim.log(sid, "silence");
                    if !hold(sim, end, f64::from(timeout)).await {
                        return End::ByApi;
                    }
                }
                Verb::Redirect(target) => {
                    next = Some(target);
                    break;
                }
                Verb::Hangup => return End::With(CallStatus::Completed),
            }
        }
        match next {
            Some(target) => {
                url = match reqwest::Url::parse(&url).and_then(|base| base.join(&target)) {
                    Ok(joined) => joined.to_string(),
                    Err(e) => {
                        sim.log(sid, format!("application error: bad URL {target:?}: {e}"));
                        return End::With(CallStatus::Completed);
                    }
                }
            }
            None => return End::With(CallStatus::Completed),
        }
    }
    End::With(CallStatus::Completed)
}

fn end_of(sim: &Sim, sid: &str, hung_up: bool) -> End {
    if hung_up {
        sim.log(sid, "hung up mid-prompt");
        End::With(CallStatus::Completed)
    } else {
        End::ByApi
    }
}

/// Speaks `text`, a third of a second a word; false when the call ended meanwhile (or the
/// operator hangs up halfway, when `hang_up`).
async fn say(sim: &Sim, sid: &str, end: &Notify, text: &str, hang_up: bool) -> bool {
    sim.with_call(sid, |c| c.heard.push(text.to_owned()));
    let seconds = 0.3 * text.split_whitespace().count().max(1) as f64;
    if hang_up {
        let _ = hold(sim, end, seconds / 2.0).await;
        return false;
    }
    hold(sim, end, seconds).await
}

fn base_params(sim: &Sim, call: &SimCall) -> Vec<(String, String)> {
    [
        ("AccountSid", sim.config.account_sid.as_str()),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", &call.sid),
        ("CallStatus", call.status.as_str()),
        ("Called", &call.to),
        ("Caller", &call.from),
        ("Direction", "outbound-api"),
        ("From", &call.from),
        ("To", &call.to),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// POSTs signed form parameters to one of the caller's webhooks.
async fn post_signed(sim: &Sim, url: &str, params: &[(String, String)]) -> Result<String, String> {
    let signature = signature::sign(&sim.config.auth_token, url, params);
    let response = sim
        .http
        .post(url)
        .header("X-Twilio-Signature", signature)
        .form(params)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(text)
    } else {
        Err(format!("POST {url}: {status}: {text}"))
    }
}

async fn webhook(
    sim: &Sim,
    sid: &str,
    url: &str,
    extra: Vec<(String, String)>,
) -> Result<String, String> {
    let mut params = sim
        .with_call(sid, |c| base_params(sim, c))
        .ok_or("the call is gone")?;
    params.extend(extra);
    post_signed(sim, url, &params).await
}

/// Sends the status callback for `event` when the call asked for it.
async fn callback(sim: &Sim, sid: &str, event: &str) {
    let Some((url, mut params)) = sim
        .with_call(sid, |c| {
            let url = c.status_callback.clone()?;
            if !c.events.iter().any(|e| e == event) {
                return None;
            }
            c.sequence += 1;
            let mut params = base_params(sim, c);
            if event == "initiated" {
                params.retain(|(k, _)| k != "CallStatus");
                params.push(("CallStatus".into(), "initiated".into()));
            }
            params.push(("CallbackSource".into(), "call-progress-events".into()));
            params.push(("SequenceNumber".into(), (c.sequence - 1).to_string()));
            params.push(("Timestamp".into(), rfc2822(sim.now())));
            if event == "completed" {
                let seconds = match (c.answered_at, c.ended_at) {
                    (Some(a), Some(e)) => (e - a).num_seconds(),
                    _ => 0,
                };
                params.push(("CallDuration".into(), seconds.to_string()));
                params.push(("Duration".into(), ((seconds + 59) / 60).to_string()));
            }
            Some((url, params))
        })
        .flatten()
    else {
        return;
    };
    params.sort_by(|a, b| a.0.cmp(&b.0));
    if let Err(problem) = post_signed(sim, &url, &params).await {
        sim.log(sid, format!("status callback failed: {problem}"));
    }
}

//! The console's pages and the forms they post.

use super::{
    COOKIE, Chrome, Limiter, Refusal, SESSION_HOURS, Signed, encode, hash, problem, render,
};
use crate::http::AppState;
use crate::http::silences::{ForMinutes, snooze_incident};
use crate::store::incidents::Incident;
use crate::store::keys::Role;
use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Most incidents a list shows.
const LIST_LIMIT: i64 = 200;

#[derive(Template)]
#[template(path = "console/problem.html")]
pub(super) struct Problem {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignIn {
    chrome: Chrome,
    problem: Option<String>,
    next: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

/// `GET /console/sign-in`.
pub(super) async fn sign_in_page(Query(next): Query<Next>) -> Response {
    render(&SignIn {
        chrome: Chrome::new(None),
        problem: None,
        next: next.next.unwrap_or_default(),
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct SignInForm {
    key: String,
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: a console page, never elsewhere.
fn landing(next: &str) -> &str {
    if next.starts_with("/console/") && !next.starts_with("//") {
        next
    } else {
        "/console/incidents"
    }
}

fn random(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the OS provides randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

/// The address a request came from (the server records each connection's peer), or
/// 0.0.0.0 when it was not recorded.
pub(super) struct Peer(IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.0.ip()),
        ))
    }
}

/// `POST /console/sign-in`: an API key becomes a session.
pub(super) async fn sign_in(
    State(core): State<AppState>,
    axum::Extension(limiter): axum::Extension<std::sync::Arc<Limiter>>,
    Peer(address): Peer,
    Form(form): Form<SignInForm>,
) -> Response {
    let again = |status: StatusCode, problem: &str| {
        let page = SignIn {
            chrome: Chrome::new(None),
            problem: Some(problem.to_owned()),
            next: form.next.clone(),
        };
        (status, render(&page)).into_response()
    };
    if limiter.blocked(address) {
        tracing::warn!(%address, "console sign-in refused: too many failures");
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins from this address: wait five minutes.",
        );
    }
    let Some(key) = core.keys.find(form.key.trim()) else {
        limiter.failed(address);
        tracing::info!(%address, "console sign-in with an unknown key");
        return again(
            StatusCode::UNAUTHORIZED,
            "No such key (or it was revoked): paste an admin, editor or viewer key.",
        );
    };
    if key.role == Role::Ingest {
        return again(
            StatusCode::FORBIDDEN,
            "An ingest key only pushes data: sign in with an admin, editor or viewer key.",
        );
    }
    let token = random(32);
    let csrf = random(24);
    let now = core.clock.now();
    let expires = now + chrono::Duration::hours(SESSION_HOURS);
    if let Err(e) = core
        .store
        .create_session(&hash(&token), &key.id, &csrf, now, expires)
        .await
    {
        tracing::error!(error = %e, "could not store a console session");
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database did not answer; try again in a moment.",
        );
    }
    tracing::info!(key = %key.id, name = %key.name, "signed in to the console");
    let secure = core
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let cookie = format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to(landing(&form.next)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a cookie of safe characters"),
    );
    response
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/sign-out`.
pub(super) async fn sign_out(
    State(core): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !super::same(&form.csrf, &signed.session.csrf) {
        return problem(
            StatusCode::FORBIDDEN,
            "This form did not come from this console.",
        );
    }
    if let Err(e) = core.store.delete_session(&signed.hash).await {
        tracing::error!(error = %e, "could not end a console session");
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
        ))
        .expect("a cookie of safe characters"),
    );
    response
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The incidents list's filters, as the query string states them.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListFilter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    owner: String,
}

/// The filters, as the page shows them.
struct Filter {
    template: String,
    owner: String,
    query: String,
}

const STATUSES: [(&str, &str); 5] = [
    ("", "Open and acknowledged"),
    ("OPEN", "Open"),
    ("ACKNOWLEDGED", "Acknowledged"),
    ("CLOSED", "Closed"),
    ("ALL", "All"),
];

struct Row {
    id: String,
    summary: String,
    subject: String,
    status: &'static str,
    since: String,
    since_text: String,
    calling: String,
}

#[derive(Template)]
#[template(path = "console/incidents.html")]
struct Incidents {
    chrome: Chrome,
    options: Vec<StatusOption>,
    filter: Filter,
    rows: Vec<Row>,
}

struct StatusOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/incident_rows.html")]
struct IncidentRows {
    rows: Vec<Row>,
}

/// Who each incident's loop is calling now.
async fn calling(core: &AppState) -> HashMap<String, (String, String)> {
    use crate::store::seam::CallLoops as _;
    match core.store.unfinished_calls().await {
        Ok(calls) => calls
            .into_iter()
            .map(|c| {
                let status = c.status.map_or("placing", |s| s.as_str()).to_owned();
                (c.incident_id, (c.member, status))
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "could not read the calls under way");
            HashMap::new()
        }
    }
}

async fn rows(core: &AppState, filter: &ListFilter) -> Result<Vec<Row>, Refusal> {
    let statuses: &[&str] = match filter.status.as_str() {
        "OPEN" => &["OPEN"],
        "ACKNOWLEDGED" => &["ACKNOWLEDGED"],
        "CLOSED" => &["CLOSED"],
        "ALL" => &["OPEN", "ACKNOWLEDGED", "CLOSED"],
        _ => &["OPEN", "ACKNOWLEDGED"],
    };
    let template = Some(filter.template.trim()).filter(|t| !t.is_empty());
    // The owner is the alert's: the alerts of that owner, from memory.
    let owner = filter.owner.trim();
    let alerts: Option<Vec<String>> = (!owner.is_empty()).then(|| {
        core.catalog
            .all()
            .iter()
            .filter(|a| a.owner_id().as_deref() == Some(owner))
            .map(|a| a.id.clone())
            .collect()
    });
    let incidents = core
        .store
        .console_incidents(statuses, template, alerts.as_deref(), LIST_LIMIT)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not list incidents");
            Refusal::unavailable()
        })?;
    let calling = calling(core).await;
    Ok(incidents
        .into_iter()
        .map(|i| Row {
            calling: calling
                .get(&i.id)
                .map(|(member, _)| member.clone())
                .unwrap_or_default(),
            since: i.created_at.to_rfc3339(),
            since_text: when(i.created_at),
            status: i.status.as_str(),
            id: i.id,
            summary: i.summary,
            subject: i.subject,
        })
        .collect())
}

/// `GET /console/incidents`.
pub(super) async fn incidents(
    State(core): State<AppState>,
    signed: Signed,
    Query(filter): Query<ListFilter>,
) -> Response {
    let rows = match rows(&core, &filter).await {
        Ok(rows) => rows,
        Err(refusal) => return refusal.into_response(),
    };
    let query = format!(
        "status={}&template={}&owner={}",
        encode(&filter.status),
        encode(&filter.template),
        encode(&filter.owner)
    );
    render(&Incidents {
        chrome: signed.chrome(),
        options: STATUSES
            .iter()
            .map(|&(value, label)| StatusOption {
                value,
                label,
                selected: value == filter.status,
            })
            .collect(),
        filter: Filter {
            template: filter.template,
            owner: filter.owner,
            query,
        },
        rows,
    })
}

/// `GET /console/incidents/rows`: the list's rows alone, for htmx to swap in.
pub(super) async fn incident_rows(
    State(core): State<AppState>,
    _signed: Signed,
    Query(filter): Query<ListFilter>,
) -> Response {
    match rows(&core, &filter).await {
        Ok(rows) => render(&IncidentRows { rows }),
        Err(refusal) => refusal.into_response(),
    }
}

/// An incident as its page shows it.
struct Shown {
    id: String,
    summary: String,
    subject: String,
    status: &'static str,
    acknowledged_by: Option<String>,
    opened: String,
    opened_text: String,
}

struct LiveCall {
    member: String,
    status: String,
}

struct Field {
    name: String,
    open: String,
    latest: String,
    close: String,
}

struct Entry {
    at: String,
    at_text: String,
    kind: String,
    actor: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/incident.html")]
struct IncidentPage {
    chrome: Chrome,
    incident: Shown,
    call: Option<LiveCall>,
    can_act: bool,
    csrf: String,
    report: Vec<Field>,
    timeline: Vec<Entry>,
}

#[derive(Template)]
#[template(path = "console/incident_live.html")]
struct IncidentLive {
    incident: Shown,
    call: Option<LiveCall>,
}

fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The report data at opening, latest and at closing, a row per field (in the order the
/// opening snapshot has them, then any others).
fn report(incident: &Incident) -> Vec<Field> {
    let snapshots = [
        Some(&incident.report_open),
        Some(&incident.report_latest),
        incident.report_close.as_ref(),
    ];
    let mut names: Vec<String> = Vec::new();
    for snapshot in snapshots.iter().flatten() {
        if let Value::Object(fields) = snapshot {
            for name in fields.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    let field = |snapshot: Option<&Value>, name: &str| text(snapshot.and_then(|s| s.get(name)));
    names
        .into_iter()
        .map(|name| Field {
            open: field(snapshots[0], &name),
            latest: field(snapshots[1], &name),
            close: field(snapshots[2], &name),
            name,
        })
        .collect()
}

fn shown(i: &Incident) -> Shown {
    Shown {
        id: i.id.clone(),
        summary: i.summary.clone(),
        subject: i.subject.clone(),
        status: i.status.as_str(),
        acknowledged_by: i.acknowledged_by.clone(),
        opened: i.created_at.to_rfc3339(),
        opened_text: when(i.created_at),
    }
}

async fn find(core: &AppState, id: &str) -> Result<Incident, Refusal> {
    match core.store.incident(id).await {
        Ok(Some(incident)) => Ok(incident),
        Ok(None) => Err(Refusal(
            StatusCode::NOT_FOUND,
            format!("There is no incident {id}."),
        )),
        Err(e) => {
            tracing::error!(error = %e, "could not read an incident");
            Err(Refusal::unavailable())
        }
    }
}

async fn live_call(core: &AppState, id: &str) -> Option<LiveCall> {
    calling(core)
        .await
        .remove(id)
        .map(|(member, status)| LiveCall { member, status })
}

/// `GET /console/incidents/{id}`.
pub(super) async fn incident(
    State(core): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let incident = match find(&core, &id).await {
        Ok(incident) => incident,
        Err(refusal) => return refusal.into_response(),
    };
    let timeline = match core.store.timeline(&id).await {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(error = %e, "could not read a timeline");
            Vec::new()
        }
    };
    render(&IncidentPage {
        chrome: signed.chrome(),
        call: live_call(&core, &id).await,
        can_act: signed.can_act(),
        csrf: signed.session.csrf.clone(),
        report: report(&incident),
        timeline: timeline
            .into_iter()
            .map(|e| Entry {
                at: e.at.to_rfc3339(),
                at_text: when(e.at),
                kind: e.kind,
                actor: e.actor.unwrap_or_default(),
                detail: e.detail.to_string(),
            })
            .collect(),
        incident: shown(&incident),
    })
}

/// `GET /console/incidents/{id}/live`: its status and the call ringing now, for htmx.
pub(super) async fn incident_live(
    State(core): State<AppState>,
    _signed: Signed,
    Path(id): Path<String>,
) -> Response {
    match find(&core, &id).await {
        Ok(incident) => render(&IncidentLive {
            call: live_call(&core, &id).await,
            incident: shown(&incident),
        }),
        Err(refusal) => refusal.into_response(),
    }
}

fn back_to(id: &str) -> Response {
    Redirect::to(&format!("/console/incidents/{}", encode(id))).into_response()
}

/// `POST /console/incidents/{id}/acknowledge`: as the signed-in key.
pub(super) async fn acknowledge(
    State(core): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = signed.allow(&form.csrf) {
        return refusal.into_response();
    }
    let now = core.clock.now();
    match core
        .store
        .acknowledge_incident(&id, &signed.session.key_name, now)
        .await
    {
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            &format!("There is no incident {id}."),
        ),
        Ok(Some(_)) => {
            core.escalation.wake();
            tracing::info!(incident = %id, by = %signed.session.key_name, "acknowledged in the console");
            back_to(&id)
        }
        Err(e) => {
            tracing::error!(error = %e, "could not acknowledge an incident");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database did not answer; try again in a moment.",
            )
        }
    }
}

/// `POST /console/incidents/{id}/close`.
pub(super) async fn close(
    State(core): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = signed.allow(&form.csrf) {
        return refusal.into_response();
    }
    let closed = core
        .incidents
        .close(
            &core.store,
            &id,
            core.clock.now(),
            &signed.session.key_id,
            "closed",
        )
        .await;
    match closed {
        Ok(Some(_)) => back_to(&id),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            &format!("There is no incident {id}."),
        ),
        Err(e) => {
            tracing::error!(error = %e, "could not close an incident");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database did not answer; try again in a moment.",
            )
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct SnoozeForm {
    #[serde(default)]
    csrf: String,
    minutes: u32,
}

/// `POST /console/incidents/{id}/snooze`: a silence on this incident alone.
pub(super) async fn snooze(
    State(core): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<SnoozeForm>,
) -> Response {
    if let Err(refusal) = signed.allow(&form.csrf) {
        return refusal.into_response();
    }
    let caller = signed.caller();
    let request = ForMinutes {
        minutes: form.minutes,
    };
    match snooze_incident(&core, &caller, &id, &request).await {
        Ok(_) => back_to(&id),
        Err(e) => problem(e.status_code(), &e.to_string()),
    }
}

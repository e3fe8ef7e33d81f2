//! The alerts page (each alert with its template, parameters, last evaluation and recent
//! problems), the templates beside them, the integrations page (each with its hook URL, its
//! last deliveries and the refused ones with the reason), and the operators page (each
//! one's answer statistics as a small chart).

use super::{Chrome, Refusal, Signed, render, when};
use crate::http::AppState;
use crate::store::escalation::CallStats;
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Duration;

/// Most items a page lists.
const SHOWN: usize = 200;
/// Deliveries and refusals shown per integration.
const DELIVERIES: i64 = 5;
/// The window operators' statistics cover.
const STATS_DAYS: i64 = 30;

struct AlertRow {
    id: String,
    template: String,
    status: &'static str,
    owner: String,
    parameters: String,
    evaluated: String,
    outcome: String,
    message: String,
}

struct TemplateRow {
    id: String,
    name: String,
    version: String,
    description: String,
    builtin: bool,
}

#[derive(Template)]
#[template(path = "console/alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    alerts: Vec<AlertRow>,
    templates: Vec<TemplateRow>,
}

/// `GET /console/alerts`.
pub(super) async fn alerts(State(core): State<AppState>, signed: Signed) -> Response {
    let alerts = core
        .catalog
        .page(None, SHOWN)
        .iter()
        .map(|a| {
            let last = a.last_evaluation.as_ref();
            AlertRow {
                id: a.id.clone(),
                template: a.template_id.clone(),
                status: a.status.as_str(),
                owner: a.owner_id().unwrap_or_default(),
                parameters: a.parameters.get().to_owned(),
                evaluated: last.map(|l| when(l.at)).unwrap_or_else(|| "never".into()),
                outcome: last.map(|l| l.outcome.clone()).unwrap_or_default(),
                message: last.and_then(|l| l.message.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let templates = core
        .registry
        .list()
        .iter()
        .map(|t| {
            let info = &t.stored.info;
            TemplateRow {
                id: info.id.clone(),
                name: info.name.clone(),
                version: info.version.clone(),
                description: info.description.clone(),
                builtin: t.stored.builtin,
            }
        })
        .collect();
    render(&AlertsPage {
        chrome: signed.chrome(),
        alerts,
        templates,
    })
}

struct Delivery {
    at: String,
    reason: String,
}

struct IntegrationRow {
    id: String,
    name: String,
    kind: &'static str,
    hook: String,
    taken: Vec<String>,
    refused: Vec<Delivery>,
}

#[derive(Template)]
#[template(path = "console/integrations.html")]
struct IntegrationsPage {
    chrome: Chrome,
    integrations: Vec<IntegrationRow>,
}

fn unavailable(e: crate::store::Error) -> Refusal {
    tracing::error!(error = %e, "a console page could not read the store");
    Refusal::unavailable()
}

async fn integrations_page(core: &AppState, signed: &Signed) -> Result<IntegrationsPage, Refusal> {
    let integrations = core
        .store
        .list_integrations(None, SHOWN as i64)
        .await
        .map_err(unavailable)?;
    let base = core.escalation.public_url();
    let mut rows = Vec::with_capacity(integrations.len());
    for i in integrations {
        let taken = core
            .store
            .recent_deliveries(&i.id, DELIVERIES)
            .await
            .map_err(unavailable)?;
        let refused = core
            .store
            .rejected_deliveries(&i.id)
            .await
            .map_err(unavailable)?;
        rows.push(IntegrationRow {
            hook: format!("{base}/hooks/{}", i.id),
            kind: i.kind.as_str(),
            taken: taken.into_iter().map(when).collect(),
            refused: refused
                .into_iter()
                .take(DELIVERIES as usize)
                .map(|r| Delivery {
                    at: when(r.at),
                    reason: r.reason,
                })
                .collect(),
            id: i.id,
            name: i.name,
        });
    }
    Ok(IntegrationsPage {
        chrome: signed.chrome(),
        integrations: rows,
    })
}

/// `GET /console/integrations`.
pub(super) async fn integrations(State(core): State<AppState>, signed: Signed) -> Response {
    match integrations_page(&core, &signed).await {
        Ok(page) => render(&page),
        Err(refusal) => refusal.into_response(),
    }
}

/// One bar of an operator's chart.
struct Bar {
    label: &'static str,
    value: u32,
    /// Its length, of 200.
    width: u32,
    y: u32,
    text_y: u32,
    class: &'static str,
}

struct OperatorRow {
    id: String,
    name: String,
    summary: String,
    bars: Vec<Bar>,
}

#[derive(Template)]
#[template(path = "console/operators.html")]
struct OperatorsPage {
    chrome: Chrome,
    days: i64,
    operators: Vec<OperatorRow>,
}

/// An operator's statistics as bars: calls, answered, accepted, passed, missed.
fn bars(stats: &CallStats) -> Vec<Bar> {
    let values = [
        ("calls", stats.calls, "bar-calls"),
        ("answered", stats.answered, "bar-answered"),
        ("accepted", stats.accepted, "bar-accepted"),
        ("passed", stats.passed, "bar-passed"),
        ("missed", stats.missed, "bar-missed"),
    ];
    let most = stats.calls.max(1);
    values
        .into_iter()
        .enumerate()
        .map(|(i, (label, value, class))| Bar {
            label,
            value,
            width: value * 200 / most,
            y: i as u32 * 22,
            text_y: i as u32 * 22 + 14,
            class,
        })
        .collect()
}

async fn operators_page(core: &AppState, signed: &Signed) -> Result<OperatorsPage, Refusal> {
    // Up to and including this second, as the API's statistics.
    let now = core.clock.now() + Duration::seconds(1);
    let from = now - Duration::days(STATS_DAYS);
    let operators = core
        .store
        .list_operators(None, SHOWN as i64)
        .await
        .map_err(unavailable)?;
    let mut rows = Vec::with_capacity(operators.len());
    for o in operators {
        let calls = core
            .store
            .operator_calls(&o.id, from, now)
            .await
            .map_err(unavailable)?;
        let stats = CallStats::of(&calls);
        let seconds = |s: Option<f64>| s.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.0} s"));
        rows.push(OperatorRow {
            summary: format!(
                "{} calls, {} answered, {} accepted, {} passed, {} missed; median {} to answer, {} to accept",
                stats.calls,
                stats.answered,
                stats.accepted,
                stats.passed,
                stats.missed,
                seconds(stats.median_seconds_to_answer),
                seconds(stats.median_seconds_to_accept)
            ),
            bars: bars(&stats),
            id: o.id,
            name: o.name,
        });
    }
    Ok(OperatorsPage {
        chrome: signed.chrome(),
        days: STATS_DAYS,
        operators: rows,
    })
}

/// `GET /console/operators`.
pub(super) async fn operators(State(core): State<AppState>, signed: Signed) -> Response {
    match operators_page(&core, &signed).await {
        Ok(page) => render(&page),
        Err(refusal) => refusal.into_response(),
    }
}

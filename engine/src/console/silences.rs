//! The silences page: what is silenced, making a silence (from an incident, its matchers
//! filled in), and expiring one.

use super::{Chrome, Refusal, Signed, encode, render, when};
use crate::http::AppState;
use crate::http::silences::{SilenceRequest, create, expire, parse};
use crate::store::incidents::new_id;
use crate::store::silences::{EXPIRED_KEPT, MatcherSpec};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::Deserialize;

struct SilenceRow {
    id: String,
    state: &'static str,
    matchers: String,
    starts: String,
    ends: String,
    comment: String,
    created_by: String,
    live: bool,
}

#[derive(Template)]
#[template(path = "console/silences.html")]
struct SilencesPage {
    chrome: Chrome,
    can_act: bool,
    csrf: String,
    silences: Vec<SilenceRow>,
    matchers: String,
    comment: String,
    problem: Option<String>,
}

fn line(m: &MatcherSpec) -> String {
    format!("{} {} {}", m.name, m.op, m.value)
}

/// A matcher as typed: `name op value`, the op one of `=`, `!=`, `=~`, `!~`.
fn matcher(text: &str) -> Option<MatcherSpec> {
    let at = text.find(['=', '!'])?;
    let rest = &text[at..];
    let op = ["!=", "=~", "!~", "="]
        .into_iter()
        .find(|op| rest.starts_with(op))?;
    let value = rest[op.len()..].trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Some(MatcherSpec {
        name: text[..at].trim().to_owned(),
        op: op.to_owned(),
        value: value.to_owned(),
    })
}

async fn page(
    core: &AppState,
    signed: &Signed,
    matchers: String,
    comment: String,
    problem: Option<String>,
) -> Result<SilencesPage, Refusal> {
    let now = core.clock.now();
    let silences = core
        .store
        .list_silences(now - EXPIRED_KEPT)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not list silences");
            Refusal::unavailable()
        })?;
    let mut rows: Vec<SilenceRow> = silences
        .into_iter()
        .rev()
        .map(|s| {
            let state = s.state(now);
            SilenceRow {
                state: match state {
                    tocsin_domain::silence::State::Pending => "pending",
                    tocsin_domain::silence::State::Active => "active",
                    tocsin_domain::silence::State::Expired => "expired",
                },
                live: state != tocsin_domain::silence::State::Expired,
                matchers: s.matchers.iter().map(line).collect::<Vec<_>>().join(", "),
                starts: when(s.starts_at),
                ends: when(s.ends_at),
                comment: s.comment,
                created_by: s.created_by,
                id: s.id,
            }
        })
        .collect();
    rows.sort_by_key(|r| !r.live);
    Ok(SilencesPage {
        chrome: signed.chrome(),
        can_act: signed.can_act(),
        csrf: signed.session.csrf.clone(),
        silences: rows,
        matchers,
        comment,
        problem,
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct FromIncident {
    incident: Option<String>,
}

/// `GET /console/silences`, with `?incident=` filling the form in from that incident.
pub(super) async fn silences(
    State(core): State<AppState>,
    signed: Signed,
    Query(from): Query<FromIncident>,
) -> Response {
    let mut matchers = String::new();
    let mut comment = String::new();
    if let Some(id) = &from.incident
        && let Ok(Some(incident)) = core.store.incident(id).await
    {
        matchers = format!(
            "alertId = {}\nsubject = {}",
            incident.alert_id, incident.subject
        );
        comment = format!("silenced from incident {id}");
    }
    match page(&core, &signed, matchers, comment, None).await {
        Ok(page) => render(&page),
        Err(refusal) => refusal.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct NewSilence {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    matchers: String,
    minutes: i64,
    #[serde(default)]
    comment: String,
}

/// `POST /console/silences`: one matcher a line.
pub(super) async fn create_silence(
    State(core): State<AppState>,
    signed: Signed,
    Form(form): Form<NewSilence>,
) -> Response {
    if let Err(refusal) = signed.allow(&form.csrf) {
        return refusal.into_response();
    }
    let lines: Vec<&str> = form
        .matchers
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let parsed: Option<Vec<MatcherSpec>> = lines.iter().map(|l| matcher(l)).collect();
    let now = core.clock.now();
    let made = match parsed {
        None => Err(
            "each line must be a matcher: name, then =, !=, =~ or !~, then the value".to_owned(),
        ),
        Some(matchers) => {
            let request = SilenceRequest {
                matchers,
                starts_at: None,
                ends_at: now + Duration::minutes(form.minutes.clamp(1, 30 * 24 * 60)),
                comment: form.comment.clone(),
            };
            match parse(new_id("sil"), request, &signed.caller(), now) {
                Ok(silence) => create(&core, &signed.session.key_id, &silence, "silence.create")
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match made {
        Ok(()) => Redirect::to("/console/silences").into_response(),
        Err(problem) => {
            match page(&core, &signed, form.matchers, form.comment, Some(problem)).await {
                Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response(),
                Err(refusal) => refusal.into_response(),
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/silences/{id}/expire`.
pub(super) async fn expire_silence(
    State(core): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refusal) = signed.allow(&form.csrf) {
        return refusal.into_response();
    }
    let now = core.clock.now();
    match core.store.silence(&id).await {
        Ok(Some(silence)) if silence.ends_at > now => {
            if let Err(e) = expire(&core, &signed.caller(), silence, now).await {
                return Refusal(e.status_code(), e.to_string()).into_response();
            }
            Redirect::to("/console/silences").into_response()
        }
        Ok(_) => Refusal(
            StatusCode::NOT_FOUND,
            format!("There is no silence {} in force.", encode(&id)),
        )
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not read a silence");
            Refusal::unavailable().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matcher;

    #[test]
    fn matchers_are_read_as_typed() {
        let m = matcher("instance =~ \"k8s-node[12]:.*\"").unwrap();
        assert_eq!(
            (m.name.as_str(), m.op.as_str(), m.value.as_str()),
            ("instance", "=~", "k8s-node[12]:.*")
        );
        let m = matcher("severity!=info").unwrap();
        assert_eq!(
            (m.name.as_str(), m.op.as_str(), m.value.as_str()),
            ("severity", "!=", "info")
        );
        let m = matcher("subject = a=b").unwrap();
        assert_eq!(
            (m.name.as_str(), m.op.as_str(), m.value.as_str()),
            ("subject", "=", "a=b")
        );
        assert!(matcher("no operator").is_none());
    }
}

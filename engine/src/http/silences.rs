//! `/silences` and `/maintenance_windows`: keeping Tocsin from phoning anyone about what
//! they match, for a while or every week, without losing an incident. Incidents open,
//! update and resolve as ever; only their call loops wait (see `crate::store::silences`).
//! Snoozing an incident and putting an integration in maintenance are silences too.

use super::auth::{Caller, Need};
use super::entities::check_name;
use super::operators::time_zone;
use super::{ApiError, AppState, Json};
use crate::store::incidents::{IncidentStatus, new_id};
use crate::store::silences::{
    EXPIRED_KEPT, MatcherSpec, SilenceRecord, WINDOW_ID, WindowRecord, parse_matchers,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tocsin_domain::silence::State as SilenceState;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How far ahead a silence may end.
const LONGEST: Duration = Duration::days(30);
/// Most matchers a silence or window may have.
const MATCHER_LIMIT: usize = 50;
/// Longest comment, in bytes.
const COMMENT_LIMIT: usize = 1_024;
/// Longest snooze or maintenance, in minutes.
const SHORTCUT_MINUTES: u32 = 1_440;

/// Where a silence stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateName {
    /// It starts later.
    Pending,
    /// It silences now.
    Active,
    /// It ended (kept five days).
    Expired,
}

impl From<SilenceState> for StateName {
    fn from(state: SilenceState) -> Self {
        match state {
            SilenceState::Pending => Self::Pending,
            SilenceState::Active => Self::Active,
            SilenceState::Expired => Self::Expired,
        }
    }
}

/// The body of `POST /silences` and `PUT /silences/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SilenceRequest {
    /// Every one must match an incident's labels (1 to 50); at least one must not match
    /// the empty string.
    #[schema(min_items = 1, max_items = 50)]
    pub matchers: Vec<MatcherSpec>,
    /// When it starts (default: now; a past instant means now).
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends: after `startsAt`, at most 30 days ahead.
    pub ends_at: DateTime<Utc>,
    /// Why (1 to 1024 bytes).
    #[schema(min_length = 1, max_length = 1024)]
    pub comment: String,
}

/// A silence as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Silence)]
pub struct SilenceView {
    /// Id.
    pub id: String,
    /// Every one must match.
    pub matchers: Vec<MatcherSpec>,
    /// Active from.
    pub starts_at: DateTime<Utc>,
    /// Active until (excluded).
    pub ends_at: DateTime<Utc>,
    /// Why.
    pub comment: String,
    /// The name of the API key that made it.
    pub created_by: String,
    /// Where it stands now.
    pub state: StateName,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

fn view(s: SilenceRecord, now: DateTime<Utc>) -> SilenceView {
    SilenceView {
        state: s.state(now).into(),
        id: s.id,
        matchers: s.matchers,
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        comment: s.comment,
        created_by: s.created_by,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

/// Silences.
#[derive(Debug, Serialize, ToSchema)]
pub struct Silences {
    /// Oldest first.
    pub data: Vec<SilenceView>,
}

/// Which silences to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SilenceFilter {
    /// Only silences in this state.
    pub state: Option<StateName>,
}

fn check_matchers(matchers: &[MatcherSpec]) -> Result<(), ApiError> {
    if matchers.len() > MATCHER_LIMIT {
        return Err(ApiError::Unprocessable(format!(
            "matchers lists {} matchers; at most {MATCHER_LIMIT} are allowed",
            matchers.len()
        )));
    }
    parse_matchers(matchers).map_err(ApiError::Unprocessable)?;
    Ok(())
}

fn check_comment(comment: &str) -> Result<(), ApiError> {
    if comment.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "comment must say why (it must not be empty)".into(),
        ));
    }
    if comment.len() > COMMENT_LIMIT {
        return Err(ApiError::Unprocessable(format!(
            "comment is longer than {COMMENT_LIMIT} bytes"
        )));
    }
    Ok(())
}

/// `t` to the microsecond, as the store keeps it, so that what is answered reads back equal.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(t, 6)
}

/// The silence `request` states, made by `caller` at `now`.
pub(crate) fn parse(
    id: String,
    request: SilenceRequest,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<SilenceRecord, ApiError> {
    check_matchers(&request.matchers)?;
    check_comment(&request.comment)?;
    let starts_at = request.starts_at.map_or(now, |s| s.max(now));
    let ends_at = micros(request.ends_at);
    if ends_at <= starts_at {
        return Err(ApiError::Unprocessable(format!(
            "endsAt {} must be after startsAt {}",
            ends_at.to_rfc3339(),
            starts_at.to_rfc3339()
        )));
    }
    if ends_at > now + LONGEST {
        return Err(ApiError::Unprocessable(format!(
            "endsAt {} is more than 30 days ahead; silences end by {}",
            ends_at.to_rfc3339(),
            (now + LONGEST).to_rfc3339()
        )));
    }
    Ok(SilenceRecord {
        id,
        matchers: request.matchers,
        starts_at: micros(starts_at),
        ends_at,
        comment: request.comment,
        created_by: caller.key_name.clone(),
        created_at: now,
        updated_at: now,
    })
}

fn audit_detail(s: &SilenceRecord) -> serde_json::Value {
    serde_json::json!({"matchers": s.matchers, "startsAt": s.starts_at, "endsAt": s.ends_at,
        "comment": s.comment})
}

/// Stores a new silence, audits it (by key `key_id`), and has the loops it matches looked
/// at.
pub(crate) async fn create(
    core: &AppState,
    key_id: &str,
    silence: &SilenceRecord,
    action: &str,
) -> Result<(), ApiError> {
    core.store.insert_silence(silence).await?;
    core.store
        .audit(
            silence.created_at,
            key_id,
            action,
            &format!("silences/{}", silence.id),
            audit_detail(silence),
        )
        .await?;
    core.escalation.silences_changed();
    tracing::info!(silence = %silence.id, by = %silence.created_by, ends_at = %silence.ends_at, "silence made");
    Ok(())
}

/// Make a silence (editor): the call loops of the incidents it matches wait while it is
/// active; incidents themselves go on as ever.
#[utoipa::path(post, path = "/silences", tag = "silences", request_body = SilenceRequest,
    responses((status = 201, body = SilenceView), (status = 422, description = "A matcher, the times or the comment is wrong")))]
async fn create_silence(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<SilenceRequest>,
) -> Result<(StatusCode, Json<SilenceView>), ApiError> {
    caller.require(Need::Edit)?;
    let now = core.clock.now();
    let silence = parse(new_id("sil"), request, &caller, now)?;
    create(&core, &caller.key_id, &silence, "silence.create").await?;
    Ok((StatusCode::CREATED, Json(view(silence, now))))
}

/// List the silences kept (pending, active, and those expired in the last five days).
#[utoipa::path(get, path = "/silences", tag = "silences", params(SilenceFilter),
    responses((status = 200, body = Silences)))]
async fn list_silences(
    State(core): State<AppState>,
    caller: Caller,
    Query(filter): Query<SilenceFilter>,
) -> Result<Json<Silences>, ApiError> {
    caller.require(Need::Read)?;
    let now = core.clock.now();
    let data = core
        .store
        .list_silences(now - EXPIRED_KEPT)
        .await?
        .into_iter()
        .map(|s| view(s, now))
        .filter(|s| filter.state.is_none_or(|state| s.state == state))
        .collect();
    Ok(Json(Silences { data }))
}

/// A silence kept: one expired more than five days ago is gone.
async fn find_silence(core: &AppState, id: &str) -> Result<SilenceRecord, ApiError> {
    core.store
        .silence(id)
        .await?
        .filter(|s| s.ends_at >= core.clock.now() - EXPIRED_KEPT)
        .ok_or_else(|| ApiError::NotFound(format!("no silence {id}")))
}

/// Get a silence.
#[utoipa::path(get, path = "/silences/{silence_id}", tag = "silences",
    params(("silence_id" = String, Path, description = "Silence id")),
    responses((status = 200, body = SilenceView), (status = 404, description = "No such silence")))]
async fn get_silence(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SilenceView>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(view(
        find_silence(&core, &id).await?,
        core.clock.now(),
    )))
}

/// Change a silence (editor). An active silence whose only change is `endsAt` is moved in
/// place (200); a pending one is changed in place (200); any other change to an active
/// silence expires it and makes a new one (201, with the new id), as Alertmanager does.
/// Expired silences cannot be changed (409).
#[utoipa::path(put, path = "/silences/{silence_id}", tag = "silences", request_body = SilenceRequest,
    params(("silence_id" = String, Path, description = "Silence id")),
    responses((status = 200, body = SilenceView, description = "Changed in place"),
        (status = 201, body = SilenceView, description = "Expired and replaced by a new silence"),
        (status = 404, description = "No such silence"), (status = 409, description = "The silence expired"),
        (status = 422, description = "A matcher, the times or the comment is wrong")))]
async fn update_silence(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<SilenceRequest>,
) -> Result<(StatusCode, Json<SilenceView>), ApiError> {
    caller.require(Need::Edit)?;
    let now = core.clock.now();
    let before = find_silence(&core, &id).await?;
    let state = before.state(now);
    if state == SilenceState::Expired {
        return Err(ApiError::Conflict(format!(
            "silence {id} expired at {}; make a new one",
            before.ends_at.to_rfc3339()
        )));
    }
    let keeps_start = request
        .starts_at
        .is_none_or(|s| s == before.starts_at || (state == SilenceState::Active && s <= now));
    let wanted = parse(id.clone(), request, &caller, now)?;
    let in_place = state == SilenceState::Pending
        || (keeps_start && wanted.matchers == before.matchers && wanted.comment == before.comment);
    if in_place {
        let silence = SilenceRecord {
            starts_at: if state == SilenceState::Active {
                before.starts_at
            } else {
                wanted.starts_at
            },
            created_by: before.created_by,
            created_at: before.created_at,
            ..wanted
        };
        if !core.store.update_silence(&silence).await? {
            return Err(ApiError::NotFound(format!("no silence {id}")));
        }
        core.store
            .audit(
                now,
                &caller.key_id,
                "silence.update",
                &format!("silences/{id}"),
                audit_detail(&silence),
            )
            .await?;
        core.escalation.silences_changed();
        return Ok((StatusCode::OK, Json(view(silence, now))));
    }
    expire(&core, &caller, before, now).await?;
    let silence = SilenceRecord {
        id: new_id("sil"),
        ..wanted
    };
    create(&core, &caller.key_id, &silence, "silence.replace").await?;
    Ok((StatusCode::CREATED, Json(view(silence, now))))
}

/// Ends a silence now (a pending one never starts).
pub(crate) async fn expire(
    core: &AppState,
    caller: &Caller,
    silence: SilenceRecord,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let expired = SilenceRecord {
        starts_at: silence.starts_at.min(now),
        ends_at: now,
        updated_at: now,
        ..silence
    };
    core.store.update_silence(&expired).await?;
    core.store
        .audit(
            now,
            &caller.key_id,
            "silence.expire",
            &format!("silences/{}", expired.id),
            audit_detail(&expired),
        )
        .await?;
    core.escalation.silences_changed();
    tracing::info!(silence = %expired.id, "silence expired");
    Ok(())
}

/// Expire a silence now (editor): the loops it alone held call again. It is kept five
/// days.
#[utoipa::path(delete, path = "/silences/{silence_id}", tag = "silences",
    params(("silence_id" = String, Path, description = "Silence id")),
    responses((status = 204, description = "Expired"), (status = 404, description = "No such silence"),
        (status = 409, description = "It had already expired")))]
async fn delete_silence(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Edit)?;
    let now = core.clock.now();
    let silence = find_silence(&core, &id).await?;
    if silence.state(now) == SilenceState::Expired {
        return Err(ApiError::Conflict(format!(
            "silence {id} already expired at {}",
            silence.ends_at.to_rfc3339()
        )));
    }
    expire(&core, &caller, silence, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of a snooze or a maintenance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForMinutes {
    /// How long, 1 to 1440 minutes.
    #[schema(minimum = 1, maximum = 1440)]
    pub minutes: u32,
}

impl ForMinutes {
    fn until(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
        if !(1..=SHORTCUT_MINUTES).contains(&self.minutes) {
            return Err(ApiError::Unprocessable(format!(
                "minutes {} must be between 1 and {SHORTCUT_MINUTES}",
                self.minutes
            )));
        }
        Ok(now + Duration::minutes(i64::from(self.minutes)))
    }
}

fn matcher(name: &str, value: &str) -> MatcherSpec {
    MatcherSpec {
        name: name.into(),
        op: "=".into(),
        value: value.into(),
    }
}

/// Snooze an incident (editor): a silence on that incident alone, for up to a day. Its
/// loop waits; it appears in `/silences`.
#[utoipa::path(post, path = "/incidents/{incident_id}/snooze", tag = "silences", request_body = ForMinutes,
    params(("incident_id" = String, Path, description = "Incident id")),
    responses((status = 201, body = SilenceView), (status = 404, description = "No such incident"),
        (status = 409, description = "The incident is closed"), (status = 422, description = "minutes is out of range")))]
async fn snooze(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<ForMinutes>,
) -> Result<(StatusCode, Json<SilenceView>), ApiError> {
    caller.require(Need::Edit)?;
    let silence = snooze_incident(&core, &caller, &id, &request).await?;
    Ok((StatusCode::CREATED, Json(view(silence, core.clock.now()))))
}

/// Snoozes incident `id` for `request.minutes`, as `caller`: the silence made.
pub(crate) async fn snooze_incident(
    core: &AppState,
    caller: &Caller,
    id: &str,
    request: &ForMinutes,
) -> Result<SilenceRecord, ApiError> {
    let now = core.clock.now();
    let ends_at = request.until(now)?;
    let incident = core
        .store
        .incident(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))?;
    if incident.status == IncidentStatus::Closed {
        return Err(ApiError::Conflict(format!(
            "incident {id} is closed: nothing to snooze"
        )));
    }
    let silence = SilenceRecord {
        id: new_id("sil"),
        matchers: vec![matcher("incidentId", id)],
        starts_at: now,
        ends_at,
        comment: format!("snoozed for {} minutes", request.minutes),
        created_by: caller.key_name.clone(),
        created_at: now,
        updated_at: now,
    };
    create(core, &caller.key_id, &silence, "incident.snooze").await?;
    Ok(silence)
}

/// Put an integration in maintenance (editor): a silence on its alarms' incidents, for up
/// to a day; everyone else's still call. It appears in `/silences`.
#[utoipa::path(post, path = "/integrations/{integration_id}/maintenance", tag = "silences", request_body = ForMinutes,
    params(("integration_id" = String, Path, description = "Integration id")),
    responses((status = 201, body = SilenceView), (status = 404, description = "No such integration"),
        (status = 422, description = "minutes is out of range")))]
async fn maintenance(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<ForMinutes>,
) -> Result<(StatusCode, Json<SilenceView>), ApiError> {
    caller.require(Need::Edit)?;
    let now = core.clock.now();
    let ends_at = request.until(now)?;
    let integration = core
        .store
        .integration(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no integration {id}")))?;
    let silence = SilenceRecord {
        id: new_id("sil"),
        matchers: vec![matcher("integrationId", &id)],
        starts_at: now,
        ends_at,
        comment: format!(
            "integration {} in maintenance for {} minutes",
            integration.name, request.minutes
        ),
        created_by: caller.key_name.clone(),
        created_at: now,
        updated_at: now,
    };
    create(&core, &caller.key_id, &silence, "integration.maintenance").await?;
    Ok((StatusCode::CREATED, Json(view(silence, now))))
}

/// The body of `POST /maintenance_windows` and `PUT /maintenance_windows/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WindowRequest {
    /// Name.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// Every one must match an incident's labels, as a silence's.
    #[schema(min_items = 1, max_items = 50)]
    pub matchers: Vec<MatcherSpec>,
    /// IANA time zone whose wall clock `days`, `start` and `end` read.
    pub time_zone: String,
    /// Days it opens on: `MON` … `SUN`.
    #[schema(min_items = 1, max_items = 7)]
    pub days: Vec<String>,
    /// Local time it opens, `HH:MM`.
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub start: String,
    /// Local time it closes, `HH:MM`: equal to `start` for all day, earlier to cross
    /// midnight (the window belongs to the day it opens).
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub end: String,
    /// Why.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub comment: String,
}

/// A maintenance window as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MaintenanceWindow)]
pub struct WindowView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Every one must match.
    pub matchers: Vec<MatcherSpec>,
    /// IANA time zone.
    pub time_zone: String,
    /// Days it opens on.
    pub days: Vec<String>,
    /// Local time it opens.
    pub start: String,
    /// Local time it closes.
    pub end: String,
    /// Why.
    pub comment: String,
    /// The name of the API key that made it.
    pub created_by: String,
    /// Whether it is open now.
    pub open: bool,
    /// When it next opens or closes.
    pub next_change_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

fn window_view(w: WindowRecord, now: DateTime<Utc>) -> WindowView {
    let weekly = w.weekly().ok();
    WindowView {
        open: weekly
            .as_ref()
            .is_some_and(|weekly| weekly.is_open(w.time_zone, now)),
        next_change_at: weekly.and_then(|weekly| weekly.next_edge(w.time_zone, now)),
        id: w.id,
        name: w.name,
        matchers: w.matchers,
        time_zone: w.time_zone.name().to_owned(),
        days: w.days,
        start: w.start,
        end: w.end,
        comment: w.comment,
        created_by: w.created_by,
        created_at: w.created_at,
        updated_at: w.updated_at,
    }
}

/// Maintenance windows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Windows {
    /// Oldest first.
    pub data: Vec<WindowView>,
}

fn parse_window(
    id: String,
    request: WindowRequest,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<WindowRecord, ApiError> {
    check_name("name", &request.name)?;
    check_matchers(&request.matchers)?;
    if request.comment.len() > COMMENT_LIMIT {
        return Err(ApiError::Unprocessable(format!(
            "comment is longer than {COMMENT_LIMIT} bytes"
        )));
    }
    let window = WindowRecord {
        id,
        name: request.name,
        matchers: request.matchers,
        time_zone: time_zone("timeZone", &request.time_zone)?,
        days: request.days,
        start: request.start,
        end: request.end,
        comment: request.comment,
        created_by: caller.key_name.clone(),
        created_at: now,
        updated_at: now,
    };
    window
        .weekly()
        .map_err(|why| ApiError::Unprocessable(why.replacen("window.", "", 1)))?;
    Ok(window)
}

fn window_audit(w: &WindowRecord) -> serde_json::Value {
    serde_json::json!({"name": w.name, "matchers": w.matchers, "timeZone": w.time_zone.name(),
        "days": w.days, "start": w.start, "end": w.end, "comment": w.comment})
}

/// Make a weekly maintenance window (editor): while it is open, the call loops of the
/// incidents it matches wait, as under a silence.
#[utoipa::path(post, path = "/maintenance_windows", tag = "silences", request_body = WindowRequest,
    responses((status = 201, body = WindowView), (status = 422, description = "A field is wrong")))]
async fn create_window(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<WindowRequest>,
) -> Result<(StatusCode, Json<WindowView>), ApiError> {
    caller.require(Need::Edit)?;
    let now = core.clock.now();
    let window = parse_window(new_id(WINDOW_ID), request, &caller, now)?;
    core.store.insert_window(&window).await?;
    core.store
        .audit(
            now,
            &caller.key_id,
            "maintenance_window.create",
            &format!("maintenance_windows/{}", window.id),
            window_audit(&window),
        )
        .await?;
    core.escalation.silences_changed();
    Ok((StatusCode::CREATED, Json(window_view(window, now))))
}

/// List maintenance windows.
#[utoipa::path(get, path = "/maintenance_windows", tag = "silences",
    responses((status = 200, body = Windows)))]
async fn list_windows(
    State(core): State<AppState>,
    caller: Caller,
) -> Result<Json<Windows>, ApiError> {
    caller.require(Need::Read)?;
    let now = core.clock.now();
    let data = core
        .store
        .list_windows()
        .await?
        .into_iter()
        .map(|w| window_view(w, now))
        .collect();
    Ok(Json(Windows { data }))
}

async fn find_window(core: &AppState, id: &str) -> Result<WindowRecord, ApiError> {
    core.store
        .window(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no maintenance window {id}")))
}

/// Get a maintenance window, with whether it is open now.
#[utoipa::path(get, path = "/maintenance_windows/{window_id}", tag = "silences",
    params(("window_id" = String, Path, description = "Window id")),
    responses((status = 200, body = WindowView), (status = 404, description = "No such window")))]
async fn get_window(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WindowView>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(window_view(
        find_window(&core, &id).await?,
        core.clock.now(),
    )))
}

/// Replace a maintenance window (editor).
#[utoipa::path(put, path = "/maintenance_windows/{window_id}", tag = "silences", request_body = WindowRequest,
    params(("window_id" = String, Path, description = "Window id")),
    responses((status = 200, body = WindowView), (status = 404, description = "No such window"),
        (status = 422, description = "A field is wrong")))]
async fn update_window(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<WindowRequest>,
) -> Result<Json<WindowView>, ApiError> {
    caller.require(Need::Edit)?;
    let now = core.clock.now();
    let before = find_window(&core, &id).await?;
    let window = WindowRecord {
        created_by: before.created_by,
        created_at: before.created_at,
        ..parse_window(id.clone(), request, &caller, now)?
    };
    if !core.store.update_window(&window).await? {
        return Err(ApiError::NotFound(format!("no maintenance window {id}")));
    }
    core.store
        .audit(
            now,
            &caller.key_id,
            "maintenance_window.update",
            &format!("maintenance_windows/{id}"),
            window_audit(&window),
        )
        .await?;
    core.escalation.silences_changed();
    Ok(Json(window_view(window, now)))
}

/// Delete a maintenance window (editor): what it alone held calls again.
#[utoipa::path(delete, path = "/maintenance_windows/{window_id}", tag = "silences",
    params(("window_id" = String, Path, description = "Window id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such window")))]
async fn delete_window(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Edit)?;
    if !core.store.delete_window(&id).await? {
        return Err(ApiError::NotFound(format!("no maintenance window {id}")));
    }
    core.store
        .audit(
            core.clock.now(),
            &caller.key_id,
            "maintenance_window.delete",
            &format!("maintenance_windows/{id}"),
            serde_json::json!({}),
        )
        .await?;
    core.escalation.silences_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_silence, list_silences))
        .routes(routes!(get_silence, update_silence, delete_silence))
        .routes(routes!(snooze))
        .routes(routes!(maintenance))
        .routes(routes!(create_window, list_windows))
        .routes(routes!(get_window, update_window, delete_window))
}

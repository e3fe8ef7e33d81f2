//! `/incidents` (Togai's resource) and their timelines.

use super::auth::{Caller, Need};
use super::{ApiError, AppState, Json, OptionalJson, Page, next_token};
use crate::store::incidents::{
    Incident as StoredIncident, IncidentFilter, IncidentStatus, TimelineEntry,
};
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An incident, exactly as Togai's `Incident` schema has it (Togai's clients refuse any
/// other field); `reportData` is the snapshot at opening. The subject, summary, the latest
/// and closing snapshots and who acknowledged or closed it are Tocsin's, at
/// `GET /incidents/{id}/details`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// Incident id.
    pub id: String,
    /// The alert.
    pub alert_id: String,
    /// The alert's version when it opened.
    pub alert_version: i64,
    /// The alert's template.
    pub alert_template_id: String,
    /// When the alert's validity ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    /// Report data when it opened.
    #[schema(value_type = Object)]
    pub report_data: Value,
    /// OPEN, ACKNOWLEDGED or CLOSED.
    pub status: IncidentStatus,
    /// Last evaluated.
    pub last_checked_at: DateTime<Utc>,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&StoredIncident> for Incident {
    fn from(i: &StoredIncident) -> Self {
        Self {
            id: i.id.clone(),
            alert_id: i.alert_id.clone(),
            alert_version: i.alert_version,
            alert_template_id: i.template_id.clone(),
            valid_until: i.valid_until,
            report_data: i.report_open.clone(),
            status: i.status,
            last_checked_at: i.last_checked_at,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

impl From<StoredIncident> for Incident {
    fn from(i: StoredIncident) -> Self {
        Self::from(&i)
    }
}

/// Tocsin's view of an incident: Togai's fields, plus the subject, the latest and closing
/// snapshots, and who acknowledged or closed it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentDetails {
    /// Togai's fields.
    #[serde(flatten)]
    pub incident: Incident,
    /// What breached: usually the owner id.
    pub subject: String,
    /// The latest one-line summary.
    pub summary: String,
    /// Report data at the latest evaluation.
    #[schema(value_type = Object)]
    pub latest_report_data: Value,
    /// Report data when it closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub closing_report_data: Option<Value>,
    /// Closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Who or what closed it: a key id, `auto-resolve`, `validity ended`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// The operator who accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
}

impl From<StoredIncident> for IncidentDetails {
    fn from(i: StoredIncident) -> Self {
        Self {
            incident: Incident::from(&i),
            subject: i.subject,
            summary: i.summary,
            latest_report_data: i.report_latest,
            closing_report_data: i.report_close,
            closed_at: i.closed_at,
            closed_by: i.closed_by,
            acknowledged_by: i.acknowledged_by,
        }
    }
}

super::page! {
    /// A page of incidents.
    IncidentsPage: Vec<Incident>,
    "The incidents, oldest first."
}

/// Incident filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Filters {
    /// Only this alert's incidents.
    pub alert_id: Option<String>,
    /// Only incidents with this status.
    pub status: Option<IncidentStatus>,
    /// Only incidents whose call loop a silence or maintenance window holds (`true`), or
    /// only the others (`false`).
    pub silenced: Option<bool>,
    /// Where the previous page ended.
    pub next_token: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<i64>,
}

/// Togai's `UpdateIncidentStatusRequest`; the body is optional, and no body closes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIncidentStatusRequest {
    /// Only CLOSED: operators acknowledge incidents by phone.
    pub status: SettableStatus,
}

/// The one status the API sets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettableStatus {
    /// Close the incident: its loop stops and its live call ends.
    #[default]
    Closed,
}

/// An incident's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    /// Every step, oldest first.
    pub data: Vec<TimelineEntry>,
}

/// List incidents.
#[utoipa::path(get, path = "/incidents", tag = "incidents", params(Filters), responses((status = 200, body = IncidentsPage)))]
async fn list(
    State(core): State<AppState>,
    caller: Caller,
    Query(filters): Query<Filters>,
) -> Result<Json<IncidentsPage>, ApiError> {
    caller.require(Need::Read)?;
    let page = Page {
        next_token: filters.next_token,
        page_size: filters.page_size,
    };
    let size = page.size()?;
    let filter = IncidentFilter {
        alert_id: filters.alert_id,
        status: filters.status,
        silenced: filters.silenced,
    };
    let incidents = core
        .store
        .list_incidents(&filter, page.after()?.as_deref(), size)
        .await?;
    let next_token = next_token(&incidents, size, |i| &i.id);
    Ok(Json(IncidentsPage {
        data: incidents.into_iter().map(Incident::from).collect(),
        next_token,
    }))
}

async fn find(core: &AppState, id: &str) -> Result<StoredIncident, ApiError> {
    core.store
        .incident(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))
}

/// Get one incident.
#[utoipa::path(get, path = "/incidents/{incident_id}", tag = "incidents",
    params(("incident_id" = String, Path, description = "Incident id")),
    responses((status = 200, body = Incident), (status = 404, description = "No such incident")))]
async fn get(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Incident>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(find(&core, &id).await?.into()))
}

/// Close an incident.
#[utoipa::path(put, path = "/incidents/{incident_id}/status", tag = "incidents",
    params(("incident_id" = String, Path, description = "Incident id")),
    request_body(content = Option<UpdateIncidentStatusRequest>, description = "Optional; no body closes"),
    responses((status = 200, body = Incident), (status = 404, description = "No such incident"), (status = 422, description = "Only CLOSED can be set")))]
async fn update_status(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(request): OptionalJson<UpdateIncidentStatusRequest>,
) -> Result<Json<Incident>, ApiError> {
    caller.require(Need::Edit)?;
    let SettableStatus::Closed = request.status;
    let incident = core
        .incidents
        .close(&core.store, &id, core.clock.now(), &caller.key_id, "closed")
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))?;
    Ok(Json(incident.into()))
}

/// Tocsin's view of one incident: Togai's fields, the subject, summary, latest and closing
/// snapshots, and who acknowledged or closed it.
#[utoipa::path(get, path = "/incidents/{incident_id}/details", tag = "incidents",
    params(("incident_id" = String, Path, description = "Incident id")),
    responses((status = 200, body = IncidentDetails), (status = 404, description = "No such incident")))]
async fn get_details(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncidentDetails>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(find(&core, &id).await?.into()))
}

/// An incident's timeline: evaluations that changed it, calls, key presses, closing.
#[utoipa::path(get, path = "/incidents/{incident_id}/timeline", tag = "incidents",
    params(("incident_id" = String, Path, description = "Incident id")),
    responses((status = 200, body = Timeline), (status = 404, description = "No such incident")))]
async fn timeline(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Timeline>, ApiError> {
    caller.require(Need::Read)?;
    find(&core, &id).await?;
    Ok(Json(Timeline {
        data: core.store.timeline(&id).await?,
    }))
}

/// Acknowledge an open incident as the calling key (editor), as an operator pressing 1
/// would: its loop stops and a call still ringing is ended. An acknowledged one stays as
/// it is; a closed one cannot be (409).
#[utoipa::path(post, path = "/incidents/{incident_id}/acknowledge", tag = "incidents",
    params(("incident_id" = String, Path, description = "Incident id")),
    responses((status = 200, body = IncidentDetails), (status = 404, description = "No such incident"),
        (status = 409, description = "The incident is closed")))]
async fn acknowledge(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncidentDetails>, ApiError> {
    caller.require(Need::Edit)?;
    let now = core.clock.now();
    if core
        .store
        .acknowledge_incident(&id, &caller.key_name, now)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("no incident {id}")));
    }
    core.escalation.wake();
    let incident = find(&core, &id).await?;
    if incident.status == IncidentStatus::Closed {
        return Err(ApiError::Conflict(format!(
            "incident {id} is closed: it cannot be acknowledged"
        )));
    }
    Ok(Json(incident.into()))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(update_status))
        .routes(routes!(get_details))
        .routes(routes!(timeline))
        .routes(routes!(acknowledge))
}

//! `/alerts`: a template plus parameters (Togai's resource), and its evaluation problems.

use super::auth::{Caller, Need};
use super::details::{self, Given, Kind};
use super::{ApiError, AppState, Json, OptionalJson, Page, next_token};
use crate::registry::Registered;
use crate::store::alerts::{
    Alert as StoredAlert, AlertStatus, EvaluationProblem, INTERVAL_MAX_MINUTES, LastEvaluation,
    VALIDITY_MAX_MINUTES, raw_json, valid_until,
};
use crate::store::incidents::new_id;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tocsin_sdk::time::Timestamp;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An alert, exactly as Togai's `Alert` schema has it (Togai's clients refuse any other
/// field). When its validity ends and how its last evaluation went are Tocsin's, at
/// `GET /alerts/{id}/details`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Alert id.
    pub id: String,
    /// Bumped on every update.
    pub version: i64,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// ACTIVE or INACTIVE.
    pub status: AlertStatus,
    /// Validity in minutes from creation; absent (or 0) means forever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity: Option<i64>,
    /// The template.
    pub alert_template_id: String,
    /// Evaluation interval, minutes.
    pub interval: i64,
    /// The one entity the alert is narrowed to, as given: `{"<Togai key>": "<entity id>"}`
    /// or `{"id": …}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub entity_details: Option<Box<RawValue>>,
    /// The one owner the alert is scoped to, as given: `{"accountId": "<owner id>"}` or
    /// `{"id": …}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub owner_details: Option<Box<RawValue>>,
    /// Template parameters.
    #[schema(value_type = Object)]
    pub parameters: Box<RawValue>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&StoredAlert> for Alert {
    fn from(a: &StoredAlert) -> Self {
        Self {
            id: a.id.clone(),
            version: a.version,
            description: a.description.clone(),
            status: a.status,
            validity: a.validity_minutes,
            alert_template_id: a.template_id.clone(),
            interval: a.interval_minutes,
            entity_details: a.entity_details.clone(),
            owner_details: a.owner_details.clone(),
            parameters: a.parameters.clone(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// Tocsin's view of an alert: Togai's fields, plus when its validity ends and how its last
/// evaluation went.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertDetails {
    /// Togai's fields.
    #[serde(flatten)]
    pub alert: Alert,
    /// When validity ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    /// When validity ended and the alert's incidents closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<DateTime<Utc>>,
    /// The last evaluation's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evaluation: Option<LastEvaluation>,
}

impl From<&StoredAlert> for AlertDetails {
    fn from(a: &StoredAlert) -> Self {
        Self {
            alert: Alert::from(a),
            valid_until: a.valid_until,
            expired_at: a.expired_at,
            last_evaluation: a.last_evaluation.clone(),
        }
    }
}

/// Longest alert description, in bytes.
pub const DESCRIPTION_MAX_BYTES: usize = 1000;

/// Togai's `CreateAlertRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAlertRequest {
    /// The template to instantiate.
    pub alert_template_id: String,
    /// Evaluation interval in minutes, 1 to 525,600 (a year); 0 takes the template's default.
    #[schema(minimum = 0, maximum = 525_600)]
    pub interval: i64,
    /// Minutes from creation the alert stays valid, 1 to 52,560,000 (100 years); 0 or
    /// absent means forever.
    #[schema(nullable = false, minimum = 0, maximum = 52_560_000)]
    #[serde(default, deserialize_with = "details::present")]
    pub validity: Option<i64>,
    /// Free text, up to 1,000 bytes.
    #[schema(nullable = false, max_length = 1000)]
    #[serde(default, deserialize_with = "details::present")]
    pub description: Option<String>,
    /// The one entity to narrow the alert to: `{"<Togai key>": "<id>"}` (`usageMeterId`,
    /// `featureId`, … as the template's `entitySchema` says) or `{"id": "<id>"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub entity_details: Given<Map<String, Value>>,
    /// The one owner to scope the alert to: `{"accountId": "<id>"}` (the key the
    /// template's `ownerSchema` says) or `{"id": "<id>"}`; absent, every owner is judged.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub owner_details: Given<Map<String, Value>>,
    /// Parameters, valid under the template's schema.
    #[schema(nullable = false, value_type = Option<Object>)]
    #[serde(default, deserialize_with = "details::present")]
    pub parameters: Option<Map<String, Value>>,
    /// ACTIVE or INACTIVE.
    pub status: AlertStatus,
}

/// Togai's `UpdateAlertRequest`; every field optional, and so is the body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAlertRequest {
    /// Free text, up to 1,000 bytes.
    #[schema(nullable = false, max_length = 1000)]
    #[serde(default, deserialize_with = "details::present")]
    pub description: Option<String>,
    /// ACTIVE or INACTIVE.
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "details::present")]
    pub status: Option<AlertStatus>,
    /// Evaluation interval in minutes, 1 to 525,600; 0 takes the template's default.
    #[schema(nullable = false, minimum = 0, maximum = 525_600)]
    #[serde(default, deserialize_with = "details::present")]
    pub interval: Option<i64>,
    /// Minutes from creation the alert stays valid, 1 to 52,560,000; 0 means forever.
    #[schema(nullable = false, minimum = 0, maximum = 52_560_000)]
    #[serde(default, deserialize_with = "details::present")]
    pub validity: Option<i64>,
    /// Parameters, valid under the template's schema.
    #[schema(nullable = false, value_type = Option<Object>)]
    #[serde(default, deserialize_with = "details::present")]
    pub parameters: Option<Map<String, Value>>,
}

super::page! {
    /// A page of alerts.
    AlertsPage: Vec<Alert>,
    "The alerts."
}

/// An alert's recent failed and no-data evaluations.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProblemsPage {
    /// Newest first, at most 50.
    pub data: Vec<EvaluationProblem>,
}

fn template(core: &AppState, id: &str) -> Result<std::sync::Arc<Registered>, ApiError> {
    core.registry.get(id).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "alertTemplateId {id:?} is not a registered alert template"
        ))
    })
}

fn interval(requested: i64, template: &Registered) -> Result<i64, ApiError> {
    match requested {
        0 => Ok(i64::from(template.plugin.info().default_interval_minutes)
            .clamp(1, INTERVAL_MAX_MINUTES)),
        n if (1..=INTERVAL_MAX_MINUTES).contains(&n) => Ok(n),
        n => Err(ApiError::Unprocessable(format!(
            "interval {n} is out of range: give minutes from 1 to {INTERVAL_MAX_MINUTES} (a year), or 0 for the template's default"
        ))),
    }
}

/// When validity ends: `validity` minutes after creation. 0, like no validity, is forever.
fn validity(requested: Option<i64>, created_at: Timestamp) -> Result<Option<Timestamp>, ApiError> {
    match requested {
        None | Some(0) => Ok(None),
        Some(n) if (1..=VALIDITY_MAX_MINUTES).contains(&n) => Ok(valid_until(created_at, n)),
        Some(n) => Err(ApiError::Unprocessable(format!(
            "validity {n} is out of range: give minutes from 1 to {VALIDITY_MAX_MINUTES} (100 years), or 0 or nothing for no end"
        ))),
    }
}

fn parameters(
    params: Option<Map<String, Value>>,
    template: &Registered,
) -> Result<Box<RawValue>, ApiError> {
    let params = Value::Object(params.unwrap_or_default());
    template
        .plugin
        .validate_params(&params)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    Ok(raw_json(&params))
}

fn description(text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(t) if t.len() > DESCRIPTION_MAX_BYTES => Err(ApiError::Unprocessable(format!(
            "description is {} bytes; at most {DESCRIPTION_MAX_BYTES} are kept",
            t.len()
        ))),
        t => Ok(t),
    }
}

/// Create an alert.
#[utoipa::path(post, path = "/alerts", tag = "alerts", request_body = CreateAlertRequest,
    responses((status = 200, body = Alert), (status = 422, description = "Invalid alert")))]
async fn create(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateAlertRequest>,
) -> Result<Json<Alert>, ApiError> {
    caller.require(Need::Edit)?;
    let template = template(&core, &request.alert_template_id)?;
    let info = template.plugin.info();
    let owner_details = details::parse(
        Kind::Owner,
        request.owner_details,
        &info.id,
        info.owner_type.as_deref(),
    )?;
    let entity_details = details::parse(
        Kind::Entity,
        request.entity_details,
        &info.id,
        info.entity_type.as_deref(),
    )?;
    let now = core.clock.now();
    let alert = StoredAlert {
        id: new_id("alt"),
        template_id: request.alert_template_id,
        version: 1,
        description: description(request.description)?,
        status: request.status,
        interval_minutes: interval(request.interval, &template)?,
        validity_minutes: request.validity,
        valid_until: validity(request.validity, now)?,
        owner_details: owner_details.as_ref().map(raw_json),
        entity_details: entity_details.as_ref().map(raw_json),
        parameters: parameters(request.parameters, &template)?,
        created_at: now,
        updated_at: now,
        last_evaluation: None,
        expired_at: None,
    };
    core.store.insert_alert(&alert).await?;
    tracing::info!(alert = %alert.id, template = %alert.template_id, "alert created");
    crate::cluster::hold_created(&core, &alert.id).await;
    let response = Alert::from(&alert);
    core.alert_changed(alert).await;
    core.hand_over().await?;
    Ok(Json(response))
}

/// List alerts.
#[utoipa::path(get, path = "/alerts", tag = "alerts", params(Page), responses((status = 200, body = AlertsPage)))]
async fn list(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<AlertsPage>, ApiError> {
    caller.require(Need::Read)?;
    let size = page.size()?;
    let data: Vec<Alert> = core
        .catalog
        .page(page.after()?.as_deref(), size as usize)
        .iter()
        .map(|a| Alert::from(a.as_ref()))
        .collect();
    let next_token = next_token(&data, size, |a| &a.id);
    Ok(Json(AlertsPage { data, next_token }))
}

async fn find(core: &AppState, id: &str) -> Result<std::sync::Arc<StoredAlert>, ApiError> {
    core.alert(id)
        .await
        .ok_or_else(|| ApiError::NotFound(format!("no alert {id}")))
}

/// Get one alert, in Togai's fields.
#[utoipa::path(get, path = "/alerts/{alert_id}", tag = "alerts",
    params(("alert_id" = String, Path, description = "Alert id")),
    responses((status = 200, body = Alert), (status = 404, description = "No such alert")))]
async fn get(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Alert>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(Alert::from(find(&core, &id).await?.as_ref())))
}

/// Tocsin's view of one alert: Togai's fields, validity's end and the last evaluation.
#[utoipa::path(get, path = "/alerts/{alert_id}/details", tag = "alerts",
    params(("alert_id" = String, Path, description = "Alert id")),
    responses((status = 200, body = AlertDetails), (status = 404, description = "No such alert")))]
async fn get_details(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertDetails>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(AlertDetails::from(find(&core, &id).await?.as_ref())))
}

/// Update an alert; its version goes up by one.
#[utoipa::path(patch, path = "/alerts/{alert_id}", tag = "alerts",
    request_body(content = Option<UpdateAlertRequest>, description = "Optional; no body changes nothing but the version"),
    params(("alert_id" = String, Path, description = "Alert id")),
    responses((status = 200, body = Alert), (status = 404, description = "No such alert"), (status = 422, description = "Invalid update")))]
async fn update(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(request): OptionalJson<UpdateAlertRequest>,
) -> Result<Json<Alert>, ApiError> {
    caller.require(Need::Edit)?;
    let mut alert = (*find(&core, &id).await?).clone();
    let template = template(&core, &alert.template_id)?;
    if let Some(text) = description(request.description)? {
        alert.description = Some(text);
    }
    if let Some(status) = request.status {
        alert.status = status;
    }
    if let Some(requested) = request.interval {
        alert.interval_minutes = interval(requested, &template)?;
    }
    if let Some(requested) = request.validity {
        alert.valid_until = validity(Some(requested), alert.created_at)?;
        alert.validity_minutes = Some(requested);
        alert.expired_at = None;
    }
    if let Some(params) = request.parameters {
        alert.parameters = parameters(Some(params), &template)?;
    }
    alert.version += 1;
    alert.updated_at = core.clock.now();
    core.store.update_alert(&alert).await?;
    tracing::info!(alert = %alert.id, version = alert.version, "alert updated");
    let response = Alert::from(&alert);
    core.alert_changed(alert).await;
    core.hand_over().await?;
    Ok(Json(response))
}

/// An alert's recent failed and no-data evaluations, newest first.
#[utoipa::path(get, path = "/alerts/{alert_id}/problems", tag = "alerts",
    params(("alert_id" = String, Path, description = "Alert id")),
    responses((status = 200, body = ProblemsPage), (status = 404, description = "No such alert")))]
async fn problems(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProblemsPage>, ApiError> {
    caller.require(Need::Read)?;
    find(&core, &id).await?;
    Ok(Json(ProblemsPage {
        data: core.store.evaluation_problems(&id).await?,
    }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, update))
        .routes(routes!(get_details))
        .routes(routes!(problems))
}

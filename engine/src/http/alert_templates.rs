//! `/alert_templates`: the templates alerts can instantiate (Togai's resource).

use super::auth::{Caller, Need};
use super::{ApiError, AppState, Json, Page, next_token};
use crate::registry::Registered;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An alert template, exactly as Togai's `AlertTemplate` schema has it (Togai's clients
/// refuse any other field). The component's version, digest, report schema and whether it
/// auto-resolves are Tocsin's, at `GET /plugins/{id}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertTemplate {
    /// Template id.
    pub id: String,
    /// Name.
    pub name: String,
    /// What breaches it.
    pub description: String,
    /// Default evaluation interval, minutes.
    pub interval: i64,
    /// JSON Schema, as a string, of the `entityDetails` an alert may give: the one key that
    /// names an entity of `entityType`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_schema: Option<String>,
    /// The entity type it watches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// JSON Schema, as a string, of the `ownerDetails` an alert may give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_schema: Option<String>,
    /// The owner type alerts are scoped to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<String>,
    /// JSON Schema of the parameters, as a JSON string (as Togai sends it).
    pub parameters_schema: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last given a new component.
    pub updated_at: DateTime<Utc>,
}

impl From<&Registered> for AlertTemplate {
    fn from(t: &Registered) -> Self {
        let info = t.plugin.info();
        let schema = |key: Option<String>| {
            key.map(|key| {
                serde_json::json!({"type": "object", "properties": {key: {"type": "string"}},
                    "additionalProperties": false})
                .to_string()
            })
        };
        Self {
            id: info.id.clone(),
            name: info.name.clone(),
            description: info.description.clone(),
            interval: i64::from(info.default_interval_minutes),
            entity_schema: schema(info.entity_type.as_deref().map(super::details::togai_key)),
            entity_type: info.entity_type.clone(),
            owner_schema: schema(info.owner_type.as_deref().map(super::details::togai_key)),
            owner_type: info.owner_type.clone(),
            parameters_schema: info.params_schema.to_string(),
            created_at: t.stored.created_at,
            updated_at: t.stored.updated_at,
        }
    }
}

super::page! {
    /// A page of templates.
    AlertTemplatesPage: Vec<AlertTemplate>,
    "The templates."
}

/// List alert templates.
#[utoipa::path(get, path = "/alert_templates", tag = "alert templates", params(Page),
    responses((status = 200, body = AlertTemplatesPage)))]
async fn list(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<AlertTemplatesPage>, ApiError> {
    caller.require(Need::Read)?;
    let (size, after) = (page.size()?, page.after()?);
    let data: Vec<AlertTemplate> = core
        .registry
        .list()
        .iter()
        .filter(|t| {
            after
                .as_deref()
                .is_none_or(|a| t.plugin.info().id.as_str() > a)
        })
        .take(size as usize)
        .map(|t| AlertTemplate::from(t.as_ref()))
        .collect();
    let next_token = next_token(&data, size, |t| &t.id);
    Ok(Json(AlertTemplatesPage { data, next_token }))
}

/// Get one alert template.
#[utoipa::path(get, path = "/alert_templates/{alert_template_id}", tag = "alert templates",
    params(("alert_template_id" = String, Path, description = "Template id")),
    responses((status = 200, body = AlertTemplate), (status = 404, description = "No such template")))]
async fn get(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertTemplate>, ApiError> {
    caller.require(Need::Read)?;
    let template = core
        .registry
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no alert template {id}")))?;
    Ok(Json(AlertTemplate::from(template.as_ref())))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
}

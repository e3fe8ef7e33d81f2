//! `/plugins`: upload a template component (admin only, audited).

use super::auth::{Caller, Need};
use super::{ApiError, AppState, Json};
use crate::registry::{Registered, Upload, UploadError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A registered template's component: everything it says about itself, and where it came
/// from. Togai's `/alert_templates` shows the fields Togai's schema has; this is the rest.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plugin {
    /// Template id.
    pub id: String,
    /// Semantic version of the component.
    pub version: String,
    /// Name.
    pub name: String,
    /// What breaches it.
    pub description: String,
    /// Default evaluation interval, minutes.
    pub interval: i64,
    /// The entity type it watches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// The owner type alerts are scoped to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<String>,
    /// JSON Schema of the parameters.
    #[schema(value_type = Object)]
    pub parameters_schema: Value,
    /// JSON Schema of the report data.
    #[schema(value_type = Object)]
    pub report_schema: Value,
    /// Whether incidents close by themselves when the condition clears.
    pub auto_resolvable: bool,
    /// Built in, or uploaded.
    pub builtin: bool,
    /// SHA-256 of the component.
    pub digest: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last given a new component.
    pub updated_at: DateTime<Utc>,
}

impl From<&Registered> for Plugin {
    fn from(t: &Registered) -> Self {
        let info = t.plugin.info();
        Self {
            id: info.id.clone(),
            version: info.version.clone(),
            name: info.name.clone(),
            description: info.description.clone(),
            interval: i64::from(info.default_interval_minutes),
            entity_type: info.entity_type.clone(),
            owner_type: info.owner_type.clone(),
            parameters_schema: info.params_schema.clone(),
            report_schema: info.report_schema.clone(),
            auto_resolvable: info.auto_resolvable,
            builtin: t.stored.builtin,
            digest: t.stored.digest.clone(),
            created_at: t.stored.created_at,
            updated_at: t.stored.updated_at,
        }
    }
}

/// A WebAssembly component's bytes.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Component(pub Vec<u8>);

/// Every registered template's component.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginList {
    /// In id order.
    pub data: Vec<Plugin>,
}

/// List the registered templates' components.
#[utoipa::path(get, path = "/plugins", tag = "plugins", responses((status = 200, body = PluginList)))]
async fn list(State(core): State<AppState>, caller: Caller) -> Result<Json<PluginList>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(PluginList {
        data: core
            .registry
            .list()
            .iter()
            .map(|t| Plugin::from(t.as_ref()))
            .collect(),
    }))
}

/// One registered template's component.
#[utoipa::path(get, path = "/plugins/{template_id}", tag = "plugins",
    params(("template_id" = String, Path, description = "Template id")),
    responses((status = 200, body = Plugin)))]
async fn get(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Plugin>, ApiError> {
    caller.require(Need::Read)?;
    let template = core
        .registry
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no alert template {id}")))?;
    Ok(Json(Plugin::from(template.as_ref())))
}

/// Largest component accepted. The built-ins are under 400 KiB; 16 MiB leaves room for
/// templates that embed data such as time-zone tables.
pub const UPLOAD_LIMIT: usize = 16 << 20;

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::Sandbox(e) => ApiError::Unprocessable(e.to_string()),
            UploadError::Invalid(m) => ApiError::Unprocessable(m),
            UploadError::Conflict(m) => ApiError::Conflict(m),
            UploadError::Store(e) => e.into(),
        }
    }
}

/// Register a template from a WebAssembly component, or upgrade it to a higher version.
#[utoipa::path(post, path = "/plugins", tag = "plugins",
    request_body(content = Component, content_type = "application/wasm", description = "The component, built with tocsin-sdk for wasm32-wasip2"),
    responses((status = 201, body = Plugin, description = "Registered"), (status = 200, body = Plugin, description = "Upgraded, or already registered"),
        (status = 409, description = "Not a higher version"), (status = 413, description = "Too large"), (status = 415, description = "Not application/wasm"), (status = 422, description = "Not a valid template component")))]
async fn upload(
    State(core): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Plugin>), ApiError> {
    caller.require(Need::Admin)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/wasm") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "upload the component with `Content-Type: application/wasm`, not {content_type:?}"
        )));
    }
    let (template, outcome) = core
        .registry
        .upload(&core.store, &body, &caller.key_id, &core.clock)
        .await?;
    let info = template.plugin.info();
    if outcome != Upload::Unchanged {
        core.store
            .audit(
                core.clock.now(),
                &caller.key_id,
                if outcome == Upload::Created { "plugin.register" } else { "plugin.upgrade" },
                &format!("alert_templates/{}", info.id),
                serde_json::json!({"version": info.version, "digest": template.stored.digest, "bytes": body.len()}),
            )
            .await?;
        tracing::info!(template = %info.id, version = %info.version, by = %caller.key_id, "template registered");
    }
    let status = if outcome == Upload::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Plugin::from(template.as_ref()))))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload, list))
        .routes(routes!(get))
        .layer(DefaultBodyLimit::max(UPLOAD_LIMIT))
}

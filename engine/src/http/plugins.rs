//! `/plugins`: upload a template component (admin only, audited).

use super::alert_templates::AlertTemplate;
use super::auth::{Caller, Need};
use super::{ApiError, AppState, Json};
use crate::registry::{Upload, UploadError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "The component, built with tocsin-sdk for wasm32-wasip2"),
    responses((status = 201, body = AlertTemplate, description = "Registered"), (status = 200, body = AlertTemplate, description = "Upgraded, or already registered"),
        (status = 409, description = "Not a higher version"), (status = 413, description = "Too large"), (status = 415, description = "Not application/wasm"), (status = 422, description = "Not a valid template component")))]
async fn upload(
    State(core): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<AlertTemplate>), ApiError> {
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
    Ok((status, Json(AlertTemplate::from(template.as_ref()))))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(UPLOAD_LIMIT))
}

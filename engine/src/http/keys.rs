//! `/api_keys` and `/audit`: admin only; every key change is audited.

use super::auth::{Caller, Need, generate_secret};
use super::{ApiError, AppState, Json, Page, next_token};
use crate::store::incidents::new_id;
use crate::store::keys::{ApiKey, AuditEntry, Role};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The body of `POST /api_keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Who or what the key is for.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// admin, editor, viewer or ingest.
    pub role: Role,
}

/// A new key: the secret is shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The stored key.
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret to send as `Authorization: Bearer` or `X-API-Key`.
    pub secret: String,
}

super::page! {
    /// Every key, without secrets.
    KeysPage: Vec<ApiKey>,
    "The keys, in id order."
}

super::page! {
    /// Audit entries, newest first.
    AuditPage: Vec<AuditEntry>,
    "The entries."
}

/// Create an API key.
#[utoipa::path(post, path = "/api_keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKey)))]
async fn create(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(Need::Admin)?;
    super::entities::check_name("name", &request.name)?;
    let secret = generate_secret();
    let key = ApiKey {
        id: new_id("key"),
        name: request.name,
        role: request.role,
        created_at: core.clock.now(),
        created_by: Some(caller.key_id.clone()),
        revoked_at: None,
    };
    core.store.insert_key(&key, &secret).await?;
    core.store
        .audit(
            key.created_at,
            &caller.key_id,
            "api_key.create",
            &format!("api_keys/{}", key.id),
            serde_json::json!({"name": key.name, "role": key.role}),
        )
        .await?;
    core.keys.reload(&core.store).await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}

/// List API keys.
#[utoipa::path(get, path = "/api_keys", tag = "keys", params(Page), responses((status = 200, body = KeysPage)))]
async fn list(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<KeysPage>, ApiError> {
    caller.require(Need::Admin)?;
    let size = page.size()?;
    let data = core.store.list_keys(page.after()?.as_deref(), size).await?;
    let next_token = next_token(&data, size, |k| &k.id);
    Ok(Json(KeysPage { data, next_token }))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/api_keys/{key_id}", tag = "keys",
    params(("key_id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such key")))]
async fn revoke(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    let now = core.clock.now();
    if !core.store.revoke_key(&id, now).await? {
        return Err(ApiError::NotFound(format!("no active key {id}")));
    }
    core.store
        .audit(
            now,
            &caller.key_id,
            "api_key.revoke",
            &format!("api_keys/{id}"),
            serde_json::json!({}),
        )
        .await?;
    core.keys.reload(&core.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read the audit log.
#[utoipa::path(get, path = "/audit", tag = "keys", params(Page), responses((status = 200, body = AuditPage)))]
async fn audit(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(Need::Admin)?;
    let size = page.size()?;
    let before = page
        .after()?
        .map(|id| {
            id.parse::<i64>()
                .map_err(|_| ApiError::BadRequest("nextToken is not one this server issued".into()))
        })
        .transpose()?;
    let data = core.store.list_audit(before, size).await?;
    let next_token = if data.len() as i64 == size {
        crate::store::next_token(data.last().map(|e| e.id.to_string()).as_deref())
    } else {
        None
    };
    Ok(Json(AuditPage { data, next_token }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
        .routes(routes!(audit))
}

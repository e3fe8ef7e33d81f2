//! `/entities`: the latest snapshot of each entity, pushed by billing platforms.

use super::auth::{Caller, Need};
use super::{ApiError, AppState, Json, OwnerFilters, Page, next_token};
use crate::store::data::EntityUpsert;
use crate::store::ingest::Write;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest entity type, id or owner accepted.
const NAME_LIMIT: usize = 256;

/// The body of `PUT /entities/{entityType}/{entityId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntitySnapshot {
    /// Owner type, such as ACCOUNT.
    #[schema(min_length = 1, max_length = 256)]
    pub owner_type: Option<String>,
    /// Owner id.
    #[schema(min_length = 1, max_length = 256)]
    pub owner_id: Option<String>,
    /// The entity's attributes (`balance`, `status`…), a JSON object. Kept as the text
    /// sent: it is stored and handed to templates as it is, never parsed on the way.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub attributes: Box<RawValue>,
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("`{}` is JSON")
}

/// A stored entity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    /// Type.
    pub entity_type: String,
    /// Id.
    pub entity_id: String,
    /// Owner type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<String>,
    /// Owner id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Attributes.
    #[schema(value_type = Object)]
    pub attributes: Box<RawValue>,
    /// When this snapshot was stored.
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<tocsin_sdk::Entity> for Entity {
    type Error = ApiError;

    /// A stored entity, its attributes as the text that was stored.
    fn try_from(e: tocsin_sdk::Entity) -> Result<Self, ApiError> {
        let attributes =
            RawValue::from_string(e.attributes.as_json().to_owned()).map_err(|err| {
                ApiError::Internal(format!(
                    "the stored attributes of {} entity {} are not JSON: {err}",
                    e.entity_type, e.entity_id
                ))
            })?;
        Ok(Self {
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            owner_type: e.owner_type,
            owner_id: e.owner_id,
            attributes,
            updated_at: e.updated_at,
        })
    }
}

super::page! {
    /// A page of entities.
    EntitiesPage: Vec<Entity>,
    "The entities, by id."
}

/// Checks a name from the path or body.
pub fn check_name(what: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::Unprocessable(format!("{what} must not be empty")));
    }
    if value.len() > NAME_LIMIT {
        return Err(ApiError::Unprocessable(format!(
            "{what} is longer than {NAME_LIMIT} bytes"
        )));
    }
    Ok(())
}

/// Store the latest snapshot of an entity; alerts that read it are evaluated again.
#[utoipa::path(put, path = "/entities/{entity_type}/{entity_id}", tag = "data", request_body = EntitySnapshot,
    params(("entity_type" = String, Path, description = "CREDIT, WALLET, FEATURE, INVOICE, ACCOUNT…"), ("entity_id" = String, Path, description = "Entity id")),
    responses((status = 200, body = Entity), (status = 422, description = "Invalid snapshot")))]
async fn put(
    State(core): State<AppState>,
    caller: Caller,
    Path((entity_type, entity_id)): Path<(String, String)>,
    Json(snapshot): Json<EntitySnapshot>,
) -> Result<Json<Entity>, ApiError> {
    caller.require(Need::Ingest)?;
    check_name("entityType", &entity_type)?;
    check_name("entityId", &entity_id)?;
    for (what, value) in [
        ("ownerType", &snapshot.owner_type),
        ("ownerId", &snapshot.owner_id),
    ] {
        if let Some(value) = value {
            check_name(what, value)?;
        }
    }
    // serde_json has checked it is JSON; templates read it as an object.
    if !snapshot.attributes.get().starts_with('{') {
        return Err(ApiError::Unprocessable(format!(
            "attributes must be a JSON object, not {}",
            snapshot.attributes.get()
        )));
    }
    let now = core.clock.now();
    let upsert = EntityUpsert {
        entity_type,
        entity_id,
        owner_type: snapshot.owner_type,
        owner_id: snapshot.owner_id,
        attributes: snapshot.attributes.get().to_owned(),
    };
    let entity = Entity {
        entity_type: upsert.entity_type.clone(),
        entity_id: upsert.entity_id.clone(),
        owner_type: upsert.owner_type.clone(),
        owner_id: upsert.owner_id.clone(),
        attributes: snapshot.attributes,
        updated_at: now,
    };
    core.ingest
        .write(Write::Entities(vec![upsert]), now)
        .await?;
    core.entity_changed(
        &entity.entity_type,
        &entity.entity_id,
        entity.owner_id.as_deref(),
    );
    core.hand_over().await?;
    Ok(Json(entity))
}

/// Get one entity's latest snapshot.
#[utoipa::path(get, path = "/entities/{entity_type}/{entity_id}", tag = "data",
    params(("entity_type" = String, Path, description = "Entity type"), ("entity_id" = String, Path, description = "Entity id")),
    responses((status = 200, body = Entity), (status = 404, description = "No such entity")))]
async fn get(
    State(core): State<AppState>,
    caller: Caller,
    Path((entity_type, entity_id)): Path<(String, String)>,
) -> Result<Json<Entity>, ApiError> {
    caller.require(Need::Read)?;
    let entity = core
        .store
        .entity(&entity_type, &entity_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no {entity_type} entity {entity_id}")))?;
    Ok(Json(entity.try_into()?))
}

/// List entities of a type.
#[utoipa::path(get, path = "/entities/{entity_type}", tag = "data",
    params(("entity_type" = String, Path, description = "Entity type"), OwnerFilters),
    responses((status = 200, body = EntitiesPage)))]
async fn list(
    State(core): State<AppState>,
    caller: Caller,
    Path(entity_type): Path<String>,
    Query(filters): Query<OwnerFilters>,
) -> Result<Json<EntitiesPage>, ApiError> {
    caller.require(Need::Read)?;
    let page = Page {
        next_token: filters.next_token,
        page_size: filters.page_size,
    };
    let size = page.size()?;
    let entities = core
        .store
        .list_entities(
            &entity_type,
            filters.owner_id.as_deref(),
            page.after()?.as_deref(),
            size,
        )
        .await?;
    let next_token = next_token(&entities, size, |e| &e.entity_id);
    Ok(Json(EntitiesPage {
        data: entities
            .into_iter()
            .map(Entity::try_from)
            .collect::<Result<_, _>>()?,
        next_token,
    }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put, get))
        .routes(routes!(list))
}

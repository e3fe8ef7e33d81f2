//! `/events`: usage and other events, appended idempotently by id.

use super::auth::{Caller, Need};
use super::entities::check_name;
use super::{ApiError, AppState, Json, OwnerFilters, Page, next_token};
use crate::store::data::Event as StoredEvent;
use crate::store::ingest::Write;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use tocsin_sdk::Decimal;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most events in one request.
const BATCH_LIMIT: usize = 1000;

/// One event. A repeated `id` replaces the earlier event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    /// Idempotency key.
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
    /// Event type, such as `usage`.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Owner type, such as ACCOUNT.
    pub owner_type: Option<String>,
    /// Owner id.
    pub owner_id: Option<String>,
    /// Entity type, such as USAGE_METER.
    pub entity_type: Option<String>,
    /// Entity id.
    pub entity_id: Option<String>,
    /// When it happened, RFC 3339.
    pub timestamp: DateTime<Utc>,
    /// Quantity, a decimal number or string.
    #[schema(schema_with = super::values::decimal_schema)]
    pub value: Option<Decimal>,
    /// Free attributes; string ones can be matched by templates.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

impl From<Event> for StoredEvent {
    fn from(e: Event) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type,
            owner_type: e.owner_type,
            owner_id: e.owner_id,
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            timestamp: e.timestamp,
            value: e.value,
            attributes: e.attributes,
        }
    }
}

impl From<StoredEvent> for Event {
    fn from(e: StoredEvent) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type,
            owner_type: e.owner_type,
            owner_id: e.owner_id,
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            timestamp: e.timestamp,
            value: e.value,
            attributes: e.attributes,
        }
    }
}

/// The body of `POST /events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// 1 to 1000 events.
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<Event>,
}

/// How many events were stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Events stored (new or replacing one with the same id).
    pub accepted: usize,
}

super::page! {
    /// A page of events.
    EventsPage: Vec<Event>,
    "The events, by id."
}

/// Store events; alerts that read events of their owners are evaluated again.
#[utoipa::path(post, path = "/events", tag = "data", request_body = EventBatch,
    responses((status = 200, body = Accepted), (status = 422, description = "Invalid events")))]
async fn post(
    State(core): State<AppState>,
    caller: Caller,
    Json(batch): Json<EventBatch>,
) -> Result<Json<Accepted>, ApiError> {
    caller.require(Need::Ingest)?;
    if batch.events.is_empty() || batch.events.len() > BATCH_LIMIT {
        return Err(ApiError::Unprocessable(format!(
            "events holds {} events; send 1 to {BATCH_LIMIT}",
            batch.events.len()
        )));
    }
    let mut events = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.into_iter().enumerate() {
        check_name(&format!("events[{i}].id"), &e.id)?;
        events.push(StoredEvent::from(e));
    }
    let owners: BTreeSet<String> = events.iter().filter_map(|e| e.owner_id.clone()).collect();
    let accepted = events.len();
    core.ingest
        .write(Write::Events(events), core.clock.now())
        .await?;
    core.events_changed(owners.iter().map(String::as_str));
    core.hand_over().await?;
    Ok(Json(Accepted { accepted }))
}

/// Get one event.
#[utoipa::path(get, path = "/events/{event_id}", tag = "data",
    params(("event_id" = String, Path, description = "Event id")),
    responses((status = 200, body = Event), (status = 404, description = "No such event")))]
async fn get(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Event>, ApiError> {
    caller.require(Need::Read)?;
    let event = core
        .store
        .event(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    Ok(Json(event.into()))
}

/// List events.
#[utoipa::path(get, path = "/events", tag = "data", params(OwnerFilters), responses((status = 200, body = EventsPage)))]
async fn list(
    State(core): State<AppState>,
    caller: Caller,
    Query(filters): Query<OwnerFilters>,
) -> Result<Json<EventsPage>, ApiError> {
    caller.require(Need::Read)?;
    let page = Page {
        next_token: filters.next_token,
        page_size: filters.page_size,
    };
    let size = page.size()?;
    let events = core
        .store
        .list_events(filters.owner_id.as_deref(), page.after()?.as_deref(), size)
        .await?;
    let next_token = next_token(&events, size, |e| &e.id);
    Ok(Json(EventsPage {
        data: events.into_iter().map(Event::from).collect(),
        next_token,
    }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post, list))
        .routes(routes!(get))
}

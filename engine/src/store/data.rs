//! Entity snapshots and events, and the answers to templates' queries.

use super::Result;
use tocsin_sdk::time::Timestamp;
use tocsin_sdk::{Answer, Decimal, Entity, Query};

/// An entity snapshot to store.
#[derive(Debug, Clone)]
pub struct EntityUpsert {
    /// Type.
    pub entity_type: String,
    /// Id.
    pub entity_id: String,
    /// Owner type.
    pub owner_type: Option<String>,
    /// Owner id.
    pub owner_id: Option<String>,
    /// Attributes: the text of a JSON object, stored as it is.
    pub attributes: String,
}

/// A pushed event, as stored: the idempotency key, what it is about, when, how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Idempotency key: an event sent again with the same id replaces the first.
    pub id: String,
    /// Event type, such as `usage`.
    pub event_type: Option<String>,
    /// Owner type.
    pub owner_type: Option<String>,
    /// Owner id.
    pub owner_id: Option<String>,
    /// Entity type.
    pub entity_type: Option<String>,
    /// Entity id.
    pub entity_id: Option<String>,
    /// When it happened.
    pub timestamp: Timestamp,
    /// Quantity, summed by event queries.
    pub value: Option<Decimal>,
    /// Free attributes; string ones can be matched by queries.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

super::dispatch! {
    /// The entities among `keys` (type and id) that exist, in one read.
    fn entities_by_key(&self, keys: &[(&str, &str)]) -> Result<Vec<Entity>>;
    /// The entities of these (entity type, owner id) pairs, each pair's in id order.
    fn entities_by_owner(&self, owners: &[(&str, &str)]) -> Result<Vec<Entity>>;
    /// The ids of the entities of a type, of one owner or of all, in id order.
    fn entity_ids(&self, entity_type: &str, owner_id: Option<&str>) -> Result<Vec<String>>;
    /// One entity.
    fn entity(&self, entity_type: &str, entity_id: &str) -> Result<Option<Entity>>;
    /// Entities of a type, optionally of one owner, after `after_id`, in id order.
    fn list_entities(&self, entity_type: &str, owner_id: Option<&str>, after_id: Option<&str>, limit: i64) -> Result<Vec<Entity>>;
    /// One event.
    fn event(&self, id: &str) -> Result<Option<Event>>;
    /// Events of an owner (or all), newest timestamps last, after `after_id`.
    fn list_events(&self, owner_id: Option<&str>, after_id: Option<&str>, limit: i64) -> Result<Vec<Event>>;
    /// Answers one template query from the database.
    fn answer(&self, query: &Query) -> Result<Answer>;
}

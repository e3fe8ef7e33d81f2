//! Integrations (cloud and monitor webhooks), their delivery dedup and rejected deliveries.

use super::Result;
use chrono::{DateTime, Utc};
use tocsin_domain::IntegrationKind as Kind;
use tocsin_sdk::time::Timestamp;

/// Rejected deliveries kept per integration.
pub const REJECTED_KEPT: i64 = 50;

/// An integration, without its secret.
#[derive(Debug, Clone)]
pub struct Integration {
    /// Id, in the hook URL.
    pub id: String,
    /// Name.
    pub name: String,
    /// Which platform.
    pub kind: Kind,
    /// The cloud_alarm alert that turns its alarms into incidents.
    pub alert_id: Option<String>,
    /// Grafana's HMAC key.
    pub hmac_key: Option<String>,
    /// Amazon SNS: signing certificates (PEM) to verify against instead of fetching them.
    pub pinned_certificates: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed (a rotation).
    pub updated_at: DateTime<Utc>,
}

/// A delivery that was refused.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedDelivery {
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// The start of the body.
    pub body: String,
}

super::dispatch! {
    /// Creates an integration with `secret`.
    fn insert_integration(&self, integration: &Integration, secret: &str) -> Result<()>;
    /// Replaces an integration's secret; false when there is no such integration.
    fn rotate_integration_secret(&self, id: &str, secret: &str, at: Timestamp) -> Result<bool>;
    /// Deletes an integration and its delivery records; false when there was none.
    fn delete_integration(&self, id: &str) -> Result<bool>;
    /// One integration.
    fn integration(&self, id: &str) -> Result<Option<Integration>>;
    /// The integration whose id and secret these are; `None` for either wrong.
    fn authenticate_integration(&self, id: &str, secret: &str) -> Result<Option<Integration>>;
    /// Integrations in id order after `after_id`.
    fn list_integrations(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<Integration>>;
    /// Keeps a refused delivery, dropping the oldest beyond [`REJECTED_KEPT`].
    fn reject_delivery(&self, integration_id: &str, reason: &str, body: &[u8], at: Timestamp) -> Result<()>;
    /// Deletes integrations' alarms that resolved before `before` and have no unclosed
    /// incident (cloud_alarm's subject is the alarm's entity id). Returns how many.
    fn prune_resolved_alarms(&self, before: Timestamp) -> Result<u64>;
    /// Forgets the digests of deliveries taken before `before`. Returns how many.
    fn prune_deliveries(&self, before: Timestamp) -> Result<u64>;
    /// An integration's rejected deliveries, newest first.
    fn rejected_deliveries(&self, integration_id: &str) -> Result<Vec<RejectedDelivery>>;
}

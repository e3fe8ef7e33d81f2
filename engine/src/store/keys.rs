//! API keys (stored hashed) and the audit log.

use super::Result;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tocsin_sdk::time::Timestamp;

/// What a key may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including rosters, plugins, integrations and keys.
    Admin,
    /// Alerts and incidents, and data.
    Editor,
    /// Read only; never full phone numbers.
    Viewer,
    /// Push data only.
    Ingest,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Editor => "editor",
            Self::Viewer => "viewer",
            Self::Ingest => "ingest",
        }
    }

    /// Reads a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "editor" => Some(Self::Editor),
            "viewer" => Some(Self::Viewer),
            "ingest" => Some(Self::Ingest),
            _ => None,
        }
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Key id.
    pub id: String,
    /// Who or what it is for.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The key that made it.
    pub created_by: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// SHA-256 of a presented key.
pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// One audit entry.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// The key id that acted.
    pub actor: String,
    /// What was done (`plugin.upload`, `api_key.create`…).
    pub action: String,
    /// What it was done to.
    pub resource: String,
    /// Details.
    pub detail: Value,
}

super::dispatch! {
    /// Stores a key by its hash.
    fn insert_key(&self, key: &ApiKey, secret: &str) -> Result<()>;
    /// How many keys exist, revoked or not.
    fn count_keys(&self) -> Result<i64>;
    /// Every key.
    fn list_keys(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<ApiKey>>;
    /// Every usable key with its hash, for the in-memory lookup.
    fn active_key_hashes(&self) -> Result<Vec<(Vec<u8>, ApiKey)>>;
    /// Revokes a key; false when there is no such unrevoked key.
    fn revoke_key(&self, id: &str, at: Timestamp) -> Result<bool>;
    /// Records a privileged change.
    fn audit(&self, at: Timestamp, actor: &str, action: &str, resource: &str, detail: Value) -> Result<()>;
    /// Audit entries, newest first, before `before` when given.
    fn list_audit(&self, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>>;
}

//! API keys: who is calling, and what their role lets them do.

use super::{ApiError, AppState};
use crate::store::keys::{ApiKey, Role, hash_key};
use crate::store::{self, Store};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::collections::HashMap;
use std::sync::RwLock;

/// The usable keys, by hash, in memory so a request costs no database read.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: RwLock<HashMap<Vec<u8>, ApiKey>>,
}

impl KeyRing {
    /// Loads the unrevoked keys.
    pub async fn load(store: &Store) -> store::Result<Self> {
        let ring = Self::default();
        ring.reload(store).await?;
        Ok(ring)
    }

    /// Re-reads the keys after a change.
    pub async fn reload(&self, store: &Store) -> store::Result<()> {
        let keys = store.active_key_hashes().await?.into_iter().collect();
        *self.keys.write().expect("key ring lock") = keys;
        Ok(())
    }

    /// The unrevoked key whose secret this is.
    pub(crate) fn find(&self, secret: &str) -> Option<ApiKey> {
        self.keys
            .read()
            .expect("key ring lock")
            .get(&hash_key(secret))
            .cloned()
    }
}

/// A new key: 256 random bits, URL-safe.
pub fn generate_secret() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    format!(
        "tsk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id (what the audit log names).
    pub key_id: String,
    /// The key's name (what silences name as their maker).
    pub key_name: String,
    /// The key's role.
    pub role: Role,
}

/// What a request needs to be allowed.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Read alerts, incidents, templates, data.
    Read,
    /// Change alerts and incidents.
    Edit,
    /// Push entities and events.
    Ingest,
    /// Rosters, plugins, integrations, keys, audit.
    Admin,
}

impl Caller {
    /// Allows the request or says which roles may make it.
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        use Role::*;
        let allowed: &[Role] = match need {
            Need::Read => &[Admin, Editor, Viewer],
            Need::Edit => &[Admin, Editor],
            Need::Ingest => &[Admin, Editor, Ingest],
            Need::Admin => &[Admin],
        };
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
            Err(ApiError::Forbidden(format!(
                "this key's role is {}; this request needs {}",
                self.role.as_str(),
                names.join(" or ")
            )))
        }
    }
}

fn presented_key(parts: &Parts) -> Option<&str> {
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(value) = header("authorization") {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    header("x-api-key").map(str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = presented_key(parts).ok_or(ApiError::Unauthorized)?;
        let key = state.keys.find(secret).ok_or(ApiError::Unauthorized)?;
        Ok(Self {
            key_id: key.id,
            key_name: key.name,
            role: key.role,
        })
    }
}

//! The operator console's sessions (an API key signed in through the browser) and what the
//! console does that the phone does otherwise: acknowledging an incident.

use super::Result;
use super::keys::Role;
use tocsin_sdk::time::Timestamp;

/// A live session, with the key it was signed in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The key's id.
    pub key_id: String,
    /// The key's name.
    pub key_name: String,
    /// The key's role.
    pub role: Role,
    /// The token the session's forms carry.
    pub csrf: String,
}

/// The console's order of incidents: those not closed first, each part newest first (ids
/// grow with time), at most `limit`.
pub(crate) fn console_order(
    mut incidents: Vec<super::incidents::Incident>,
    limit: i64,
) -> Vec<super::incidents::Incident> {
    use super::incidents::IncidentStatus;
    incidents.sort_by(|a, b| {
        let closed = |i: &super::incidents::Incident| i.status == IncidentStatus::Closed;
        closed(a).cmp(&closed(b)).then_with(|| b.id.cmp(&a.id))
    });
    incidents.truncate(usize::try_from(limit).unwrap_or(0));
    incidents
}

super::dispatch! {
    /// Stores a session under the SHA-256 of its cookie's token, and forgets expired ones.
    fn create_session(&self, hash: &[u8], key_id: &str, csrf: &str, at: Timestamp, expires_at: Timestamp) -> Result<()>;
    /// The session whose token hashes to `hash`, if it has not expired at `at` and its key
    /// is not revoked.
    fn session(&self, hash: &[u8], at: Timestamp) -> Result<Option<Session>>;
    /// Ends a session.
    fn delete_session(&self, hash: &[u8]) -> Result<()>;
    /// Acknowledges an OPEN incident by `by` (`acknowledged` on its timeline, by the
    /// console): its loop is over and a call still ringing is ended. `None` when there is
    /// no such incident; `Some(false)` when it was not OPEN.
    fn acknowledge_incident(&self, id: &str, by: &str, at: Timestamp) -> Result<Option<bool>>;
    /// Up to `limit` incidents in one of `statuses`, of template `template` and of one of
    /// `alerts` when given: those not closed first, each part newest first.
    fn console_incidents(&self, statuses: &[&str], template: Option<&str>, alerts: Option<&[String]>, limit: i64) -> Result<Vec<super::incidents::Incident>>;
    /// An integration's last `limit` deliveries taken: when, newest first.
    fn recent_deliveries(&self, integration_id: &str, limit: i64) -> Result<Vec<Timestamp>>;
}

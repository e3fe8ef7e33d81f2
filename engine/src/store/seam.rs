//! The store seam: what the engine asks of its database, as traits, so that a second
//! database (PostgreSQL) is a second implementation of the same traits, held to the same
//! semantics by one contract suite (`tests/it/store_contract.rs`), whatever it is run on.
//!
//! [`Store`] (SQLite) implements them all. The call loop's driver and Twilio's webhooks
//! reach the call loops only through [`CallLoops`]; the lists and the incident reads
//! through [`Incidents`] and [`Data`]; the group commit of pushed data through [`Writes`].

use super::Result;
use super::data::Event;
use super::escalation::CallTimes;
use super::escalation::{Answer, CallRecord, Entry, Fallback, Opened, PendingCall, Roster, Route};
use super::incidents::{Change, Incident, IncidentFilter, Observation, TimelineEntry};
use super::ingest::Write;
use super::oncall::{
    Directory, Operator, OverrideRecord, RotationRecord, ScheduleRecord, Uses, Wanted,
};
use super::texts::{Accepted, Text};
use std::future::Future;
use tocsin_domain::call_loop::NotPlaced;
use tocsin_sdk::Entity;
use tocsin_sdk::time::Timestamp;
use tocsin_twilio::CallStatus;

/// The durable call loops: every transition is one transaction that checks the state it
/// moves from, so a duplicate, late or out-of-order webhook finds nothing to change, and a
/// step is dialed at most once.
pub trait CallLoops: Send + Sync {
    /// Starts the call loops of newly opened incidents that a route sends to a roster, in
    /// the order given; for each, the roster's id. `phones` names what places the calls;
    /// `"unavailable"` starts none and says so on each incident's timeline.
    fn start_loops(
        &self,
        opened: &[Opened<'_>],
        phones: &str,
    ) -> impl Future<Output = Result<Vec<Option<String>>>> + Send;

    /// The loop to dial next: the longest waiting whose next number is not on a call.
    fn next_call(&self) -> impl Future<Output = Result<Option<PendingCall>>> + Send;

    /// Records the intent to call `pending`'s member before Twilio is asked. `None` when
    /// the loop moved on or the step already has its call: a step is recorded once.
    fn begin_call(
        &self,
        pending: &PendingCall,
        at: Timestamp,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Twilio took the call; false when the loop no longer wants it (end it).
    fn call_placed(
        &self,
        call_id: &str,
        sid: &str,
        status: CallStatus,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The call's placing came to nothing: the loop moves on.
    fn call_not_placed(
        &self,
        call_id: &str,
        why: NotPlaced,
        reason: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A status callback or read-back; whether anything changed.
    fn call_status(
        &self,
        call_id: &str,
        sid: &str,
        status: CallStatus,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The voice webhook; `None` when the call is not ours.
    fn call_answered(
        &self,
        call_id: &str,
        sid: &str,
        prompt: u32,
        at: Timestamp,
    ) -> impl Future<Output = Result<Option<Answer>>> + Send;

    /// A key press; `None` when the call is not ours.
    fn key_pressed(
        &self,
        call_id: &str,
        sid: &str,
        digits: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<Option<Answer>>> + Send;

    /// Calls to hang up because their loop stopped.
    fn calls_to_end(&self) -> impl Future<Output = Result<Vec<CallRecord>>> + Send;

    /// The hang-up was asked for (or the call had ended).
    fn call_end_sent(
        &self,
        call: &CallRecord,
        status: CallStatus,
        at: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Calls not known to have ended.
    fn unfinished_calls(&self) -> impl Future<Output = Result<Vec<CallRecord>>> + Send;

    /// Exhausted loops whose fallback has not fired.
    fn pending_fallbacks(&self) -> impl Future<Output = Result<Vec<Fallback>>> + Send;

    /// A fallback fired (once, whatever came of it).
    fn fallback_fired(
        &self,
        incident_id: &str,
        sent: bool,
        detail: serde_json::Value,
        at: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Incidents: at most one not CLOSED per (alert, subject), whoever writes.
pub trait Incidents: Send + Sync {
    /// Applies one finding (opens, refreshes or resolves its subject's incident).
    fn apply_finding(&self, o: &Observation<'_>) -> impl Future<Output = Result<Change>> + Send;

    /// Closes an incident and stops its loop; the flag says whether this call closed it.
    fn close_incident(
        &self,
        id: &str,
        at: Timestamp,
        by: &str,
        kind: &str,
    ) -> impl Future<Output = Result<Option<(Incident, bool)>>> + Send;

    /// One incident.
    fn incident(&self, id: &str) -> impl Future<Output = Result<Option<Incident>>> + Send;

    /// Incidents in id order (oldest first) after `after_id`.
    fn list_incidents(
        &self,
        filter: &IncidentFilter,
        after_id: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Incident>>> + Send;

    /// An incident's timeline, in the order written.
    fn timeline(
        &self,
        incident_id: &str,
    ) -> impl Future<Output = Result<Vec<TimelineEntry>>> + Send;
}

/// Pushed data, read back.
pub trait Data: Send + Sync {
    /// One event.
    fn event(&self, id: &str) -> impl Future<Output = Result<Option<Event>>> + Send;

    /// Events in id order after `after_id`.
    fn list_events(
        &self,
        owner_id: Option<&str>,
        after_id: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Event>>> + Send;

    /// Entities of a type in id order after `after_id`.
    fn list_entities(
        &self,
        entity_type: &str,
        owner_id: Option<&str>,
        after_id: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Entity>>> + Send;
}

/// Pushed data, written: a group of writes commits as one transaction (one fsync).
pub trait Writes: Send + Sync {
    /// Commits the writes together; for each, whether it was written (false for a
    /// delivery whose digest was already taken: it writes nothing). Re-sending an event
    /// with the same id replaces it.
    fn commit_writes(
        &self,
        writes: &[(&Write, Timestamp)],
    ) -> impl Future<Output = Result<Vec<bool>>> + Send;
}

impl Incidents for super::Store {
    async fn apply_finding(&self, o: &Observation<'_>) -> Result<Change> {
        super::Store::apply_finding(self, o).await
    }

    async fn close_incident(
        &self,
        id: &str,
        at: Timestamp,
        by: &str,
        kind: &str,
    ) -> Result<Option<(Incident, bool)>> {
        super::Store::close_incident(self, id, at, by, kind).await
    }

    async fn incident(&self, id: &str) -> Result<Option<Incident>> {
        super::Store::incident(self, id).await
    }

    async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Incident>> {
        super::Store::list_incidents(self, filter, after_id, limit).await
    }

    async fn timeline(&self, incident_id: &str) -> Result<Vec<TimelineEntry>> {
        super::Store::timeline(self, incident_id).await
    }
}

impl Data for super::Store {
    async fn event(&self, id: &str) -> Result<Option<Event>> {
        super::Store::event(self, id).await
    }

    async fn list_events(
        &self,
        owner_id: Option<&str>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Event>> {
        super::Store::list_events(self, owner_id, after_id, limit).await
    }

    async fn list_entities(
        &self,
        entity_type: &str,
        owner_id: Option<&str>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Entity>> {
        super::Store::list_entities(self, entity_type, owner_id, after_id, limit).await
    }
}

/// Rosters and routes, as the call loops read them.
pub trait Rosters: Send + Sync {
    /// Creates a roster.
    fn insert_roster(&self, roster: &Roster<Entry>) -> impl Future<Output = Result<()>> + Send;

    /// Creates a route.
    fn insert_route(&self, route: &Route) -> impl Future<Output = Result<()>> + Send;
}

impl Rosters for super::Store {
    async fn insert_roster(&self, roster: &Roster<Entry>) -> Result<()> {
        super::Store::insert_roster(self, roster).await
    }

    async fn insert_route(&self, route: &Route) -> Result<()> {
        super::Store::insert_route(self, route).await
    }
}

/// Texts after missed calls, and answer statistics.
pub trait FollowUps: Send + Sync {
    /// Texts waiting to be sent.
    fn texts_to_send(&self) -> impl Future<Output = Result<Vec<Text>>> + Send;

    /// Claims a text for sending; false when it was claimed already.
    fn text_sending(&self, id: &str, at: Timestamp) -> impl Future<Output = Result<bool>> + Send;

    /// The text was sent, or refused.
    fn text_done(
        &self,
        text: &Text,
        result: std::result::Result<&str, &str>,
        at: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A reply to a text; `Some` when it accepted an incident.
    fn text_reply(
        &self,
        from: &str,
        body: &str,
        sid: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<Option<Accepted>>> + Send;

    /// The calls placed to an operator in `[from, to)`.
    fn operator_calls(
        &self,
        operator_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<CallTimes>>> + Send;
}

/// Who is on call: what a loop's start expands its roster from.
pub trait OnCall: Send + Sync {
    /// Creates an operator; a number already taken is a unique violation.
    fn insert_operator(&self, operator: &Operator) -> impl Future<Output = Result<()>> + Send;

    /// Deletes an operator nothing names; `Err` lists what does.
    fn delete_operator(&self, id: &str) -> impl Future<Output = Result<Result<bool, Uses>>> + Send;

    /// Creates a rotation.
    fn insert_rotation(&self, rotation: &RotationRecord)
    -> impl Future<Output = Result<()>> + Send;

    /// Creates a schedule.
    fn insert_schedule(&self, schedule: &ScheduleRecord)
    -> impl Future<Output = Result<()>> + Send;

    /// Adds an override unless one of the same schedule overlaps it and involves one of
    /// its operators (`Err` names that one).
    fn insert_override(
        &self,
        o: &OverrideRecord,
    ) -> impl Future<Output = Result<Result<(), String>>> + Send;

    /// What expanding `wanted` over `[from, to)` reads.
    fn directory(
        &self,
        wanted: &Wanted,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Directory>> + Send;
}

//! Rosters, routes and the durable call loop: each incident's escalation and its calls.
//!
//! Every transition is one transaction that checks the state it moves from, so duplicate,
//! late or out-of-order webhooks find nothing to change.

use super::Result;
use super::oncall::{Directory, Wanted, expand};
use super::silences::{Quiet, silenced};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tocsin_domain::call_loop::{
    self as machine, Action, Loop, LoopState, NotPlaced, Note, Outcome, Reply,
};
use tocsin_sdk::time::Timestamp;
use tocsin_twilio::{CallStatus, PhoneNumber};

/// Someone a loop calls: a member of a loop's copy of its roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Who.
    pub name: String,
    /// Where they are called.
    pub phone: PhoneNumber,
    /// The operator they are, when the roster named one (directly, or through a rotation or
    /// schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// Where they are texted, when not `phone` (the operator's `smsPhone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_phone: Option<PhoneNumber>,
}

/// Whether a roster's members are texted after a missed call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Sms {
    /// Never.
    #[default]
    Off,
    /// A member whose call ended unanswered (or answered without a key) is texted the
    /// incident, and accepts it by replying 1.
    OnMiss,
}

impl Sms {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::OnMiss => "on-miss",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "off" => Self::Off,
            "on-miss" => Self::OnMiss,
            _ => return None,
        })
    }
}

/// An entry of a roster: someone named outright, or who is on call for an operator, a
/// rotation or a schedule when a loop starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Entry {
    /// A name and number.
    Member(Member),
    /// This operator.
    #[serde(rename_all = "camelCase")]
    Operator {
        /// Id.
        operator_id: String,
    },
    /// Whoever holds this rotation.
    #[serde(rename_all = "camelCase")]
    Rotation {
        /// Id.
        rotation_id: String,
    },
    /// Everyone on call on this schedule, in its order.
    #[serde(rename_all = "camelCase")]
    Schedule {
        /// Id.
        schedule_id: String,
    },
}

/// An ordered list of operators called one by one. As defined, its members are
/// [`Entry`]s; a loop keeps a copy expanded into [`Member`]s when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Roster<M = Member> {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// In calling order.
    pub members: Vec<M>,
    /// How many times the whole roster is called before giving up.
    pub loops: u32,
    /// Seconds a phone rings before the call counts as unanswered.
    pub ring_timeout_seconds: u32,
    /// Where to POST when the loops are spent without an acceptance.
    pub fallback_url: Option<String>,
    /// Whether members are texted after a missed call.
    #[serde(default)]
    pub sms: Sms,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Which incidents go to a roster.
#[derive(Debug, Clone)]
pub struct Route {
    /// Id.
    pub id: String,
    /// The roster.
    pub roster_id: String,
    /// Only this alert's incidents.
    pub alert_id: Option<String>,
    /// Only incidents of this template's alerts.
    pub template_id: Option<String>,
    /// Only incidents of alerts on this owner.
    pub owner_id: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// The next call an escalation needs.
#[derive(Debug, Clone)]
pub struct PendingCall {
    /// The incident.
    pub incident_id: String,
    /// The step to dial.
    pub step: u32,
    /// The roster as it was when the loop started.
    pub roster: Roster,
}

impl PendingCall {
    /// The member this step calls.
    pub fn member(&self) -> &Member {
        &self.roster.members[self.step as usize % self.roster.members.len()]
    }

    /// Which loop this step is in (0-based).
    pub fn loop_index(&self) -> u32 {
        self.step / self.roster.members.len() as u32
    }

    /// The member's place in the roster (0-based).
    pub fn position(&self) -> u32 {
        self.step % self.roster.members.len() as u32
    }
}

/// A call as stored.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// Our id, in the webhook URLs.
    pub id: String,
    /// The incident.
    pub incident_id: String,
    /// The escalation step.
    pub step: u32,
    /// Who was called.
    pub member: String,
    /// Their number.
    pub phone: String,
    /// Twilio's call SID, once Twilio has it.
    pub sid: Option<String>,
    /// Twilio's status; `None` while the request to place it is in flight.
    pub status: Option<CallStatus>,
    /// How the call ended for the loop.
    pub outcome: Option<Outcome>,
    /// Ring timeout of its roster.
    pub ring_timeout_seconds: u32,
    /// When it was recorded, just before Twilio was asked to place it.
    pub created_at: Timestamp,
}

/// What an operator hears when a webhook of their call is answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Who answered.
    pub member: String,
    /// The incident's latest summary.
    pub summary: String,
    /// What to say.
    pub reply: Reply,
}

/// A fallback to fire.
#[derive(Debug, Clone)]
pub struct Fallback {
    /// The incident.
    pub incident_id: String,
    /// Where to POST.
    pub url: Option<String>,
    /// The roster.
    pub roster: Roster,
}

/// A newly opened incident, whose call loop may start.
#[derive(Debug, Clone)]
pub struct Opened<'a> {
    /// The incident.
    pub incident_id: &'a str,
    /// Its alert.
    pub alert_id: &'a str,
    /// The alert's template.
    pub template_id: &'a str,
    /// The alert's owner.
    pub owner_id: Option<&'a str>,
    /// What silences match (see [`super::silences::labels`]).
    pub labels: tocsin_domain::silence::Labels,
    /// When it opened.
    pub at: Timestamp,
}

/// What a webhook said besides its event, for the timeline.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Said<'a> {
    pub sid: Option<&'a str>,
    pub digits: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// The route and roster that (alert, template, owner) leads to, once looked up.
pub(crate) type RouteKey<'a> = (&'a str, &'a str, Option<&'a str>);

/// Where a route leads: its id, the roster, and what expanding the roster reads.
pub(crate) type Routed = Option<(String, Roster<Entry>, std::sync::Arc<Directory>)>;

/// A loop to insert: (incident, roster id, the expanded roster as JSON text, at, state,
/// fallback, labels as JSON text). A roster that expands to nobody starts EXHAUSTED, its
/// fallback pending; one whose incident a silence matches starts SILENCED.
pub(crate) type NewLoop<'a> = (
    &'a str,
    String,
    String,
    Timestamp,
    &'static str,
    Option<&'static str>,
    String,
);

/// What starting the loops of newly opened incidents writes.
#[derive(Debug, Default)]
pub(crate) struct LoopPlan<'a> {
    /// Loops to insert, in serving order.
    pub loops: Vec<NewLoop<'a>>,
    /// Timeline entries: (incident, at, kind, detail).
    pub entries: Vec<(String, Timestamp, &'static str, serde_json::Value)>,
    /// For each incident, the roster its loop rings.
    pub started: Vec<Option<String>>,
}

/// Decides which of the newly `opened` incidents get a call loop, given the route each one's
/// (alert, template, owner) leads to (the most specific route wins; `None` when no route
/// leads to a roster). Each loop's roster is expanded at its incident's opening: who is on
/// call then is who it calls (`roster-resolved` on the timeline, when the roster names
/// operators, rotations or schedules). A roster that expands to nobody is exhausted at
/// once (`no-one-on-call`), and its fallback fires.
///
/// `phones` is what places the calls, as [`crate::escalation::Escalation::provider`] names
/// it, and goes on the timeline. Without a phone provider (`"unavailable"`) no loop
/// starts: each incident's timeline says `escalation-unavailable`, with the roster its
/// route would have rung, so nobody mistakes silence for an answer.
///
/// A loop whose incident a silence or an open maintenance window of `quiet` matches at
/// its opening starts SILENCED (`silenced` on the timeline, naming them).
pub(crate) fn plan_loops<'a>(
    opened: &'a [Opened<'a>],
    routes: &std::collections::HashMap<RouteKey<'a>, Routed>,
    quiet: &Quiet,
    phones: &str,
) -> LoopPlan<'a> {
    let phoning = phones != "unavailable";
    let mut plan = LoopPlan::default();
    for o in opened {
        let route = routes[&(o.alert_id, o.template_id, o.owner_id)].as_ref();
        if !phoning {
            plan.entries.push((
                o.incident_id.to_owned(),
                o.at,
                "escalation-unavailable",
                json!({"reason": "no Twilio account is configured (TWILIO_ACCOUNT_SID is unset): nobody is phoned",
                       "rosterId": route.map(|(_, r, _)| &r.id), "routeId": route.map(|(id, _, _)| id)}),
            ));
            plan.started.push(None);
            continue;
        }
        let Some((route_id, defined, directory)) = route else {
            plan.started.push(None);
            continue;
        };
        let expansion = expand(defined, directory, o.at);
        let roster = &expansion.roster;
        if !Wanted::roster(defined).is_empty() {
            plan.entries.push((
                o.incident_id.to_owned(),
                o.at,
                "roster-resolved",
                json!({"rosterId": roster.id, "entries": expansion.entries,
                       "members": roster.members.iter().map(|m| json!({"name": m.name, "operatorId": m.operator_id, "phone": m.phone.masked()})).collect::<Vec<_>>()}),
            ));
        }
        let roster_json = serde_json::to_string(roster).expect("a roster serializes");
        let labels = serde_json::to_string(&o.labels).expect("labels serialize");
        if roster.members.is_empty() {
            plan.loops.push((
                o.incident_id,
                roster.id.clone(),
                roster_json,
                o.at,
                LoopState::Exhausted.as_str(),
                Some("PENDING"),
                labels,
            ));
            plan.entries.push((
                o.incident_id.to_owned(),
                o.at,
                "no-one-on-call",
                json!({"rosterId": roster.id, "roster": roster.name, "routeId": route_id}),
            ));
            plan.entries.push((
                o.incident_id.to_owned(),
                o.at,
                "escalation-exhausted",
                json!({"calls": 0, "loops": roster.loops}),
            ));
            plan.started.push(Some(roster.id.clone()));
            continue;
        }
        let holding = quiet.holding(&o.labels, o.at);
        let state = if holding.is_empty() {
            LoopState::Active
        } else {
            LoopState::Silenced
        };
        plan.loops.push((
            o.incident_id,
            roster.id.clone(),
            roster_json,
            o.at,
            state.as_str(),
            None,
            labels,
        ));
        plan.entries.push((
            o.incident_id.to_owned(),
            o.at,
            "escalation-started",
            json!({"rosterId": roster.id, "roster": roster.name, "routeId": route_id,
                   "members": roster.members.len(), "loops": roster.loops, "phones": phones}),
        ));
        if !holding.is_empty() {
            plan.entries.push((
                o.incident_id.to_owned(),
                o.at,
                "silenced",
                silenced(&holding),
            ));
        }
        plan.started.push(Some(roster.id.clone()));
    }
    plan
}

/// The timeline entry for one of the state machine's notes on `call`: kind, who, detail.
pub(crate) fn note_entry<'c>(
    call: &'c CallRecord,
    note: Note,
    said: Said<'_>,
) -> (&'static str, Option<&'c str>, serde_json::Value) {
    let id = &call.id;
    let member = Some(call.member.as_str());
    match note {
        Note::CallPlaced(status) => (
            "call-placed",
            member,
            json!({"callId": id, "sid": said.sid, "status": status.as_str()}),
        ),
        Note::CallFailed => (
            "call-failed",
            member,
            json!({"callId": id, "reason": said.reason}),
        ),
        Note::CallStatus(status) => (
            "call-status",
            member,
            json!({"callId": id, "sid": said.sid, "status": status.as_str()}),
        ),
        Note::CallAnswered => ("call-answered", member, json!({"callId": id})),
        Note::Silence { prompt } => (
            "call-silence",
            member,
            json!({"callId": id, "prompt": prompt}),
        ),
        Note::KeyPress => (
            "key-press",
            member,
            json!({"callId": id, "digits": said.digits.unwrap_or_default()}),
        ),
        Note::Outcome(outcome) => (
            "call-outcome",
            member,
            json!({"callId": id, "step": call.step, "outcome": outcome.as_str()}),
        ),
        Note::Exhausted { calls, loops } => (
            "escalation-exhausted",
            None,
            json!({"calls": calls, "loops": loops}),
        ),
        Note::CallStarted | Note::Stopped | Note::Silenced | Note::Unsilenced => {
            unreachable!("{note:?} is written where the loop starts a call, stops or is silenced")
        }
    }
}

/// The `call-started` entry's detail.
/// What stopping loops writes, for a batch of incidents that closed or resolved: each
/// active loop's stopped state, the incidents whose live calls are to be ended, and the
/// timeline entries. Loops already over are left as they are.
pub(crate) struct Stops<'a> {
    /// (incident, stopped loop, when).
    pub loops: Vec<(&'a str, Loop, Timestamp)>,
    /// (incident, when): its calls not yet ended are to be.
    pub end_calls: Vec<(&'a str, Timestamp)>,
    pub entries: Vec<(String, Timestamp, &'static str, serde_json::Value)>,
}

/// Runs each loop found through the state machine's `stop`.
pub(crate) fn plan_stops<'a>(found: &[(&'a str, Loop, Timestamp)], reason: &str) -> Stops<'a> {
    let mut stops = Stops {
        loops: Vec::new(),
        end_calls: Vec::new(),
        entries: Vec::new(),
    };
    for &(incident, state, at) in found {
        let Some((stopped, actions)) = machine::stop(state) else {
            continue;
        };
        stops.loops.push((incident, stopped, at));
        for action in actions {
            match action {
                Action::EndCall => stops.end_calls.push((incident, at)),
                Action::Note(Note::Stopped) => stops.entries.push((
                    incident.to_owned(),
                    at,
                    "escalation-stopped",
                    json!({"reason": reason}),
                )),
                other => unreachable!("stopping a loop does not {other:?}"),
            }
        }
    }
    stops
}

pub(crate) fn call_started(id: &str, pending: &PendingCall) -> serde_json::Value {
    let member = pending.member();
    json!({"callId": id, "step": pending.step, "loop": pending.loop_index() + 1,
           "position": pending.position() + 1, "member": member.name,
           "phone": member.phone.masked()})
}

/// Whether a call in `status` was answered: it is, or was, in progress.
pub(crate) fn answered(status: CallStatus) -> bool {
    matches!(status, CallStatus::InProgress | CallStatus::Completed)
}

/// A call of an operator's, as answer statistics read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTimes {
    /// How it ended for its loop, once settled.
    pub outcome: Option<Outcome>,
    /// When it was placed.
    pub placed_at: Timestamp,
    /// When it was answered.
    pub answered_at: Option<Timestamp>,
    /// When its outcome was settled.
    pub decided_at: Option<Timestamp>,
}

/// An operator's answer statistics over some calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallStats {
    /// Calls placed to them.
    pub calls: u32,
    /// Calls they (or their voicemail) answered.
    pub answered: u32,
    /// Calls in which they pressed 1.
    pub accepted: u32,
    /// Calls in which they pressed 2.
    pub passed: u32,
    /// Calls that ended without either: unanswered, busy, failed, or answered without a key.
    pub missed: u32,
    /// Median seconds from placing a call to its answer, over the answered ones.
    pub median_seconds_to_answer: Option<f64>,
    /// Median seconds from placing a call to the 1 that accepted it.
    pub median_seconds_to_accept: Option<f64>,
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

impl CallStats {
    /// The statistics of `calls`.
    pub fn of(calls: &[CallTimes]) -> Self {
        let seconds =
            |from: Timestamp, to: Timestamp| (to - from).num_milliseconds() as f64 / 1000.0;
        let mut stats = Self {
            calls: calls.len() as u32,
            ..Self::default()
        };
        let (mut to_answer, mut to_accept) = (Vec::new(), Vec::new());
        for call in calls {
            if let Some(answered) = call.answered_at {
                stats.answered += 1;
                to_answer.push(seconds(call.placed_at, answered));
            }
            match call.outcome {
                Some(Outcome::Accepted) => {
                    stats.accepted += 1;
                    if let Some(decided) = call.decided_at {
                        to_accept.push(seconds(call.placed_at, decided));
                    }
                }
                Some(Outcome::Passed) => stats.passed += 1,
                Some(_) => stats.missed += 1,
                None => {}
            }
        }
        stats.median_seconds_to_answer = median(to_answer);
        stats.median_seconds_to_accept = median(to_accept);
        stats
    }
}

/// What a text after a missed call asks, after the incident's summary.
pub const TEXT_ASK: &str = "Reply 1 to accept";

/// The characters of the summary a text carries: with [`TEXT_ASK`], within the 1,600
/// characters of one Twilio message.
pub const TEXT_SUMMARY_LIMIT: i64 = 1_570;

/// Statuses after which a call is over, as an SQL list (both databases spell it alike).
pub(crate) const ENDED: &str = "('completed', 'busy', 'failed', 'no-answer', 'canceled')";

/// The loop to dial next, in SQL both databases read alike: the numbers loops wait for,
/// one index probe each (a skip scan of `escalations_waiting`); of those not on a call,
/// each one's longest-waiting loop whose step has no call yet; of those, the one waiting
/// longest. The work grows with the numbers, not with the loops waiting for them.
///
/// `waiting` is how the reads of waiting loops name the index: SQLite's planner, left to
/// itself, takes `escalations_state` (state, ready_at) and reads every waiting loop for
/// each number (40 ms a pass with 100,000 loops queued), so its store says
/// `INDEXED BY escalations_waiting`; PostgreSQL's plans by cost and needs nothing.
pub(crate) fn next_call_sql(waiting: &str) -> String {
    format!(
        "WITH RECURSIVE numbers (phone) AS (
             SELECT MIN(next_phone) FROM escalations {waiting} WHERE state = 'ACTIVE'
             UNION ALL
             SELECT (SELECT MIN(w.next_phone) FROM escalations w {waiting}
                     WHERE w.state = 'ACTIVE' AND w.next_phone > n.phone)
             FROM numbers n WHERE n.phone IS NOT NULL
         ),
         heads (incident_id) AS (
             SELECT (SELECT w.incident_id FROM escalations w {waiting}
                     WHERE w.state = 'ACTIVE' AND w.next_phone = n.phone
                       AND NOT EXISTS (SELECT 1 FROM calls c
                                       WHERE c.incident_id = w.incident_id AND c.step = w.step
                                         AND c.attempt = w.attempt)
                     ORDER BY w.ready_at, w.incident_id LIMIT 1)
             FROM numbers n
             WHERE n.phone IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM calls c
                               WHERE c.phone = n.phone AND c.status NOT IN {ENDED})
         )
         SELECT e.incident_id, e.step, CAST(e.roster AS TEXT) AS roster
         FROM heads h JOIN escalations e ON e.incident_id = h.incident_id
         ORDER BY e.ready_at, e.incident_id LIMIT 1"
    )
}

super::dispatch! {
    /// Creates a roster.
    fn insert_roster(&self, roster: &Roster<Entry>) -> Result<()>;
    /// Replaces a roster's fields; false when there is no such roster.
    fn update_roster(&self, roster: &Roster<Entry>) -> Result<bool>;
    /// Deletes a roster; `Err` lists the routes that still use it.
    fn delete_roster(&self, id: &str) -> Result<Result<bool, Vec<String>>>;
    /// One roster.
    fn roster(&self, id: &str) -> Result<Option<Roster<Entry>>>;
    /// Rosters in id order after `after_id`.
    fn list_rosters(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<Roster<Entry>>>;
    /// How many rosters there are.
    fn count_rosters(&self) -> Result<i64>;
    /// Creates a route.
    fn insert_route(&self, route: &Route) -> Result<()>;
    /// Replaces a route's roster and criteria; false when there is no such route.
    fn update_route(&self, route: &Route) -> Result<bool>;
    /// Deletes a route; false when there was none.
    fn delete_route(&self, id: &str) -> Result<bool>;
    /// One route.
    fn route(&self, id: &str) -> Result<Option<Route>>;
    /// Routes in id order after `after_id`.
    fn list_routes(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<Route>>;
    /// The calls placed to an operator in `[from, to)`.
    fn operator_calls(&self, operator_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<CallTimes>>;
}

super::dispatch! {
    impl CallLoops;
    /// Starts the call loops of newly opened incidents that a route sends to a roster, in
    /// the order given (which is the order they are served in); for each, the roster's id.
    fn start_loops(&self, opened: &[Opened<'_>], phones: &str) -> Result<Vec<Option<String>>>;
    /// The loop to dial next: the longest waiting whose next number is not on a call of
    /// ours. Its cost does not grow with the loops waiting.
    fn next_call(&self) -> Result<Option<PendingCall>>;
    /// Records the intent to call `pending`'s member before Twilio is asked, so the step is
    /// never dialed twice. `None` when the loop moved on or the step already has its call.
    fn begin_call(&self, pending: &PendingCall, at: Timestamp) -> Result<Option<String>>;
    /// Twilio accepted the call. True when the loop still wants it; false when the incident
    /// closed meanwhile and the call must be ended.
    fn call_placed(&self, call_id: &str, sid: &str, status: CallStatus, at: Timestamp) -> Result<bool>;
    /// Twilio refused the call, or the request to place it surely never reached Twilio
    /// (`Refused`), or nothing was heard of it in time (`Lost`): the step is over, the loop
    /// moves on.
    fn call_not_placed(&self, call_id: &str, why: NotPlaced, reason: &str, at: Timestamp) -> Result<()>;
    /// A status callback (or a status read back from Twilio). Only moves a call forward:
    /// a duplicate or a status older than the one known changes nothing. Returns whether
    /// anything changed.
    fn call_status(&self, call_id: &str, sid: &str, status: CallStatus, at: Timestamp) -> Result<bool>;
    /// The voice webhook: the call was answered (prompt 1) or met silence (prompt 2).
    /// `None` when the call is not ours or the SID does not match.
    fn call_answered(&self, call_id: &str, sid: &str, prompt: u32, at: Timestamp) -> Result<Option<Answer>>;
    /// A key pressed during the prompt. `None` when the call is not ours.
    fn key_pressed(&self, call_id: &str, sid: &str, digits: &str, at: Timestamp) -> Result<Option<Answer>>;
    /// Calls that must be ended because their loop stopped, with Twilio's SID.
    fn calls_to_end(&self) -> Result<Vec<CallRecord>>;
    /// The request to end a call was made (or the call had already ended).
    fn call_end_sent(&self, call: &CallRecord, status: CallStatus, at: Timestamp) -> Result<()>;
    /// Calls not known to have ended: after a restart, or when their callbacks are late.
    fn unfinished_calls(&self) -> Result<Vec<CallRecord>>;
    /// Exhausted loops whose fallback has not fired.
    fn pending_fallbacks(&self) -> Result<Vec<Fallback>>;
    /// Records that a fallback fired (once, whatever came of it).
    fn fallback_fired(&self, incident_id: &str, sent: bool, detail: serde_json::Value, at: Timestamp) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_statistics_count_each_outcome_and_take_medians_of_what_happened() {
        let t = |s: i64| chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let call = |outcome, placed, answered: Option<i64>, decided: Option<i64>| CallTimes {
            outcome,
            placed_at: t(placed),
            answered_at: answered.map(t),
            decided_at: decided.map(t),
        };
        let calls = [
            call(Some(Outcome::Accepted), 0, Some(4), Some(10)),
            call(Some(Outcome::Accepted), 100, Some(106), Some(130)),
            call(Some(Outcome::Passed), 200, Some(202), Some(205)),
            call(Some(Outcome::NoAnswer), 300, None, Some(330)),
            call(Some(Outcome::NoKeyPress), 400, Some(408), Some(420)),
            call(None, 500, None, None),
        ];
        assert_eq!(
            CallStats::of(&calls),
            CallStats {
                calls: 6,
                answered: 4,
                accepted: 2,
                passed: 1,
                missed: 2,
                // Answers after 2, 4, 6 and 8 seconds; acceptances after 10 and 30.
                median_seconds_to_answer: Some(5.0),
                median_seconds_to_accept: Some(20.0),
            }
        );
        assert_eq!(CallStats::of(&[]).median_seconds_to_answer, None);
    }
}

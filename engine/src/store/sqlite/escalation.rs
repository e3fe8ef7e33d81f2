//! Rosters, routes and the durable call loop, in SQLite.
//!
//! Every transition is one transaction that checks the state it moves from, so duplicate,
//! late or out-of-order webhooks find nothing to change.

use super::incidents::{acknowledge, timeline, timeline_many};
use super::{Sqlite, instant, micros, rows_json};
use crate::store::escalation::{
    Answer, CallRecord, CallTimes, ENDED, Entry, Fallback, LoopPlan, Opened, PendingCall, Roster,
    Route, RouteKey, Routed, Said, Sms, TEXT_ASK, TEXT_SUMMARY_LIMIT, answered, call_started,
    next_call_sql, note_entry, plan_loops, plan_stops,
};
use crate::store::incidents::new_id;
use crate::store::oncall::{Cache, Wanted, everything};
use crate::store::silences::{alarm_subjects, quiet, with_platform_labels};
use crate::store::{Caches, Error, Result, json};
use serde_json::json;
use sqlx::{Row, Transaction};
use std::collections::{HashMap, hash_map};
use tocsin_domain::call_loop::{
    self as machine, Action, Event, Keypad, Loop, LoopState, NotPlaced, Note, Outcome, Transition,
};
use tocsin_sdk::time::Timestamp;
use tocsin_twilio::CallStatus;

/// The loop to dial next (see [`next_call_sql`]).
static NEXT_CALL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| next_call_sql("INDEXED BY escalations_waiting"));

fn roster_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Roster<Entry>> {
    Ok(Roster {
        id: row.get("id"),
        name: row.get("name"),
        members: json(row.get("members"))?,
        loops: row.get::<i64, _>("loops") as u32,
        ring_timeout_seconds: row.get::<i64, _>("ring_timeout_seconds") as u32,
        fallback_url: row.get("fallback_url"),
        sms: Sms::parse(row.get("sms")).unwrap_or_default(),
        created_at: instant(row.get("created_at")),
        updated_at: instant(row.get("updated_at")),
    })
}

fn route_from_row(row: &sqlx::sqlite::SqliteRow) -> Route {
    Route {
        id: row.get("id"),
        roster_id: row.get("roster_id"),
        alert_id: row.get("alert_id"),
        template_id: row.get("template_id"),
        owner_id: row.get("owner_id"),
        created_at: instant(row.get("created_at")),
    }
}

fn call_from_row(row: &sqlx::sqlite::SqliteRow) -> CallRecord {
    CallRecord {
        id: row.get("id"),
        incident_id: row.get("incident_id"),
        step: row.get::<i64, _>("step") as u32,
        member: row.get("member"),
        phone: row.get("phone"),
        sid: row.get("sid"),
        status: CallStatus::parse(row.get("status")),
        outcome: row
            .get::<Option<String>, _>("outcome")
            .as_deref()
            .and_then(Outcome::parse),
        ring_timeout_seconds: row.try_get::<i64, _>("ring_timeout_seconds").unwrap_or(60) as u32,
        created_at: instant(row.get("created_at")),
    }
}

const CALL_COLUMNS: &str =
    "c.*, json_extract(e.roster, '$.ringTimeoutSeconds') AS ring_timeout_seconds";

/// The route an incident of this alert, template and owner takes, and its roster: the most
/// specific route wins (an alert's own route, then an owner's, then a template's, then the
/// default; the oldest among equals), with what expanding the roster at `[from, to)` reads.
/// `None` when no route leads to a roster.
async fn route_for(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    (alert_id, template_id, owner_id): RouteKey<'_>,
    cache: &Cache,
) -> Result<Routed> {
    let route = sqlx::query(
        "SELECT r.id AS route_id, ro.* FROM routes r JOIN rosters ro ON ro.id = r.roster_id
         WHERE (r.alert_id IS NULL OR r.alert_id = ?)
           AND (r.template_id IS NULL OR r.template_id = ?)
           AND (r.owner_id IS NULL OR r.owner_id = ?)
         ORDER BY (r.alert_id IS NOT NULL) * 4 + (r.owner_id IS NOT NULL) * 2 + (r.template_id IS NOT NULL) DESC, r.id
         LIMIT 1",
    )
    .bind(alert_id)
    .bind(template_id)
    .bind(owner_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = route else {
        return Ok(None);
    };
    let roster = roster_from_row(&row)?;
    let directory = if Wanted::roster(&roster).is_empty() {
        Default::default()
    } else {
        everything(&mut **tx, cache).await?
    };
    Ok(Some((row.get("route_id"), roster, directory)))
}

/// Starts the call loops of newly opened incidents (see [`plan_loops`]): one route lookup
/// per distinct alert, then one write for all the loops.
pub(super) async fn start_escalations(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    caches: &Caches,
    opened: &[Opened<'_>],
    phones: &str,
) -> Result<Vec<Option<String>>> {
    let mut routes = HashMap::new();

    for o in opened {
        let key = (o.alert_id, o.template_id, o.owner_id);
        if let hash_map::Entry::Vacant(vacant) = routes.entry(key) {
            vacant.insert(route_for(tx, key, &caches.oncall).await?);
        }
    }
    let routed = routes.values().any(Option::is_some);
    let quiet = match opened.iter().map(|o| o.at).min() {
        Some(at) if routed => quiet(&mut **tx, &caches.quiet, at).await?,
        _ => Default::default(),
    };
    let subjects = alarm_subjects(opened);
    let alarms = if routed && !subjects.is_empty() {
        sqlx::query_as(
            "SELECT entity_id, attributes FROM entities
             WHERE entity_type = 'ALARM' AND entity_id IN (SELECT value FROM json_each(?))",
        )
        .bind(rows_json(&subjects))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect()
    } else {
        HashMap::new()
    };
    let opened = with_platform_labels(opened, &alarms);
    let LoopPlan {
        loops,
        entries,
        started,
    } = plan_loops(&opened, &routes, &quiet, phones);
    if !loops.is_empty() {
        let rows: Vec<_> = loops
            .iter()
            .map(
                |(incident, roster_id, roster, at, state, fallback, labels)| {
                    (
                        incident,
                        roster_id,
                        roster,
                        micros(*at),
                        state,
                        fallback,
                        labels,
                    )
                },
            )
            .collect();
        // Loops are served in `ready_at` order: these go after every loop already waiting.
        sqlx::query(
            "INSERT INTO escalations (incident_id, roster_id, roster, state, step, ready_at, fallback, created_at, updated_at, labels)
             SELECT value->>0, value->>1, value->>2, value->>4, 0,
                 (SELECT COALESCE(MAX(ready_at), 0) FROM escalations) + key + 1, value->>5, value->>3, value->>3,
                 value->>6
             FROM json_each(?) WHERE true ORDER BY key
             ON CONFLICT DO NOTHING",
        )
        .bind(rows_json(&rows))
        .execute(&mut **tx)
        .await?;
    }
    timeline_many(tx, &entries).await?;
    Ok(started)
}

/// Stops the call loops of incidents that closed or resolved, `(incident, when)`, in a
/// few statements however many there are: their live calls are marked to be ended.
/// Returns how many loops were running.
pub(super) async fn stop_escalations(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    incidents: &[(&str, Timestamp)],
    reason: &str,
) -> Result<usize> {
    if incidents.is_empty() {
        return Ok(0);
    }
    let when: HashMap<&str, Timestamp> = incidents.iter().copied().collect();
    let ids: Vec<&str> = when.keys().copied().collect();
    let rows = sqlx::query(
        "SELECT incident_id, state, step, json_array_length(roster, '$.members') AS members,
                json_extract(roster, '$.loops') AS loops
         FROM escalations WHERE incident_id IN (SELECT value FROM json_each(?)) AND state IN ('ACTIVE', 'SILENCED')",
    )
    .bind(rows_json(&ids))
    .fetch_all(&mut **tx)
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: &str = row.get("incident_id");
        let (id, at) = when
            .get_key_value(id)
            .map(|(k, v)| (*k, *v))
            .expect("asked for");
        found.push((id, loop_from_row(row)?, at));
    }
    let stops = plan_stops(&found, reason);
    if !stops.loops.is_empty() {
        let rows: Vec<_> = stops
            .loops
            .iter()
            .map(|(id, l, at)| (id, l.state.as_str(), l.step, micros(*at)))
            .collect();
        sqlx::query(
            "UPDATE escalations SET state = r.value->>1, step = r.value->>2, updated_at = r.value->>3
             FROM json_each(?) r WHERE escalations.incident_id = r.value->>0",
        )
        .bind(rows_json(&rows))
        .execute(&mut **tx)
        .await?;
    }
    if !stops.end_calls.is_empty() {
        let rows: Vec<_> = stops
            .end_calls
            .iter()
            .map(|(id, at)| (id, micros(*at)))
            .collect();
        sqlx::query(&format!(
            "UPDATE calls SET end_requested = 1, updated_at = r.value->>1
             FROM json_each(?) r
             WHERE calls.incident_id = r.value->>0 AND calls.status NOT IN {ENDED} AND calls.end_requested = 0"
        ))
        .bind(rows_json(&rows))
        .execute(&mut **tx)
        .await?;
    }
    timeline_many(tx, &stops.entries).await?;
    Ok(stops.loops.len())
}

/// An incident's loop as the state machine sees it.
pub(super) async fn loop_of(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    incident_id: &str,
) -> Result<Option<Loop>> {
    let row = sqlx::query(
        "SELECT state, step, json_array_length(roster, '$.members') AS members,
                json_extract(roster, '$.loops') AS loops,
                COALESCE(json_extract(roster, '$.sms') = 'on-miss', 0) AS text_misses
         FROM escalations WHERE incident_id = ?",
    )
    .bind(incident_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(loop_from_row).transpose()
}

/// A loop from a row with its state, step, members and loops.
pub(super) fn loop_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Loop> {
    let state: String = row.get("state");
    let state = LoopState::parse(&state)
        .ok_or_else(|| Error::Corrupt(format!("escalation state {state:?}")))?;
    Ok(Loop {
        state,
        step: row.get::<i64, _>("step") as u32,
        members: row.get::<i64, _>("members") as u32,
        loops: row.get::<i64, _>("loops") as u32,
        // Only the loop a call moves reads it; stopping a loop never texts.
        text_misses: row.try_get("text_misses").unwrap_or(false),
    })
}

/// Writes a loop's new state, if it changed: a loop that moved on goes behind every loop
/// already waiting; an exhausted one has its fallback pending.
async fn save_loop(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    incident_id: &str,
    before: Loop,
    after: Loop,
    actions: &[Action],
    at: Timestamp,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let requeue = actions.contains(&Action::Requeue);
    let fallback = actions.contains(&Action::FireFallback);
    sqlx::query(
        "UPDATE escalations SET state = ?, step = ?, updated_at = ?,
             ready_at = CASE WHEN ? THEN (SELECT MAX(ready_at) + 1 FROM escalations) ELSE ready_at END,
             fallback = CASE WHEN ? THEN 'PENDING' ELSE fallback END
         WHERE incident_id = ?",
    )
    .bind(after.state.as_str())
    .bind(i64::from(after.step))
    .bind(micros(at))
    .bind(requeue)
    .bind(fallback)
    .bind(incident_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Runs `event` through the state machine for `call`, and persists the outcome in `tx`: the
/// call's and the loop's new states, the timeline, the acknowledgement, the hang-up.
/// Returns the transition, whose replies and [`Transition::changed`] the caller reads.
async fn transit(
    calls: &crate::metrics::CallMetrics,
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    call: &CallRecord,
    event: Event,
    said: Said<'_>,
    at: Timestamp,
) -> Result<Transition> {
    let state = loop_of(tx, &call.incident_id)
        .await?
        .ok_or_else(|| Error::Corrupt(format!("call {} has no loop", call.id)))?;
    let before = machine::Call {
        step: call.step,
        status: call.status,
        outcome: call.outcome,
    };
    let t = machine::on(state, before, event);
    if t.call != before {
        let answered = t.call.status.is_some_and(answered);
        sqlx::query(
            "UPDATE calls SET status = ?, outcome = ?, updated_at = ?,
                 answered_at = COALESCE(answered_at, CASE WHEN ? THEN ? END),
                 decided_at = COALESCE(decided_at, CASE WHEN ? IS NOT NULL THEN ? END)
             WHERE id = ?",
        )
        .bind(t.call.status.map_or("placing", CallStatus::as_str))
        .bind(t.call.outcome.map(Outcome::as_str))
        .bind(micros(at))
        .bind(answered)
        .bind(micros(at))
        .bind(t.call.outcome.map(Outcome::as_str))
        .bind(micros(at))
        .bind(&call.id)
        .execute(&mut **tx)
        .await?;
    }
    if let (None, Some(outcome)) = (before.outcome, t.call.outcome) {
        calls.decided(outcome);
    }
    save_loop(tx, &call.incident_id, state, t.state, &t.actions, at).await?;
    for action in &t.actions {
        match *action {
            Action::Note(note) => write_note(tx, call, note, said, at).await?,
            Action::EndCall => {
                sqlx::query(
                    "UPDATE calls SET end_requested = 1 WHERE id = ? AND end_requested = 0",
                )
                .bind(&call.id)
                .execute(&mut **tx)
                .await?;
            }
            Action::Acknowledge => {
                if let Some(opened) =
                    acknowledge(tx, &call.incident_id, &call.member, &call.id, at).await?
                {
                    calls.acknowledged(opened, at);
                }
            }
            Action::Text => {
                // To the member's SMS number as the loop copied it, else the one called.
                sqlx::query(
                    "INSERT INTO texts (id, incident_id, call_id, member, operator_id, phone, body, status, created_at, updated_at)
                     SELECT ?, c.incident_id, c.id, c.member, c.operator_id,
                         COALESCE(json_extract(e.roster, '$.members[' || c.position || '].smsPhone'), c.phone),
                         trim(substr(i.summary, 1, ?) || ' ' || ?), 'pending', ?, ?
                     FROM calls c JOIN escalations e ON e.incident_id = c.incident_id
                         JOIN incidents i ON i.id = c.incident_id
                     WHERE c.id = ?
                     ON CONFLICT DO NOTHING",
                )
                .bind(new_id("txt"))
                .bind(TEXT_SUMMARY_LIMIT)
                .bind(TEXT_ASK)
                .bind(micros(at))
                .bind(micros(at))
                .bind(&call.id)
                .execute(&mut **tx)
                .await?;
            }
            // Written with the loop's state, or the caller's to act on.
            Action::Requeue | Action::FireFallback | Action::Reply(_) => {}
        }
    }
    Ok(t)
}

/// Writes one of the state machine's notes on the call's incident's timeline.
async fn write_note(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    call: &CallRecord,
    note: Note,
    said: Said<'_>,
    at: Timestamp,
) -> Result<()> {
    if note == Note::KeyPress {
        sqlx::query("UPDATE calls SET digits = digits || ?, updated_at = ? WHERE id = ?")
            .bind(said.digits.unwrap_or_default())
            .bind(micros(at))
            .bind(&call.id)
            .execute(&mut **tx)
            .await?;
    }
    let (kind, member, detail) = note_entry(call, note, said);
    timeline(tx, &call.incident_id, at, kind, member, detail).await
}

async fn call_in(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    call_id: &str,
) -> Result<Option<CallRecord>> {
    Ok(sqlx::query(&format!(
        "SELECT {CALL_COLUMNS} FROM calls c JOIN escalations e ON e.incident_id = c.incident_id WHERE c.id = ?"
    ))
    .bind(call_id)
    .fetch_optional(&mut **tx)
    .await?
    .map(|row| call_from_row(&row)))
}

/// The call `call_id`, when a webhook about `sid` may speak for it: the SIDs agree, or the
/// call has none yet (its placing request was cut short) and adopts this one.
async fn call_for(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    call_id: &str,
    sid: &str,
    at: Timestamp,
) -> Result<Option<CallRecord>> {
    let Some(mut call) = call_in(tx, call_id).await? else {
        return Ok(None);
    };
    match &call.sid {
        Some(known) if known != sid => return Ok(None),
        Some(_) => {}
        None => {
            sqlx::query("UPDATE calls SET sid = ?, status = 'queued', updated_at = ? WHERE id = ? AND sid IS NULL")
                .bind(sid)
                .bind(micros(at))
                .bind(&call.id)
                .execute(&mut **tx)
                .await?;
            call.sid = Some(sid.to_owned());
            call.status = Some(CallStatus::Queued);
        }
    }
    Ok(Some(call))
}

impl Sqlite {
    /// Creates a roster.
    pub async fn insert_roster(&self, roster: &Roster<Entry>) -> Result<()> {
        sqlx::query(
            "INSERT INTO rosters (id, name, members, loops, ring_timeout_seconds, fallback_url, created_at, updated_at, sms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&roster.id)
        .bind(&roster.name)
        .bind(serde_json::to_string(&roster.members).expect("members serialize"))
        .bind(i64::from(roster.loops))
        .bind(i64::from(roster.ring_timeout_seconds))
        .bind(&roster.fallback_url)
        .bind(micros(roster.created_at))
        .bind(micros(roster.updated_at))
        .bind(roster.sms.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Replaces a roster's fields; false when there is no such roster.
    pub async fn update_roster(&self, roster: &Roster<Entry>) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE rosters SET name = ?, members = ?, loops = ?, ring_timeout_seconds = ?, fallback_url = ?, updated_at = ?,
                 sms = ?
             WHERE id = ?",
        )
        .bind(&roster.name)
        .bind(serde_json::to_string(&roster.members).expect("members serialize"))
        .bind(i64::from(roster.loops))
        .bind(i64::from(roster.ring_timeout_seconds))
        .bind(&roster.fallback_url)
        .bind(micros(roster.updated_at))
        .bind(roster.sms.as_str())
        .bind(&roster.id)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Deletes a roster; `Err` lists the routes that still use it.
    pub async fn delete_roster(&self, id: &str) -> Result<Result<bool, Vec<String>>> {
        let mut tx = self.write().await?;
        let routes: Vec<String> = sqlx::query_scalar("SELECT id FROM routes WHERE roster_id = ?")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        if !routes.is_empty() {
            return Ok(Err(routes));
        }
        let deleted = sqlx::query("DELETE FROM rosters WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(Ok(deleted))
    }

    /// One roster.
    pub async fn roster(&self, id: &str) -> Result<Option<Roster<Entry>>> {
        sqlx::query("SELECT * FROM rosters WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|row| roster_from_row(&row))
            .transpose()
    }

    /// Rosters in id order after `after_id`.
    pub async fn list_rosters(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Roster<Entry>>> {
        let rows = sqlx::query("SELECT * FROM rosters WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(roster_from_row).collect()
    }

    /// The calls placed to an operator in `[from, to)`.
    pub async fn operator_calls(
        &self,
        operator_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<CallTimes>> {
        let rows = sqlx::query(
            "SELECT outcome, created_at, answered_at, decided_at FROM calls
             WHERE operator_id = ? AND created_at >= ? AND created_at < ? ORDER BY created_at",
        )
        .bind(operator_id)
        .bind(micros(from))
        .bind(micros(to))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|row| CallTimes {
                outcome: row
                    .get::<Option<&str>, _>("outcome")
                    .and_then(Outcome::parse),
                placed_at: instant(row.get("created_at")),
                answered_at: row.get::<Option<i64>, _>("answered_at").map(instant),
                decided_at: row.get::<Option<i64>, _>("decided_at").map(instant),
            })
            .collect())
    }

    /// How many rosters there are.
    pub async fn count_rosters(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM rosters")
            .fetch_one(self.pool())
            .await?)
    }

    /// Creates a route.
    pub async fn insert_route(&self, route: &Route) -> Result<()> {
        sqlx::query(
            "INSERT INTO routes (id, roster_id, alert_id, template_id, owner_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&route.id)
        .bind(&route.roster_id)
        .bind(&route.alert_id)
        .bind(&route.template_id)
        .bind(&route.owner_id)
        .bind(micros(route.created_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Replaces a route's roster and criteria; false when there is no such route.
    pub async fn update_route(&self, route: &Route) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE routes SET roster_id = ?, alert_id = ?, template_id = ?, owner_id = ? WHERE id = ?",
        )
        .bind(&route.roster_id)
        .bind(&route.alert_id)
        .bind(&route.template_id)
        .bind(&route.owner_id)
        .bind(&route.id)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Deletes a route; false when there was none.
    pub async fn delete_route(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM routes WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            == 1)
    }

    /// One route.
    pub async fn route(&self, id: &str) -> Result<Option<Route>> {
        Ok(sqlx::query("SELECT * FROM routes WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|row| route_from_row(&row)))
    }

    /// Routes in id order after `after_id`.
    pub async fn list_routes(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<Route>> {
        let rows = sqlx::query("SELECT * FROM routes WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(route_from_row).collect())
    }
}

impl Sqlite {
    /// Starts the call loops of newly opened incidents, in a transaction of their own; see
    /// [`start_escalations`].
    pub async fn start_loops(
        &self,
        opened: &[Opened<'_>],
        phones: &str,
    ) -> Result<Vec<Option<String>>> {
        let mut tx = self.write().await?;
        let started = start_escalations(&mut tx, &self.caches, opened, phones).await?;
        tx.commit().await?;
        Ok(started)
    }

    /// The loop to dial next: the longest waiting whose next number is not on a call (see
    /// `0007_call_queue.sql`; PostgreSQL: `0005_call_queue.sql`).
    pub async fn next_call(&self) -> Result<Option<PendingCall>> {
        let row = sqlx::query(&NEXT_CALL).fetch_optional(self.pool()).await?;
        row.map(|row| {
            Ok(PendingCall {
                incident_id: row.get("incident_id"),
                step: row.get::<i64, _>("step") as u32,
                roster: json(row.get("roster"))?,
            })
        })
        .transpose()
    }

    /// Records the intent to call `pending`'s member before Twilio is asked, so the step is
    /// never dialed twice. `None` when the loop moved on or the step already has its call.
    pub async fn begin_call(&self, pending: &PendingCall, at: Timestamp) -> Result<Option<String>> {
        let mut tx = self.write().await?;
        let Some(state) = loop_of(&mut tx, &pending.incident_id).await? else {
            return Ok(None);
        };
        if machine::dial(state, pending.step).is_none() {
            return Ok(None);
        }
        let id = new_id("call");
        let member = pending.member();
        let inserted = sqlx::query(
            "INSERT INTO calls (id, incident_id, step, loop_index, position, member, phone, operator_id, status, created_at, updated_at, attempt)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'placing', ?9, ?10, attempt FROM escalations WHERE incident_id = ?2
             ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(&pending.incident_id)
        .bind(i64::from(pending.step))
        .bind(i64::from(pending.loop_index()))
        .bind(i64::from(pending.position()))
        .bind(&member.name)
        .bind(member.phone.as_str())
        .bind(&member.operator_id)
        .bind(micros(at))
        .bind(micros(at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(None);
        }
        timeline(
            &mut tx,
            &pending.incident_id,
            at,
            "call-started",
            Some(&member.name),
            call_started(&id, pending),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Twilio accepted the call. True when the loop still wants it; false when the incident
    /// closed meanwhile and the call must be ended.
    pub async fn call_placed(
        &self,
        call_id: &str,
        sid: &str,
        status: CallStatus,
        at: Timestamp,
    ) -> Result<bool> {
        let done = self.on_call(call_id, sid, Event::Placed(status), None, at);
        Ok(done
            .await?
            .is_some_and(|(t, _)| !t.actions.contains(&Action::EndCall)))
    }

    /// Twilio refused the call, or the request to place it surely never reached Twilio
    /// (`Refused`), or nothing was heard of it in time (`Lost`): the step is over, the loop
    /// moves on.
    pub async fn call_not_placed(
        &self,
        call_id: &str,
        why: NotPlaced,
        reason: &str,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let Some(call) = call_in(&mut tx, call_id).await? else {
            return Ok(());
        };
        let said = Said {
            reason: Some(reason),
            ..Said::default()
        };
        transit(&self.calls, &mut tx, &call, Event::NotPlaced(why), said, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A status callback (or a status read back from Twilio). Only moves a call forward:
    /// a duplicate or a status older than the one known changes nothing. Returns whether
    /// anything changed.
    pub async fn call_status(
        &self,
        call_id: &str,
        sid: &str,
        status: CallStatus,
        at: Timestamp,
    ) -> Result<bool> {
        let done = self.on_call(call_id, sid, Event::Status(status), None, at);
        Ok(done.await?.is_some_and(|(t, _)| t.changed()))
    }

    /// The voice webhook: the call was answered (prompt 1) or met silence (prompt 2).
    /// `None` when the call is not ours or the SID does not match.
    pub async fn call_answered(
        &self,
        call_id: &str,
        sid: &str,
        prompt: u32,
        at: Timestamp,
    ) -> Result<Option<Answer>> {
        let done = self.on_call(call_id, sid, Event::Answered { prompt }, None, at);
        Ok(done.await?.and_then(|(_, answer)| answer))
    }

    /// A key pressed during the prompt. `None` when the call is not ours.
    pub async fn key_pressed(
        &self,
        call_id: &str,
        sid: &str,
        digits: &str,
        at: Timestamp,
    ) -> Result<Option<Answer>> {
        let event = Event::Key(Keypad::parse(digits));
        let done = self.on_call(call_id, sid, event, Some(digits), at);
        Ok(done.await?.and_then(|(_, answer)| answer))
    }

    /// Calls that must be ended because their loop stopped, with Twilio's SID.
    pub async fn calls_to_end(&self) -> Result<Vec<CallRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls c JOIN escalations e ON e.incident_id = c.incident_id
             WHERE c.end_requested = 1 AND c.sid IS NOT NULL"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(call_from_row).collect())
    }

    /// The request to end a call was made (or the call had already ended).
    pub async fn call_end_sent(
        &self,
        call: &CallRecord,
        status: CallStatus,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let ended = sqlx::query(
            "UPDATE calls SET end_requested = 2, updated_at = ? WHERE id = ? AND end_requested = 1",
        )
        .bind(micros(at))
        .bind(&call.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if ended {
            timeline(
                &mut tx,
                &call.incident_id,
                at,
                "call-ended",
                Some(&call.member),
                json!({"callId": call.id, "sid": call.sid, "status": status.as_str()}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Calls not known to have ended: after a restart, or when their callbacks are late.
    pub async fn unfinished_calls(&self) -> Result<Vec<CallRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls c JOIN escalations e ON e.incident_id = c.incident_id
             WHERE c.status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled')"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(call_from_row).collect())
    }

    /// Exhausted loops whose fallback has not fired.
    pub async fn pending_fallbacks(&self) -> Result<Vec<Fallback>> {
        let rows =
            sqlx::query("SELECT incident_id, roster FROM escalations WHERE fallback = 'PENDING'")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|row| {
                let roster: Roster = json(row.get("roster"))?;
                Ok(Fallback {
                    incident_id: row.get("incident_id"),
                    url: roster.fallback_url.clone(),
                    roster,
                })
            })
            .collect()
    }

    /// Records that a fallback fired (once, whatever came of it).
    pub async fn fallback_fired(
        &self,
        incident_id: &str,
        sent: bool,
        detail: serde_json::Value,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let changed = sqlx::query("UPDATE escalations SET fallback = ?, updated_at = ? WHERE incident_id = ? AND fallback = 'PENDING'")
            .bind(if sent { "SENT" } else { "FAILED" })
            .bind(micros(at))
            .bind(incident_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if changed {
            timeline(&mut tx, incident_id, at, "fallback", None, detail).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Sqlite {
    /// Runs a webhook's event for the call it names, in one transaction: the transition,
    /// and, when the machine replies, what the operator is to hear. `None` when the call is
    /// not ours or the SID does not match.
    async fn on_call(
        &self,
        call_id: &str,
        sid: &str,
        event: Event,
        digits: Option<&str>,
        at: Timestamp,
    ) -> Result<Option<(Transition, Option<Answer>)>> {
        let mut tx = self.write().await?;
        let Some(call) = call_for(&mut tx, call_id, sid, at).await? else {
            return Ok(None);
        };
        let said = Said {
            sid: Some(sid),
            digits,
            reason: None,
        };
        let t = transit(&self.calls, &mut tx, &call, event, said, at).await?;
        let reply = t.actions.iter().find_map(|a| match a {
            Action::Reply(reply) => Some(*reply),
            _ => None,
        });
        let answer = match reply {
            None => None,
            Some(reply) => Some(Answer {
                summary: sqlx::query_scalar("SELECT summary FROM incidents WHERE id = ?")
                    .bind(&call.incident_id)
                    .fetch_one(&mut *tx)
                    .await?,
                member: call.member,
                reply,
            }),
        };
        tx.commit().await?;
        Ok(Some((t, answer)))
    }
}

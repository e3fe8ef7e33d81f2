//! Rosters, routes and the durable call loop, in PostgreSQL.
//!
//! Every transition is one transaction that locks what it moves (the incident, then its
//! loop, then the call: always in that order, so two nodes never wait on each other in a
//! circle) and checks the state it moves from, so a duplicate, late or out-of-order
//! webhook, on whichever node it lands, finds nothing to change.

use super::incidents::{acknowledge, timeline, timeline_many};
use super::{Postgres, rows_json};
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
use sqlx::postgres::PgRow;
use sqlx::{Row, Transaction};
use std::collections::{HashMap, hash_map};
use tocsin_domain::call_loop::{
    self as machine, Action, Event, Keypad, Loop, LoopState, NotPlaced, Note, Outcome, Transition,
};
use tocsin_sdk::time::Timestamp;
use tocsin_twilio::CallStatus;

/// The loop to dial next (see [`next_call_sql`]).
static NEXT_CALL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| next_call_sql(""));

fn roster_from_row(row: &PgRow) -> Result<Roster<Entry>> {
    Ok(Roster {
        id: row.get("id"),
        name: row.get("name"),
        members: json(row.get("members"))?,
        loops: row.get::<i64, _>("loops") as u32,
        ring_timeout_seconds: row.get::<i64, _>("ring_timeout_seconds") as u32,
        fallback_url: row.get("fallback_url"),
        sms: Sms::parse(row.get("sms")).unwrap_or_default(),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn route_from_row(row: &PgRow) -> Route {
    Route {
        id: row.get("id"),
        roster_id: row.get("roster_id"),
        alert_id: row.get("alert_id"),
        template_id: row.get("template_id"),
        owner_id: row.get("owner_id"),
        created_at: row.get("created_at"),
    }
}

fn call_from_row(row: &PgRow) -> CallRecord {
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
        ring_timeout_seconds: row
            .try_get::<Option<i64>, _>("ring_timeout_seconds")
            .ok()
            .flatten()
            .unwrap_or(60) as u32,
        created_at: row.get("created_at"),
    }
}

const CALL_COLUMNS: &str = "c.*, (e.roster->>'ringTimeoutSeconds')::bigint AS ring_timeout_seconds";

/// The most specific route for (alert, template, owner), its roster, and what expanding the
/// roster at `[from, to)` reads.
async fn route_for(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    (alert_id, template_id, owner_id): RouteKey<'_>,
    cache: &Cache,
) -> Result<Routed> {
    let route = sqlx::query(
        "SELECT r.id AS route_id, ro.* FROM routes r JOIN rosters ro ON ro.id = r.roster_id
         WHERE (r.alert_id IS NULL OR r.alert_id = $1)
           AND (r.template_id IS NULL OR r.template_id = $2)
           AND (r.owner_id IS NULL OR r.owner_id = $3)
         ORDER BY (r.alert_id IS NOT NULL)::int * 4 + (r.owner_id IS NOT NULL)::int * 2
                  + (r.template_id IS NOT NULL)::int DESC, r.id
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

/// Starts the call loops of newly opened incidents (see [`plan_loops`]); their places in
/// the queue come from a sequence, in the order given.
pub(super) async fn start_escalations(
    tx: &mut Transaction<'_, sqlx::Postgres>,
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
            "SELECT entity_id, attributes::text FROM entities
             WHERE entity_type = 'ALARM' AND entity_id = ANY($1)",
        )
        .bind(&subjects)
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
        sqlx::query(
            "INSERT INTO escalations (incident_id, roster_id, roster, state, step, ready_at, fallback, created_at, updated_at, labels)
             SELECT r->>0, r->>1, (r->>2)::json, r->>4, 0, nextval('escalation_queue'), r->>5,
                 (r->>3)::timestamptz, (r->>3)::timestamptz, (r->>6)::jsonb
             FROM (SELECT r FROM json_array_elements($1::json) WITH ORDINALITY AS t (r, n) ORDER BY n) rows
             ON CONFLICT DO NOTHING",
        )
        .bind(rows_json(&loops))
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
    tx: &mut Transaction<'_, sqlx::Postgres>,
    incidents: &[(&str, Timestamp)],
    reason: &str,
) -> Result<usize> {
    if incidents.is_empty() {
        return Ok(0);
    }
    let when: HashMap<&str, Timestamp> = incidents.iter().copied().collect();
    let ids: Vec<&str> = when.keys().copied().collect();
    // Locked in id order, so that batches stopping loops at once never deadlock.
    let rows = sqlx::query(
        "SELECT incident_id, state, step, json_array_length(roster->'members')::bigint AS members,
                (roster->>'loops')::bigint AS loops
         FROM escalations WHERE incident_id = ANY($1) AND state IN ('ACTIVE', 'SILENCED')
         ORDER BY incident_id FOR UPDATE",
    )
    .bind(&ids)
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
            .map(|(id, l, at)| (id, l.state.as_str(), l.step, at))
            .collect();
        sqlx::query(
            "UPDATE escalations e SET state = r->>1, step = (r->>2)::bigint, updated_at = (r->>3)::timestamptz
             FROM json_array_elements($1::json) r WHERE e.incident_id = r->>0",
        )
        .bind(rows_json(&rows))
        .execute(&mut **tx)
        .await?;
    }
    if !stops.end_calls.is_empty() {
        let rows: Vec<_> = stops.end_calls.iter().collect();
        sqlx::query(&format!(
            "UPDATE calls c SET end_requested = 1, updated_at = (r->>1)::timestamptz
             FROM json_array_elements($1::json) r
             WHERE c.incident_id = r->>0 AND c.status NOT IN {ENDED} AND c.end_requested = 0"
        ))
        .bind(rows_json(&rows))
        .execute(&mut **tx)
        .await?;
    }
    timeline_many(tx, &stops.entries).await?;
    Ok(stops.loops.len())
}

/// An incident's loop as the state machine sees it, locked until the transaction ends.
pub(super) async fn loop_of(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    incident_id: &str,
) -> Result<Option<Loop>> {
    let row = sqlx::query(
        "SELECT state, step, json_array_length(roster->'members')::bigint AS members,
                (roster->>'loops')::bigint AS loops,
                COALESCE(roster->>'sms' = 'on-miss', false) AS text_misses
         FROM escalations WHERE incident_id = $1 FOR UPDATE",
    )
    .bind(incident_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(loop_from_row).transpose()
}

/// A loop from a row with its state, step, members and loops.
pub(super) fn loop_from_row(row: &PgRow) -> Result<Loop> {
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
    tx: &mut Transaction<'_, sqlx::Postgres>,
    incident_id: &str,
    before: Loop,
    after: Loop,
    actions: &[Action],
    at: Timestamp,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    sqlx::query(
        "UPDATE escalations SET state = $1, step = $2, updated_at = $3,
             ready_at = CASE WHEN $4 THEN nextval('escalation_queue') ELSE ready_at END,
             fallback = CASE WHEN $5 THEN 'PENDING' ELSE fallback END
         WHERE incident_id = $6",
    )
    .bind(after.state.as_str())
    .bind(i64::from(after.step))
    .bind(at)
    .bind(actions.contains(&Action::Requeue))
    .bind(actions.contains(&Action::FireFallback))
    .bind(incident_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Runs `event` through the state machine for `call` and persists the outcome (see the
/// SQLite store's `transit`, which this mirrors). The call and its loop are locked.
async fn transit(
    calls: &crate::metrics::CallMetrics,
    tx: &mut Transaction<'_, sqlx::Postgres>,
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
        sqlx::query(
            "UPDATE calls SET status = $1, outcome = $2, updated_at = $3,
                 answered_at = COALESCE(answered_at, CASE WHEN $5 THEN $3 END),
                 decided_at = COALESCE(decided_at, CASE WHEN $2::text IS NOT NULL THEN $3 END)
             WHERE id = $4",
        )
        .bind(t.call.status.map_or("placing", CallStatus::as_str))
        .bind(t.call.outcome.map(Outcome::as_str))
        .bind(at)
        .bind(&call.id)
        .bind(t.call.status.is_some_and(answered))
        .execute(&mut **tx)
        .await?;
    }
    if let (None, Some(outcome)) = (before.outcome, t.call.outcome) {
        calls.decided(outcome);
    }
    save_loop(tx, &call.incident_id, state, t.state, &t.actions, at).await?;
    for action in &t.actions {
        match *action {
            Action::Note(note) => {
                if note == Note::KeyPress {
                    sqlx::query(
                        "UPDATE calls SET digits = digits || $1, updated_at = $2 WHERE id = $3",
                    )
                    .bind(said.digits.unwrap_or_default())
                    .bind(at)
                    .bind(&call.id)
                    .execute(&mut **tx)
                    .await?;
                }
                let (kind, member, detail) = note_entry(call, note, said);
                timeline(tx, &call.incident_id, at, kind, member, detail).await?;
            }
            Action::EndCall => {
                sqlx::query(
                    "UPDATE calls SET end_requested = 1 WHERE id = $1 AND end_requested = 0",
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
                     SELECT $1, c.incident_id, c.id, c.member, c.operator_id,
                         COALESCE(e.roster->'members'->(c.position::int)->>'smsPhone', c.phone),
                         trim(substr(i.summary, 1, $2::int) || ' ' || $3), 'pending', $4, $4
                     FROM calls c JOIN escalations e ON e.incident_id = c.incident_id
                         JOIN incidents i ON i.id = c.incident_id
                     WHERE c.id = $5
                     ON CONFLICT DO NOTHING",
                )
                .bind(new_id("txt"))
                .bind(TEXT_SUMMARY_LIMIT)
                .bind(TEXT_ASK)
                .bind(at)
                .bind(&call.id)
                .execute(&mut **tx)
                .await?;
            }
            Action::Requeue | Action::FireFallback | Action::Reply(_) => {}
        }
    }
    Ok(t)
}

/// The call `call_id`, locked with its incident and loop (in that order), or `None`.
async fn call_in(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    call_id: &str,
) -> Result<Option<CallRecord>> {
    let incident: Option<String> =
        sqlx::query_scalar("SELECT incident_id FROM calls WHERE id = $1")
            .bind(call_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(incident) = incident else {
        return Ok(None);
    };
    sqlx::query("SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE")
        .bind(&incident)
        .execute(&mut **tx)
        .await?;
    sqlx::query("SELECT 1 FROM escalations WHERE incident_id = $1 FOR UPDATE")
        .bind(&incident)
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query(&format!(
        "SELECT {CALL_COLUMNS} FROM calls c JOIN escalations e ON e.incident_id = c.incident_id
         WHERE c.id = $1 FOR UPDATE OF c"
    ))
    .bind(call_id)
    .fetch_optional(&mut **tx)
    .await?
    .map(|row| call_from_row(&row)))
}

/// The call `call_id`, when a webhook about `sid` may speak for it: the SIDs agree, or the
/// call has none yet and adopts this one.
async fn call_for(
    tx: &mut Transaction<'_, sqlx::Postgres>,
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
            sqlx::query(
                "UPDATE calls SET sid = $1, status = 'queued', updated_at = $2 WHERE id = $3 AND sid IS NULL",
            )
            .bind(sid)
            .bind(at)
            .bind(&call.id)
            .execute(&mut **tx)
            .await?;
            call.sid = Some(sid.to_owned());
            call.status = Some(CallStatus::Queued);
        }
    }
    Ok(Some(call))
}

impl Postgres {
    pub async fn insert_roster(&self, roster: &Roster<Entry>) -> Result<()> {
        sqlx::query(
            "INSERT INTO rosters (id, name, members, loops, ring_timeout_seconds, fallback_url, created_at, updated_at, sms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&roster.id)
        .bind(&roster.name)
        .bind(serde_json::to_string(&roster.members).expect("members serialize"))
        .bind(i64::from(roster.loops))
        .bind(i64::from(roster.ring_timeout_seconds))
        .bind(&roster.fallback_url)
        .bind(roster.created_at)
        .bind(roster.updated_at)
        .bind(roster.sms.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn update_roster(&self, roster: &Roster<Entry>) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE rosters SET name = $1, members = $2, loops = $3, ring_timeout_seconds = $4, fallback_url = $5,
                 updated_at = $6, sms = $8
             WHERE id = $7",
        )
        .bind(&roster.name)
        .bind(serde_json::to_string(&roster.members).expect("members serialize"))
        .bind(i64::from(roster.loops))
        .bind(i64::from(roster.ring_timeout_seconds))
        .bind(&roster.fallback_url)
        .bind(roster.updated_at)
        .bind(&roster.id)
        .bind(roster.sms.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn delete_roster(&self, id: &str) -> Result<Result<bool, Vec<String>>> {
        let mut tx = self.begin().await?;
        // Locked, so that no route can come to use it before it is gone.
        sqlx::query("SELECT 1 FROM rosters WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let routes: Vec<String> = sqlx::query_scalar("SELECT id FROM routes WHERE roster_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        if !routes.is_empty() {
            return Ok(Err(routes));
        }
        let deleted = sqlx::query("DELETE FROM rosters WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(Ok(deleted))
    }

    pub async fn roster(&self, id: &str) -> Result<Option<Roster<Entry>>> {
        sqlx::query("SELECT * FROM rosters WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| roster_from_row(&row))
            .transpose()
    }

    pub async fn list_rosters(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Roster<Entry>>> {
        let rows = sqlx::query("SELECT * FROM rosters WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(roster_from_row).collect()
    }

    pub async fn operator_calls(
        &self,
        operator_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<CallTimes>> {
        let rows = sqlx::query(
            "SELECT outcome, created_at, answered_at, decided_at FROM calls
             WHERE operator_id = $1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at",
        )
        .bind(operator_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| CallTimes {
                outcome: row
                    .get::<Option<&str>, _>("outcome")
                    .and_then(Outcome::parse),
                placed_at: row.get("created_at"),
                answered_at: row.get("answered_at"),
                decided_at: row.get("decided_at"),
            })
            .collect())
    }

    pub async fn count_rosters(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM rosters")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn insert_route(&self, route: &Route) -> Result<()> {
        sqlx::query(
            "INSERT INTO routes (id, roster_id, alert_id, template_id, owner_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&route.id)
        .bind(&route.roster_id)
        .bind(&route.alert_id)
        .bind(&route.template_id)
        .bind(&route.owner_id)
        .bind(route.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn update_route(&self, route: &Route) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE routes SET roster_id = $1, alert_id = $2, template_id = $3, owner_id = $4 WHERE id = $5",
        )
        .bind(&route.roster_id)
        .bind(&route.alert_id)
        .bind(&route.template_id)
        .bind(&route.owner_id)
        .bind(&route.id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn delete_route(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM routes WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    pub async fn route(&self, id: &str) -> Result<Option<Route>> {
        Ok(sqlx::query("SELECT * FROM routes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| route_from_row(&row)))
    }

    pub async fn list_routes(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<Route>> {
        let rows = sqlx::query("SELECT * FROM routes WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(route_from_row).collect())
    }

    pub async fn start_loops(
        &self,
        opened: &[Opened<'_>],
        phones: &str,
    ) -> Result<Vec<Option<String>>> {
        let mut tx = self.begin().await?;
        let started = start_escalations(&mut tx, &self.caches, opened, phones).await?;
        tx.commit().await?;
        Ok(started)
    }

    pub async fn next_call(&self) -> Result<Option<PendingCall>> {
        let row = sqlx::query(&NEXT_CALL).fetch_optional(&self.pool).await?;
        row.map(|row| {
            Ok(PendingCall {
                incident_id: row.get("incident_id"),
                step: row.get::<i64, _>("step") as u32,
                roster: json(row.get("roster"))?,
            })
        })
        .transpose()
    }

    pub async fn begin_call(&self, pending: &PendingCall, at: Timestamp) -> Result<Option<String>> {
        let mut tx = self.begin().await?;
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $9, 'placing', $8, $8,
                 (SELECT attempt FROM escalations WHERE incident_id = $2)) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(&pending.incident_id)
        .bind(i64::from(pending.step))
        .bind(i64::from(pending.loop_index()))
        .bind(i64::from(pending.position()))
        .bind(&member.name)
        .bind(member.phone.as_str())
        .bind(at)
        .bind(&member.operator_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(None);
        }
        let detail = call_started(&id, pending);
        let name = Some(member.name.as_str());
        timeline(
            &mut tx,
            &pending.incident_id,
            at,
            "call-started",
            name,
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

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

    pub async fn call_not_placed(
        &self,
        call_id: &str,
        why: NotPlaced,
        reason: &str,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
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

    pub async fn calls_to_end(&self) -> Result<Vec<CallRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls c JOIN escalations e ON e.incident_id = c.incident_id
             WHERE c.end_requested = 1 AND c.sid IS NOT NULL"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(call_from_row).collect())
    }

    pub async fn call_end_sent(
        &self,
        call: &CallRecord,
        status: CallStatus,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let ended = sqlx::query(
            "UPDATE calls SET end_requested = 2, updated_at = $1 WHERE id = $2 AND end_requested = 1",
        )
        .bind(at)
        .bind(&call.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        // Another node may have sent it too: the timeline says it once.
        if ended {
            let detail = json!({"callId": call.id, "sid": call.sid, "status": status.as_str()});
            let member = Some(call.member.as_str());
            timeline(&mut tx, &call.incident_id, at, "call-ended", member, detail).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn unfinished_calls(&self) -> Result<Vec<CallRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls c JOIN escalations e ON e.incident_id = c.incident_id
             WHERE c.status NOT IN {ENDED}"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(call_from_row).collect())
    }

    pub async fn pending_fallbacks(&self) -> Result<Vec<Fallback>> {
        let rows = sqlx::query(
            "SELECT incident_id, roster::text AS roster FROM escalations WHERE fallback = 'PENDING'",
        )
        .fetch_all(&self.pool)
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

    pub async fn fallback_fired(
        &self,
        incident_id: &str,
        sent: bool,
        detail: serde_json::Value,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE escalations SET fallback = $1, updated_at = $2 WHERE incident_id = $3 AND fallback = 'PENDING'",
        )
        .bind(if sent { "SENT" } else { "FAILED" })
        .bind(at)
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

    /// Runs a webhook's event for the call it names, in one transaction (see the SQLite
    /// store's `on_call`).
    async fn on_call(
        &self,
        call_id: &str,
        sid: &str,
        event: Event,
        digits: Option<&str>,
        at: Timestamp,
    ) -> Result<Option<(Transition, Option<Answer>)>> {
        let mut tx = self.begin().await?;
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
                summary: sqlx::query_scalar("SELECT summary FROM incidents WHERE id = $1")
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

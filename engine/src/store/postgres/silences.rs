//! Silences, maintenance windows and the silencing of call loops, in PostgreSQL: a pass
//! locks the incidents it moves, then their loops, as every transition does.

use super::Postgres;
use super::escalation::loop_from_row;
use super::incidents::{timeline, timeline_many};
use crate::store::escalation::ENDED;
use crate::store::oncall::time_zone;
use crate::store::silences::{
    EXPIRED_KEPT, Pass, QuietRows, Running, SilenceRecord, WindowRecord, plan_silencing, quiet,
};
use crate::store::{Result, json};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tocsin_domain::call_loop::Outcome;
use tocsin_sdk::time::Timestamp;

fn silence_from_row(row: &PgRow) -> Result<SilenceRecord> {
    Ok(SilenceRecord {
        id: row.get("id"),
        matchers: json(row.get("matchers"))?,
        starts_at: row.get("starts_at"),
        ends_at: row.get("ends_at"),
        comment: row.get("comment"),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn window_from_row(row: &PgRow) -> Result<WindowRecord> {
    Ok(WindowRecord {
        id: row.get("id"),
        name: row.get("name"),
        matchers: json(row.get("matchers"))?,
        time_zone: time_zone(row.get("time_zone"))?,
        days: json(row.get("days"))?,
        start: row.get("start_time"),
        end: row.get("end_time"),
        comment: row.get("comment"),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

impl QuietRows for PgConnection {
    async fn quiet_generation(&mut self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT n FROM quiet_generation")
            .fetch_one(&mut *self)
            .await?)
    }

    async fn quiet_rows(
        &mut self,
        at: Timestamp,
    ) -> Result<(Vec<SilenceRecord>, Vec<WindowRecord>)> {
        let silences = sqlx::query("SELECT * FROM silences WHERE ends_at > $1")
            .bind(at)
            .fetch_all(&mut *self)
            .await?
            .iter()
            .map(silence_from_row)
            .collect::<Result<Vec<_>>>()?;
        let windows = sqlx::query("SELECT * FROM maintenance_windows")
            .fetch_all(&mut *self)
            .await?
            .iter()
            .map(window_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((silences, windows))
    }
}

impl Postgres {
    pub async fn insert_silence(&self, s: &SilenceRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM silences WHERE ends_at < $1")
            .bind(s.created_at - EXPIRED_KEPT)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id)
        .bind(serde_json::to_string(&s.matchers).expect("matchers serialize"))
        .bind(s.starts_at)
        .bind(s.ends_at)
        .bind(&s.comment)
        .bind(&s.created_by)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_silence(&self, s: &SilenceRecord) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE silences SET matchers = $1, starts_at = $2, ends_at = $3, comment = $4, updated_at = $5
             WHERE id = $6",
        )
        .bind(serde_json::to_string(&s.matchers).expect("matchers serialize"))
        .bind(s.starts_at)
        .bind(s.ends_at)
        .bind(&s.comment)
        .bind(s.updated_at)
        .bind(&s.id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn silence(&self, id: &str) -> Result<Option<SilenceRecord>> {
        sqlx::query("SELECT * FROM silences WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(silence_from_row)
            .transpose()
    }

    pub async fn list_silences(&self, since: Timestamp) -> Result<Vec<SilenceRecord>> {
        sqlx::query("SELECT * FROM silences WHERE ends_at >= $1 ORDER BY created_at, id")
            .bind(since)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(silence_from_row)
            .collect()
    }

    pub async fn insert_window(&self, w: &WindowRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO maintenance_windows (id, name, matchers, time_zone, days, start_time, end_time, comment, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&w.id)
        .bind(&w.name)
        .bind(serde_json::to_string(&w.matchers).expect("matchers serialize"))
        .bind(w.time_zone.name())
        .bind(serde_json::to_string(&w.days).expect("days serialize"))
        .bind(&w.start)
        .bind(&w.end)
        .bind(&w.comment)
        .bind(&w.created_by)
        .bind(w.created_at)
        .bind(w.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn update_window(&self, w: &WindowRecord) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE maintenance_windows SET name = $1, matchers = $2, time_zone = $3, days = $4, start_time = $5,
                 end_time = $6, comment = $7, updated_at = $8
             WHERE id = $9",
        )
        .bind(&w.name)
        .bind(serde_json::to_string(&w.matchers).expect("matchers serialize"))
        .bind(w.time_zone.name())
        .bind(serde_json::to_string(&w.days).expect("days serialize"))
        .bind(&w.start)
        .bind(&w.end)
        .bind(&w.comment)
        .bind(w.updated_at)
        .bind(&w.id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn delete_window(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM maintenance_windows WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    pub async fn window(&self, id: &str) -> Result<Option<WindowRecord>> {
        sqlx::query("SELECT * FROM maintenance_windows WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(window_from_row)
            .transpose()
    }

    pub async fn list_windows(&self) -> Result<Vec<WindowRecord>> {
        sqlx::query("SELECT * FROM maintenance_windows ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(window_from_row)
            .collect()
    }

    pub async fn silence_loops(&self, at: Timestamp) -> Result<Pass> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM silences WHERE ends_at < $1")
            .bind(at - EXPIRED_KEPT)
            .execute(&mut *tx)
            .await?;
        let quiet = quiet(&mut *tx, &self.caches.quiet, at).await?;
        // With nothing to silence, only held loops can change: they all resume.
        let which = if quiet.is_empty() {
            "('SILENCED')"
        } else {
            "('ACTIVE', 'SILENCED')"
        };
        let read = |lock: &str| {
            format!(
                "SELECT incident_id, state, step, labels::text AS labels,
                        json_array_length(roster->'members')::bigint AS members,
                        (roster->>'loops')::bigint AS loops
                 FROM escalations WHERE state IN {which} {lock}"
            )
        };
        let running = |rows: Vec<PgRow>| {
            rows.iter()
                .map(|row| {
                    Ok((
                        row.get("incident_id"),
                        loop_from_row(row)?,
                        json(row.get("labels"))?,
                    ))
                })
                .collect::<Result<Vec<Running>>>()
        };
        // Read without locks; then lock what is to change (incidents, then loops, in id
        // order, as every transition does) and plan again from what is locked.
        let unlocked = running(sqlx::query(&read("")).fetch_all(&mut *tx).await?)?;
        let candidates = plan_silencing(&unlocked, &quiet, at);
        let mut ids: Vec<&str> = candidates
            .silence
            .iter()
            .map(|(id, _)| id.as_str())
            .chain(candidates.resume.iter().map(String::as_str))
            .collect();
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Pass {
                next_change: quiet.next_change(at),
                ..Pass::default()
            });
        }
        ids.sort_unstable();
        sqlx::query("SELECT 1 FROM incidents WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let locked = sqlx::query(&read(
            "AND incident_id = ANY($1) ORDER BY incident_id FOR UPDATE",
        ))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let plan = plan_silencing(&running(locked)?, &quiet, at);
        if !plan.silence.is_empty() {
            let ids: Vec<&str> = plan.silence.iter().map(|(id, _)| id.as_str()).collect();
            // The call of each loop's current step, if under way, is cut short (settled
            // as silenced, and ended); then the loop waits, its step to be dialed anew.
            let cut = sqlx::query(&format!(
                "UPDATE calls c SET outcome = $1, decided_at = $2, updated_at = $2,
                     end_requested = CASE WHEN c.status NOT IN {ENDED} AND c.end_requested = 0 THEN 1 ELSE c.end_requested END
                 FROM escalations e
                 WHERE e.incident_id = ANY($3)
                   AND c.incident_id = e.incident_id AND c.step = e.step
                   AND c.attempt = e.attempt AND c.outcome IS NULL
                 RETURNING c.id, c.incident_id, c.member, c.step"
            ))
            .bind(Outcome::Silenced.as_str())
            .bind(at)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
            for row in &cut {
                self.calls.decided(Outcome::Silenced);
                let (id, incident, member): (&str, &str, &str) =
                    (row.get("id"), row.get("incident_id"), row.get("member"));
                let detail = serde_json::json!({"callId": id, "step": row.get::<i64, _>("step"),
                    "outcome": Outcome::Silenced.as_str()});
                timeline(&mut tx, incident, at, "call-outcome", Some(member), detail).await?;
            }
            sqlx::query(
                "UPDATE escalations SET state = 'SILENCED', attempt = attempt + 1, updated_at = $1
                 WHERE incident_id = ANY($2) AND state = 'ACTIVE'",
            )
            .bind(at)
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        }
        if !plan.resume.is_empty() {
            sqlx::query(
                "UPDATE escalations SET state = 'ACTIVE', updated_at = $1
                 WHERE incident_id = ANY($2) AND state = 'SILENCED'",
            )
            .bind(at)
            .bind(&plan.resume)
            .execute(&mut *tx)
            .await?;
        }
        timeline_many(&mut tx, &plan.entries).await?;
        tx.commit().await?;
        Ok(Pass {
            silenced: plan.silence.len(),
            resumed: plan.resume.len(),
            next_change: quiet.next_change(at),
        })
    }
}

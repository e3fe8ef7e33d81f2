//! Silences, maintenance windows and the silencing of call loops, in SQLite.

use super::escalation::loop_from_row;
use super::incidents::{timeline, timeline_many};
use super::{Sqlite, instant, micros, rows_json};
use crate::store::escalation::ENDED;
use crate::store::oncall::time_zone;
use crate::store::silences::{
    EXPIRED_KEPT, Pass, QuietRows, Running, SilenceRecord, WindowRecord, plan_silencing, quiet,
};
use crate::store::{Result, json};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use tocsin_domain::call_loop::Outcome;
use tocsin_sdk::time::Timestamp;

fn silence_from_row(row: &SqliteRow) -> Result<SilenceRecord> {
    Ok(SilenceRecord {
        id: row.get("id"),
        matchers: json(row.get("matchers"))?,
        starts_at: instant(row.get("starts_at")),
        ends_at: instant(row.get("ends_at")),
        comment: row.get("comment"),
        created_by: row.get("created_by"),
        created_at: instant(row.get("created_at")),
        updated_at: instant(row.get("updated_at")),
    })
}

fn window_from_row(row: &SqliteRow) -> Result<WindowRecord> {
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
        created_at: instant(row.get("created_at")),
        updated_at: instant(row.get("updated_at")),
    })
}

/// A call a silence cut short: (id, incident, member, step).
type Cut = (String, String, String, i64);

/// The `call-outcome` entries of calls a silence cut short.
async fn cut_entries(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    cut: &[Cut],
    at: Timestamp,
) -> Result<()> {
    for (id, incident, member, step) in cut {
        let detail =
            serde_json::json!({"callId": id, "step": step, "outcome": Outcome::Silenced.as_str()});
        timeline(tx, incident, at, "call-outcome", Some(member), detail).await?;
    }
    Ok(())
}

impl QuietRows for SqliteConnection {
    async fn quiet_generation(&mut self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT n FROM quiet_generation")
            .fetch_one(&mut *self)
            .await?)
    }

    async fn quiet_rows(
        &mut self,
        at: Timestamp,
    ) -> Result<(Vec<SilenceRecord>, Vec<WindowRecord>)> {
        let silences = sqlx::query("SELECT * FROM silences WHERE ends_at > ?")
            .bind(micros(at))
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

impl Sqlite {
    pub async fn insert_silence(&self, s: &SilenceRecord) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM silences WHERE ends_at < ?")
            .bind(micros(s.created_at - EXPIRED_KEPT))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_by, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(serde_json::to_string(&s.matchers).expect("matchers serialize"))
        .bind(micros(s.starts_at))
        .bind(micros(s.ends_at))
        .bind(&s.comment)
        .bind(&s.created_by)
        .bind(micros(s.created_at))
        .bind(micros(s.updated_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_silence(&self, s: &SilenceRecord) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE silences SET matchers = ?, starts_at = ?, ends_at = ?, comment = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(serde_json::to_string(&s.matchers).expect("matchers serialize"))
        .bind(micros(s.starts_at))
        .bind(micros(s.ends_at))
        .bind(&s.comment)
        .bind(micros(s.updated_at))
        .bind(&s.id)
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn silence(&self, id: &str) -> Result<Option<SilenceRecord>> {
        sqlx::query("SELECT * FROM silences WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(silence_from_row)
            .transpose()
    }

    pub async fn list_silences(&self, since: Timestamp) -> Result<Vec<SilenceRecord>> {
        sqlx::query("SELECT * FROM silences WHERE ends_at >= ? ORDER BY created_at, id")
            .bind(micros(since))
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(silence_from_row)
            .collect()
    }

    pub async fn insert_window(&self, w: &WindowRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO maintenance_windows (id, name, matchers, time_zone, days, start_time, end_time, comment, created_by, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(micros(w.created_at))
        .bind(micros(w.updated_at))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn update_window(&self, w: &WindowRecord) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE maintenance_windows SET name = ?, matchers = ?, time_zone = ?, days = ?, start_time = ?,
                 end_time = ?, comment = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(&w.name)
        .bind(serde_json::to_string(&w.matchers).expect("matchers serialize"))
        .bind(w.time_zone.name())
        .bind(serde_json::to_string(&w.days).expect("days serialize"))
        .bind(&w.start)
        .bind(&w.end)
        .bind(&w.comment)
        .bind(micros(w.updated_at))
        .bind(&w.id)
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn delete_window(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM maintenance_windows WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await?
            .rows_affected()
            == 1)
    }

    pub async fn window(&self, id: &str) -> Result<Option<WindowRecord>> {
        sqlx::query("SELECT * FROM maintenance_windows WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(window_from_row)
            .transpose()
    }

    pub async fn list_windows(&self) -> Result<Vec<WindowRecord>> {
        sqlx::query("SELECT * FROM maintenance_windows ORDER BY created_at, id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(window_from_row)
            .collect()
    }

    pub async fn silence_loops(&self, at: Timestamp) -> Result<Pass> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM silences WHERE ends_at < ?")
            .bind(micros(at - EXPIRED_KEPT))
            .execute(&mut *tx)
            .await?;
        let quiet = quiet(&mut *tx, &self.caches.quiet, at).await?;
        // With nothing to silence, only held loops can change: they all resume.
        let which = if quiet.is_empty() {
            "('SILENCED')"
        } else {
            "('ACTIVE', 'SILENCED')"
        };
        let rows = sqlx::query(&format!(
            "SELECT incident_id, state, step, labels, json_array_length(roster, '$.members') AS members,
                    json_extract(roster, '$.loops') AS loops
             FROM escalations WHERE state IN {which}"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let running = rows
            .iter()
            .map(|row| {
                Ok((
                    row.get("incident_id"),
                    loop_from_row(row)?,
                    json(row.get("labels"))?,
                ))
            })
            .collect::<Result<Vec<Running>>>()?;
        let plan = plan_silencing(&running, &quiet, at);
        if !plan.silence.is_empty() {
            let ids: Vec<&str> = plan.silence.iter().map(|(id, _)| id.as_str()).collect();
            // The call of each loop's current step, if under way, is cut short (settled
            // as silenced, and ended); then the loop waits, its step to be dialed anew.
            let cut = sqlx::query(&format!(
                "UPDATE calls SET outcome = ?1, decided_at = ?2, updated_at = ?2,
                     end_requested = CASE WHEN status NOT IN {ENDED} AND end_requested = 0 THEN 1 ELSE end_requested END
                 FROM escalations e
                 WHERE e.incident_id IN (SELECT value FROM json_each(?3))
                   AND calls.incident_id = e.incident_id AND calls.step = e.step
                   AND calls.attempt = e.attempt AND calls.outcome IS NULL
                 RETURNING calls.id, calls.incident_id, calls.member, calls.step"
            ))
            .bind(Outcome::Silenced.as_str())
            .bind(micros(at))
            .bind(rows_json(&ids))
            .fetch_all(&mut *tx)
            .await?;
            let cut: Vec<Cut> = cut
                .iter()
                .map(|row| {
                    (
                        row.get("id"),
                        row.get("incident_id"),
                        row.get("member"),
                        row.get::<i64, _>("step"),
                    )
                })
                .collect();
            for _ in &cut {
                self.calls.decided(Outcome::Silenced);
            }
            cut_entries(&mut tx, &cut, at).await?;
            sqlx::query(
                "UPDATE escalations SET state = 'SILENCED', attempt = attempt + 1, updated_at = ?
                 WHERE incident_id IN (SELECT value FROM json_each(?)) AND state = 'ACTIVE'",
            )
            .bind(micros(at))
            .bind(rows_json(&ids))
            .execute(&mut *tx)
            .await?;
        }
        if !plan.resume.is_empty() {
            sqlx::query(
                "UPDATE escalations SET state = 'ACTIVE', updated_at = ?
                 WHERE incident_id IN (SELECT value FROM json_each(?)) AND state = 'SILENCED'",
            )
            .bind(micros(at))
            .bind(rows_json(&plan.resume))
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

//! Alerts and their evaluation records, in SQLite.

use super::escalation::start_escalations;
use super::incidents::apply_findings;
use super::{Sqlite, instant, micros, rows_json};
use crate::store::alerts::{
    Alert, AlertStatus, EvaluationBatch, EvaluationProblem, EvaluationRecord, LastEvaluation,
    PROBLEMS_KEPT,
};
use crate::store::incidents::Change;
use crate::store::{Error, Result, json};
use serde_json::value::RawValue;
use sqlx::{Row, Transaction};
use tocsin_sdk::Query;
use tocsin_sdk::time::Timestamp;

/// Reads an alert row. Every column is read with `try_get`: a row whose values do not have
/// the expected types is an error naming the column, not a panic.
fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Alert> {
    let text = |col: &str| -> Result<String> {
        row.try_get(col)
            .map_err(|e| Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let opt_text = |col: &str| -> Result<Option<String>> {
        row.try_get(col)
            .map_err(|e| Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let int = |col: &str| -> Result<i64> {
        row.try_get(col)
            .map_err(|e| Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let opt_int = |col: &str| -> Result<Option<i64>> {
        row.try_get(col)
            .map_err(|e| Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let raw = |col: &str, text: String| {
        RawValue::from_string(text).map_err(|e| Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let opt_raw = |col: &str| -> Result<Option<Box<RawValue>>> {
        opt_text(col)?.map(|t| raw(col, t)).transpose()
    };
    let id = text("id")?;
    let status = match text("status")?.as_str() {
        "ACTIVE" => AlertStatus::Active,
        "INACTIVE" => AlertStatus::Inactive,
        other => {
            return Err(Error::Corrupt(format!(
                "alert {id}: status {other:?} is neither ACTIVE nor INACTIVE"
            )));
        }
    };
    Ok(Alert {
        template_id: text("template_id")?,
        version: int("version")?,
        description: opt_text("description")?,
        status,
        interval_minutes: int("interval_minutes")?,
        validity_minutes: opt_int("validity_minutes")?,
        valid_until: opt_int("valid_until")?.map(instant),
        owner_details: opt_raw("owner_details")?,
        entity_details: opt_raw("entity_details")?,
        parameters: raw("parameters", text("parameters")?)?,
        created_at: instant(int("created_at")?),
        updated_at: instant(int("updated_at")?),
        last_evaluation: match opt_int("last_evaluated_at")? {
            None => None,
            Some(at) => Some(LastEvaluation {
                at: instant(at),
                outcome: opt_text("last_outcome")?.unwrap_or_default(),
                message: opt_text("last_message")?,
                template_version: opt_text("last_template_version")?,
            }),
        },
        expired_at: opt_int("expired_at")?.map(instant),
        id,
    })
}

impl Sqlite {
    /// Inserts a new alert.
    pub async fn insert_alert(&self, alert: &Alert) -> Result<()> {
        self.insert_alerts(std::slice::from_ref(alert)).await
    }

    /// Inserts new alerts in one transaction (a bulk import).
    pub async fn insert_alerts(&self, alerts: &[Alert]) -> Result<()> {
        let mut tx = self.write().await?;
        for alert in alerts {
            insert_alert(&mut tx, alert).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_alert(tx: &mut Transaction<'_, sqlx::Sqlite>, alert: &Alert) -> Result<()> {
    {
        sqlx::query(
            "INSERT INTO alerts (id, template_id, version, description, status, interval_minutes,
                 validity_minutes, valid_until, owner_details, entity_details, parameters, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&alert.id)
        .bind(&alert.template_id)
        .bind(alert.version)
        .bind(&alert.description)
        .bind(alert.status.as_str())
        .bind(alert.interval_minutes)
        .bind(alert.validity_minutes)
        .bind(alert.valid_until.map(micros))
        .bind(alert.owner_details.as_ref().map(|d| d.get()))
        .bind(alert.entity_details.as_ref().map(|d| d.get()))
        .bind(alert.parameters.get())
        .bind(micros(alert.created_at))
        .bind(micros(alert.updated_at))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

impl Sqlite {
    /// Stores an alert's editable fields and version.
    pub async fn update_alert(&self, alert: &Alert) -> Result<()> {
        sqlx::query(
            "UPDATE alerts SET version = ?, description = ?, status = ?, interval_minutes = ?,
                 validity_minutes = ?, valid_until = ?, parameters = ?, updated_at = ?, expired_at = ?
             WHERE id = ?",
        )
        .bind(alert.version)
        .bind(&alert.description)
        .bind(alert.status.as_str())
        .bind(alert.interval_minutes)
        .bind(alert.validity_minutes)
        .bind(alert.valid_until.map(micros))
        .bind(alert.parameters.get())
        .bind(micros(alert.updated_at))
        .bind(alert.expired_at.map(micros))
        .bind(&alert.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every alert, in id order, with the data its last whole evaluation asked for. Read a
    /// page at a time, so that starting with many alerts never holds all their rows at once.
    /// A row the server cannot use (a value of the wrong type or out of range) is logged
    /// and skipped: one bad row never keeps the server from starting.
    pub async fn load_alerts(&self, mut each: impl FnMut(Alert, Vec<Query>)) -> Result<()> {
        const PAGE: i64 = 1_000;
        let mut after = String::new();
        loop {
            let rows = sqlx::query("SELECT * FROM alerts WHERE id > ? ORDER BY id LIMIT ?")
                .bind(&after)
                .bind(PAGE)
                .fetch_all(&self.pool)
                .await?;
            for row in &rows {
                let id: String = row.try_get("id").unwrap_or_default();
                let alert = from_row(row).and_then(|alert| match alert.unusable() {
                    Some(problem) => Err(Error::Corrupt(problem)),
                    None => Ok(alert),
                });
                let dependencies = row
                    .try_get::<String, _>("dependencies")
                    .map_err(|e| Error::Corrupt(e.to_string()))
                    .and_then(|text| json(&text));
                match (alert, dependencies) {
                    (Ok(alert), Ok(dependencies)) => each(alert, dependencies),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::error!(alert = %id, error = %e, "a stored alert cannot be used; it is skipped (fix or delete its row)");
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == PAGE => after = last.get("id"),
                _ => return Ok(()),
            }
        }
    }

    /// An alert's recent problems, newest first.
    pub async fn evaluation_problems(&self, alert_id: &str) -> Result<Vec<EvaluationProblem>> {
        let rows =
            sqlx::query("SELECT * FROM evaluation_problems WHERE alert_id = ? ORDER BY id DESC")
                .bind(alert_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|row| EvaluationProblem {
                at: instant(row.get("at")),
                outcome: row.get("outcome"),
                subject: row.get("subject"),
                message: row.get("message"),
            })
            .collect())
    }
}

/// Records evaluations (at most one per alert) in a few statements whatever their count,
/// keeping the newest few problems per alert.
async fn record_evaluations(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    records: &[EvaluationRecord<'_>],
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.alert_id,
                micros(r.last.at),
                &r.last.outcome,
                &r.last.message,
                &r.last.template_version,
                r.dependencies
                    .map(|d| serde_json::to_string(d).expect("queries serialize")),
            )
        })
        .collect();
    sqlx::query(
        "UPDATE alerts SET last_evaluated_at = r.value->>1, last_outcome = r.value->>2,
             last_message = r.value->>3, last_template_version = r.value->>4,
             dependencies = COALESCE(r.value->>5, dependencies)
         FROM json_each(?) r WHERE alerts.id = r.value->>0",
    )
    .bind(rows_json(&rows))
    .execute(&mut **tx)
    .await?;
    let problems: Vec<_> = records
        .iter()
        .flat_map(|r| {
            r.problems
                .iter()
                .map(|p| (r.alert_id, micros(p.at), &p.outcome, &p.subject, &p.message))
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO evaluation_problems (alert_id, at, outcome, subject, message)
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4 FROM json_each(?) WHERE true ORDER BY key",
    )
    .bind(rows_json(&problems))
    .execute(&mut **tx)
    .await?;
    for record in records.iter().filter(|r| !r.problems.is_empty()) {
        sqlx::query(
            "DELETE FROM evaluation_problems WHERE alert_id = ? AND id NOT IN
                (SELECT id FROM evaluation_problems WHERE alert_id = ? ORDER BY id DESC LIMIT ?)",
        )
        .bind(record.alert_id)
        .bind(record.alert_id)
        .bind(PROBLEMS_KEPT)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Sqlite {
    /// Moves alerts' last evaluation time on, never back, leaving the rest of their last
    /// evaluation as recorded.
    pub async fn save_evaluation_times(&self, times: &[(String, Timestamp)]) -> Result<()> {
        if times.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = times.iter().map(|(id, at)| (id, micros(*at))).collect();
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE alerts SET last_evaluated_at = MAX(COALESCE(last_evaluated_at, 0), r.value->>1)
             FROM json_each(?) r WHERE alerts.id = r.value->>0",
        )
        .bind(rows_json(&rows))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Sqlite {
    /// Commits a batch of evaluations in one transaction (see [`EvaluationBatch`]).
    pub async fn commit_evaluations(&self, batch: &EvaluationBatch<'_>) -> Result<Vec<Change>> {
        let mut tx = self.write().await?;
        let changes = apply_findings(&mut tx, batch.findings).await?;
        start_escalations(&mut tx, &self.caches, &batch.opened(&changes), batch.phones).await?;
        record_evaluations(&mut tx, batch.records).await?;
        tx.commit().await?;
        Ok(changes)
    }
}

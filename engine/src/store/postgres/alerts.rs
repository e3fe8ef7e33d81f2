//! Alerts and their evaluation records, in PostgreSQL.

use super::escalation::start_escalations;
use super::incidents::apply_findings;
use super::{Postgres, rows_json};
use crate::store::alerts::{
    Alert, AlertStatus, EvaluationBatch, EvaluationProblem, EvaluationRecord, LastEvaluation,
    PROBLEMS_KEPT,
};
use crate::store::incidents::Change;
use crate::store::{Error, Result, json};
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::{Row, Transaction};
use tocsin_sdk::Query;
use tocsin_sdk::time::Timestamp;

/// Reads an alert row; a value that cannot be read is an error naming its column.
fn from_row(row: &PgRow) -> Result<Alert> {
    fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
        row: &'r PgRow,
        col: &str,
    ) -> Result<T> {
        row.try_get(col)
            .map_err(|e| Error::Corrupt(format!("alert column {col}: {e}")))
    }
    let raw = |col: &str, text: String| {
        RawValue::from_string(text).map_err(|e| Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let opt_raw = |col: &str| -> Result<Option<Box<RawValue>>> {
        get::<Option<String>>(row, col)?
            .map(|t| raw(col, t))
            .transpose()
    };
    let id: String = get(row, "id")?;
    let status = match get::<&str>(row, "status")? {
        "ACTIVE" => AlertStatus::Active,
        "INACTIVE" => AlertStatus::Inactive,
        other => {
            return Err(Error::Corrupt(format!(
                "alert {id}: status {other:?} is neither ACTIVE nor INACTIVE"
            )));
        }
    };
    Ok(Alert {
        template_id: get(row, "template_id")?,
        version: get(row, "version")?,
        description: get(row, "description")?,
        status,
        interval_minutes: get(row, "interval_minutes")?,
        validity_minutes: get(row, "validity_minutes")?,
        valid_until: get(row, "valid_until")?,
        owner_details: opt_raw("owner_details")?,
        entity_details: opt_raw("entity_details")?,
        parameters: raw("parameters", get(row, "parameters")?)?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        last_evaluation: match get::<Option<Timestamp>>(row, "last_evaluated_at")? {
            None => None,
            Some(at) => Some(LastEvaluation {
                at,
                outcome: get::<Option<String>>(row, "last_outcome")?.unwrap_or_default(),
                message: get(row, "last_message")?,
                template_version: get(row, "last_template_version")?,
            }),
        },
        expired_at: get(row, "expired_at")?,
        id,
    })
}

impl Postgres {
    pub async fn insert_alert(&self, alert: &Alert) -> Result<()> {
        self.insert_alerts(std::slice::from_ref(alert)).await
    }

    pub async fn insert_alerts(&self, alerts: &[Alert]) -> Result<()> {
        let mut tx = self.begin().await?;
        for alert in alerts {
            sqlx::query(
                "INSERT INTO alerts (id, template_id, version, description, status, interval_minutes,
                     validity_minutes, valid_until, owner_details, entity_details, parameters, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(&alert.id)
            .bind(&alert.template_id)
            .bind(alert.version)
            .bind(&alert.description)
            .bind(alert.status.as_str())
            .bind(alert.interval_minutes)
            .bind(alert.validity_minutes)
            .bind(alert.valid_until)
            .bind(alert.owner_details.as_ref().map(|d| d.get()))
            .bind(alert.entity_details.as_ref().map(|d| d.get()))
            .bind(alert.parameters.get())
            .bind(alert.created_at)
            .bind(alert.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_alert(&self, alert: &Alert) -> Result<()> {
        sqlx::query(
            "UPDATE alerts SET version = $1, description = $2, status = $3, interval_minutes = $4,
                 validity_minutes = $5, valid_until = $6, parameters = $7, updated_at = $8, expired_at = $9
             WHERE id = $10",
        )
        .bind(alert.version)
        .bind(&alert.description)
        .bind(alert.status.as_str())
        .bind(alert.interval_minutes)
        .bind(alert.validity_minutes)
        .bind(alert.valid_until)
        .bind(alert.parameters.get())
        .bind(alert.updated_at)
        .bind(alert.expired_at)
        .bind(&alert.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn load_alerts(&self, mut each: impl FnMut(Alert, Vec<Query>)) -> Result<()> {
        const PAGE: i64 = 1_000;
        let mut after = String::new();
        loop {
            let rows = sqlx::query("SELECT * FROM alerts WHERE id > $1 ORDER BY id LIMIT $2")
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

    pub async fn evaluation_problems(&self, alert_id: &str) -> Result<Vec<EvaluationProblem>> {
        let rows =
            sqlx::query("SELECT * FROM evaluation_problems WHERE alert_id = $1 ORDER BY id DESC")
                .bind(alert_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|row| EvaluationProblem {
                at: row.get("at"),
                outcome: row.get("outcome"),
                subject: row.get("subject"),
                message: row.get("message"),
            })
            .collect())
    }

    pub async fn save_evaluation_times(&self, times: &[(String, Timestamp)]) -> Result<()> {
        if times.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE alerts SET last_evaluated_at = GREATEST(last_evaluated_at, (r->>1)::timestamptz)
             FROM json_array_elements($1::json) r WHERE alerts.id = r->>0",
        )
        .bind(rows_json(times))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn commit_evaluations(&self, batch: &EvaluationBatch<'_>) -> Result<Vec<Change>> {
        let mut tx = self.begin().await?;
        let changes = apply_findings(&mut tx, batch.findings).await?;
        start_escalations(&mut tx, &self.caches, &batch.opened(&changes), batch.phones).await?;
        record_evaluations(&mut tx, batch.records).await?;
        tx.commit().await?;
        Ok(changes)
    }
}

/// Records evaluations (at most one per alert), keeping the newest few problems per alert.
async fn record_evaluations(
    tx: &mut Transaction<'_, sqlx::Postgres>,
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
                r.last.at,
                &r.last.outcome,
                &r.last.message,
                &r.last.template_version,
                r.dependencies
                    .map(|d| serde_json::to_string(d).expect("queries serialize")),
            )
        })
        .collect();
    sqlx::query(
        "UPDATE alerts SET last_evaluated_at = (r->>1)::timestamptz, last_outcome = r->>2,
             last_message = r->>3, last_template_version = r->>4,
             dependencies = COALESCE(r->>5, dependencies)
         FROM json_array_elements($1::json) r WHERE alerts.id = r->>0",
    )
    .bind(rows_json(&rows))
    .execute(&mut **tx)
    .await?;
    let problems: Vec<_> = records
        .iter()
        .flat_map(|r| {
            r.problems
                .iter()
                .map(|p| (r.alert_id, p.at, &p.outcome, &p.subject, &p.message))
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO evaluation_problems (alert_id, at, outcome, subject, message)
         SELECT r->>0, (r->>1)::timestamptz, r->>2, r->>3, r->>4
         FROM json_array_elements($1::json) WITH ORDINALITY AS t (r, n) ORDER BY n",
    )
    .bind(rows_json(&problems))
    .execute(&mut **tx)
    .await?;
    for record in records.iter().filter(|r| !r.problems.is_empty()) {
        sqlx::query(
            "DELETE FROM evaluation_problems WHERE alert_id = $1 AND id NOT IN
                (SELECT id FROM evaluation_problems WHERE alert_id = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(record.alert_id)
        .bind(PROBLEMS_KEPT)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

//! Alerts: a template plus parameters, with their evaluation state.

use super::{Result, Store, instant, json, micros};
use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::{Row, Sqlite, Transaction};
use tocsin_sdk::Query;
use tocsin_sdk::time::Timestamp;

/// Whether an alert is evaluated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertStatus {
    /// Evaluated on data changes and on its interval.
    Active,
    /// Not evaluated.
    Inactive,
}

impl AlertStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }
}

/// How the last evaluation went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastEvaluation {
    /// When.
    pub at: DateTime<Utc>,
    /// `ok`, `noData` or `error`.
    pub outcome: String,
    /// The reason, for `noData` and `error`.
    pub message: Option<String>,
    /// The version of the template that ran.
    pub template_version: Option<String>,
}

/// An alert as stored.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Id.
    pub id: String,
    /// The template it instantiates.
    pub template_id: String,
    /// Bumped on every update.
    pub version: i64,
    /// Free text.
    pub description: Option<String>,
    /// Active or not.
    pub status: AlertStatus,
    /// Evaluation interval, minutes.
    pub interval_minutes: i64,
    /// Validity from creation, minutes; `None` is forever.
    pub validity_minutes: Option<i64>,
    /// When validity ends.
    pub valid_until: Option<DateTime<Utc>>,
    /// `ownerDetails`, as compact JSON text (like the other JSON fields: a small object
    /// held as a map costs hundreds of bytes in nodes, times every alert in memory).
    pub owner_details: Option<Box<RawValue>>,
    /// `entityDetails`.
    pub entity_details: Option<Box<RawValue>>,
    /// Template parameters, the text the sandbox is given.
    pub parameters: Box<RawValue>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The last evaluation.
    pub last_evaluation: Option<LastEvaluation>,
    /// When the alert's validity ended and its incidents were closed.
    pub expired_at: Option<DateTime<Utc>>,
}

/// The longest evaluation interval, in minutes: a year. Every alert is also evaluated when
/// its data changes; the interval is for time alone breaching a condition.
pub const INTERVAL_MAX_MINUTES: i64 = 525_600;
/// The longest validity, in minutes: 100 years, so that its end is a plain four-digit-year
/// RFC 3339 time whatever the creation date.
pub const VALIDITY_MAX_MINUTES: i64 = 52_560_000;

/// When a validity of `minutes` from `created_at` ends; `None` past the calendar's end.
pub fn valid_until(created_at: Timestamp, minutes: i64) -> Option<Timestamp> {
    created_at.checked_add_signed(chrono::TimeDelta::try_minutes(minutes)?)
}

/// JSON as compact text.
pub fn raw_json(value: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("JSON values serialize")
}

/// The id a details object names: its one value (under `id` or Togai's key for the type,
/// which the API checked when the alert was written).
fn id_of(details: Option<&RawValue>) -> Option<String> {
    let map: serde_json::Map<String, Value> = serde_json::from_str(details?.get()).ok()?;
    match map.get("id").or_else(|| map.values().next())? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Alert {
    /// The owner `ownerDetails` names.
    pub fn owner_id(&self) -> Option<String> {
        id_of(self.owner_details.as_deref())
    }

    /// The entity `entityDetails` names.
    pub fn entity_id(&self) -> Option<String> {
        id_of(self.entity_details.as_deref())
    }

    /// The evaluation interval, always within 1 to [`INTERVAL_MAX_MINUTES`] minutes.
    pub fn interval(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(self.interval_minutes.clamp(1, INTERVAL_MAX_MINUTES))
    }

    /// Why the server cannot use this stored alert, if it cannot: a value outside the
    /// ranges the API accepts (a database written by hand, or by an older version that did
    /// not check them).
    pub fn unusable(&self) -> Option<String> {
        if !(0..=INTERVAL_MAX_MINUTES).contains(&self.interval_minutes) {
            return Some(format!(
                "interval {} is outside 0 to {INTERVAL_MAX_MINUTES} minutes",
                self.interval_minutes
            ));
        }
        if let Some(v) = self.validity_minutes
            && !(0..=VALIDITY_MAX_MINUTES).contains(&v)
        {
            return Some(format!(
                "validity {v} is outside 0 to {VALIDITY_MAX_MINUTES} minutes"
            ));
        }
        let usable = |t: &Timestamp| (1970..=9999).contains(&chrono::Datelike::year(t));
        if ![
            Some(self.created_at),
            Some(self.updated_at),
            self.valid_until,
            self.expired_at,
        ]
        .iter()
        .flatten()
        .all(usable)
        {
            return Some("a time is outside the years 1970 to 9999".into());
        }
        None
    }

    /// Whether it should be evaluated at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.status == AlertStatus::Active && self.valid_until.is_none_or(|until| now < until)
    }
}

/// Reads an alert row. Every column is read with `try_get`: a row whose values do not have
/// the expected types is an error naming the column, not a panic.
fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Alert> {
    let text = |col: &str| -> Result<String> {
        row.try_get(col)
            .map_err(|e| super::Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let opt_text = |col: &str| -> Result<Option<String>> {
        row.try_get(col)
            .map_err(|e| super::Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let int = |col: &str| -> Result<i64> {
        row.try_get(col)
            .map_err(|e| super::Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let opt_int = |col: &str| -> Result<Option<i64>> {
        row.try_get(col)
            .map_err(|e| super::Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let raw = |col: &str, text: String| {
        RawValue::from_string(text)
            .map_err(|e| super::Error::Corrupt(format!("alert column {col}: {e}")))
    };
    let opt_raw = |col: &str| -> Result<Option<Box<RawValue>>> {
        opt_text(col)?.map(|t| raw(col, t)).transpose()
    };
    let id = text("id")?;
    let status = match text("status")?.as_str() {
        "ACTIVE" => AlertStatus::Active,
        "INACTIVE" => AlertStatus::Inactive,
        other => {
            return Err(super::Error::Corrupt(format!(
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

/// A problem an evaluation recorded.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationProblem {
    /// When.
    pub at: DateTime<Utc>,
    /// `noData` or `error`.
    pub outcome: String,
    /// The finding's subject, for `noData`; for an `error`, the entity the run judged alone
    /// (see [`crate::evaluator`]), if it judged one.
    pub subject: Option<String>,
    /// What went wrong.
    pub message: String,
}

/// How many problems are kept per alert.
const PROBLEMS_KEPT: i64 = 50;

impl Store {
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

async fn insert_alert(tx: &mut Transaction<'_, Sqlite>, alert: &Alert) -> Result<()> {
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

impl Store {
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
                    Some(problem) => Err(super::Error::Corrupt(problem)),
                    None => Ok(alert),
                });
                let dependencies = row
                    .try_get::<String, _>("dependencies")
                    .map_err(|e| super::Error::Corrupt(e.to_string()))
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

/// One evaluation to write down: its outcome, the data it depended on (`None` leaves the
/// recorded dependencies as they were) and its problems.
#[derive(Debug)]
pub struct EvaluationRecord<'a> {
    /// The alert.
    pub alert_id: &'a str,
    /// How it went.
    pub last: &'a LastEvaluation,
    /// What it read.
    pub dependencies: Option<&'a [Query]>,
    /// Its failed or no-data findings (with those of the alert's other runs since the last
    /// record, in order).
    pub problems: Vec<&'a EvaluationProblem>,
}

/// Records evaluations (at most one per alert) in a few statements whatever their count,
/// keeping the newest few problems per alert.
pub async fn record_evaluations(
    tx: &mut Transaction<'_, Sqlite>,
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
    .bind(super::rows_json(&rows))
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
    .bind(super::rows_json(&problems))
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

impl Store {
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
        .bind(super::rows_json(&rows))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

//! Alerts: a template plus parameters, with their evaluation state.

use super::{Result, Store, instant, json, micros};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
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
    /// `ownerDetails`.
    pub owner_details: Option<Map<String, Value>>,
    /// `entityDetails`.
    pub entity_details: Option<Map<String, Value>>,
    /// Template parameters.
    pub parameters: Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The data the last evaluation asked for.
    pub dependencies: Vec<Query>,
    /// The last evaluation.
    pub last_evaluation: Option<LastEvaluation>,
    /// When the alert's validity ended and its incidents were closed.
    pub expired_at: Option<DateTime<Utc>>,
}

fn id_of(details: &Option<Map<String, Value>>) -> Option<String> {
    match details.as_ref()?.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Alert {
    /// `ownerDetails.id`.
    pub fn owner_id(&self) -> Option<String> {
        id_of(&self.owner_details)
    }

    /// `entityDetails.id`.
    pub fn entity_id(&self) -> Option<String> {
        id_of(&self.entity_details)
    }

    /// Whether it should be evaluated at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.status == AlertStatus::Active && self.valid_until.is_none_or(|until| now < until)
    }
}

fn opt_json(details: &Option<Map<String, Value>>) -> Option<String> {
    details
        .as_ref()
        .map(|d| Value::Object(d.clone()).to_string())
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Alert> {
    let opt_map = |col: &str| -> Result<Option<Map<String, Value>>> {
        row.get::<Option<&str>, _>(col).map(json).transpose()
    };
    Ok(Alert {
        id: row.get("id"),
        template_id: row.get("template_id"),
        version: row.get("version"),
        description: row.get("description"),
        status: if row.get::<&str, _>("status") == "ACTIVE" {
            AlertStatus::Active
        } else {
            AlertStatus::Inactive
        },
        interval_minutes: row.get("interval_minutes"),
        validity_minutes: row.get("validity_minutes"),
        valid_until: row.get::<Option<i64>, _>("valid_until").map(instant),
        owner_details: opt_map("owner_details")?,
        entity_details: opt_map("entity_details")?,
        parameters: json(row.get("parameters"))?,
        created_at: instant(row.get("created_at")),
        updated_at: instant(row.get("updated_at")),
        dependencies: json(row.get("dependencies"))?,
        last_evaluation: row
            .get::<Option<i64>, _>("last_evaluated_at")
            .map(|at| LastEvaluation {
                at: instant(at),
                outcome: row
                    .get::<Option<String>, _>("last_outcome")
                    .unwrap_or_default(),
                message: row.get("last_message"),
                template_version: row.get("last_template_version"),
            }),
        expired_at: row.get::<Option<i64>, _>("expired_at").map(instant),
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
    /// The finding's subject, for `noData`.
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
        .bind(opt_json(&alert.owner_details))
        .bind(opt_json(&alert.entity_details))
        .bind(alert.parameters.to_string())
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
        .bind(alert.parameters.to_string())
        .bind(micros(alert.updated_at))
        .bind(alert.expired_at.map(micros))
        .bind(&alert.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every alert.
    pub async fn load_alerts(&self) -> Result<Vec<Alert>> {
        let rows = sqlx::query("SELECT * FROM alerts ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
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

/// Records an evaluation's outcome, the data it depended on and its problems (keeping the
/// newest few per alert).
pub async fn record_evaluation(
    tx: &mut Transaction<'_, Sqlite>,
    alert_id: &str,
    last: &LastEvaluation,
    dependencies: Option<&[Query]>,
    problems: &[EvaluationProblem],
) -> Result<()> {
    sqlx::query(
        "UPDATE alerts SET last_evaluated_at = ?, last_outcome = ?, last_message = ?, last_template_version = ?,
             dependencies = COALESCE(?, dependencies) WHERE id = ?",
    )
    .bind(micros(last.at))
    .bind(&last.outcome)
    .bind(&last.message)
    .bind(&last.template_version)
    .bind(dependencies.map(|d| serde_json::to_string(d).expect("queries serialize")))
    .bind(alert_id)
    .execute(&mut **tx)
    .await?;
    for problem in problems {
        sqlx::query("INSERT INTO evaluation_problems (alert_id, at, outcome, subject, message) VALUES (?, ?, ?, ?, ?)")
            .bind(alert_id)
            .bind(micros(problem.at))
            .bind(&problem.outcome)
            .bind(&problem.subject)
            .bind(&problem.message)
            .execute(&mut **tx)
            .await?;
    }
    if !problems.is_empty() {
        sqlx::query(
            "DELETE FROM evaluation_problems WHERE alert_id = ? AND id NOT IN
                (SELECT id FROM evaluation_problems WHERE alert_id = ? ORDER BY id DESC LIMIT ?)",
        )
        .bind(alert_id)
        .bind(alert_id)
        .bind(PROBLEMS_KEPT)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

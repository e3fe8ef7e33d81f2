//! Incidents and their timelines.

use super::{Result, Store, instant, is_unique_violation, json, micros};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Row, Sqlite, Transaction};
use tocsin_sdk::time::Timestamp;

/// Where an incident stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IncidentStatus {
    /// Breached, nobody has taken it.
    Open,
    /// An operator accepted it.
    Acknowledged,
    /// Over.
    Closed,
}

impl IncidentStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Acknowledged => "ACKNOWLEDGED",
            Self::Closed => "CLOSED",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "OPEN" => Self::Open,
            "ACKNOWLEDGED" => Self::Acknowledged,
            _ => Self::Closed,
        }
    }
}

/// An incident as stored.
#[derive(Debug, Clone)]
pub struct Incident {
    /// Id.
    pub id: String,
    /// The alert that opened it.
    pub alert_id: String,
    /// The alert's version when it opened.
    pub alert_version: i64,
    /// The alert's template.
    pub template_id: String,
    /// The finding's subject.
    pub subject: String,
    /// Status.
    pub status: IncidentStatus,
    /// The latest summary line.
    pub summary: String,
    /// Report data when it opened.
    pub report_open: Value,
    /// Report data at the latest evaluation.
    pub report_latest: Value,
    /// Report data when it closed.
    pub report_close: Option<Value>,
    /// The alert's validity end.
    pub valid_until: Option<DateTime<Utc>>,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Last evaluated.
    pub last_checked_at: DateTime<Utc>,
    /// Closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Who or what closed it.
    pub closed_by: Option<String>,
    /// Who accepted it.
    pub acknowledged_by: Option<String>,
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Incident> {
    Ok(Incident {
        id: row.get("id"),
        alert_id: row.get("alert_id"),
        alert_version: row.get("alert_version"),
        template_id: row.get("template_id"),
        subject: row.get("subject"),
        status: IncidentStatus::parse(row.get("status")),
        summary: row.get("summary"),
        report_open: json(row.get("report_open"))?,
        report_latest: json(row.get("report_latest"))?,
        report_close: row
            .get::<Option<&str>, _>("report_close")
            .map(json)
            .transpose()?,
        valid_until: row.get::<Option<i64>, _>("valid_until").map(instant),
        created_at: instant(row.get("created_at")),
        updated_at: instant(row.get("updated_at")),
        last_checked_at: instant(row.get("last_checked_at")),
        closed_at: row.get::<Option<i64>, _>("closed_at").map(instant),
        closed_by: row.get("closed_by"),
        acknowledged_by: row.get("acknowledged_by"),
    })
}

/// One step in an incident's life.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// `opened`, `updated`, `resolved`, `closed`, `expired`…
    pub kind: String,
    /// Who, when a person or key did it.
    pub actor: Option<String>,
    /// Details: report data, summaries, reasons.
    pub detail: Value,
}

/// What an evaluation found about one subject, for [`Store::apply_finding`].
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// The alert.
    pub alert_id: &'a str,
    /// The alert's version.
    pub alert_version: i64,
    /// The template.
    pub template_id: &'a str,
    /// The alert's validity end.
    pub valid_until: Option<DateTime<Utc>>,
    /// The subject.
    pub subject: &'a str,
    /// Breached or clear.
    pub breached: bool,
    /// Whether a clear condition closes the incident.
    pub auto_resolvable: bool,
    /// Report data.
    pub report: &'a Value,
    /// Summary line.
    pub summary: &'a str,
    /// The evaluation instant.
    pub at: DateTime<Utc>,
}

/// What applying an observation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing but the check time.
    None,
    /// A new incident opened.
    Opened(String),
    /// An open incident's report changed.
    Updated(String),
    /// An incident closed because its condition cleared.
    Resolved(String),
}

/// Incident list filters.
#[derive(Debug, Default, Clone)]
pub struct IncidentFilter {
    /// Only this alert's.
    pub alert_id: Option<String>,
    /// Only this status.
    pub status: Option<IncidentStatus>,
}

pub(crate) async fn timeline(
    tx: &mut Transaction<'_, Sqlite>,
    incident_id: &str,
    at: Timestamp,
    kind: &str,
    actor: Option<&str>,
    detail: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO timeline (incident_id, at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(incident_id)
    .bind(micros(at))
    .bind(kind)
    .bind(actor)
    .bind(detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn open_incident(
    tx: &mut Transaction<'_, Sqlite>,
    alert_id: &str,
    subject: &str,
) -> Result<Option<(String, String)>> {
    Ok(sqlx::query("SELECT id, report_latest FROM incidents WHERE alert_id = ? AND subject = ? AND status != 'CLOSED'")
        .bind(alert_id)
        .bind(subject)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| (row.get("id"), row.get("report_latest"))))
}

/// Applies one breached-or-clear finding: opens, refreshes or resolves the subject's
/// incident. At most one incident per (alert, subject) is ever not CLOSED; the unique index
/// enforces it even if two writers race.
pub async fn apply_finding(
    tx: &mut Transaction<'_, Sqlite>,
    o: &Observation<'_>,
) -> Result<Change> {
    let change = match (open_incident(tx, o.alert_id, o.subject).await?, o.breached) {
        (Some((id, latest)), true) => {
            sqlx::query(
                "UPDATE incidents SET report_latest = ?, summary = ?, last_checked_at = ?,
                     updated_at = CASE WHEN report_latest = ? THEN updated_at ELSE ? END
                 WHERE id = ?",
            )
            .bind(o.report.to_string())
            .bind(o.summary)
            .bind(micros(o.at))
            .bind(o.report.to_string())
            .bind(micros(o.at))
            .bind(&id)
            .execute(&mut **tx)
            .await?;
            if json::<Value>(&latest)? != *o.report {
                timeline(
                    tx,
                    &id,
                    o.at,
                    "updated",
                    None,
                    serde_json::json!({"report": o.report, "summary": o.summary}),
                )
                .await?;
                Change::Updated(id)
            } else {
                Change::None
            }
        }
        (None, true) => {
            let id = new_id("inc");
            let inserted = sqlx::query(
                "INSERT INTO incidents (id, alert_id, alert_version, template_id, subject, status, summary,
                     report_open, report_latest, valid_until, created_at, updated_at, last_checked_at)
                 VALUES (?, ?, ?, ?, ?, 'OPEN', ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(o.alert_id)
            .bind(o.alert_version)
            .bind(o.template_id)
            .bind(o.subject)
            .bind(o.summary)
            .bind(o.report.to_string())
            .bind(o.report.to_string())
            .bind(o.valid_until.map(micros))
            .bind(micros(o.at))
            .bind(micros(o.at))
            .bind(micros(o.at))
            .execute(&mut **tx)
            .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => return Ok(Change::None),
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            timeline(tx, &id, o.at, "opened", None, serde_json::json!({"report": o.report, "summary": o.summary, "alertVersion": o.alert_version})).await?;
            Change::Opened(id)
        }
        (Some((id, _)), false) if o.auto_resolvable => {
            sqlx::query(
                "UPDATE incidents SET status = 'CLOSED', report_close = ?, report_latest = ?, summary = ?,
                     closed_at = ?, closed_by = 'auto-resolve', updated_at = ?, last_checked_at = ?
                 WHERE id = ?",
            )
            .bind(o.report.to_string())
            .bind(o.report.to_string())
            .bind(o.summary)
            .bind(micros(o.at))
            .bind(micros(o.at))
            .bind(micros(o.at))
            .bind(&id)
            .execute(&mut **tx)
            .await?;
            timeline(
                tx,
                &id,
                o.at,
                "resolved",
                None,
                serde_json::json!({"report": o.report, "summary": o.summary}),
            )
            .await?;
            Change::Resolved(id)
        }
        (Some((id, _)), false) => {
            sqlx::query("UPDATE incidents SET last_checked_at = ? WHERE id = ?")
                .bind(micros(o.at))
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            Change::None
        }
        (None, false) => Change::None,
    };
    Ok(change)
}

/// A new, sortable id with a prefix saying what it names.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

impl Store {
    /// Applies one breached-or-clear finding in its own transaction.
    pub async fn apply_finding(&self, o: &Observation<'_>) -> Result<Change> {
        let mut tx = self.write().await?;
        let change = apply_finding(&mut tx, o).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Closes an incident; `Ok(None)` when it does not exist. Closing a closed incident
    /// changes nothing.
    pub async fn close_incident(
        &self,
        id: &str,
        at: Timestamp,
        by: &str,
        kind: &str,
    ) -> Result<Option<Incident>> {
        let mut tx = self.write().await?;
        let closed = sqlx::query(
            "UPDATE incidents SET status = 'CLOSED', closed_at = ?, closed_by = ?, report_close = report_latest, updated_at = ?
             WHERE id = ? AND status != 'CLOSED'",
        )
        .bind(micros(at))
        .bind(by)
        .bind(micros(at))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() == 1 {
            timeline(&mut tx, id, at, kind, Some(by), serde_json::json!({})).await?;
            super::escalation::stop_escalation(&mut tx, id, at, kind).await?;
        }
        tx.commit().await?;
        self.incident(id).await
    }

    /// Ids of an alert's incidents that are not closed.
    pub async fn unclosed_incidents_of(&self, alert_id: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar(
                "SELECT id FROM incidents WHERE alert_id = ? AND status != 'CLOSED'",
            )
            .bind(alert_id)
            .fetch_all(&self.pool)
            .await?,
        )
    }

    /// One incident.
    pub async fn incident(&self, id: &str) -> Result<Option<Incident>> {
        sqlx::query("SELECT * FROM incidents WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| from_row(&row))
            .transpose()
    }

    /// Incidents matching `filter`, in id (creation) order, after `after_id`.
    pub async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT * FROM incidents WHERE (? IS NULL OR alert_id = ?) AND (? IS NULL OR status = ?) AND id > ?
             ORDER BY id LIMIT ?",
        )
        .bind(&filter.alert_id)
        .bind(&filter.alert_id)
        .bind(filter.status.map(IncidentStatus::as_str))
        .bind(filter.status.map(IncidentStatus::as_str))
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// An incident's timeline, oldest first.
    pub async fn timeline(&self, incident_id: &str) -> Result<Vec<TimelineEntry>> {
        let rows = sqlx::query("SELECT * FROM timeline WHERE incident_id = ? ORDER BY id")
            .bind(incident_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TimelineEntry {
                    at: instant(row.get("at")),
                    kind: row.get("kind"),
                    actor: row.get("actor"),
                    detail: json(row.get("detail"))?,
                })
            })
            .collect()
    }
}

//! Incidents and their timelines, in PostgreSQL.

use super::{Postgres, rows_json};
use crate::store::incidents::{
    Change, FindingsPlan, Incident, IncidentFilter, IncidentStatus, Observation, Reported,
    TimelineEntry,
};
use crate::store::{Result, json};
use serde_json::{Value, json};
use sqlx::postgres::PgRow;
use sqlx::{Row, Transaction};
use std::collections::{HashMap, HashSet};
use tocsin_sdk::time::Timestamp;

pub(super) fn from_row(row: &PgRow) -> Result<Incident> {
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
        valid_until: row.get("valid_until"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        last_checked_at: row.get("last_checked_at"),
        closed_at: row.get("closed_at"),
        closed_by: row.get("closed_by"),
        acknowledged_by: row.get("acknowledged_by"),
    })
}

pub(super) async fn timeline(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    incident_id: &str,
    at: Timestamp,
    kind: &str,
    actor: Option<&str>,
    detail: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO timeline (incident_id, at, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(incident_id)
    .bind(at)
    .bind(kind)
    .bind(actor)
    .bind(detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes timeline entries in one statement, in the order given.
pub(super) async fn timeline_many(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    entries: &[(String, Timestamp, &str, Value)],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = entries
        .iter()
        .map(|(incident, at, kind, detail)| (incident, at, kind, detail.to_string()))
        .collect();
    sqlx::query(
        "INSERT INTO timeline (incident_id, at, kind, detail)
         SELECT r->>0, (r->>1)::timestamptz, r->>2, r->>3
         FROM json_array_elements($1::json) WITH ORDINALITY AS t (r, n) ORDER BY n",
    )
    .bind(rows_json(&rows))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A member accepted the incident's call: an OPEN incident becomes ACKNOWLEDGED by them.
pub(super) async fn acknowledge(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    incident_id: &str,
    by: &str,
    call_id: &str,
    at: Timestamp,
) -> Result<Option<Timestamp>> {
    let opened: Option<Timestamp> = sqlx::query_scalar(
        "UPDATE incidents SET status = 'ACKNOWLEDGED', acknowledged_by = $1, updated_at = $2 WHERE id = $3 AND status = 'OPEN'
         RETURNING created_at",
    )
    .bind(by)
    .bind(at)
    .bind(incident_id)
    .fetch_optional(&mut **tx)
    .await?;
    if opened.is_some() {
        let detail = json!({"callId": call_id});
        timeline(tx, incident_id, at, "acknowledged", Some(by), detail).await?;
    }
    Ok(opened)
}

/// The incidents not closed among these (alert, subject) pairs: id and latest report.
async fn unclosed_incidents(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    pairs: &[(&str, &str)],
) -> Result<HashMap<(String, String), (String, String)>> {
    let rows = sqlx::query(
        "SELECT i.id, i.alert_id, i.subject, i.report_latest FROM json_array_elements($1::json) p
         JOIN incidents i ON i.alert_id = p->>0 AND i.subject = p->>1 AND i.status <> 'CLOSED'",
    )
    .bind(rows_json(pairs))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                (row.get("alert_id"), row.get("subject")),
                (row.get("id"), row.get("report_latest")),
            )
        })
        .collect())
}

/// Applies breached-or-clear findings (see [`FindingsPlan`]). Another node may write the
/// same incidents at once: an incident it closed meanwhile is not refreshed, and of two
/// openings for one subject the unique index keeps one.
pub(super) async fn apply_findings(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    observations: &[Observation<'_>],
) -> Result<Vec<Change>> {
    let unclosed = unclosed_incidents(tx, &FindingsPlan::pairs(observations)).await?;
    let mut plan = FindingsPlan::new(observations, &unclosed)?;
    let reported = |rows: &[Reported]| {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| (&r.id, &r.report, r.summary, r.at))
            .collect();
        rows_json(&rows)
    };
    if !plan.refreshed.is_empty() {
        sqlx::query(
            "UPDATE incidents SET report_latest = r->>1, summary = r->>2, last_checked_at = (r->>3)::timestamptz,
                 updated_at = CASE WHEN report_latest = r->>1 THEN updated_at ELSE (r->>3)::timestamptz END
             FROM json_array_elements($1::json) r WHERE incidents.id = r->>0 AND incidents.status <> 'CLOSED'",
        )
        .bind(reported(&plan.refreshed))
        .execute(&mut **tx)
        .await?;
    }
    if !plan.resolved.is_empty() {
        sqlx::query(
            "UPDATE incidents SET status = 'CLOSED', report_close = r->>1, report_latest = r->>1,
                 summary = r->>2, closed_at = (r->>3)::timestamptz, closed_by = 'auto-resolve',
                 updated_at = (r->>3)::timestamptz, last_checked_at = (r->>3)::timestamptz
             FROM json_array_elements($1::json) r WHERE incidents.id = r->>0",
        )
        .bind(reported(&plan.resolved))
        .execute(&mut **tx)
        .await?;
    }
    if !plan.checked.is_empty() {
        sqlx::query(
            "UPDATE incidents SET last_checked_at = (r->>1)::timestamptz
             FROM json_array_elements($1::json) r WHERE incidents.id = r->>0",
        )
        .bind(rows_json(&plan.checked))
        .execute(&mut **tx)
        .await?;
    }
    if !plan.opened.is_empty() {
        let rows: Vec<_> = plan
            .opened
            .iter()
            .map(|o| {
                (
                    &o.id,
                    o.alert_id,
                    o.alert_version,
                    o.template_id,
                    o.subject,
                    o.summary,
                    &o.report,
                    o.valid_until,
                    o.at,
                )
            })
            .collect();
        // Only the rows returned were opened here.
        let inserted: HashSet<String> = sqlx::query_scalar(
            "INSERT INTO incidents (id, alert_id, alert_version, template_id, subject, status, summary,
                 report_open, report_latest, valid_until, created_at, updated_at, last_checked_at)
             SELECT r->>0, r->>1, (r->>2)::bigint, r->>3, r->>4, 'OPEN', r->>5, r->>6, r->>6,
                 (r->>7)::timestamptz, (r->>8)::timestamptz, (r->>8)::timestamptz, (r->>8)::timestamptz
             FROM json_array_elements($1::json) WITH ORDINALITY AS t (r, n) ORDER BY n
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(rows_json(&rows))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
        plan.inserted(observations, &inserted);
    }
    timeline_many(tx, &plan.entries).await?;
    let resolved: Vec<(&str, Timestamp)> = plan.resolutions().collect();
    super::escalation::stop_escalations(tx, &resolved, "resolved").await?;
    Ok(plan.changes)
}

impl Postgres {
    pub async fn apply_finding(&self, o: &Observation<'_>) -> Result<Change> {
        let mut tx = self.begin().await?;
        let change = apply_findings(&mut tx, std::slice::from_ref(o)).await?;
        tx.commit().await?;
        Ok(change.into_iter().next().expect("one change per finding"))
    }

    pub async fn close_incident(
        &self,
        id: &str,
        at: Timestamp,
        by: &str,
        kind: &str,
    ) -> Result<Option<(Incident, bool)>> {
        let mut tx = self.begin().await?;
        let closed = sqlx::query(
            "UPDATE incidents SET status = 'CLOSED', closed_at = $1, closed_by = $2, report_close = report_latest, updated_at = $1
             WHERE id = $3 AND status <> 'CLOSED'",
        )
        .bind(at)
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if closed {
            timeline(&mut tx, id, at, kind, Some(by), json!({})).await?;
            super::escalation::stop_escalations(&mut tx, &[(id, at)], kind).await?;
        }
        tx.commit().await?;
        Ok(self.incident(id).await?.map(|incident| (incident, closed)))
    }

    pub async fn any_unclosed(&self, pairs: &[(&str, &str)]) -> Result<bool> {
        if pairs.is_empty() {
            return Ok(false);
        }
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM json_array_elements($1::json) p
             JOIN incidents i ON i.alert_id = p->>0 AND i.subject = p->>1 AND i.status <> 'CLOSED')",
        )
        .bind(rows_json(pairs))
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn unclosed_incidents_of(&self, alert_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM incidents WHERE alert_id = $1 AND status <> 'CLOSED'",
        )
        .bind(alert_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn incident(&self, id: &str) -> Result<Option<Incident>> {
        sqlx::query("SELECT * FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| from_row(&row))
            .transpose()
    }

    pub async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT * FROM incidents WHERE ($1::text IS NULL OR alert_id = $1) AND ($2::text IS NULL OR status = $2)
                 AND ($5::boolean IS NULL OR EXISTS (SELECT 1 FROM escalations e
                                                    WHERE e.incident_id = incidents.id AND e.state = 'SILENCED') = $5)
                 AND id > $3
             ORDER BY id LIMIT $4",
        )
        .bind(&filter.alert_id)
        .bind(filter.status.map(IncidentStatus::as_str))
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .bind(filter.silenced)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn timeline(&self, incident_id: &str) -> Result<Vec<TimelineEntry>> {
        let rows = sqlx::query("SELECT * FROM timeline WHERE incident_id = $1 ORDER BY id")
            .bind(incident_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TimelineEntry {
                    at: row.get("at"),
                    kind: row.get("kind"),
                    actor: row.get("actor"),
                    detail: json(row.get("detail"))?,
                })
            })
            .collect()
    }
}

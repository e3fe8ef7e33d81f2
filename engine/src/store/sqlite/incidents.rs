//! Incidents and their timelines, in SQLite.

use super::{Sqlite, instant, micros, rows_json};
use crate::store::incidents::{
    Change, FindingsPlan, Incident, IncidentFilter, IncidentStatus, Observation, TimelineEntry,
};
use crate::store::{Result, json};
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Row, Transaction};
use std::collections::{HashMap, HashSet};
use tocsin_sdk::time::Timestamp;

pub(super) fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Incident> {
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

pub(super) async fn timeline(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
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

/// Writes timeline entries in as few statements as their number allows, in the order given.
pub(super) async fn timeline_many(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    entries: &[(String, Timestamp, &str, Value)],
) -> Result<()> {
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::new("INSERT INTO timeline (incident_id, at, kind, detail) ");
        sql.push_values(chunk, |mut row, (incident, at, kind, detail)| {
            row.push_bind(incident)
                .push_bind(micros(*at))
                .push_bind(*kind)
                .push_bind(detail.to_string());
        });
        sql.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// A member accepted the incident's call: an OPEN incident becomes ACKNOWLEDGED by them.
pub(super) async fn acknowledge(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    incident_id: &str,
    by: &str,
    call_id: &str,
    at: Timestamp,
) -> Result<Option<Timestamp>> {
    let opened: Option<i64> = sqlx::query_scalar(
        "UPDATE incidents SET status = 'ACKNOWLEDGED', acknowledged_by = ?, updated_at = ? WHERE id = ? AND status = 'OPEN'
         RETURNING created_at",
    )
    .bind(by)
    .bind(micros(at))
    .bind(incident_id)
    .fetch_optional(&mut **tx)
    .await?;
    if opened.is_some() {
        timeline(
            tx,
            incident_id,
            at,
            "acknowledged",
            Some(by),
            json!({"callId": call_id}),
        )
        .await?;
    }
    Ok(opened.map(instant))
}

/// Rows per multi-row statement: well under SQLite's limit of 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The incidents not closed among these (alert, subject) pairs: id and latest report, in
/// one read.
async fn unclosed_incidents(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    pairs: &[(&str, &str)],
) -> Result<HashMap<(String, String), (String, String)>> {
    let rows = sqlx::query(
        "SELECT i.id, i.alert_id, i.subject, i.report_latest FROM json_each(?) p
         JOIN incidents i ON i.alert_id = p.value->>0 AND i.subject = p.value->>1 AND i.status != 'CLOSED'",
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

/// Applies breached-or-clear findings: opens, refreshes or resolves each subject's
/// incident (a resolved one's call loop stops), returning what happened to each, in order. At most one incident per (alert,
/// subject) is ever not CLOSED; the unique index enforces it even if two writers race.
/// Should one (alert, subject) come twice, the later finding stands.
///
/// However many findings there are, this is a handful of statements: one read, then one
/// write for each kind of change, so a batch of thousands costs about what one does.
pub(super) async fn apply_findings(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    observations: &[Observation<'_>],
) -> Result<Vec<Change>> {
    let unclosed = unclosed_incidents(tx, &FindingsPlan::pairs(observations)).await?;
    let mut plan = FindingsPlan::new(observations, &unclosed)?;
    let reported = |rows: &[crate::store::incidents::Reported]| {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| (&r.id, &r.report, r.summary, micros(r.at)))
            .collect();
        rows_json(&rows)
    };
    if !plan.refreshed.is_empty() {
        sqlx::query(
            "UPDATE incidents SET report_latest = r.value->>1, summary = r.value->>2, last_checked_at = r.value->>3,
                 updated_at = CASE WHEN report_latest = r.value->>1 THEN updated_at ELSE r.value->>3 END
             FROM json_each(?) r WHERE incidents.id = r.value->>0",
        )
        .bind(reported(&plan.refreshed))
        .execute(&mut **tx)
        .await?;
    }
    if !plan.resolved.is_empty() {
        sqlx::query(
            "UPDATE incidents SET status = 'CLOSED', report_close = r.value->>1, report_latest = r.value->>1,
                 summary = r.value->>2, closed_at = r.value->>3, closed_by = 'auto-resolve',
                 updated_at = r.value->>3, last_checked_at = r.value->>3
             FROM json_each(?) r WHERE incidents.id = r.value->>0",
        )
        .bind(reported(&plan.resolved))
        .execute(&mut **tx)
        .await?;
    }
    if !plan.checked.is_empty() {
        let rows: Vec<_> = plan
            .checked
            .iter()
            .map(|(id, at)| (id, micros(*at)))
            .collect();
        sqlx::query(
            "UPDATE incidents SET last_checked_at = r.value->>1 FROM json_each(?) r WHERE incidents.id = r.value->>0",
        )
        .bind(rows_json(&rows))
        .execute(&mut **tx)
        .await?;
    }
    if !plan.opened.is_empty() {
        // Only the rows returned were opened here.
        let mut inserted = HashSet::new();
        for chunk in plan.opened.chunks(ROWS_PER_STATEMENT) {
            let mut sql = QueryBuilder::new(
                "INSERT INTO incidents (id, alert_id, alert_version, template_id, subject, status, summary,
                     report_open, report_latest, valid_until, created_at, updated_at, last_checked_at) ",
            );
            sql.push_values(chunk, |mut row, o| {
                row.push_bind(&o.id)
                    .push_bind(o.alert_id)
                    .push_bind(o.alert_version)
                    .push_bind(o.template_id)
                    .push_bind(o.subject)
                    .push("'OPEN'")
                    .push_bind(o.summary)
                    .push_bind(&o.report)
                    .push_bind(&o.report)
                    .push_bind(o.valid_until.map(micros))
                    .push_bind(micros(o.at))
                    .push_bind(micros(o.at))
                    .push_bind(micros(o.at));
            });
            sql.push(" ON CONFLICT DO NOTHING RETURNING id");
            let ids: Vec<String> = sql.build_query_scalar().fetch_all(&mut **tx).await?;
            inserted.extend(ids);
        }
        plan.inserted(observations, &inserted);
    }
    timeline_many(tx, &plan.entries).await?;
    let resolved: Vec<(&str, Timestamp)> = plan.resolutions().collect();
    super::escalation::stop_escalations(tx, &resolved, "resolved").await?;
    Ok(plan.changes)
}

impl Sqlite {
    /// Applies one breached-or-clear finding in its own transaction.
    pub async fn apply_finding(&self, o: &Observation<'_>) -> Result<Change> {
        let mut tx = self.write().await?;
        let change = apply_findings(&mut tx, std::slice::from_ref(o)).await?;
        tx.commit().await?;
        Ok(change.into_iter().next().expect("one change per finding"))
    }

    /// Closes an incident (by API or because its alert's validity ended), stopping its call
    /// loop; `Ok(None)` when it does not exist. Closing a closed incident changes nothing.
    /// The second value says whether this call closed it.
    pub async fn close_incident(
        &self,
        id: &str,
        at: Timestamp,
        by: &str,
        kind: &str,
    ) -> Result<Option<(Incident, bool)>> {
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
        .await?
        .rows_affected()
            == 1;
        if closed {
            timeline(&mut tx, id, at, kind, Some(by), serde_json::json!({})).await?;
            super::escalation::stop_escalations(&mut tx, &[(id, at)], kind).await?;
        }
        tx.commit().await?;
        Ok(self.incident(id).await?.map(|incident| (incident, closed)))
    }

    /// Whether any of these (alert, subject) pairs has an incident not CLOSED.
    pub async fn any_unclosed(&self, pairs: &[(&str, &str)]) -> Result<bool> {
        if pairs.is_empty() {
            return Ok(false);
        }
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM json_each(?) p
             JOIN incidents i ON i.alert_id = p.value->>0 AND i.subject = p.value->>1 AND i.status != 'CLOSED')",
        )
        .bind(rows_json(pairs))
        .fetch_one(&self.pool)
        .await?)
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
            "SELECT * FROM incidents WHERE (? IS NULL OR alert_id = ?) AND (? IS NULL OR status = ?)
                 AND (? IS NULL OR EXISTS (SELECT 1 FROM escalations e
                                           WHERE e.incident_id = incidents.id AND e.state = 'SILENCED') = ?)
                 AND id > ?
             ORDER BY id LIMIT ?",
        )
        .bind(&filter.alert_id)
        .bind(&filter.alert_id)
        .bind(filter.status.map(IncidentStatus::as_str))
        .bind(filter.status.map(IncidentStatus::as_str))
        .bind(filter.silenced)
        .bind(filter.silenced)
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

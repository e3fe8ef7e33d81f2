//! Incidents and their timelines.

use super::{Result, Store, instant, json, micros, rows_json};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use std::collections::{HashMap, HashSet};
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

/// Writes timeline entries in as few statements as their number allows, in the order given.
pub(crate) async fn timeline_many(
    tx: &mut Transaction<'_, Sqlite>,
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
pub(crate) async fn acknowledge(
    tx: &mut Transaction<'_, Sqlite>,
    incident_id: &str,
    by: &str,
    call_id: &str,
    at: Timestamp,
) -> Result<()> {
    let acknowledged = sqlx::query(
        "UPDATE incidents SET status = 'ACKNOWLEDGED', acknowledged_by = ?, updated_at = ? WHERE id = ? AND status = 'OPEN'",
    )
    .bind(by)
    .bind(micros(at))
    .bind(incident_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if acknowledged {
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
    Ok(())
}

/// Rows per multi-row statement: well under SQLite's limit of 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

/// An incident to open, for the multi-row insert.
struct NewIncident<'a> {
    id: String,
    alert_id: &'a str,
    alert_version: i64,
    template_id: &'a str,
    subject: &'a str,
    summary: &'a str,
    report: String,
    valid_until: Option<i64>,
    at: i64,
}

/// The incidents not closed among these (alert, subject) pairs: id and latest report, in
/// one read.
async fn unclosed_incidents(
    tx: &mut Transaction<'_, Sqlite>,
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
pub async fn apply_findings(
    tx: &mut Transaction<'_, Sqlite>,
    observations: &[Observation<'_>],
) -> Result<Vec<Change>> {
    let mut changes = vec![Change::None; observations.len()];
    let mut last: HashMap<(&str, &str), usize> = HashMap::new();
    for (index, o) in observations.iter().enumerate() {
        last.insert((o.alert_id, o.subject), index);
    }
    let pairs: Vec<(&str, &str)> = observations
        .iter()
        .map(|o| (o.alert_id, o.subject))
        .collect();
    let unclosed = unclosed_incidents(tx, &pairs).await?;
    // (id, report, summary, at) for refreshed and resolved ones; (id, at) for checked ones.
    let mut refreshed = Vec::new();
    let mut resolved = Vec::new();
    let mut checked = Vec::new();
    let mut opened = Vec::new();
    let mut entries = Vec::new();
    for (index, o) in observations.iter().enumerate() {
        if last[&(o.alert_id, o.subject)] != index {
            continue;
        }
        let open = unclosed.get(&(o.alert_id.to_owned(), o.subject.to_owned()));
        let report = o.report.to_string();
        let at = micros(o.at);
        changes[index] = match (open, o.breached) {
            (Some((id, latest)), true) => {
                refreshed.push((id, report, o.summary, at));
                if json::<Value>(latest)? != *o.report {
                    entries.push((
                        id.clone(),
                        o.at,
                        "updated",
                        json!({"report": o.report, "summary": o.summary}),
                    ));
                    Change::Updated(id.clone())
                } else {
                    Change::None
                }
            }
            (None, true) => {
                let id = new_id("inc");
                opened.push(NewIncident {
                    id: id.clone(),
                    alert_id: o.alert_id,
                    alert_version: o.alert_version,
                    template_id: o.template_id,
                    subject: o.subject,
                    summary: o.summary,
                    report,
                    valid_until: o.valid_until.map(micros),
                    at,
                });
                Change::Opened(id)
            }
            (Some((id, _)), false) if o.auto_resolvable => {
                resolved.push((id, report, o.summary, at));
                entries.push((
                    id.clone(),
                    o.at,
                    "resolved",
                    json!({"report": o.report, "summary": o.summary}),
                ));
                Change::Resolved(id.clone())
            }
            (Some((id, _)), false) => {
                checked.push((id, at));
                Change::None
            }
            (None, false) => Change::None,
        };
    }
    if !refreshed.is_empty() {
        sqlx::query(
            "UPDATE incidents SET report_latest = r.value->>1, summary = r.value->>2, last_checked_at = r.value->>3,
                 updated_at = CASE WHEN report_latest = r.value->>1 THEN updated_at ELSE r.value->>3 END
             FROM json_each(?) r WHERE incidents.id = r.value->>0",
        )
        .bind(rows_json(&refreshed))
        .execute(&mut **tx)
        .await?;
    }
    if !resolved.is_empty() {
        sqlx::query(
            "UPDATE incidents SET status = 'CLOSED', report_close = r.value->>1, report_latest = r.value->>1,
                 summary = r.value->>2, closed_at = r.value->>3, closed_by = 'auto-resolve',
                 updated_at = r.value->>3, last_checked_at = r.value->>3
             FROM json_each(?) r WHERE incidents.id = r.value->>0",
        )
        .bind(rows_json(&resolved))
        .execute(&mut **tx)
        .await?;
    }
    if !checked.is_empty() {
        sqlx::query(
            "UPDATE incidents SET last_checked_at = r.value->>1 FROM json_each(?) r WHERE incidents.id = r.value->>0",
        )
        .bind(rows_json(&checked))
        .execute(&mut **tx)
        .await?;
    }
    if !opened.is_empty() {
        // An incident another writer opened first for the same subject is skipped by the
        // unique index; only the rows returned were opened here.
        let mut inserted = HashSet::new();
        for chunk in opened.chunks(ROWS_PER_STATEMENT) {
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
                    .push_bind(o.valid_until)
                    .push_bind(o.at)
                    .push_bind(o.at)
                    .push_bind(o.at);
            });
            sql.push(" ON CONFLICT DO NOTHING RETURNING id");
            let ids: Vec<String> = sql.build_query_scalar().fetch_all(&mut **tx).await?;
            inserted.extend(ids);
        }
        for (change, o) in changes.iter_mut().zip(observations) {
            let Change::Opened(id) = change else { continue };
            if inserted.contains(id.as_str()) {
                entries.push((id.clone(), o.at, "opened",
                    json!({"report": o.report, "summary": o.summary, "alertVersion": o.alert_version})));
            } else {
                *change = Change::None;
            }
        }
    }
    timeline_many(tx, &entries).await?;
    for (change, o) in changes.iter().zip(observations) {
        if let Change::Resolved(id) = change {
            super::escalation::stop_escalation(tx, id, o.at, "resolved").await?;
        }
    }
    Ok(changes)
}

/// A new, sortable id with a prefix saying what it names.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

impl Store {
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
            super::escalation::stop_escalation(&mut tx, id, at, kind).await?;
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

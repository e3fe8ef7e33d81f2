//! Incidents and their timelines.

use super::Result;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
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

    pub(crate) fn parse(text: &str) -> Self {
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

/// What an evaluation found about one subject, for [`super::Store::apply_finding`].
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
    /// Only those whose call loop a silence holds (`true`), or only the others (`false`).
    pub silenced: Option<bool>,
}

/// An incident to open.
#[derive(Debug)]
pub(crate) struct NewIncident<'a> {
    pub id: String,
    pub alert_id: &'a str,
    pub alert_version: i64,
    pub template_id: &'a str,
    pub subject: &'a str,
    pub summary: &'a str,
    /// The report, as JSON text.
    pub report: String,
    pub valid_until: Option<Timestamp>,
    pub at: Timestamp,
}

/// A not-closed incident's new report: refreshed while breached, or closing as resolved.
#[derive(Debug)]
pub(crate) struct Reported<'a> {
    pub id: String,
    /// JSON text.
    pub report: String,
    pub summary: &'a str,
    pub at: Timestamp,
}

/// What a batch of findings does to the incidents, decided from the ones not closed before
/// anything is written. Both databases write it the same way: a few statements, one per
/// kind of change, however many findings there are.
#[derive(Debug)]
pub(crate) struct FindingsPlan<'a> {
    /// What happens to each finding, in order (an opening stands only once inserted).
    pub changes: Vec<Change>,
    /// Breached again: the latest report and summary move on.
    pub refreshed: Vec<Reported<'a>>,
    /// Cleared, and auto-resolvable: closes.
    pub resolved: Vec<Reported<'a>>,
    /// Cleared, not auto-resolvable: only the check time moves on.
    pub checked: Vec<(String, Timestamp)>,
    /// Breached with none open: opens (unless another writer opened it first).
    pub opened: Vec<NewIncident<'a>>,
    /// Timeline entries: (incident, at, kind, detail).
    pub entries: Vec<(String, Timestamp, &'static str, Value)>,
}

impl<'a> FindingsPlan<'a> {
    /// The (alert, subject) pairs whose unclosed incidents the plan needs.
    pub fn pairs(observations: &'a [Observation<'a>]) -> Vec<(&'a str, &'a str)> {
        observations
            .iter()
            .map(|o| (o.alert_id, o.subject))
            .collect()
    }

    /// Decides each finding's change, given the incidents not closed among its pairs (by
    /// alert and subject: id and latest report text). Should one (alert, subject) come
    /// twice, the later finding stands.
    pub fn new(
        observations: &'a [Observation<'a>],
        unclosed: &HashMap<(String, String), (String, String)>,
    ) -> Result<Self> {
        let mut last: HashMap<(&str, &str), usize> = HashMap::new();
        for (index, o) in observations.iter().enumerate() {
            last.insert((o.alert_id, o.subject), index);
        }
        let mut plan = Self {
            changes: vec![Change::None; observations.len()],
            refreshed: Vec::new(),
            resolved: Vec::new(),
            checked: Vec::new(),
            opened: Vec::new(),
            entries: Vec::new(),
        };
        for (index, o) in observations.iter().enumerate() {
            if last[&(o.alert_id, o.subject)] != index {
                continue;
            }
            let open = unclosed.get(&(o.alert_id.to_owned(), o.subject.to_owned()));
            let reported = |id: &String| Reported {
                id: id.clone(),
                report: o.report.to_string(),
                summary: o.summary,
                at: o.at,
            };
            let said = || json!({"report": o.report, "summary": o.summary});
            plan.changes[index] = match (open, o.breached) {
                (Some((id, latest)), true) => {
                    plan.refreshed.push(reported(id));
                    if super::json::<Value>(latest)? != *o.report {
                        plan.entries.push((id.clone(), o.at, "updated", said()));
                        Change::Updated(id.clone())
                    } else {
                        Change::None
                    }
                }
                (None, true) => {
                    let id = new_id("inc");
                    plan.opened.push(NewIncident {
                        id: id.clone(),
                        alert_id: o.alert_id,
                        alert_version: o.alert_version,
                        template_id: o.template_id,
                        subject: o.subject,
                        summary: o.summary,
                        report: o.report.to_string(),
                        valid_until: o.valid_until,
                        at: o.at,
                    });
                    Change::Opened(id)
                }
                (Some((id, _)), false) if o.auto_resolvable => {
                    plan.resolved.push(reported(id));
                    plan.entries.push((id.clone(), o.at, "resolved", said()));
                    Change::Resolved(id.clone())
                }
                (Some((id, _)), false) => {
                    plan.checked.push((id.clone(), o.at));
                    Change::None
                }
                (None, false) => Change::None,
            };
        }
        Ok(plan)
    }

    /// Settles the openings once the database said which it `inserted`: an incident
    /// another writer opened first for the same subject was skipped by the unique index,
    /// and this finding changed nothing.
    pub fn inserted(&mut self, observations: &[Observation<'_>], inserted: &HashSet<String>) {
        for (change, o) in self.changes.iter_mut().zip(observations) {
            let Change::Opened(id) = change else { continue };
            if inserted.contains(id.as_str()) {
                self.entries.push((
                    id.clone(),
                    o.at,
                    "opened",
                    json!({"report": o.report, "summary": o.summary, "alertVersion": o.alert_version}),
                ));
            } else {
                *change = Change::None;
            }
        }
    }

    /// The incidents that resolved, with when: their call loops stop.
    pub fn resolutions(&self) -> impl Iterator<Item = (&str, Timestamp)> {
        self.resolved.iter().map(|r| (r.id.as_str(), r.at))
    }
}

/// A new, sortable id with a prefix saying what it names.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

super::dispatch! {
    /// Applies one breached-or-clear finding in its own transaction.
    fn apply_finding(&self, o: &Observation<'_>) -> Result<Change>;
    /// Closes an incident (by API or because its alert's validity ended), stopping its call
    /// loop; `Ok(None)` when it does not exist. Closing a closed incident changes nothing.
    /// The second value says whether this call closed it.
    fn close_incident(&self, id: &str, at: Timestamp, by: &str, kind: &str) -> Result<Option<(Incident, bool)>>;
    /// Whether any of these (alert, subject) pairs has an incident not CLOSED.
    fn any_unclosed(&self, pairs: &[(&str, &str)]) -> Result<bool>;
    /// Ids of an alert's incidents that are not closed.
    fn unclosed_incidents_of(&self, alert_id: &str) -> Result<Vec<String>>;
    /// One incident.
    fn incident(&self, id: &str) -> Result<Option<Incident>>;
    /// Incidents matching `filter`, in id (creation) order, after `after_id`.
    fn list_incidents(&self, filter: &IncidentFilter, after_id: Option<&str>, limit: i64) -> Result<Vec<Incident>>;
    /// An incident's timeline, oldest first.
    fn timeline(&self, incident_id: &str) -> Result<Vec<TimelineEntry>>;
}

//! Alerts: a template plus parameters, with their evaluation state.

use super::Result;
use super::escalation::Opened;
use super::incidents::{Change, Observation};
use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
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
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) const PROBLEMS_KEPT: i64 = 50;

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

/// A batch of evaluations, committed together: its findings open, refresh and resolve
/// incidents, the call loops of those it opens start, and each alert's last evaluation is
/// written down, all in one transaction.
#[derive(Debug)]
pub struct EvaluationBatch<'a> {
    /// Breached or clear findings, in order.
    pub findings: &'a [Observation<'a>],
    /// For each finding, its alert's owner (routes may match on it).
    pub owners: &'a [Option<&'a str>],
    /// What places the calls (see [`super::escalation::plan_loops`]).
    pub phones: &'a str,
    /// At most one per alert.
    pub records: &'a [EvaluationRecord<'a>],
}

impl<'a> EvaluationBatch<'a> {
    /// The incidents `changes` opened, as their loops need them.
    pub(crate) fn opened(&self, changes: &'a [Change]) -> Vec<Opened<'a>> {
        changes
            .iter()
            .zip(self.findings)
            .zip(self.owners)
            .filter_map(|((change, o), owner)| match change {
                Change::Opened(id) => Some(Opened {
                    incident_id: id,
                    alert_id: o.alert_id,
                    template_id: o.template_id,
                    owner_id: *owner,
                    labels: super::silences::labels(
                        id,
                        o.alert_id,
                        o.template_id,
                        *owner,
                        o.subject,
                        o.report,
                    ),
                    at: o.at,
                }),
                _ => None,
            })
            .collect()
    }
}

super::dispatch! {
    /// Commits a batch of evaluations in one transaction; what each finding changed.
    fn commit_evaluations(&self, batch: &EvaluationBatch<'_>) -> Result<Vec<Change>>;
    /// Inserts a new alert.
    fn insert_alert(&self, alert: &Alert) -> Result<()>;
    /// Inserts new alerts in one transaction (a bulk import).
    fn insert_alerts(&self, alerts: &[Alert]) -> Result<()>;
    /// Stores an alert's editable fields and version.
    fn update_alert(&self, alert: &Alert) -> Result<()>;
    /// Every alert, in id order, with the data its last whole evaluation asked for. Read a
    /// page at a time, so that starting with many alerts never holds all their rows at once.
    /// A row the server cannot use (a value of the wrong type or out of range) is logged
    /// and skipped: one bad row never keeps the server from starting.
    fn load_alerts(&self, each: impl FnMut(Alert, Vec<Query>)) -> Result<()>;
    /// An alert's recent problems, newest first.
    fn evaluation_problems(&self, alert_id: &str) -> Result<Vec<EvaluationProblem>>;
    /// Moves alerts' last evaluation time on, never back, leaving the rest of their last
    /// evaluation as recorded.
    fn save_evaluation_times(&self, times: &[(String, Timestamp)]) -> Result<()>;
}

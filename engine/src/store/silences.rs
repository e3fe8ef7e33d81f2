//! Silences and maintenance windows, and what they do to the call loops: a loop whose
//! incident a silence matches waits (SILENCED) and calls again once none does.
//!
//! What a silence matches and when it is active is `tocsin_domain::silence`; when a window
//! is open, `tocsin_domain::oncall::Weekly`. This module holds the records, an incident's
//! labels, and the plan of a silencing pass that both databases write alike.

use super::Result;
use super::oncall::weekly;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tocsin_domain::call_loop::{self as machine, Loop};
use tocsin_domain::oncall::Weekly;
use tocsin_domain::silence::{self, Labels, Matcher, Op, Silence};
use tocsin_sdk::time::Timestamp;

/// How long an expired silence is kept, to be read back.
pub const EXPIRED_KEPT: chrono::Duration = chrono::Duration::days(5);

/// One matcher as the API states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatcherSpec {
    /// The label: `alertId`, `alertTemplateId`, `ownerId`, `subject`, `severity`,
    /// `incidentId`, and for cloud alarms `integrationId`, `source`, `name`, `resource` and
    /// every label the platform sent. A missing label reads as "".
    pub name: String,
    /// `=`, `!=`, `=~` or `!~` (the regexes are anchored, RE2 syntax).
    #[schema(pattern = "^(=|!=|=~|!~)$")]
    pub op: String,
    /// The value, or the regex.
    pub value: String,
}

/// The matchers `specs` state, or what is wrong with them (naming the field): each one
/// must parse, and at least one must not match the empty string.
pub fn parse_matchers(specs: &[MatcherSpec]) -> Result<Vec<Matcher>, String> {
    let matchers = specs
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Matcher::parse(&m.name, &m.op, &m.value).map_err(|why| format!("matchers[{i}]: {why}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    silence::check(&matchers)?;
    Ok(matchers)
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRecord {
    /// Id.
    pub id: String,
    /// Every one must match.
    pub matchers: Vec<MatcherSpec>,
    /// Active from.
    pub starts_at: Timestamp,
    /// Active until (excluded).
    pub ends_at: Timestamp,
    /// Why.
    pub comment: String,
    /// The API key that made it.
    pub created_by: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl SilenceRecord {
    /// Where it stands at `at`.
    pub fn state(&self, at: Timestamp) -> silence::State {
        if at < self.starts_at {
            silence::State::Pending
        } else if at < self.ends_at {
            silence::State::Active
        } else {
            silence::State::Expired
        }
    }
}

/// A weekly recurring maintenance window as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRecord {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Every one must match.
    pub matchers: Vec<MatcherSpec>,
    /// Whose wall clock `days`, `start` and `end` read.
    pub time_zone: Tz,
    /// `MON` … `SUN`.
    pub days: Vec<String>,
    /// Local `HH:MM` it opens.
    pub start: String,
    /// Local `HH:MM` it closes.
    pub end: String,
    /// Why.
    pub comment: String,
    /// The API key that made it.
    pub created_by: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl WindowRecord {
    /// When it is open, or what is wrong with its fields.
    pub fn weekly(&self) -> Result<Weekly, String> {
        weekly("window", &self.days, &self.start, &self.end)
    }
}

/// What can silence, read once and kept while nothing changes (see [`Cache`]): the
/// silences not yet expired and every window.
///
/// An incident is looked at only against the silences that can hold it: a silence with an
/// `=` matcher on a non-empty value is filed under that label and value, and is a
/// candidate only for incidents carrying them; the others are candidates for every
/// incident.
#[derive(Debug, Default)]
pub struct Quiet {
    silences: Vec<(String, Silence)>,
    /// Silences by label, then by the value one of their `=` matchers wants, by index.
    by_label: HashMap<String, HashMap<String, Vec<usize>>>,
    /// Silences without such a matcher, by index.
    unfiled: Vec<usize>,
    windows: Vec<(String, Vec<Matcher>, Tz, Weekly)>,
}

impl Quiet {
    /// Parses what was stored; a row that no longer parses (it did when written) is
    /// logged and left out.
    pub fn new(silences: &[SilenceRecord], windows: &[WindowRecord]) -> Self {
        Self::reading(silences, windows, &Self::default())
    }

    /// As [`Quiet::new`], taking the matchers of a silence `before` already parsed (its
    /// regexes compiled) when they have not changed.
    pub fn reading(silences: &[SilenceRecord], windows: &[WindowRecord], before: &Quiet) -> Self {
        let parsed: HashMap<&str, &[Matcher]> = before
            .silences
            .iter()
            .map(|(id, s)| (id.as_str(), s.matchers.as_slice()))
            .collect();
        let mut quiet = Self::default();
        for s in silences {
            let known = parsed
                .get(s.id.as_str())
                .filter(|m| same_matchers(m, &s.matchers))
                .map(|m| m.to_vec());
            match known.map_or_else(|| parse_matchers(&s.matchers), Ok) {
                Ok(matchers) => quiet.add(
                    s.id.clone(),
                    Silence {
                        matchers,
                        starts_at: s.starts_at,
                        ends_at: s.ends_at,
                    },
                ),
                Err(why) => {
                    tracing::error!(silence = %s.id, %why, "a stored silence does not parse; it silences nothing")
                }
            }
        }
        for w in windows {
            match parse_matchers(&w.matchers).and_then(|m| Ok((m, w.weekly()?))) {
                Ok((matchers, weekly)) => {
                    quiet
                        .windows
                        .push((w.id.clone(), matchers, w.time_zone, weekly))
                }
                Err(why) => {
                    tracing::error!(window = %w.id, %why, "a stored maintenance window does not parse; it silences nothing")
                }
            }
        }
        quiet
    }

    fn add(&mut self, id: String, silence: Silence) {
        let index = self.silences.len();
        let filed = silence
            .matchers
            .iter()
            .find(|m| m.op == Op::Equal && !m.value.is_empty());
        match filed {
            Some(m) => self
                .by_label
                .entry(m.name.clone())
                .or_default()
                .entry(m.value.clone())
                .or_default()
                .push(index),
            None => self.unfiled.push(index),
        }
        self.silences.push((id, silence));
    }

    /// Whether nothing can silence.
    pub fn is_empty(&self) -> bool {
        self.silences.is_empty() && self.windows.is_empty()
    }

    /// The silences and open windows that hold an incident with `labels` at `at`, by id.
    pub fn holding(&self, labels: &Labels, at: Timestamp) -> Vec<String> {
        let mut candidates: Vec<usize> = self.unfiled.clone();
        for (name, values) in &self.by_label {
            if let Some(filed) = labels.get(name).and_then(|value| values.get(value)) {
                candidates.extend(filed);
            }
        }
        // In the order they were read, as if every silence had been looked at.
        candidates.sort_unstable();
        let silences = candidates
            .into_iter()
            .map(|i| &self.silences[i])
            .filter(|(_, s)| s.silences(labels, at))
            .map(|(id, _)| id.clone());
        let windows = self
            .windows
            .iter()
            .filter(|(_, matchers, tz, weekly)| {
                weekly.is_open(*tz, at) && matchers.iter().all(|m| m.matches(labels))
            })
            .map(|(id, ..)| id.clone());
        silences.chain(windows).collect()
    }

    /// The first instant after `at` where what silences changes: a silence starts or ends,
    /// a window opens or closes.
    pub fn next_change(&self, at: Timestamp) -> Option<Timestamp> {
        let silences = self
            .silences
            .iter()
            .flat_map(|(_, s)| [s.starts_at, s.ends_at])
            .filter(|t| *t > at);
        let windows = self
            .windows
            .iter()
            .filter_map(|(_, _, tz, weekly)| weekly.next_edge(*tz, at));
        silences.chain(windows).min()
    }
}

/// Whether parsed matchers are those `specs` state.
fn same_matchers(parsed: &[Matcher], specs: &[MatcherSpec]) -> bool {
    parsed.len() == specs.len()
        && parsed.iter().zip(specs).all(|(m, spec)| {
            m.name == spec.name && m.op.as_str() == spec.op && m.value == spec.value
        })
}

/// What reading [`Quiet`] takes from a database.
pub(crate) trait QuietRows: Send {
    /// The count every change to a silence or a maintenance window bumps.
    fn quiet_generation(&mut self) -> impl Future<Output = Result<i64>> + Send;
    /// The silences that end after `at`, and every window.
    fn quiet_rows(
        &mut self,
        at: Timestamp,
    ) -> impl Future<Output = Result<(Vec<SilenceRecord>, Vec<WindowRecord>)>> + Send;
}

/// What can silence, as last read: (generation, read for this instant or later, parsed).
#[derive(Debug, Default)]
pub struct Cache(std::sync::Mutex<Option<(i64, Timestamp, Arc<Quiet>)>>);

/// What can silence at `at` or later, from `cache` while the database's generation has not
/// moved and `at` is not before what the cache was read for: one query at each loop's
/// start and each silencing pass, instead of reading and parsing every silence (regexes
/// compiled) again; after a change, only silences whose matchers changed are parsed
/// anew. The generation is read before what it labels, so a change committed in between
/// only makes the next read again. Silences that have ended since stay in
/// the cache until the next change; they are never active again, so they hold nothing.
pub(crate) async fn quiet<R: QuietRows>(
    rows: &mut R,
    cache: &Cache,
    at: Timestamp,
) -> Result<Arc<Quiet>> {
    let generation = rows.quiet_generation().await?;
    let before = match &*cache.0.lock().expect("not poisoned") {
        Some((seen, read_at, quiet)) if *seen == generation && *read_at <= at => {
            return Ok(quiet.clone());
        }
        Some((.., quiet)) => quiet.clone(),
        None => Arc::default(),
    };
    let (silences, windows) = rows.quiet_rows(at).await?;
    let quiet = Arc::new(Quiet::reading(&silences, &windows, &before));
    *cache.0.lock().expect("not poisoned") = Some((generation, at, quiet.clone()));
    Ok(quiet)
}

/// An incident's labels, as silences match them: `incidentId`, `alertId`,
/// `alertTemplateId`, `ownerId`, `subject`, `severity` (from the report data, when it has
/// one), and for cloud alarms (`cloud_alarm`, owned by an integration) `integrationId`,
/// `source`, `name` and `resource`. The platform's own labels are added when the loop
/// starts (see [`add_platform_labels`]).
pub fn labels(
    incident_id: &str,
    alert_id: &str,
    template_id: &str,
    owner_id: Option<&str>,
    subject: &str,
    report: &Value,
) -> Labels {
    let text = |field: &str| match report.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let mut labels = Labels::from([
        ("incidentId".to_owned(), incident_id.to_owned()),
        ("alertId".to_owned(), alert_id.to_owned()),
        ("alertTemplateId".to_owned(), template_id.to_owned()),
        (
            "ownerId".to_owned(),
            owner_id.unwrap_or_default().to_owned(),
        ),
        ("subject".to_owned(), subject.to_owned()),
        ("severity".to_owned(), text("severity")),
    ]);
    if template_id == CLOUD_ALARM {
        labels.insert(
            "integrationId".into(),
            owner_id.unwrap_or_default().to_owned(),
        );
        for field in ["source", "name", "resource"] {
            labels.insert(field.into(), text(field));
        }
    }
    labels.retain(|_, v| !v.is_empty());
    labels
}

/// The template of cloud alarms, whose incidents carry the platform's labels.
pub const CLOUD_ALARM: &str = "cloud_alarm";

/// Adds the labels an Alertmanager or Grafana alert carried (the `labels` attribute of
/// its ALARM entity, `attributes` as stored) to a cloud alarm's incident's; they never
/// replace Tocsin's own, and empty ones are missing ones.
pub fn add_platform_labels(labels: &mut Labels, attributes: &str) {
    let Ok(Value::Object(attributes)) = serde_json::from_str::<Value>(attributes) else {
        return;
    };
    if let Some(Value::Object(platform)) = attributes.get("labels") {
        for (name, value) in platform {
            if let Some(value) = value.as_str().filter(|v| !v.is_empty()) {
                labels
                    .entry(name.clone())
                    .or_insert_with(|| value.to_owned());
            }
        }
    }
}

/// The newly opened incidents of `opened` that are cloud alarms, by the ALARM entity
/// they are about (their subject).
pub(crate) fn alarm_subjects(opened: &[super::escalation::Opened<'_>]) -> Vec<String> {
    opened
        .iter()
        .filter(|o| o.template_id == CLOUD_ALARM)
        .filter_map(|o| o.labels.get("subject").cloned())
        .collect()
}

/// `opened`, with each cloud alarm's platform labels from `attributes` (entity id,
/// attributes as stored).
pub(crate) fn with_platform_labels<'a>(
    opened: &[super::escalation::Opened<'a>],
    attributes: &std::collections::HashMap<String, String>,
) -> Vec<super::escalation::Opened<'a>> {
    opened
        .iter()
        .map(|o| {
            let mut o = o.clone();
            let alarm = (o.template_id == CLOUD_ALARM)
                .then(|| o.labels.get("subject").and_then(|s| attributes.get(s)))
                .flatten();
            if let Some(attributes) = alarm {
                add_platform_labels(&mut o.labels, attributes);
            }
            o
        })
        .collect()
}

/// A running loop, as a silencing pass reads it: (incident, loop, labels).
pub(crate) type Running = (String, Loop, Labels);

/// What a silencing pass writes.
#[derive(Debug, Default)]
pub(crate) struct Silencing {
    /// Loops to hold, their calls for the current step cut short: (incident, loop before).
    pub silence: Vec<(String, Loop)>,
    /// Loops to call again: incidents.
    pub resume: Vec<String>,
    /// Timeline entries: (incident, at, kind, detail).
    pub entries: Vec<(String, Timestamp, &'static str, Value)>,
}

/// Runs each running loop through the state machine's `silence` or `unsilence`, as what
/// holds its incident at `at` says.
pub(crate) fn plan_silencing(running: &[Running], quiet: &Quiet, at: Timestamp) -> Silencing {
    let mut plan = Silencing::default();
    for (incident, state, labels) in running {
        let holding = quiet.holding(labels, at);
        if !holding.is_empty() {
            if machine::silence(*state).is_some() {
                plan.silence.push((incident.clone(), *state));
                plan.entries
                    .push((incident.clone(), at, "silenced", silenced(&holding)));
            }
        } else if machine::unsilence(*state).is_some() {
            plan.resume.push(incident.clone());
            plan.entries
                .push((incident.clone(), at, "unsilenced", json!({})));
        }
    }
    plan
}

/// The `silenced` entry's detail: what holds the loop.
pub(crate) fn silenced(holding: &[String]) -> Value {
    let (windows, silences): (Vec<&String>, Vec<&String>) = holding.iter().partition(|id| {
        id.strip_prefix(WINDOW_ID)
            .is_some_and(|r| r.starts_with('_'))
    });
    json!({"silences": silences, "maintenanceWindows": windows})
}

/// The prefix of maintenance windows' ids, `mw_…` (silences' are `sil_…`).
pub const WINDOW_ID: &str = "mw";

/// What a silencing pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Loops it held.
    pub silenced: usize,
    /// Loops it let call again.
    pub resumed: usize,
    /// When what silences next changes: the next pass is due then.
    pub next_change: Option<Timestamp>,
}

super::dispatch! {
    /// Creates a silence, and forgets those expired longer than [`EXPIRED_KEPT`] before it.
    fn insert_silence(&self, silence: &SilenceRecord) -> Result<()>;
    /// Replaces a silence's fields; false when there is no such silence.
    fn update_silence(&self, silence: &SilenceRecord) -> Result<bool>;
    /// One silence.
    fn silence(&self, id: &str) -> Result<Option<SilenceRecord>>;
    /// The silences that end at `since` or later, oldest first.
    fn list_silences(&self, since: Timestamp) -> Result<Vec<SilenceRecord>>;
    /// Creates a maintenance window.
    fn insert_window(&self, window: &WindowRecord) -> Result<()>;
    /// Replaces a window's fields; false when there is no such window.
    fn update_window(&self, window: &WindowRecord) -> Result<bool>;
    /// Deletes a window; false when there was none.
    fn delete_window(&self, id: &str) -> Result<bool>;
    /// One window.
    fn window(&self, id: &str) -> Result<Option<WindowRecord>>;
    /// Every window, oldest first.
    fn list_windows(&self) -> Result<Vec<WindowRecord>>;
    /// Holds the running loops that a silence or an open window matches at `at`, lets
    /// those that none matches call again, and forgets silences expired longer than
    /// [`EXPIRED_KEPT`], in one transaction.
    fn silence_loops(&self, at: Timestamp) -> Result<Pass>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, op: &str, value: &str) -> MatcherSpec {
        MatcherSpec {
            name: name.into(),
            op: op.into(),
            value: value.into(),
        }
    }

    fn record(id: &str, matchers: Vec<MatcherSpec>) -> SilenceRecord {
        let at: Timestamp = "2026-03-04T10:00:00Z".parse().unwrap();
        SilenceRecord {
            id: id.into(),
            matchers,
            starts_at: at,
            ends_at: at + chrono::Duration::hours(1),
            comment: "test".into(),
            created_by: "test".into(),
            created_at: at,
            updated_at: at,
        }
    }

    fn incident(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn filed_and_unfiled_silences_hold_in_the_order_they_were_read() {
        let quiet = Quiet::new(
            &[
                record("sil_1", vec![spec("alertId", "=", "al_1")]),
                record("sil_2", vec![spec("subject", "=~", "acc.*")]),
                record("sil_3", vec![spec("alertId", "=", "al_2")]),
                record(
                    "sil_4",
                    vec![spec("ownerId", "=", ""), spec("severity", "=", "critical")],
                ),
                record("sil_5", vec![spec("subject", "!=", "acc1")]),
            ],
            &[],
        );
        let labels = incident(&[
            ("alertId", "al_1"),
            ("subject", "acc1"),
            ("severity", "critical"),
        ]);
        let at = "2026-03-04T10:30:00Z".parse().unwrap();
        assert_eq!(quiet.holding(&labels, at), ["sil_1", "sil_2", "sil_4"]);
        let later = "2026-03-04T11:00:00Z".parse().unwrap();
        assert!(quiet.holding(&labels, later).is_empty(), "they ended");
    }

    #[test]
    fn a_silence_read_again_matches_by_its_new_matchers() {
        let before = Quiet::new(&[record("sil_1", vec![spec("alertId", "=", "al_1")])], &[]);
        let after = Quiet::reading(
            &[
                record("sil_1", vec![spec("alertId", "=~", "al_2|al_3")]),
                record("sil_2", vec![spec("alertId", "=", "al_1")]),
            ],
            &[],
            &before,
        );
        let at = "2026-03-04T10:30:00Z".parse().unwrap();
        assert_eq!(
            after.holding(&incident(&[("alertId", "al_3")]), at),
            ["sil_1"]
        );
        assert_eq!(
            after.holding(&incident(&[("alertId", "al_1")]), at),
            ["sil_2"]
        );
    }

    #[test]
    fn cloud_alarms_carry_the_platforms_labels_under_ours() {
        let report = json!({"source": "alertmanager", "name": "DiskFull", "resource": "db-1",
            "severity": "CRITICAL"});
        let mut labels = labels(
            "inc_1",
            "al_1",
            "cloud_alarm",
            Some("int_1"),
            "int_1:f00",
            &report,
        );
        let attributes = json!({"name": "DiskFull",
            "labels": {"team": "storage", "name": "not ours", "zone": ""}});
        add_platform_labels(&mut labels, &attributes.to_string());
        assert_eq!(labels["integrationId"], "int_1");
        assert_eq!(labels["name"], "DiskFull");
        assert_eq!(labels["team"], "storage");
        assert_eq!(labels["severity"], "CRITICAL");
        assert!(
            !labels.contains_key("zone"),
            "an empty label is a missing one"
        );
    }

    #[test]
    fn other_incidents_carry_no_alarm_labels() {
        let report = json!({"name": "x", "labels": {"team": "billing"}});
        let labels = labels("inc_1", "al_1", "usage_breach", None, "acc1", &report);
        assert_eq!(labels.get("name"), None);
        assert_eq!(labels.get("team"), None);
        assert_eq!(labels.get("ownerId"), None);
        assert_eq!(labels["subject"], "acc1");
    }

    #[test]
    fn matchers_are_refused_naming_the_one_at_fault() {
        let why = parse_matchers(&[spec("a", "=", "b"), spec("c", "<", "d")]).unwrap_err();
        assert!(why.starts_with("matchers[1]: op \"<\""), "{why}");
        let why = parse_matchers(&[spec("a", "=~", ".*")]).unwrap_err();
        assert!(why.contains("empty string"), "{why}");
    }
}

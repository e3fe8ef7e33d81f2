//! Operators, rotations, schedules and overrides as stored, and what a roster expands to
//! at an instant: the on-call rules themselves are pure, in `tocsin_domain::oncall`.

use super::Result;
use super::escalation::{Entry, Member, Roster};
use chrono::{NaiveDateTime, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use tocsin_domain::oncall::{self, Override, Rotations, Rule, Target, Weekly};
use tocsin_sdk::time::Timestamp;
use tocsin_twilio::PhoneNumber;
use utoipa::ToSchema;

/// A person who can be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Where they are called.
    pub phone: PhoneNumber,
    /// Where they are texted, when not `phone`.
    pub sms_phone: Option<PhoneNumber>,
    /// Their own time zone (IANA), for showing them times.
    pub time_zone: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A rotation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRecord {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its rules.
    pub rotation: oncall::Rotation,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// One rule of a schedule, as the API writes it and the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    /// Whoever holds this rotation is on call (give this or `operatorId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_id: Option<String>,
    /// This operator is on call (give this or `rotationId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// Days the rule opens on: `MON` … `SUN`.
    pub days: Vec<String>,
    /// Local time it opens, `HH:MM`.
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub start: String,
    /// Local time it closes, `HH:MM`: equal to `start` for all day, earlier to cross
    /// midnight (the window belongs to the day it opens).
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub end: String,
}

/// The days of the week as the API spells them.
const DAYS: [(&str, Weekday); 7] = [
    ("MON", Weekday::Mon),
    ("TUE", Weekday::Tue),
    ("WED", Weekday::Wed),
    ("THU", Weekday::Thu),
    ("FRI", Weekday::Fri),
    ("SAT", Weekday::Sat),
    ("SUN", Weekday::Sun),
];

impl RuleSpec {
    /// The rule it states, or what is wrong with it (naming the field, after `at`).
    pub fn parse(&self, at: &str) -> Result<Rule, String> {
        let target = match (&self.rotation_id, &self.operator_id) {
            (Some(id), None) => Target::Rotation(id.clone()),
            (None, Some(id)) => Target::Operator(id.clone()),
            _ => {
                return Err(format!(
                    "{at} must name exactly one of rotationId and operatorId"
                ));
            }
        };
        Ok(Rule {
            target,
            when: weekly(at, &self.days, &self.start, &self.end)?,
        })
    }
}

/// A weekly window as the API states it (`days` as `MON` … `SUN`, `start` and `end` as
/// `HH:MM`), or what is wrong with it, naming the field after `at`.
pub fn weekly(at: &str, days: &[String], start: &str, end: &str) -> Result<Weekly, String> {
    if days.is_empty() {
        return Err(format!("{at}.days must name at least one day (MON … SUN)"));
    }
    let mut parsed = Vec::with_capacity(days.len());
    for (i, day) in days.iter().enumerate() {
        let Some((_, weekday)) = DAYS.iter().find(|(name, _)| name == day) else {
            return Err(format!(
                "{at}.days[{i}] {day:?} is not one of MON, TUE, WED, THU, FRI, SAT, SUN"
            ));
        };
        if parsed.contains(weekday) {
            return Err(format!("{at}.days[{i}] repeats {day}"));
        }
        parsed.push(*weekday);
    }
    let time = |what: &str, text: &str| {
        NaiveTime::parse_from_str(text, "%H:%M")
            .ok()
            .filter(|_| text.len() == 5)
            .ok_or_else(|| format!("{at}.{what} {text:?} is not a time HH:MM (00:00 to 23:59)"))
    };
    Ok(Weekly {
        days: parsed,
        start: time("start", start)?,
        end: time("end", end)?,
    })
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Whose wall clock the rules read.
    pub time_zone: Tz,
    /// In order (each one parses).
    pub rules: Vec<RuleSpec>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl ScheduleRecord {
    /// The schedule's rules as the on-call functions read them, with `overrides` on top.
    pub fn schedule(&self, overrides: &[OverrideRecord]) -> oncall::Schedule {
        oncall::Schedule {
            time_zone: self.time_zone,
            rules: self
                .rules
                .iter()
                .filter_map(|r| r.parse("rule").ok())
                .collect(),
            overrides: overrides
                .iter()
                .filter(|o| o.schedule_id == self.id)
                .map(|o| o.rule.clone())
                .collect(),
        }
    }
}

/// An override as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRecord {
    /// Id.
    pub id: String,
    /// Its schedule.
    pub schedule_id: String,
    /// What it does, and when.
    pub rule: Override,
    /// The API key that made it.
    pub created_by: String,
    /// Created.
    pub created_at: Timestamp,
}

/// Local date-times as the API and SQLite spell them.
pub const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Reads a stored local date-time.
pub fn local_time(text: &str) -> Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, LOCAL_FORMAT)
        .map_err(|e| super::Error::Corrupt(format!("local date-time {text:?}: {e}")))
}

/// Reads a stored IANA time zone.
pub fn time_zone(name: &str) -> Result<Tz> {
    name.parse()
        .map_err(|_| super::Error::Corrupt(format!("time zone {name:?}")))
}

/// Reads a stored phone number.
pub fn phone(text: &str) -> Result<PhoneNumber> {
    PhoneNumber::parse(text).map_err(|e| super::Error::Corrupt(format!("phone {text:?}: {e}")))
}

/// What an expansion reads: the operators, rotations and schedules (with the overrides that
/// meet the window asked about) that a roster or schedule names, directly or through a
/// schedule's rules.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    /// By id.
    pub operators: HashMap<String, Operator>,
    /// By id.
    pub rotations: Rotations,
    /// By id, with their overrides.
    pub schedules: HashMap<String, oncall::Schedule>,
}

/// The ids a directory is loaded for.
#[derive(Debug, Default, Clone)]
pub struct Wanted {
    /// Operators named directly.
    pub operators: Vec<String>,
    /// Rotations named directly.
    pub rotations: Vec<String>,
    /// Schedules named directly.
    pub schedules: Vec<String>,
    /// When set, only the operators on call at these instants are loaded (a loop's start
    /// reads a handful of holders, not every participant of every rotation); otherwise
    /// every operator named anywhere.
    pub instants: Option<Vec<Timestamp>>,
}

impl Wanted {
    /// What a roster's entries name.
    pub fn roster(roster: &Roster<Entry>) -> Self {
        Self::entries(&roster.members)
    }

    /// What roster entries name.
    pub fn entries(entries: &[Entry]) -> Self {
        let mut wanted = Self::default();
        for entry in entries {
            match entry {
                Entry::Member(_) => {}
                Entry::Operator { operator_id } => wanted.operators.push(operator_id.clone()),
                Entry::Rotation { rotation_id } => wanted.rotations.push(rotation_id.clone()),
                Entry::Schedule { schedule_id } => wanted.schedules.push(schedule_id.clone()),
            }
        }
        wanted
    }

    /// Only what is on call at `instants` (see [`Self::instants`]).
    pub fn at(self, instants: Vec<Timestamp>) -> Self {
        Self {
            instants: Some(instants),
            ..self
        }
    }

    /// Whether nothing is wanted (a roster of plain members).
    pub fn is_empty(&self) -> bool {
        self.operators.is_empty() && self.rotations.is_empty() && self.schedules.is_empty()
    }
}

/// The reads [`load_directory`] makes, on one database connection (or transaction).
pub(crate) trait DirectoryRows: Send {
    /// These schedules, each with its overrides that meet `[from, to)`, in one read.
    fn schedules(
        &mut self,
        ids: &[String],
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<(ScheduleRecord, Vec<OverrideRecord>)>>> + Send;
    /// Overrides of these schedules that meet `[from, to)`.
    fn overrides(
        &mut self,
        schedule_ids: &[String],
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<OverrideRecord>>> + Send;
    fn rotations(
        &mut self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<RotationRecord>>> + Send;
    fn operators(&mut self, ids: &[String]) -> impl Future<Output = Result<Vec<Operator>>> + Send;
    /// The count every change to an operator, rotation, schedule or override bumps.
    fn generation(&mut self) -> impl Future<Output = Result<i64>> + Send;
    /// Every operator, rotation and schedule, with every override.
    fn everything(&mut self) -> impl Future<Output = Result<Directory>> + Send;
}

fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let set: HashSet<String> = ids.into_iter().collect();
    let mut ids: Vec<String> = set.into_iter().collect();
    ids.sort();
    ids
}

/// Everything on call, as last read, and the generation it was read at: what the call
/// loops' starts expand rosters from, read again whenever the database's generation moved
/// (a change on any node bumps it, in the change's own transaction).
#[derive(Debug, Default)]
pub struct Cache(std::sync::Mutex<Option<(i64, std::sync::Arc<Directory>)>>);

/// Everything on call, from `cache` while the database's generation has not moved: one
/// query, instead of three, at each loop's start. The generation is read before what it
/// labels, so a change committed in between only makes the next start read again.
pub(crate) async fn everything<R: DirectoryRows>(
    rows: &mut R,
    cache: &Cache,
) -> Result<std::sync::Arc<Directory>> {
    let generation = rows.generation().await?;
    if let Some((seen, directory)) = &*cache.0.lock().expect("not poisoned")
        && *seen == generation
    {
        return Ok(directory.clone());
    }
    let directory = std::sync::Arc::new(rows.everything().await?);
    *cache.0.lock().expect("not poisoned") = Some((generation, directory.clone()));
    Ok(directory)
}

/// Loads what expanding `wanted` over `[from, to)` reads, in three queries at most.
pub(crate) async fn load_directory<R: DirectoryRows>(
    rows: &mut R,
    wanted: &Wanted,
    from: Timestamp,
    to: Timestamp,
) -> Result<Directory> {
    let mut directory = Directory::default();
    let mut rotation_ids = wanted.rotations.clone();
    let mut operator_ids = wanted.operators.clone();
    if !wanted.schedules.is_empty() {
        let ids = sorted(wanted.schedules.iter().cloned());
        for (record, overrides) in rows.schedules(&ids, from, to).await? {
            let schedule = record.schedule(&overrides);
            for rule in &schedule.rules {
                match &rule.target {
                    Target::Operator(id) if wanted.instants.is_none() => {
                        operator_ids.push(id.clone());
                    }
                    Target::Operator(_) => {}
                    Target::Rotation(id) => rotation_ids.push(id.clone()),
                }
            }
            if wanted.instants.is_none() {
                for o in &schedule.overrides {
                    operator_ids.extend(o.add.iter().chain(&o.remove).cloned());
                }
            }
            directory.schedules.insert(record.id, schedule);
        }
    }
    if !rotation_ids.is_empty() {
        for record in rows.rotations(&sorted(rotation_ids)).await? {
            if wanted.instants.is_none() {
                operator_ids.extend(record.rotation.participants.iter().cloned());
            }
            directory.rotations.insert(record.id, record.rotation);
        }
    }
    // Who is on call at the instants asked about: computed before any operator is read.
    for &at in wanted.instants.iter().flatten() {
        for id in &wanted.rotations {
            if let Some(holder) = directory.rotations.get(id).and_then(|r| r.holder(at)) {
                operator_ids.push(holder.to_owned());
            }
        }
        for id in &wanted.schedules {
            if let Some(schedule) = directory.schedules.get(id) {
                operator_ids.extend(
                    schedule
                        .on_call(&directory.rotations, at)
                        .into_iter()
                        .map(str::to_owned),
                );
            }
        }
    }
    if !operator_ids.is_empty() {
        for operator in rows.operators(&sorted(operator_ids)).await? {
            directory.operators.insert(operator.id.clone(), operator);
        }
    }
    Ok(directory)
}

/// A roster expanded at an instant: the members a loop calls, and what each entry gave.
#[derive(Debug, Clone)]
pub struct Expansion {
    /// The loop's copy of the roster.
    pub roster: Roster<Member>,
    /// For the timeline and the dry run: each entry with the operators it gave.
    pub entries: Vec<serde_json::Value>,
}

/// Expands `roster` at `at`: each entry in order becomes the operators it names then (an
/// operator, a rotation's holder, everyone on a schedule), each number once; an entry
/// that names nobody (or something deleted) gives nobody.
pub fn expand(roster: &Roster<Entry>, directory: &Directory, at: Timestamp) -> Expansion {
    let mut members: Vec<Member> = Vec::new();
    let mut entries = Vec::with_capacity(roster.members.len());
    for entry in &roster.members {
        let (named, ids): (serde_json::Value, Vec<&str>) = match entry {
            Entry::Member(member) => {
                let given = vec![json!({"name": member.name})];
                if !members.iter().any(|m| m.phone == member.phone) {
                    members.push(member.clone());
                }
                entries.push(json!({"member": member.name, "operators": given}));
                continue;
            }
            Entry::Operator { operator_id } => (
                json!({"operatorId": operator_id}),
                vec![operator_id.as_str()],
            ),
            Entry::Rotation { rotation_id } => (
                json!({"rotationId": rotation_id}),
                directory
                    .rotations
                    .get(rotation_id)
                    .and_then(|r| r.holder(at))
                    .into_iter()
                    .collect(),
            ),
            Entry::Schedule { schedule_id } => (
                json!({"scheduleId": schedule_id}),
                directory
                    .schedules
                    .get(schedule_id)
                    .map(|s| s.on_call(&directory.rotations, at))
                    .unwrap_or_default(),
            ),
        };
        let mut given = Vec::new();
        for id in ids {
            let Some(operator) = directory.operators.get(id) else {
                continue;
            };
            given.push(json!({"operatorId": operator.id, "name": operator.name}));
            if !members.iter().any(|m| m.phone == operator.phone) {
                members.push(Member {
                    name: operator.name.clone(),
                    phone: operator.phone.clone(),
                    operator_id: Some(operator.id.clone()),
                    sms_phone: operator.sms_phone.clone(),
                });
            }
        }
        let mut named = named;
        named["operators"] = json!(given);
        entries.push(named);
    }
    Expansion {
        roster: Roster {
            id: roster.id.clone(),
            name: roster.name.clone(),
            members,
            loops: roster.loops,
            ring_timeout_seconds: roster.ring_timeout_seconds,
            fallback_url: roster.fallback_url.clone(),
            sms: roster.sms,
            created_at: roster.created_at,
            updated_at: roster.updated_at,
        },
        entries,
    }
}

/// What uses an operator, for refusing to delete one in use: "rosters/…", "rotations/…",
/// "schedules/…".
pub type Uses = Vec<String>;

super::dispatch! {
    /// Creates an operator; a number already taken is a unique violation.
    fn insert_operator(&self, operator: &Operator) -> Result<()>;
    /// Replaces an operator's fields; false when there is none.
    fn update_operator(&self, operator: &Operator) -> Result<bool>;
    /// Deletes an operator nothing names; `Err` lists what does.
    fn delete_operator(&self, id: &str) -> Result<Result<bool, Uses>>;
    /// One operator.
    fn operator(&self, id: &str) -> Result<Option<Operator>>;
    /// Operators in id order after `after_id`.
    fn list_operators(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<Operator>>;
    /// Creates a rotation.
    fn insert_rotation(&self, rotation: &RotationRecord) -> Result<()>;
    /// Replaces a rotation's fields; false when there is none.
    fn update_rotation(&self, rotation: &RotationRecord) -> Result<bool>;
    /// Deletes a rotation nothing names; `Err` lists what does.
    fn delete_rotation(&self, id: &str) -> Result<Result<bool, Uses>>;
    /// One rotation.
    fn rotation(&self, id: &str) -> Result<Option<RotationRecord>>;
    /// Rotations in id order after `after_id`.
    fn list_rotations(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<RotationRecord>>;
    /// Creates a schedule.
    fn insert_schedule(&self, schedule: &ScheduleRecord) -> Result<()>;
    /// Replaces a schedule's fields; false when there is none.
    fn update_schedule(&self, schedule: &ScheduleRecord) -> Result<bool>;
    /// Deletes a schedule (and its overrides) no roster names; `Err` lists the rosters.
    fn delete_schedule(&self, id: &str) -> Result<Result<bool, Uses>>;
    /// One schedule.
    fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>>;
    /// Schedules in id order after `after_id`.
    fn list_schedules(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<ScheduleRecord>>;
    /// Adds an override unless one of the same schedule overlaps it and involves one of
    /// its operators: `Err` names that one.
    fn insert_override(&self, o: &OverrideRecord) -> Result<Result<(), String>>;
    /// A schedule's overrides that meet `[from, to)`, by start.
    fn overrides(&self, schedule_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<OverrideRecord>>;
    /// Deletes an override; false when the schedule has none of that id.
    fn delete_override(&self, schedule_id: &str, id: &str) -> Result<bool>;
    /// What expanding `wanted` over `[from, to)` reads.
    fn directory(&self, wanted: &Wanted, from: Timestamp, to: Timestamp) -> Result<Directory>;
}

super::dispatch! {
    impl OnCall;
    /// Creates an operator.
    fn insert_operator(&self, operator: &Operator) -> Result<()>;
    /// Deletes an operator nothing names.
    fn delete_operator(&self, id: &str) -> Result<Result<bool, Uses>>;
    /// Creates a rotation.
    fn insert_rotation(&self, rotation: &RotationRecord) -> Result<()>;
    /// Creates a schedule.
    fn insert_schedule(&self, schedule: &ScheduleRecord) -> Result<()>;
    /// Adds an override unless it overlaps one of the same operator.
    fn insert_override(&self, o: &OverrideRecord) -> Result<Result<(), String>>;
    /// What expanding `wanted` over `[from, to)` reads.
    fn directory(&self, wanted: &Wanted, from: Timestamp, to: Timestamp) -> Result<Directory>;
}

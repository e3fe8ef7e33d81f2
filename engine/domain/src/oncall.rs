//! Who is on call: rotations, schedules and overrides as pure functions of an instant.
//!
//! Nothing here is stored as "the current holder": it is computed from the definitions and
//! the instant asked about, so a clock moved by a test, a node that restarts, or a loop
//! resolved a week later all get the same answer. Local times follow one rule everywhere
//! ([`instant`]): a wall-clock time that does not exist that day (spring forward) means the
//! first instant after the gap, one that exists twice (fall back) means its first
//! occurrence.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use std::collections::HashMap;

/// The instant a local wall-clock time names in `tz`: its first occurrence when the clock
/// shows it twice, and the first instant after the gap when the clock skips it.
pub fn instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => after_gap(tz, local),
    }
}

/// The transition that skips `local`: the first instant whose wall clock reads later.
fn after_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let offset =
        |utc: NaiveDateTime| i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc());
    // A day either side of a gap the offsets are the ones before and after it (no zone
    // changes its offset twice in two days).
    let before = offset(local - Duration::days(1));
    let after = offset(local + Duration::days(1));
    // `local - after` (as UTC) is still before the transition, `local - before` past it.
    let mut lo = (local - Duration::seconds(after)).and_utc().timestamp();
    let mut hi = (local - Duration::seconds(before)).and_utc().timestamp();
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let at = DateTime::from_timestamp(mid, 0)
            .expect("in range")
            .naive_utc();
        if offset(at) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).expect("in range")
}

/// The local wall-clock time of `at` in `tz`.
fn local(tz: Tz, at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&tz).naive_local()
}

/// What a rotation's shift is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShiftUnit {
    /// Local hours: handoffs stay on the same minute of the local hour.
    Hourly,
    /// Local days: handoffs at the same local time every day, whatever DST does.
    Daily,
    /// Local weeks.
    Weekly,
}

impl ShiftUnit {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hourly => "hourly",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        }
    }

    /// Reads the name the API uses.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "hourly" => Self::Hourly,
            "daily" => Self::Daily,
            "weekly" => Self::Weekly,
            _ => return None,
        })
    }

    fn length(self, shifts: i64) -> Option<Duration> {
        match self {
            Self::Hourly => Duration::try_hours(shifts),
            Self::Daily => Duration::try_days(shifts),
            Self::Weekly => Duration::try_weeks(shifts),
        }
    }
}

/// A shift handed among participants in order. Participant `k mod n` holds the `k`-th shift
/// after `handoff_at`, shifts counted on the wall clock of `time_zone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Whose wall clock counts the shifts.
    pub time_zone: Tz,
    /// What a shift is counted in.
    pub unit: ShiftUnit,
    /// Units per shift, at least 1.
    pub shift_length: u32,
    /// The local date-time of one handoff, to the first participant.
    pub handoff_at: NaiveDateTime,
    /// Operator ids, in handing order.
    pub participants: Vec<String>,
}

/// An operator on call over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift<'a> {
    /// The operator's id.
    pub operator: &'a str,
    /// From (inclusive).
    pub start: DateTime<Utc>,
    /// To (exclusive).
    pub end: DateTime<Utc>,
}

impl Rotation {
    fn shift(&self) -> Duration {
        self.unit
            .length(i64::from(self.shift_length.max(1)))
            .expect("at most 9000 weeks")
    }

    /// The instant of the `k`-th handoff after (negative: before) `handoff_at`; beyond the
    /// calendar's range, its end.
    pub fn handoff(&self, k: i64) -> DateTime<Utc> {
        let local = self
            .unit
            .length(i64::from(self.shift_length.max(1)).saturating_mul(k))
            .and_then(|d| self.handoff_at.checked_add_signed(d))
            .unwrap_or(if k < 0 {
                NaiveDateTime::MIN
            } else {
                NaiveDateTime::MAX
            });
        instant(self.time_zone, local)
    }

    /// The shift `at` falls in: the number of whole shifts since `handoff_at` (negative
    /// before it). A shift that DST leaves empty (an hourly one in a spring-forward gap) is
    /// never the answer.
    pub fn shift_index(&self, at: DateTime<Utc>) -> i64 {
        let elapsed = local(self.time_zone, at) - self.handoff_at;
        let mut k = elapsed
            .num_seconds()
            .div_euclid(self.shift().num_seconds().max(1));
        // The wall clock can run up to a DST change away from the instants: step to the
        // shift whose handoffs bracket `at`.
        while self.handoff(k + 1) <= at {
            k += 1;
        }
        while self.handoff(k) > at {
            k -= 1;
        }
        k
    }

    /// Who holds the rotation at `at`; `None` without participants.
    pub fn holder(&self, at: DateTime<Utc>) -> Option<&str> {
        let n = self.participants.len() as i64;
        if n == 0 {
            return None;
        }
        let k = self.shift_index(at);
        Some(&self.participants[k.rem_euclid(n) as usize])
    }

    /// The shifts that cover `[from, to)`, in order, cut to the range: no gaps, no overlaps,
    /// no empty shifts. Nothing without participants.
    pub fn shifts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Shift<'_>> {
        let n = self.participants.len() as i64;
        let mut shifts = Vec::new();
        if n == 0 || from >= to {
            return shifts;
        }
        let mut k = self.shift_index(from);
        let mut start = from;
        while start < to {
            let end = self.handoff(k + 1).min(to);
            if end > start {
                shifts.push(Shift {
                    operator: &self.participants[k.rem_euclid(n) as usize],
                    start,
                    end,
                });
                start = end;
            }
            k += 1;
        }
        shifts
    }

    /// The handoffs in `(from, to)`, in order.
    fn handoffs(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut k = self.shift_index(from) + 1;
        let mut handoffs = Vec::new();
        loop {
            let at = self.handoff(k);
            if at >= to {
                return handoffs;
            }
            if at > from {
                handoffs.push(at);
            }
            k += 1;
        }
    }

    /// The rotation re-anchored so that `to` holds it from `at` on, the order of hand-offs
    /// kept: the shift starts at `at`'s local minute (its local hour, for hourly rotations,
    /// which stay on the hour). `None` when `to` is not a participant.
    pub fn handed_to(&self, to: &str, at: DateTime<Utc>) -> Option<Rotation> {
        let position = self.participants.iter().position(|p| p == to)?;
        let mut participants = self.participants.clone();
        participants.rotate_left(position);
        let now = local(self.time_zone, at);
        let handoff_at = match self.unit {
            ShiftUnit::Hourly => now.date().and_hms_opt(now.hour(), 0, 0),
            ShiftUnit::Daily | ShiftUnit::Weekly => {
                now.date().and_hms_opt(now.hour(), now.minute(), 0)
            }
        }
        .expect("a valid time");
        Some(Rotation {
            handoff_at,
            participants,
            ..self.clone()
        })
    }
}

/// Whom a schedule rule puts on call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This operator.
    Operator(String),
    /// Whoever holds this rotation.
    Rotation(String),
}

/// A weekly window on a local wall clock: it opens at `start` on each of `days` and closes
/// at `end`; `start == end` is a whole day (24 hours from `start`) and `end < start` crosses
/// midnight, belonging to the day it starts. Schedule rules and maintenance windows are
/// both read so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weekly {
    /// The days it opens on.
    pub days: Vec<Weekday>,
    /// Local time it opens.
    pub start: NaiveTime,
    /// Local time it closes.
    pub end: NaiveTime,
}

impl Weekly {
    /// The window opening on `day`, as instants.
    fn window(&self, tz: Tz, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let closes_on = if self.end <= self.start {
            day.succ_opt().expect("in range")
        } else {
            day
        };
        (
            instant(tz, day.and_time(self.start)),
            instant(tz, closes_on.and_time(self.end)),
        )
    }

    /// Whether the window is open at `at`.
    pub fn is_open(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        let today = local(tz, at).date();
        // A window that opened yesterday may still be open.
        [today.pred_opt().expect("in range"), today]
            .into_iter()
            .filter(|day| self.days.contains(&day.weekday()))
            .any(|day| {
                let (start, end) = self.window(tz, day);
                start <= at && at < end
            })
    }

    /// Where the window opens or closes within `(from, to)`, in order.
    pub fn edges(&self, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut edges = Vec::new();
        let mut day = local(tz, from).date().pred_opt().expect("in range");
        let last = local(tz, to).date();
        while day <= last {
            if self.days.contains(&day.weekday()) {
                let (start, end) = self.window(tz, day);
                edges.extend([start, end].into_iter().filter(|t| from < *t && *t < to));
            }
            day = day.succ_opt().expect("in range");
        }
        edges.sort();
        edges
    }

    /// The first instant after `at` where the window opens or closes (within a fortnight;
    /// a window with days always has one).
    pub fn next_edge(&self, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.edges(tz, at, at + chrono::Duration::days(15))
            .into_iter()
            .next()
    }
}

/// A weekly window of a schedule, and who is on call while it is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Who is on call while it is open.
    pub target: Target,
    /// When it is open.
    pub when: Weekly,
}

impl Rule {
    /// Whether the rule is open at `at`.
    pub fn is_open(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        self.when.is_open(tz, at)
    }

    /// Where the rule opens or closes within `(from, to)`.
    fn edges(&self, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.when.edges(tz, from, to)
    }
}

/// A change on top of a schedule's rules over `[start, end)`: `add` alone puts an operator on
/// call, `remove` alone takes one off, both replace `remove` by `add` while `remove` is on
/// call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Who comes on call.
    pub add: Option<String>,
    /// Who goes off call.
    pub remove: Option<String>,
    /// From (inclusive).
    pub start: DateTime<Utc>,
    /// To (exclusive).
    pub end: DateTime<Utc>,
}

impl Override {
    /// Whether it involves `operator`.
    pub fn involves(&self, operator: &str) -> bool {
        self.add.as_deref() == Some(operator) || self.remove.as_deref() == Some(operator)
    }

    /// Whether its range meets `other`'s.
    pub fn overlaps(&self, other: &Override) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Rules in their time zone, and overrides on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Whose wall clock the rules read.
    pub time_zone: Tz,
    /// In order: the order of who is on call.
    pub rules: Vec<Rule>,
    /// Applied after the rules, in order of their start.
    pub overrides: Vec<Override>,
}

/// Rotations by id, as schedules name them.
pub type Rotations = HashMap<String, Rotation>;

impl Schedule {
    /// Everyone on call at `at`, in rule order, each once; then the overrides. A rule
    /// naming a rotation that is not in `rotations` puts nobody on call.
    pub fn on_call<'a>(&'a self, rotations: &'a Rotations, at: DateTime<Utc>) -> Vec<&'a str> {
        let mut on_call: Vec<&str> = Vec::new();
        for rule in &self.rules {
            if !rule.is_open(self.time_zone, at) {
                continue;
            }
            let who = match &rule.target {
                Target::Operator(id) => Some(id.as_str()),
                Target::Rotation(id) => rotations.get(id).and_then(|r| r.holder(at)),
            };
            if let Some(who) = who
                && !on_call.contains(&who)
            {
                on_call.push(who);
            }
        }
        let mut overrides: Vec<&Override> = self
            .overrides
            .iter()
            .filter(|o| o.start <= at && at < o.end)
            .collect();
        overrides.sort_by_key(|o| o.start);
        for o in overrides {
            match (o.add.as_deref(), o.remove.as_deref()) {
                (Some(add), None) => {
                    if !on_call.contains(&add) {
                        on_call.push(add);
                    }
                }
                (None, Some(remove)) => on_call.retain(|id| *id != remove),
                (Some(add), Some(remove)) => {
                    if let Some(i) = on_call.iter().position(|id| *id == remove) {
                        if on_call.contains(&add) {
                            on_call.remove(i);
                        } else {
                            on_call[i] = add;
                        }
                    }
                }
                (None, None) => {}
            }
        }
        on_call
    }

    /// Each operator's time on call within `[from, to)`, cut to the range: one shift per
    /// unbroken stretch, ordered by start (then by the on-call order).
    pub fn shifts<'a>(
        &'a self,
        rotations: &'a Rotations,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<Shift<'a>> {
        if from >= to {
            return Vec::new();
        }
        let mut edges = vec![from, to];
        for rule in &self.rules {
            edges.extend(rule.edges(self.time_zone, from, to));
            if let Target::Rotation(id) = &rule.target
                && let Some(rotation) = rotations.get(id)
            {
                edges.extend(rotation.handoffs(from, to));
            }
        }
        for o in &self.overrides {
            edges.extend(
                [o.start, o.end]
                    .into_iter()
                    .filter(|t| from < *t && *t < to),
            );
        }
        edges.sort();
        edges.dedup();
        // Shifts numbered as they open, so that those opening together keep on-call order.
        let mut done: Vec<(usize, Shift<'a>)> = Vec::new();
        let mut open: Vec<(usize, Shift<'a>)> = Vec::new();
        let mut opened = 0;
        for pair in edges.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            let now = self.on_call(rotations, start);
            let (still, ended): (Vec<_>, Vec<_>) = open
                .into_iter()
                .partition(|(_, s)| now.contains(&s.operator));
            done.extend(ended);
            open = still;
            for operator in now {
                match open.iter_mut().find(|(_, s)| s.operator == operator) {
                    Some((_, shift)) => shift.end = end,
                    None => {
                        open.push((
                            opened,
                            Shift {
                                operator,
                                start,
                                end,
                            },
                        ));
                        opened += 1;
                    }
                }
            }
        }
        done.extend(open);
        done.sort_by_key(|(n, s)| (s.start, *n));
        done.into_iter().map(|(_, s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Australia::Lord_Howe;
    use chrono_tz::Europe::London;
    use proptest::prelude::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("an RFC 3339 instant")
            .with_timezone(&Utc)
    }

    fn naive(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").expect("a local date-time")
    }

    fn time(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").expect("HH:MM")
    }

    fn rotation(tz: Tz, unit: ShiftUnit, length: u32, handoff_at: &str, n: usize) -> Rotation {
        Rotation {
            time_zone: tz,
            unit,
            shift_length: length,
            handoff_at: naive(handoff_at),
            participants: (0..n).map(|i| format!("op{i}")).collect(),
        }
    }

    #[test]
    fn local_times_name_one_instant_across_every_dst_change() {
        // (zone, local time, the instant it names)
        let table = [
            // Ordinary times.
            (New_York, "2026-03-07T02:30", "2026-03-07T07:30:00Z"),
            // Spring forward: 02:00–03:00 does not exist; the first instant after the gap.
            (New_York, "2026-03-08T02:30", "2026-03-08T07:00:00Z"),
            (New_York, "2026-03-08T03:00", "2026-03-08T07:00:00Z"),
            // Fall back: 01:00–02:00 happens twice; the first occurrence (EDT).
            (New_York, "2026-11-01T01:30", "2026-11-01T05:30:00Z"),
            (New_York, "2026-11-01T02:00", "2026-11-01T07:00:00Z"),
            (London, "2026-03-29T01:30", "2026-03-29T01:00:00Z"),
            (London, "2026-10-25T01:30", "2026-10-25T00:30:00Z"),
            // Lord Howe moves by 30 minutes: 02:00–02:30 is skipped in October, and
            // 01:30–02:00 happens twice in April.
            (Lord_Howe, "2026-10-04T02:15", "2026-10-03T15:30:00Z"),
            (Lord_Howe, "2026-10-04T02:30", "2026-10-03T15:30:00Z"),
            (Lord_Howe, "2026-04-05T01:45", "2026-04-04T14:45:00Z"),
            (Lord_Howe, "2026-04-05T02:00", "2026-04-04T15:30:00Z"),
        ];
        for (tz, local, expected) in table {
            assert_eq!(instant(tz, naive(local)), utc(expected), "{tz} {local}");
        }
    }

    #[test]
    fn a_daily_handoff_keeps_its_local_time_through_dst() {
        // 09:00 every day, New York: the instants move by an hour, the wall clock does not.
        let r = rotation(New_York, ShiftUnit::Daily, 1, "2026-03-01T09:00", 3);
        let table = [
            ("2026-03-07T13:59:59Z", "op2"), // Mar 7 08:59 EST: shift 5 (Mar 6 09:00)
            ("2026-03-07T14:00:00Z", "op0"), // Mar 7 09:00 EST: shift 6
            ("2026-03-08T13:00:00Z", "op1"), // Mar 8 09:00 EDT: shift 7
            ("2026-03-08T12:59:59Z", "op0"),
            ("2026-11-01T13:59:59Z", "op1"), // Nov 1 08:59 EST: still shift 244
            ("2026-11-01T14:00:00Z", "op2"), // Nov 1 09:00 EST: shift 245
            ("2026-02-28T14:00:00Z", "op2"), // before the anchor: shift -1
        ];
        for (at, holder) in table {
            assert_eq!(r.holder(utc(at)), Some(holder), "at {at}");
        }
    }

    #[test]
    fn a_handoff_inside_the_spring_forward_gap_happens_when_the_gap_ends() {
        // 02:30 daily; on 2026-03-08 New York jumps from 02:00 to 03:00.
        let r = rotation(New_York, ShiftUnit::Daily, 1, "2026-03-01T02:30", 2);
        assert_eq!(r.handoff(7), utc("2026-03-08T07:00:00Z")); // 03:00 EDT
        assert_eq!(r.holder(utc("2026-03-08T06:59:59Z")), Some("op0")); // 01:59 EST
        assert_eq!(r.holder(utc("2026-03-08T07:00:00Z")), Some("op1")); // 03:00 EDT
        // The day after, 02:30 exists again.
        assert_eq!(r.handoff(8), utc("2026-03-09T06:30:00Z"));
        // London, 01:30 on 2026-03-29 (01:00 jumps to 02:00).
        let r = rotation(London, ShiftUnit::Daily, 1, "2026-03-28T01:30", 2);
        assert_eq!(r.handoff(1), utc("2026-03-29T01:00:00Z"));
        // Lord Howe, 02:15 on 2026-10-04 (02:00 jumps to 02:30).
        let r = rotation(Lord_Howe, ShiftUnit::Daily, 1, "2026-10-03T02:15", 2);
        assert_eq!(r.handoff(1), utc("2026-10-03T15:30:00Z"));
    }

    #[test]
    fn an_ambiguous_handoff_takes_the_first_occurrence() {
        let r = rotation(New_York, ShiftUnit::Daily, 1, "2026-10-31T01:30", 2);
        assert_eq!(r.handoff(1), utc("2026-11-01T05:30:00Z")); // 01:30 EDT
        assert_eq!(r.holder(utc("2026-11-01T06:30:00Z")), Some("op1")); // 01:30 EST
        let r = rotation(London, ShiftUnit::Daily, 1, "2026-10-24T01:30", 2);
        assert_eq!(r.handoff(1), utc("2026-10-25T00:30:00Z")); // 01:30 BST
        let r = rotation(Lord_Howe, ShiftUnit::Daily, 1, "2026-04-04T01:45", 2);
        assert_eq!(r.handoff(1), utc("2026-04-04T14:45:00Z")); // 01:45 +11
    }

    #[test]
    fn an_hourly_rotation_stays_on_the_local_hour_across_a_fall_back() {
        // New York, 2026-11-01: 01:00 EDT, 01:00 EST, 02:00 EST. Counted on the wall clock,
        // the shift starting at 01:00 lasts until 02:00 on the clock: two real hours.
        let r = rotation(New_York, ShiftUnit::Hourly, 1, "2026-11-01T00:00", 4);
        assert_eq!(r.handoff(1), utc("2026-11-01T05:00:00Z")); // 01:00 EDT
        assert_eq!(r.handoff(2), utc("2026-11-01T07:00:00Z")); // 02:00 EST
        assert_eq!(r.holder(utc("2026-11-01T05:30:00Z")), Some("op1"));
        assert_eq!(r.holder(utc("2026-11-01T06:30:00Z")), Some("op1")); // 01:30 EST
        assert_eq!(r.holder(utc("2026-11-01T07:00:00Z")), Some("op2"));
        let shifts = r.shifts(utc("2026-11-01T04:00:00Z"), utc("2026-11-01T08:00:00Z"));
        let spans: Vec<_> = shifts
            .iter()
            .map(|s| (s.operator, (s.end - s.start).num_minutes()))
            .collect();
        assert_eq!(spans, [("op0", 60), ("op1", 120), ("op2", 60)]);
        // Lord Howe falls back by 30 minutes: hourly shifts keep to the local hour, the
        // one across the change lasts 90 minutes.
        let r = rotation(Lord_Howe, ShiftUnit::Hourly, 1, "2026-04-05T00:00", 3);
        let shifts = r.shifts(r.handoff(0), r.handoff(3));
        let spans: Vec<_> = shifts
            .iter()
            .map(|s| (s.operator, (s.end - s.start).num_minutes()))
            .collect();
        assert_eq!(spans, [("op0", 60), ("op1", 90), ("op2", 60)]);
    }

    #[test]
    fn an_hourly_shift_the_spring_forward_skips_is_nobody_s() {
        // New York, 2026-03-08: 02:00–03:00 does not exist, so the shift that would start
        // at 02:00 is empty and its participant is passed over.
        let r = rotation(New_York, ShiftUnit::Hourly, 1, "2026-03-08T00:00", 5);
        let shifts = r.shifts(r.handoff(0), r.handoff(5));
        let who: Vec<_> = shifts.iter().map(|s| s.operator).collect();
        assert_eq!(who, ["op0", "op1", "op3", "op4"]);
        assert_eq!(r.holder(utc("2026-03-08T07:00:00Z")), Some("op3")); // 03:00 EDT
    }

    #[test]
    fn a_weekly_rotation_hands_over_on_its_local_weekday() {
        // Mondays 09:00 London, two-week shifts.
        let r = rotation(London, ShiftUnit::Weekly, 2, "2026-03-16T09:00", 2);
        assert_eq!(r.handoff(1), utc("2026-03-30T08:00:00Z")); // BST from Mar 29
        assert_eq!(r.holder(utc("2026-03-30T07:59:00Z")), Some("op0"));
        assert_eq!(r.holder(utc("2026-03-30T08:00:00Z")), Some("op1"));
        assert_eq!(r.holder(utc("2026-04-13T08:00:00Z")), Some("op0"));
    }

    #[test]
    fn handing_over_re_anchors_the_rotation_now() {
        let r = rotation(New_York, ShiftUnit::Daily, 1, "2026-03-01T09:00", 3);
        let at = utc("2026-03-10T17:23:45Z"); // 13:23 EDT, op0 holds it
        let handed = r.handed_to("op2", at).expect("a participant");
        assert_eq!(handed.holder(at), Some("op2"));
        assert_eq!(handed.participants, ["op2", "op0", "op1"]);
        assert_eq!(handed.handoff_at, naive("2026-03-10T13:23"));
        assert_eq!(handed.holder(utc("2026-03-11T17:23:00Z")), Some("op0"));
        let hourly = rotation(New_York, ShiftUnit::Hourly, 1, "2026-03-01T09:00", 3);
        let handed = hourly.handed_to("op1", at).expect("a participant");
        assert_eq!(handed.handoff_at, naive("2026-03-10T13:00"));
        assert_eq!(r.handed_to("nobody", at), None);
    }

    fn rule(target: Target, days: &[Weekday], start: &str, end: &str) -> Rule {
        Rule {
            target,
            when: Weekly {
                days: days.to_vec(),
                start: time(start),
                end: time(end),
            },
        }
    }

    fn op(id: &str) -> Target {
        Target::Operator(id.to_owned())
    }

    const WEEKDAYS: [Weekday; 5] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    const EVERY_DAY: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    #[test]
    fn schedule_rules_open_by_weekday_and_cross_midnight_on_the_day_they_start() {
        let schedule = Schedule {
            time_zone: London,
            rules: vec![
                rule(op("day"), &WEEKDAYS, "09:00", "17:00"),
                rule(op("night"), &WEEKDAYS, "22:00", "06:00"),
                rule(
                    op("weekend"),
                    &[Weekday::Sat, Weekday::Sun],
                    "00:00",
                    "00:00",
                ),
                rule(op("day"), &[Weekday::Mon], "00:00", "00:00"),
            ],
            overrides: vec![],
        };
        let none = Rotations::new();
        // (instant, who): 2026-06-05 is a Friday, in BST (UTC+1).
        let table: [(&str, &[&str]); 8] = [
            ("2026-06-05T08:00:00Z", &["day"]),              // Fri 09:00
            ("2026-06-05T15:59:59Z", &["day"]),              // Fri 16:59:59
            ("2026-06-05T16:00:00Z", &[]),                   // Fri 17:00
            ("2026-06-05T21:00:00Z", &["night"]),            // Fri 22:00
            ("2026-06-06T04:59:00Z", &["night", "weekend"]), // Sat 05:59: Friday's night
            ("2026-06-06T05:00:00Z", &["weekend"]),          // Sat 06:00
            ("2026-06-07T22:59:59Z", &["weekend"]),          // Sun 23:59:59
            ("2026-06-07T23:00:00Z", &["day"]), // Mon 00:00: all day Monday, in rule order
        ];
        for (at, who) in table {
            assert_eq!(schedule.on_call(&none, utc(at)), who, "at {at}");
        }
        // Monday 22:00: the night rule, then Monday's all-day rule, in rule order.
        assert_eq!(
            schedule.on_call(&none, utc("2026-06-08T21:00:00Z")),
            ["night", "day"]
        );
    }

    #[test]
    fn a_rule_across_a_dst_change_follows_the_wall_clock() {
        // 22:00–06:00 every night, New York: the night of Mar 7 is an hour shorter.
        let schedule = Schedule {
            time_zone: New_York,
            rules: vec![rule(op("night"), &EVERY_DAY, "22:00", "06:00")],
            overrides: vec![],
        };
        let none = Rotations::new();
        let shifts = schedule.shifts(
            &none,
            utc("2026-03-07T12:00:00Z"),
            utc("2026-03-09T12:00:00Z"),
        );
        let spans: Vec<_> = shifts
            .iter()
            .map(|s| (s.start, (s.end - s.start).num_hours()))
            .collect();
        assert_eq!(
            spans,
            [
                (utc("2026-03-08T03:00:00Z"), 7), // Mar 7 22:00 EST – Mar 8 06:00 EDT
                (utc("2026-03-09T02:00:00Z"), 8),
            ]
        );
    }

    fn with_override(add: Option<&str>, remove: Option<&str>, start: &str, end: &str) -> Override {
        Override {
            add: add.map(str::to_owned),
            remove: remove.map(str::to_owned),
            start: utc(start),
            end: utc(end),
        }
    }

    #[test]
    fn overrides_add_remove_and_replace_on_top_of_the_rules() {
        let mut schedule = Schedule {
            time_zone: chrono_tz::UTC,
            rules: vec![
                rule(op("ann"), &EVERY_DAY, "00:00", "00:00"),
                rule(op("bob"), &EVERY_DAY, "00:00", "00:00"),
            ],
            overrides: vec![
                with_override(
                    Some("cy"),
                    None,
                    "2026-06-01T10:00:00Z",
                    "2026-06-01T12:00:00Z",
                ),
                with_override(
                    None,
                    Some("ann"),
                    "2026-06-01T11:00:00Z",
                    "2026-06-01T13:00:00Z",
                ),
                with_override(
                    Some("dee"),
                    Some("bob"),
                    "2026-06-01T14:00:00Z",
                    "2026-06-01T15:00:00Z",
                ),
                // Replacing someone who is not on call changes nothing.
                with_override(
                    Some("eve"),
                    Some("zed"),
                    "2026-06-01T14:00:00Z",
                    "2026-06-01T15:00:00Z",
                ),
            ],
        };
        let none = Rotations::new();
        let table: [(&str, &[&str]); 6] = [
            ("2026-06-01T09:00:00Z", &["ann", "bob"]),
            ("2026-06-01T10:00:00Z", &["ann", "bob", "cy"]),
            ("2026-06-01T11:30:00Z", &["bob", "cy"]),
            ("2026-06-01T12:30:00Z", &["bob"]),
            ("2026-06-01T14:00:00Z", &["ann", "dee"]),
            ("2026-06-01T15:00:00Z", &["ann", "bob"]),
        ];
        for (at, who) in table {
            assert_eq!(schedule.on_call(&none, utc(at)), who, "at {at}");
        }
        // Replacing someone by an operator already on call leaves one of them.
        schedule.overrides = vec![with_override(
            Some("ann"),
            Some("bob"),
            "2026-06-01T00:00:00Z",
            "2026-06-02T00:00:00Z",
        )];
        assert_eq!(
            schedule.on_call(&none, utc("2026-06-01T09:00:00Z")),
            ["ann"]
        );
        let a = with_override(
            Some("x"),
            None,
            "2026-06-01T00:00:00Z",
            "2026-06-01T02:00:00Z",
        );
        let b = with_override(
            None,
            Some("x"),
            "2026-06-01T02:00:00Z",
            "2026-06-01T03:00:00Z",
        );
        assert!(!a.overlaps(&b), "ranges are half-open");
        assert!(a.involves("x") && !a.involves("y"));
    }

    #[test]
    fn a_schedule_names_whoever_holds_its_rotations() {
        let mut rotations = Rotations::new();
        rotations.insert(
            "primary".into(),
            rotation(New_York, ShiftUnit::Weekly, 1, "2026-03-02T09:00", 3),
        );
        let schedule = Schedule {
            time_zone: New_York,
            rules: vec![
                rule(
                    Target::Rotation("primary".into()),
                    &EVERY_DAY,
                    "00:00",
                    "00:00",
                ),
                rule(
                    Target::Rotation("gone".into()),
                    &EVERY_DAY,
                    "00:00",
                    "00:00",
                ),
                rule(op("manager"), &WEEKDAYS, "09:00", "17:00"),
            ],
            overrides: vec![],
        };
        assert_eq!(
            schedule.on_call(&rotations, utc("2026-03-09T12:59:00Z")), // Mon 08:59 EDT
            ["op0"]
        );
        assert_eq!(
            schedule.on_call(&rotations, utc("2026-03-09T13:00:00Z")), // Mon 09:00 EDT
            ["op1", "manager"]
        );
        let shifts = schedule.shifts(
            &rotations,
            utc("2026-03-09T12:00:00Z"),
            utc("2026-03-09T22:00:00Z"),
        );
        let who: Vec<_> = shifts
            .iter()
            .map(|s| (s.operator, s.start, s.end))
            .collect();
        assert_eq!(
            who,
            [
                (
                    "op0",
                    utc("2026-03-09T12:00:00Z"),
                    utc("2026-03-09T13:00:00Z")
                ),
                (
                    "op1",
                    utc("2026-03-09T13:00:00Z"),
                    utc("2026-03-09T22:00:00Z")
                ),
                (
                    "manager",
                    utc("2026-03-09T13:00:00Z"),
                    utc("2026-03-09T21:00:00Z")
                ),
            ]
        );
    }

    fn zones() -> impl Strategy<Value = Tz> {
        prop::sample::select(vec![
            New_York,
            London,
            Lord_Howe,
            chrono_tz::UTC,
            chrono_tz::Asia::Kolkata,
            chrono_tz::America::Santiago,
        ])
    }

    fn units() -> impl Strategy<Value = ShiftUnit> {
        prop::sample::select(vec![ShiftUnit::Hourly, ShiftUnit::Daily, ShiftUnit::Weekly])
    }

    proptest! {
        #[test]
        fn rotation_shifts_tile_the_range_and_agree_with_the_holder(
            tz in zones(),
            unit in units(),
            length in 1u32..=30,
            anchor_minutes in 0i64..(3 * 365 * 24 * 60),
            n in 1usize..=7,
            from_minutes in 0i64..(3 * 365 * 24 * 60),
            span_minutes in 1i64..(40 * 24 * 60),
        ) {
            let base = naive("2025-01-01T00:00");
            let r = Rotation {
                time_zone: tz,
                unit,
                shift_length: length,
                handoff_at: base + Duration::minutes(anchor_minutes),
                participants: (0..n).map(|i| format!("op{i}")).collect(),
            };
            let from = base.and_utc() + Duration::minutes(from_minutes);
            let to = from + Duration::minutes(span_minutes);
            let shifts = r.shifts(from, to);
            prop_assert!(!shifts.is_empty());
            prop_assert_eq!(shifts[0].start, from);
            prop_assert_eq!(shifts.last().map(|s| s.end), Some(to));
            for pair in shifts.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start, "no gap, no overlap");
            }
            for s in &shifts {
                prop_assert!(s.start < s.end);
                prop_assert_eq!(r.holder(s.start), Some(s.operator));
                prop_assert_eq!(r.holder(s.end - Duration::seconds(1)), Some(s.operator));
            }
        }
    }
}

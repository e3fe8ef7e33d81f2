//! Silences: matchers over an incident's labels, active over a range of instants. Pure:
//! what a silence matches and when it is active, nothing of what silencing does.
//!
//! A matcher is Alertmanager's: `=`, `!=`, `=~`, `!~` on one label, a missing label reads as
//! "", and a regex (RE2 syntax, through the `regex` crate) must match the whole value. A
//! silence needs at least one matcher that does not match the empty string, so that no
//! silence can match every incident by accident.

use chrono::{DateTime, Utc};
use regex::Regex;
use std::collections::BTreeMap;

/// An incident's labels: `alertId`, `alertTemplateId`, `ownerId`, `subject`, `severity`,
/// and for cloud alarms `integrationId`, `source`, `name`, `resource` and what the
/// platform sent.
pub type Labels = BTreeMap<String, String>;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`: equal.
    Equal,
    /// `!=`: not equal.
    NotEqual,
    /// `=~`: the whole value matches the regex.
    Matches,
    /// `!~`: the whole value does not match the regex.
    NotMatches,
}

impl Op {
    /// Reads the operator as written.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "=" => Self::Equal,
            "!=" => Self::NotEqual,
            "=~" => Self::Matches,
            "!~" => Self::NotMatches,
            _ => return None,
        })
    }

    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Matches => "=~",
            Self::NotMatches => "!~",
        }
    }
}

/// Longest regex source accepted, in bytes: matchers are typed by people.
const REGEX_LIMIT: usize = 1_024;
/// Most memory a compiled regex may take (the `regex` crate's own size limit).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One condition on one label.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label.
    pub name: String,
    /// How it compares.
    pub op: Op,
    /// What it compares with: a value, or a regex's source.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Matcher {
    /// A matcher, or what is wrong with it.
    pub fn parse(name: &str, op: &str, value: &str) -> Result<Self, String> {
        if name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        let op = Op::parse(op)
            .ok_or_else(|| format!("op {op:?} is not one of \"=\", \"!=\", \"=~\", \"!~\""))?;
        let regex = match op {
            Op::Equal | Op::NotEqual => None,
            Op::Matches | Op::NotMatches => {
                if value.len() > REGEX_LIMIT {
                    return Err(format!("value is a regex longer than {REGEX_LIMIT} bytes"));
                }
                let anchored = format!("^(?:{value})$");
                let regex = regex::RegexBuilder::new(&anchored)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        let why = e.to_string();
                        let last = why.lines().last().unwrap_or_default().trim().to_owned();
                        format!("value {value:?} is not a regex (RE2 syntax): {last}")
                    })?;
                Some(regex)
            }
        };
        Ok(Self {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// Whether `value` (a label's, or "" for a missing one) satisfies it.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (Op::Equal, _) => value == self.value,
            (Op::NotEqual, _) => value != self.value,
            (Op::Matches, Some(regex)) => regex.is_match(value),
            (Op::NotMatches, Some(regex)) => !regex.is_match(value),
            (Op::Matches | Op::NotMatches, None) => unreachable!("parsed with its regex"),
        }
    }

    /// Whether the labels satisfy it.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }
}

/// Checks a silence's matchers as a whole: at least one, and at least one that does not
/// match the empty string (a silence whose every matcher matches "" would match any
/// incident lacking those labels, which is nearly every incident).
pub fn check(matchers: &[Matcher]) -> Result<(), String> {
    if matchers.is_empty() {
        return Err("matchers must list at least one matcher".into());
    }
    if matchers.iter().all(|m| m.matches_value("")) {
        return Err(
            "at least one matcher must not match the empty string (as written, the silence would match every incident without those labels)"
                .into(),
        );
    }
    Ok(())
}

/// Where a silence stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// It starts later.
    Pending,
    /// It silences now.
    Active,
    /// It has ended.
    Expired,
}

/// Matchers over `[starts_at, ends_at)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// All must hold.
    pub matchers: Vec<Matcher>,
    /// From (inclusive).
    pub starts_at: DateTime<Utc>,
    /// To (exclusive).
    pub ends_at: DateTime<Utc>,
}

impl Silence {
    /// Where it stands at `at`.
    pub fn state(&self, at: DateTime<Utc>) -> State {
        if at < self.starts_at {
            State::Pending
        } else if at < self.ends_at {
            State::Active
        } else {
            State::Expired
        }
    }

    /// Whether it matches an incident with these labels (whatever the time).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Whether it silences an incident with these labels at `at`.
    pub fn silences(&self, labels: &Labels, at: DateTime<Utc>) -> bool {
        self.state(at) == State::Active && self.matches(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn each_operator_matches_as_alertmanager_does() {
        let incident = labels(&[
            ("severity", "critical"),
            ("resource", "db-12"),
            ("name", "DiskFull"),
        ]);
        // (name, op, value, matches)
        let table = [
            ("severity", "=", "critical", true),
            ("severity", "=", "Critical", false),
            ("severity", "!=", "warning", true),
            ("severity", "!=", "critical", false),
            ("resource", "=~", "db-[0-9]+", true),
            // Anchored: a part of the value is not the value.
            ("resource", "=~", "db", false),
            ("resource", "=~", "b-1", false),
            ("resource", "=~", "db-1|db-12", true),
            ("resource", "!~", "web-.*", true),
            ("resource", "!~", "db-.*", false),
            // A missing label reads as "".
            ("region", "=", "", true),
            ("region", "!=", "", false),
            ("region", "=~", ".*", true),
            ("region", "=~", ".+", false),
            ("region", "!~", "eu-.*", true),
            ("name", "=~", "(?i)diskfull", true),
        ];
        for (name, op, value, expected) in table {
            let matcher = Matcher::parse(name, op, value).unwrap();
            assert_eq!(
                matcher.matches(&incident),
                expected,
                "{name} {op} {value:?}"
            );
        }
    }

    #[test]
    fn bad_matchers_are_refused_with_the_reason() {
        let table = [
            ("", "=", "x", "name must not be empty"),
            ("severity", "==", "x", "op \"==\" is not one of"),
            (
                "severity",
                "=~",
                "db-(",
                "value \"db-(\" is not a regex (RE2 syntax)",
            ),
            // RE2 has no look-around or back-references.
            ("severity", "=~", "(?=x)", "is not a regex"),
            ("severity", "=~", "(a)\\1", "is not a regex"),
        ];
        for (name, op, value, reason) in table {
            let error = Matcher::parse(name, op, value).unwrap_err();
            assert!(error.contains(reason), "{name} {op} {value}: {error}");
        }
        let long = "a".repeat(REGEX_LIMIT + 1);
        assert!(
            Matcher::parse("n", "=~", &long)
                .unwrap_err()
                .contains("longer than")
        );
    }

    #[test]
    fn a_silence_needs_a_matcher_that_does_not_match_the_empty_string() {
        let m = |name: &str, op: &str, value: &str| Matcher::parse(name, op, value).unwrap();
        let refused: [Vec<Matcher>; 4] = [
            vec![],
            vec![m("severity", "=", "")],
            vec![m("severity", "=~", ".*"), m("resource", "!=", "db-1")],
            vec![m("name", "!~", "x+")],
        ];
        for matchers in refused {
            assert!(check(&matchers).is_err(), "{matchers:?}");
        }
        let accepted: [Vec<Matcher>; 3] = [
            vec![m("severity", "=", "critical")],
            vec![m("severity", "=~", ".*"), m("resource", "=~", "db-.+")],
            vec![m("severity", "!=", "")],
        ];
        for matchers in accepted {
            assert_eq!(check(&matchers), Ok(()), "{matchers:?}");
        }
    }

    #[test]
    fn a_silence_is_active_over_its_half_open_range_and_needs_every_matcher() {
        let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let silence = Silence {
            matchers: vec![
                Matcher::parse("alertTemplateId", "=", "cloud_alarm").unwrap(),
                Matcher::parse("resource", "=~", "db-.*").unwrap(),
            ],
            starts_at: t(0),
            ends_at: t(3600),
        };
        assert_eq!(silence.state(t(-1)), State::Pending);
        assert_eq!(silence.state(t(0)), State::Active);
        assert_eq!(silence.state(t(3599)), State::Active);
        assert_eq!(silence.state(t(3600)), State::Expired);
        let db = labels(&[("alertTemplateId", "cloud_alarm"), ("resource", "db-1")]);
        let web = labels(&[("alertTemplateId", "cloud_alarm"), ("resource", "web-1")]);
        assert!(silence.silences(&db, t(10)));
        assert!(!silence.silences(&web, t(10)), "every matcher must hold");
        assert!(!silence.silences(&db, t(3600)));
        assert!(silence.matches(&db));
    }
}

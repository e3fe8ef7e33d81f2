//! Instants and calendar windows, computed from the time the host hands the template.
//!
//! Calendar periods start at local midnight in the account's time zone; weeks start on
//! Monday. Windows are half-open, `[start, end)`.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An instant in UTC.
pub type Timestamp = DateTime<Utc>;

/// The instant the interface counts from, 1970-01-01T00:00:00Z.
pub fn epoch() -> Timestamp {
    DateTime::UNIX_EPOCH
}

/// Microseconds since the epoch, the interface's `timestamp`.
pub fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// The instant `micros` microseconds after the epoch. Out-of-range values clamp.
pub fn from_micros(micros: i64) -> Timestamp {
    DateTime::from_timestamp_micros(micros).unwrap_or(if micros < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// Reads an RFC 3339 timestamp, or a `YYYY-MM-DD` date as midnight UTC.
///
/// ```
/// # use tocsin_sdk::time::parse_instant;
/// assert_eq!(parse_instant("2026-01-31"), parse_instant("2026-01-31T00:00:00Z"));
/// assert_eq!(parse_instant("2026-01-31T02:00:00+02:00"), parse_instant("2026-01-31T00:00:00Z"));
/// assert_eq!(parse_instant("yesterday"), None);
/// ```
pub fn parse_instant(text: &str) -> Option<Timestamp> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// Reads an IANA time zone name such as `Asia/Kolkata`.
pub fn parse_time_zone(name: &str) -> Option<Tz> {
    name.parse().ok()
}

/// A calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Period {
    /// From local midnight to the next.
    Day,
    /// From Monday's local midnight to the next Monday's.
    Week,
    /// From the first of the month at local midnight to the first of the next month.
    Month,
}

/// The period of kind `period` that contains `now`, in time zone `tz`, as `[start, end)`.
///
/// ```
/// # use tocsin_sdk::time::{calendar_window, Period};
/// let now = "2026-03-04T10:00:00Z".parse().unwrap(); // a Wednesday
/// let (start, end) = calendar_window(now, Period::Week, chrono_tz::UTC);
/// assert_eq!(start.to_rfc3339(), "2026-03-02T00:00:00+00:00");
/// assert_eq!(end.to_rfc3339(), "2026-03-09T00:00:00+00:00");
/// ```
pub fn calendar_window(now: Timestamp, period: Period, tz: Tz) -> (Timestamp, Timestamp) {
    let today = now.with_timezone(&tz).date_naive();
    let (first, next) = match period {
        Period::Day => (today, today + Days::new(1)),
        Period::Week => {
            let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
            (monday, monday + Days::new(7))
        }
        Period::Month => {
            let first = today.with_day(1).unwrap_or(today);
            (first, first + Months::new(1))
        }
    };
    (local_midnight(first, tz), local_midnight(next, tz))
}

/// The first instant of `date` in `tz`. Where a zone skips midnight (a daylight-saving jump
/// at 00:00), the day starts at the first local time that exists.
pub fn local_midnight(date: NaiveDate, tz: Tz) -> Timestamp {
    let mut local: NaiveDateTime = date.and_time(chrono::NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
        local += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
}

/// Reads an instant in an account's time zone: an RFC 3339 timestamp as given, or a
/// `YYYY-MM-DD` date as local midnight in `tz`.
pub fn parse_local_instant(text: &str, tz: Tz) -> Option<Timestamp> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| local_midnight(d, tz))
}

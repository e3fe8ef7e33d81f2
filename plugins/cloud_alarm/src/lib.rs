//! `cloud_alarm`: an ALARM entity (normalized from a cloud platform's or monitor's
//! webhook) is FIRING. One finding per alarm, its entity id the subject; resolves when the
//! alarm does.

use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct CloudAlarm;

/// Alarm severities, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs attention.
    Warning,
    /// Something is broken.
    Error,
    /// Something important is down.
    Critical,
}

impl Severity {
    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "INFO" => Some(Self::Info),
            "WARNING" => Some(Self::Warning),
            "ERROR" => Some(Self::Error),
            "CRITICAL" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// Parameters: optional filters on which alarms the alert covers.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// Only alarms from this source (`aws-sns`, `alertmanager`…), compared case-insensitively.
    #[serde(default)]
    pub source: Option<String>,
    /// Only alarms whose name matches this pattern; `*` matches any run of characters and
    /// `?` one character.
    #[serde(default)]
    pub name_pattern: Option<String>,
    /// Only alarms at least this severe.
    #[serde(default)]
    pub minimum_severity: Option<Severity>,
}

/// Report data: the alarm as last received.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The platform that raised it.
    pub source: Option<String>,
    /// Alarm name.
    pub name: String,
    /// The resource concerned.
    pub resource: Option<String>,
    /// Severity as received.
    pub severity: Option<String>,
    /// FIRING or RESOLVED.
    pub state: String,
    /// The platform's description.
    pub summary: Option<String>,
    /// When the alarm started, as received.
    pub started_at: Option<String>,
}

/// Whether `text` matches `pattern`, where `*` is any run and `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `Ok(None)` when the alarm is outside the alert's filters.
fn judge(params: &Params, alarm: &Entity) -> Result<Option<Finding<Report>>, DataError> {
    let name = alarm.text("name")?;
    let source = alarm.optional_text("source")?;
    let severity = alarm.optional_text("severity")?;
    if let Some(wanted) = &params.source
        && !source.is_some_and(|s| s.eq_ignore_ascii_case(wanted))
    {
        return Ok(None);
    }
    if let Some(pattern) = &params.name_pattern
        && !glob(pattern, name)
    {
        return Ok(None);
    }
    if let Some(minimum) = params.minimum_severity {
        let level = severity.and_then(Severity::parse).ok_or_else(|| {
            DataError::new(format!(
                "{} severity {severity:?} is not one of INFO, WARNING, ERROR, CRITICAL",
                alarm.label()
            ))
        })?;
        if level < minimum {
            return Ok(None);
        }
    }
    let state = alarm.text("state")?;
    let verdict = match state {
        "FIRING" => Verdict::Breached,
        "RESOLVED" => Verdict::Clear,
        other => {
            return Err(DataError::new(format!(
                "{} state {other:?} is neither FIRING nor RESOLVED",
                alarm.label()
            )));
        }
    };
    let resource = alarm.optional_text("resource")?;
    let description = alarm.optional_text("summary")?;
    let summary = format!(
        "{} alarm {name}{} is {state}{}",
        severity.unwrap_or("Unrated"),
        resource.map(|r| format!(" on {r}")).unwrap_or_default(),
        description.map(|d| format!(": {d}")).unwrap_or_default(),
    );
    let report = Report {
        source: source.map(str::to_owned),
        name: name.to_owned(),
        resource: resource.map(str::to_owned),
        severity: severity.map(str::to_owned),
        state: state.to_owned(),
        summary: description.map(str::to_owned),
        started_at: alarm.optional_text("startedAt")?.map(str::to_owned),
    };
    Ok(Some(Finding::new(
        alarm.entity_id.as_str(),
        verdict,
        report,
        summary,
    )))
}

impl Template for CloudAlarm {
    type Params = Params;
    type Report = Report;

    const INFO: Info = Info {
        id: "cloud_alarm",
        version: env!("CARGO_PKG_VERSION"),
        name: "Cloud alarm",
        description: "An alarm from a cloud platform or monitor is FIRING; resolves when the alarm does.",
        entity_type: Some("ALARM"),
        owner_type: Some("INTEGRATION"),
        auto_resolvable: true,
        default_interval_minutes: 5,
    };

    fn plan(_params: &Params, ctx: &Context) -> Result<Vec<Query>, String> {
        Ok(vec![Query::for_alert("ALARM", "INTEGRATION", ctx)])
    }

    fn evaluate(params: &Params, ctx: &Context, answers: &Answers) -> Evaluation<Report> {
        let alarms = match answers.entities(0) {
            Ok(alarms) => alarms,
            Err(reason) => {
                let subject = ctx.owner_id.clone().unwrap_or_default();
                return Evaluation::one(Finding::no_data(subject, reason));
            }
        };
        Evaluation::Findings(
            alarms
                .iter()
                .filter_map(|alarm| match judge(params, alarm) {
                    Ok(finding) => finding,
                    Err(reason) => Some(Finding::no_data(alarm.entity_id.as_str(), reason)),
                })
                .collect(),
        )
    }
}

tocsin_sdk::export_template!(CloudAlarm);

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_stars_and_question_marks() {
        assert!(glob("api-*", "api-latency"));
        assert!(glob("*latency", "api-latency"));
        assert!(glob("a?i-*y", "api-latency"));
        assert!(!glob("api-*", "db-latency"));
        assert!(glob("*", ""));
        assert!(!glob("?", ""));
    }

    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::CloudAlarm>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}

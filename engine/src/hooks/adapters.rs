//! Each platform's alarm payload turned into [`Alarm`]s, or acknowledged when it raises
//! nothing (test notifications). Pure functions of the body, so they are tested over the
//! real payloads in `shared/fixtures/webhooks/`.

use serde_json::Value;
use std::collections::BTreeMap;

pub use tocsin_domain::IntegrationKind as Kind;

/// Where an alarm stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// Raised.
    Firing,
    /// Cleared.
    Resolved,
    /// The platform cannot tell: recorded, never raised.
    InsufficientData,
}

impl AlarmState {
    /// The ALARM entity's `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "FIRING",
            Self::Resolved => "RESOLVED",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// One alarm from a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    /// The platform's identity of the alarm, the same when it fires and when it resolves.
    pub key: String,
    /// Firing or resolved.
    pub state: AlarmState,
    /// The rule or check.
    pub name: String,
    /// What it is about.
    pub resource: Option<String>,
    /// INFO, WARNING, ERROR or CRITICAL when the platform's level maps to one; else its own.
    pub severity: Option<String>,
    /// One line on what happened.
    pub summary: Option<String>,
    /// When it started (RFC 3339).
    pub started_at: Option<String>,
    /// The platform's own labels (Alertmanager's and Grafana's), which silences match.
    pub labels: BTreeMap<String, String>,
}

/// What a delivery carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Alarms to store.
    Alarms(Vec<Alarm>),
    /// Nothing to raise (a test notification); the reason.
    Acknowledged(String),
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn required(value: &Value, pointer: &str) -> Result<String, String> {
    text(value, pointer).ok_or_else(|| format!("{pointer} is missing"))
}

fn severity(level: Option<String>) -> Option<String> {
    let level = level?;
    let normalized = match level.to_ascii_lowercase().as_str() {
        "critical" | "crit" | "sev0" | "page" | "fatal" => "CRITICAL",
        "error" | "err" | "high" | "sev1" => "ERROR",
        "warning" | "warn" | "medium" | "sev2" => "WARNING",
        "info" | "informational" | "low" | "sev3" | "sev4" | "none" => "INFO",
        _ => return Some(level),
    };
    Some(normalized.to_owned())
}

fn epoch_seconds(value: &Value, pointer: &str) -> Option<String> {
    let seconds = value.pointer(pointer)?.as_i64().filter(|s| *s > 0)?;
    chrono::DateTime::from_timestamp(seconds, 0).map(|t| t.to_rfc3339())
}

fn rfc3339(text: Option<String>) -> Option<String> {
    let text = text?;
    chrono::DateTime::parse_from_rfc3339(&text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339())
        .or_else(|| {
            // AWS writes "2019-10-02T17:04:40.989+0000".
            chrono::DateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f%z")
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339())
        })
}

/// Reads a delivery of `kind`.
pub fn parse(kind: Kind, body: &Value) -> Result<Delivery, String> {
    match kind {
        Kind::Alertmanager | Kind::Grafana => alertmanager(body),
        Kind::AwsEventbridge => eventbridge(body),
        Kind::GcpMonitoring => gcp(body),
        Kind::AzureMonitor => azure(body),
        Kind::UptimeKuma => uptime_kuma(body),
        Kind::Pingdom => pingdom(body),
        Kind::Generic => generic(body),
        Kind::AwsSns => Err("aws-sns deliveries are read by hooks::sns, signature first".into()),
    }
}

/// Alertmanager's webhook (version 4) and Grafana's, which extends it: each alert carries
/// its own status and fingerprint; the group's status is not the alerts'.
fn alertmanager(body: &Value) -> Result<Delivery, String> {
    let alerts = body
        .get("alerts")
        .and_then(Value::as_array)
        .ok_or("alerts is missing: not an Alertmanager or Grafana payload")?;
    let alarms = alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| {
            let at = |field: &str| format!("/alerts/{i}/{field}");
            let state = match required(body, &at("status"))?.as_str() {
                "firing" => AlarmState::Firing,
                "resolved" => AlarmState::Resolved,
                other => {
                    return Err(format!(
                        "alerts[{i}].status {other:?} is neither firing nor resolved"
                    ));
                }
            };
            let labels = alert.get("labels").cloned().unwrap_or_default();
            let label = |name: &str| text(&labels, &format!("/{name}"));
            Ok(Alarm {
                key: required(body, &at("fingerprint"))?,
                state,
                name: label("alertname")
                    .ok_or(format!("alerts[{i}].labels.alertname is missing"))?,
                resource: label("instance")
                    .or_else(|| label("host"))
                    .or_else(|| label("job")),
                severity: severity(label("severity")),
                summary: text(alert, "/annotations/summary")
                    .or_else(|| text(alert, "/annotations/description")),
                started_at: rfc3339(text(alert, "/startsAt")),
                labels: labels
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Delivery::Alarms(alarms))
}

fn eventbridge(body: &Value) -> Result<Delivery, String> {
    let detail_type = required(body, "/detail-type")?;
    if detail_type != "CloudWatch Alarm State Change" {
        return Err(format!(
            "detail-type {detail_type:?} is not \"CloudWatch Alarm State Change\""
        ));
    }
    let state = cloudwatch_state(
        &required(body, "/detail/state/value")?,
        "detail.state.value",
    )?;
    let metric = body.pointer("/detail/configuration/metrics/0/metricStat/metric");
    let resource = metric.map(|m| {
        let dimensions = m
            .get("dimensions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()));
        metric_resource(text(m, "/namespace"), text(m, "/name"), dimensions)
    });
    Ok(Delivery::Alarms(vec![Alarm {
        key: text(body, "/resources/0").map_or_else(|| required(body, "/detail/alarmName"), Ok)?,
        state,
        name: required(body, "/detail/alarmName")?,
        resource,
        severity: None,
        summary: text(body, "/detail/state/reason")
            .or_else(|| text(body, "/detail/configuration/description")),
        started_at: rfc3339(text(body, "/detail/state/timestamp"))
            .or_else(|| rfc3339(text(body, "/time"))),
        labels: BTreeMap::new(),
    }]))
}

/// `AWS/EC2 CPUUtilization AutoScalingGroupName=eks-…`: what a CloudWatch alarm watches.
fn metric_resource<'a>(
    namespace: Option<String>,
    metric: Option<String>,
    dimensions: impl Iterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut resource = [namespace, metric]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let dimensions: Vec<String> = dimensions.map(|(k, v)| format!("{k}={v}")).collect();
    if !dimensions.is_empty() {
        resource.push(' ');
        resource.push_str(&dimensions.join(","));
    }
    resource
}

fn cloudwatch_state(value: &str, field: &str) -> Result<AlarmState, String> {
    match value {
        "ALARM" => Ok(AlarmState::Firing),
        "OK" => Ok(AlarmState::Resolved),
        "INSUFFICIENT_DATA" => Ok(AlarmState::InsufficientData),
        other => Err(format!(
            "{field} {other:?} is not ALARM, OK or INSUFFICIENT_DATA"
        )),
    }
}

/// The CloudWatch alarm an SNS notification carries: its `Message` is a JSON document.
/// The alarm's ARN is its key, so OK resolves what ALARM raised.
pub fn cloudwatch_alarm(message: &str) -> Result<Delivery, String> {
    let alarm: Value = serde_json::from_str(message)
        .ok()
        .filter(|m: &Value| m.get("AlarmName").is_some())
        .ok_or("the SNS Message is not a CloudWatch alarm notification (no AlarmName)")?;
    let trigger = alarm.get("Trigger").cloned().unwrap_or_default();
    let dimensions = trigger
        .get("Dimensions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| Some((d.get("name")?.as_str()?, d.get("value")?.as_str()?)));
    let resource = metric_resource(
        text(&trigger, "/Namespace"),
        text(&trigger, "/MetricName"),
        dimensions,
    );
    Ok(Delivery::Alarms(vec![Alarm {
        key: text(&alarm, "/AlarmArn").map_or_else(|| required(&alarm, "/AlarmName"), Ok)?,
        state: cloudwatch_state(&required(&alarm, "/NewStateValue")?, "NewStateValue")?,
        name: required(&alarm, "/AlarmName")?,
        resource: Some(resource).filter(|r| !r.is_empty()),
        severity: None,
        summary: text(&alarm, "/NewStateReason").or_else(|| text(&alarm, "/AlarmDescription")),
        started_at: rfc3339(text(&alarm, "/StateChangeTime")),
        labels: BTreeMap::new(),
    }]))
}

fn gcp(body: &Value) -> Result<Delivery, String> {
    if text(body, "/version").as_deref() == Some("test") {
        return Ok(Delivery::Acknowledged(
            "Google Cloud Monitoring test notification".into(),
        ));
    }
    let incident = body
        .get("incident")
        .ok_or("incident is missing: not a Cloud Monitoring payload")?;
    let state = match required(incident, "/state")?.to_ascii_lowercase().as_str() {
        "open" => AlarmState::Firing,
        "closed" => AlarmState::Resolved,
        other => {
            return Err(format!(
                "incident.state {other:?} is neither open nor closed"
            ));
        }
    };
    let severity = text(incident, "/severity").filter(|s| s != "No severity");
    Ok(Delivery::Alarms(vec![Alarm {
        key: required(incident, "/incident_id")?,
        state,
        name: text(incident, "/policy_name")
            .or_else(|| text(incident, "/condition_name"))
            .ok_or("incident.policy_name is missing")?,
        resource: text(incident, "/resource_display_name")
            .or_else(|| text(incident, "/resource_name")),
        severity: self::severity(severity),
        summary: text(incident, "/summary"),
        started_at: epoch_seconds(incident, "/started_at"),
        labels: BTreeMap::new(),
    }]))
}

fn azure(body: &Value) -> Result<Delivery, String> {
    let schema = required(body, "/schemaId")?;
    if schema != "azureMonitorCommonAlertSchema" {
        return Err(format!(
            "schemaId {schema:?} is not azureMonitorCommonAlertSchema; enable the common alert schema on the action group"
        ));
    }
    let essentials = body
        .pointer("/data/essentials")
        .ok_or("data.essentials is missing")?;
    let state = match required(essentials, "/monitorCondition")?.as_str() {
        "Fired" => AlarmState::Firing,
        "Resolved" => AlarmState::Resolved,
        other => {
            return Err(format!(
                "data.essentials.monitorCondition {other:?} is neither Fired nor Resolved"
            ));
        }
    };
    Ok(Delivery::Alarms(vec![Alarm {
        key: required(essentials, "/alertId")?,
        state,
        name: required(essentials, "/alertRule")?,
        resource: text(essentials, "/alertTargetIDs/0")
            .or_else(|| text(essentials, "/configurationItems/0")),
        severity: severity(text(essentials, "/severity")),
        summary: text(essentials, "/description"),
        started_at: rfc3339(text(essentials, "/firedDateTime")),
        labels: BTreeMap::new(),
    }]))
}

fn uptime_kuma(body: &Value) -> Result<Delivery, String> {
    let heartbeat = body.get("heartbeat").filter(|h| !h.is_null());
    let monitor = body.get("monitor").filter(|m| !m.is_null());
    let (Some(heartbeat), Some(monitor)) = (heartbeat, monitor) else {
        if body.get("msg").is_some() {
            return Ok(Delivery::Acknowledged(
                "Uptime Kuma test notification".into(),
            ));
        }
        return Err("heartbeat and monitor are missing: not an Uptime Kuma payload".into());
    };
    let state = match heartbeat.get("status").and_then(Value::as_i64) {
        Some(0) => AlarmState::Firing,
        Some(1) => AlarmState::Resolved,
        Some(2 | 3) => {
            return Ok(Delivery::Acknowledged(
                "Uptime Kuma pending or maintenance heartbeat".into(),
            ));
        }
        other => {
            return Err(format!(
                "heartbeat.status {other:?} is not 0 (down) or 1 (up)"
            ));
        }
    };
    // heartbeat.time is local time without a zone; timezoneOffset says which.
    let started_at = match (text(heartbeat, "/time"), text(heartbeat, "/timezoneOffset")) {
        (Some(time), Some(offset)) => {
            rfc3339(Some(format!("{}{offset}", time.replacen(' ', "T", 1))))
        }
        _ => None,
    };
    Ok(Delivery::Alarms(vec![Alarm {
        key: required(monitor, "/id")?,
        state,
        name: required(monitor, "/name")?,
        resource: text(monitor, "/url").or_else(|| text(monitor, "/hostname")),
        severity: Some("CRITICAL".into()),
        summary: text(heartbeat, "/msg").or_else(|| text(body, "/msg")),
        started_at,
        labels: BTreeMap::new(),
    }]))
}

fn pingdom(body: &Value) -> Result<Delivery, String> {
    let state = match required(body, "/current_state")?.as_str() {
        "DOWN" => AlarmState::Firing,
        "UP" => AlarmState::Resolved,
        other => return Err(format!("current_state {other:?} is neither DOWN nor UP")),
    };
    Ok(Delivery::Alarms(vec![Alarm {
        key: required(body, "/check_id")?,
        state,
        name: required(body, "/check_name")?,
        resource: text(body, "/check_params/full_url")
            .or_else(|| text(body, "/check_params/hostname")),
        severity: Some("CRITICAL".into()),
        summary: text(body, "/description").or_else(|| text(body, "/long_description")),
        started_at: epoch_seconds(body, "/state_changed_timestamp"),
        labels: BTreeMap::new(),
    }]))
}

/// `{"alarms": [alarm…]}` or one alarm: `{"key", "state": "FIRING" | "RESOLVED", "name",
/// "resource"?, "severity"?, "summary"?, "startedAt"?}`.
fn generic(body: &Value) -> Result<Delivery, String> {
    let one = |alarm: &Value, at: &str| -> Result<Alarm, String> {
        let state = match required(alarm, "/state")?.to_ascii_uppercase().as_str() {
            "FIRING" => AlarmState::Firing,
            "RESOLVED" => AlarmState::Resolved,
            other => {
                return Err(format!(
                    "{at}state {other:?} is neither FIRING nor RESOLVED"
                ));
            }
        };
        Ok(Alarm {
            key: text(alarm, "/key").ok_or(format!("{at}key is missing"))?,
            state,
            name: text(alarm, "/name").ok_or(format!("{at}name is missing"))?,
            resource: text(alarm, "/resource"),
            severity: severity(text(alarm, "/severity")),
            summary: text(alarm, "/summary"),
            started_at: rfc3339(text(alarm, "/startedAt")),
            labels: BTreeMap::new(),
        })
    };
    match body.get("alarms").and_then(Value::as_array) {
        Some(alarms) => alarms
            .iter()
            .enumerate()
            .map(|(i, a)| one(a, &format!("alarms[{i}].")))
            .collect::<Result<_, _>>()
            .map(Delivery::Alarms),
        None => one(body, "").map(|a| Delivery::Alarms(vec![a])),
    }
}

//! The platforms whose webhooks Tocsin understands.

/// A platform whose webhooks Tocsin understands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrationKind {
    /// Amazon SNS (CloudWatch alarms through a topic).
    AwsSns,
    /// Amazon EventBridge "CloudWatch Alarm State Change" events.
    AwsEventbridge,
    /// Google Cloud Monitoring webhook channels.
    GcpMonitoring,
    /// Azure Monitor, common alert schema.
    AzureMonitor,
    /// Prometheus Alertmanager webhook receivers (version 4).
    Alertmanager,
    /// Grafana unified alerting webhook contact points.
    Grafana,
    /// Uptime Kuma webhook notifications.
    UptimeKuma,
    /// Pingdom webhook integrations.
    Pingdom,
    /// Tocsin's own shape, for anything else.
    Generic,
}

impl std::fmt::Display for IntegrationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl IntegrationKind {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwsSns => "aws-sns",
            Self::AwsEventbridge => "aws-eventbridge",
            Self::GcpMonitoring => "gcp-monitoring",
            Self::AzureMonitor => "azure-monitor",
            Self::Alertmanager => "alertmanager",
            Self::Grafana => "grafana",
            Self::UptimeKuma => "uptime-kuma",
            Self::Pingdom => "pingdom",
            Self::Generic => "generic",
        }
    }

    /// Reads the API name.
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

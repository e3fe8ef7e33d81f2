//! `unprocessed_events`: more than `threshold` events with `status` UNPROCESSED and the
//! given `schemaName` were timestamped in the last `windowMinutes` (both ends included:
//! an event exactly `windowMinutes` old counts, as does one stamped now).

use tocsin_sdk::chrono::Duration;
use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct UnprocessedEvents;

/// Parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// How far back to look, in minutes.
    #[schemars(range(min = 1))]
    pub window_minutes: u32,
    /// Breached when strictly more events than this are unprocessed.
    pub threshold: u64,
    /// The `schemaName` attribute of the events to count.
    #[schemars(length(min = 1))]
    pub schema_name: String,
}

/// Report data.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Unprocessed events in the window.
    pub count: u64,
}

impl Template for UnprocessedEvents {
    type Params = Params;
    type Report = Report;

    const INFO: Info = Info {
        id: "unprocessed_events",
        version: env!("CARGO_PKG_VERSION"),
        name: "Unprocessed events",
        description: "More than threshold events of a schema are UNPROCESSED within the last windowMinutes.",
        entity_type: None,
        owner_type: None,
        auto_resolvable: false,
        default_interval_minutes: 5,
    };

    fn plan(params: &Params, ctx: &Context) -> Result<Vec<Query>, String> {
        let start = ctx.now - Duration::minutes(i64::from(params.window_minutes));
        // Windows are half-open and timestamps have microsecond resolution, so ending one
        // microsecond after now includes events stamped exactly now.
        let end = ctx.now + Duration::microseconds(1);
        Ok(vec![
            Query::events(start, end)
                .attribute("status", "UNPROCESSED")
                .attribute("schemaName", params.schema_name.as_str()),
        ])
    }

    fn evaluate(params: &Params, _ctx: &Context, answers: &Answers) -> Evaluation<Report> {
        let subject = params.schema_name.clone();
        let count = match answers.events(0) {
            Ok(aggregate) => aggregate.count,
            Err(reason) => return Evaluation::one(Finding::no_data(subject, reason)),
        };
        let breached = count > params.threshold;
        let summary = format!(
            "{count} unprocessed {} events in the last {} minutes, {} the threshold of {}.",
            params.schema_name,
            params.window_minutes,
            if breached { "above" } else { "not above" },
            params.threshold
        );
        Evaluation::one(Finding::new(
            subject,
            Verdict::breached_if(breached),
            Report { count },
            summary,
        ))
    }
}

tocsin_sdk::export_template!(UnprocessedEvents);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::UnprocessedEvents>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}

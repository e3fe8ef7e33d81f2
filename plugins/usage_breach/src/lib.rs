//! `usage_breach`: the sum of `value` of an account's `usage` events for a meter (all its
//! meters when none is named) in the current period is above a threshold.
//!
//! The period is a calendar day, week (from Monday) or month in the account's time zone
//! (its `timezone` attribute, UTC by default), or the account's pricing cycle. Evaluation
//! takes two rounds: the account first, then the usage in the window it decides.

use tocsin_sdk::chrono_tz::Tz;
use tocsin_sdk::prelude::*;
use tocsin_sdk::time::{calendar_window, parse_local_instant, parse_time_zone};

/// The template.
#[derive(Debug)]
pub struct UsageBreach;

/// Which period usage is summed over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AggregationPeriod {
    /// The current calendar day.
    Day,
    /// The current week, from Monday.
    Week,
    /// The current calendar month.
    Month,
    /// The account's current pricing cycle (`pricingCycleStart` to `pricingCycleEnd`).
    #[default]
    PricingCycle,
}

/// Parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// Breached when usage is strictly above this.
    pub threshold: Decimal,
    /// The period usage is summed over.
    #[serde(default)]
    pub aggregation_period: AggregationPeriod,
}

/// Report data.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Usage in the period.
    pub usage_units: Decimal,
    /// The period kind.
    pub aggregation_period: AggregationPeriod,
    /// Period start, inclusive, RFC 3339.
    pub period_start: String,
    /// Period end, exclusive, RFC 3339.
    pub period_end: String,
    /// The account.
    pub account_id: String,
}

const ACCOUNT: &str = "ACCOUNT";

/// The current period of the account, from its snapshot (if any).
fn window(
    period: AggregationPeriod,
    account_id: &str,
    accounts: &[Entity],
    now: Timestamp,
) -> Result<(Timestamp, Timestamp), DataError> {
    let account = accounts.first();
    let tz = match account
        .map(|a| a.optional_text("timezone"))
        .transpose()?
        .flatten()
    {
        None => Tz::UTC,
        Some(name) => parse_time_zone(name).ok_or_else(|| {
            DataError::new(format!(
                "account {account_id} has timezone {name:?}, which is not an IANA time zone"
            ))
        })?,
    };
    let calendar = |p| Ok(calendar_window(now, p, tz));
    match period {
        AggregationPeriod::Day => calendar(Period::Day),
        AggregationPeriod::Week => calendar(Period::Week),
        AggregationPeriod::Month => calendar(Period::Month),
        AggregationPeriod::PricingCycle => {
            let account = account.ok_or_else(|| {
                DataError::new(format!(
                    "account {account_id} has no ACCOUNT entity to read its pricing cycle from"
                ))
            })?;
            let bound = |name: &str| {
                let text = account.text(name)?;
                parse_local_instant(text, tz).ok_or_else(|| {
                    DataError::new(format!("account {account_id} `{name}` is {text:?}, expected an RFC 3339 timestamp or a date"))
                })
            };
            let (start, end) = (bound("pricingCycleStart")?, bound("pricingCycleEnd")?);
            if !(start <= now && now < end) {
                return Err(DataError::new(format!(
                    "account {account_id} pricing cycle {} to {} does not contain {}",
                    start.to_rfc3339(),
                    end.to_rfc3339(),
                    now.to_rfc3339()
                )));
            }
            Ok((start, end))
        }
    }
}

impl Template for UsageBreach {
    type Params = Params;
    type Report = Report;

    const INFO: Info = Info {
        id: "usage_breach",
        version: env!("CARGO_PKG_VERSION"),
        name: "Usage breach",
        description: "An account's usage of a meter (sum of `value` of its `usage` events) in the current day, week, month or pricing cycle is above a threshold.",
        entity_type: Some("USAGE_METER"),
        owner_type: Some(ACCOUNT),
        auto_resolvable: false,
        default_interval_minutes: 60,
    };

    fn plan(_params: &Params, ctx: &Context) -> Result<Vec<Query>, String> {
        let account = ctx.require_owner()?;
        Ok(vec![Query::entities(ACCOUNT).entity_id(Some(account))])
    }

    fn evaluate(params: &Params, ctx: &Context, answers: &Answers) -> Evaluation<Report> {
        let account = ctx.owner_id.clone().unwrap_or_default();
        let period = params.aggregation_period;
        let window = answers
            .entities(0)
            .and_then(|accounts| window(period, &account, accounts, ctx.now));
        let (start, end) = match window {
            Ok(window) => window,
            Err(reason) => return Evaluation::one(Finding::no_data(account, reason)),
        };
        if answers.len() == 1 {
            return Evaluation::More(vec![
                Query::events(start, end)
                    .event_type("usage")
                    .owned_by(ACCOUNT, account.as_str())
                    .entity_type("USAGE_METER")
                    .entity_id(ctx.entity_id.as_deref()),
            ]);
        }
        let usage = match answers.events(1) {
            Ok(aggregate) => aggregate.sum,
            Err(reason) => return Evaluation::one(Finding::no_data(account, reason)),
        };
        let breached = usage > params.threshold;
        let meter = ctx
            .entity_id
            .as_deref()
            .map_or("all meters".to_owned(), |m| format!("meter {m}"));
        let summary = format!(
            "Account {account} used {usage} units on {meter} this period, {} the threshold of {}.",
            if breached { "above" } else { "not above" },
            params.threshold
        );
        let report = Report {
            usage_units: usage,
            aggregation_period: period,
            period_start: start.to_rfc3339(),
            period_end: end.to_rfc3339(),
            account_id: account.clone(),
        };
        Evaluation::one(Finding::new(
            account,
            Verdict::breached_if(breached),
            report,
            summary,
        ))
    }
}

tocsin_sdk::export_template!(UsageBreach);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::UsageBreach>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}

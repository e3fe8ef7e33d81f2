//! `percent_credits_used`: more than `percent` % of an account's granted credits are used.
//!
//! An example of a template written outside Tocsin with the SDK, as the README walks
//! through: built for `wasm32-wasip2` and uploaded with `POST /plugins`.

use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct PercentCreditsUsed;

/// Parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Params {
    /// Breached when strictly more than this percentage of the granted credits is used.
    pub percent: Decimal,
}

/// Report data.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Percentage of the granted credits used, to two decimals.
    pub used_percent: Decimal,
    /// Credits used: granted minus remaining.
    pub used: Decimal,
    /// Credits granted.
    pub granted: Decimal,
    /// The account.
    pub account_id: String,
}

fn judge(
    account: &str,
    credits: &[&Entity],
    params: &Params,
) -> Result<Finding<Report>, DataError> {
    let (mut balance, mut granted) = (Decimal::ZERO, Decimal::ZERO);
    for credit in credits {
        balance += credit.decimal("balance")?;
        granted += credit.decimal("granted")?;
    }
    if granted == Decimal::ZERO {
        return Err(DataError::new(format!(
            "account {account} has no credits granted"
        )));
    }
    let used = granted - balance;
    let hundred = Decimal::from(100i64).inner();
    let used_percent = Decimal::from((used.inner() * hundred / granted.inner()).round_dp(2));
    let breached = used_percent > params.percent;
    let summary = format!(
        "Account {account} has used {used_percent}% of its {granted} credits, {} the {}% limit.",
        if breached { "above" } else { "within" },
        params.percent
    );
    let report = Report {
        used_percent,
        used,
        granted,
        account_id: account.to_owned(),
    };
    Ok(Finding::new(
        account,
        Verdict::breached_if(breached),
        report,
        summary,
    ))
}

impl Template for PercentCreditsUsed {
    type Params = Params;
    type Report = Report;

    const INFO: Info = Info {
        id: "percent_credits_used",
        version: env!("CARGO_PKG_VERSION"),
        name: "Percent of credits used",
        description: "More than a percentage of an account's granted credits are used.",
        entity_type: Some("CREDIT"),
        owner_type: Some("ACCOUNT"),
        auto_resolvable: true,
        default_interval_minutes: 60,
    };

    fn plan(_params: &Params, ctx: &Context) -> Result<Vec<Query>, String> {
        Ok(vec![Query::for_alert("CREDIT", "ACCOUNT", ctx)])
    }

    fn evaluate(params: &Params, ctx: &Context, answers: &Answers) -> Evaluation<Report> {
        let credits = match answers.entities(0) {
            Ok(credits) => credits,
            Err(reason) => {
                return Evaluation::one(Finding::no_data(
                    ctx.owner_id.clone().unwrap_or_default(),
                    reason,
                ));
            }
        };
        Evaluation::Findings(
            group_by_owner(ctx, credits)
                .into_iter()
                .map(|(account, credits)| {
                    judge(account, &credits, params)
                        .unwrap_or_else(|reason| Finding::no_data(account, reason))
                })
                .collect(),
        )
    }
}

tocsin_sdk::export_template!(PercentCreditsUsed);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::PercentCreditsUsed>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}

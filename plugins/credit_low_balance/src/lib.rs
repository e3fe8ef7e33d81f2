//! `credit_low_balance`: the sum of `balance` over an account's CREDIT entities (or the one
//! named in entityDetails) is below a threshold. Auto-resolves when it recovers.

use tocsin_plugin_balance as balance;
use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct CreditLowBalance;

const ENTITY_TYPE: &str = "CREDIT";

impl Template for CreditLowBalance {
    type Params = balance::Params;
    type Report = balance::Report;

    const INFO: Info = Info {
        id: "credit_low_balance",
        version: env!("CARGO_PKG_VERSION"),
        name: "Credit low balance",
        description: "The remaining credit balance of an account (sum of `balance` over its CREDIT entities, or the one named) is below a threshold.",
        entity_type: Some(ENTITY_TYPE),
        owner_type: Some(balance::OWNER_TYPE),
        auto_resolvable: true,
        default_interval_minutes: 60,
    };

    fn plan(_params: &balance::Params, ctx: &Context) -> Result<Vec<Query>, String> {
        Ok(balance::plan(ENTITY_TYPE, ctx))
    }

    fn evaluate(
        params: &balance::Params,
        ctx: &Context,
        answers: &Answers,
    ) -> Evaluation<balance::Report> {
        balance::evaluate(ENTITY_TYPE, "credit", params, ctx, answers)
    }
}

tocsin_sdk::export_template!(CreditLowBalance);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::CreditLowBalance>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}

//! `wallet_low_balance`: the sum of `balance` over an account's WALLET entities (or the one
//! named in entityDetails) is below a threshold. Auto-resolves when it recovers.

use tocsin_plugin_balance as balance;
use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct WalletLowBalance;

const ENTITY_TYPE: &str = "WALLET";

impl Template for WalletLowBalance {
    type Params = balance::Params;
    type Report = balance::Report;

    const INFO: Info = Info {
        id: "wallet_low_balance",
        version: env!("CARGO_PKG_VERSION"),
        name: "Wallet low balance",
        description: "The remaining wallet balance of an account (sum of `balance` over its WALLET entities, or the one named) is below a threshold.",
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
        balance::evaluate(ENTITY_TYPE, "wallet", params, ctx, answers)
    }
}

tocsin_sdk::export_template!(WalletLowBalance);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::WalletLowBalance>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}

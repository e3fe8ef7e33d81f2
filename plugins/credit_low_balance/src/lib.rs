//! `credit_low_balance`: the sum of `balance` over an account's CREDIT entities (or the one
//! named in entityDetails) is below a threshold. Auto-resolves when it recovers.

use tocsin_plugin_balance::{self as balance, Kind, LowBalance};
use tocsin_sdk::prelude::*;

/// The template: low balance over CREDIT entities.
pub type CreditLowBalance = LowBalance<Credit>;

/// CREDIT entities, for [`LowBalance`].
#[derive(Debug)]
pub struct Credit;

impl Kind for Credit {
    const ENTITY_TYPE: &'static str = "CREDIT";
    const NOUN: &'static str = "credit";
    const INFO: Info = Info {
        id: "credit_low_balance",
        version: env!("CARGO_PKG_VERSION"),
        name: "Credit low balance",
        description: "The remaining credit balance of an account (sum of `balance` over its CREDIT entities, or the one named) is below a threshold.",
        entity_type: Some(Self::ENTITY_TYPE),
        owner_type: Some(balance::OWNER_TYPE),
        auto_resolvable: true,
        default_interval_minutes: 60,
    };
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

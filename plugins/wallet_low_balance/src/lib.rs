//! `wallet_low_balance`: the sum of `balance` over an account's WALLET entities (or the one
//! named in entityDetails) is below a threshold. Auto-resolves when it recovers.

use tocsin_plugin_balance::{self as balance, Kind, LowBalance};
use tocsin_sdk::prelude::*;

/// The template: low balance over WALLET entities.
pub type WalletLowBalance = LowBalance<Wallet>;

/// WALLET entities, for [`LowBalance`].
#[derive(Debug)]
pub struct Wallet;

impl Kind for Wallet {
    const ENTITY_TYPE: &'static str = "WALLET";
    const NOUN: &'static str = "wallet";
    const INFO: Info = Info {
        id: "wallet_low_balance",
        version: env!("CARGO_PKG_VERSION"),
        name: "Wallet low balance",
        description: "The remaining wallet balance of an account (sum of `balance` over its WALLET entities, or the one named) is below a threshold.",
        entity_type: Some(Self::ENTITY_TYPE),
        owner_type: Some(balance::OWNER_TYPE),
        auto_resolvable: true,
        default_interval_minutes: 60,
    };
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

//! `entitlement_low_balance`: the sum of `balance` over an account's FEATURE entities (or the one
//! named in entityDetails) is below a threshold. Auto-resolves when it recovers.

use tocsin_plugin_balance::{self as balance, Kind, LowBalance};
use tocsin_sdk::prelude::*;

/// The template: low balance over FEATURE entities.
pub type EntitlementLowBalance = LowBalance<Entitlement>;

/// FEATURE entities (entitlements), for [`LowBalance`].
#[derive(Debug)]
pub struct Entitlement;

impl Kind for Entitlement {
    const ENTITY_TYPE: &'static str = "FEATURE";
    const NOUN: &'static str = "entitlement";
    const INFO: Info = Info {
        id: "entitlement_low_balance",
        version: env!("CARGO_PKG_VERSION"),
        name: "Entitlement low balance",
        description: "The remaining entitlement balance of an account (sum of `balance` over its FEATURE entities, or the one named) is below a threshold.",
        entity_type: Some(Self::ENTITY_TYPE),
        owner_type: Some(balance::OWNER_TYPE),
        auto_resolvable: true,
        default_interval_minutes: 60,
    };
}

tocsin_sdk::export_template!(EntitlementLowBalance);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_hold_natively() {
        tocsin_sdk::testing::check_fixtures::<super::EntitlementLowBalance>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}

//! Builds the built-in templates (`plugins/`) as WebAssembly components and embeds them.

include!("wasm_build.rs");

fn main() {
    build_guests(
        &[
            Guest {
                package: "tocsin-plugin-credit-low-balance",
                artifact: "credit_low_balance",
            },
            Guest {
                package: "tocsin-plugin-wallet-low-balance",
                artifact: "wallet_low_balance",
            },
            Guest {
                package: "tocsin-plugin-entitlement-low-balance",
                artifact: "entitlement_low_balance",
            },
        ],
        "BUILTINS",
        "builtins.rs",
    );
}

//! Builds the built-in templates (`plugins/`) as WebAssembly components and embeds them.

include!("wasm_build.rs");

fn main() {
    // `sqlx::migrate!` embeds the migrations; a new file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    let builtin = |id: &'static str, package: &'static str| Guest {
        package,
        artifact: id,
    };
    build_guests(
        &[
            builtin("credit_low_balance", "tocsin-plugin-credit-low-balance"),
            builtin("wallet_low_balance", "tocsin-plugin-wallet-low-balance"),
            builtin(
                "entitlement_low_balance",
                "tocsin-plugin-entitlement-low-balance",
            ),
            builtin("usage_breach", "tocsin-plugin-usage-breach"),
            builtin("unprocessed_events", "tocsin-plugin-unprocessed-events"),
            builtin("invoice_due_breach", "tocsin-plugin-invoice-due-breach"),
            builtin(
                "invoice_overdue_breach",
                "tocsin-plugin-invoice-overdue-breach",
            ),
            builtin(
                "unpaid_invoice_amount_breach",
                "tocsin-plugin-unpaid-invoice-amount-breach",
            ),
            builtin("cloud_alarm", "tocsin-plugin-cloud-alarm"),
        ],
        "BUILTINS",
        "builtins.rs",
    );
}

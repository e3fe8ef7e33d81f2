//! Builds the test-only guest components (`tests/guests/`) and embeds them.

include!("../engine/wasm_build.rs");

fn main() {
    let guest = |artifact: &'static str, package: &'static str| Guest { package, artifact };
    build_guests(
        &[
            guest("hostile", "tocsin-guest-hostile"),
            guest("forbidden_fs", "tocsin-guest-forbidden-fs"),
            guest("forbidden_net", "tocsin-guest-forbidden-net"),
            guest("future_interface", "tocsin-guest-future-interface"),
            guest("percent_credits_used", "percent-credits-used"),
            guest("percent_credits_used_v2", "percent-credits-used-v2"),
        ],
        "GUESTS",
        "guests.rs",
    );
}

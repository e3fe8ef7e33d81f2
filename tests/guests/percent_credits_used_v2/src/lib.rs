//! `sdk/examples/percent_credits_used` built again as version 1.1.0 (the version comes from
//! this crate's manifest), so a test can upload a newer version of a registered template.

#[path = "../../../../sdk/examples/percent_credits_used/src/lib.rs"]
pub mod template;

//! Tocsin's domain: the values every part of the engine speaks in, with no I/O. The call
//! loop's rules ([`call_loop`], a pure state machine), the platforms that trigger alarms
//! ([`IntegrationKind`]), who is on call ([`oncall`]: rotations, schedules, overrides),
//! what a silence matches ([`silence`]); phone numbers are [`tocsin_twilio::PhoneNumber`],
//! re-exported.

pub mod call_loop;
mod integration;
pub mod oncall;
pub mod silence;

pub use integration::IntegrationKind;
pub use tocsin_twilio::PhoneNumber;

//! Phone escalation: the driver that dials, hangs up, reads late news back from Twilio and
//! fires fallbacks. The call loop's rules are the pure state machine
//! [`tocsin_domain::call_loop`]; the store persists its transitions.

mod driver;

pub use driver::{Escalation, run};

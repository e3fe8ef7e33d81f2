//! Phone escalation: the call loop's rules ([`machine`], pure) and the driver that dials,
//! hangs up, reads late news back from Twilio and fires fallbacks ([`driver`]).

mod driver;
pub mod machine;

pub use driver::{Escalation, run};

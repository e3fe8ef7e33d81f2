//! Texts after missed calls (a roster's `sms: on-miss`): written with the call's outcome,
//! sent at most once, and a reply of 1 from the number texted accepts the incident.

use super::Result;
use tocsin_sdk::time::Timestamp;

/// A text to send, or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Our id.
    pub id: String,
    /// The incident it is about.
    pub incident_id: String,
    /// The member texted.
    pub member: String,
    /// Their number.
    pub phone: String,
    /// What it says.
    pub body: String,
}

/// A reply that accepted an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The incident, now ACKNOWLEDGED.
    pub incident_id: String,
    /// By whom.
    pub member: String,
}

super::dispatch! {
    /// Texts waiting to be sent, oldest first.
    fn texts_to_send(&self) -> Result<Vec<Text>>;
    /// Claims a text for sending: false when another sender has it (each is sent at most
    /// once, even across a crash).
    fn text_sending(&self, id: &str, at: Timestamp) -> Result<bool>;
    /// The text was sent (`Ok(sid)`) or Twilio refused it (`Err(reason)`), on the timeline.
    fn text_done(&self, text: &Text, result: Result<&str, &str>, at: Timestamp) -> Result<()>;
    /// A reply from `from`: "1" accepts the incident of the latest text sent to that
    /// number while it is still OPEN (its loop stops); anything else, or from a number
    /// with no such text, changes nothing.
    fn text_reply(&self, from: &str, body: &str, sid: &str, at: Timestamp) -> Result<Option<Accepted>>;
}

super::dispatch! {
    impl FollowUps;
    /// Texts waiting to be sent.
    fn texts_to_send(&self) -> Result<Vec<Text>>;
    /// Claims a text for sending.
    fn text_sending(&self, id: &str, at: Timestamp) -> Result<bool>;
    /// The text was sent, or refused.
    fn text_done(&self, text: &Text, result: Result<&str, &str>, at: Timestamp) -> Result<()>;
    /// A reply to a text.
    fn text_reply(&self, from: &str, body: &str, sid: &str, at: Timestamp) -> Result<Option<Accepted>>;
    /// The calls placed to an operator in `[from, to)`.
    fn operator_calls(&self, operator_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<super::escalation::CallTimes>>;
}

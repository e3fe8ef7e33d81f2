//! Twilio's Programmable Voice REST API, the part Tocsin uses: place a call, read it, end it.
//! Requests are form-encoded with basic auth (account SID and auth token), as Twilio's
//! contract (`shared/contracts/twilio_api_v2010.json`) says.

pub mod signature;
pub mod twiml;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Whether `phone` is an E.164 number: `+`, a country code, at most 15 digits in all.
pub fn is_e164(phone: &str) -> bool {
    phone.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// An E.164 phone number, checked once where it enters: a value of this type is always
/// one Twilio can dial.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// A text that is not an E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an E.164 number such as +14155550100")]
pub struct NotE164(pub String);

impl PhoneNumber {
    /// Reads an E.164 number.
    pub fn parse(text: &str) -> Result<Self, NotE164> {
        if is_e164(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(NotE164(text.to_owned()))
        }
    }

    /// The number, `+` and digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but its last four digits hidden.
    pub fn masked(&self) -> String {
        format!("…{}", &self.0[self.0.len() - 4..])
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = NotE164;

    fn try_from(text: String) -> Result<Self, NotE164> {
        Self::parse(&text)
    }
}

impl From<PhoneNumber> for String {
    fn from(phone: PhoneNumber) -> Self {
        phone.0
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Twilio's own API host.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// The Twilio account calls are placed from.
#[derive(Debug, Clone)]
pub struct Account {
    /// `AC…`.
    pub sid: String,
    /// Signs webhooks and authenticates API requests.
    pub auth_token: String,
    /// The caller id, an E.164 number of the account.
    pub from: String,
    /// Where the REST API is: Twilio's, or the simulator's.
    pub api_base: String,
}

/// A call's status, as Twilio names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    /// Accepted, not dialed yet.
    Queued,
    /// Dialing (status callbacks only).
    Initiated,
    /// The phone rings.
    Ringing,
    /// Answered.
    InProgress,
    /// Answered and ended.
    Completed,
    /// The line was busy.
    Busy,
    /// Could not be placed.
    Failed,
    /// Rang out.
    NoAnswer,
    /// Ended before it was answered.
    Canceled,
}

impl CallStatus {
    /// Whether the call is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Busy | Self::Failed | Self::NoAnswer | Self::Canceled
        )
    }

    /// How far along a call is; callbacks that would move a call backwards are stale.
    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Initiated => 1,
            Self::Ringing => 2,
            Self::InProgress => 3,
            _ => 4,
        }
    }

    /// Twilio's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::NoAnswer => "no-answer",
            Self::Canceled => "canceled",
        }
    }

    /// Reads Twilio's name.
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// The fields of Twilio's Call resource that Tocsin reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    /// `CA…`.
    pub sid: String,
    /// Where it stands.
    pub status: CallStatus,
    /// The number called.
    pub to: Option<String>,
    /// When Twilio created it (RFC 2822, to the second).
    #[serde(default)]
    pub date_created: Option<String>,
}

/// A page of `GET Calls.json`.
#[derive(Debug, Clone, Deserialize)]
struct CallPage {
    calls: Vec<Call>,
}

/// The fields of Twilio's Message resource that Tocsin reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// `SM…`.
    pub sid: String,
    /// `queued`, `sent`, `delivered`, `failed`…
    pub status: String,
}

/// Twilio's error body.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiErrorBody {
    /// Twilio's error code, such as 21211 for an invalid `To`.
    pub code: Option<i64>,
    /// What went wrong.
    pub message: String,
}

/// A failed request to Twilio.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Twilio answered with an error.
    #[error("Twilio refused the request ({status}, code {code:?}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Twilio's error code.
        code: Option<i64>,
        /// Twilio's message.
        message: String,
    },
    /// The request never got an answer.
    #[error("could not reach Twilio: {0}")]
    Transport(#[from] reqwest::Error),
}

impl Error {
    /// Whether Twilio surely never received the request (the connection was not made), so
    /// nothing happened on its side.
    pub fn not_delivered(&self) -> bool {
        matches!(self, Self::Transport(e) if e.is_connect() || e.is_builder())
    }
}

/// What to ask of a new call.
#[derive(Debug, Clone)]
pub struct NewCall<'a> {
    /// The operator's E.164 number.
    pub to: &'a str,
    /// Where Twilio fetches the call's TwiML.
    pub voice_url: &'a str,
    /// Where Twilio reports the call's progress.
    pub status_callback: &'a str,
    /// Seconds to let the phone ring.
    pub ring_timeout_seconds: u32,
}

/// A client of Twilio's REST API for one account.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    account: Account,
}

impl Client {
    /// A client for `account`.
    pub fn new(account: Account) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("an HTTP client without TLS settings builds");
        Self { http, account }
    }

    /// The account.
    pub fn account(&self) -> &Account {
        &self.account
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{path}",
            self.account.api_base.trim_end_matches('/'),
            self.account.sid
        )
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Error> {
        let response = request
            .basic_auth(&self.account.sid, Some(&self.account.auth_token))
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let text = response.text().await.unwrap_or_default();
        let body: Option<ApiErrorBody> = serde_json::from_str(&text).ok();
        Err(Error::Api {
            status: status.as_u16(),
            code: body.as_ref().and_then(|b| b.code),
            message: body.map_or(text, |b| b.message),
        })
    }

    /// `POST Calls.json`: dials `to`; the voice URL speaks to whoever answers.
    pub async fn create_call(&self, call: &NewCall<'_>) -> Result<Call, Error> {
        let timeout = call.ring_timeout_seconds.to_string();
        let form: Vec<(&str, &str)> = vec![
            ("To", call.to),
            ("From", &self.account.from),
            ("Url", call.voice_url),
            ("Method", "POST"),
            ("StatusCallback", call.status_callback),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("Timeout", &timeout),
        ];
        self.send(self.http.post(self.url("Calls.json")).form(&form))
            .await
    }

    /// `POST Messages.json`: texts `body` (at most 1,600 characters) to `to`.
    pub async fn create_message(&self, to: &str, body: &str) -> Result<Message, Error> {
        let form = [
            ("To", to),
            ("From", self.account.from.as_str()),
            ("Body", body),
        ];
        self.send(self.http.post(self.url("Messages.json")).form(&form))
            .await
    }

    /// `GET Calls/{sid}.json`.
    pub async fn fetch_call(&self, sid: &str) -> Result<Call, Error> {
        self.send(self.http.get(self.url(&format!("Calls/{sid}.json"))))
            .await
    }

    /// `GET Calls.json?To=…`: the latest calls to `to`, newest first (one page of 20).
    pub async fn calls_to(&self, to: &str) -> Result<Vec<Call>, Error> {
        let query = [("To", to), ("PageSize", "20")];
        let page: CallPage = self
            .send(self.http.get(self.url("Calls.json")).query(&query))
            .await?;
        Ok(page.calls)
    }

    /// Ends a call wherever it is: `canceled` stops one that rings, `completed` hangs up one
    /// that was answered (`POST Calls/{sid}.json`).
    pub async fn end_call(&self, sid: &str) -> Result<Call, Error> {
        let url = self.url(&format!("Calls/{sid}.json"));
        let call: Call = self
            .send(self.http.post(&url).form(&[("Status", "canceled")]))
            .await?;
        if call.status.is_final() {
            return Ok(call);
        }
        self.send(self.http.post(&url).form(&[("Status", "completed")]))
            .await
    }
}

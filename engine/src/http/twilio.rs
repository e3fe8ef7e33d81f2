//! Twilio's webhooks: the voice prompt, the key press, the call status, and replies to
//! texts (`/twilio/sms`). No API key:
//! each request must carry Twilio's `X-Twilio-Signature` over `TOCSIN_PUBLIC_URL` + path;
//! without a valid one it is refused with 403 and changes nothing.

use super::{ApiError, AppState};
use crate::store::escalation::Answer;
use crate::store::seam::CallLoops;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use tocsin_domain::call_loop::Reply;
use tocsin_twilio::twiml::{self, Verb};
use tocsin_twilio::{CallStatus, signature};

/// The webhook routes (not in the OpenAPI document: Twilio is their only client).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/twilio/voice/{call_id}", post(voice))
        .route("/twilio/gather/{call_id}", post(gather))
        .route("/twilio/status/{call_id}", post(status))
        .route("/twilio/sms", post(sms))
}

/// Which prompt of the call this is: the first, or the one after a silence.
#[derive(Debug, Deserialize)]
struct Prompt {
    prompt: Option<u32>,
}

/// A webhook request whose `X-Twilio-Signature` is Twilio's, read: the call it is about,
/// its `CallSid`, the prompt it asks for, and its form parameters. Without a valid
/// signature it is refused with 403 before any handler runs.
struct Webhook {
    call_id: String,
    sid: String,
    prompt: u32,
    form: Signed,
}

impl Webhook {
    fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.form.param(name)
    }

    fn not_ours(&self) -> ApiError {
        ApiError::NotFound(format!(
            "no call {} with CallSid {}",
            self.call_id, self.sid
        ))
    }
}

/// A webhook's form parameters, once its `X-Twilio-Signature` is found to be Twilio's over
/// `TOCSIN_PUBLIC_URL` + path + query; 403 without a valid one.
struct Signed(Vec<(String, String)>);

impl Signed {
    fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::BadRequest(format!("{name} is missing")))
    }
}

impl FromRequest<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, core: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0)
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let signature = parts
            .headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Bytes::from_request(Request::from_parts(parts, body), core)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let account = core
            .escalation
            .account()
            .ok_or_else(|| ApiError::NotFound("no Twilio account is configured".into()))?;
        let signature =
            signature.ok_or_else(|| ApiError::Forbidden("X-Twilio-Signature is missing".into()))?;
        let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not form-encoded: {e}")))?;
        let url = format!("{}{path}", core.escalation.public_url());
        if !signature::is_valid(&account.auth_token, &url, &params, Some(&body), &signature) {
            tracing::warn!(%url, "a Twilio webhook with a signature that does not match was refused");
            return Err(ApiError::Forbidden(
                "X-Twilio-Signature does not match this request".into(),
            ));
        }
        Ok(Self(params))
    }
}

impl FromRequest<AppState> for Webhook {
    type Rejection = ApiError;

    async fn from_request(request: Request, core: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let Path(call_id) = Path::<String>::from_request_parts(&mut parts, core)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let Query(Prompt { prompt }) = Query::<Prompt>::from_request_parts(&mut parts, core)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let form = Signed::from_request(Request::from_parts(parts, body), core).await?;
        let mut webhook = Self {
            call_id,
            sid: String::new(),
            prompt: prompt.unwrap_or(1).clamp(1, 2),
            form,
        };
        webhook.sid = webhook.param("CallSid")?.to_owned();
        Ok(webhook)
    }
}

fn xml(verbs: &[Verb]) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml")],
        twiml::render(verbs),
    )
        .into_response()
}

fn goodbye(text: &str) -> Response {
    xml(&[Verb::Say(text.into()), Verb::Hangup])
}

/// Longest summary spoken, in characters: about 20 seconds of speech, so the keys are
/// offered before a listener gives up. Twilio's own cap on `<Say>` is 4,096.
const SPOKEN_SUMMARY_LIMIT: usize = 300;
/// Longest member name spoken.
const SPOKEN_NAME_LIMIT: usize = 60;

/// The prompt: the summary inside a one-digit gather. After the first silence the call is
/// redirected to the second prompt; after the second it ends, which counts as no answer.
fn prompt(core: &AppState, call_id: &str, context: &Answer, number: u32) -> Vec<Verb> {
    prompt_verbs(
        core.escalation.public_url(),
        call_id,
        core.escalation.gather_timeout_seconds(),
        &context.member,
        &context.summary,
        number,
    )
}

/// The prompt's verbs, made of plain text whatever the member's name and the summary hold.
pub fn prompt_verbs(
    public: &str,
    call_id: &str,
    gather_timeout_seconds: u32,
    member: &str,
    summary: &str,
    number: u32,
) -> Vec<Verb> {
    let member = twiml::speakable(member, SPOKEN_NAME_LIMIT);
    let summary = match twiml::speakable(summary, SPOKEN_SUMMARY_LIMIT) {
        s if s.is_empty() => "no summary was given".to_owned(),
        s => s,
    };
    let intro = if number > 1 {
        "Are you there? "
    } else {
        "This is Tocsin. "
    };
    let mut verbs = vec![Verb::Gather {
        action: format!("{public}/twilio/gather/{call_id}?prompt={number}"),
        timeout: gather_timeout_seconds,
        say: vec![format!(
            "{intro}{member}, an incident needs you: {summary}. Press 1 to accept, 2 to pass to the next operator, or star to repeat."
        )],
    }];
    if number == 1 {
        verbs.push(Verb::Redirect(format!(
            "{public}/twilio/voice/{call_id}?prompt=2"
        )));
    } else {
        verbs.push(Verb::Say("No answer received. Goodbye.".into()));
        verbs.push(Verb::Hangup);
    }
    verbs
}

async fn voice(State(core): State<AppState>, call: Webhook) -> Result<Response, ApiError> {
    let answer = core
        .store
        .call_answered(&call.call_id, &call.sid, call.prompt, core.clock.now())
        .await?
        .ok_or_else(|| call.not_ours())?;
    Ok(reply(&core, &call.call_id, &answer, call.prompt, None))
}

async fn gather(State(core): State<AppState>, call: Webhook) -> Result<Response, ApiError> {
    let digits = call.param("Digits")?;
    let answer = core
        .store
        .key_pressed(&call.call_id, &call.sid, digits, core.clock.now())
        .await?
        .ok_or_else(|| call.not_ours())?;
    tracing::info!(call = %call.call_id, %digits, reply = ?answer.reply, "key pressed");
    core.escalation.wake();
    Ok(reply(
        &core,
        &call.call_id,
        &answer,
        call.prompt,
        Some(digits),
    ))
}

/// The TwiML for the state machine's reply.
fn reply(
    core: &AppState,
    call_id: &str,
    answer: &Answer,
    number: u32,
    digits: Option<&str>,
) -> Response {
    match answer.reply {
        Reply::Accepted => goodbye("Thank you. The incident is yours. Goodbye."),
        Reply::Passed => goodbye("Passing to the next operator. Goodbye."),
        Reply::NotNeeded => goodbye("This incident no longer needs you. Goodbye."),
        Reply::Prompt => xml(&prompt(core, call_id, answer, number)),
        Reply::NotAnOption => {
            let digits = twiml::speakable(digits.unwrap_or_default(), 8);
            let mut verbs = vec![Verb::Say(format!("Sorry, {digits} is not an option."))];
            verbs.extend(prompt(core, call_id, answer, number));
            xml(&verbs)
        }
    }
}

async fn status(State(core): State<AppState>, call: Webhook) -> Result<StatusCode, ApiError> {
    let name = call.param("CallStatus")?;
    let status = CallStatus::parse(name)
        .ok_or_else(|| ApiError::BadRequest(format!("unknown CallStatus {name:?}")))?;
    let changed = core
        .store
        .call_status(&call.call_id, &call.sid, status, core.clock.now())
        .await?;
    if changed {
        tracing::info!(call = %call.call_id, status = name, "call status");
        core.escalation.wake();
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A reply to one of our texts: "1" from the number texted accepts the incident while it
/// is still OPEN (timeline `sms-accepted`, its loop stopped and its live call ended);
/// anything else, from anyone else, or later, changes nothing. The answer is an empty
/// TwiML response: nothing is texted back.
async fn sms(State(core): State<AppState>, reply: Signed) -> Result<Response, ApiError> {
    let from = reply.param("From")?;
    let body = reply.param("Body")?;
    let sid = reply.param("MessageSid").unwrap_or_default();
    match core
        .store
        .text_reply(from, body, sid, core.clock.now())
        .await?
    {
        Some(accepted) => {
            tracing::info!(incident = %accepted.incident_id, member = %accepted.member, "accepted by a reply to a text");
            core.escalation.wake();
        }
        None => tracing::info!(%sid, "a text reply that accepts nothing"),
    }
    Ok(xml(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever a template or a platform puts in a summary, and whatever a roster calls
        /// a member, the TwiML served is XML Twilio can read, and what it speaks is plain
        /// text of bounded length.
        #[test]
        fn every_prompt_is_well_formed_twiml(
            member in any::<String>(),
            summary in prop_oneof![any::<String>(), "[\\x00-\\x1f\\x7f-\\u{9f}a-z<>&\"' ]{0,500}"],
            number in 1u32..=2,
        ) {
            let xml = twiml::render(&prompt_verbs("https://t.example", "call_1", 6, &member, &summary, number));
            let doc = roxmltree::Document::parse(&xml);
            prop_assert!(doc.is_ok(), "not XML: {:?}\n{xml}", doc.err());
            let verbs = tocsin_twilio_sim::twiml::parse(&xml).map_err(TestCaseError::fail)?;
            let Some(Verb::Gather { say, .. }) = verbs.first() else {
                return Err(TestCaseError::fail(format!("no <Gather> first: {verbs:?}")));
            };
            for text in say {
                prop_assert!(!text.chars().any(char::is_control), "{text:?}");
                prop_assert!(text.chars().count() <= 200 + SPOKEN_NAME_LIMIT + SPOKEN_SUMMARY_LIMIT, "{text:?}");
                prop_assert!(text.ends_with("or star to repeat."), "{text:?}");
            }
        }
    }
}

//! The call loop's driver: dials the next member of every loop that needs one (paced, one
//! call per number at a time, longest waiting loop first), ends the calls of loops that
//! stopped, fires fallbacks, and reads back from Twilio the calls whose news is late.
//!
//! All state is in SQLite ([`crate::store::escalation`]); this task only acts on it, so a
//! restart picks up where the last run stopped.

use crate::app::Core;
use crate::store::escalation::{CallRecord, PendingCall};
use crate::store::seam::CallLoops;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tocsin_domain::call_loop::NotPlaced;
use tocsin_sdk::time::Timestamp;
use tocsin_twilio::{self as twilio, CallStatus, NewCall};
use tokio::sync::Notify;

/// How often unfinished calls are checked for late news.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How soon the driver tries again after an error, and how often a node sharing its
/// database looks for work other nodes made.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long after its ring timeout a call may go without news before Twilio is asked.
const LATE_AFTER: Duration = Duration::from_secs(30);
/// How long a call whose placing request got no answer waits for a callback to claim it.
const LOST_AFTER: Duration = Duration::from_secs(60);

/// The escalation side of the server.
#[derive(Debug)]
pub struct Escalation {
    client: Option<twilio::Client>,
    public_url: String,
    calls_per_second: f64,
    gather_timeout_seconds: u32,
    fallback_url: Option<String>,
    simulated: bool,
    http: reqwest::Client,
    wake: Arc<Notify>,
    silences_changed: AtomicBool,
}

impl Escalation {
    /// Calls through `client` (none: incidents are routed but nobody is phoned), with
    /// webhooks at `public_url`; `simulated` when `client` speaks to the demo's simulator.
    pub fn new(
        client: Option<twilio::Client>,
        simulated: bool,
        public_url: String,
        calls_per_second: f64,
        gather_timeout_seconds: u32,
        fallback_url: Option<String>,
    ) -> Self {
        Self {
            client,
            public_url: public_url.trim_end_matches('/').to_owned(),
            calls_per_second,
            gather_timeout_seconds,
            fallback_url,
            simulated,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client without TLS settings builds"),
            wake: Arc::new(Notify::new()),
            silences_changed: AtomicBool::new(true),
        }
    }

    /// The Twilio account, when calls are placed.
    pub fn account(&self) -> Option<&twilio::Account> {
        self.client.as_ref().map(twilio::Client::account)
    }

    /// Whether calls are placed at all: false without a Twilio account.
    pub fn phoning(&self) -> bool {
        self.client.is_some()
    }

    /// Whether the calls go to the Twilio simulator of `tocsin demo`, not to real phones.
    pub fn simulated(&self) -> bool {
        self.simulated
    }

    /// What phones operators, in the words `/healthz` and `/metrics` use: `twilio`,
    /// `simulated` or `unavailable`.
    pub fn provider(&self) -> &'static str {
        match (&self.client, self.simulated) {
            (None, _) => "unavailable",
            (Some(_), true) => "simulated",
            (Some(_), false) => "twilio",
        }
    }

    /// The base URL Twilio calls back; webhook signatures are checked against it.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Seconds the voice prompt waits for a key.
    pub fn gather_timeout_seconds(&self) -> u32 {
        self.gather_timeout_seconds
    }

    /// Something changed: look for work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A silence or a maintenance window was made, changed or expired: the loops they
    /// hold are looked at again now.
    pub fn silences_changed(&self) {
        self.silences_changed.store(true, Ordering::Relaxed);
        self.wake();
    }

    /// What [`Self::wake`] notifies, for the parts that wake the driver without holding it.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// Spaces outbound calls at most `rate` a second.
struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / rate.max(0.001)),
            next: Instant::now(),
        }
    }

    fn wait(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    fn spend(&mut self) {
        self.next = self.next.max(Instant::now()) + self.interval;
    }
}

/// Runs the loop driver until the task is aborted. It acts when woken (a loop opened,
/// moved or stopped; a callback came) and otherwise sleeps until the next thing due: the
/// pacer's next slot, the next sweep while calls are unfinished, a retry after an error.
/// With nothing due it does no work at all.
pub async fn run(core: Arc<Core>) {
    let Some(client) = core.escalation.client.clone() else {
        return;
    };
    let mut pacer = Pacer::new(core.escalation.calls_per_second);
    let mut seen = HashMap::new();
    let mut last_sweep = Instant::now();
    let mut unfinished = false;
    let mut dialing = false;
    // When what silences next changes (a silence starts or ends, a window opens or closes),
    // on the injected clock; and when silences were last looked at, on the wall clock.
    let mut silences_due: Option<Timestamp> = None;
    let mut last_silencing = Instant::now();
    loop {
        // Of the nodes sharing a database, the one holding the dialer lease drives every
        // loop (crate::cluster); the others wait to take over.
        if !core.cluster.dialing() {
            if dialing {
                tracing::warn!("no longer the dialer: another node drives the call loops");
            }
            dialing = false;
            tokio::select! {
                _ = core.escalation.wake.notified() => {}
                _ = tokio::time::sleep(RETRY_AFTER) => {}
            }
            continue;
        }
        if !dialing {
            // Calls that were under way when this server (or the node that dialed before
            // it) stopped: Twilio knows how they went, and none is dialed again.
            dialing = true;
            core.escalation
                .silences_changed
                .store(true, Ordering::Relaxed);
            seen.clear();
            unfinished = sweep(&core, &client, &mut seen, true).await;
            last_sweep = Instant::now();
        }
        // Silences first, so that the calls they cut are ended in this same pass. Another
        // node may make a silence without waking this one: a shared database is looked at
        // every second.
        let mut retry = false;
        let changed = core
            .escalation
            .silences_changed
            .swap(false, Ordering::Relaxed);
        let due = silences_due.is_some_and(|at| core.clock.now() >= at);
        let polled = core.cluster.is_shared() && last_silencing.elapsed() >= RETRY_AFTER;
        if changed || due || polled {
            last_silencing = Instant::now();
            match silence_loops(&core).await {
                Some(next) => silences_due = next,
                None => {
                    core.escalation
                        .silences_changed
                        .store(true, Ordering::Relaxed);
                    retry = true;
                }
            }
        }
        retry |= !end_stopped_calls(&core, &client).await;
        retry |= !fire_fallbacks(&core).await;
        retry |= !send_texts(&core, &client).await;
        if unfinished && last_sweep.elapsed() >= SWEEP_EVERY {
            unfinished = sweep(&core, &client, &mut seen, false).await;
            last_sweep = Instant::now();
        }
        // Another node may start loops or end calls without waking this one.
        let mut idle = core.cluster.is_shared().then_some(RETRY_AFTER);
        match pacer.wait() {
            wait if wait.is_zero() => match dial_next(&core, &client).await {
                Some(true) => {
                    pacer.spend();
                    unfinished = true;
                    continue;
                }
                Some(false) => {}
                None => retry = true,
            },
            wait => idle = Some(idle.map_or(wait, |i| i.min(wait))),
        }
        if retry {
            idle = Some(idle.map_or(RETRY_AFTER, |i| i.min(RETRY_AFTER)));
        }
        if unfinished {
            let sweep_in = SWEEP_EVERY.saturating_sub(last_sweep.elapsed());
            idle = Some(idle.map_or(sweep_in, |i| i.min(sweep_in)));
        }
        let due = async {
            match idle {
                Some(idle) => tokio::time::sleep(idle).await,
                None => std::future::pending().await,
            }
        };
        let silences = async {
            match silences_due {
                Some(at) => core.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = core.escalation.wake.notified() => {}
            () = due => {}
            () = silences => {}
        }
    }
}

/// Holds the loops that silences and open maintenance windows match, and lets go of those
/// no longer matched. `Some` of when to look again (`Some(None)`: when woken); `None` when
/// the store failed.
async fn silence_loops(core: &Core) -> Option<Option<Timestamp>> {
    match core.store.silence_loops(core.clock.now()).await {
        Ok(pass) => {
            if pass.silenced > 0 {
                tracing::info!(
                    loops = pass.silenced,
                    "silenced: these loops wait, their live calls are ended"
                );
            }
            if pass.resumed > 0 {
                tracing::info!(
                    loops = pass.resumed,
                    "no silence holds these loops any more: they call again"
                );
            }
            Some(pass.next_change)
        }
        Err(e) => {
            tracing::error!(error = %e, "could not apply silences");
            None
        }
    }
}

/// Dials the longest-waiting loop whose next member is not already on a call of ours.
/// `Some(true)` when a call was attempted, `None` when the store could not be read.
async fn dial_next(core: &Core, client: &twilio::Client) -> Option<bool> {
    let next = match core.store.next_call().await {
        Ok(Some(next)) => next,
        Ok(None) => return Some(false),
        Err(e) => {
            tracing::error!(error = %e, "could not read the call queue");
            return None;
        }
    };
    if !core.cluster.dialing() {
        return Some(false);
    }
    let now = core.clock.now();
    let call_id = match core.store.begin_call(&next, now).await {
        Ok(Some(id)) => id,
        Ok(None) => return Some(false),
        Err(e) => {
            tracing::error!(incident = %next.incident_id, error = %e, "could not record a call");
            return None;
        }
    };
    place(core, client, &next, &call_id).await;
    Some(true)
}

async fn place(core: &Core, client: &twilio::Client, pending: &PendingCall, call_id: &str) {
    let member = pending.member();
    let public = &core.escalation.public_url;
    let voice_url = format!("{public}/twilio/voice/{call_id}");
    let status_callback = format!("{public}/twilio/status/{call_id}");
    let request = NewCall {
        to: member.phone.as_str(),
        voice_url: &voice_url,
        status_callback: &status_callback,
        ring_timeout_seconds: pending.roster.ring_timeout_seconds,
    };
    tracing::info!(incident = %pending.incident_id, member = %member.name, step = pending.step,
        loop_ = pending.loop_index() + 1, "calling");
    let result = client.create_call(&request).await;
    let now = core.clock.now();
    let recorded = match result {
        Ok(call) => core
            .store
            .call_placed(call_id, &call.sid, call.status, now)
            .await
            .map(|live| {
                if !live {
                    core.escalation.wake();
                }
            }),
        Err(e @ twilio::Error::Api { .. }) => {
            tracing::warn!(incident = %pending.incident_id, member = %member.name, error = %e, "Twilio refused the call");
            core.store
                .call_not_placed(call_id, NotPlaced::Refused, &e.to_string(), now)
                .await
        }
        Err(e) if e.not_delivered() => {
            tracing::warn!(incident = %pending.incident_id, error = %e, "Twilio could not be reached");
            core.store
                .call_not_placed(call_id, NotPlaced::Refused, &e.to_string(), now)
                .await
        }
        Err(e) => {
            // The request may have reached Twilio: its callbacks will claim the call, or the
            // sweep gives up on it after a while. Either way this step is not dialed again.
            tracing::warn!(incident = %pending.incident_id, error = %e, "no answer from Twilio to a call request");
            Ok(())
        }
    };
    if let Err(e) = recorded {
        tracing::error!(call = %call_id, error = %e, "could not record a call's placing");
    }
    core.escalation.wake();
}

/// Ends the live calls that loops no longer want (the incident closed or resolved, a
/// silence holds it, or the call was placed too late). False when
/// some are left to try again.
async fn end_stopped_calls(core: &Core, client: &twilio::Client) -> bool {
    let calls = match core.store.calls_to_end().await {
        Ok(calls) => calls,
        Err(e) => {
            tracing::error!(error = %e, "could not read calls to end");
            return false;
        }
    };
    let mut done = true;
    for call in calls {
        let Some(sid) = &call.sid else { continue };
        let status = match client.end_call(sid).await {
            Ok(ended) => ended.status,
            Err(twilio::Error::Api { status: 404, .. }) => CallStatus::Completed,
            Err(e) => {
                tracing::warn!(call = %call.id, error = %e, "could not end a call; will retry");
                done = false;
                continue;
            }
        };
        tracing::info!(incident = %call.incident_id, member = %call.member, %sid, "ended the call: its loop no longer wants it");
        if let Err(e) = core
            .store
            .call_end_sent(&call, status, core.clock.now())
            .await
        {
            tracing::error!(call = %call.id, error = %e, "could not record a call's end");
            done = false;
        }
    }
    done
}

/// Asks Twilio about calls whose news is late (all of them, `at_start`), and gives up on
/// calls whose placing request never got an answer nor a callback. `seen` holds when each
/// unfinished call was first seen unfinished (wall time: calls ring in real time, whatever
/// clock the evaluations read). True while calls are unfinished (or could not be read),
/// so another sweep is due.
async fn sweep(
    core: &Core,
    client: &twilio::Client,
    seen: &mut HashMap<String, Instant>,
    at_start: bool,
) -> bool {
    let calls = match core.store.unfinished_calls().await {
        Ok(calls) => calls,
        Err(e) => {
            tracing::error!(error = %e, "could not read unfinished calls");
            return true;
        }
    };
    let unfinished = !calls.is_empty();
    let now = core.clock.now();
    seen.retain(|id, _| calls.iter().any(|c| &c.id == id));
    for call in calls {
        let quiet = seen
            .entry(call.id.clone())
            .or_insert_with(Instant::now)
            .elapsed();
        let ring = Duration::from_secs(u64::from(call.ring_timeout_seconds));
        match &call.sid {
            Some(sid) if at_start || quiet >= ring + LATE_AFTER => {
                read_back(core, client, &call, sid).await
            }
            None if call.status.is_none()
                && (at_start || quiet >= LATE_AFTER)
                && adopt(core, client, &call).await => {}
            None if call.status.is_none() && quiet >= ring + LOST_AFTER => {
                tracing::warn!(call = %call.id, member = %call.member, "no word from Twilio about a call; moving on");
                if let Err(e) = core
                    .store
                    .call_not_placed(
                        &call.id,
                        NotPlaced::Lost,
                        "no word from Twilio about this call",
                        now,
                    )
                    .await
                {
                    tracing::error!(call = %call.id, error = %e, "could not record a lost call");
                }
            }
            _ => {}
        }
    }
    core.escalation.wake();
    unfinished
}

/// How far apart our record of a call and Twilio's may be made, for the one to be the
/// other: the request to place it goes out right after the record is written.
const PLACED_WITHIN: chrono::Duration = chrono::Duration::seconds(30);

/// Finds at Twilio a call whose placing request never got its answer here (the node that
/// asked died, or the answer was lost) and whose callbacks never came: the call to its
/// number made just after it was recorded, as only one call of ours rings a number at a
/// time. Found, its SID and status are recorded as if Twilio had answered, and the loop
/// goes on from there; the step is not dialed again. True when found.
async fn adopt(core: &Core, client: &twilio::Client, call: &CallRecord) -> bool {
    let calls = match client.calls_to(&call.phone).await {
        Ok(calls) => calls,
        Err(e) => {
            tracing::warn!(call = %call.id, error = %e, "could not list Twilio's calls to look for a call");
            return false;
        }
    };
    // Twilio's times are to the second.
    let from = call.created_at - chrono::Duration::seconds(1);
    let found = calls.into_iter().find(|c| {
        c.date_created
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .is_some_and(|d| d >= from && d <= call.created_at + PLACED_WITHIN)
    });
    let Some(found) = found else {
        return false;
    };
    let now = core.clock.now();
    let recorded = async {
        core.store
            .call_placed(&call.id, &found.sid, CallStatus::Queued, now)
            .await?;
        core.store
            .call_status(&call.id, &found.sid, found.status, now)
            .await
    };
    match recorded.await {
        Ok(_) => {
            tracing::info!(call = %call.id, sid = %found.sid, status = found.status.as_str(), "found at Twilio a call whose placing was never answered here");
            true
        }
        Err(e) => {
            tracing::error!(call = %call.id, error = %e, "could not record a call found at Twilio");
            false
        }
    }
}

async fn read_back(core: &Core, client: &twilio::Client, call: &CallRecord, sid: &str) {
    match client.fetch_call(sid).await {
        Ok(fetched) => {
            match core
                .store
                .call_status(&call.id, sid, fetched.status, core.clock.now())
                .await
            {
                Ok(true) => {
                    tracing::info!(call = %call.id, status = fetched.status.as_str(), "caught up with a call's status from Twilio")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(call = %call.id, error = %e, "could not record a call's status")
                }
            }
        }
        Err(e) => {
            tracing::warn!(call = %call.id, error = %e, "could not read a call back from Twilio")
        }
    }
}

/// POSTs each exhausted loop's fallback once and records what came of it. False when the
/// store could not be read or written, to try again.
async fn fire_fallbacks(core: &Core) -> bool {
    let fallbacks = match core.store.pending_fallbacks().await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "could not read pending fallbacks");
            return false;
        }
    };
    let mut done = true;
    for fallback in fallbacks {
        let url = fallback
            .url
            .clone()
            .or_else(|| core.escalation.fallback_url.clone());
        let (sent, detail) = match &url {
            None => (
                false,
                serde_json::json!({"reason": "no fallbackUrl on the roster and no TOCSIN_FALLBACK_URL"}),
            ),
            Some(url) => {
                let body = serde_json::json!({
                    "event": "escalation.exhausted",
                    "incidentId": fallback.incident_id,
                    "rosterId": fallback.roster.id,
                    "roster": fallback.roster.name,
                    "loops": fallback.roster.loops,
                    "calls": fallback.roster.loops as usize * fallback.roster.members.len(),
                });
                match core.escalation.http.post(url).json(&body).send().await {
                    Ok(r) if r.status().is_success() => (
                        true,
                        serde_json::json!({"url": url, "status": r.status().as_u16()}),
                    ),
                    Ok(r) => (
                        false,
                        serde_json::json!({"url": url, "status": r.status().as_u16()}),
                    ),
                    Err(e) => (
                        false,
                        serde_json::json!({"url": url, "error": e.to_string()}),
                    ),
                }
            }
        };
        if sent {
            tracing::warn!(incident = %fallback.incident_id, "nobody accepted; fallback fired");
        } else {
            tracing::error!(incident = %fallback.incident_id, %detail, "nobody accepted and the fallback failed");
        }
        if let Err(e) = core
            .store
            .fallback_fired(&fallback.incident_id, sent, detail, core.clock.now())
            .await
        {
            tracing::error!(incident = %fallback.incident_id, error = %e, "could not record a fallback");
            done = false;
        }
    }
    done
}

/// Texts members whose calls they missed (rosters with `sms: on-miss`). Each text is
/// claimed before Twilio is asked, so none is sent twice, even across a crash (one whose
/// sender died mid-request stays unsent: at most once). False when the store failed.
async fn send_texts(core: &Core, client: &twilio::Client) -> bool {
    let texts = match core.store.texts_to_send().await {
        Ok(texts) => texts,
        Err(e) => {
            tracing::error!(error = %e, "could not read texts to send");
            return false;
        }
    };
    let mut done = true;
    for text in texts {
        match core.store.text_sending(&text.id, core.clock.now()).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(text = %text.id, error = %e, "could not claim a text");
                done = false;
                continue;
            }
        }
        let sent = client.create_message(&text.phone, &text.body).await;
        let result = match &sent {
            Ok(message) => {
                tracing::info!(incident = %text.incident_id, member = %text.member, sid = %message.sid, "texted a missed call");
                Ok(message.sid.as_str())
            }
            Err(e) => {
                tracing::warn!(incident = %text.incident_id, member = %text.member, error = %e, "could not text a missed call");
                Err(e.to_string())
            }
        };
        let result = result.as_ref().map(|s| *s).map_err(String::as_str);
        if let Err(e) = core.store.text_done(&text, result, core.clock.now()).await {
            tracing::error!(text = %text.id, error = %e, "could not record a text");
            done = false;
        }
    }
    done
}

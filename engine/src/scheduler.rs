//! Evaluates every active alert on its interval, since time alone can breach a condition
//! (invoices age, windows slide), and ends alerts whose validity runs out.

use crate::app::Core;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tocsin_sdk::time::Timestamp;
use tokio::sync::Notify;

/// When each alert is next due.
#[derive(Debug, Default)]
pub struct Schedule {
    inner: Mutex<Inner>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    /// Alert ids (one allocation for both indexes) by when they are due.
    queue: BTreeSet<(Timestamp, Arc<str>)>,
    due: HashMap<Arc<str>, Timestamp>,
}

impl Schedule {
    /// Makes `alert_id` due at `at`, replacing any earlier plan for it.
    pub fn set(&self, alert_id: &str, at: Timestamp) {
        let mut inner = self.inner.lock().expect("schedule lock");
        let id = match inner.due.get_key_value(alert_id) {
            Some((id, _)) => id.clone(),
            None => alert_id.into(),
        };
        if let Some(old) = inner.due.insert(id.clone(), at) {
            inner.queue.remove(&(old, id.clone()));
        }
        inner.queue.insert((at, id));
        drop(inner);
        self.changed.notify_one();
    }

    /// Stops scheduling `alert_id`.
    pub fn remove(&self, alert_id: &str) {
        let mut inner = self.inner.lock().expect("schedule lock");
        if let Some((id, old)) = inner.due.remove_entry(alert_id) {
            inner.queue.remove(&(old, id));
        }
    }

    fn next(&self) -> Option<Timestamp> {
        self.inner
            .lock()
            .expect("schedule lock")
            .queue
            .first()
            .map(|(at, _)| *at)
    }

    fn take_due(&self, now: Timestamp) -> Vec<String> {
        let mut inner = self.inner.lock().expect("schedule lock");
        let mut due = Vec::new();
        while let Some((at, _)) = inner.queue.first() {
            if *at > now {
                break;
            }
            let (_, id) = inner.queue.pop_first().expect("not empty");
            inner.due.remove(&id);
            due.push(id.to_string());
        }
        due
    }
}

/// Runs the scheduler until the server stops.
pub async fn run(core: Arc<Core>) {
    loop {
        let next = core.schedule.next();
        tokio::select! {
            () = async {
                match next {
                    Some(at) => core.clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            () = core.schedule.changed.notified() => continue,
        }
        let now = core.clock.now();
        for alert_id in core.schedule.take_due(now) {
            tick(&core, &alert_id, now).await;
        }
    }
}

/// One alert's turn: expire it, or evaluate it and plan the next turn.
async fn tick(core: &Core, alert_id: &str, now: Timestamp) {
    let Some(alert) = core.catalog.get(alert_id) else {
        return;
    };
    // Another node holds the alert and takes its turns; this one looks again later, in
    // case it takes the alert over (it then evaluates it at once, see `Core::took_over`).
    if !core.cluster.holds(alert_id) {
        core.schedule
            .set(alert_id, crate::app::later(now, alert.interval()));
        return;
    }
    if alert.valid_until.is_some_and(|until| now >= until) {
        core.expire(&alert).await;
        return;
    }
    if alert.is_live(now) {
        core.evaluate_on_schedule(&alert).await;
        core.schedule
            .set(alert_id, crate::app::later(now, alert.interval()));
    }
}

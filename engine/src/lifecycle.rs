//! The incident lifecycle, in one place: open, update, acknowledge, close, resolve, expire.
//!
//! Each step has a database side and an announcing side. The database side is one
//! function of the store, run in the transaction that records the step: it writes the
//! incident and its timeline, and starts or stops its call loop
//! ([`crate::store::incidents::apply_findings`] opens, updates and resolves, and stops a
//! resolved incident's loop; [`crate::store::Store::close_incident`] closes by API or
//! expiry and stops the loop; the call loop's acceptance acknowledges). The announcing side
//! is [`Lifecycle`], told once the transaction commits: it counts, logs, broadcasts, and
//! wakes the escalation driver, which dials the new loops and hangs up the calls of stopped
//! ones. No handler or evaluator repeats any of it.

use crate::metrics::Metrics;
use crate::store::incidents::{Change, Incident};
use crate::store::{self, Store};
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use tocsin_sdk::time::Timestamp;
use tokio::sync::{Notify, broadcast};

/// An incident changed status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentEvent {
    /// An evaluation opened it.
    Opened {
        /// The incident.
        incident_id: String,
        /// Its alert.
        alert_id: String,
        /// The finding's subject.
        subject: String,
    },
    /// It closed, by resolution, API or expiry.
    Closed {
        /// The incident.
        incident_id: String,
    },
}

/// Tells the rest of the server that incidents opened or closed.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    events: broadcast::Sender<IncidentEvent>,
    opened: Counter,
    closed: Counter,
    escalation: Arc<Notify>,
}

impl Lifecycle {
    /// Counts in `metrics`, and wakes the escalation driver through `escalation`.
    pub fn new(metrics: &Metrics, escalation: Arc<Notify>) -> Self {
        Self {
            events: broadcast::channel(1024).0,
            opened: metrics.incidents_opened.clone(),
            closed: metrics.incidents_closed.clone(),
            escalation,
        }
    }

    /// Incidents opening and closing, for whoever listens (benchmarks, tests).
    pub fn subscribe(&self) -> broadcast::Receiver<IncidentEvent> {
        self.events.subscribe()
    }

    /// Evaluations' changes were committed: `changes[i]` came of a finding of `alerts[i]`
    /// about `subjects[i]`.
    pub fn evaluated<'a>(&self, changes: impl IntoIterator<Item = (Change, &'a str, String)>) {
        let mut woke = false;
        for (change, alert_id, subject) in changes {
            match change {
                Change::Opened(id) => {
                    self.opened.inc();
                    tracing::info!(incident = %id, alert = %alert_id, %subject, "incident opened");
                    let _ = self.events.send(IncidentEvent::Opened {
                        incident_id: id,
                        alert_id: alert_id.to_owned(),
                        subject,
                    });
                }
                Change::Resolved(id) => {
                    self.closed.inc();
                    tracing::info!(incident = %id, alert = %alert_id, %subject, "incident resolved");
                    let _ = self.events.send(IncidentEvent::Closed { incident_id: id });
                }
                Change::Updated(_) | Change::None => continue,
            }
            woke = true;
        }
        if woke {
            self.escalation.notify_one();
        }
    }

    /// Closes an incident by API (`by` a key id, `kind` `closed`) or because its alert's
    /// validity ended (`kind` `expired`), and announces it. `Ok(None)` when there is no
    /// such incident; closing a closed one changes and announces nothing.
    pub async fn close(
        &self,
        store: &Store,
        id: &str,
        at: Timestamp,
        by: &str,
        kind: &str,
    ) -> store::Result<Option<Incident>> {
        let Some((incident, closed)) = store.close_incident(id, at, by, kind).await? else {
            return Ok(None);
        };
        if closed {
            self.closed.inc();
            tracing::info!(incident = %id, %by, how = %kind, "incident closed");
            let _ = self.events.send(IncidentEvent::Closed {
                incident_id: id.to_owned(),
            });
            self.escalation.notify_one();
        }
        Ok(Some(incident))
    }
}

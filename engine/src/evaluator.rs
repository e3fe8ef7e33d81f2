//! Evaluates alerts: runs the template in the sandbox, answers its queries from the store,
//! and turns its findings into incident changes.
//!
//! Work arrives as alert ids on a queue that holds each id once. Each alert always goes to
//! the same worker, so one alert is never evaluated twice at the same time; an alert
//! queued again while it runs is evaluated again afterwards, seeing the newer data.

use crate::app::Core;
use crate::registry::Registered;
use crate::store::alerts::{Alert, EvaluationProblem, LastEvaluation};
use crate::store::incidents::{Change, Observation};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tocsin_sdk::testing::run;
use tocsin_sdk::{Context, Query, RawFinding, Verdict};
use tokio::sync::mpsc;

/// Most alert ids a worker takes off its queue at once.
const BATCH: usize = 256;

/// The evaluation queue.
#[derive(Debug)]
pub struct Queue {
    pending: Mutex<HashSet<String>>,
    workers: Vec<mpsc::UnboundedSender<String>>,
}

impl Queue {
    /// A queue feeding `workers` workers; returns the receivers to run them with.
    pub fn new(workers: usize) -> (Self, Vec<mpsc::UnboundedReceiver<String>>) {
        let (senders, receivers) = (0..workers.max(1))
            .map(|_| mpsc::unbounded_channel())
            .unzip();
        (
            Self {
                pending: Mutex::new(HashSet::new()),
                workers: senders,
            },
            receivers,
        )
    }

    /// Queues an alert unless it is already waiting.
    pub fn push(&self, alert_id: &str) {
        if !self
            .pending
            .lock()
            .expect("queue lock")
            .insert(alert_id.to_owned())
        {
            return;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        alert_id.hash(&mut hasher);
        let worker = (hasher.finish() % self.workers.len() as u64) as usize;
        // A closed channel means the server is shutting down; the work is moot.
        let _ = self.workers[worker].send(alert_id.to_owned());
    }

    fn taken(&self, alert_id: &str) {
        self.pending.lock().expect("queue lock").remove(alert_id);
    }
}

/// Runs one worker until the queue closes.
pub async fn work(core: Arc<Core>, mut queue: mpsc::UnboundedReceiver<String>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        for alert_id in batch.drain(..) {
            core.queue.taken(&alert_id);
            if let Some(alert) = core.catalog.get(&alert_id) {
                evaluate(&core, &alert).await;
            }
        }
    }
}

/// What a run of the template produced.
struct Outcome {
    queries: Vec<Query>,
    result: Result<Vec<RawFinding>, String>,
}

fn run_template(
    core: &Core,
    template: Option<&Registered>,
    alert: &Alert,
    ctx: &Context,
) -> Outcome {
    let Some(template) = template else {
        return Outcome {
            queries: Vec::new(),
            result: Err(format!("template {} is not registered", alert.template_id)),
        };
    };
    let mut instance = match template.plugin.instance() {
        Ok(instance) => instance,
        Err(e) => {
            return Outcome {
                queries: Vec::new(),
                result: Err(e.to_string()),
            };
        }
    };
    let params = alert.parameters.to_string();
    let handle = tokio::runtime::Handle::current();
    let mut queries = Vec::new();
    // The sandbox call is synchronous CPU work bounded by its deadline; answering a query
    // is a database read. Both run on this worker thread, which tokio hands its other
    // tasks off of meanwhile.
    let result = tokio::task::block_in_place(|| {
        run(&mut instance, &params, ctx, &mut |_, query| {
            queries.push(query.clone());
            handle
                .block_on(core.store.answer(query))
                .map_err(|e| e.to_string())
        })
    });
    Outcome {
        queries,
        result: result.map(|run| run.findings).map_err(|e| e.to_string()),
    }
}

/// Evaluates one alert now and records everything it changed.
pub async fn evaluate(core: &Core, alert: &Alert) {
    let started = Instant::now();
    let now = core.clock.now();
    if !alert.is_live(now) {
        return;
    }
    let ctx = Context {
        alert_id: alert.id.clone(),
        now,
        owner_id: alert.owner_id(),
        entity_id: alert.entity_id(),
    };
    let template = core.registry.get(&alert.template_id);
    let outcome = run_template(core, template.as_deref(), alert, &ctx);
    core.metrics.evaluations.inc();
    let auto_resolvable = template
        .as_ref()
        .is_some_and(|t| t.plugin.info().auto_resolvable);
    let template_version = template.map(|t| t.plugin.info().version.clone());
    let mut problems = Vec::new();
    let last = match &outcome.result {
        Err(message) => {
            core.metrics.evaluation_failures.inc();
            tracing::warn!(alert = %alert.id, template = %alert.template_id, error = %message, "evaluation failed");
            problems.push(EvaluationProblem {
                at: now,
                outcome: "error".into(),
                subject: None,
                message: message.clone(),
            });
            LastEvaluation {
                at: now,
                outcome: "error".into(),
                message: Some(message.clone()),
                template_version,
            }
        }
        Ok(findings) => {
            for finding in findings {
                let breached = match &finding.verdict {
                    Verdict::NoData(reason) => {
                        problems.push(EvaluationProblem {
                            at: now,
                            outcome: "noData".into(),
                            subject: Some(finding.subject.clone()),
                            message: reason.clone(),
                        });
                        continue;
                    }
                    Verdict::Breached => true,
                    Verdict::Clear => false,
                };
                let observation = Observation {
                    alert_id: &alert.id,
                    alert_version: alert.version,
                    template_id: &alert.template_id,
                    valid_until: alert.valid_until,
                    subject: &finding.subject,
                    breached,
                    auto_resolvable,
                    report: &finding.report,
                    summary: &finding.summary,
                    at: now,
                };
                match core.store.apply_finding(&observation).await {
                    Ok(Change::Opened(id)) => {
                        core.metrics.incidents_opened.inc();
                        tracing::info!(incident = %id, alert = %alert.id, subject = %finding.subject, summary = %finding.summary, "incident opened");
                        core.incident_opened(&id);
                    }
                    Ok(Change::Resolved(id)) => {
                        core.metrics.incidents_closed.inc();
                        tracing::info!(incident = %id, alert = %alert.id, subject = %finding.subject, "incident resolved");
                    }
                    Ok(Change::Updated(_) | Change::None) => {}
                    Err(e) => {
                        tracing::error!(alert = %alert.id, error = %e, "could not record a finding")
                    }
                }
            }
            match problems.first() {
                Some(p) => LastEvaluation {
                    at: now,
                    outcome: "noData".into(),
                    message: Some(p.message.clone()),
                    template_version,
                },
                None => LastEvaluation {
                    at: now,
                    outcome: "ok".into(),
                    message: None,
                    template_version,
                },
            }
        }
    };
    core.catalog.set_dependencies(&alert.id, &outcome.queries);
    if let Err(e) = core
        .store
        .record_evaluation(&alert.id, &last, &outcome.queries, &problems)
        .await
    {
        tracing::error!(alert = %alert.id, error = %e, "could not record an evaluation");
    }
    if let Some(mut updated) = core.catalog.get(&alert.id).map(|a| (*a).clone()) {
        updated.last_evaluation = Some(last);
        updated.dependencies = outcome.queries;
        core.catalog.put(updated);
    }
    core.metrics
        .evaluation_seconds
        .observe(started.elapsed().as_secs_f64());
}

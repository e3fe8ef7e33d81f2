//! Evaluates alerts: runs the template in the sandbox, answers its queries from the store,
//! and turns its findings into incident changes.
//!
//! Work arrives on a queue that holds each piece once: an alert to evaluate whole, or an
//! alert to evaluate for one entity that changed (narrowed: an integration's alert over
//! thousands of alarms judges only the alarm that moved). Each alert always goes to the
//! same worker, so one alert is never evaluated twice at the same time; an alert queued
//! again while it runs is evaluated again afterwards, seeing the newer data. A worker takes
//! what is waiting (up to a batch), evaluates it, and records every result in one
//! transaction: one durable commit per batch, not per alert.
//!
//! A narrowed run must keep to its entity: every query about it, every finding about it.
//! One that does not is discarded, the alert evaluated whole, and never narrowed again. One
//! that fails is recorded as that entity's failure, and the alert stays narrowed.

use crate::app::Core;
use crate::registry::Registered;
use crate::sandbox::Instance;
use crate::store::alerts::{
    Alert, EvaluationBatch, EvaluationProblem, EvaluationRecord, LastEvaluation,
};
use crate::store::incidents::{Change, Observation};
use crate::store::postgres::cluster::Forwarded;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tocsin_sdk::protocol::run;
use tocsin_sdk::time::Timestamp;
use tocsin_sdk::{Answer, Context, Entity, Query, RawFinding, Verdict};
use tokio::sync::mpsc;

/// Most alert ids a worker takes off its queue at once.
const BATCH: usize = 256;

/// An evaluation to run: an alert, whole or for one entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Work {
    /// The alert.
    pub alert_id: String,
    /// The entity that changed, when only it needs judging.
    pub entity_id: Option<String>,
}

/// The evaluation queue.
#[derive(Debug)]
pub struct Queue {
    cluster: Arc<crate::cluster::Cluster>,
    pending: Mutex<HashSet<Work>>,
    /// Alerts whose template did not keep to the entity of a narrowed run.
    whole_only: Mutex<HashSet<String>>,
    workers: Vec<mpsc::UnboundedSender<Work>>,
}

impl Queue {
    /// A queue feeding `workers` workers; returns the receivers to run them with. Work for
    /// an alert that another node of the `cluster` holds is forwarded to it instead.
    pub fn new(
        workers: usize,
        cluster: Arc<crate::cluster::Cluster>,
    ) -> (Self, Vec<mpsc::UnboundedReceiver<Work>>) {
        let (senders, receivers) = (0..workers.max(1))
            .map(|_| mpsc::unbounded_channel())
            .unzip();
        (
            Self {
                cluster,
                pending: Mutex::new(HashSet::new()),
                whole_only: Mutex::new(HashSet::new()),
                workers: senders,
            },
            receivers,
        )
    }

    /// Queues an alert's whole evaluation unless it is already waiting.
    pub fn push(&self, alert_id: &str) {
        self.send(Work {
            alert_id: alert_id.to_owned(),
            entity_id: None,
        });
    }

    /// Queues an alert's evaluation for one changed entity, unless that or the whole
    /// alert is already waiting. Alerts that cannot be narrowed are queued whole.
    pub fn push_entity(&self, alert_id: &str, entity_id: &str) {
        if !self.narrows(alert_id) {
            return self.push(alert_id);
        }
        self.send(Work {
            alert_id: alert_id.to_owned(),
            entity_id: Some(entity_id.to_owned()),
        });
    }

    fn send(&self, work: Work) {
        if !self.cluster.holds(&work.alert_id) {
            return self.cluster.forward(Forwarded::Alert(work.alert_id));
        }
        {
            let mut pending = self.pending.lock().expect("queue lock");
            let whole = Work {
                alert_id: work.alert_id.clone(),
                entity_id: None,
            };
            if pending.contains(&whole) || !pending.insert(work.clone()) {
                return;
            }
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        work.alert_id.hash(&mut hasher);
        let worker = (hasher.finish() % self.workers.len() as u64) as usize;
        // A closed channel means the server is shutting down; the work is moot.
        let _ = self.workers[worker].send(work);
    }

    /// Whether the alert's runs may still be narrowed to one entity.
    pub fn narrows(&self, alert_id: &str) -> bool {
        !self
            .whole_only
            .lock()
            .expect("queue lock")
            .contains(alert_id)
    }

    /// Stops narrowing an alert, and queues it whole.
    fn narrowing_failed(&self, alert_id: &str) {
        self.whole_only
            .lock()
            .expect("queue lock")
            .insert(alert_id.to_owned());
        self.push(alert_id);
    }

    /// How many alerts wait to be evaluated.
    pub fn len(&self) -> usize {
        self.pending.lock().expect("queue lock").len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn taken(&self, work: &Work) {
        let mut pending = self.pending.lock().expect("queue lock");
        pending.remove(work);
        // A burst (every alert at start) leaves a large table behind; give it back.
        if pending.is_empty() && pending.capacity() > 4096 {
            pending.shrink_to_fit();
        }
    }
}

/// Starts one task per worker queue and the recorder they share; the handles of all.
///
/// Evaluating a batch (the sandbox, on a worker's thread) and recording the ones before it
/// (on `recorder_runtime`, beside the group commit of pushed data) overlap. The recorder
/// takes every batch that waits, from all workers, into one transaction (none at all when
/// only times changed): the writer connection then spends one commit on what would
/// otherwise take one per worker, and the ingest commits waiting behind it wait less.
/// Each worker's batches are recorded in the order it made them, so each is applied to what
/// the ones before it left; different workers never share an alert.
pub fn start(
    core: &Arc<Core>,
    queues: Vec<mpsc::UnboundedReceiver<Work>>,
    recorder_runtime: &tokio::runtime::Handle,
) -> Vec<tokio::task::JoinHandle<()>> {
    // Each worker may be one batch ahead of the recorder.
    let ahead = queues.len().max(1);
    let (to_record, evaluated) = mpsc::channel::<Vec<Evaluated>>(ahead);
    let mut tasks = vec![recorder_runtime.spawn(record_all(core.clone(), evaluated, ahead))];
    tasks.extend(
        queues
            .into_iter()
            .map(|queue| tokio::spawn(work(core.clone(), queue, to_record.clone()))),
    );
    tasks
}

/// Records batches as they come, every batch waiting merged into one; saves the last
/// evaluation times that alone changed [`TIMES_SAVED_EVERY`] after the first of them (no
/// timer runs while none waits).
async fn record_all(core: Arc<Core>, mut evaluated: mpsc::Receiver<Vec<Evaluated>>, ahead: usize) {
    let mut waiting = Vec::with_capacity(ahead);
    let mut save_at: Option<tokio::time::Instant> = None;
    loop {
        let save = async {
            match save_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            taken = evaluated.recv_many(&mut waiting, ahead) => {
                if taken == 0 {
                    break;
                }
                record(&core, waiting.drain(..).flatten().collect()).await;
                if save_at.is_none() && core.catalog.has_unsaved_times() {
                    save_at = Some(tokio::time::Instant::now() + TIMES_SAVED_EVERY);
                }
            }
            () = save => {
                save_at = None;
                save_times(&core).await;
                if core.catalog.has_unsaved_times() {
                    save_at = Some(tokio::time::Instant::now() + TIMES_SAVED_EVERY);
                }
            }
        }
    }
    save_times(&core).await;
}

/// How long an alert's last evaluation time may go unsaved when nothing else about the
/// evaluation changed. A crash loses at most this much of it: the alert is then evaluated
/// again that much sooner after the restart.
pub const TIMES_SAVED_EVERY: Duration = Duration::from_secs(2);

/// Saves the last evaluation times that alone changed (see [`only_times_change`]).
pub async fn save_times(core: &Core) {
    let times = core.catalog.take_unsaved_times();
    if let Err(e) = core.store.save_evaluation_times(&times).await {
        tracing::warn!(error = %e, alerts = times.len(), "could not save last evaluation times; trying again");
        for (id, _) in &times {
            core.catalog.time_unsaved(id);
        }
    }
}

/// Whether recording the batch would change nothing stored but each alert's last
/// evaluation time: every run clear and complete, with the outcome, message, template
/// version and reads its alert already has, and no incident open for a subject it judged.
/// That is the usual evaluation, and it then needs no write transaction: the times are
/// saved together, every [`TIMES_SAVED_EVERY`] and at shutdown.
async fn only_times_change(
    core: &Core,
    batch: &[Evaluated],
    observations: &[Observation<'_>],
) -> bool {
    let unchanged = observations.iter().all(|o| !o.breached)
        && batch.iter().all(|e| {
            e.problems.is_empty()
                && e.alert.last_evaluation.as_ref().is_some_and(|before| {
                    before.outcome == e.last.outcome
                        && before.message == e.last.message
                        && before.template_version == e.last.template_version
                })
                && (e.narrowed_to.is_some()
                    || core.catalog.reads_as_recorded(&e.alert.id, &e.queries))
        });
    if !unchanged {
        return false;
    }
    // Only this recorder opens incidents, so none opens between this read and the next
    // batch; one closed meanwhile (by the API) only makes the answer more true.
    let pairs: Vec<(&str, &str)> = observations
        .iter()
        .map(|o| (o.alert_id, o.subject))
        .collect();
    matches!(core.store.any_unclosed(&pairs).await, Ok(false))
}

/// Runs one worker until the queue closes.
async fn work(
    core: Arc<Core>,
    mut queue: mpsc::UnboundedReceiver<Work>,
    to_record: mpsc::Sender<Vec<Evaluated>>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        // Taken before anything is read: a change from now on queues its alert again.
        for work in &batch {
            core.queue.taken(work);
        }
        // A whole evaluation covers the narrowed ones of its alert.
        let whole: HashSet<String> = batch
            .iter()
            .filter(|w| w.entity_id.is_none())
            .map(|w| w.alert_id.clone())
            .collect();
        let mut runs: Vec<(Arc<Alert>, Option<String>)> = batch
            .drain(..)
            .filter(|w| w.entity_id.is_none() || !whole.contains(&w.alert_id))
            .filter_map(|w| Some((core.catalog.get(&w.alert_id)?, w.entity_id)))
            .collect();
        // A template's alerts side by side, and each alert's runs side by side (in queue
        // order), so that the runs that may share an instance follow one another.
        runs.sort_by(|(a, _), (b, _)| (&a.template_id, &a.id).cmp(&(&b.template_id, &b.id)));
        let known = match Prefetched::read(&core, &runs).await {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the batch's entities ahead; each run reads its own");
                Prefetched::default()
            }
        };
        // The sandbox calls are synchronous CPU work bounded by their deadlines, and the
        // queries not read ahead are database reads: all run on this worker thread, which
        // tokio hands its other tasks off of meanwhile.
        let evaluated = tokio::task::block_in_place(|| {
            let mut warm = Warm::default();
            runs.into_iter()
                .filter_map(|(alert, entity)| {
                    evaluate(&core, alert, entity.as_deref(), &known, &mut warm)
                })
                .collect()
        });
        if to_record.send(evaluated).await.is_err() {
            break;
        }
    }
}

/// The entities a batch's runs will ask for, read in one go rather than in as many trips
/// to the database as runs: a narrowed run asks for its own entity, and a whole run most
/// likely for the owners' entities its last evaluation read.
#[derive(Debug, Default)]
struct Prefetched {
    /// (entity type, entity id) read ahead, whether or not it exists.
    asked: HashSet<(String, String)>,
    found: HashMap<(String, String), Entity>,
    /// (entity type, owner id) read ahead: that owner's entities of the type, in id order.
    owned: HashMap<(String, String), Vec<Entity>>,
}

impl Prefetched {
    async fn read(
        core: &Core,
        runs: &[(Arc<Alert>, Option<String>)],
    ) -> crate::store::Result<Self> {
        let asked: HashSet<(String, String)> = runs
            .iter()
            .filter_map(|(alert, entity)| {
                let template = core.registry.get(&alert.template_id)?;
                let entity_type = template.plugin.info().entity_type.clone()?;
                Some((entity_type, entity.clone()?))
            })
            .collect();
        let keys: Vec<(&str, &str)> = asked
            .iter()
            .map(|(t, id)| (t.as_str(), id.as_str()))
            .collect();
        let found = core
            .store
            .entities_by_key(&keys)
            .await?
            .into_iter()
            .map(|e| ((e.entity_type.clone(), e.entity_id.clone()), e))
            .collect();
        let owners: HashSet<(String, String)> = runs
            .iter()
            .filter(|(_, entity)| entity.is_none())
            .flat_map(|(alert, _)| core.catalog.entity_owners_read(&alert.id))
            .collect();
        let mut owned: HashMap<(String, String), Vec<Entity>> =
            owners.into_iter().map(|pair| (pair, Vec::new())).collect();
        let pairs: Vec<(&str, &str)> = owned
            .keys()
            .map(|(t, o)| (t.as_str(), o.as_str()))
            .collect();
        for entity in core.store.entities_by_owner(&pairs).await? {
            let Some(owner) = entity.owner_id.clone() else {
                continue;
            };
            if let Some(entities) = owned.get_mut(&(entity.entity_type.clone(), owner)) {
                entities.push(entity);
            }
        }
        Ok(Self {
            asked,
            found,
            owned,
        })
    }

    /// The answer to an entity query from what was read ahead, as the store would give it.
    fn answer(&self, query: &Query) -> Option<Answer> {
        let Query::Entities(q) = query else {
            return None;
        };
        let matches = |e: &&Entity| {
            q.owner_type
                .as_ref()
                .is_none_or(|t| e.owner_type.as_ref() == Some(t))
                && q.owner_id
                    .as_ref()
                    .is_none_or(|o| e.owner_id.as_ref() == Some(o))
                && q.entity_id.as_ref().is_none_or(|id| e.entity_id == *id)
        };
        if let Some(id) = &q.entity_id {
            let key = (q.entity_type.clone(), id.clone());
            if self.asked.contains(&key) {
                return Some(Answer::Entities(
                    self.found
                        .get(&key)
                        .filter(matches)
                        .cloned()
                        .into_iter()
                        .collect(),
                ));
            }
        }
        let owned = self
            .owned
            .get(&(q.entity_type.clone(), q.owner_id.clone()?))?;
        Some(Answer::Entities(
            owned.iter().filter(matches).cloned().collect(),
        ))
    }
}

/// One alert's evaluation, waiting to be recorded.
struct Evaluated {
    alert: Arc<Alert>,
    /// The entity the run was narrowed to: the alert's dependencies are not replaced.
    narrowed_to: Option<String>,
    started: Instant,
    now: Timestamp,
    auto_resolvable: bool,
    queries: Vec<Query>,
    findings: Vec<RawFinding>,
    problems: Vec<EvaluationProblem>,
    last: LastEvaluation,
}

/// The instance of the run before, kept for the next run of the batch when that may use it.
///
/// A built-in template's instance serves every alert of the template in the batch, whoever
/// owns them. A built-in keeps nothing from one evaluation for the next: the parameters it
/// last parsed are used again only for the same text, and what it freed is never read
/// again (safe Rust, built from this repository). An uploaded template's code may keep
/// anything, so its instance serves only one alert's runs (the narrowed runs of its
/// entities): no state crosses from one tenant's alert to another's. A failure retires an
/// instance either way.
#[derive(Default)]
struct Warm {
    /// The alert the instance is kept for; `None` for any alert of a built-in.
    alert_id: Option<String>,
    digest: String,
    instance: Option<Instance>,
}

impl Warm {
    /// Whose runs may share an instance: every alert of a built-in, else one alert.
    fn scope<'a>(template: &Registered, alert_id: &'a str) -> Option<&'a str> {
        (!template.stored.builtin).then_some(alert_id)
    }

    /// The kept instance if it may serve this run of this plugin, else a fresh one.
    fn take(&mut self, template: &Registered, alert_id: &str) -> crate::sandbox::Result<Instance> {
        let plugin = &template.plugin;
        match self.instance.take() {
            Some(instance)
                if self.alert_id.as_deref() == Self::scope(template, alert_id)
                    && self.digest == plugin.digest() =>
            {
                Ok(instance)
            }
            _ => plugin.instance(),
        }
    }

    /// Keeps an instance that is still sound for the next run it may serve.
    fn keep(&mut self, template: &Registered, alert_id: &str, instance: Instance) {
        if !instance.is_poisoned() {
            self.alert_id = Self::scope(template, alert_id).map(str::to_owned);
            template.plugin.digest().clone_into(&mut self.digest);
            self.instance = Some(instance);
        }
    }
}

/// Runs the template, answering its queries from the store.
fn run_template(
    core: &Core,
    template: Option<&Registered>,
    alert: &Alert,
    ctx: &Context,
    known: &Prefetched,
    warm: &mut Warm,
) -> (Vec<Query>, Result<Vec<RawFinding>, String>) {
    let Some(template) = template else {
        return (
            Vec::new(),
            Err(format!("template {} is not registered", alert.template_id)),
        );
    };
    let mut instance = match warm.take(template, &alert.id) {
        Ok(instance) => instance,
        Err(e) => return (Vec::new(), Err(e.to_string())),
    };
    let params = alert.parameters.get();
    let handle = tokio::runtime::Handle::current();
    let mut queries = Vec::new();
    let result = run(&mut instance, params, ctx, &mut |_, query| {
        queries.push(query.clone());
        match known.answer(query) {
            Some(answer) => Ok(answer),
            None => handle
                .block_on(core.store.answer(query))
                .map_err(|e| e.to_string()),
        }
    });
    warm.keep(template, &alert.id, instance);
    (
        queries,
        result.map(|run| run.findings).map_err(|e| e.to_string()),
    )
}

/// Whether a query reads only data about `entity_id`.
fn about(query: &Query, entity_id: &str) -> bool {
    let scope = match query {
        Query::Entities(q) => &q.entity_id,
        Query::Events(q) => &q.entity_id,
    };
    scope.as_deref() == Some(entity_id)
}

/// Evaluates one alert now, whole or for one entity; `None` when it is no longer live, or
/// when a narrowed run strayed from its entity (the alert is then queued whole).
fn evaluate(
    core: &Core,
    alert: Arc<Alert>,
    narrowed_to: Option<&str>,
    known: &Prefetched,
    warm: &mut Warm,
) -> Option<Evaluated> {
    let started = Instant::now();
    let now = core.clock.now();
    if !alert.is_live(now) {
        return None;
    }
    let ctx = Context {
        alert_id: alert.id.clone(),
        now,
        owner_id: alert.owner_id(),
        entity_id: narrowed_to.map(str::to_owned).or_else(|| alert.entity_id()),
    };
    let template = core.registry.get(&alert.template_id);
    let (queries, result) = run_template(core, template.as_deref(), &alert, &ctx, known, warm);
    if let Some(entity) = narrowed_to {
        // A run that failed (a trap, a timeout) is that entity's failure, recorded as such:
        // only straying shows the template cannot judge one entity alone.
        let kept_to_entity = queries.iter().all(|q| about(q, entity))
            && result.as_ref().map_or(true, |findings| {
                findings.iter().all(|f| f.subject == entity)
            });
        if !kept_to_entity {
            tracing::info!(alert = %alert.id, template = %alert.template_id,
                "the template does not keep to one entity when narrowed; evaluating the alert whole from now on");
            core.queue.narrowing_failed(&alert.id);
            return None;
        }
        core.metrics.narrowed_evaluations.inc();
    }
    core.metrics.evaluations.inc();
    let auto_resolvable = template
        .as_ref()
        .is_some_and(|t| t.plugin.info().auto_resolvable);
    let template_version = template.map(|t| t.plugin.info().version.clone());
    let mut problems = Vec::new();
    let (findings, last) = match result {
        Err(message) => {
            core.metrics.evaluation_failures.inc();
            tracing::warn!(alert = %alert.id, template = %alert.template_id, error = %message, "evaluation failed");
            problems.push(EvaluationProblem {
                at: now,
                outcome: "error".into(),
                subject: narrowed_to.map(str::to_owned),
                message: message.clone(),
            });
            let last = LastEvaluation {
                at: now,
                outcome: "error".into(),
                message: Some(message),
                template_version,
            };
            (Vec::new(), last)
        }
        Ok(findings) => {
            for finding in &findings {
                if let Verdict::NoData(reason) = &finding.verdict {
                    problems.push(EvaluationProblem {
                        at: now,
                        outcome: "noData".into(),
                        subject: Some(finding.subject.clone()),
                        message: reason.clone(),
                    });
                }
            }
            let last = LastEvaluation {
                at: now,
                outcome: if problems.is_empty() { "ok" } else { "noData" }.into(),
                message: problems.first().map(|p| p.message.clone()),
                template_version,
            };
            (findings, last)
        }
    };
    Some(Evaluated {
        alert,
        narrowed_to: narrowed_to.map(str::to_owned),
        started,
        now,
        auto_resolvable,
        queries,
        findings,
        problems,
        last,
    })
}

/// Queues these evaluations' work again, as it was queued.
fn requeue(core: &Core, evaluations: &[Evaluated]) {
    for e in evaluations {
        match &e.narrowed_to {
            Some(entity) => core.queue.push_entity(&e.alert.id, entity),
            None => core.queue.push(&e.alert.id),
        }
    }
}

/// Records a batch of evaluations in one transaction, then tells the rest of the server.
async fn record(core: &Core, batch: Vec<Evaluated>) {
    // Results are written only while the alert's lease is held: a node that paused past
    // it must not write over the evaluations of the node that took the alert over.
    // They are queued again: this node may renew the lease a moment later, or the work is
    // forwarded to the node that took the alert, and either evaluates the data afresh.
    let (batch, lapsed): (Vec<Evaluated>, Vec<Evaluated>) = batch
        .into_iter()
        .partition(|e| core.cluster.holds(&e.alert.id));
    if !lapsed.is_empty() {
        tracing::warn!(
            evaluations = lapsed.len(),
            "evaluations of alerts whose lease lapsed were not recorded; queued again"
        );
        requeue(core, &lapsed);
    }
    if batch.is_empty() {
        return;
    }
    let last_of: HashMap<&str, usize> = batch
        .iter()
        .enumerate()
        .map(|(index, e)| (e.alert.id.as_str(), index))
        .collect();
    // Each evaluation's alert's owner, which routes what it opens.
    let owners: Vec<Option<String>> = batch.iter().map(|e| e.alert.owner_id()).collect();
    // Every finding of the batch, with the evaluation it came from.
    let (sources, observations): (Vec<usize>, Vec<Observation>) = batch
        .iter()
        .enumerate()
        .flat_map(|(index, e)| {
            e.findings.iter().filter_map(move |finding| {
                let breached = match finding.verdict {
                    Verdict::Breached => true,
                    Verdict::Clear => false,
                    Verdict::NoData(_) => return None,
                };
                let observation = Observation {
                    alert_id: &e.alert.id,
                    alert_version: e.alert.version,
                    template_id: &e.alert.template_id,
                    valid_until: e.alert.valid_until,
                    subject: &finding.subject,
                    breached,
                    auto_resolvable: e.auto_resolvable,
                    report: &finding.report,
                    summary: &finding.summary,
                    at: e.now,
                };
                Some((index, observation))
            })
        })
        .unzip();
    let only_times = only_times_change(core, &batch, &observations).await;
    let result: crate::store::Result<Vec<Change>> = async {
        if only_times {
            for e in &batch {
                core.catalog.time_unsaved(&e.alert.id);
            }
            return Ok(vec![Change::None; observations.len()]);
        }
        // Of an alert's runs in one batch (narrowed runs of several entities), the last is
        // written down as its last evaluation, with every run's problems.
        let mut problems: HashMap<&str, Vec<&EvaluationProblem>> = HashMap::new();
        for e in &batch {
            problems.entry(&e.alert.id).or_default().extend(&e.problems);
        }
        let records: Vec<EvaluationRecord> = last_of
            .iter()
            .map(|(&id, &index)| {
                let e = &batch[index];
                EvaluationRecord {
                    alert_id: id,
                    last: &e.last,
                    dependencies: e.narrowed_to.is_none().then_some(e.queries.as_slice()),
                    problems: problems.remove(id).unwrap_or_default(),
                }
            })
            .collect();
        let owners: Vec<Option<&str>> = sources.iter().map(|&i| owners[i].as_deref()).collect();
        let changes = core
            .store
            .commit_evaluations(&EvaluationBatch {
                findings: &observations,
                owners: &owners,
                phones: core.escalation.provider(),
                records: &records,
            })
            .await?;
        Ok(changes)
    }
    .await;
    let changes = match result {
        Ok(changes) => changes,
        Err(e) => {
            // Nothing of the batch was written; what it found is found again from the
            // data, once the store answers (a second's pause, not a spin, while it fails).
            tracing::error!(error = %e, evaluations = batch.len(),
                "could not record evaluations; evaluating them again in a second");
            tokio::time::sleep(Duration::from_secs(1)).await;
            requeue(core, &batch);
            return;
        }
    };
    let subjects: Vec<String> = observations.iter().map(|o| o.subject.to_owned()).collect();
    drop(observations);
    core.incidents.evaluated(
        changes
            .into_iter()
            .zip(subjects)
            .zip(sources)
            .map(|((change, subject), index)| (change, batch[index].alert.id.as_str(), subject)),
    );
    let last: HashSet<usize> = last_of.into_values().collect();
    for (index, e) in batch.into_iter().enumerate() {
        core.metrics
            .evaluation_seconds
            .observe(e.started.elapsed().as_secs_f64());
        // An alert's last evaluation in the batch is the one the catalog keeps.
        if !last.contains(&index) {
            continue;
        }
        if e.narrowed_to.is_none() {
            core.catalog.set_dependencies(&e.alert.id, &e.queries);
        }
        if let Some(current) = core.catalog.get(&e.alert.id) {
            let mut updated = (*current).clone();
            updated.last_evaluation = Some(e.last);
            core.catalog.put(updated);
        }
    }
}

//! The running server: every part wired together, started and stopped as one.

use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::cluster::{self, Cluster};
use crate::config::Config;
use crate::escalation::{self, Escalation};
use crate::evaluator::{self, Queue};
use crate::http::{self, auth::KeyRing};
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::sandbox::{Limits, Sandbox};
use crate::scheduler::{self, Schedule};
use crate::store::Store;
use crate::store::alerts::Alert;
use crate::store::escalation::{Entry, Member, Roster, Route};
use crate::store::incidents::new_id;
use crate::store::ingest::Ingest;
use crate::store::keys::{ApiKey, Role};
use crate::store::postgres::cluster::Forwarded;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::sync::Arc;
use tocsin_sdk::time::Timestamp;
use tocsin_twilio::{self as twilio, PhoneNumber};
use tocsin_twilio_sim as sim;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything the handlers, evaluator and scheduler share.
#[derive(Debug)]
pub struct Core {
    /// Configuration.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Templates.
    pub registry: Registry,
    /// Alerts and their dependencies.
    pub catalog: Catalog,
    /// Alerts waiting to be evaluated.
    pub queue: Queue,
    /// This node's part in a cluster: what it holds.
    pub cluster: Arc<Cluster>,
    /// When this node started.
    pub started_at: Timestamp,
    /// When each alert is next due.
    pub schedule: Schedule,
    /// Counters.
    pub metrics: Metrics,
    /// Usable API keys.
    pub keys: KeyRing,
    /// Group commit for pushed data.
    pub ingest: Ingest,
    /// The incident lifecycle's announcements.
    pub incidents: Lifecycle,
    /// Phone escalation.
    pub escalation: Escalation,
    /// Pruning of resolved alarms.
    pub alarms: crate::hooks::Pruner,
    /// Amazon SNS certificates and subscription confirmations.
    pub sns: crate::hooks::sns::Sns,
}

pub use crate::lifecycle::IncidentEvent;

impl Core {
    /// Puts a new or changed alert in the catalog, evaluates it now and plans its next turn.
    pub async fn alert_changed(&self, alert: Alert) {
        let alert = self.catalog.put(alert);
        self.replan(&alert, self.clock.now()).await;
    }

    /// Evaluates a live alert now as on its turn (entity by entity when it narrows: a
    /// whole evaluation of an integration's thousands of alarms would outgrow a plugin's
    /// output) and plans its next turn; plans the end of one whose validity ran out; stops
    /// planning any other.
    async fn replan(&self, alert: &Alert, now: Timestamp) {
        if alert.is_live(now) {
            self.evaluate_on_schedule(alert).await;
            self.schedule
                .set(&alert.id, capped(alert, later(now, alert.interval())));
        } else if alert.valid_until.is_some_and(|until| now >= until) && alert.expired_at.is_none()
        {
            self.schedule.set(&alert.id, now);
        } else {
            self.schedule.remove(&alert.id);
        }
    }

    /// Queues every alert this node holds that reads data of this entity, and leaves the
    /// change for the other nodes when alerts they hold may read it too.
    pub fn entity_changed(&self, entity_type: &str, entity_id: &str, owner_id: Option<&str>) {
        if self.judge_entity(entity_type, entity_id, owner_id) {
            self.cluster.forward(Forwarded::Entity {
                entity_type: entity_type.to_owned(),
                entity_id: entity_id.to_owned(),
                owner_id: owner_id.map(str::to_owned),
            });
        }
    }

    /// Queues the alerts this node holds that read data of this entity. True when alerts
    /// it does not hold may read it.
    pub fn judge_entity(&self, entity_type: &str, entity_id: &str, owner_id: Option<&str>) -> bool {
        let affected = self
            .catalog
            .affected_by_entity(entity_type, entity_id, &[owner_id]);
        let mut elsewhere = affected.undetermined_elsewhere;
        for alert in affected.alerts {
            if self.cluster.holds(&alert) {
                self.alert_entity_changed(&alert, entity_type, entity_id);
            } else {
                elsewhere = true;
            }
        }
        elsewhere
    }

    /// Queues an alert that reads an entity which changed: for that entity alone when
    /// the alert can be judged so, else whole.
    pub fn alert_entity_changed(&self, alert_id: &str, entity_type: &str, entity_id: &str) {
        if self.narrowable(alert_id, entity_type) {
            self.queue.push_entity(alert_id, entity_id);
        } else {
            self.queue.push(alert_id);
        }
    }

    /// Whether a change to an entity of `entity_type` needs only that entity judged.
    fn narrowable(&self, alert_id: &str, entity_type: &str) -> bool {
        self.catalog
            .get(alert_id)
            .and_then(|alert| self.narrowed_type(&alert))
            .is_some_and(|t| t == entity_type)
    }

    /// The entity type of the template, when the alert may be judged one entity of that
    /// type at a time: it covers many of them, and has been evaluated whole (so its
    /// dependencies are known).
    fn narrowed_type(&self, alert: &Alert) -> Option<String> {
        if alert.entity_id().is_some() || alert.last_evaluation.is_none() {
            return None;
        }
        self.registry
            .get(&alert.template_id)?
            .plugin
            .info()
            .entity_type
            .clone()
    }

    /// An alert's turn on the schedule. One whose template judges each entity alone is
    /// evaluated entity by entity: runs that small batch well, where one run over thousands
    /// of alarms would overrun the sandbox's deadline. Any other is evaluated whole.
    pub async fn evaluate_on_schedule(&self, alert: &Alert) {
        if let Some(entity_type) = self.narrowed_type(alert)
            && self.queue.narrows(&alert.id)
        {
            let owner = alert.owner_id();
            match self.store.entity_ids(&entity_type, owner.as_deref()).await {
                Ok(ids) if !ids.is_empty() => {
                    for id in &ids {
                        self.queue.push_entity(&alert.id, id);
                    }
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(alert = %alert.id, error = %e, "could not list the alert's entities; evaluating it whole");
                }
            }
        }
        self.queue.push(&alert.id);
    }

    /// An alert this node just took over from no one or from a node that stopped: it is
    /// evaluated at once as on its turn, whole or entity by entity (which covers any change
    /// its last holder had not evaluated), and its turns are planned from now.
    pub async fn took_over(&self, alert_id: &str) {
        let Some(alert) = self.catalog.get(alert_id) else {
            return;
        };
        self.replan(&alert, self.clock.now()).await;
    }

    /// Re-reads the alerts another node may have created or changed. Each changed one is
    /// replanned and evaluated as on its turn; the evaluation state held here (its last
    /// evaluation, what it read) is kept.
    pub async fn reload_alerts(&self) -> anyhow::Result<()> {
        let mut stored = Vec::new();
        self.store
            .load_alerts(|alert, _| stored.push(alert))
            .await?;
        let now = self.clock.now();
        for mut alert in stored {
            let current = self.catalog.get(&alert.id);
            if let Some(current) = &current {
                if current.version == alert.version
                    && current.status == alert.status
                    && current.expired_at == alert.expired_at
                    && current.updated_at == alert.updated_at
                {
                    continue;
                }
                alert.last_evaluation = current.last_evaluation.clone();
            }
            // Evaluated as on its turn, here or (forwarded) by its holder: a change this
            // node took before it knew the alert found no alert to queue.
            self.replan(&self.catalog.put(alert), now).await;
        }
        Ok(())
    }

    /// One alert. On a node sharing its database, one the catalog lacks may have been
    /// created by another node an instant ago: the catalog is re-read before saying no.
    pub async fn alert(&self, id: &str) -> Option<Arc<Alert>> {
        if let Some(alert) = self.catalog.get(id) {
            return Some(alert);
        }
        if self.cluster.is_shared()
            && let Err(e) = self.reload_alerts().await
        {
            tracing::warn!(error = %e, "could not re-read the alerts");
        }
        self.catalog.get(id)
    }

    /// Hands the changes this request took for alerts other nodes hold to those nodes;
    /// called before a request that changed data is acknowledged.
    pub async fn hand_over(&self) -> crate::store::Result<()> {
        self.cluster.flush(&self.store).await
    }

    /// Queues every alert this node holds that reads events of these owners, and leaves
    /// the news for the other nodes when alerts they hold may read them too.
    pub fn events_changed<'a>(&self, owner_ids: impl Iterator<Item = &'a str> + Clone) {
        if self.judge_events(owner_ids.clone()) {
            for owner_id in owner_ids {
                self.cluster.forward(Forwarded::Events {
                    owner_id: owner_id.to_owned(),
                });
            }
        }
    }

    /// Queues the alerts this node holds that read events of these owners. True when
    /// alerts it does not hold may read them.
    pub fn judge_events<'a>(&self, owner_ids: impl Iterator<Item = &'a str>) -> bool {
        let affected = self.catalog.affected_by_events(owner_ids);
        let mut elsewhere = affected.undetermined_elsewhere;
        for alert in affected.alerts {
            if self.cluster.holds(&alert) {
                self.queue.push(&alert);
            } else {
                elsewhere = true;
            }
        }
        elsewhere
    }

    /// Ends an alert whose validity ran out: its open incidents close and it is no longer
    /// evaluated.
    pub async fn expire(&self, alert: &Alert) {
        let now = self.clock.now();
        match self.store.unclosed_incidents_of(&alert.id).await {
            Ok(ids) => {
                for id in ids {
                    if let Err(e) = self
                        .incidents
                        .close(&self.store, &id, now, "validity ended", "expired")
                        .await
                    {
                        tracing::error!(incident = %id, error = %e, "could not close an expired alert's incident")
                    }
                }
            }
            Err(e) => {
                tracing::error!(alert = %alert.id, error = %e, "could not read an expired alert's incidents")
            }
        }
        let mut expired = alert.clone();
        expired.expired_at = Some(now);
        if let Err(e) = self.store.update_alert(&expired).await {
            tracing::error!(alert = %alert.id, error = %e, "could not mark an alert expired");
        }
        tracing::info!(alert = %alert.id, "alert validity ended");
        self.catalog.put(expired);
        self.schedule.remove(&alert.id);
    }
}

/// `due`, or the end of the alert's validity if that comes first: the scheduler ends it then.
fn capped(alert: &Alert, due: Timestamp) -> Timestamp {
    match alert.valid_until {
        Some(until) => due.min(until),
        None => due,
    }
}

/// `interval` after `at`, or the calendar's end when that is further than it reaches.
pub fn later(at: Timestamp, interval: chrono::TimeDelta) -> Timestamp {
    at.checked_add_signed(interval)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// When an alert loaded at start is next due: an interval after its last evaluation, or
/// now if that is past or it was never evaluated.
fn due_after_restart(alert: &Alert, now: Timestamp) -> Timestamp {
    let due = alert
        .last_evaluation
        .as_ref()
        .map_or(now, |last| later(last.at, alert.interval()).max(now));
    capped(alert, due)
}

/// A started server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    core: Arc<Core>,
    shutdown: Option<watch::Sender<bool>>,
    http: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    simulator: Option<sim::SimServer>,
    /// Runs the tasks that hold the write connection.
    _writer: WriterRuntime,
}

impl Server {
    /// Opens the store, loads templates and alerts, and starts serving on `config.listen`.
    pub async fn start(mut config: Config, clock: Clock) -> anyhow::Result<Self> {
        let store = Store::open(&config.database)
            .await
            .with_context(|| format!("opening {}", config.database))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let simulator = if config.demo {
            Some(start_demo(&mut config, &store, &clock).await?)
        } else {
            None
        };
        if config.twilio.is_none() {
            tracing::warn!(
                "escalation unavailable: no Twilio account is configured (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER); incidents open and are routed, but nobody is phoned"
            );
        }
        let sandbox = Sandbox::new(Limits::default(), Some(config.cache_dir.clone()))?;
        let registry = Registry::open(&store, sandbox, &clock).await?;
        seed_admin_key(&store, &config, &clock).await?;
        let keys = KeyRing::load(&store).await?;
        let catalog = Catalog::load(&store).await?;
        let cluster = Arc::new(match store {
            Store::Sqlite(_) => Cluster::solo(config.node_id.clone()),
            Store::Postgres(_) => Cluster::shared(config.node_id.clone()),
        });
        let (queue, receivers) = Queue::new(config.evaluation_workers, cluster.clone());
        let writer = WriterRuntime::start()?;
        let (ingest, ingest_task) = Ingest::start(store.clone(), writer.handle());
        let sns = crate::hooks::sns::Sns::new(config.sns_api_base.as_deref())
            .map_err(|e| anyhow::anyhow!("TOCSIN_SNS_API_BASE: {e}"))?;
        let mut metrics = Metrics::default();
        metrics.register_calls(store.call_metrics());
        let escalation = Escalation::new(
            config.twilio.clone().map(twilio::Client::new),
            simulator.is_some(),
            public_url,
            config.calls_per_second,
            config.gather_timeout_seconds,
            config.fallback_url.clone(),
        );
        let started_at = clock.now();
        let core = Arc::new(Core {
            config: config.clone(),
            store,
            clock,
            registry,
            catalog,
            queue,
            cluster,
            started_at,
            schedule: Schedule::default(),
            incidents: Lifecycle::new(&metrics, escalation.waker()),
            metrics,
            keys,
            ingest,
            escalation,
            alarms: Default::default(),
            sns,
        });

        core.metrics
            .escalation_available
            .set(i64::from(core.escalation.phoning()));
        core.metrics
            .escalation_simulated
            .set(i64::from(core.escalation.simulated()));
        let now = core.clock.now();
        for alert in core.catalog.all() {
            if alert.is_live(now) {
                // Evaluated at once as on its turn, as an alert taken over is: that covers
                // whatever was acknowledged before the last stop and not yet evaluated (a
                // SIGKILL in a storm), which its next turn would otherwise wait for.
                core.evaluate_on_schedule(&alert).await;
                core.schedule.set(&alert.id, due_after_restart(&alert, now));
            } else if alert.valid_until.is_some_and(|until| now >= until)
                && alert.expired_at.is_none()
            {
                core.schedule.set(&alert.id, now);
            }
        }
        let mut background: Vec<JoinHandle<()>> =
            evaluator::start(&core, receivers, writer.handle());
        background.push(tokio::spawn(scheduler::run(core.clone())));
        background.push(ingest_task);
        background.push(tokio::spawn(escalation::run(core.clone())));
        cluster::join(&core).await?;
        background.push(tokio::spawn(cluster::run(core.clone())));

        let (shutdown, stop) = watch::channel(false);
        let app = http::router(core.clone()).merge(crate::console::router(core.clone()));
        let open_files = http::serve::raise_file_limit();
        let mut limits = http::serve::Limits::for_file_limit(open_files);
        if let Some(max) = config.max_connections {
            limits.max_connections = max.min(limits.max_connections);
        }
        limits.idle = std::time::Duration::from_secs(config.idle_timeout_seconds);
        tracing::info!(
            open_files,
            max_connections = limits.max_connections,
            idle_seconds = limits.idle.as_secs(),
            "connection limits"
        );
        let http = tokio::spawn(http::serve::serve(listener, app, limits, stop));
        tracing::info!(%addr, database = %config.database, node = %config.node_id, phones = core.escalation.provider(), "tocsin is serving");
        Ok(Self {
            addr,
            core,
            shutdown: Some(shutdown),
            http,
            background,
            simulator,
            _writer: writer,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state, for tests and embedding.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Waits until the HTTP server ends (after [`Server::stop`] or a failure).
    pub async fn wait(&mut self) {
        let _ = (&mut self.http).await;
    }

    /// Stops accepting requests, lets the ones in flight finish, stops the evaluator and
    /// scheduler, and closes the database.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(true);
        }
        let _ = (&mut self.http).await;
        for task in &self.background {
            task.abort();
        }
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        // The recorder was stopped mid-stride: what it had not saved yet, it saves now.
        crate::evaluator::save_times(&self.core).await;
        // What this node held is anyone's at once, not after its leases run out: a node
        // stopped for an upgrade hands its work over without a gap.
        if let Store::Postgres(db) = &self.core.store
            && let Err(e) = db.release_all(self.core.cluster.node_id()).await
        {
            tracing::warn!(error = %e, "could not release this node's leases; they run out on their own");
        }
        if let Some(simulator) = self.simulator.take() {
            simulator.stop().await;
        }
        self.core.store.close().await;
        tracing::info!("tocsin stopped");
    }
}

/// A runtime of one thread for the two tasks that write through SQLite's single write
/// connection: the group commit of pushed data and the evaluation recorder.
///
/// A transaction holds the write lock across several round trips to SQLite's thread. On the
/// busy server runtime, each round trip also waited for the task to be polled again behind
/// the HTTP connections, so the lock was held far longer than SQLite worked (in a 30,000
/// update run, SQLite's write thread was busy a quarter of the time), and every request
/// waited for it.
#[derive(Debug)]
struct WriterRuntime(Option<tokio::runtime::Runtime>);

impl WriterRuntime {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tocsin-writer")
            .enable_all()
            .build()
            .context("starting the writer runtime")?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("present until dropped").handle()
    }
}

impl Drop for WriterRuntime {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which an async context forbids. Its
        // tasks are aborted by `Server::stop`, or end with the process.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Creates the first admin key when there is none: `TOCSIN_ADMIN_KEY`'s value, or a new
/// random key that is logged once.
async fn seed_admin_key(store: &Store, config: &Config, clock: &Clock) -> anyhow::Result<()> {
    if store.count_keys().await? > 0 {
        return Ok(());
    }
    let (secret, generated) = match &config.admin_key {
        Some(key) => (key.clone(), false),
        None => (http::auth::generate_secret(), true),
    };
    let key = ApiKey {
        id: new_id("key"),
        name: "initial admin".into(),
        role: Role::Admin,
        created_at: clock.now(),
        created_by: None,
        revoked_at: None,
    };
    if let Err(e) = store.insert_key(&key, &secret).await {
        // Another node starting at the same moment seeded the same key first.
        if store.count_keys().await? > 0 {
            return Ok(());
        }
        return Err(e.into());
    }
    if generated {
        tracing::warn!(key = %secret, "no API key existed and TOCSIN_ADMIN_KEY is unset: created this admin key; it is shown only now");
    } else {
        tracing::info!("seeded the admin key from TOCSIN_ADMIN_KEY");
    }
    Ok(())
}

/// The demo operators, all of them the simulator's: the first passes, the second is busy,
/// the third accepts.
const DEMO_MEMBERS: [(&str, &str, &str); 3] = [
    ("Ada (simulated)", "+15550100001", "pass"),
    ("Grace (simulated)", "+15550100002", "busy"),
    ("Linus (simulated)", "+15550100003", "accept"),
];

/// Starts the Twilio simulator in-process and points `config` at it (a Twilio account in
/// the environment is set aside: a demo never phones anyone), and gives a database without
/// rosters a demo roster and a default route, so a first incident rings through a whole
/// escalation.
async fn start_demo(
    config: &mut Config,
    store: &Store,
    clock: &Clock,
) -> anyhow::Result<sim::SimServer> {
    if config.twilio.is_some() {
        tracing::warn!(
            "demo: the configured Twilio account is not used; calls go to the simulator"
        );
    }
    let mut sim_config = sim::SimConfig::new();
    sim_config.speed = config.demo_speed;
    let demo_clock = clock.clone();
    sim_config.clock = sim::SimClock::new(move || demo_clock.now());
    for (_, phone, behaviour) in DEMO_MEMBERS {
        sim_config.numbers.insert(
            phone.into(),
            behaviour.parse().expect("demo behaviours parse"),
        );
    }
    let account = (
        sim_config.account_sid.clone(),
        sim_config.auth_token.clone(),
    );
    let simulator =
        sim::SimServer::start(sim_config, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("starting the Twilio simulator")?;
    config.twilio = Some(twilio::Account {
        sid: account.0,
        auth_token: account.1,
        from: "+15550100000".into(),
        api_base: simulator.api_base(),
    });
    tracing::warn!(api = %simulator.api_base(), "demo: every call is simulated; calls go to the Twilio simulator (GET /sim/calls there lists them), never to a phone");
    if store.count_rosters().await? == 0 {
        let now = clock.now();
        let roster = Roster {
            id: new_id("ros"),
            name: "Demo on-call (simulated)".into(),
            members: DEMO_MEMBERS
                .iter()
                .map(|(name, phone, _)| {
                    Entry::Member(Member {
                        name: (*name).into(),
                        phone: PhoneNumber::parse(phone).expect("demo numbers are E.164"),
                        operator_id: None,
                        sms_phone: None,
                    })
                })
                .collect(),
            loops: 2,
            ring_timeout_seconds: 20,
            fallback_url: None,
            sms: Default::default(),
            created_at: now,
            updated_at: now,
        };
        store.insert_roster(&roster).await?;
        store
            .insert_route(&Route {
                id: new_id("rte"),
                roster_id: roster.id.clone(),
                alert_id: None,
                template_id: None,
                owner_id: None,
                created_at: now,
            })
            .await?;
        tracing::info!(roster = %roster.id, "demo: created the simulated roster (Ada passes, Grace is busy, Linus accepts) and a default route to it");
    }
    Ok(simulator)
}

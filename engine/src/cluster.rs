//! Several nodes on one PostgreSQL database: who holds which work, and how the others
//! learn what changed. DESIGN.md, "Several nodes", is the contract; this is its node side.
//!
//! - **Alerts are leased.** Each alert's evaluation belongs to the one node that holds its
//!   lease (claimed with `SKIP LOCKED`, renewed every [`TICK`], anyone's once [`LEASE`]
//!   passes without renewal). Only the holder evaluates it, runs its interval turns and
//!   records results, so a turn happens once across the cluster. A node holding more than
//!   its share (another node joined) gives the rest up.
//! - **Changes reach the holder.** A node that takes a change to data that alerts held
//!   elsewhere may read leaves it in the database for every other node (before the request
//!   is acknowledged; concurrent requests share one transaction), and each judges it
//!   against the alerts it holds: only a holder knows what its alerts read. A node that
//!   takes over an alert evaluates it whole at once, which covers whatever its last holder
//!   had taken and not yet evaluated.
//! - **One node dials.** The `dialer` lease holder runs the call loop driver, so pacing is
//!   cluster-wide; the database's indexes keep one call per step and one live call per
//!   number whatever happens. A new holder first reads every unfinished call back from
//!   Twilio, so the call that was ringing when its last holder died is followed, not
//!   redialed. Twilio's callbacks may reach any node: they only move call rows forward.
//! - **Caches follow the database.** Alerts, templates and API keys are cached in memory;
//!   triggers bump a version and notify, and every node reloads what moved.
//!
//! Takeover is bounded by [`LEASE`] plus one [`TICK`]: 11 s after the last renewal.
//!
//! With SQLite there is one node, and it holds everything.

use crate::app::Core;
use crate::store::Store;
use crate::store::postgres::cluster::{Forwarded, VERSIONS_CHANNEL};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a node renews, claims, polls for changes and checks versions.
pub const TICK: Duration = Duration::from_secs(1);
/// A holder stops acting this long before its lease would run out, in case its clock and
/// the database's disagree a little.
const MARGIN: Duration = Duration::from_secs(2);
/// Nodes seen within this are listed by `GET /cluster`.
pub const SEEN_WITHIN: Duration = Duration::from_secs(60);
/// Most forwarded changes taken in one tick.
const CHANGES_PER_TICK: i64 = 10_000;

/// This node's part in the cluster.
#[derive(Debug)]
pub struct Cluster {
    node_id: String,
    shared: bool,
    held: Mutex<Held>,
    forwards: Mutex<Forwards>,
    /// Held by the one request writing forwarded changes; the others wait for it, and the
    /// next writer takes everything that piled up meanwhile (a group commit).
    forwarding: tokio::sync::Mutex<()>,
    /// Forwards were written: the other nodes are to be told, by one notification for
    /// however many writes (PostgreSQL commits notifying transactions one at a time).
    written: tokio::sync::Notify,
}

/// Changes kept for other nodes, counted so that a request knows when its own are written.
#[derive(Debug, Default)]
struct Forwards {
    /// Each change once: a busy node sees the same entity change many times over.
    waiting: HashSet<Forwarded>,
    /// How many changes were ever kept, and how many of the first were written.
    kept: u64,
    written: u64,
}

#[derive(Debug, Default)]
struct Held {
    alerts: HashSet<String>,
    /// When the alert leases, renewed together, run out for this node.
    alerts_until: Option<Instant>,
    /// Alerts this node created and took the lease of while a renewal was under way, which
    /// that renewal's reading of the leases may have missed.
    created: HashSet<String>,
    dialer_until: Option<Instant>,
}

impl Cluster {
    /// A node alone with its database (SQLite): it holds every alert and dials.
    pub fn solo(node_id: String) -> Self {
        Self::new(node_id, false)
    }

    /// A node sharing a PostgreSQL database: it holds what it has claimed.
    pub fn shared(node_id: String) -> Self {
        Self::new(node_id, true)
    }

    fn new(node_id: String, shared: bool) -> Self {
        Self {
            node_id,
            shared,
            held: Mutex::default(),
            forwards: Mutex::default(),
            forwarding: tokio::sync::Mutex::new(()),
            written: tokio::sync::Notify::new(),
        }
    }

    /// This node's id (`TOCSIN_NODE_ID`).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether other nodes may share the database.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Whether this node evaluates `alert_id` now.
    pub fn holds(&self, alert_id: &str) -> bool {
        if !self.shared {
            return true;
        }
        let held = self.held.lock().expect("cluster lock");
        held.alerts_until
            .is_some_and(|until| Instant::now() < until)
            && held.alerts.contains(alert_id)
    }

    /// Whether this node places calls now.
    pub fn dialing(&self) -> bool {
        !self.shared
            || self
                .held
                .lock()
                .expect("cluster lock")
                .dialer_until
                .is_some_and(|until| Instant::now() < until)
    }

    /// Keeps a change that other nodes must judge, for [`Self::flush`].
    pub fn forward(&self, change: Forwarded) {
        let mut forwards = self.forwards.lock().expect("cluster lock");
        forwards.waiting.insert(change);
        forwards.kept += 1;
    }

    /// Writes the changes kept by [`Self::forward`] for the nodes that hold their alerts,
    /// and returns once every change kept before the call is written. A request that
    /// changed data calls this before it answers, so what it acknowledged is evaluated even
    /// if this node dies next. Concurrent requests share one transaction; the other nodes
    /// are notified after, once for whatever was written meanwhile (and poll besides).
    pub async fn flush(&self, store: &Store) -> crate::store::Result<()> {
        let Store::Postgres(db) = store else {
            return Ok(());
        };
        let mine = {
            let forwards = self.forwards.lock().expect("cluster lock");
            if forwards.written >= forwards.kept {
                return Ok(());
            }
            forwards.kept
        };
        let _writing = self.forwarding.lock().await;
        let (changes, upto) = {
            let mut forwards = self.forwards.lock().expect("cluster lock");
            if forwards.written >= mine {
                return Ok(());
            }
            (std::mem::take(&mut forwards.waiting), forwards.kept)
        };
        let changes: Vec<Forwarded> = changes.into_iter().collect();
        match db.forward_changes(&self.node_id, &changes).await {
            Ok(()) => {
                self.forwards.lock().expect("cluster lock").written = upto;
                self.written.notify_one();
                Ok(())
            }
            Err(e) => {
                let mut forwards = self.forwards.lock().expect("cluster lock");
                forwards.waiting.extend(changes);
                Err(e)
            }
        }
    }
}

/// Runs this node's part of the cluster until the task is aborted: its leases, what other
/// nodes changed, and telling them what this one did. They go side by side, so that a
/// slow look at changes never lets a lease run out.
pub async fn run(core: Arc<Core>) {
    let Store::Postgres(_) = &core.store else {
        return;
    };
    tokio::join!(
        keep_leases(&core),
        follow_changes(&core),
        notify_others(&core)
    );
}

/// Tells the other nodes that forwards were written: one notification per round trip,
/// however many were written meanwhile.
async fn notify_others(core: &Core) {
    let Store::Postgres(db) = &core.store else {
        return;
    };
    loop {
        core.cluster.written.notified().await;
        if let Err(e) = db.notify_work().await {
            tracing::warn!(error = %e, "could not notify the other nodes; they poll");
        }
    }
}

/// Records this node among the cluster's before it answers anything, so that a node
/// whose `/healthz` answers is one `GET /cluster` lists. A database that cannot take the
/// heartbeat fails the start.
pub async fn join(core: &Core) -> crate::store::Result<()> {
    match &core.store {
        Store::Postgres(db) => heartbeat(core, db).await,
        Store::Sqlite(_) => Ok(()),
    }
}

async fn heartbeat(core: &Core, db: &crate::store::postgres::Postgres) -> crate::store::Result<()> {
    let address = core.config.listen.to_string();
    db.heartbeat(
        &core.cluster.node_id,
        &address,
        env!("CARGO_PKG_VERSION"),
        core.started_at,
    )
    .await
}

/// The heartbeat and the leases, every [`TICK`].
async fn keep_leases(core: &Core) {
    let Store::Postgres(db) = &core.store else {
        return;
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = heartbeat(core, db).await {
            tracing::warn!(error = %e, "could not record this node's heartbeat");
        }
        lease_dialer(core).await;
        lease_alerts(core).await;
        match db.prune_changes().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(changes = n, "dropped changes addressed to nodes gone"),
            Err(e) => tracing::warn!(error = %e, "could not prune changes for nodes gone"),
        }
    }
}

/// Changes other nodes forwarded and cache versions, whenever another node notifies and
/// every [`TICK`] (a notification is lost while the listener reconnects); and this node's
/// own forwards that a request left unwritten.
async fn follow_changes(core: &Core) {
    let Store::Postgres(db) = &core.store else {
        return;
    };
    let mut versions: HashMap<String, i64> = HashMap::new();
    let mut listener = None;
    let mut next_tick = tokio::time::Instant::now();
    loop {
        if listener.is_none() {
            match db.listen().await {
                Ok(l) => listener = Some(l),
                Err(e) => tracing::warn!(error = %e, "cannot listen for other nodes; polling only"),
            }
        }
        if tokio::time::Instant::now() >= next_tick {
            refresh(core, &mut versions).await;
            next_tick = tokio::time::Instant::now() + TICK;
        }
        take_changes(core).await;
        if let Err(e) = core.cluster.flush(&core.store).await {
            tracing::warn!(error = %e, "could not hand changes to the nodes that hold them; retrying");
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.try_recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = notified => {
                // What was announced, and whatever else arrived with it: one look serves
                // them all (a busy node forwards a change per request).
                let mut channels = HashSet::new();
                match received {
                    Ok(Some(first)) => {
                        channels.insert(first.channel().to_owned());
                        while let Some(more) = listener.as_mut().and_then(|l| l.next_buffered()) {
                            channels.insert(more.channel().to_owned());
                        }
                    }
                    Ok(None) => tracing::warn!("the notification listener lost its connection; it reconnects"),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the notification listener; reconnecting");
                        listener = None;
                    }
                }
                if channels.contains(VERSIONS_CHANNEL) {
                    refresh(core, &mut versions).await;
                }
                // The driver may have calls to move.
                core.escalation.wake();
            }
            () = tokio::time::sleep_until(next_tick) => {}
        }
    }
}

/// Reloads the caches whose version moved since this node last looked.
async fn refresh(core: &Core, versions: &mut HashMap<String, i64>) {
    let Store::Postgres(db) = &core.store else {
        return;
    };
    let current = match db.versions().await {
        Ok(current) => current,
        Err(e) => {
            tracing::warn!(error = %e, "could not read cache versions");
            return;
        }
    };
    let first = versions.is_empty();
    for (name, version) in current {
        if versions.get(&name) == Some(&version) {
            continue;
        }
        // At start the caches were loaded just now; a version read after that only says
        // where to compare from next, except that a change in between is reloaded anyway.
        let reloaded = match name.as_str() {
            "alerts" => core.reload_alerts().await,
            "templates" => core
                .registry
                .refresh(&core.store)
                .await
                .map_err(anyhow::Error::from),
            "keys" => core
                .keys
                .reload(&core.store)
                .await
                .map_err(anyhow::Error::from),
            _ => Ok(()),
        };
        match reloaded {
            Ok(()) => {
                if !first {
                    tracing::debug!(cache = %name, version, "reloaded what another node changed");
                }
                versions.insert(name, version);
            }
            Err(e) => tracing::warn!(cache = %name, error = %e, "could not reload; trying again"),
        }
    }
}

/// Takes or renews the dialer lease, when this node can place calls at all.
async fn lease_dialer(core: &Core) {
    let Store::Postgres(db) = &core.store else {
        return;
    };
    if !core.escalation.phoning() {
        return;
    }
    let asked = Instant::now();
    let holds = match db.claim_lease("dialer", &core.cluster.node_id, LEASE).await {
        Ok(holds) => holds,
        Err(e) => {
            tracing::warn!(error = %e, "could not renew the dialer lease");
            return;
        }
    };
    let mut held = core.cluster.held.lock().expect("cluster lock");
    let was = held
        .dialer_until
        .is_some_and(|until| Instant::now() < until);
    held.dialer_until = holds.then(|| asked + LEASE - MARGIN);
    drop(held);
    if holds && !was {
        tracing::info!(node = %core.cluster.node_id, "this node now places the calls (dialer lease taken)");
        core.escalation.wake();
    } else if was && !holds {
        tracing::warn!(node = %core.cluster.node_id, "lost the dialer lease: another node places the calls");
    }
}

/// Takes the lease of an alert this node just created (before it is in the catalog), so
/// that the node evaluates it at once, before data arrives for it: an alert's first
/// evaluation is whole, and an integration's, left to a later claim, could meet thousands
/// of alarms and outgrow a plugin's output. The next renewal balances the shares as ever.
pub async fn hold_created(core: &Core, alert_id: &str) {
    let Store::Postgres(db) = &core.store else {
        return;
    };
    let asked = Instant::now();
    match db.claim_alert(&core.cluster.node_id, alert_id, LEASE).await {
        Ok(true) => {
            let mut held = core.cluster.held.lock().expect("cluster lock");
            match held.alerts_until {
                Some(until) if Instant::now() < until => {}
                // Before this node's first renewal: it holds this alert alone.
                None => held.alerts_until = Some(asked + LEASE - MARGIN),
                // Lapsed in this node's view: the next renewal finds the lease this node's
                // and evaluates the alert then.
                Some(_) => return,
            }
            held.alerts.insert(alert_id.to_owned());
            held.created.insert(alert_id.to_owned());
            core.catalog.set_here(&held.alerts);
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(alert = %alert_id, error = %e, "could not take the lease of a new alert; the next renewal may")
        }
    }
}

/// Renews this node's alert leases, and claims its share of the alerts nobody holds.
async fn lease_alerts(core: &Core) {
    let Store::Postgres(db) = &core.store else {
        return;
    };
    let node = &core.cluster.node_id;
    let asked = Instant::now();
    // Alerts created from here on may be missing from what the renewal reads; they are
    // kept below.
    core.cluster
        .held
        .lock()
        .expect("cluster lock")
        .created
        .clear();
    let renewed: HashSet<String> = match db.renew_alerts(node, LEASE).await {
        Ok(ids) => ids.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not renew alert leases");
            return;
        }
    };
    let share = match (db.nodes_seen(LEASE).await, db.count_alert_leases().await) {
        (Ok(nodes), Ok(total)) => {
            let nodes = nodes.len().max(1) as i64;
            (total + nodes - 1) / nodes
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "could not count nodes and alerts");
            0
        }
    };
    // A node that holds more than its share (another node joined) gives the rest up; it
    // stops evaluating them before the others may claim them.
    let excess = renewed.len() as i64 - share;
    let renewed = if excess > 0 && share > 0 {
        let mut ids: Vec<String> = renewed.into_iter().collect();
        ids.sort_unstable();
        let given_up = ids.split_off(ids.len() - excess as usize);
        let kept: HashSet<String> = ids.into_iter().collect();
        core.cluster.held.lock().expect("cluster lock").alerts = kept.clone();
        core.catalog.set_here(&kept);
        match db.release_alerts(node, &given_up).await {
            Ok(()) => tracing::info!(
                alerts = given_up.len(),
                "gave up alerts above this node's share to the other nodes"
            ),
            Err(e) => tracing::warn!(error = %e, "could not give up alerts; they lapse instead"),
        }
        kept
    } else {
        renewed
    };
    let want = share - renewed.len() as i64;
    let claimed = if want > 0 {
        match db.claim_alerts(node, LEASE, want).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim alerts");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let (lost, resumed): (Vec<String>, Vec<String>) = {
        let mut held = core.cluster.held.lock().expect("cluster lock");
        // While this node's own view of its leases had run out (a renewal slower than the
        // margin), it judged changes to its alerts as another node's, and no node took
        // them: those it still holds are evaluated again, as on a takeover.
        let lapsed = held
            .alerts_until
            .is_some_and(|until| Instant::now() >= until);
        let resumed = if lapsed {
            renewed.iter().cloned().collect()
        } else {
            Vec::new()
        };
        let created = std::mem::take(&mut held.created);
        let lost = held
            .alerts
            .iter()
            .filter(|id| !renewed.contains(*id) && !created.contains(*id))
            .cloned()
            .collect();
        held.alerts = renewed;
        held.alerts.extend(claimed.iter().cloned());
        held.alerts.extend(created);
        held.alerts_until = Some(asked + LEASE - MARGIN);
        core.catalog.set_here(&held.alerts);
        (lost, resumed)
    };
    if !lost.is_empty() {
        tracing::warn!(
            alerts = lost.len(),
            "alert leases lapsed: other nodes evaluate them now"
        );
    }
    if !resumed.is_empty() {
        tracing::warn!(
            alerts = resumed.len(),
            "this node's alert leases lapsed in its own view while the database kept them: evaluating each again"
        );
        for id in &resumed {
            core.took_over(id).await;
        }
    }
    if !claimed.is_empty() {
        tracing::info!(
            alerts = claimed.len(),
            "took over alerts: evaluating each now"
        );
        for id in &claimed {
            core.took_over(id).await;
        }
    }
}

/// Queues the changes other nodes left for this one, for the alerts it holds.
async fn take_changes(core: &Core) {
    let Store::Postgres(db) = &core.store else {
        return;
    };
    match db
        .take_changes(&core.cluster.node_id, CHANGES_PER_TICK)
        .await
    {
        Ok(changes) => {
            for change in changes {
                match change {
                    // As on its turn: whole, or entity by entity when it narrows.
                    Forwarded::Alert(id) => {
                        if let Some(alert) = core.catalog.get(&id) {
                            core.evaluate_on_schedule(&alert).await;
                        }
                    }
                    Forwarded::Entity {
                        entity_type,
                        entity_id,
                        owner_id,
                    } => {
                        core.judge_entity(&entity_type, &entity_id, owner_id.as_deref());
                    }
                    Forwarded::Events { owner_id } => {
                        core.judge_events(std::iter::once(owner_id.as_str()));
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not take forwarded changes"),
    }
}

/// This node's default id: the host's name and the process id.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tocsin".to_owned());
    format!("{host}-{}", std::process::id())
}

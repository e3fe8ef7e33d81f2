//! Cloud triggers: platforms' alarm webhooks, read into ALARM entities.

pub mod adapters;
pub mod sns;

use crate::app::Core;
use std::sync::Mutex;
use tocsin_sdk::time::Timestamp;

/// How long a resolved alarm is kept once its incident is closed.
pub const RESOLVED_KEPT_FOR: chrono::Duration = chrono::Duration::hours(1);
/// How long a delivery's digest (or SNS MessageId) is remembered: a resend within it is a
/// duplicate. Platforms retry within minutes or hours.
pub const DELIVERIES_KEPT_FOR: chrono::Duration = chrono::Duration::hours(24);
/// How often resolved alarms and old delivery digests are pruned, at most.
const PRUNE_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// Pruning of resolved alarms and old delivery digests. Each alarm a platform ever sent stays
/// an entity of its integration's alert, whose periodic whole evaluation reads them all, and
/// each delivery leaves a digest; without pruning, both would grow with history.
#[derive(Debug, Default)]
pub struct Pruner {
    last: Mutex<Option<Timestamp>>,
}

impl Pruner {
    /// Deletes alarms resolved more than [`RESOLVED_KEPT_FOR`] ago whose incident is closed,
    /// and delivery digests older than [`DELIVERIES_KEPT_FOR`], at most once a minute.
    pub async fn maybe_prune(&self, core: &Core) {
        let now = core.clock.now();
        {
            let mut last = self.last.lock().expect("pruner lock");
            if last.is_some_and(|at| now - at < PRUNE_EVERY) {
                return;
            }
            *last = Some(now);
        }
        match core
            .store
            .prune_resolved_alarms(now - RESOLVED_KEPT_FOR)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(alarms = n, "pruned resolved alarms"),
            Err(e) => tracing::error!(error = %e, "could not prune resolved alarms"),
        }
        match core.store.prune_deliveries(now - DELIVERIES_KEPT_FOR).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "forgot old delivery digests"),
            Err(e) => tracing::error!(error = %e, "could not prune delivery digests"),
        }
    }
}

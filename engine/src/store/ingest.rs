//! Group commit for pushed data: concurrent entity and event writes share one transaction,
//! and so one fsync. A durable commit costs the same for one row or hundreds, so this is
//! what lets ingestion keep up with many clients while every acknowledged write is on disk.

use super::data::EntityUpsert;
use super::data::Event;
use super::seam::Writes;
use super::{Result, Store};
use tocsin_sdk::time::Timestamp;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed together. Bounds how long the first of them waits.
const GROUP: usize = 512;

/// A write of pushed data.
#[derive(Debug)]
pub enum Write {
    /// Entity snapshots.
    Entities(Vec<EntityUpsert>),
    /// Events.
    Events(Vec<Event>),
    /// An integration's delivery: its alarms are stored, together with its digest, only
    /// when the digest is new. One transaction holds both, so a delivery is never taken
    /// twice, nor marked taken without its alarms.
    Delivery {
        /// The integration.
        integration_id: String,
        /// What identifies the delivery: a digest of the body, or SNS's MessageId.
        digest: String,
        /// Its alarms.
        entities: Vec<EntityUpsert>,
    },
}

#[derive(Debug)]
struct Job {
    write: Write,
    at: Timestamp,
    done: oneshot::Sender<Result<bool>>,
}

/// Handle to the group-commit writer.
#[derive(Debug, Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the writer on `runtime`; it runs until every handle is dropped.
    pub fn start(
        store: Store,
        runtime: &tokio::runtime::Handle,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(GROUP * 4);
        (Self { jobs }, runtime.spawn(run(store, rx)))
    }

    /// Writes and returns once the write is committed: true, or false for a delivery that
    /// was already taken (nothing was written).
    pub async fn write(&self, write: Write, at: Timestamp) -> Result<bool> {
        let (done, committed) = oneshot::channel();
        let closed = || super::Error::Database(sqlx::Error::PoolClosed);
        self.jobs
            .send(Job { write, at, done })
            .await
            .map_err(|_| closed())?;
        committed.await.map_err(|_| closed())?
    }
}

super::dispatch! {
    impl Writes;
    /// Commits the writes together; for each, whether it was written.
    fn commit_writes(&self, writes: &[(&Write, Timestamp)]) -> Result<Vec<bool>>;
}

/// Commits a group; for each job, whether it was written.
async fn commit(store: &Store, jobs: &[Job]) -> Result<Vec<bool>> {
    let writes: Vec<(&Write, Timestamp)> = jobs.iter().map(|j| (&j.write, j.at)).collect();
    store.commit_writes(&writes).await
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(GROUP);
    while rx.recv_many(&mut jobs, GROUP).await > 0 {
        if let Ok(written) = commit(&store, &jobs).await {
            for (job, written) in jobs.drain(..).zip(written) {
                let _ = job.done.send(Ok(written));
            }
            continue;
        }
        // Something in the group failed: commit each alone, so one bad write fails only
        // its own request.
        for job in jobs.drain(..) {
            let result = commit(&store, std::slice::from_ref(&job)).await;
            let _ = job.done.send(result.map(|written| written[0]));
        }
    }
}

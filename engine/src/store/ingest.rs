//! Group commit for pushed data: concurrent entity and event writes share one transaction,
//! and so one fsync. A durable commit costs the same for one row or hundreds, so this is
//! what lets ingestion keep up with many clients while every acknowledged write is on disk.

use super::data::{EntityUpsert, put_entities, put_events};
use super::{Result, Store};
use tocsin_sdk::testing::Event;
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
}

#[derive(Debug)]
struct Job {
    write: Write,
    at: Timestamp,
    done: oneshot::Sender<Result<()>>,
}

/// Handle to the group-commit writer.
#[derive(Debug, Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the writer; it runs until every handle is dropped.
    pub fn start(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(GROUP * 4);
        (Self { jobs }, tokio::spawn(run(store, rx)))
    }

    /// Writes and returns once the write is committed.
    pub async fn write(&self, write: Write, at: Timestamp) -> Result<()> {
        let (done, committed) = oneshot::channel();
        let closed = || super::Error::Database(sqlx::Error::PoolClosed);
        self.jobs
            .send(Job { write, at, done })
            .await
            .map_err(|_| closed())?;
        committed.await.map_err(|_| closed())?
    }
}

async fn commit(store: &Store, jobs: &[Job]) -> Result<()> {
    let mut tx = store.write().await?;
    for job in jobs {
        match &job.write {
            Write::Entities(entities) => put_entities(&mut tx, entities, job.at).await?,
            Write::Events(events) => put_events(&mut tx, events, job.at).await?,
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(GROUP);
    while rx.recv_many(&mut jobs, GROUP).await > 0 {
        if commit(&store, &jobs).await.is_ok() {
            for job in jobs.drain(..) {
                let _ = job.done.send(Ok(()));
            }
            continue;
        }
        // Something in the group failed: commit each alone, so one bad write fails only
        // its own request.
        for job in jobs.drain(..) {
            let result = commit(&store, std::slice::from_ref(&job)).await;
            let _ = job.done.send(result);
        }
    }
}

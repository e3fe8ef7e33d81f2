//! The group commit of pushed data, in one SQLite transaction.

use super::Sqlite;
use super::data::{put_entities, put_events};
use super::integrations::first_delivery;
use crate::store::Result;
use crate::store::ingest::Write;
use tocsin_sdk::time::Timestamp;

impl Sqlite {
    /// Commits the writes in one transaction; see [`crate::store::seam::Writes`].
    pub async fn commit_writes(&self, writes: &[(&Write, Timestamp)]) -> Result<Vec<bool>> {
        let mut tx = self.write().await?;
        let mut written = Vec::with_capacity(writes.len());
        // Snapshots of a group go in as one statement, in the order they came.
        let mut entities = Vec::new();
        for &(write, at) in writes {
            let taken = match write {
                Write::Entities(batch) => {
                    entities.extend(batch.iter().map(|e| (e, at)));
                    true
                }
                Write::Events(events) => {
                    put_events(&mut tx, events, at).await?;
                    true
                }
                Write::Delivery {
                    integration_id,
                    digest,
                    entities: batch,
                } => {
                    let new = first_delivery(&mut tx, integration_id, digest, at).await?;
                    if new {
                        entities.extend(batch.iter().map(|e| (e, at)));
                    }
                    new
                }
            };
            written.push(taken);
        }
        put_entities(&mut tx, &entities).await?;
        tx.commit().await?;
        Ok(written)
    }
}

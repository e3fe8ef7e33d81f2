//! The PostgreSQL store: one database that any number of Tocsin nodes share. Each module
//! holds one resource's queries, the same operations as the SQLite store's, with the same
//! semantics (the contract suite runs on both).
//!
//! What differs is concurrency: SQLite has one writer at a time, PostgreSQL many. So every
//! transaction that reads a state before moving it (a call loop, a call) locks the row it
//! reads (`FOR UPDATE`), always the loop before its call, and every invariant is a
//! constraint (one unclosed incident per alert and subject, one call per step, one digest
//! per delivery), so that racing writers on different nodes cannot break it.

mod alerts;
pub mod cluster;
mod console;
mod data;
mod escalation;
mod incidents;
mod ingest;
mod integrations;
mod keys;
mod oncall;
mod silences;
mod templates;
mod texts;

use super::Result;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::time::Duration;

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Postgres {
    pool: PgPool,
    /// What the call loops decide, counted as it is written.
    pub(crate) calls: crate::metrics::CallMetrics,
    /// What the loops' starts read: everything on call, and what can silence.
    pub(crate) caches: std::sync::Arc<super::Caches>,
}

impl Postgres {
    /// Connects to the database at `url` and migrates it. The migrations run under an
    /// advisory lock, so nodes starting together migrate once; a database migrated by a
    /// newer version is refused (see [`super::Error::NewerSchema`]).
    pub async fn open(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        super::migrate(&sqlx::migrate!("./migrations/postgres"), &pool).await?;
        Ok(Self {
            pool,
            calls: Default::default(),
            caches: Default::default(),
        })
    }

    /// A transaction.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Rows for a multi-row statement, as one JSON array of arrays bound to a single
/// parameter and read with `json_array_elements($n) WITH ORDINALITY`: one statement
/// whatever the count. Instants travel as RFC 3339 text and are cast back exactly.
fn rows_json<T: serde::Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("rows of plain values serialize")
}

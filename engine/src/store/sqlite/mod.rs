//! The SQLite store, the embedded default: one file, one writer at a time, every commit on
//! disk before it is acknowledged. Each module holds one resource's queries.

mod alerts;
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
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sqlite {
    pool: SqlitePool,
    /// The one connection write transactions take turns on.
    writer: SqlitePool,
    /// What the call loops decide, counted as it is written.
    pub(crate) calls: crate::metrics::CallMetrics,
    /// What the loops' starts read: everything on call, and what can silence.
    pub(crate) caches: std::sync::Arc<super::Caches>,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and migrates it.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| super::Error::Database(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit that returned is on disk, whatever happens next.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // sqlx pings a pooled connection before each use by default, which for SQLite is
        // one more round trip to the connection's thread on every query. An embedded
        // database file has no connection to go stale, and a failed query reports itself.
        let pool = SqlitePoolOptions::new()
            // Readers, which WAL lets run beside the writer.
            .max_connections(6)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        super::migrate(&sqlx::migrate!("./migrations/sqlite"), &pool).await?;
        // One writer at a time is SQLite's rule. Write transactions queue for this one
        // connection in order, instead of finding the lock taken and sleeping in SQLite's
        // busy handler (1, 2, 5, 10… ms, however soon the lock is free again).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            writer,
            calls: Default::default(),
            caches: Default::default(),
        })
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front (waiting out
    /// other writers), so a transaction that reads before it writes cannot fail halfway
    /// with SQLITE_BUSY when another writer got in between.
    pub async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Rows for a multi-row statement, as one JSON array of arrays bound to a single
/// parameter and read with `json_each(?)` and `value->>n`: one statement whatever the
/// count, and never near SQLite's limit on parameters.
fn rows_json<T: serde::Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("rows of plain values serialize")
}

/// An instant as stored.
fn micros(t: tocsin_sdk::time::Timestamp) -> i64 {
    tocsin_sdk::time::to_micros(t)
}

/// A stored instant.
fn instant(micros: i64) -> tocsin_sdk::time::Timestamp {
    tocsin_sdk::time::from_micros(micros)
}

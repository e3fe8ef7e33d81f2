//! The SQLite store: the one module that knows SQL. Everything durable goes through here.

pub mod alerts;
pub mod data;
pub mod escalation;
pub mod incidents;
pub mod ingest;
pub mod integrations;
pub mod keys;
pub mod seam;
pub mod templates;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;
use tocsin_sdk::time::{Timestamp, from_micros, to_micros};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which of the database's constraints a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A row with the same key exists.
    Unique,
    /// A row it refers to does not exist (or one that refers to it still does).
    Reference,
    /// A value the schema does not allow (a check, or a missing value).
    Value,
}

impl Error {
    /// The constraint this error reports breaking, if it is one.
    pub fn violation(&self) -> Option<Violation> {
        let Self::Database(sqlx::Error::Database(e)) = self else {
            return None;
        };
        match e.kind() {
            sqlx::error::ErrorKind::UniqueViolation => Some(Violation::Unique),
            sqlx::error::ErrorKind::ForeignKeyViolation => Some(Violation::Reference),
            sqlx::error::ErrorKind::NotNullViolation | sqlx::error::ErrorKind::CheckViolation => {
                Some(Violation::Value)
            }
            _ => None,
        }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// The one connection write transactions take turns on.
    writer: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and migrates it.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Database(sqlx::Error::Io(e)))?;
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
        sqlx::migrate!("./migrations").run(&pool).await?;
        // One writer at a time is SQLite's rule. Write transactions queue for this one
        // connection in order, instead of finding the lock taken and sleeping in SQLite's
        // busy handler (1, 2, 5, 10… ms, however soon the lock is free again).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Self { pool, writer })
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

    /// Closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// An instant as stored.
pub fn micros(t: Timestamp) -> i64 {
    to_micros(t)
}

/// Rows for a multi-row statement, as one JSON array of arrays bound to a single
/// parameter and read with `json_each(?)` and `value->>n`: one statement whatever the
/// count, and never near SQLite's limit on parameters.
pub(crate) fn rows_json<T: serde::Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("rows of plain values serialize")
}

/// A stored instant.
pub fn instant(micros: i64) -> Timestamp {
    from_micros(micros)
}

/// Reads a stored JSON column.
pub fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("{e}: {text}")))
}

/// Encodes a page position: the last id returned.
pub fn next_token(last_id: Option<&str>) -> Option<String> {
    use base64::Engine as _;
    last_id.map(|id| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id))
}

/// Decodes a page position; `None` for a token this server did not make.
pub fn after_id(token: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes).ok()
}

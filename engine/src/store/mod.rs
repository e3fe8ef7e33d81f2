//! The store: everything durable goes through here, and only here is SQL written.
//!
//! One seam (`seam`), two databases behind it: SQLite (`sqlite/`), the embedded default,
//! and PostgreSQL (`postgres/`), which several nodes can share. Each resource's module here
//! (`alerts`, `incidents`, `escalation`…) holds its types and the rules both databases
//! follow; each database's module of the same name holds its queries. [`Store`] is whichever
//! one the configuration names, and answers every call with that database.

pub mod alerts;
pub mod console;
pub mod data;
pub mod escalation;
pub mod incidents;
pub mod ingest;
pub mod integrations;
pub mod keys;
pub mod oncall;
pub mod postgres;
pub mod seam;
pub mod silences;
pub mod sqlite;
pub mod templates;
pub mod texts;

pub use postgres::Postgres;
pub use sqlite::Sqlite;

use std::fmt;
use std::path::{Path, PathBuf};

/// Which database to use (`TOCSIN_DATABASE`): a SQLite file, or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, created if missing: a path, or a `sqlite:` URL.
    Sqlite(PathBuf),
    /// A `postgres://` (or `postgresql://`) URL.
    Postgres(String),
}

impl Database {
    /// Reads `TOCSIN_DATABASE`'s value.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Self::Postgres(text.to_owned());
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"));
        Self::Sqlite(PathBuf::from(path.unwrap_or(text)))
    }

    /// The SQLite file, if this is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

/// Shown in logs and errors: a PostgreSQL URL without its password.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => match url.parse::<reqwest::Url>() {
                Ok(mut url) if url.password().is_some() => {
                    let _ = url.set_password(Some("***"));
                    write!(f, "{url}")
                }
                _ => f.write_str(url),
            },
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Handle to the database the configuration names; cheap to clone.
#[derive(Debug, Clone)]
pub enum Store {
    /// The embedded default.
    Sqlite(Sqlite),
    /// A server several nodes share.
    Postgres(Postgres),
}

impl Store {
    /// Opens the database, creating and migrating it as needed.
    pub async fn open(database: &Database) -> Result<Self> {
        Ok(match database {
            Database::Sqlite(path) => Self::Sqlite(Sqlite::open(path).await?),
            Database::Postgres(url) => Self::Postgres(Postgres::open(url).await?),
        })
    }

    /// What the call loops decided, counted as the store persists it.
    pub fn call_metrics(&self) -> &crate::metrics::CallMetrics {
        match self {
            Self::Sqlite(db) => &db.calls,
            Self::Postgres(db) => &db.calls,
        }
    }

    /// Which database this is, for logs and `/healthz`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// `Store`'s methods: each asks the database it holds. Both databases have the same
/// methods, so one body serves both arms and the compiler checks each.
macro_rules! dispatch {
    (impl $seam:ident; $(
        $(#[$doc:meta])*
        fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )*) => {
        impl $crate::store::seam::$seam for $crate::store::Store {$(
            $(#[$doc])*
            async fn $name(&self $(, $arg: $ty)*) -> $ret {
                match self {
                    Self::Sqlite(db) => db.$name($($arg),*).await,
                    Self::Postgres(db) => db.$name($($arg),*).await,
                }
            }
        )*}
    };
    ($(
        $(#[$doc:meta])*
        fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )*) => {
        impl $crate::store::Store {$(
            $(#[$doc])*
            pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                match self {
                    Self::Sqlite(db) => db.$name($($arg),*).await,
                    Self::Postgres(db) => db.$name($($arg),*).await,
                }
            }
        )*}
    };
}
pub(crate) use dispatch;

dispatch! {
    /// Whether the database answers.
    fn ping(&self) -> Result<()>;
    /// Closes every connection.
    fn close(&self) -> ();
}

/// What a store keeps in memory of what the call loops' starts read and what rarely
/// changes, each read again when its generation in the database moves.
#[derive(Debug, Default)]
pub(crate) struct Caches {
    /// Everything on call.
    pub oncall: oncall::Cache,
    /// What can silence.
    pub quiet: silences::Cache,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database was migrated by a newer version of Tocsin than this one.
    #[error(
        "the database's schema is at migration {0}, newer than this version of Tocsin knows \
         (up to {1}): run the newer version, or upgrade this one before starting it"
    )]
    NewerSchema(i64, i64),
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

/// Applies `migrator`'s migrations not yet applied (under the database's own lock where it
/// has one: PostgreSQL's advisory lock). A database that has applied a migration this
/// version does not know was migrated by a newer version: it is refused, untouched.
async fn migrate<'a, A>(migrator: &sqlx::migrate::Migrator, pool: A) -> Result<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    match migrator.run(pool).await {
        Err(sqlx::migrate::MigrateError::VersionMissing(version)) => {
            let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
            Err(Error::NewerSchema(version, known))
        }
        done => Ok(done?),
    }
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

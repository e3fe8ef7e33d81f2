//! Server configuration, read from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How `tocsin serve` runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`TOCSIN_LISTEN`).
    pub listen: SocketAddr,
    /// SQLite database file (`TOCSIN_DATABASE`).
    pub database: PathBuf,
    /// Seeds an admin key with this value when no key exists (`TOCSIN_ADMIN_KEY`).
    pub admin_key: Option<String>,
    /// The base URL the outside world reaches this server at (`TOCSIN_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// Where compiled components are cached (`TOCSIN_CACHE_DIR`, default beside the
    /// database).
    pub cache_dir: PathBuf,
    /// Evaluation workers; each alert always goes to the same one, so one alert is never
    /// evaluated twice at once.
    pub evaluation_workers: usize,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?}: {problem}")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    problem: String,
}

impl Config {
    /// Reads the `TOCSIN_*` variables, with the documented defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let listen = var("TOCSIN_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen.parse().map_err(|e| ConfigError {
            name: "TOCSIN_LISTEN",
            value: listen.clone(),
            problem: format!("{e}; expected host:port such as 127.0.0.1:8080"),
        })?;
        let database =
            PathBuf::from(var("TOCSIN_DATABASE").unwrap_or_else(|| "./data/tocsin.db".to_owned()));
        let cache_dir = var("TOCSIN_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_cache_dir(&database));
        Ok(Self {
            listen,
            admin_key: var("TOCSIN_ADMIN_KEY"),
            public_url: var("TOCSIN_PUBLIC_URL"),
            cache_dir,
            database,
            evaluation_workers: 2,
        })
    }

    /// A configuration for `database` listening on an ephemeral loopback port.
    pub fn for_database(database: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cache_dir: default_cache_dir(&database),
            database,
            admin_key: None,
            public_url: None,
            evaluation_workers: 2,
        }
    }
}

fn default_cache_dir(database: &std::path::Path) -> PathBuf {
    database
        .parent()
        .map(|p| p.join("cache"))
        .unwrap_or_else(|| PathBuf::from("cache"))
}

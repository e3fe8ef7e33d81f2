//! Server configuration, read from the environment.

use crate::store::Database;
use std::net::SocketAddr;
use std::path::PathBuf;
use tocsin_twilio::{Account, DEFAULT_API_BASE, is_e164};

/// How `tocsin serve` runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`TOCSIN_LISTEN`).
    pub listen: SocketAddr,
    /// The database (`TOCSIN_DATABASE`): a SQLite file, or a PostgreSQL URL.
    pub database: Database,
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
    /// The Twilio account calls go through (`TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`,
    /// `TWILIO_FROM_NUMBER`, `TWILIO_API_BASE`); none: nobody is phoned.
    pub twilio: Option<Account>,
    /// The explicit demo (`tocsin demo`, `tocsin serve --demo`): calls go to the Twilio
    /// simulator started in-process, never to Twilio, and a database without rosters gets
    /// the demo roster. Never set by the environment alone.
    pub demo: bool,
    /// Most outbound calls a second (`TOCSIN_CALLS_PER_SECOND`, default 1, Twilio's own
    /// default pace).
    pub calls_per_second: f64,
    /// Seconds the voice prompt waits for a key (`TOCSIN_GATHER_TIMEOUT_SECONDS`, default 6).
    pub gather_timeout_seconds: u32,
    /// Where exhausted escalations are reported when their roster names no fallback
    /// (`TOCSIN_FALLBACK_URL`).
    pub fallback_url: Option<String>,
    /// Where requests meant for SNS endpoints (signing certificates, subscription
    /// confirmations) go instead (`TOCSIN_SNS_API_BASE`; for a local SNS double). The URLs
    /// in messages must still be on SNS endpoints.
    pub sns_api_base: Option<String>,
    /// Most HTTP connections open at once (`TOCSIN_MAX_CONNECTIONS`); never more than the
    /// file limit leaves room for (see [`crate::http::serve`]).
    pub max_connections: Option<usize>,
    /// Seconds a connection with no request under way may stay silent
    /// (`TOCSIN_IDLE_TIMEOUT_SECONDS`, default 60).
    pub idle_timeout_seconds: u64,
    /// How much faster than real time the demo's simulated operators act
    /// (`TOCSIN_DEMO_SPEED`, default 1).
    pub demo_speed: f64,
    /// This node's name among the nodes sharing a PostgreSQL database (`TOCSIN_NODE_ID`,
    /// default: the host's name and the process id).
    pub node_id: String,
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
        let database = Database::parse(
            &var("TOCSIN_DATABASE").unwrap_or_else(|| "./data/tocsin.db".to_owned()),
        );
        let cache_dir = var("TOCSIN_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_cache_dir(&database));
        let twilio = match var("TWILIO_ACCOUNT_SID") {
            None => None,
            Some(sid) => {
                let required = |name: &'static str| {
                    var(name).ok_or_else(|| ConfigError {
                        name,
                        value: String::new(),
                        problem: "must be set when TWILIO_ACCOUNT_SID is".into(),
                    })
                };
                let from = required("TWILIO_FROM_NUMBER")?;
                if !is_e164(&from) {
                    return Err(ConfigError {
                        name: "TWILIO_FROM_NUMBER",
                        value: from,
                        problem: "expected an E.164 number such as +14155550100".into(),
                    });
                }
                Some(Account {
                    sid,
                    auth_token: required("TWILIO_AUTH_TOKEN")?,
                    from,
                    api_base: var("TWILIO_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.into()),
                })
            }
        };
        let number = |name: &'static str, default: f64, range: std::ops::RangeInclusive<f64>| {
            let Some(text) = var(name) else {
                return Ok(default);
            };
            match text.parse::<f64>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(ConfigError {
                    name,
                    value: text,
                    problem: format!(
                        "expected a number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                }),
            }
        };
        Ok(Self {
            listen,
            admin_key: var("TOCSIN_ADMIN_KEY"),
            public_url: var("TOCSIN_PUBLIC_URL"),
            cache_dir,
            database,
            evaluation_workers: 2,
            demo: false,
            twilio,
            calls_per_second: number("TOCSIN_CALLS_PER_SECOND", 1.0, 0.01..=100.0)?,
            gather_timeout_seconds: number("TOCSIN_GATHER_TIMEOUT_SECONDS", 6.0, 1.0..=60.0)?
                as u32,
            fallback_url: var("TOCSIN_FALLBACK_URL"),
            sns_api_base: var("TOCSIN_SNS_API_BASE"),
            max_connections: var("TOCSIN_MAX_CONNECTIONS")
                .map(|_| number("TOCSIN_MAX_CONNECTIONS", 1024.0, 16.0..=65_536.0))
                .transpose()?
                .map(|n| n as usize),
            idle_timeout_seconds: number("TOCSIN_IDLE_TIMEOUT_SECONDS", 60.0, 1.0..=3600.0)? as u64,
            demo_speed: number("TOCSIN_DEMO_SPEED", 1.0, 0.1..=100.0)?,
            node_id: var("TOCSIN_NODE_ID").unwrap_or_else(crate::cluster::default_node_id),
        })
    }

    /// A configuration for `database` listening on an ephemeral loopback port.
    pub fn for_database(database: impl Into<Database>) -> Self {
        let database = database.into();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cache_dir: default_cache_dir(&database),
            database,
            admin_key: None,
            public_url: None,
            evaluation_workers: 2,
            twilio: None,
            demo: false,
            calls_per_second: 1.0,
            gather_timeout_seconds: 6,
            fallback_url: None,
            sns_api_base: None,
            max_connections: None,
            idle_timeout_seconds: 60,
            demo_speed: 1.0,
            node_id: crate::cluster::default_node_id(),
        }
    }
}

/// Beside a SQLite file; `./data/cache` for a server's database.
fn default_cache_dir(database: &Database) -> PathBuf {
    match database.path() {
        Some(path) => path
            .parent()
            .map(|p| p.join("cache"))
            .unwrap_or_else(|| PathBuf::from("cache")),
        None => PathBuf::from("./data/cache"),
    }
}

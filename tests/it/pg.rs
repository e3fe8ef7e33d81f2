//! A fresh PostgreSQL database per test, on the server `TOCSIN_TEST_POSTGRES_URL` names
//! (default `postgres://postgres@127.0.0.1:5432`), dropped when the test is done.
//!
//! Without a server to reach, a test that needs one says loudly that it was skipped and
//! why, and passes; under `CI=true` it fails instead, so CI never passes without having
//! run them.

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server the PostgreSQL tests use.
fn server_url() -> String {
    std::env::var("TOCSIN_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let mut url: reqwest::Url = url.parse().expect("TOCSIN_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A database of the test's own; dropped (with any connection still open to it) on drop.
pub struct TestDatabase {
    /// Its URL, for `TOCSIN_DATABASE`.
    pub url: String,
    name: String,
}

impl TestDatabase {
    /// A new, empty database; `None` (after saying so) when no server can be reached
    /// outside CI.
    pub async fn create(test: &str) -> Option<Self> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let server = server_url();
        let admin = with_database(&server, "postgres");
        let mut conn = match PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("CI=true and PostgreSQL at {server} cannot be reached: {e}")
            }
            Err(e) => {
                eprintln!(
                    "\n*** SKIPPED {test}: PostgreSQL at {server} cannot be reached ({e}); \
                     start one or set TOCSIN_TEST_POSTGRES_URL ***\n"
                );
                return None;
            }
        };
        let name = format!(
            "tocsin_test_{}_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed),
            test.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(24)
                .collect::<String>()
                .to_lowercase()
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        conn.close().await.ok();
        Some(Self {
            url: with_database(&server, &name),
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = with_database(&server_url(), "postgres");
        let name = self.name.clone();
        // Drop cannot wait on the test's runtime: a runtime of its own, on a thread of its own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(async {
                    let mut conn = PgConnection::connect(&admin).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await?;
                    conn.close().await
                })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

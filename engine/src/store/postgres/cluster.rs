//! The cluster's shared state: node heartbeats, leases, changes waiting for the node that
//! holds their alert, and the versions of what nodes cache. Only PostgreSQL has it: a SQLite
//! file serves one node, which holds everything.
//!
//! Lease times are the database's clock (`now()`), the one clock every node shares.

use super::Postgres;
use crate::store::Result;
use serde::Serialize;
use sqlx::Row;
use std::time::Duration;
use tocsin_sdk::time::Timestamp;

/// The channel on which nodes announce work for others (changes forwarded, calls to move).
pub const WORK_CHANNEL: &str = "tocsin_work";
/// The channel the version triggers notify (migration 0002).
pub const VERSIONS_CHANNEL: &str = "tocsin_versions";

/// A node seen lately, with what it holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSeen {
    /// `TOCSIN_NODE_ID`.
    pub id: String,
    /// Where it listens.
    pub address: String,
    /// Its Tocsin version.
    pub version: String,
    /// When it started.
    pub started_at: Timestamp,
    /// Its last heartbeat.
    pub seen_at: Timestamp,
    /// Alerts whose evaluation it holds.
    pub alerts: i64,
    /// Whether it holds the dialer lease: it places every call.
    pub dialer: bool,
}

/// A change a node took for an alert another node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The alert to evaluate.
    pub alert_id: String,
    /// The entity that changed (type, id); none: the whole alert.
    pub entity: Option<(String, String)>,
}

fn interval(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

impl Postgres {
    /// Records that `node` is alive.
    pub async fn heartbeat(
        &self,
        node: &str,
        address: &str,
        version: &str,
        started_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, address, version, started_at, seen_at) VALUES ($1, $2, $3, $4, now())
             ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version,
                 started_at = excluded.started_at, seen_at = now()",
        )
        .bind(node)
        .bind(address)
        .bind(version)
        .bind(started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Nodes whose heartbeat is at most `within` old, in id order.
    pub async fn nodes_seen(&self, within: Duration) -> Result<Vec<NodeSeen>> {
        let rows = sqlx::query(
            "SELECT n.*,
                 (SELECT COUNT(*) FROM alert_leases l WHERE l.owner = n.id AND l.expires_at > now()) AS alerts,
                 EXISTS (SELECT 1 FROM leases d WHERE d.name = 'dialer' AND d.owner = n.id AND d.expires_at > now()) AS dialer
             FROM nodes n WHERE n.seen_at > now() - make_interval(secs => $1) ORDER BY n.id",
        )
        .bind(interval(within))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| NodeSeen {
                id: row.get("id"),
                address: row.get("address"),
                version: row.get("version"),
                started_at: row.get("started_at"),
                seen_at: row.get("seen_at"),
                alerts: row.get("alerts"),
                dialer: row.get("dialer"),
            })
            .collect())
    }

    /// Takes or renews the lease `name` for `ttl`; true when `node` holds it now.
    pub async fn claim_lease(&self, name: &str, node: &str, ttl: Duration) -> Result<bool> {
        let owner: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE leases.owner = excluded.owner OR leases.expires_at < now()
             RETURNING owner",
        )
        .bind(name)
        .bind(node)
        .bind(interval(ttl))
        .fetch_optional(&self.pool)
        .await?;
        Ok(owner.is_some())
    }

    /// Renews every alert lease `node` holds; returns the alerts it still holds.
    pub async fn renew_alerts(&self, node: &str, ttl: Duration) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "UPDATE alert_leases SET expires_at = now() + make_interval(secs => $2)
             WHERE owner = $1 AND expires_at > now() RETURNING alert_id",
        )
        .bind(node)
        .bind(interval(ttl))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims up to `limit` alerts nobody holds (or whose holder's lease ran out), skipping
    /// those another node is claiming this instant.
    pub async fn claim_alerts(&self, node: &str, ttl: Duration, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "UPDATE alert_leases SET owner = $1, expires_at = now() + make_interval(secs => $2)
             WHERE alert_id IN (
                 SELECT alert_id FROM alert_leases WHERE owner IS NULL OR expires_at < now()
                 ORDER BY alert_id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING alert_id",
        )
        .bind(node)
        .bind(interval(ttl))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many alerts there are to hold.
    pub async fn count_alert_leases(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM alert_leases")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Gives up everything `node` holds, so that another node takes it over at once.
    pub async fn release_all(&self, node: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE alert_leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1",
        )
        .bind(node)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM leases WHERE owner = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Leaves changes for the nodes that hold their alerts, and wakes them.
    pub async fn forward_changes(&self, changes: &[Forwarded]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&str, Option<&str>, Option<&str>)> = changes
            .iter()
            .map(|c| {
                let entity = c.entity.as_ref();
                (
                    c.alert_id.as_str(),
                    entity.map(|(t, _)| t.as_str()),
                    entity.map(|(_, id)| id.as_str()),
                )
            })
            .collect();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO alert_changes (alert_id, entity_type, entity_id)
             SELECT r->>0, r->>1, r->>2 FROM json_array_elements($1::json) AS r",
        )
        .bind(super::rows_json(&rows))
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORK_CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes (deletes and returns) the changes waiting for alerts `node` holds.
    pub async fn take_changes(&self, node: &str, limit: i64) -> Result<Vec<Forwarded>> {
        let rows = sqlx::query(
            "DELETE FROM alert_changes WHERE id IN (
                 SELECT c.id FROM alert_changes c JOIN alert_leases l ON l.alert_id = c.alert_id
                 WHERE l.owner = $1 AND l.expires_at > now()
                 ORDER BY c.id LIMIT $2 FOR UPDATE OF c SKIP LOCKED)
             RETURNING alert_id, entity_type, entity_id",
        )
        .bind(node)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let entity_type: Option<String> = row.get("entity_type");
                let entity_id: Option<String> = row.get("entity_id");
                Forwarded {
                    alert_id: row.get("alert_id"),
                    entity: entity_type.zip(entity_id),
                }
            })
            .collect())
    }

    /// The version of each cached thing (`alerts`, `templates`, `keys`).
    pub async fn versions(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT name, version FROM versions")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get("name"), row.get("version")))
            .collect())
    }

    /// Tells the other nodes that there is work (a call to move, changes to take).
    pub async fn notify_work(&self) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORK_CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A listener on the cluster's channels.
    pub async fn listen(&self) -> Result<sqlx::postgres::PgListener> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([WORK_CHANNEL, VERSIONS_CHANNEL])
            .await?;
        Ok(listener)
    }
}

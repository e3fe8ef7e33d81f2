//! The cluster's shared state: node heartbeats, leases, changes waiting for the other
//! nodes, and the versions of what nodes cache. Only PostgreSQL has it: a SQLite
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
/// Data changes go to the nodes seen within this; one not seen for longer lost its alert
/// leases long ago, and what was addressed to it is pruned.
pub const NODE_GONE_AFTER: Duration = Duration::from_secs(30);

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

/// A change a node took that other nodes must judge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Forwarded {
    /// An alert to evaluate whole, for the node that holds it.
    Alert(String),
    /// An entity that changed, for every other node: each queues the alerts it holds
    /// that read it.
    Entity {
        entity_type: String,
        entity_id: String,
        owner_id: Option<String>,
    },
    /// Events of an owner arrived, for every other node.
    Events { owner_id: String },
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

    /// Takes the lease of one alert that nobody holds: true when `node` took it.
    pub async fn claim_alert(&self, node: &str, alert_id: &str, ttl: Duration) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE alert_leases SET owner = $1, expires_at = now() + make_interval(secs => $3)
             WHERE alert_id = $2 AND (owner IS NULL OR expires_at < now())",
        )
        .bind(node)
        .bind(alert_id)
        .bind(interval(ttl))
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Gives up the leases of `alerts` that `node` holds, for another node to claim.
    pub async fn release_alerts(&self, node: &str, alerts: &[String]) -> Result<()> {
        sqlx::query(
            "UPDATE alert_leases SET owner = NULL, expires_at = '-infinity'
             WHERE owner = $1 AND alert_id = ANY($2)",
        )
        .bind(node)
        .bind(alerts)
        .execute(&self.pool)
        .await?;
        Ok(())
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
        sqlx::query("DELETE FROM node_changes WHERE node = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes changes `node` took for the other nodes: whole alerts for
    /// their holders, data changes for every node seen lately (read in the same statement,
    /// so a node that joins after it reads the data anyway when it claims its alerts).
    pub async fn forward_changes(&self, node: &str, changes: &[Forwarded]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut alerts = Vec::new();
        // (kind, entity type, entity id, owner id), as `node_changes` has them.
        type Data<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let mut data: Vec<Data> = Vec::new();
        for change in changes {
            match change {
                Forwarded::Alert(id) => alerts.push(id.as_str()),
                Forwarded::Entity {
                    entity_type,
                    entity_id,
                    owner_id,
                } => data.push((
                    "entity",
                    Some(entity_type),
                    Some(entity_id),
                    owner_id.as_deref(),
                )),
                Forwarded::Events { owner_id } => data.push(("events", None, None, Some(owner_id))),
            }
        }
        let mut tx = self.begin().await?;
        if !alerts.is_empty() {
            sqlx::query("INSERT INTO alert_changes (alert_id) SELECT unnest($1::text[])")
                .bind(&alerts)
                .execute(&mut *tx)
                .await?;
        }
        if !data.is_empty() {
            sqlx::query(
                "INSERT INTO node_changes (node, kind, entity_type, entity_id, owner_id)
                 SELECT n.id, r->>0, r->>1, r->>2, r->>3
                 FROM json_array_elements($1::json) AS r
                 CROSS JOIN (SELECT id FROM nodes
                             WHERE id <> $2 AND seen_at > now() - make_interval(secs => $3)) n",
            )
            .bind(super::rows_json(&data))
            .bind(node)
            .bind(interval(NODE_GONE_AFTER))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes (deletes and returns) the changes waiting for `node`: data changes addressed
    /// to it, and whole alerts it holds.
    pub async fn take_changes(&self, node: &str, limit: i64) -> Result<Vec<Forwarded>> {
        let mut tx = self.begin().await?;
        let data = sqlx::query(
            "DELETE FROM node_changes WHERE id IN (
                 SELECT id FROM node_changes WHERE node = $1
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING kind, entity_type, entity_id, owner_id",
        )
        .bind(node)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let alerts: Vec<String> = sqlx::query_scalar(
            "DELETE FROM alert_changes WHERE id IN (
                 SELECT c.id FROM alert_changes c
                 WHERE EXISTS (SELECT 1 FROM alert_leases l WHERE l.alert_id = c.alert_id
                               AND l.owner = $1 AND l.expires_at > now())
                 ORDER BY c.id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING alert_id",
        )
        .bind(node)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut taken: Vec<Forwarded> = data
            .iter()
            .filter_map(|row| {
                let owner_id: Option<String> = row.get("owner_id");
                match row.get::<&str, _>("kind") {
                    "entity" => Some(Forwarded::Entity {
                        entity_type: row.get("entity_type"),
                        entity_id: row.get("entity_id"),
                        owner_id,
                    }),
                    _ => owner_id.map(|owner_id| Forwarded::Events { owner_id }),
                }
            })
            .collect();
        taken.extend(alerts.into_iter().map(Forwarded::Alert));
        Ok(taken)
    }

    /// Deletes the changes addressed to nodes not seen for [`NODE_GONE_AFTER`]: their
    /// alerts are claimed, and evaluated whole, by the nodes that remain.
    pub async fn prune_changes(&self) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM node_changes c WHERE NOT EXISTS (
                 SELECT 1 FROM nodes n WHERE n.id = c.node AND n.seen_at > now() - make_interval(secs => $1))",
        )
        .bind(interval(NODE_GONE_AFTER))
        .execute(&self.pool)
        .await?
        .rows_affected())
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

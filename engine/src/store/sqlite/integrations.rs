//! Integrations, their delivery dedup and rejected deliveries, in SQLite.

use super::{Sqlite, instant, micros};
use crate::store::integrations::{Integration, REJECTED_KEPT, RejectedDelivery};
use crate::store::keys::hash_key;
use crate::store::{Error, Result};
use sqlx::{Row, Transaction};
use tocsin_domain::IntegrationKind as Kind;
use tocsin_sdk::time::Timestamp;

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Integration> {
    let kind: String = row.get("kind");
    Ok(Integration {
        kind: Kind::parse(&kind)
            .ok_or_else(|| Error::Corrupt(format!("integration kind {kind:?}")))?,
        id: row.get("id"),
        name: row.get("name"),
        alert_id: row.get("alert_id"),
        hmac_key: row.get("hmac_key"),
        pinned_certificates: row
            .get::<Option<String>, _>("pinned_certificates")
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
        created_at: instant(row.get("created_at")),
        updated_at: instant(row.get("updated_at")),
    })
}

impl Sqlite {
    /// Creates an integration with `secret`.
    pub async fn insert_integration(&self, integration: &Integration, secret: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO integrations (id, name, kind, secret_hash, alert_id, hmac_key, pinned_certificates, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&integration.id)
        .bind(&integration.name)
        .bind(integration.kind.as_str())
        .bind(hash_key(secret))
        .bind(&integration.alert_id)
        .bind(&integration.hmac_key)
        .bind(
            (!integration.pinned_certificates.is_empty())
                .then(|| serde_json::to_string(&integration.pinned_certificates).expect("strings")),
        )
        .bind(micros(integration.created_at))
        .bind(micros(integration.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Replaces an integration's secret; false when there is no such integration.
    pub async fn rotate_integration_secret(
        &self,
        id: &str,
        secret: &str,
        at: Timestamp,
    ) -> Result<bool> {
        Ok(
            sqlx::query("UPDATE integrations SET secret_hash = ?, updated_at = ? WHERE id = ?")
                .bind(hash_key(secret))
                .bind(micros(at))
                .bind(id)
                .execute(self.pool())
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// Deletes an integration and its delivery records; false when there was none.
    pub async fn delete_integration(&self, id: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        for table in ["deliveries", "rejected_deliveries"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE integration_id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM integrations WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(deleted)
    }

    /// One integration.
    pub async fn integration(&self, id: &str) -> Result<Option<Integration>> {
        sqlx::query("SELECT * FROM integrations WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|row| from_row(&row))
            .transpose()
    }

    /// The integration whose id and secret these are; `None` for either wrong.
    pub async fn authenticate_integration(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<Option<Integration>> {
        sqlx::query("SELECT * FROM integrations WHERE id = ? AND secret_hash = ?")
            .bind(id)
            .bind(hash_key(secret))
            .fetch_optional(self.pool())
            .await?
            .map(|row| from_row(&row))
            .transpose()
    }

    /// Integrations in id order after `after_id`.
    pub async fn list_integrations(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Integration>> {
        let rows = sqlx::query("SELECT * FROM integrations WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Keeps a refused delivery, dropping the oldest beyond [`REJECTED_KEPT`].
    pub async fn reject_delivery(
        &self,
        integration_id: &str,
        reason: &str,
        body: &[u8],
        at: Timestamp,
    ) -> Result<()> {
        let start = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO rejected_deliveries (integration_id, at, reason, body) VALUES (?, ?, ?, ?)")
            .bind(integration_id)
            .bind(micros(at))
            .bind(reason)
            .bind(start)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM rejected_deliveries WHERE integration_id = ? AND id NOT IN
                 (SELECT id FROM rejected_deliveries WHERE integration_id = ? ORDER BY id DESC LIMIT ?)",
        )
        .bind(integration_id)
        .bind(integration_id)
        .bind(REJECTED_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes integrations' alarms that resolved before `before` and have no unclosed
    /// incident (cloud_alarm's subject is the alarm's entity id). Returns how many.
    pub async fn prune_resolved_alarms(&self, before: Timestamp) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM entities WHERE entity_type = 'ALARM' AND owner_type = 'INTEGRATION'
               AND json_extract(attributes, '$.state') = 'RESOLVED' AND updated_at < ?
               AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.subject = entities.entity_id AND i.status != 'CLOSED')",
        )
        .bind(micros(before))
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Forgets the digests of deliveries taken before `before`. Returns how many.
    pub async fn prune_deliveries(&self, before: Timestamp) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM deliveries WHERE at < ?")
            .bind(micros(before))
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// An integration's rejected deliveries, newest first.
    pub async fn rejected_deliveries(&self, integration_id: &str) -> Result<Vec<RejectedDelivery>> {
        let rows = sqlx::query(
            "SELECT * FROM rejected_deliveries WHERE integration_id = ? ORDER BY id DESC",
        )
        .bind(integration_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|row| RejectedDelivery {
                at: instant(row.get("at")),
                reason: row.get("reason"),
                body: row.get("body"),
            })
            .collect())
    }
}

/// Records a delivery's digest inside a transaction; false when it was already taken.
pub(crate) async fn first_delivery(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    integration_id: &str,
    digest: &str,
    at: Timestamp,
) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO deliveries (integration_id, digest, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(integration_id)
    .bind(digest)
    .bind(micros(at))
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

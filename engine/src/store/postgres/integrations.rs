//! Integrations, their delivery dedup and rejected deliveries, in PostgreSQL.

use super::Postgres;
use crate::store::integrations::{Integration, REJECTED_KEPT, RejectedDelivery};
use crate::store::keys::hash_key;
use crate::store::{Error, Result};
use sqlx::postgres::PgRow;
use sqlx::{Row, Transaction};
use tocsin_domain::IntegrationKind as Kind;
use tocsin_sdk::time::Timestamp;

fn from_row(row: &PgRow) -> Result<Integration> {
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
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

impl Postgres {
    pub async fn insert_integration(&self, integration: &Integration, secret: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO integrations (id, name, kind, secret_hash, alert_id, hmac_key, pinned_certificates, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
        .bind(integration.created_at)
        .bind(integration.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn rotate_integration_secret(
        &self,
        id: &str,
        secret: &str,
        at: Timestamp,
    ) -> Result<bool> {
        Ok(
            sqlx::query("UPDATE integrations SET secret_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(hash_key(secret))
                .bind(at)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }

    pub async fn delete_integration(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        for table in ["deliveries", "rejected_deliveries"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE integration_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM integrations WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(deleted)
    }

    pub async fn integration(&self, id: &str) -> Result<Option<Integration>> {
        sqlx::query("SELECT * FROM integrations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| from_row(&row))
            .transpose()
    }

    pub async fn authenticate_integration(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<Option<Integration>> {
        sqlx::query("SELECT * FROM integrations WHERE id = $1 AND secret_hash = $2")
            .bind(id)
            .bind(hash_key(secret))
            .fetch_optional(&self.pool)
            .await?
            .map(|row| from_row(&row))
            .transpose()
    }

    pub async fn list_integrations(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Integration>> {
        let rows = sqlx::query("SELECT * FROM integrations WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn reject_delivery(
        &self,
        integration_id: &str,
        reason: &str,
        body: &[u8],
        at: Timestamp,
    ) -> Result<()> {
        // PostgreSQL's text holds no NUL.
        let start =
            String::from_utf8_lossy(&body[..body.len().min(4096)]).replace('\0', "\u{FFFD}");
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO rejected_deliveries (integration_id, at, reason, body) VALUES ($1, $2, $3, $4)")
            .bind(integration_id)
            .bind(at)
            .bind(reason.replace('\0', "\u{FFFD}"))
            .bind(start)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM rejected_deliveries WHERE integration_id = $1 AND id NOT IN
                 (SELECT id FROM rejected_deliveries WHERE integration_id = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(integration_id)
        .bind(REJECTED_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn prune_resolved_alarms(&self, before: Timestamp) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM entities WHERE entity_type = 'ALARM' AND owner_type = 'INTEGRATION'
               AND attributes->>'state' = 'RESOLVED' AND updated_at < $1
               AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.subject = entities.entity_id AND i.status <> 'CLOSED')",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    pub async fn prune_deliveries(&self, before: Timestamp) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM deliveries WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub async fn rejected_deliveries(&self, integration_id: &str) -> Result<Vec<RejectedDelivery>> {
        let rows = sqlx::query(
            "SELECT * FROM rejected_deliveries WHERE integration_id = $1 ORDER BY id DESC",
        )
        .bind(integration_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| RejectedDelivery {
                at: row.get("at"),
                reason: row.get("reason"),
                body: row.get("body"),
            })
            .collect())
    }
}

/// Records a delivery's digest inside a transaction; false when it was already taken (by
/// this node or another: the primary key decides).
pub(super) async fn first_delivery(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    integration_id: &str,
    digest: &str,
    at: Timestamp,
) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO deliveries (integration_id, digest, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(integration_id)
    .bind(digest)
    .bind(at)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

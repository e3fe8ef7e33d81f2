//! Console sessions and acknowledgement, in PostgreSQL.

use super::Postgres;
use super::incidents::from_row;
use super::texts::accept_elsewhere;
use crate::store::Result;
use crate::store::console::{Session, console_order};
use crate::store::incidents::Incident;
use crate::store::keys::Role;
use sqlx::Row;
use tocsin_sdk::time::Timestamp;

impl Postgres {
    pub async fn console_incidents(
        &self,
        statuses: &[&str],
        template: Option<&str>,
        alerts: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<Incident>> {
        // One index range (incidents_status) per status, newest first; merged below.
        let mut found = Vec::new();
        for status in statuses {
            let rows = sqlx::query(
                "SELECT * FROM incidents
                 WHERE status = $1 AND ($2::text IS NULL OR template_id = $2)
                   AND ($4::text[] IS NULL OR alert_id = ANY($4))
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(status)
            .bind(template)
            .bind(limit)
            .bind(alerts)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                found.push(from_row(row)?);
            }
        }
        Ok(console_order(found, limit))
    }

    pub async fn recent_deliveries(
        &self,
        integration_id: &str,
        limit: i64,
    ) -> Result<Vec<Timestamp>> {
        Ok(sqlx::query_scalar(
            "SELECT at FROM deliveries WHERE integration_id = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(integration_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn create_session(
        &self,
        hash: &[u8],
        key_id: &str,
        csrf: &str,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (hash, key_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(key_id)
        .bind(csrf)
        .bind(at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn session(&self, hash: &[u8], at: Timestamp) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT s.key_id, s.csrf, k.name, k.role FROM console_sessions s
             JOIN api_keys k ON k.id = s.key_id
             WHERE s.hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL",
        )
        .bind(hash)
        .bind(at)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|row| {
            Some(Session {
                key_id: row.get("key_id"),
                key_name: row.get("name"),
                role: Role::parse(row.get("role"))?,
                csrf: row.get("csrf"),
            })
        }))
    }

    pub async fn delete_session(&self, hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn acknowledge_incident(
        &self,
        id: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<Option<bool>> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT status FROM incidents WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let detail = serde_json::json!({"by": "console"});
        let opened = accept_elsewhere(&mut tx, id, by, "acknowledged", detail, at).await?;
        tx.commit().await?;
        if let Some(opened) = opened {
            self.calls.acknowledged(opened, at);
        }
        Ok(Some(opened.is_some()))
    }
}

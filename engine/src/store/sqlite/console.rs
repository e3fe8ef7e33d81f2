//! Console sessions and acknowledgement, in SQLite.

use super::incidents::from_row;
use super::texts::accept_elsewhere;
use super::{Sqlite, micros};
use crate::store::Result;
use crate::store::console::{Session, console_order};
use crate::store::incidents::Incident;
use crate::store::keys::Role;
use sqlx::Row;
use tocsin_sdk::time::Timestamp;

impl Sqlite {
    pub async fn console_incidents(
        &self,
        statuses: &[&str],
        template: Option<&str>,
        alerts: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<Incident>> {
        let alerts = alerts.map(|a| serde_json::to_string(a).expect("ids serialize"));
        // One index range (incidents_status) per status, newest first; merged below.
        let mut found = Vec::new();
        for status in statuses {
            let rows = sqlx::query(
                "SELECT * FROM incidents
                 WHERE status = ? AND (? IS NULL OR template_id = ?)
                   AND (? IS NULL OR alert_id IN (SELECT value FROM json_each(?)))
                 ORDER BY id DESC LIMIT ?",
            )
            .bind(status)
            .bind(template)
            .bind(template)
            .bind(&alerts)
            .bind(&alerts)
            .bind(limit)
            .fetch_all(self.pool())
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
        let at: Vec<i64> = sqlx::query_scalar(
            "SELECT at FROM deliveries WHERE integration_id = ? ORDER BY at DESC LIMIT ?",
        )
        .bind(integration_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(at.into_iter().map(super::instant).collect())
    }

    pub async fn create_session(
        &self,
        hash: &[u8],
        key_id: &str,
        csrf: &str,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= ?")
            .bind(micros(at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (hash, key_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(hash)
        .bind(key_id)
        .bind(csrf)
        .bind(micros(at))
        .bind(micros(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn session(&self, hash: &[u8], at: Timestamp) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT s.key_id, s.csrf, k.name, k.role FROM console_sessions s
             JOIN api_keys k ON k.id = s.key_id
             WHERE s.hash = ? AND s.expires_at > ? AND k.revoked_at IS NULL",
        )
        .bind(hash)
        .bind(micros(at))
        .fetch_optional(self.pool())
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
        sqlx::query("DELETE FROM console_sessions WHERE hash = ?")
            .bind(hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn acknowledge_incident(
        &self,
        id: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<Option<bool>> {
        let mut tx = self.write().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT status FROM incidents WHERE id = ?")
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

//! API keys and the audit log, in SQLite.

use super::{Sqlite, instant, micros};
use crate::store::Result;
use crate::store::keys::{ApiKey, AuditEntry, Role, hash_key};
use serde_json::Value;
use sqlx::Row;
use tocsin_sdk::time::Timestamp;

fn key_from_row(row: &sqlx::sqlite::SqliteRow) -> ApiKey {
    ApiKey {
        id: row.get("id"),
        name: row.get("name"),
        role: Role::parse(row.get::<&str, _>("role")).unwrap_or(Role::Viewer),
        created_at: instant(row.get("created_at")),
        created_by: row.get("created_by"),
        revoked_at: row.get::<Option<i64>, _>("revoked_at").map(instant),
    }
}

impl Sqlite {
    /// Stores a key by its hash.
    pub async fn insert_key(&self, key: &ApiKey, secret: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, hash, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(hash_key(secret))
        .bind(micros(key.created_at))
        .bind(&key.created_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many keys exist, revoked or not.
    pub async fn count_keys(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Every key.
    pub async fn list_keys(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT * FROM api_keys WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(key_from_row).collect())
    }

    /// Every usable key with its hash, for the in-memory lookup.
    pub async fn active_key_hashes(&self) -> Result<Vec<(Vec<u8>, ApiKey)>> {
        let rows = sqlx::query("SELECT * FROM api_keys WHERE revoked_at IS NULL")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<Vec<u8>, _>("hash"), key_from_row(row)))
            .collect())
    }

    /// Revokes a key; false when there is no such unrevoked key.
    pub async fn revoke_key(&self, id: &str, at: Timestamp) -> Result<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(micros(at))
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a privileged change.
    pub async fn audit(
        &self,
        at: Timestamp,
        actor: &str,
        action: &str,
        resource: &str,
        detail: Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, resource, detail) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(micros(at))
        .bind(actor)
        .bind(action)
        .bind(resource)
        .bind(detail.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit entries, newest first, before `before` when given.
    pub async fn list_audit(&self, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT * FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?")
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| AuditEntry {
                id: row.get("id"),
                at: instant(row.get("at")),
                actor: row.get("actor"),
                action: row.get("action"),
                resource: row.get("resource"),
                detail: serde_json::from_str(row.get::<&str, _>("detail")).unwrap_or(Value::Null),
            })
            .collect())
    }
}

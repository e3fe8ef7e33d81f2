//! Template components, in PostgreSQL.

use super::Postgres;
use crate::store::templates::{NewComponent, StoredTemplate};
use crate::store::{Result, json};
use sqlx::Row;
use tocsin_sdk::time::Timestamp;

impl Postgres {
    pub async fn register_component(
        &self,
        component: NewComponent<'_>,
        at: Timestamp,
    ) -> Result<()> {
        let info = component.info;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO plugins (digest, template_id, version, wasm, builtin, uploaded_at, uploaded_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(component.digest)
        .bind(&info.id)
        .bind(&info.version)
        .bind(component.wasm)
        .bind(component.builtin)
        .bind(at)
        .bind(component.uploaded_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO templates (id, digest, version, info, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, version = excluded.version,
                 info = excluded.info, updated_at = excluded.updated_at",
        )
        .bind(&info.id)
        .bind(component.digest)
        .bind(&info.version)
        .bind(serde_json::to_string(info).expect("info serializes"))
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn load_templates(&self) -> Result<Vec<(StoredTemplate, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT t.*, p.wasm, p.builtin FROM templates t JOIN plugins p ON p.digest = t.digest ORDER BY t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    StoredTemplate {
                        info: json(row.get("info"))?,
                        digest: row.get("digest"),
                        builtin: row.get("builtin"),
                        created_at: row.get("created_at"),
                        updated_at: row.get("updated_at"),
                    },
                    row.get("wasm"),
                ))
            })
            .collect()
    }
}

//! Template components, in SQLite.

use super::{Sqlite, instant, micros};
use crate::store::templates::{NewComponent, StoredTemplate};
use crate::store::{Result, json};
use sqlx::Row;
use tocsin_sdk::time::Timestamp;

impl Sqlite {
    /// Stores a component and makes its template id run it.
    pub async fn register_component(
        &self,
        component: NewComponent<'_>,
        at: Timestamp,
    ) -> Result<()> {
        let info = component.info;
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO plugins (digest, template_id, version, wasm, builtin, uploaded_at, uploaded_by)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(component.digest)
        .bind(&info.id)
        .bind(&info.version)
        .bind(component.wasm)
        .bind(component.builtin)
        .bind(micros(at))
        .bind(component.uploaded_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO templates (id, digest, version, info, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, version = excluded.version,
                 info = excluded.info, updated_at = excluded.updated_at",
        )
        .bind(&info.id)
        .bind(component.digest)
        .bind(&info.version)
        .bind(serde_json::to_string(info).expect("info serializes"))
        .bind(micros(at))
        .bind(micros(at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every registered template with the bytes of its current component.
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
                        created_at: instant(row.get("created_at")),
                        updated_at: instant(row.get("updated_at")),
                    },
                    row.get("wasm"),
                ))
            })
            .collect()
    }
}

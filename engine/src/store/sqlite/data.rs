//! Entity snapshots and events, and the answers to templates' queries, in SQLite.

use super::{Sqlite, instant, micros, rows_json};
use crate::store::data::{EntityUpsert, Event};
use crate::store::{Error, Result, json};
use serde_json::Value;
use sqlx::{QueryBuilder, Row, Transaction};
use tocsin_sdk::time::Timestamp;
use tocsin_sdk::{Answer, Attributes, Decimal, Entity, EventAggregate, Query};

fn entity_from_row(row: &sqlx::sqlite::SqliteRow) -> Entity {
    Entity {
        entity_type: row.get("entity_type"),
        entity_id: row.get("entity_id"),
        owner_type: row.get("owner_type"),
        owner_id: row.get("owner_id"),
        // Handed to templates as the stored text; only a template reading it parses it.
        attributes: Attributes::from_json(row.get("attributes")),
        updated_at: instant(row.get("updated_at")),
    }
}

fn event_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Event> {
    Ok(Event {
        id: row.get("id"),
        event_type: row.get("event_type"),
        owner_type: row.get("owner_type"),
        owner_id: row.get("owner_id"),
        entity_type: row.get("entity_type"),
        entity_id: row.get("entity_id"),
        timestamp: instant(row.get("ts")),
        value: row
            .get::<Option<&str>, _>("value")
            .map(|v| v.parse().map_err(Error::Corrupt))
            .transpose()?,
        attributes: json(row.get("attributes"))?,
    })
}

impl Sqlite {
    /// The entities among `keys` (type and id) that exist, in one read.
    pub async fn entities_by_key(&self, keys: &[(&str, &str)]) -> Result<Vec<Entity>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT e.* FROM json_each(?) k
             JOIN entities e ON e.entity_type = k.value->>0 AND e.entity_id = k.value->>1",
        )
        .bind(rows_json(keys))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entity_from_row).collect())
    }

    /// The entities of these (entity type, owner id) pairs, each pair's in id order.
    pub async fn entities_by_owner(&self, owners: &[(&str, &str)]) -> Result<Vec<Entity>> {
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT e.* FROM json_each(?) k
             JOIN entities e ON e.entity_type = k.value->>0 AND e.owner_id = k.value->>1
             ORDER BY e.entity_type, e.owner_id, e.entity_id",
        )
        .bind(rows_json(owners))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entity_from_row).collect())
    }

    /// The ids of the entities of a type, of one owner or of all, in id order.
    pub async fn entity_ids(
        &self,
        entity_type: &str,
        owner_id: Option<&str>,
    ) -> Result<Vec<String>> {
        let query = match owner_id {
            Some(owner) => sqlx::query_scalar(
                "SELECT entity_id FROM entities WHERE entity_type = ? AND owner_id = ? ORDER BY entity_id",
            )
            .bind(entity_type)
            .bind(owner),
            None => sqlx::query_scalar(
                "SELECT entity_id FROM entities WHERE entity_type = ? ORDER BY entity_id",
            )
            .bind(entity_type),
        };
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// One entity.
    pub async fn entity(&self, entity_type: &str, entity_id: &str) -> Result<Option<Entity>> {
        Ok(
            sqlx::query("SELECT * FROM entities WHERE entity_type = ? AND entity_id = ?")
                .bind(entity_type)
                .bind(entity_id)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| entity_from_row(&row)),
        )
    }

    /// Entities of a type, optionally of one owner, after `after_id`, in id order.
    pub async fn list_entities(
        &self,
        entity_type: &str,
        owner_id: Option<&str>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Entity>> {
        let rows = sqlx::query(
            "SELECT * FROM entities WHERE entity_type = ? AND (? IS NULL OR owner_id = ?) AND entity_id > ?
             ORDER BY entity_id LIMIT ?",
        )
        .bind(entity_type)
        .bind(owner_id)
        .bind(owner_id)
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entity_from_row).collect())
    }

    /// One event.
    pub async fn event(&self, id: &str) -> Result<Option<Event>> {
        sqlx::query("SELECT * FROM events WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| event_from_row(&row))
            .transpose()
    }

    /// Events of an owner (or all), newest timestamps last, after `after_id`.
    pub async fn list_events(
        &self,
        owner_id: Option<&str>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE (? IS NULL OR owner_id = ?) AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(owner_id)
        .bind(owner_id)
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Answers one template query from the database.
    pub async fn answer(&self, query: &Query) -> Result<Answer> {
        match query {
            Query::Entities(q) => {
                let mut sql = QueryBuilder::<sqlx::Sqlite>::new(
                    "SELECT * FROM entities WHERE entity_type = ",
                );
                sql.push_bind(&q.entity_type);
                push_filter(&mut sql, "owner_type", &q.owner_type);
                push_filter(&mut sql, "owner_id", &q.owner_id);
                push_filter(&mut sql, "entity_id", &q.entity_id);
                sql.push(" ORDER BY entity_id");
                let rows = sql.build().fetch_all(&self.pool).await?;
                Ok(Answer::Entities(rows.iter().map(entity_from_row).collect()))
            }
            Query::Events(q) => {
                let mut sql =
                    QueryBuilder::<sqlx::Sqlite>::new("SELECT value FROM events WHERE ts >= ");
                sql.push_bind(micros(q.start));
                sql.push(" AND ts < ");
                sql.push_bind(micros(q.end));
                push_filter(&mut sql, "event_type", &q.event_type);
                push_filter(&mut sql, "owner_type", &q.owner_type);
                push_filter(&mut sql, "owner_id", &q.owner_id);
                push_filter(&mut sql, "entity_type", &q.entity_type);
                push_filter(&mut sql, "entity_id", &q.entity_id);
                for m in &q.attributes {
                    // json_extract of a string attribute is the string; a number or bool
                    // never equals a bound text value, which is what "string attribute" means.
                    sql.push(" AND json_extract(attributes, ");
                    sql.push_bind(format!("$.\"{}\"", m.name.replace('"', "\"\"")));
                    sql.push(") = ");
                    sql.push_bind(&m.value);
                    sql.push(" AND json_type(attributes, ");
                    sql.push_bind(format!("$.\"{}\"", m.name.replace('"', "\"\"")));
                    sql.push(") = 'text'");
                }
                let rows = sql.build().fetch_all(&self.pool).await?;
                let mut aggregate = EventAggregate::default();
                for row in rows {
                    aggregate.count += 1;
                    if let Some(value) = row.get::<Option<&str>, _>("value") {
                        aggregate.sum += value.parse::<Decimal>().map_err(Error::Corrupt)?;
                    }
                }
                Ok(Answer::Events(aggregate))
            }
        }
    }
}

/// Upserts snapshots, each with its own write time, inside a transaction, all in one
/// statement: a group commit of hundreds of snapshots is one trip to the database, not one
/// per snapshot. A later snapshot of the same entity wins.
pub async fn put_entities(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    entities: &[(&EntityUpsert, Timestamp)],
) -> Result<()> {
    if entities.is_empty() {
        return Ok(());
    }
    // Attributes travel as JSON text inside the array, so they are stored byte for byte.
    let rows: Vec<_> = entities
        .iter()
        .map(|(e, at)| {
            (
                &e.entity_type,
                &e.entity_id,
                &e.owner_type,
                &e.owner_id,
                &e.attributes,
                micros(*at),
            )
        })
        .collect();
    sqlx::query(
        "INSERT INTO entities (entity_type, entity_id, owner_type, owner_id, attributes, updated_at)
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 FROM json_each(?) WHERE true ORDER BY key
         ON CONFLICT (entity_type, entity_id) DO UPDATE SET owner_type = excluded.owner_type,
             owner_id = excluded.owner_id, attributes = excluded.attributes, updated_at = excluded.updated_at",
    )
    .bind(rows_json(&rows))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Upserts events inside a transaction, all in one statement.
pub async fn put_events(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    events: &[Event],
    at: Timestamp,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            (
                &e.id,
                &e.event_type,
                &e.owner_type,
                &e.owner_id,
                &e.entity_type,
                &e.entity_id,
                micros(e.timestamp),
                e.value.map(|v| v.to_string()),
                Value::Object(e.attributes.clone()).to_string(),
            )
        })
        .collect();
    sqlx::query(
        "INSERT INTO events (id, event_type, owner_type, owner_id, entity_type, entity_id, ts, value, attributes, received_at)
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, ?1
         FROM json_each(?2) WHERE true ORDER BY key
         ON CONFLICT (id) DO UPDATE SET event_type = excluded.event_type, owner_type = excluded.owner_type,
             owner_id = excluded.owner_id, entity_type = excluded.entity_type, entity_id = excluded.entity_id,
             ts = excluded.ts, value = excluded.value, attributes = excluded.attributes,
             received_at = excluded.received_at",
    )
    .bind(micros(at))
    .bind(rows_json(&rows))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn push_filter<'a>(
    sql: &mut QueryBuilder<'a, sqlx::Sqlite>,
    column: &str,
    value: &'a Option<String>,
) {
    if let Some(value) = value {
        sql.push(format!(" AND {column} = "));
        sql.push_bind(value);
    }
}

//! Entity snapshots and events, and the answers to templates' queries, in PostgreSQL.

use super::{Postgres, rows_json};
use crate::store::data::{EntityUpsert, Event};
use crate::store::{Error, Result, json};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{QueryBuilder, Row, Transaction};
use tocsin_sdk::time::Timestamp;
use tocsin_sdk::{Answer, Attributes, Decimal, Entity, EventAggregate, Query};

/// Entity columns, with the attributes as the text they were written as.
const ENTITY: &str = "e.entity_type, e.entity_id, e.owner_type, e.owner_id, e.attributes::text AS attributes, e.updated_at";

fn entity_from_row(row: &PgRow) -> Entity {
    Entity {
        entity_type: row.get("entity_type"),
        entity_id: row.get("entity_id"),
        owner_type: row.get("owner_type"),
        owner_id: row.get("owner_id"),
        attributes: Attributes::from_json(row.get("attributes")),
        updated_at: row.get("updated_at"),
    }
}

/// Event columns, likewise.
const EVENT: &str = "id, event_type, owner_type, owner_id, entity_type, entity_id, ts, value, attributes::text AS attributes";

fn event_from_row(row: &PgRow) -> Result<Event> {
    Ok(Event {
        id: row.get("id"),
        event_type: row.get("event_type"),
        owner_type: row.get("owner_type"),
        owner_id: row.get("owner_id"),
        entity_type: row.get("entity_type"),
        entity_id: row.get("entity_id"),
        timestamp: row.get("ts"),
        value: row
            .get::<Option<&str>, _>("value")
            .map(|v| v.parse().map_err(Error::Corrupt))
            .transpose()?,
        attributes: json(row.get("attributes"))?,
    })
}

impl Postgres {
    pub async fn entities_by_key(&self, keys: &[(&str, &str)]) -> Result<Vec<Entity>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {ENTITY} FROM json_array_elements($1::json) k
             JOIN entities e ON e.entity_type = k->>0 AND e.entity_id = k->>1"
        ))
        .bind(rows_json(keys))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entity_from_row).collect())
    }

    pub async fn entities_by_owner(&self, owners: &[(&str, &str)]) -> Result<Vec<Entity>> {
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {ENTITY} FROM json_array_elements($1::json) k
             JOIN entities e ON e.entity_type = k->>0 AND e.owner_id = k->>1
             ORDER BY e.entity_type, e.owner_id, e.entity_id"
        ))
        .bind(rows_json(owners))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entity_from_row).collect())
    }

    pub async fn entity_ids(
        &self,
        entity_type: &str,
        owner_id: Option<&str>,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT entity_id FROM entities WHERE entity_type = $1 AND ($2::text IS NULL OR owner_id = $2)
             ORDER BY entity_id",
        )
        .bind(entity_type)
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn entity(&self, entity_type: &str, entity_id: &str) -> Result<Option<Entity>> {
        Ok(sqlx::query(&format!(
            "SELECT {ENTITY} FROM entities e WHERE e.entity_type = $1 AND e.entity_id = $2"
        ))
        .bind(entity_type)
        .bind(entity_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| entity_from_row(&row)))
    }

    pub async fn list_entities(
        &self,
        entity_type: &str,
        owner_id: Option<&str>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Entity>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTITY} FROM entities e
             WHERE e.entity_type = $1 AND ($2::text IS NULL OR e.owner_id = $2) AND e.entity_id > $3
             ORDER BY e.entity_id LIMIT $4"
        ))
        .bind(entity_type)
        .bind(owner_id)
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entity_from_row).collect())
    }

    pub async fn event(&self, id: &str) -> Result<Option<Event>> {
        sqlx::query(&format!("SELECT {EVENT} FROM events WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| event_from_row(&row))
            .transpose()
    }

    pub async fn list_events(
        &self,
        owner_id: Option<&str>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Event>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT} FROM events WHERE ($1::text IS NULL OR owner_id = $1) AND id > $2
             ORDER BY id LIMIT $3"
        ))
        .bind(owner_id)
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    pub async fn answer(&self, query: &Query) -> Result<Answer> {
        match query {
            Query::Entities(q) => {
                let mut sql = QueryBuilder::<sqlx::Postgres>::new(format!(
                    "SELECT {ENTITY} FROM entities e WHERE e.entity_type = "
                ));
                sql.push_bind(&q.entity_type);
                push_filter(&mut sql, "e.owner_type", &q.owner_type);
                push_filter(&mut sql, "e.owner_id", &q.owner_id);
                push_filter(&mut sql, "e.entity_id", &q.entity_id);
                sql.push(" ORDER BY e.entity_id");
                let rows = sql.build().fetch_all(&self.pool).await?;
                Ok(Answer::Entities(rows.iter().map(entity_from_row).collect()))
            }
            Query::Events(q) => {
                let mut sql =
                    QueryBuilder::<sqlx::Postgres>::new("SELECT value FROM events WHERE ts >= ");
                sql.push_bind(q.start);
                sql.push(" AND ts < ");
                sql.push_bind(q.end);
                push_filter(&mut sql, "event_type", &q.event_type);
                push_filter(&mut sql, "owner_type", &q.owner_type);
                push_filter(&mut sql, "owner_id", &q.owner_id);
                push_filter(&mut sql, "entity_type", &q.entity_type);
                push_filter(&mut sql, "entity_id", &q.entity_id);
                for m in &q.attributes {
                    // Only a string attribute matches: a number or bool never does.
                    sql.push(" AND json_typeof(attributes -> ");
                    sql.push_bind(&m.name);
                    sql.push(") = 'string' AND attributes ->> ");
                    sql.push_bind(&m.name);
                    sql.push(" = ");
                    sql.push_bind(&m.value);
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

/// Upserts snapshots, each with its own write time, in one statement. A later snapshot of
/// the same entity in the same group wins; so does the later of two nodes' writes.
pub(super) async fn put_entities(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    entities: &[(&EntityUpsert, Timestamp)],
) -> Result<()> {
    if entities.is_empty() {
        return Ok(());
    }
    // One row per entity: PostgreSQL refuses to update one row twice in one statement, so
    // of a group's snapshots of an entity only the last is sent.
    let mut last = std::collections::HashMap::new();
    for (index, (e, _)) in entities.iter().enumerate() {
        last.insert((&e.entity_type, &e.entity_id), index);
    }
    let mut rows: Vec<_> = entities
        .iter()
        .enumerate()
        .filter(|(index, (e, _))| last[&(&e.entity_type, &e.entity_id)] == *index)
        .map(|(_, (e, at))| {
            (
                &e.entity_type,
                &e.entity_id,
                &e.owner_type,
                &e.owner_id,
                &e.attributes,
                at,
            )
        })
        .collect();
    // Rows are locked in key order, the same on every node: two nodes' group commits that
    // touch the same entities then wait for each other instead of deadlocking (which
    // PostgreSQL resolves only after `deadlock_timeout`, a second, by failing one).
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    sqlx::query(
        "INSERT INTO entities (entity_type, entity_id, owner_type, owner_id, attributes, updated_at)
         SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::json, (r->>5)::timestamptz
         FROM json_array_elements($1::json) WITH ORDINALITY AS t (r, n) ORDER BY n
         ON CONFLICT (entity_type, entity_id) DO UPDATE SET owner_type = excluded.owner_type,
             owner_id = excluded.owner_id, attributes = excluded.attributes, updated_at = excluded.updated_at",
    )
    .bind(rows_json(&rows))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Upserts events in one statement; of one id sent twice in a group, the later stands.
pub(super) async fn put_events(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    events: &[Event],
    at: Timestamp,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut last = std::collections::HashMap::new();
    for (index, e) in events.iter().enumerate() {
        last.insert(&e.id, index);
    }
    let rows: Vec<_> = events
        .iter()
        .enumerate()
        .filter(|(index, e)| last[&e.id] == *index)
        .map(|(_, e)| {
            (
                &e.id,
                &e.event_type,
                &e.owner_type,
                &e.owner_id,
                &e.entity_type,
                &e.entity_id,
                e.timestamp,
                e.value.map(|v| v.to_string()),
                Value::Object(e.attributes.clone()).to_string(),
            )
        })
        .collect();
    sqlx::query(
        "INSERT INTO events (id, event_type, owner_type, owner_id, entity_type, entity_id, ts, value, attributes, received_at)
         SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, (r->>6)::timestamptz, r->>7, (r->>8)::json, $1
         FROM json_array_elements($2::json) WITH ORDINALITY AS t (r, n) ORDER BY n
         ON CONFLICT (id) DO UPDATE SET event_type = excluded.event_type, owner_type = excluded.owner_type,
             owner_id = excluded.owner_id, entity_type = excluded.entity_type, entity_id = excluded.entity_id,
             ts = excluded.ts, value = excluded.value, attributes = excluded.attributes,
             received_at = excluded.received_at",
    )
    .bind(at)
    .bind(rows_json(&rows))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn push_filter<'a>(
    sql: &mut QueryBuilder<'a, sqlx::Postgres>,
    column: &str,
    value: &'a Option<String>,
) {
    if let Some(value) = value {
        sql.push(format!(" AND {column} = "));
        sql.push_bind(value);
    }
}

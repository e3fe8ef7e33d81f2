//! Operators, rotations, schedules and overrides, in SQLite.

use super::{Sqlite, instant, micros, rows_json};
use crate::store::Result;
use crate::store::json;
use crate::store::oncall::{
    Directory, DirectoryRows, LOCAL_FORMAT, Operator, OverrideRecord, RotationRecord,
    ScheduleRecord, Uses, Wanted, load_directory, local_time, phone, time_zone,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use tocsin_domain::oncall::{Override, Rotation, ShiftUnit};
use tocsin_sdk::time::Timestamp;

fn operator_from_row(row: &SqliteRow) -> Result<Operator> {
    Ok(Operator {
        id: row.get("id"),
        name: row.get("name"),
        phone: phone(row.get("phone"))?,
        sms_phone: row
            .get::<Option<&str>, _>("sms_phone")
            .map(phone)
            .transpose()?,
        time_zone: row.get("time_zone"),
        created_at: instant(row.get("created_at")),
        updated_at: instant(row.get("updated_at")),
    })
}

fn rotation_from_row(row: &SqliteRow) -> Result<RotationRecord> {
    let unit: &str = row.get("unit");
    Ok(RotationRecord {
        id: row.get("id"),
        name: row.get("name"),
        rotation: Rotation {
            time_zone: time_zone(row.get("time_zone"))?,
            unit: ShiftUnit::parse(unit)
                .ok_or_else(|| crate::store::Error::Corrupt(format!("rotation unit {unit:?}")))?,
            shift_length: row.get::<i64, _>("shift_length") as u32,
            handoff_at: local_time(row.get("handoff_at"))?,
            participants: json(row.get("participants"))?,
        },
        created_at: instant(row.get("created_at")),
        updated_at: instant(row.get("updated_at")),
    })
}

fn schedule_from_row(row: &SqliteRow) -> Result<ScheduleRecord> {
    Ok(ScheduleRecord {
        id: row.get("id"),
        name: row.get("name"),
        time_zone: time_zone(row.get("time_zone"))?,
        rules: json(row.get("rules"))?,
        created_at: instant(row.get("created_at")),
        updated_at: instant(row.get("updated_at")),
    })
}

fn override_from_row(row: &SqliteRow) -> OverrideRecord {
    OverrideRecord {
        id: row.get("id"),
        schedule_id: row.get("schedule_id"),
        rule: Override {
            add: row.get("add_id"),
            remove: row.get("remove_id"),
            start: instant(row.get("starts_at")),
            end: instant(row.get("ends_at")),
        },
        created_by: row.get("created_by"),
        created_at: instant(row.get("created_at")),
    }
}

impl DirectoryRows for SqliteConnection {
    async fn schedules(
        &mut self,
        ids: &[String],
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(ScheduleRecord, Vec<OverrideRecord>)>> {
        let rows = sqlx::query(
            "SELECT s.*, o.id AS o_id, o.add_id, o.remove_id, o.starts_at, o.ends_at,
                    o.created_by AS o_created_by, o.created_at AS o_created_at
             FROM schedules s LEFT JOIN schedule_overrides o
                 ON o.schedule_id = s.id AND o.ends_at > ? AND o.starts_at < ?
             WHERE s.id IN (SELECT value FROM json_each(?))
             ORDER BY s.id, o.starts_at, o.id",
        )
        .bind(micros(from))
        .bind(micros(to))
        .bind(rows_json(ids))
        .fetch_all(&mut *self)
        .await?;
        let mut schedules: Vec<(ScheduleRecord, Vec<OverrideRecord>)> = Vec::new();
        for row in &rows {
            let id: &str = row.get("id");
            if schedules.last().is_none_or(|(s, _)| s.id != id) {
                schedules.push((schedule_from_row(row)?, Vec::new()));
            }
            if let Some(o_id) = row.get::<Option<String>, _>("o_id") {
                let overrides = &mut schedules.last_mut().expect("pushed").1;
                overrides.push(OverrideRecord {
                    id: o_id,
                    schedule_id: id.to_owned(),
                    rule: Override {
                        add: row.get("add_id"),
                        remove: row.get("remove_id"),
                        start: instant(row.get("starts_at")),
                        end: instant(row.get("ends_at")),
                    },
                    created_by: row.get("o_created_by"),
                    created_at: instant(row.get("o_created_at")),
                });
            }
        }
        Ok(schedules)
    }

    async fn overrides(
        &mut self,
        schedule_ids: &[String],
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<OverrideRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM schedule_overrides
             WHERE schedule_id IN (SELECT value FROM json_each(?)) AND ends_at > ? AND starts_at < ?
             ORDER BY starts_at, id",
        )
        .bind(rows_json(schedule_ids))
        .bind(micros(from))
        .bind(micros(to))
        .fetch_all(&mut *self)
        .await?;
        Ok(rows.iter().map(override_from_row).collect())
    }

    async fn rotations(&mut self, ids: &[String]) -> Result<Vec<RotationRecord>> {
        let rows =
            sqlx::query("SELECT * FROM rotations WHERE id IN (SELECT value FROM json_each(?))")
                .bind(rows_json(ids))
                .fetch_all(&mut *self)
                .await?;
        rows.iter().map(rotation_from_row).collect()
    }

    async fn operators(&mut self, ids: &[String]) -> Result<Vec<Operator>> {
        let rows =
            sqlx::query("SELECT * FROM operators WHERE id IN (SELECT value FROM json_each(?))")
                .bind(rows_json(ids))
                .fetch_all(&mut *self)
                .await?;
        rows.iter().map(operator_from_row).collect()
    }

    async fn generation(&mut self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT n FROM oncall_generation")
            .fetch_one(&mut *self)
            .await?)
    }

    async fn everything(&mut self) -> Result<Directory> {
        let schedules = sqlx::query("SELECT * FROM schedules")
            .fetch_all(&mut *self)
            .await?;
        let overrides = sqlx::query("SELECT * FROM schedule_overrides ORDER BY starts_at, id")
            .fetch_all(&mut *self)
            .await?;
        let overrides: Vec<OverrideRecord> = overrides.iter().map(override_from_row).collect();
        let mut directory = Directory::default();
        for row in &schedules {
            let record = schedule_from_row(row)?;
            directory
                .schedules
                .insert(record.id.clone(), record.schedule(&overrides));
        }
        for row in sqlx::query("SELECT * FROM rotations")
            .fetch_all(&mut *self)
            .await?
        {
            let record = rotation_from_row(&row)?;
            directory.rotations.insert(record.id, record.rotation);
        }
        for row in sqlx::query("SELECT * FROM operators")
            .fetch_all(&mut *self)
            .await?
        {
            let operator = operator_from_row(&row)?;
            directory.operators.insert(operator.id.clone(), operator);
        }
        Ok(directory)
    }
}

/// What names `id` as `field` in a JSON array column (`$.operatorId` of roster entries,
/// a participant, a rule's target): "table/id" for each.
async fn users(tx: &mut SqliteConnection, sql: &str, table: &str, id: &str) -> Result<Uses> {
    let ids: Vec<String> = sqlx::query_scalar(sql).bind(id).fetch_all(&mut *tx).await?;
    Ok(ids.into_iter().map(|i| format!("{table}/{i}")).collect())
}

const ROSTERS_NAMING: &str = "SELECT DISTINCT r.id FROM rosters r, json_each(r.members) m
     WHERE m.value->>'operatorId' = ?1 OR m.value->>'rotationId' = ?1 OR m.value->>'scheduleId' = ?1
     ORDER BY r.id";

impl Sqlite {
    pub async fn insert_operator(&self, o: &Operator) -> Result<()> {
        sqlx::query(
            "INSERT INTO operators (id, name, phone, sms_phone, time_zone, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&o.id)
        .bind(&o.name)
        .bind(o.phone.as_str())
        .bind(o.sms_phone.as_ref().map(|p| p.as_str()))
        .bind(&o.time_zone)
        .bind(micros(o.created_at))
        .bind(micros(o.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn update_operator(&self, o: &Operator) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE operators SET name = ?, phone = ?, sms_phone = ?, time_zone = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(&o.name)
        .bind(o.phone.as_str())
        .bind(o.sms_phone.as_ref().map(|p| p.as_str()))
        .bind(&o.time_zone)
        .bind(micros(o.updated_at))
        .bind(&o.id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_operator(&self, id: &str) -> Result<Result<bool, Uses>> {
        let mut tx = self.write().await?;
        let mut uses = users(&mut tx, ROSTERS_NAMING, "rosters", id).await?;
        uses.extend(
            users(
                &mut tx,
                "SELECT DISTINCT r.id FROM rotations r, json_each(r.participants) p
                 WHERE p.value = ? ORDER BY r.id",
                "rotations",
                id,
            )
            .await?,
        );
        uses.extend(
            users(
                &mut tx,
                "SELECT id FROM schedules s WHERE EXISTS (
                     SELECT 1 FROM json_each(s.rules) r WHERE r.value->>'operatorId' = ?1)
                 OR EXISTS (SELECT 1 FROM schedule_overrides o WHERE o.schedule_id = s.id
                            AND (o.add_id = ?1 OR o.remove_id = ?1))
                 ORDER BY id",
                "schedules",
                id,
            )
            .await?,
        );
        if !uses.is_empty() {
            return Ok(Err(uses));
        }
        let done = sqlx::query("DELETE FROM operators WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(done.rows_affected() == 1))
    }

    pub async fn operator(&self, id: &str) -> Result<Option<Operator>> {
        sqlx::query("SELECT * FROM operators WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|row| operator_from_row(&row))
            .transpose()
    }

    pub async fn list_operators(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Operator>> {
        let rows = sqlx::query("SELECT * FROM operators WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(operator_from_row).collect()
    }

    pub async fn insert_rotation(&self, r: &RotationRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO rotations (id, name, time_zone, unit, shift_length, handoff_at, participants, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(r.rotation.time_zone.name())
        .bind(r.rotation.unit.as_str())
        .bind(i64::from(r.rotation.shift_length))
        .bind(r.rotation.handoff_at.format(LOCAL_FORMAT).to_string())
        .bind(rows_json(&r.rotation.participants))
        .bind(micros(r.created_at))
        .bind(micros(r.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn update_rotation(&self, r: &RotationRecord) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE rotations SET name = ?, time_zone = ?, unit = ?, shift_length = ?, handoff_at = ?,
                 participants = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(&r.name)
        .bind(r.rotation.time_zone.name())
        .bind(r.rotation.unit.as_str())
        .bind(i64::from(r.rotation.shift_length))
        .bind(r.rotation.handoff_at.format(LOCAL_FORMAT).to_string())
        .bind(rows_json(&r.rotation.participants))
        .bind(micros(r.updated_at))
        .bind(&r.id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_rotation(&self, id: &str) -> Result<Result<bool, Uses>> {
        let mut tx = self.write().await?;
        let mut uses = users(&mut tx, ROSTERS_NAMING, "rosters", id).await?;
        uses.extend(
            users(
                &mut tx,
                "SELECT DISTINCT s.id FROM schedules s, json_each(s.rules) r
                 WHERE r.value->>'rotationId' = ? ORDER BY s.id",
                "schedules",
                id,
            )
            .await?,
        );
        if !uses.is_empty() {
            return Ok(Err(uses));
        }
        let done = sqlx::query("DELETE FROM rotations WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(done.rows_affected() == 1))
    }

    pub async fn rotation(&self, id: &str) -> Result<Option<RotationRecord>> {
        sqlx::query("SELECT * FROM rotations WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|row| rotation_from_row(&row))
            .transpose()
    }

    pub async fn list_rotations(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RotationRecord>> {
        let rows = sqlx::query("SELECT * FROM rotations WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(rotation_from_row).collect()
    }

    pub async fn insert_schedule(&self, s: &ScheduleRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO schedules (id, name, time_zone, rules, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.name)
        .bind(s.time_zone.name())
        .bind(rows_json(&s.rules))
        .bind(micros(s.created_at))
        .bind(micros(s.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn update_schedule(&self, s: &ScheduleRecord) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE schedules SET name = ?, time_zone = ?, rules = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&s.name)
        .bind(s.time_zone.name())
        .bind(rows_json(&s.rules))
        .bind(micros(s.updated_at))
        .bind(&s.id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_schedule(&self, id: &str) -> Result<Result<bool, Uses>> {
        let mut tx = self.write().await?;
        let uses = users(&mut tx, ROSTERS_NAMING, "rosters", id).await?;
        if !uses.is_empty() {
            return Ok(Err(uses));
        }
        let done = sqlx::query("DELETE FROM schedules WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(done.rows_affected() == 1))
    }

    pub async fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>> {
        sqlx::query("SELECT * FROM schedules WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|row| schedule_from_row(&row))
            .transpose()
    }

    pub async fn list_schedules(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ScheduleRecord>> {
        let rows = sqlx::query("SELECT * FROM schedules WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after_id.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    pub async fn insert_override(&self, o: &OverrideRecord) -> Result<Result<(), String>> {
        let mut tx = self.write().await?;
        let clash: Option<String> = sqlx::query_scalar(
            "SELECT id FROM schedule_overrides
             WHERE schedule_id = ?1 AND starts_at < ?2 AND ends_at > ?3
               AND (add_id IN (?4, ?5) OR remove_id IN (?4, ?5))
             ORDER BY starts_at LIMIT 1",
        )
        .bind(&o.schedule_id)
        .bind(micros(o.rule.end))
        .bind(micros(o.rule.start))
        .bind(&o.rule.add)
        .bind(&o.rule.remove)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(clash) = clash {
            return Ok(Err(clash));
        }
        sqlx::query(
            "INSERT INTO schedule_overrides (id, schedule_id, add_id, remove_id, starts_at, ends_at, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&o.id)
        .bind(&o.schedule_id)
        .bind(&o.rule.add)
        .bind(&o.rule.remove)
        .bind(micros(o.rule.start))
        .bind(micros(o.rule.end))
        .bind(&o.created_by)
        .bind(micros(o.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    pub async fn overrides(
        &self,
        schedule_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<OverrideRecord>> {
        let mut conn = self.pool().acquire().await?;
        conn.overrides(&[schedule_id.to_owned()], from, to).await
    }

    pub async fn delete_override(&self, schedule_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM schedule_overrides WHERE schedule_id = ? AND id = ?")
            .bind(schedule_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn directory(
        &self,
        wanted: &Wanted,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Directory> {
        let mut conn = self.pool().acquire().await?;
        load_directory(&mut *conn, wanted, from, to).await
    }
}

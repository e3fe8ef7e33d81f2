//! Texts after missed calls, in SQLite.

use super::escalation::loop_of;
use super::incidents::timeline;
use super::{Sqlite, micros};
use crate::store::Result;
use crate::store::escalation::ENDED;
use crate::store::texts::{Accepted, Text};
use serde_json::json;
use sqlx::Row;
use tocsin_domain::call_loop as machine;
use tocsin_sdk::time::Timestamp;
use tocsin_twilio::PhoneNumber;

fn text_from_row(row: &sqlx::sqlite::SqliteRow) -> Text {
    Text {
        id: row.get("id"),
        incident_id: row.get("incident_id"),
        member: row.get("member"),
        phone: row.get("phone"),
        body: row.get("body"),
    }
}

/// An OPEN incident accepted outside a call (a reply to a text, the console): ACKNOWLEDGED
/// by `by`, with `kind` on its timeline; its loop is over and a call still ringing is ended.
/// When it opened; `None` when it was not OPEN.
pub(super) async fn accept_elsewhere(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    incident: &str,
    by: &str,
    kind: &str,
    detail: serde_json::Value,
    at: Timestamp,
) -> Result<Option<Timestamp>> {
    let Some(opened): Option<i64> = sqlx::query_scalar(
        "UPDATE incidents SET status = 'ACKNOWLEDGED', acknowledged_by = ?, updated_at = ?
         WHERE id = ? AND status = 'OPEN' RETURNING created_at",
    )
    .bind(by)
    .bind(micros(at))
    .bind(incident)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    timeline(tx, incident, at, kind, Some(by), detail).await?;
    if let Some(state) = loop_of(tx, incident).await?
        && let Some((after, _end_call)) = machine::accepted_elsewhere(state)
    {
        sqlx::query("UPDATE escalations SET state = ?, updated_at = ? WHERE incident_id = ?")
            .bind(after.state.as_str())
            .bind(micros(at))
            .bind(incident)
            .execute(&mut **tx)
            .await?;
        sqlx::query(&format!(
            "UPDATE calls SET end_requested = 1, updated_at = ?
                 WHERE incident_id = ? AND status NOT IN {ENDED} AND end_requested = 0"
        ))
        .bind(micros(at))
        .bind(incident)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Some(super::instant(opened)))
}

impl Sqlite {
    pub async fn texts_to_send(&self) -> Result<Vec<Text>> {
        let rows = sqlx::query(
            "SELECT * FROM texts WHERE status = 'pending' ORDER BY created_at, id LIMIT 100",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(text_from_row).collect())
    }

    pub async fn text_sending(&self, id: &str, at: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE texts SET status = 'sending', updated_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(micros(at))
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn text_done(
        &self,
        text: &Text,
        result: Result<&str, &str>,
        at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let (status, sid) = match result {
            Ok(sid) => ("sent", Some(sid)),
            Err(_) => ("failed", None),
        };
        sqlx::query("UPDATE texts SET status = ?, sid = ?, updated_at = ? WHERE id = ?")
            .bind(status)
            .bind(sid)
            .bind(micros(at))
            .bind(&text.id)
            .execute(&mut *tx)
            .await?;
        let masked = PhoneNumber::parse(&text.phone).map_or_else(|_| "…".into(), |p| p.masked());
        let (kind, detail) = match result {
            Ok(sid) => (
                "sms-sent",
                json!({"textId": text.id, "sid": sid, "phone": masked}),
            ),
            Err(reason) => (
                "sms-failed",
                json!({"textId": text.id, "phone": masked, "reason": reason}),
            ),
        };
        timeline(
            &mut tx,
            &text.incident_id,
            at,
            kind,
            Some(&text.member),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn text_reply(
        &self,
        from: &str,
        body: &str,
        sid: &str,
        at: Timestamp,
    ) -> Result<Option<Accepted>> {
        if body.trim() != "1" {
            return Ok(None);
        }
        let mut tx = self.write().await?;
        let Some(row) = sqlx::query(
            "SELECT t.id, t.incident_id, t.member FROM texts t JOIN incidents i ON i.id = t.incident_id
             WHERE t.phone = ? AND t.status IN ('sending', 'sent') AND i.status = 'OPEN'
             ORDER BY t.created_at DESC, t.id DESC LIMIT 1",
        )
        .bind(from)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let (text_id, incident, member): (String, String, String) =
            (row.get("id"), row.get("incident_id"), row.get("member"));
        let detail = json!({"textId": text_id, "sid": sid});
        let Some(opened) =
            accept_elsewhere(&mut tx, &incident, &member, "sms-accepted", detail, at).await?
        else {
            return Ok(None);
        };
        tx.commit().await?;
        self.calls.acknowledged(opened, at);
        Ok(Some(Accepted {
            incident_id: incident,
            member,
        }))
    }
}

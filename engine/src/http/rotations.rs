//! `/rotations`: a shift handed among operators in turn. Who holds it is computed at the
//! instant asked about (`tocsin_domain::oncall`), never stored; a handoff re-anchors it.

use super::auth::{Caller, Need};
use super::entities::check_name;
use super::operators::time_zone;
use super::{ApiError, AppState, Json, Page, next_token};
use crate::store::incidents::new_id;
use crate::store::oncall::{LOCAL_FORMAT, RotationRecord, Wanted};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_domain::oncall::{Rotation, ShiftUnit};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most participants a rotation may have.
const PARTICIPANT_LIMIT: usize = 200;

/// What a shift is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RotationType {
    /// Local hours.
    Hourly,
    /// Local days.
    Daily,
    /// Local weeks.
    Weekly,
}

impl From<RotationType> for ShiftUnit {
    fn from(t: RotationType) -> Self {
        match t {
            RotationType::Hourly => Self::Hourly,
            RotationType::Daily => Self::Daily,
            RotationType::Weekly => Self::Weekly,
        }
    }
}

impl From<ShiftUnit> for RotationType {
    fn from(unit: ShiftUnit) -> Self {
        match unit {
            ShiftUnit::Hourly => Self::Hourly,
            ShiftUnit::Daily => Self::Daily,
            ShiftUnit::Weekly => Self::Weekly,
        }
    }
}

/// The body of `POST /rotations` and `PUT /rotations/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotationRequest {
    /// Name.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// IANA time zone whose wall clock counts the shifts.
    pub time_zone: String,
    /// What a shift is counted in.
    #[serde(rename = "type")]
    pub kind: RotationType,
    /// Units per shift, 1 to 9000.
    #[schema(minimum = 1, maximum = 9000)]
    pub shift_length: u32,
    /// The local date-time of one handoff to the first participant, `YYYY-MM-DDTHH:MM` (or
    /// with `:SS`), on the wall clock of `timeZone`.
    #[schema(example = "2026-12-07T09:00")]
    pub handoff_at: String,
    /// Operator ids, in handing order (1 to 200; one may appear more than once).
    #[schema(min_items = 1, max_items = 200)]
    pub participants: Vec<String>,
}

/// A rotation, as the API shows it, with who holds it now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Rotation)]
pub struct RotationView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// IANA time zone.
    pub time_zone: String,
    /// What a shift is counted in.
    #[serde(rename = "type")]
    pub kind: RotationType,
    /// Units per shift.
    pub shift_length: u32,
    /// The local date-time of a handoff to the first participant.
    pub handoff_at: String,
    /// Operator ids, in handing order.
    pub participants: Vec<String>,
    /// Who holds it now.
    pub holder: Option<String>,
    /// When it is next handed over.
    pub next_handoff_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

fn view(r: RotationRecord, now: DateTime<Utc>) -> RotationView {
    let rotation = &r.rotation;
    RotationView {
        holder: rotation.holder(now).map(str::to_owned),
        next_handoff_at: rotation.handoff(rotation.shift_index(now) + 1),
        time_zone: rotation.time_zone.name().to_owned(),
        kind: rotation.unit.into(),
        shift_length: rotation.shift_length,
        handoff_at: rotation.handoff_at.format(LOCAL_FORMAT).to_string(),
        participants: r.rotation.participants,
        id: r.id,
        name: r.name,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// Reads a local date-time named by `field`: `YYYY-MM-DDTHH:MM`, seconds optional.
fn local_date_time(field: &str, text: &str) -> Result<NaiveDateTime, ApiError> {
    NaiveDateTime::parse_from_str(text, LOCAL_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .ok()
        .filter(|t| (1970..=9999).contains(&chrono::Datelike::year(t)))
        .ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "{field} {text:?} is not a local date-time YYYY-MM-DDTHH:MM (without a zone: timeZone gives it)"
            ))
        })
}

/// Checks that each id names an operator; `field` prefixes the error.
pub async fn check_operators(core: &AppState, field: &str, ids: &[String]) -> Result<(), ApiError> {
    let now = core.clock.now();
    let wanted = Wanted {
        operators: ids.to_vec(),
        ..Wanted::default()
    };
    let found = core.store.directory(&wanted, now, now).await?;
    match ids.iter().position(|id| !found.operators.contains_key(id)) {
        Some(i) => Err(ApiError::Unprocessable(format!(
            "{field}[{i}] {:?}: no such operator",
            ids[i]
        ))),
        None => Ok(()),
    }
}

async fn parse(
    core: &AppState,
    id: String,
    request: RotationRequest,
) -> Result<RotationRecord, ApiError> {
    check_name("name", &request.name)?;
    let zone = time_zone("timeZone", &request.time_zone)?;
    if !(1..=9000).contains(&request.shift_length) {
        return Err(ApiError::Unprocessable(format!(
            "shiftLength {} must be between 1 and 9000",
            request.shift_length
        )));
    }
    let handoff_at = local_date_time("handoffAt", &request.handoff_at)?;
    if request.participants.is_empty() || request.participants.len() > PARTICIPANT_LIMIT {
        return Err(ApiError::Unprocessable(format!(
            "participants must list 1 to {PARTICIPANT_LIMIT} operator ids; it lists {}",
            request.participants.len()
        )));
    }
    check_operators(core, "participants", &request.participants).await?;
    let now = core.clock.now();
    Ok(RotationRecord {
        id,
        name: request.name,
        rotation: Rotation {
            time_zone: zone,
            unit: request.kind.into(),
            shift_length: request.shift_length,
            handoff_at,
            participants: request.participants,
        },
        created_at: now,
        updated_at: now,
    })
}

fn audit_detail(r: &RotationRecord) -> serde_json::Value {
    serde_json::json!({"name": r.name, "timeZone": r.rotation.time_zone.name(),
        "type": r.rotation.unit.as_str(), "shiftLength": r.rotation.shift_length,
        "handoffAt": r.rotation.handoff_at.format(LOCAL_FORMAT).to_string(),
        "participants": r.rotation.participants})
}

super::page! {
    /// A page of rotations.
    RotationsPage: Vec<RotationView>,
    "Rotations."
}

/// Create a rotation (admin).
#[utoipa::path(post, path = "/rotations", tag = "on-call", request_body = RotationRequest,
    responses((status = 201, body = RotationView), (status = 422, description = "Invalid rotation")))]
async fn create_rotation(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<RotationRequest>,
) -> Result<(StatusCode, Json<RotationView>), ApiError> {
    caller.require(Need::Admin)?;
    let rotation = parse(&core, new_id("rot"), request).await?;
    core.store.insert_rotation(&rotation).await?;
    core.store
        .audit(
            rotation.created_at,
            &caller.key_id,
            "rotation.create",
            &format!("rotations/{}", rotation.id),
            audit_detail(&rotation),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(rotation, core.clock.now()))))
}

/// List rotations.
#[utoipa::path(get, path = "/rotations", tag = "on-call", params(Page),
    responses((status = 200, body = RotationsPage)))]
async fn list_rotations(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<RotationsPage>, ApiError> {
    caller.require(Need::Read)?;
    let size = page.size()?;
    let rotations = core
        .store
        .list_rotations(page.after()?.as_deref(), size)
        .await?;
    let next_token = next_token(&rotations, size, |r| &r.id);
    let now = core.clock.now();
    Ok(Json(RotationsPage {
        data: rotations.into_iter().map(|r| view(r, now)).collect(),
        next_token,
    }))
}

async fn find_rotation(core: &AppState, id: &str) -> Result<RotationRecord, ApiError> {
    core.store
        .rotation(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no rotation {id}")))
}

/// Get a rotation, with who holds it now.
#[utoipa::path(get, path = "/rotations/{rotation_id}", tag = "on-call",
    params(("rotation_id" = String, Path, description = "Rotation id")),
    responses((status = 200, body = RotationView)))]
async fn get_rotation(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RotationView>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(view(
        find_rotation(&core, &id).await?,
        core.clock.now(),
    )))
}

/// Replace a rotation (admin). Loops under way keep whom they expanded to.
#[utoipa::path(put, path = "/rotations/{rotation_id}", tag = "on-call", request_body = RotationRequest,
    params(("rotation_id" = String, Path, description = "Rotation id")),
    responses((status = 200, body = RotationView), (status = 422, description = "Invalid rotation")))]
async fn update_rotation(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<RotationRequest>,
) -> Result<Json<RotationView>, ApiError> {
    caller.require(Need::Admin)?;
    let before = find_rotation(&core, &id).await?;
    let rotation = RotationRecord {
        created_at: before.created_at,
        ..parse(&core, id.clone(), request).await?
    };
    if !core.store.update_rotation(&rotation).await? {
        return Err(ApiError::NotFound(format!("no rotation {id}")));
    }
    core.store
        .audit(
            rotation.updated_at,
            &caller.key_id,
            "rotation.update",
            &format!("rotations/{id}"),
            audit_detail(&rotation),
        )
        .await?;
    Ok(Json(view(rotation, core.clock.now())))
}

/// Delete a rotation no roster or schedule names (admin).
#[utoipa::path(delete, path = "/rotations/{rotation_id}", tag = "on-call",
    params(("rotation_id" = String, Path, description = "Rotation id")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Something names the rotation")))]
async fn delete_rotation(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    match core.store.delete_rotation(&id).await? {
        Err(uses) => Err(ApiError::Conflict(format!(
            "rotation {id} is named by {}; remove it there first",
            uses.join(", ")
        ))),
        Ok(false) => Err(ApiError::NotFound(format!("no rotation {id}"))),
        Ok(true) => {
            core.store
                .audit(
                    core.clock.now(),
                    &caller.key_id,
                    "rotation.delete",
                    &format!("rotations/{id}"),
                    serde_json::json!({}),
                )
                .await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// The body of `POST /rotations/{id}/handoff`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffRequest {
    /// The participant who holds the rotation from now on.
    pub to: String,
}

/// Hand the rotation to a participant now (admin): it is re-anchored so that they hold it
/// from this minute (this hour, for hourly rotations), and the order of turns is kept.
#[utoipa::path(post, path = "/rotations/{rotation_id}/handoff", tag = "on-call", request_body = HandoffRequest,
    params(("rotation_id" = String, Path, description = "Rotation id")),
    responses((status = 200, body = RotationView), (status = 422, description = "Not a participant")))]
async fn hand_off(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<HandoffRequest>,
) -> Result<Json<RotationView>, ApiError> {
    caller.require(Need::Admin)?;
    let before = find_rotation(&core, &id).await?;
    let now = core.clock.now();
    let Some(rotation) = before.rotation.handed_to(&request.to, now) else {
        return Err(ApiError::Unprocessable(format!(
            "to {:?} is not a participant of rotation {id}",
            request.to
        )));
    };
    let record = RotationRecord {
        rotation,
        updated_at: now,
        ..before
    };
    if !core.store.update_rotation(&record).await? {
        return Err(ApiError::NotFound(format!("no rotation {id}")));
    }
    core.store
        .audit(
            now,
            &caller.key_id,
            "rotation.handoff",
            &format!("rotations/{id}"),
            serde_json::json!({"to": request.to, "handoffAt": record.rotation.handoff_at.format(LOCAL_FORMAT).to_string()}),
        )
        .await?;
    Ok(Json(view(record, now)))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_rotation, list_rotations))
        .routes(routes!(get_rotation, update_rotation, delete_rotation))
        .routes(routes!(hand_off))
}

//! `/schedules`: weekly rules naming operators and rotations, overrides on top, and the
//! reads "who is on call at…" and "who is on call when, over this range".

use super::auth::{Caller, Need};
use super::entities::check_name;
use super::operators::{shown, time_zone};
use super::rotations::check_operators;
use super::{ApiError, AppState, Json, Page, next_token};
use crate::store::incidents::new_id;
use crate::store::oncall::{Directory, OverrideRecord, RuleSpec, ScheduleRecord, Wanted};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tocsin_domain::oncall::{Override, Target};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most rules a schedule may have.
const RULE_LIMIT: usize = 100;
/// The longest range `shifts` answers for.
const SHIFTS_RANGE_DAYS: i64 = 31;
/// The longest an override may last.
const OVERRIDE_LIMIT_DAYS: i64 = 366;

/// The body of `POST /schedules` and `PUT /schedules/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleRequest {
    /// Name.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// IANA time zone whose wall clock the rules read.
    pub time_zone: String,
    /// In order: everyone an open rule names is on call, in rule order, each once (1 to 100).
    #[schema(min_items = 1, max_items = 100)]
    pub rules: Vec<RuleSpec>,
}

/// A schedule, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Schedule)]
pub struct ScheduleView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// IANA time zone.
    pub time_zone: String,
    /// In order.
    pub rules: Vec<RuleSpec>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<ScheduleRecord> for ScheduleView {
    fn from(s: ScheduleRecord) -> Self {
        Self {
            id: s.id,
            name: s.name,
            time_zone: s.time_zone.name().to_owned(),
            rules: s.rules,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

async fn parse(
    core: &AppState,
    id: String,
    request: ScheduleRequest,
) -> Result<ScheduleRecord, ApiError> {
    check_name("name", &request.name)?;
    let zone = time_zone("timeZone", &request.time_zone)?;
    if request.rules.is_empty() || request.rules.len() > RULE_LIMIT {
        return Err(ApiError::Unprocessable(format!(
            "rules must list 1 to {RULE_LIMIT} rules; it lists {}",
            request.rules.len()
        )));
    }
    let mut wanted = Wanted::default();
    for (i, spec) in request.rules.iter().enumerate() {
        match spec
            .parse(&format!("rules[{i}]"))
            .map_err(ApiError::Unprocessable)?
            .target
        {
            Target::Operator(id) => wanted.operators.push(id),
            Target::Rotation(id) => wanted.rotations.push(id),
        }
    }
    let now = core.clock.now();
    let found = core.store.directory(&wanted, now, now).await?;
    for (i, spec) in request.rules.iter().enumerate() {
        if let Some(id) = &spec.operator_id
            && !found.operators.contains_key(id)
        {
            return Err(ApiError::Unprocessable(format!(
                "rules[{i}].operatorId {id:?}: no such operator"
            )));
        }
        if let Some(id) = &spec.rotation_id
            && !found.rotations.contains_key(id)
        {
            return Err(ApiError::Unprocessable(format!(
                "rules[{i}].rotationId {id:?}: no such rotation"
            )));
        }
    }
    Ok(ScheduleRecord {
        id,
        name: request.name,
        time_zone: zone,
        rules: request.rules,
        created_at: now,
        updated_at: now,
    })
}

super::page! {
    /// A page of schedules.
    SchedulesPage: Vec<ScheduleView>,
    "Schedules."
}

fn audit_detail(s: &ScheduleRecord) -> serde_json::Value {
    serde_json::json!({"name": s.name, "timeZone": s.time_zone.name(), "rules": s.rules})
}

/// Create a schedule (admin).
#[utoipa::path(post, path = "/schedules", tag = "on-call", request_body = ScheduleRequest,
    responses((status = 201, body = ScheduleView), (status = 422, description = "Invalid schedule")))]
async fn create_schedule(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<ScheduleRequest>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    caller.require(Need::Admin)?;
    let schedule = parse(&core, new_id("sch"), request).await?;
    core.store.insert_schedule(&schedule).await?;
    core.store
        .audit(
            schedule.created_at,
            &caller.key_id,
            "schedule.create",
            &format!("schedules/{}", schedule.id),
            audit_detail(&schedule),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(schedule.into())))
}

/// List schedules.
#[utoipa::path(get, path = "/schedules", tag = "on-call", params(Page),
    responses((status = 200, body = SchedulesPage)))]
async fn list_schedules(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<SchedulesPage>, ApiError> {
    caller.require(Need::Read)?;
    let size = page.size()?;
    let schedules = core
        .store
        .list_schedules(page.after()?.as_deref(), size)
        .await?;
    let next_token = next_token(&schedules, size, |s| &s.id);
    Ok(Json(SchedulesPage {
        data: schedules.into_iter().map(ScheduleView::from).collect(),
        next_token,
    }))
}

async fn find_schedule(core: &AppState, id: &str) -> Result<ScheduleRecord, ApiError> {
    core.store
        .schedule(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no schedule {id}")))
}

/// Get a schedule.
#[utoipa::path(get, path = "/schedules/{schedule_id}", tag = "on-call",
    params(("schedule_id" = String, Path, description = "Schedule id")),
    responses((status = 200, body = ScheduleView)))]
async fn get_schedule(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(find_schedule(&core, &id).await?.into()))
}

/// Replace a schedule's name, time zone and rules (admin); its overrides stay.
#[utoipa::path(put, path = "/schedules/{schedule_id}", tag = "on-call", request_body = ScheduleRequest,
    params(("schedule_id" = String, Path, description = "Schedule id")),
    responses((status = 200, body = ScheduleView), (status = 422, description = "Invalid schedule")))]
async fn update_schedule(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<ScheduleRequest>,
) -> Result<Json<ScheduleView>, ApiError> {
    caller.require(Need::Admin)?;
    let before = find_schedule(&core, &id).await?;
    let schedule = ScheduleRecord {
        created_at: before.created_at,
        ..parse(&core, id.clone(), request).await?
    };
    if !core.store.update_schedule(&schedule).await? {
        return Err(ApiError::NotFound(format!("no schedule {id}")));
    }
    core.store
        .audit(
            schedule.updated_at,
            &caller.key_id,
            "schedule.update",
            &format!("schedules/{id}"),
            audit_detail(&schedule),
        )
        .await?;
    Ok(Json(schedule.into()))
}

/// Delete a schedule no roster names, with its overrides (admin).
#[utoipa::path(delete, path = "/schedules/{schedule_id}", tag = "on-call",
    params(("schedule_id" = String, Path, description = "Schedule id")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "A roster names the schedule")))]
async fn delete_schedule(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    match core.store.delete_schedule(&id).await? {
        Err(uses) => Err(ApiError::Conflict(format!(
            "schedule {id} is named by {}; remove it there first",
            uses.join(", ")
        ))),
        Ok(false) => Err(ApiError::NotFound(format!("no schedule {id}"))),
        Ok(true) => {
            core.store
                .audit(
                    core.clock.now(),
                    &caller.key_id,
                    "schedule.delete",
                    &format!("schedules/{id}"),
                    serde_json::json!({}),
                )
                .await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// The body of `POST /schedules/{id}/overrides`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideRequest {
    /// The operator put on call (alone: added; with `remove`: in their place).
    pub add: Option<String>,
    /// The operator taken off call (alone: removed; with `add`: replaced while on call).
    pub remove: Option<String>,
    /// From (inclusive).
    pub start: DateTime<Utc>,
    /// To (exclusive), after `start` and at most 366 days after it.
    pub end: DateTime<Utc>,
}

/// An override, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Override)]
pub struct OverrideView {
    /// Id.
    pub id: String,
    /// Its schedule.
    pub schedule_id: String,
    /// Who comes on call.
    pub add: Option<String>,
    /// Who goes off call.
    pub remove: Option<String>,
    /// From (inclusive).
    pub start: DateTime<Utc>,
    /// To (exclusive).
    pub end: DateTime<Utc>,
    /// The API key that made it.
    pub created_by: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<OverrideRecord> for OverrideView {
    fn from(o: OverrideRecord) -> Self {
        Self {
            id: o.id,
            schedule_id: o.schedule_id,
            add: o.rule.add,
            remove: o.rule.remove,
            start: o.rule.start,
            end: o.rule.end,
            created_by: o.created_by,
            created_at: o.created_at,
        }
    }
}

/// Override a schedule for a while (admin): add an operator, remove one, or replace one
/// by another. One that overlaps another override of the same schedule involving the same
/// operator is refused (409).
#[utoipa::path(post, path = "/schedules/{schedule_id}/overrides", tag = "on-call", request_body = OverrideRequest,
    params(("schedule_id" = String, Path, description = "Schedule id")),
    responses((status = 201, body = OverrideView), (status = 409, description = "Overlaps an override of the same operator"), (status = 422, description = "Invalid override")))]
async fn create_override(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<OverrideRequest>,
) -> Result<(StatusCode, Json<OverrideView>), ApiError> {
    caller.require(Need::Admin)?;
    find_schedule(&core, &id).await?;
    let named: Vec<String> = request.add.iter().chain(&request.remove).cloned().collect();
    match (&request.add, &request.remove) {
        (None, None) => {
            return Err(ApiError::Unprocessable(
                "an override needs add, remove, or both".into(),
            ));
        }
        (Some(add), Some(remove)) if add == remove => {
            return Err(ApiError::Unprocessable(format!(
                "add and remove both name {add}: an operator cannot replace themselves"
            )));
        }
        _ => {}
    }
    if request.end <= request.start {
        return Err(ApiError::Unprocessable(format!(
            "end {} must be after start {}",
            request.end.to_rfc3339(),
            request.start.to_rfc3339()
        )));
    }
    if request.end - request.start > Duration::days(OVERRIDE_LIMIT_DAYS) {
        return Err(ApiError::Unprocessable(format!(
            "an override lasts at most {OVERRIDE_LIMIT_DAYS} days"
        )));
    }
    for (field, operator) in [("add", &request.add), ("remove", &request.remove)] {
        if let Some(operator) = operator {
            check_operators(&core, field, std::slice::from_ref(operator))
                .await
                .map_err(|_| {
                    ApiError::Unprocessable(format!("{field} {operator:?}: no such operator"))
                })?;
        }
    }
    debug_assert!(!named.is_empty());
    let now = core.clock.now();
    let record = OverrideRecord {
        id: new_id("ovr"),
        schedule_id: id.clone(),
        rule: Override {
            add: request.add,
            remove: request.remove,
            start: request.start,
            end: request.end,
        },
        created_by: caller.key_id.clone(),
        created_at: now,
    };
    if let Err(clash) = core.store.insert_override(&record).await? {
        return Err(ApiError::Conflict(format!(
            "override {clash} of schedule {id} involves {} over part of the same time",
            named.join(" or ")
        )));
    }
    core.store
        .audit(
            now,
            &caller.key_id,
            "schedule.override.create",
            &format!("schedules/{id}/overrides/{}", record.id),
            serde_json::json!({"add": record.rule.add, "remove": record.rule.remove,
                "start": record.rule.start, "end": record.rule.end}),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// A range of instants; `from` defaults to now.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Range {
    /// From (inclusive, RFC 3339); default now.
    pub from: Option<DateTime<Utc>>,
    /// To (exclusive, RFC 3339); default a week after `from`, at most 31 days after it.
    pub to: Option<DateTime<Utc>>,
}

impl Range {
    fn checked(&self, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let from = self.from.unwrap_or(now);
        let to = self.to.unwrap_or(from + Duration::days(7));
        if to <= from {
            return Err(ApiError::BadRequest(format!(
                "to {} must be after from {}",
                to.to_rfc3339(),
                from.to_rfc3339()
            )));
        }
        if to - from > Duration::days(SHIFTS_RANGE_DAYS) {
            return Err(ApiError::BadRequest(format!(
                "from and to may be at most {SHIFTS_RANGE_DAYS} days apart"
            )));
        }
        Ok((from, to))
    }
}

/// The overrides of a schedule's that meet a range.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverridesList {
    /// By start.
    pub data: Vec<OverrideView>,
}

/// List a schedule's overrides over a range (default: the coming week).
#[utoipa::path(get, path = "/schedules/{schedule_id}/overrides", tag = "on-call",
    params(("schedule_id" = String, Path, description = "Schedule id"), Range),
    responses((status = 200, body = OverridesList)))]
async fn list_overrides(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(range): Query<Range>,
) -> Result<Json<OverridesList>, ApiError> {
    caller.require(Need::Read)?;
    find_schedule(&core, &id).await?;
    let (from, to) = range.checked(core.clock.now())?;
    let overrides = core.store.overrides(&id, from, to).await?;
    Ok(Json(OverridesList {
        data: overrides.into_iter().map(OverrideView::from).collect(),
    }))
}

/// Delete an override (admin).
#[utoipa::path(delete, path = "/schedules/{schedule_id}/overrides/{override_id}", tag = "on-call",
    params(("schedule_id" = String, Path, description = "Schedule id"), ("override_id" = String, Path, description = "Override id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_override(
    State(core): State<AppState>,
    caller: Caller,
    Path((id, override_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    if !core.store.delete_override(&id, &override_id).await? {
        return Err(ApiError::NotFound(format!(
            "schedule {id} has no override {override_id}"
        )));
    }
    core.store
        .audit(
            core.clock.now(),
            &caller.key_id,
            "schedule.override.delete",
            &format!("schedules/{id}/overrides/{override_id}"),
            serde_json::json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An operator as an on-call read shows them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnCallOperator {
    /// Id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// Number (masked for everyone but admins).
    pub phone: String,
}

/// `id` as an on-call read shows them; `None` for an operator since deleted.
pub fn on_call_operator(
    directory: &Directory,
    id: &str,
    caller: &Caller,
) -> Option<OnCallOperator> {
    directory.operators.get(id).map(|o| OnCallOperator {
        operator_id: o.id.clone(),
        name: o.name.clone(),
        phone: shown(&o.phone, caller),
    })
}

/// An instant to ask about; default now.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct At {
    /// RFC 3339; default now.
    pub at: Option<DateTime<Utc>>,
}

/// Who is on call at an instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnCall {
    /// The instant.
    pub at: DateTime<Utc>,
    /// In on-call order.
    pub operators: Vec<OnCallOperator>,
}

/// What reading schedule `id` over `[from, to)` needs; with `at`, only who is on call then.
async fn schedule_directory(
    core: &AppState,
    id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    at: Option<DateTime<Utc>>,
) -> Result<Directory, ApiError> {
    find_schedule(core, id).await?;
    let wanted = Wanted {
        schedules: vec![id.to_owned()],
        instants: at.map(|at| vec![at]),
        ..Wanted::default()
    };
    Ok(core.store.directory(&wanted, from, to).await?)
}

/// Who is on call on a schedule at an instant (default now): its rules, then its overrides.
#[utoipa::path(get, path = "/schedules/{schedule_id}/on-call", tag = "on-call",
    params(("schedule_id" = String, Path, description = "Schedule id"), At),
    responses((status = 200, body = OnCall)))]
async fn on_call(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(at): Query<At>,
) -> Result<Json<OnCall>, ApiError> {
    caller.require(Need::Read)?;
    let at = at.at.unwrap_or_else(|| core.clock.now());
    let directory =
        schedule_directory(&core, &id, at, at + Duration::microseconds(1), Some(at)).await?;
    let operators = directory
        .schedules
        .get(&id)
        .map(|s| s.on_call(&directory.rotations, at))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|op| on_call_operator(&directory, op, &caller))
        .collect();
    Ok(Json(OnCall { at, operators }))
}

/// One operator's unbroken time on call.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShiftView {
    /// Who.
    #[serde(flatten)]
    pub operator: OnCallOperator,
    /// From (inclusive; the range's start when it began before).
    pub start: DateTime<Utc>,
    /// To (exclusive; the range's end when it goes on after).
    pub end: DateTime<Utc>,
}

/// Who is on call when over a range.
#[derive(Debug, Serialize, ToSchema)]
pub struct Shifts {
    /// From.
    pub from: DateTime<Utc>,
    /// To.
    pub to: DateTime<Utc>,
    /// By start, then on-call order.
    pub shifts: Vec<ShiftView>,
}

/// Each operator's time on call on a schedule over a range of at most 31 days (default:
/// the coming week).
#[utoipa::path(get, path = "/schedules/{schedule_id}/shifts", tag = "on-call",
    params(("schedule_id" = String, Path, description = "Schedule id"), Range),
    responses((status = 200, body = Shifts)))]
async fn shifts(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(range): Query<Range>,
) -> Result<Json<Shifts>, ApiError> {
    caller.require(Need::Read)?;
    let (from, to) = range.checked(core.clock.now())?;
    let directory = schedule_directory(&core, &id, from, to, None).await?;
    let shifts = directory
        .schedules
        .get(&id)
        .map(|s| s.shifts(&directory.rotations, from, to))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| {
            Some(ShiftView {
                operator: on_call_operator(&directory, s.operator, &caller)?,
                start: s.start,
                end: s.end,
            })
        })
        .collect();
    Ok(Json(Shifts { from, to, shifts }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_schedule, list_schedules))
        .routes(routes!(get_schedule, update_schedule, delete_schedule))
        .routes(routes!(create_override, list_overrides))
        .routes(routes!(delete_override))
        .routes(routes!(on_call))
        .routes(routes!(shifts))
}

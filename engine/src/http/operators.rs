//! `/operators`: the people Tocsin calls, each with one number. Anyone who reads may list
//! them (numbers masked but for admins); only admins edit them, audited.

use super::auth::{Caller, Need};
use super::entities::check_name;
use super::{ApiError, AppState, Json, Page, next_token};
use crate::store::Violation;
use crate::store::escalation::CallStats;
use crate::store::incidents::new_id;
use crate::store::keys::Role;
use crate::store::oncall::Operator;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tocsin_twilio::PhoneNumber;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The body of `POST /operators` and `PUT /operators/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorRequest {
    /// Name.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// E.164 number they are called on; one operator per number.
    #[schema(pattern = r"^\+[1-9][0-9]{1,14}$")]
    pub phone: String,
    /// E.164 number they are texted on, when not `phone`.
    #[schema(pattern = r"^\+[1-9][0-9]{1,14}$")]
    pub sms_phone: Option<String>,
    /// Their IANA time zone (`Europe/London`), for showing them times.
    pub time_zone: Option<String>,
}

/// An operator, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Operator)]
pub struct OperatorView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// E.164 number (masked, `…0100`, for everyone but admins).
    pub phone: String,
    /// SMS number, when not `phone` (masked likewise).
    pub sms_phone: Option<String>,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// `phone` as `caller` may see it.
pub fn shown(phone: &PhoneNumber, caller: &Caller) -> String {
    if caller.role == Role::Admin {
        phone.as_str().to_owned()
    } else {
        phone.masked()
    }
}

fn view(o: Operator, caller: &Caller) -> OperatorView {
    OperatorView {
        phone: shown(&o.phone, caller),
        sms_phone: o.sms_phone.as_ref().map(|p| shown(p, caller)),
        id: o.id,
        name: o.name,
        time_zone: o.time_zone,
        created_at: o.created_at,
        updated_at: o.updated_at,
    }
}

/// Reads an IANA time zone named by `field`.
pub fn time_zone(field: &str, name: &str) -> Result<Tz, ApiError> {
    name.parse().map_err(|_| {
        ApiError::Unprocessable(format!(
            "{field} {name:?} is not an IANA time zone (such as Europe/London or America/New_York)"
        ))
    })
}

/// The request, parsed into the operator `id` would become.
fn parse(id: String, request: OperatorRequest, at: DateTime<Utc>) -> Result<Operator, ApiError> {
    check_name("name", &request.name)?;
    let phone = PhoneNumber::parse(&request.phone)
        .map_err(|e| ApiError::Unprocessable(format!("phone {e}")))?;
    let sms_phone = request
        .sms_phone
        .as_deref()
        .map(|p| {
            PhoneNumber::parse(p).map_err(|e| ApiError::Unprocessable(format!("smsPhone {e}")))
        })
        .transpose()?;
    if let Some(zone) = &request.time_zone {
        time_zone("timeZone", zone)?;
    }
    Ok(Operator {
        id,
        name: request.name,
        phone,
        sms_phone,
        time_zone: request.time_zone,
        created_at: at,
        updated_at: at,
    })
}

/// A store error as an answer: a number already taken is a conflict naming it.
fn taken(error: crate::store::Error, phone: &PhoneNumber) -> ApiError {
    if error.violation() == Some(Violation::Unique) {
        return ApiError::Conflict(format!(
            "phone {} is already another operator's; one operator per number",
            phone.masked()
        ));
    }
    error.into()
}

fn audit_detail(o: &Operator) -> serde_json::Value {
    serde_json::json!({"name": o.name, "phone": o.phone.masked(),
        "smsPhone": o.sms_phone.as_ref().map(PhoneNumber::masked), "timeZone": o.time_zone})
}

super::page! {
    /// A page of operators.
    OperatorsPage: Vec<OperatorView>,
    "Operators."
}

/// Create an operator (admin).
#[utoipa::path(post, path = "/operators", tag = "on-call", request_body = OperatorRequest,
    responses((status = 201, body = OperatorView), (status = 409, description = "Another operator has this number"), (status = 422, description = "Invalid operator")))]
async fn create_operator(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<OperatorRequest>,
) -> Result<(StatusCode, Json<OperatorView>), ApiError> {
    caller.require(Need::Admin)?;
    let operator = parse(new_id("op"), request, core.clock.now())?;
    core.store
        .insert_operator(&operator)
        .await
        .map_err(|e| taken(e, &operator.phone))?;
    core.store
        .audit(
            operator.created_at,
            &caller.key_id,
            "operator.create",
            &format!("operators/{}", operator.id),
            audit_detail(&operator),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(operator, &caller))))
}

/// List operators.
#[utoipa::path(get, path = "/operators", tag = "on-call", params(Page),
    responses((status = 200, body = OperatorsPage)))]
async fn list_operators(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<OperatorsPage>, ApiError> {
    caller.require(Need::Read)?;
    let size = page.size()?;
    let operators = core
        .store
        .list_operators(page.after()?.as_deref(), size)
        .await?;
    let next_token = next_token(&operators, size, |o| &o.id);
    Ok(Json(OperatorsPage {
        data: operators.into_iter().map(|o| view(o, &caller)).collect(),
        next_token,
    }))
}

/// The operator `id`, or 404.
pub async fn find_operator(core: &AppState, id: &str) -> Result<Operator, ApiError> {
    core.store
        .operator(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no operator {id}")))
}

/// Get an operator.
#[utoipa::path(get, path = "/operators/{operator_id}", tag = "on-call",
    params(("operator_id" = String, Path, description = "Operator id")),
    responses((status = 200, body = OperatorView)))]
async fn get_operator(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OperatorView>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(view(find_operator(&core, &id).await?, &caller)))
}

/// Replace an operator's name, numbers and time zone (admin). Loops under way keep the
/// number they started with.
#[utoipa::path(put, path = "/operators/{operator_id}", tag = "on-call", request_body = OperatorRequest,
    params(("operator_id" = String, Path, description = "Operator id")),
    responses((status = 200, body = OperatorView), (status = 409, description = "Another operator has this number"), (status = 422, description = "Invalid operator")))]
async fn update_operator(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<OperatorRequest>,
) -> Result<Json<OperatorView>, ApiError> {
    caller.require(Need::Admin)?;
    let before = find_operator(&core, &id).await?;
    let operator = Operator {
        created_at: before.created_at,
        ..parse(id.clone(), request, core.clock.now())?
    };
    let updated = core
        .store
        .update_operator(&operator)
        .await
        .map_err(|e| taken(e, &operator.phone))?;
    if !updated {
        return Err(ApiError::NotFound(format!("no operator {id}")));
    }
    core.store
        .audit(
            operator.updated_at,
            &caller.key_id,
            "operator.update",
            &format!("operators/{id}"),
            audit_detail(&operator),
        )
        .await?;
    Ok(Json(view(operator, &caller)))
}

/// Delete an operator no roster, rotation or schedule names (admin).
#[utoipa::path(delete, path = "/operators/{operator_id}", tag = "on-call",
    params(("operator_id" = String, Path, description = "Operator id")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Something names the operator")))]
async fn delete_operator(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    match core.store.delete_operator(&id).await? {
        Err(uses) => Err(ApiError::Conflict(format!(
            "operator {id} is named by {}; remove it there first",
            uses.join(", ")
        ))),
        Ok(false) => Err(ApiError::NotFound(format!("no operator {id}"))),
        Ok(true) => {
            core.store
                .audit(
                    core.clock.now(),
                    &caller.key_id,
                    "operator.delete",
                    &format!("operators/{id}"),
                    serde_json::json!({}),
                )
                .await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// The range statistics cover; `from` defaults to 30 days before `to`, `to` to now
/// (including calls placed this second).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsRange {
    /// From (inclusive, RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// To (exclusive, RFC 3339), at most 366 days after `from`.
    pub to: Option<DateTime<Utc>>,
}

/// An operator's answer statistics over a range.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorStats {
    /// The operator.
    pub operator_id: String,
    /// From.
    pub from: DateTime<Utc>,
    /// To.
    pub to: DateTime<Utc>,
    /// Their calls.
    #[serde(flatten)]
    pub stats: CallStats,
}

/// How an operator answers: calls placed to them in a range (default the last 30 days),
/// answered, accepted, passed and missed, and the median seconds to answer and to accept.
#[utoipa::path(get, path = "/operators/{operator_id}/stats", tag = "on-call",
    params(("operator_id" = String, Path, description = "Operator id"), StatsRange),
    responses((status = 200, body = OperatorStats)))]
async fn operator_stats(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(range): Query<StatsRange>,
) -> Result<Json<OperatorStats>, ApiError> {
    caller.require(Need::Read)?;
    find_operator(&core, &id).await?;
    // By default up to and including this second.
    let to = range
        .to
        .unwrap_or_else(|| core.clock.now() + chrono::Duration::seconds(1));
    let from = range.from.unwrap_or(to - chrono::Duration::days(30));
    if to <= from || to - from > chrono::Duration::days(366) {
        return Err(ApiError::BadRequest(format!(
            "to must be after from, and at most 366 days after it ({} to {})",
            from.to_rfc3339(),
            to.to_rfc3339()
        )));
    }
    let calls = core.store.operator_calls(&id, from, to).await?;
    Ok(Json(OperatorStats {
        operator_id: id,
        from,
        to,
        stats: CallStats::of(&calls),
    }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_operator, list_operators))
        .routes(routes!(get_operator, update_operator, delete_operator))
        .routes(routes!(operator_stats))
}

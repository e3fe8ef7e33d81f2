//! `/rosters` and `/routes`: who is phoned, in what order, for which incidents. Anyone who
//! reads may list them; only admins edit them (audited) and see full phone numbers.

use super::auth::{Caller, Need};
use super::entities::check_name;
use super::{ApiError, AppState, Json, Page, next_token};
use crate::store::escalation::{Member, Roster, Route};
use crate::store::incidents::new_id;
use crate::store::keys::Role;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_twilio::PhoneNumber;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most members a roster may have.
const MEMBER_LIMIT: usize = 50;

/// The body of `POST /rosters` and `PUT /rosters/{id}`; the order of `members` is the
/// calling order, so a PUT reorders them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RosterRequest {
    /// Name.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// Operators in calling order, 1 to 50.
    #[schema(min_items = 1, max_items = 50)]
    pub members: Vec<MemberBody>,
    /// Times the whole roster is called before giving up, 1 to 10 (default 1).
    #[schema(minimum = 1, maximum = 10)]
    pub loops: Option<u32>,
    /// Seconds a phone rings before it counts as unanswered, 5 to 600 (default 30).
    #[schema(minimum = 5, maximum = 600)]
    pub ring_timeout_seconds: Option<u32>,
    /// Where to POST (JSON) when every loop is spent without an acceptance.
    pub fallback_url: Option<String>,
}

/// An operator on a roster, as the API reads and shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Member)]
pub struct MemberBody {
    /// Who.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// E.164 phone number (masked, `…0100`, for everyone but admins).
    #[schema(pattern = r"^\+[1-9][0-9]{1,14}$")]
    pub phone: String,
}

/// A roster, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Roster)]
pub struct RosterView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// In calling order.
    pub members: Vec<MemberBody>,
    /// How many times the whole roster is called before giving up.
    pub loops: u32,
    /// Seconds a phone rings before the call counts as unanswered.
    pub ring_timeout_seconds: u32,
    /// Where to POST when the loops are spent without an acceptance.
    pub fallback_url: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A roster as `caller` may see it: phone numbers are masked for everyone but admins.
fn view(roster: Roster, caller: &Caller) -> RosterView {
    let admin = caller.role == Role::Admin;
    RosterView {
        id: roster.id,
        name: roster.name,
        members: roster
            .members
            .into_iter()
            .map(|m| MemberBody {
                phone: if admin {
                    m.phone.into()
                } else {
                    m.phone.masked()
                },
                name: m.name,
            })
            .collect(),
        loops: roster.loops,
        ring_timeout_seconds: roster.ring_timeout_seconds,
        fallback_url: roster.fallback_url,
        created_at: roster.created_at,
        updated_at: roster.updated_at,
    }
}

fn check_url(what: &str, url: &str) -> Result<(), ApiError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(ApiError::Unprocessable(format!(
            "{what} {url:?} is not an http or https URL"
        ))),
    }
}

/// A roster request, parsed: every member's number is E.164 and appears once, and the
/// counts are in range.
struct NewRoster {
    name: String,
    members: Vec<Member>,
    loops: Option<u32>,
    ring_timeout_seconds: Option<u32>,
    fallback_url: Option<String>,
}

impl TryFrom<RosterRequest> for NewRoster {
    type Error = ApiError;

    fn try_from(request: RosterRequest) -> Result<Self, ApiError> {
        check_name("name", &request.name)?;
        if request.members.is_empty() || request.members.len() > MEMBER_LIMIT {
            return Err(ApiError::Unprocessable(format!(
                "members must list 1 to {MEMBER_LIMIT} operators; it lists {}",
                request.members.len()
            )));
        }
        let mut members: Vec<Member> = Vec::with_capacity(request.members.len());
        for (i, member) in request.members.into_iter().enumerate() {
            check_name(&format!("members[{i}].name"), &member.name)?;
            let phone = PhoneNumber::parse(&member.phone)
                .map_err(|e| ApiError::Unprocessable(format!("members[{i}].phone {e}")))?;
            if let Some(j) = members.iter().position(|m| m.phone == phone) {
                return Err(ApiError::Unprocessable(format!(
                    "members[{i}].phone repeats members[{j}].phone"
                )));
            }
            members.push(Member {
                name: member.name,
                phone,
            });
        }
        if let Some(loops) = request.loops
            && !(1..=10).contains(&loops)
        {
            return Err(ApiError::Unprocessable(format!(
                "loops {loops} must be between 1 and 10"
            )));
        }
        if let Some(seconds) = request.ring_timeout_seconds
            && !(5..=600).contains(&seconds)
        {
            return Err(ApiError::Unprocessable(format!(
                "ringTimeoutSeconds {seconds} must be between 5 and 600"
            )));
        }
        if let Some(url) = &request.fallback_url {
            check_url("fallbackUrl", url)?;
        }
        Ok(Self {
            name: request.name,
            members,
            loops: request.loops,
            ring_timeout_seconds: request.ring_timeout_seconds,
            fallback_url: request.fallback_url,
        })
    }
}

fn audit_detail(roster: &Roster) -> serde_json::Value {
    serde_json::json!({
        "name": roster.name,
        "members": roster.members.iter().map(|m| serde_json::json!({"name": m.name, "phone": m.phone.masked()})).collect::<Vec<_>>(),
        "loops": roster.loops,
        "ringTimeoutSeconds": roster.ring_timeout_seconds,
        "fallbackUrl": roster.fallback_url,
    })
}

super::page! {
    /// A page of rosters.
    RostersPage: Vec<RosterView>,
    "Rosters."
}

/// Create a roster (admin).
#[utoipa::path(post, path = "/rosters", tag = "escalation", request_body = RosterRequest,
    responses((status = 201, body = RosterView), (status = 422, description = "Invalid roster")))]
async fn create_roster(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<RosterRequest>,
) -> Result<(StatusCode, Json<RosterView>), ApiError> {
    caller.require(Need::Admin)?;
    let request = NewRoster::try_from(request)?;
    let now = core.clock.now();
    let roster = Roster {
        id: new_id("ros"),
        name: request.name,
        members: request.members,
        loops: request.loops.unwrap_or(1),
        ring_timeout_seconds: request.ring_timeout_seconds.unwrap_or(30),
        fallback_url: request.fallback_url,
        created_at: now,
        updated_at: now,
    };
    core.store.insert_roster(&roster).await?;
    core.store
        .audit(
            now,
            &caller.key_id,
            "roster.create",
            &format!("rosters/{}", roster.id),
            audit_detail(&roster),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(roster, &caller))))
}

/// List rosters.
#[utoipa::path(get, path = "/rosters", tag = "escalation", params(Page),
    responses((status = 200, body = RostersPage)))]
async fn list_rosters(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<RostersPage>, ApiError> {
    caller.require(Need::Read)?;
    let size = page.size()?;
    let rosters = core
        .store
        .list_rosters(page.after()?.as_deref(), size)
        .await?;
    let next_token = next_token(&rosters, size, |r| &r.id);
    Ok(Json(RostersPage {
        data: rosters.into_iter().map(|r| view(r, &caller)).collect(),
        next_token,
    }))
}

async fn find_roster(core: &AppState, id: &str) -> Result<Roster, ApiError> {
    core.store
        .roster(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no roster {id}")))
}

/// Get a roster.
#[utoipa::path(get, path = "/rosters/{roster_id}", tag = "escalation",
    params(("roster_id" = String, Path, description = "Roster id")),
    responses((status = 200, body = RosterView), (status = 404, description = "No such roster")))]
async fn get_roster(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RosterView>, ApiError> {
    caller.require(Need::Read)?;
    Ok(Json(view(find_roster(&core, &id).await?, &caller)))
}

/// Replace a roster: its name, members and their order, loops, ring timeout, fallback
/// (admin). Escalations already under way keep the roster they started with.
#[utoipa::path(put, path = "/rosters/{roster_id}", tag = "escalation", request_body = RosterRequest,
    params(("roster_id" = String, Path, description = "Roster id")),
    responses((status = 200, body = RosterView), (status = 404, description = "No such roster"), (status = 422, description = "Invalid roster")))]
async fn update_roster(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<RosterRequest>,
) -> Result<Json<RosterView>, ApiError> {
    caller.require(Need::Admin)?;
    let before = find_roster(&core, &id).await?;
    let request = NewRoster::try_from(request)?;
    let now = core.clock.now();
    let roster = Roster {
        name: request.name,
        members: request.members,
        loops: request.loops.unwrap_or(before.loops),
        ring_timeout_seconds: request
            .ring_timeout_seconds
            .unwrap_or(before.ring_timeout_seconds),
        fallback_url: request.fallback_url,
        updated_at: now,
        ..before
    };
    if !core.store.update_roster(&roster).await? {
        return Err(ApiError::NotFound(format!("no roster {id}")));
    }
    core.store
        .audit(
            now,
            &caller.key_id,
            "roster.update",
            &format!("rosters/{id}"),
            audit_detail(&roster),
        )
        .await?;
    Ok(Json(view(roster, &caller)))
}

/// Delete a roster no route uses (admin).
#[utoipa::path(delete, path = "/rosters/{roster_id}", tag = "escalation",
    params(("roster_id" = String, Path, description = "Roster id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such roster"), (status = 409, description = "Routes use it")))]
async fn delete_roster(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    match core.store.delete_roster(&id).await? {
        Err(routes) => Err(ApiError::Conflict(format!(
            "routes {} send incidents to roster {id}; delete or change them first",
            routes.join(", ")
        ))),
        Ok(false) => Err(ApiError::NotFound(format!("no roster {id}"))),
        Ok(true) => {
            core.store
                .audit(
                    core.clock.now(),
                    &caller.key_id,
                    "roster.delete",
                    &format!("rosters/{id}"),
                    serde_json::json!({}),
                )
                .await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// What a route matches; absent criteria match anything, and a route with none is the
/// default.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteMatch {
    /// Incidents of this alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    /// Incidents of alerts of this template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_template_id: Option<String>,
    /// Incidents of alerts on this owner (`ownerDetails.id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

/// The body of `POST /routes` and `PUT /routes/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteRequest {
    /// The roster to phone.
    pub roster_id: String,
    /// Which incidents; empty or absent for the default route.
    #[serde(default, rename = "match")]
    pub criteria: RouteMatch,
}

/// A route. When several match an incident the most specific wins: one naming the alert,
/// then one naming the owner, then the template, then the default; the oldest among equals.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    /// Id.
    pub id: String,
    /// The roster.
    pub roster_id: String,
    /// Criteria.
    #[serde(rename = "match")]
    pub criteria: RouteMatch,
    /// Whether it is the default route.
    pub is_default: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<Route> for RouteView {
    fn from(r: Route) -> Self {
        Self {
            is_default: r.alert_id.is_none() && r.template_id.is_none() && r.owner_id.is_none(),
            id: r.id,
            roster_id: r.roster_id,
            criteria: RouteMatch {
                alert_id: r.alert_id,
                alert_template_id: r.template_id,
                owner_id: r.owner_id,
            },
            created_at: r.created_at,
        }
    }
}

super::page! {
    /// A page of routes.
    RoutesPage: Vec<RouteView>,
    "Routes."
}

/// Checks a route's references and that no other route has the same criteria.
async fn checked_route(
    core: &AppState,
    id: &str,
    request: RouteRequest,
) -> Result<Route, ApiError> {
    if core.store.roster(&request.roster_id).await?.is_none() {
        return Err(ApiError::Unprocessable(format!(
            "rosterId {:?}: no such roster",
            request.roster_id
        )));
    }
    let c = request.criteria;
    if let Some(alert) = &c.alert_id
        && core.alert(alert).await.is_none()
    {
        return Err(ApiError::Unprocessable(format!(
            "match.alertId {alert:?}: no such alert"
        )));
    }
    if let Some(template) = &c.alert_template_id
        && core.registry.get(template).is_none()
    {
        return Err(ApiError::Unprocessable(format!(
            "match.alertTemplateId {template:?}: no such template"
        )));
    }
    for (what, value) in [
        ("alertId", &c.alert_id),
        ("alertTemplateId", &c.alert_template_id),
        ("ownerId", &c.owner_id),
    ] {
        if let Some(value) = value {
            check_name(&format!("match.{what}"), value)?;
        }
    }
    let mut after: Option<String> = None;
    loop {
        let page = core.store.list_routes(after.as_deref(), 500).await?;
        if let Some(same) = page.iter().find(|r| {
            r.id != id
                && r.alert_id == c.alert_id
                && r.template_id == c.alert_template_id
                && r.owner_id == c.owner_id
        }) {
            return Err(ApiError::Conflict(format!(
                "route {} already matches the same incidents",
                same.id
            )));
        }
        if page.len() < 500 {
            break;
        }
        after = page.last().map(|r| r.id.clone());
    }
    Ok(Route {
        id: id.to_owned(),
        roster_id: request.roster_id,
        alert_id: c.alert_id,
        template_id: c.alert_template_id,
        owner_id: c.owner_id,
        created_at: core.clock.now(),
    })
}

/// Create a route (admin).
#[utoipa::path(post, path = "/routes", tag = "escalation", request_body = RouteRequest,
    responses((status = 201, body = RouteView), (status = 409, description = "A route with the same criteria exists"), (status = 422, description = "Unknown roster, alert or template")))]
async fn create_route(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<RouteRequest>,
) -> Result<(StatusCode, Json<RouteView>), ApiError> {
    caller.require(Need::Admin)?;
    let route = checked_route(&core, &new_id("rte"), request).await?;
    core.store.insert_route(&route).await?;
    let view = RouteView::from(route);
    core.store
        .audit(
            view.created_at,
            &caller.key_id,
            "route.create",
            &format!("routes/{}", view.id),
            serde_json::json!({"rosterId": view.roster_id, "match": view.criteria}),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// List routes.
#[utoipa::path(get, path = "/routes", tag = "escalation", params(Page),
    responses((status = 200, body = RoutesPage)))]
async fn list_routes(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<RoutesPage>, ApiError> {
    caller.require(Need::Read)?;
    let size = page.size()?;
    let routes = core
        .store
        .list_routes(page.after()?.as_deref(), size)
        .await?;
    let next_token = next_token(&routes, size, |r| &r.id);
    Ok(Json(RoutesPage {
        data: routes.into_iter().map(RouteView::from).collect(),
        next_token,
    }))
}

/// Get a route.
#[utoipa::path(get, path = "/routes/{route_id}", tag = "escalation",
    params(("route_id" = String, Path, description = "Route id")),
    responses((status = 200, body = RouteView), (status = 404, description = "No such route")))]
async fn get_route(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RouteView>, ApiError> {
    caller.require(Need::Read)?;
    let route = core
        .store
        .route(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no route {id}")))?;
    Ok(Json(route.into()))
}

/// Replace a route's roster and criteria (admin).
#[utoipa::path(put, path = "/routes/{route_id}", tag = "escalation", request_body = RouteRequest,
    params(("route_id" = String, Path, description = "Route id")),
    responses((status = 200, body = RouteView), (status = 404, description = "No such route"), (status = 409, description = "A route with the same criteria exists"), (status = 422, description = "Unknown roster, alert or template")))]
async fn update_route(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<RouteRequest>,
) -> Result<Json<RouteView>, ApiError> {
    caller.require(Need::Admin)?;
    let before = core
        .store
        .route(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no route {id}")))?;
    let route = Route {
        created_at: before.created_at,
        ..checked_route(&core, &id, request).await?
    };
    if !core.store.update_route(&route).await? {
        return Err(ApiError::NotFound(format!("no route {id}")));
    }
    let view = RouteView::from(route);
    core.store
        .audit(
            core.clock.now(),
            &caller.key_id,
            "route.update",
            &format!("routes/{id}"),
            serde_json::json!({"rosterId": view.roster_id, "match": view.criteria}),
        )
        .await?;
    Ok(Json(view))
}

/// Delete a route (admin).
#[utoipa::path(delete, path = "/routes/{route_id}", tag = "escalation",
    params(("route_id" = String, Path, description = "Route id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such route")))]
async fn delete_route(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    if !core.store.delete_route(&id).await? {
        return Err(ApiError::NotFound(format!("no route {id}")));
    }
    core.store
        .audit(
            core.clock.now(),
            &caller.key_id,
            "route.delete",
            &format!("routes/{id}"),
            serde_json::json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_roster, list_rosters))
        .routes(routes!(get_roster, update_roster, delete_roster))
        .routes(routes!(create_route, list_routes))
        .routes(routes!(get_route, update_route, delete_route))
}

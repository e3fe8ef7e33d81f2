//! `/rosters` and `/routes`: who is phoned, in what order, for which incidents. Anyone who
//! reads may list them; only admins edit them (audited) and see full phone numbers.

use super::auth::{Caller, Need};
use super::entities::check_name;
use super::{ApiError, AppState, Json, Page, next_token};
use crate::store::escalation::{Entry, Member, Roster, Route, Sms};
use crate::store::incidents::new_id;
use crate::store::keys::Role;
use crate::store::oncall::{Wanted, expand};
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
    /// `on-miss`: a member whose call ends unanswered (or answered without a key) is texted
    /// the incident and accepts it by replying 1; `off` (the default): never.
    pub sms: Option<Sms>,
}

/// An entry of a roster, as the API reads and shows it: one of `{name, phone}` (someone
/// named outright), `{operatorId}`, `{rotationId}` (whoever holds it) or `{scheduleId}`
/// (everyone on call on it), expanded when a loop starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = Member)]
pub struct MemberBody {
    /// Who (with `phone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256)]
    pub name: Option<String>,
    /// E.164 phone number (with `name`; masked, `…0100`, for everyone but admins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^\+[1-9][0-9]{1,14}$")]
    pub phone: Option<String>,
    /// An operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// A rotation: whoever holds it when the loop starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_id: Option<String>,
    /// A schedule: everyone on call on it when the loop starts, in its order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
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
    /// Whether members are texted after a missed call.
    pub sms: Sms,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A roster as `caller` may see it: phone numbers are masked for everyone but admins.
fn view(roster: Roster<Entry>, caller: &Caller) -> RosterView {
    let admin = caller.role == Role::Admin;
    RosterView {
        id: roster.id,
        name: roster.name,
        members: roster
            .members
            .into_iter()
            .map(|entry| match entry {
                Entry::Member(m) => MemberBody {
                    phone: Some(if admin {
                        m.phone.into()
                    } else {
                        m.phone.masked()
                    }),
                    name: Some(m.name),
                    ..MemberBody::default()
                },
                Entry::Operator { operator_id } => MemberBody {
                    operator_id: Some(operator_id),
                    ..MemberBody::default()
                },
                Entry::Rotation { rotation_id } => MemberBody {
                    rotation_id: Some(rotation_id),
                    ..MemberBody::default()
                },
                Entry::Schedule { schedule_id } => MemberBody {
                    schedule_id: Some(schedule_id),
                    ..MemberBody::default()
                },
            })
            .collect(),
        loops: roster.loops,
        ring_timeout_seconds: roster.ring_timeout_seconds,
        fallback_url: roster.fallback_url,
        sms: roster.sms,
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

/// A roster request, parsed: every entry is one kind, names something that exists and
/// appears once, every number is E.164, and the counts are in range.
struct NewRoster {
    name: String,
    members: Vec<Entry>,
    loops: Option<u32>,
    ring_timeout_seconds: Option<u32>,
    fallback_url: Option<String>,
    sms: Option<Sms>,
}

/// One entry of a request, parsed.
fn entry(i: usize, member: MemberBody) -> Result<Entry, ApiError> {
    let MemberBody {
        name,
        phone,
        operator_id,
        rotation_id,
        schedule_id,
    } = member;
    Ok(match (name, phone, operator_id, rotation_id, schedule_id) {
        (Some(name), Some(phone), None, None, None) => {
            check_name(&format!("members[{i}].name"), &name)?;
            let phone = PhoneNumber::parse(&phone)
                .map_err(|e| ApiError::Unprocessable(format!("members[{i}].phone {e}")))?;
            Entry::Member(Member {
                name,
                phone,
                operator_id: None,
                sms_phone: None,
            })
        }
        (None, None, Some(operator_id), None, None) => Entry::Operator { operator_id },
        (None, None, None, Some(rotation_id), None) => Entry::Rotation { rotation_id },
        (None, None, None, None, Some(schedule_id)) => Entry::Schedule { schedule_id },
        _ => {
            return Err(ApiError::Unprocessable(format!(
                "members[{i}] must be exactly one of {{name, phone}}, {{operatorId}}, {{rotationId}} or {{scheduleId}}"
            )));
        }
    })
}

impl NewRoster {
    async fn parse(core: &AppState, request: RosterRequest) -> Result<Self, ApiError> {
        check_name("name", &request.name)?;
        if request.members.is_empty() || request.members.len() > MEMBER_LIMIT {
            return Err(ApiError::Unprocessable(format!(
                "members must list 1 to {MEMBER_LIMIT} operators; it lists {}",
                request.members.len()
            )));
        }
        let mut members: Vec<Entry> = Vec::with_capacity(request.members.len());
        for (i, member) in request.members.into_iter().enumerate() {
            let entry = entry(i, member)?;
            let same = |other: &Entry| match (other, &entry) {
                (Entry::Member(a), Entry::Member(b)) => a.phone == b.phone,
                (a, b) => a == b,
            };
            if let Some(j) = members.iter().position(same) {
                let what = if matches!(entry, Entry::Member(_)) {
                    ".phone"
                } else {
                    ""
                };
                return Err(ApiError::Unprocessable(format!(
                    "members[{i}]{what} repeats members[{j}]{what}"
                )));
            }
            members.push(entry);
        }
        let now = core.clock.now();
        let found = core
            .store
            .directory(&Wanted::entries(&members), now, now)
            .await?;
        for (i, entry) in members.iter().enumerate() {
            let missing =
                match entry {
                    Entry::Member(_) => None,
                    Entry::Operator { operator_id: id } => (!found.operators.contains_key(id))
                        .then_some(("operatorId", id, "operator")),
                    Entry::Rotation { rotation_id: id } => (!found.rotations.contains_key(id))
                        .then_some(("rotationId", id, "rotation")),
                    Entry::Schedule { schedule_id: id } => (!found.schedules.contains_key(id))
                        .then_some(("scheduleId", id, "schedule")),
                };
            if let Some((field, id, what)) = missing {
                return Err(ApiError::Unprocessable(format!(
                    "members[{i}].{field} {id:?}: no such {what}"
                )));
            }
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
            sms: request.sms,
        })
    }
}

fn audit_detail(roster: &Roster<Entry>) -> serde_json::Value {
    serde_json::json!({
        "name": roster.name,
        "members": roster.members.iter().map(|entry| match entry {
            Entry::Member(m) => serde_json::json!({"name": m.name, "phone": m.phone.masked()}),
            other => serde_json::to_value(other).expect("an entry serializes"),
        }).collect::<Vec<_>>(),
        "loops": roster.loops,
        "ringTimeoutSeconds": roster.ring_timeout_seconds,
        "fallbackUrl": roster.fallback_url,
        "sms": roster.sms,
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
    let request = NewRoster::parse(&core, request).await?;
    let now = core.clock.now();
    let roster = Roster {
        id: new_id("ros"),
        name: request.name,
        members: request.members,
        loops: request.loops.unwrap_or(1),
        ring_timeout_seconds: request.ring_timeout_seconds.unwrap_or(30),
        fallback_url: request.fallback_url,
        sms: request.sms.unwrap_or_default(),
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

async fn find_roster(core: &AppState, id: &str) -> Result<Roster<Entry>, ApiError> {
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
    let request = NewRoster::parse(&core, request).await?;
    let now = core.clock.now();
    let roster = Roster {
        name: request.name,
        members: request.members,
        loops: request.loops.unwrap_or(before.loops),
        ring_timeout_seconds: request
            .ring_timeout_seconds
            .unwrap_or(before.ring_timeout_seconds),
        fallback_url: request.fallback_url,
        sms: request.sms.unwrap_or(before.sms),
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

/// Someone a loop would call.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedMember {
    /// Who.
    pub name: String,
    /// Number (masked for everyone but admins).
    pub phone: String,
    /// The operator, when an entry named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
}

/// A dry run of a roster's expansion.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resolution {
    /// The instant.
    pub at: DateTime<Utc>,
    /// Whom a loop starting then would call, in order.
    pub members: Vec<ResolvedMember>,
    /// Each entry with the operators it gave.
    pub entries: Vec<serde_json::Value>,
}

/// Whom a loop starting at an instant (default now) would call: each entry expanded, in
/// order, each number once. Nothing is called.
#[utoipa::path(get, path = "/rosters/{roster_id}/resolve", tag = "escalation",
    params(("roster_id" = String, Path, description = "Roster id"), super::schedules::At),
    responses((status = 200, body = Resolution)))]
async fn resolve_roster(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(at): Query<super::schedules::At>,
) -> Result<Json<Resolution>, ApiError> {
    caller.require(Need::Read)?;
    let roster = find_roster(&core, &id).await?;
    let at = at.at.unwrap_or_else(|| core.clock.now());
    let directory = core
        .store
        .directory(
            &Wanted::roster(&roster).at(vec![at]),
            at,
            at + chrono::Duration::microseconds(1),
        )
        .await?;
    let expansion = expand(&roster, &directory, at);
    Ok(Json(Resolution {
        at,
        members: expansion
            .roster
            .members
            .into_iter()
            .map(|m| ResolvedMember {
                phone: super::operators::shown(&m.phone, &caller),
                name: m.name,
                operator_id: m.operator_id,
            })
            .collect(),
        entries: expansion.entries,
    }))
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
        .routes(routes!(resolve_roster))
        .routes(routes!(create_route, list_routes))
        .routes(routes!(get_route, update_route, delete_route))
}

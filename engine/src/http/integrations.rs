//! `/integrations` (admin, audited) and `/hooks/{id}`, where cloud platforms and monitors
//! post their alarms. An integration owns the ALARM entities its deliveries become, and a
//! cloud_alarm alert created with it turns them into incidents (and, through routes, calls).

use super::auth::{Caller, Need, generate_secret};
use super::entities::check_name;
use super::{ApiError, AppState, Json, Page, next_token};
use crate::hooks::adapters::{self, Delivery, Kind};
use crate::hooks::sns::{self, Refusal};
use crate::store::alerts::{Alert, AlertStatus, raw_json};
use crate::store::data::EntityUpsert;
use crate::store::incidents::new_id;
use crate::store::ingest::Write;
use crate::store::integrations::{Integration, RejectedDelivery};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest delivery accepted.
pub const HOOK_BODY_LIMIT: usize = 256 << 10;

/// The body of `POST /integrations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateIntegrationRequest {
    /// Name.
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// aws-sns, aws-eventbridge, gcp-monitoring, azure-monitor, alertmanager, grafana,
    /// uptime-kuma, pingdom or generic.
    pub kind: String,
    /// Grafana only: the key of `X-Grafana-Alerting-Signature` (HMAC-SHA256 of the body);
    /// when set, deliveries without a valid signature are refused.
    pub hmac_key: Option<String>,
    /// Amazon SNS only: signing certificates (PEM) that messages must verify against. Without
    /// them, each message's SigningCertURL is fetched (it must be on an SNS endpoint of
    /// AWS) and cached.
    pub pinned_certificates: Option<Vec<String>>,
}

/// An integration as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Platform.
    pub kind: String,
    /// Where the platform posts: `/hooks/{id}`, with the secret as a bearer token or `?token=`.
    pub hook_path: String,
    /// The cloud_alarm alert that turns its alarms into incidents.
    pub alert_id: Option<String>,
    /// Whether signatures are checked (always for SNS; Grafana when it has a key).
    pub checks_signatures: bool,
    /// SNS signing certificates pinned.
    pub pinned_certificate_count: usize,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The secret; shown only when created or rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn view(i: Integration, secret: Option<String>) -> IntegrationView {
    IntegrationView {
        hook_path: format!("/hooks/{}", i.id),
        checks_signatures: i.hmac_key.is_some() || i.kind == Kind::AwsSns,
        pinned_certificate_count: i.pinned_certificates.len(),
        id: i.id,
        name: i.name,
        kind: i.kind.as_str().into(),
        alert_id: i.alert_id,
        created_at: i.created_at,
        updated_at: i.updated_at,
        secret,
    }
}

super::page! {
    /// A page of integrations.
    IntegrationsPage: Vec<IntegrationView>,
    "Integrations."
}

/// Rejected deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedPage {
    /// The last ones kept.
    pub data: Vec<RejectedDelivery>,
}

/// Create an integration (admin): returns its secret, once.
#[utoipa::path(post, path = "/integrations", tag = "integrations", request_body = CreateIntegrationRequest,
    responses((status = 201, body = IntegrationView), (status = 422, description = "Unknown kind")))]
async fn create(
    State(core): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateIntegrationRequest>,
) -> Result<(StatusCode, Json<IntegrationView>), ApiError> {
    caller.require(Need::Admin)?;
    check_name("name", &request.name)?;
    let kind = Kind::parse(&request.kind).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "kind {:?} is not one of aws-sns, aws-eventbridge, gcp-monitoring, azure-monitor, alertmanager, grafana, uptime-kuma, pingdom, generic",
            request.kind
        ))
    })?;
    let pinned_certificates = request.pinned_certificates.unwrap_or_default();
    if !pinned_certificates.is_empty() && kind != Kind::AwsSns {
        return Err(ApiError::Unprocessable(
            "pinnedCertificates is for aws-sns integrations only".into(),
        ));
    }
    for (i, pem) in pinned_certificates.iter().enumerate() {
        let cert = sns::SigningCert::from_pem(pem.as_bytes())
            .map_err(|e| ApiError::Unprocessable(format!("pinnedCertificates[{i}] is {e}")))?;
        // One not valid yet may be pinned ahead of a rotation; an expired one never helps.
        if let Some(date) = cert.expired(core.clock.now()) {
            return Err(ApiError::Unprocessable(format!(
                "pinnedCertificates[{i}] expired on {date}"
            )));
        }
    }
    if request.hmac_key.is_some() && kind != Kind::Grafana {
        return Err(ApiError::Unprocessable(
            "hmacKey is for grafana integrations only".into(),
        ));
    }
    let now = core.clock.now();
    let id = new_id("int");
    let alert = Alert {
        id: new_id("alt"),
        template_id: "cloud_alarm".into(),
        version: 1,
        description: Some(format!(
            "alarms of integration {} ({})",
            request.name,
            kind.as_str()
        )),
        status: AlertStatus::Active,
        interval_minutes: 60,
        validity_minutes: None,
        valid_until: None,
        owner_details: Some(raw_json(&json!({ "id": id }))),
        entity_details: None,
        parameters: raw_json(&json!({})),
        created_at: now,
        updated_at: now,
        last_evaluation: None,
        expired_at: None,
    };
    let integration = Integration {
        id,
        name: request.name,
        kind,
        alert_id: Some(alert.id.clone()),
        hmac_key: request.hmac_key,
        pinned_certificates,
        created_at: now,
        updated_at: now,
    };
    let secret = generate_secret();
    core.store.insert_alert(&alert).await?;
    core.store.insert_integration(&integration, &secret).await?;
    crate::cluster::hold_created(&core, &alert.id).await;
    core.alert_changed(alert).await;
    core.hand_over().await?;
    core.store
        .audit(now, &caller.key_id, "integration.create", &format!("integrations/{}", integration.id),
            json!({"name": integration.name, "kind": integration.kind, "alertId": integration.alert_id}))
        .await?;
    tracing::info!(integration = %integration.id, kind = %integration.kind, "integration created");
    Ok((StatusCode::CREATED, Json(view(integration, Some(secret)))))
}

/// List integrations (admin).
#[utoipa::path(get, path = "/integrations", tag = "integrations", params(Page),
    responses((status = 200, body = IntegrationsPage)))]
async fn list(
    State(core): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<IntegrationsPage>, ApiError> {
    caller.require(Need::Admin)?;
    let size = page.size()?;
    let found = core
        .store
        .list_integrations(page.after()?.as_deref(), size)
        .await?;
    let next_token = next_token(&found, size, |i| &i.id);
    Ok(Json(IntegrationsPage {
        data: found.into_iter().map(|i| view(i, None)).collect(),
        next_token,
    }))
}

async fn find(core: &AppState, id: &str) -> Result<Integration, ApiError> {
    core.store
        .integration(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no integration {id}")))
}

/// Get an integration (admin).
#[utoipa::path(get, path = "/integrations/{integration_id}", tag = "integrations",
    params(("integration_id" = String, Path, description = "Integration id")),
    responses((status = 200, body = IntegrationView), (status = 404, description = "No such integration")))]
async fn get(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IntegrationView>, ApiError> {
    caller.require(Need::Admin)?;
    Ok(Json(view(find(&core, &id).await?, None)))
}

/// Replace an integration's secret (admin); the old one stops working at once.
#[utoipa::path(post, path = "/integrations/{integration_id}/rotate", tag = "integrations",
    params(("integration_id" = String, Path, description = "Integration id")),
    responses((status = 200, body = IntegrationView), (status = 404, description = "No such integration")))]
async fn rotate(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IntegrationView>, ApiError> {
    caller.require(Need::Admin)?;
    let secret = generate_secret();
    let now = core.clock.now();
    if !core
        .store
        .rotate_integration_secret(&id, &secret, now)
        .await?
    {
        return Err(ApiError::NotFound(format!("no integration {id}")));
    }
    core.store
        .audit(
            now,
            &caller.key_id,
            "integration.rotate",
            &format!("integrations/{id}"),
            json!({}),
        )
        .await?;
    Ok(Json(view(find(&core, &id).await?, Some(secret))))
}

/// Delete an integration (admin). Its alert and alarms stay, for the record.
#[utoipa::path(delete, path = "/integrations/{integration_id}", tag = "integrations",
    params(("integration_id" = String, Path, description = "Integration id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such integration")))]
async fn delete(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    if !core.store.delete_integration(&id).await? {
        return Err(ApiError::NotFound(format!("no integration {id}")));
    }
    core.store
        .audit(
            core.clock.now(),
            &caller.key_id,
            "integration.delete",
            &format!("integrations/{id}"),
            json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The last refused deliveries of an integration (admin).
#[utoipa::path(get, path = "/integrations/{integration_id}/rejected", tag = "integrations",
    params(("integration_id" = String, Path, description = "Integration id")),
    responses((status = 200, body = RejectedPage), (status = 404, description = "No such integration")))]
async fn rejected(
    State(core): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RejectedPage>, ApiError> {
    caller.require(Need::Admin)?;
    find(&core, &id).await?;
    Ok(Json(RejectedPage {
        data: core.store.rejected_deliveries(&id).await?,
    }))
}

/// `?token=` for platforms that cannot set headers.
#[derive(Debug, Deserialize)]
struct Token {
    token: Option<String>,
}

/// What a delivery did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookResponse {
    /// Alarms stored.
    pub alarms: usize,
    /// Whether this exact delivery had been taken before (then nothing changed).
    pub duplicate: bool,
    /// Why nothing was raised, for test notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
}

/// Grafana's `X-Grafana-Alerting-Signature`: hex HMAC-SHA256 of the body, or of
/// `<timestamp>:<body>` when `X-Grafana-Alerting-Timestamp` is sent.
fn grafana_signature_valid(key: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(signature) = header("x-grafana-alerting-signature") else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    if let Some(timestamp) = header("x-grafana-alerting-timestamp") {
        mac.update(timestamp.as_bytes());
        mac.update(b":");
    }
    mac.update(body);
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    mac.verify_slice(&expected).is_ok()
}

/// Receive a platform's alarm delivery. The secret goes in `Authorization: Bearer` or in
/// `?token=`; an unknown integration and a wrong secret get the same 401.
#[utoipa::path(post, path = "/hooks/{integration_id}", tag = "integrations", security(()),
    params(("integration_id" = String, Path, description = "Integration id"), ("token" = Option<String>, Query, description = "The secret, for platforms that cannot set headers")),
    responses((status = 200, body = HookResponse), (status = 400, description = "Unparsable or unrecognised payload"), (status = 401, description = "Unknown integration or wrong secret"), (status = 413, description = "Too large")))]
async fn hook(
    State(core): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<Token>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HookResponse>, ApiError> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let secret = bearer.or(query.token).ok_or(ApiError::Unauthorized)?;
    let integration = core
        .store
        .authenticate_integration(&id, &secret)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let now = core.clock.now();
    let refuse = |reason: String| {
        let core = core.clone();
        let body = body.clone();
        let id = id.clone();
        async move {
            tracing::warn!(integration = %id, %reason, "delivery refused");
            core.store.reject_delivery(&id, &reason, &body, now).await?;
            Err::<Json<HookResponse>, ApiError>(ApiError::BadRequest(reason))
        }
    };
    let kind = integration.kind;
    if let Some(key) = &integration.hmac_key
        && !grafana_signature_valid(key, &headers, &body)
    {
        return refuse("X-Grafana-Alerting-Signature is missing or does not match the body".into())
            .await;
    }
    let (delivery, digest) = if kind == Kind::AwsSns {
        match core
            .sns
            .read(&body, &integration.pinned_certificates, core.clock.now())
            .await
        {
            Ok(read) => read,
            Err(Refusal::Invalid(reason)) => return refuse(reason).await,
            Err(Refusal::Unreachable(reason)) => {
                tracing::warn!(integration = %id, %reason, "SNS unreachable; the sender will retry");
                return Err(ApiError::BadGateway(reason));
            }
        }
    } else {
        let parsed = serde_json::from_slice::<Value>(&body)
            .map_err(|e| format!("the body is not JSON: {e}"))
            .and_then(|payload| {
                adapters::parse(kind, &payload)
                    .map_err(|problem| format!("not a {} payload: {problem}", kind.as_str()))
            });
        match parsed {
            Ok(delivery) => (delivery, hex::encode(Sha256::digest(&body))),
            Err(problem) => return refuse(problem).await,
        }
    };
    let alarms = match delivery {
        Delivery::Alarms(alarms) => alarms,
        Delivery::Acknowledged(reason) => {
            tracing::info!(integration = %id, %reason, "delivery acknowledged");
            return Ok(Json(HookResponse {
                alarms: 0,
                duplicate: false,
                acknowledged: Some(reason),
            }));
        }
    };
    let upserts: Vec<EntityUpsert> = alarms
        .iter()
        .map(|a| EntityUpsert {
            entity_type: "ALARM".into(),
            // ALARM ids are global; the integration's id keeps two platforms' keys apart.
            entity_id: format!("{id}:{}", a.key),
            owner_type: Some("INTEGRATION".into()),
            owner_id: Some(id.clone()),
            attributes: {
                let attributes = [
                    ("source", Some(kind.as_str().to_owned())),
                    ("name", Some(a.name.clone())),
                    ("resource", a.resource.clone()),
                    ("severity", a.severity.clone()),
                    ("state", Some(a.state.as_str().to_owned())),
                    ("summary", a.summary.clone()),
                    ("startedAt", a.started_at.clone()),
                ]
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), Value::String(v?))))
                .collect::<serde_json::Map<_, _>>();
                let mut attributes = attributes;
                if !a.labels.is_empty() {
                    attributes.insert("labels".into(), serde_json::json!(a.labels));
                }
                Value::Object(attributes).to_string()
            },
        })
        .collect();
    let count = upserts.len();
    let changed: Vec<String> = upserts.iter().map(|u| u.entity_id.clone()).collect();
    let delivery = Write::Delivery {
        integration_id: id.clone(),
        digest,
        entities: upserts,
    };
    if !core.ingest.write(delivery, now).await? {
        return Ok(Json(HookResponse {
            alarms: 0,
            duplicate: true,
            acknowledged: None,
        }));
    }
    for entity in changed {
        core.entity_changed("ALARM", &entity, Some(&id));
    }
    core.hand_over().await?;
    tracing::info!(integration = %id, alarms = count, "delivery stored");
    core.alarms.maybe_prune(&core).await;
    Ok(Json(HookResponse {
        alarms: count,
        duplicate: false,
        acknowledged: None,
    }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, delete))
        .routes(routes!(rotate))
        .routes(routes!(rejected))
        .routes(routes!(hook))
        .layer(DefaultBodyLimit::max(HOOK_BODY_LIMIT))
}

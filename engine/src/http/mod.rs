//! The HTTP API: one module per resource, each with its `router()`, merged here.
//!
//! The alert resources speak Togai's alerts API (camelCase, `nextToken` pagination,
//! `{"message"}` errors); everything else is Tocsin's own, in the same style.

pub mod alert_templates;
pub mod alerts;
pub mod auth;
pub mod details;
pub mod entities;
pub mod error;
pub mod events;
pub mod incidents;
pub mod integrations;
pub mod keys;
pub mod operators;
pub mod ops;
pub mod plugins;
pub mod rosters;
pub mod rotations;
pub mod schedules;
pub mod serve;
pub mod silences;
pub mod twilio;
pub mod values;

use crate::app::Core;
use axum::extract::DefaultBodyLimit;
use axum::extract::FromRequest;
use serde::Deserialize;
use std::sync::Arc;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

/// Shared state of every handler.
pub type AppState = Arc<Core>;

/// Largest JSON body accepted. Event batches are the largest legitimate requests.
pub const JSON_BODY_LIMIT: usize = 1 << 20;

/// JSON in and out. A request body must be a JSON object (every request of this API is
/// one: serde would otherwise read `[null, null]` as a struct of two absent fields) sent as
/// `application/json`; anything else is an [`ApiError`] with the usual shape, naming the
/// field at fault.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let (is_json, bytes) = body(request, state).await?;
        if !is_json {
            return Err(not_json());
        }
        object(&bytes).map(Json)
    }
}

/// A JSON object body that may also be left out (Togai's `PATCH /alerts/{id}` and
/// `PUT /incidents/{id}/status` make theirs optional): no body at all reads as
/// `T::default()`; a body that is there must be an object, so `null` is refused like any
/// other non-object.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let (is_json, bytes) = body(request, state).await?;
        let text = bytes.trim_ascii();
        if text.is_empty() && (!is_json || bytes.is_empty()) {
            return Ok(Self(T::default()));
        }
        if !is_json {
            return Err(not_json());
        }
        object(&bytes).map(OptionalJson)
    }
}

fn not_json() -> ApiError {
    ApiError::UnsupportedMediaType(
        "the body must be JSON, with `Content-Type: application/json`".into(),
    )
}

/// Whether the request says its body is JSON, and the body.
async fn body<S: Send + Sync>(
    request: axum::extract::Request,
    state: &S,
) -> Result<(bool, axum::body::Bytes), ApiError> {
    let is_json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == "application"
                && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        });
    let bytes = axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!(
                    "the body is larger than the {JSON_BODY_LIMIT} byte limit"
                ))
            } else {
                ApiError::BadRequest(format!("the body could not be read: {rejection}"))
            }
        })?;
    Ok((is_json, bytes))
}

/// Reads a JSON object into `T`: a syntax error is 400, a value of the wrong shape 422
/// naming where it is, and so is a value no template could read ([`values`]).
fn object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => {
            let found = match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(value) => json_kind(&value),
                Err(_) => "not JSON",
            };
            return Err(ApiError::Unprocessable(format!(
                "the body must be a JSON object, not {found}"
            )));
        }
        None => {
            return Err(ApiError::BadRequest(
                "the body is empty; send a JSON object".into(),
            ));
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::Unprocessable(format!("{at}{inner}")),
            _ => ApiError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    // Well-formed and of the right shape; now, is every value one a template can read?
    values::check(bytes)?;
    Ok(value)
}

/// What kind of JSON value this is, in words for an error message.
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Declares a list's response: the page's `data` and the `nextToken` that fetches the next
/// one, the shape of Togai's `…PaginatedResponse` that every list of Tocsin answers.
macro_rules! page {
    ($(#[$doc:meta])* $name:ident: Vec<$item:ty>, $data:literal) => {
        $(#[$doc])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[doc = $data]
            pub data: Vec<$item>,
            /// Pass as `nextToken` for the next page.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub next_token: Option<String>,
        }
    };
}
pub(crate) use page;

/// The filters of the lists of pushed data (`/entities/{type}`, `/events`): an owner, and
/// the page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct OwnerFilters {
    /// Only this owner's.
    pub owner_id: Option<String>,
    /// Where the previous page ended.
    pub next_token: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<i64>,
}

/// `nextToken` pagination, as Togai's list endpoints take it.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Where the previous page ended.
    pub next_token: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<i64>,
}

impl Page {
    /// The page size, checked.
    pub fn size(&self) -> Result<i64, ApiError> {
        match self.page_size {
            None => Ok(50),
            Some(n @ 1..=500) => Ok(n),
            Some(n) => Err(ApiError::BadRequest(format!(
                "pageSize {n} must be between 1 and 500"
            ))),
        }
    }

    /// The id the page starts after.
    pub fn after(&self) -> Result<Option<String>, ApiError> {
        self.next_token
            .as_deref()
            .map(|t| {
                crate::store::after_id(t).ok_or_else(|| {
                    ApiError::BadRequest("nextToken is not one this server issued".into())
                })
            })
            .transpose()
    }
}

/// The token for the page after `items`, when the page is full.
pub fn next_token<T>(items: &[T], size: i64, id: impl Fn(&T) -> &str) -> Option<String> {
    if items.len() as i64 == size {
        crate::store::next_token(items.last().map(id))
    } else {
        None
    }
}

/// The body of every 4xx and 5xx answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// What went wrong, and what to fix; at most 500 characters.
    #[schema(max_length = 500)]
    pub message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tocsin", description = "Alerting rules engine with phone escalation. The alert resources follow Togai's alerts API."),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "apiKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Every route, with the OpenAPI document of them all at `/openapi.json`.
pub fn router(core: AppState) -> axum::Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(alert_templates::router())
        .merge(alerts::router())
        .merge(incidents::router())
        .merge(entities::router())
        .merge(events::router())
        .merge(keys::router())
        .merge(rosters::router())
        .merge(operators::router())
        .merge(rotations::router())
        .merge(schedules::router())
        .merge(silences::router())
        .merge(ops::router())
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(integrations::router())
        // Uploads carry a compiled component, larger than any JSON body.
        .merge(plugins::router())
        .split_for_parts();
    let mut openapi = openapi;
    declare_errors(&mut openapi);
    let openapi = Arc::new(openapi);
    router
        // Twilio's webhooks: form bodies of a few hundred bytes.
        .merge(twilio::router().layer(DefaultBodyLimit::max(64 << 10)))
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let openapi = openapi.clone();
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(axum::middleware::map_response(error_as_json))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::map_request(refuse_long_uris))
        .layer(TraceLayer::new_for_http())
        .with_state(core)
}

/// Declares, on every operation, each error status it can answer (all with [`ErrorBody`]):
/// 400 and 414 for a query or path that does not parse; 401 and 403 where a key is needed;
/// 404 where the path names something; 409 for writes that can conflict; 413, 415 and 422
/// where a body is read. One place, so a new operation cannot forget one.
fn declare_errors(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            (&mut item.get, false),
            (&mut item.put, true),
            (&mut item.post, true),
            (&mut item.delete, true),
            (&mut item.patch, true),
        ];
        for (operation, writes) in operations {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            let public = operation.security.as_ref().is_some_and(|s| {
                serde_json::to_value(s).is_ok_and(|v| v == serde_json::json!([{}]))
            });
            let mut statuses = vec![
                ("400", "The query string or path does not parse"),
                ("414", "The request target is too long"),
            ];
            if !public || path.starts_with("/hooks/") {
                statuses.push(("401", "No valid key"));
            }
            if !public {
                statuses.push(("403", "The key's role may not do this"));
            }
            if path.contains('{') {
                statuses.push(("404", "No such thing"));
            }
            if writes {
                statuses.push(("409", "Conflicts with the current state"));
            }
            if operation.request_body.is_some() {
                statuses.extend([
                    ("413", "The body is too large"),
                    (
                        "415",
                        "The body is not of the content type this operation reads",
                    ),
                    (
                        "422",
                        "The body is well-formed but not valid: the message says why",
                    ),
                ]);
            }
            for (status, description) in statuses {
                let responses = &mut operation.responses.responses;
                match responses.get_mut(status) {
                    None => {
                        responses.insert(status.to_owned(), RefOr::T(error(description)));
                    }
                    // Declared by the operation with only a description: give it the body.
                    Some(RefOr::T(response)) if response.content.is_empty() => {
                        *response = error(&response.description.clone());
                    }
                    Some(_) => {}
                }
            }
            // 5xx: the cause is logged, the body says nothing more.
            operation
                .responses
                .responses
                .entry("500".to_owned())
                .or_insert_with(|| RefOr::T(error("Our fault; the cause is logged")));
        }
    }
}

/// Longest request target (path and query) read, in bytes. Every URL of this API is far
/// shorter; hyper's own limit is 64 KiB and answers with an empty body.
pub const URI_LIMIT: usize = 8 << 10;

async fn refuse_long_uris(
    request: axum::extract::Request,
) -> Result<axum::extract::Request, ApiError> {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if length > URI_LIMIT {
        return Err(ApiError::UriTooLong(format!(
            "the request target is {length} bytes; at most {URI_LIMIT} are read"
        )));
    }
    Ok(request)
}

/// A handler that panicked answers 500 like any internal error (the connection stays up,
/// the panic is logged), instead of dropping the connection without a word.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    axum::response::IntoResponse::into_response(ApiError::Internal(format!(
        "a request handler panicked: {message}"
    )))
}

/// Every error answer has the `{"message": …}` shape: the ones axum and tower write
/// themselves (a query string or path that does not parse, a method a route lacks, a body
/// over its limit) come as plain text or empty, and are rewritten here, keeping their status
/// and headers.
async fn error_as_json(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match (status, text.trim()) {
        // axum adds `Allow` after this layer has run.
        (axum::http::StatusCode::METHOD_NOT_ALLOWED, _) => {
            "this method is not allowed here; the Allow header lists those that are".to_owned()
        }
        (_, "") => status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_owned(),
        (_, text) => text.to_owned(),
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    let body = serde_json::json!({ "message": error::bounded(message) }).to_string();
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

//! The HTTP API: one module per resource, each with its `router()`, merged here.
//!
//! The alert resources speak Togai's alerts API (camelCase, `nextToken` pagination,
//! `{"message"}` errors); everything else is Tocsin's own, in the same style.

pub mod alert_templates;
pub mod alerts;
pub mod auth;
pub mod entities;
pub mod error;
pub mod events;
pub mod incidents;
pub mod integrations;
pub mod keys;
pub mod ops;
pub mod plugins;
pub mod rosters;
pub mod twilio;

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

/// JSON in and out; a body that does not parse is an [`ApiError`] with the usual shape.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `nextToken` pagination, as Togai's list endpoints take it.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Where the previous page ended.
    pub next_token: Option<String>,
    /// Items per page, 1 to 500 (default 50).
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

#[derive(OpenApi)]
#[openapi(
    info(title = "Tocsin", description = "Alerting rules engine with phone escalation. The alert resources follow Togai's alerts API."),
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
        .merge(ops::router())
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(integrations::router())
        // Uploads carry a compiled component, larger than any JSON body.
        .merge(plugins::router())
        .split_for_parts();
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
        .layer(TraceLayer::new_for_http())
        .with_state(core)
}

//! `/healthz` and `/metrics`, unauthenticated: they reveal nothing about tenants' data.

use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How this node is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `database unavailable`.
    pub status: &'static str,
    /// What phones operators: `twilio`; `simulated` (the demo's Twilio simulator, no real
    /// phone rings); or `unavailable` (no Twilio account is configured: incidents open,
    /// nobody is called).
    pub escalation: &'static str,
}

/// Liveness: the process answers and its database does, and whether operators can be
/// phoned. A server without a Twilio account is alive (200) but says `"escalation":
/// "unavailable"`.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = Health, description = "Healthy"), (status = 503, body = Health, description = "The database does not answer")))]
async fn healthz(State(core): State<AppState>) -> impl IntoResponse {
    let escalation = core.escalation.provider();
    match core.store.ping().await {
        Ok(_) => (
            axum::http::StatusCode::OK,
            axum::Json(Health {
                status: "ok",
                escalation,
            }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(Health {
                    status: "database unavailable",
                    escalation,
                }),
            )
        }
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
async fn metrics(State(core): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        core.metrics.render(),
    )
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

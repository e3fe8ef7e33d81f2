//! `/healthz` and `/metrics`, unauthenticated: they reveal nothing about tenants' data;
//! and `/cluster` (admin), the nodes sharing the database.

use super::auth::{Caller, Need};
use super::{ApiError, AppState};
use crate::store::Store;
use crate::store::postgres::cluster::NodeSeen;
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
    /// This node's id (`TOCSIN_NODE_ID`).
    pub node: String,
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
                node: core.cluster.node_id().to_owned(),
            }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(Health {
                    status: "database unavailable",
                    escalation,
                    node: core.cluster.node_id().to_owned(),
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

/// The nodes sharing the database.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// The node that answered.
    pub node: String,
    /// `sqlite` (one node) or `postgres`.
    pub database: &'static str,
    /// Every node seen in the last minute, in id order.
    #[schema(value_type = Vec<Object>)]
    pub nodes: Vec<NodeSeen>,
}

/// The nodes seen in the last minute, with the alerts each evaluates and which one places
/// the calls. On SQLite, this node alone.
#[utoipa::path(get, path = "/cluster", tag = "operations",
    responses((status = 200, body = ClusterView), (status = 403, description = "Not an admin key")))]
async fn cluster(
    State(core): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<ClusterView>, ApiError> {
    caller.require(Need::Admin)?;
    let node = core.cluster.node_id().to_owned();
    let nodes = match &core.store {
        Store::Postgres(db) => db.nodes_seen(crate::cluster::SEEN_WITHIN).await?,
        Store::Sqlite(_) => vec![NodeSeen {
            id: node.clone(),
            address: core.config.listen.to_string(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: core.started_at,
            seen_at: core.clock.now(),
            alerts: core.catalog.all().len() as i64,
            dialer: core.escalation.phoning(),
        }],
    };
    Ok(axum::Json(ClusterView {
        node,
        database: core.store.kind(),
        nodes,
    }))
}

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(cluster))
}

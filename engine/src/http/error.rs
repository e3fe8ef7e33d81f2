//! The one error type of the HTTP layer: a status and `{"message": …}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What went wrong with a request. 5xx bodies say nothing internal; the cause is logged.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// No usable key.
    #[error(
        "a valid API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
    )]
    Unauthorized,
    /// The key's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Too big.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request target is too long.
    #[error("{0}")]
    UriTooLong(String),
    /// Wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but invalid.
    #[error("{0}")]
    Unprocessable(String),
    /// A service this request depends on failed; the sender may retry.
    #[error("{0}")]
    BadGateway(String),
    /// Our fault.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Togai caps messages at 500 characters.
const MESSAGE_LIMIT: usize = 500;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let message = bounded(self.to_string());
        (
            self.status_code(),
            axum::Json(serde_json::json!({ "message": message })),
        )
            .into_response()
    }
}

/// A message cut to Togai's limit, with an ellipsis where it was cut.
pub fn bounded(mut message: String) -> String {
    if message.len() > MESSAGE_LIMIT {
        let mut cut = MESSAGE_LIMIT - '…'.len_utf8();
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// The one place a store error becomes an answer: a broken constraint is the request's
/// fault (409 for a key that exists, 422 for a reference or value the schema refuses),
/// anything else the server's (500).
impl From<crate::store::Error> for ApiError {
    fn from(error: crate::store::Error) -> Self {
        use crate::store::Violation;
        match error.violation() {
            Some(Violation::Unique) => {
                Self::Conflict(format!("it already exists ({})", constraint(&error)))
            }
            Some(Violation::Reference) => Self::Unprocessable(format!(
                "it refers to something that does not exist, or something still refers to it ({})",
                constraint(&error)
            )),
            Some(Violation::Value) => {
                Self::Unprocessable(format!("a value is not allowed ({})", constraint(&error)))
            }
            None => Self::Internal(error.to_string()),
        }
    }
}

/// The database's own words for a broken constraint.
fn constraint(error: &crate::store::Error) -> String {
    match error {
        crate::store::Error::Database(sqlx::Error::Database(e)) => e.message().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::escalation::Route;

    fn route(id: &str, roster: &str) -> Route {
        Route {
            id: id.into(),
            roster_id: roster.into(),
            alert_id: None,
            template_id: None,
            owner_id: None,
            created_at: chrono::Utc::now(),
        }
    }

    /// Against a real SQLite file: a missing reference is 422, a key that exists is 409,
    /// each naming the constraint.
    #[tokio::test]
    async fn broken_constraints_are_the_requests_fault() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db").into()).await.unwrap();
        let missing = store.insert_route(&route("rte_1", "ros_nowhere")).await;
        let error = ApiError::from(missing.unwrap_err());
        assert_eq!(
            error.status_code(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{error:?}"
        );
        assert!(format!("{error:?}").contains("FOREIGN KEY"), "{error:?}");

        let now = chrono::Utc::now();
        let roster = crate::store::escalation::Roster::<crate::store::escalation::Entry> {
            id: "ros_1".into(),
            name: "r".into(),
            members: vec![],
            loops: 1,
            ring_timeout_seconds: 30,
            fallback_url: None,
            sms: Default::default(),
            created_at: now,
            updated_at: now,
        };
        store.insert_roster(&roster).await.unwrap();
        let again = ApiError::from(store.insert_roster(&roster).await.unwrap_err());
        assert_eq!(again.status_code(), StatusCode::CONFLICT, "{again:?}");
        assert!(format!("{again:?}").contains("UNIQUE"), "{again:?}");
    }
}

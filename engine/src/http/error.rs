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

impl From<crate::store::Error> for ApiError {
    fn from(error: crate::store::Error) -> Self {
        Self::Internal(error.to_string())
    }
}

//! The console's static files, embedded in the binary, each served with an ETag that is a
//! hash of its content: a browser revalidates and gets 304 until the file changes.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// A file and what it is served as.
#[derive(Debug)]
pub struct Asset {
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// A hash of the bytes: the ETag, and the `?v=` pages link it with.
    pub etag: String,
}

impl Asset {
    fn new(bytes: &'static [u8], content_type: &'static str) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
            bytes,
            content_type,
            etag: hex::encode(&digest[..8]),
        }
    }
}

/// htmx, vendored (`engine/assets/README.md`).
pub static HTMX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../assets/htmx.min.js"),
        "text/javascript; charset=utf-8",
    )
});

/// The console's styles.
pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../../assets/console.css"),
        "text/css; charset=utf-8",
    )
});

/// `GET /console/static/{file}`.
pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let asset: &Asset = match file.as_str() {
        "htmx.min.js" => &HTMX,
        "console.css" => &CSS,
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    let etag = format!("\"{}\"", asset.etag);
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let etag = HeaderValue::from_str(&etag).expect("hex is a header value");
    let cache = HeaderValue::from_static("no-cache");
    if cached {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response()
}

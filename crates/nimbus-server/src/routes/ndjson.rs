//! NDJSON answers (sandbox logs, the egress log, session streams, the streamed image pull): one
//! JSON value per line, never cached and never held back by a buffering proxy, since they are
//! read as they grow.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The media type.
pub(super) const MEDIA_TYPE: &str = "application/x-ndjson";

/// One value as its line.
pub(super) fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

/// `body` as an NDJSON answer.
pub(super) fn response(body: Body) -> Response {
    let headers = [
        (header::CONTENT_TYPE, MEDIA_TYPE),
        (header::CACHE_CONTROL, "no-store"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    (headers, body).into_response()
}

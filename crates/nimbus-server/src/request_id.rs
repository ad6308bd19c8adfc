//! Request ids: one `req_<ULID>` per HTTP request, returned as `X-Request-Id` on every response
//! and embedded in every error envelope.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use nimbus_core::ids::mint_request_id;

use crate::envelope;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served by the current task (a fresh one outside a request).
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| mint_request_id())
}

/// The outermost middleware: mints the request id (a client-sent `X-Request-Id` is ignored),
/// makes it visible to everything that serves the request, guarantees that any error answer is
/// an envelope ([`envelope::ensure_envelope`], run inside the id's scope so the envelope carries
/// it), and sets the response header.
pub async fn assign(request: Request, next: Next) -> Response {
    let id = mint_request_id();
    let mut response = REQUEST_ID.scope(id.clone(), envelope::ensure_envelope(request, next)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

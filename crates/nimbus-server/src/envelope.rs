//! The error envelope: how a [`NimbusError`] becomes an HTTP response, and the middleware that
//! turns any other error response (the framework's own rejections) into an envelope too.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nimbus_core::limits::MAX_JSON_BODY_BYTES;
use nimbus_core::{ErrorCode, NimbusError};
use serde_json::{Value, json};

use crate::request_id;

/// A handler error: a catalogued error rendered as the envelope.
#[derive(Debug)]
pub struct ApiError(pub NimbusError);

impl From<NimbusError> for ApiError {
    fn from(error: NimbusError) -> Self {
        Self(error)
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Marks a response whose body is already an envelope.
#[derive(Clone, Copy)]
struct Enveloped;

/// The envelope object (the value under `error`), as HTTP and WebSocket frames embed it.
pub fn envelope_json(error: &NimbusError, request_id: &str) -> Value {
    error.envelope(request_id)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error": envelope_json(&error, &request_id::current()) });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(ms) = error.retry_after_ms {
            let secs = ms.div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if error.code == ErrorCode::OpMethodNotAllowed {
            let allowed = error
                .detail
                .as_ref()
                .and_then(|d| d["allowed"].as_array())
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
            if let Some(value) = allowed.filter(|a| !a.is_empty()).and_then(|a| HeaderValue::from_str(&a).ok()) {
                response.headers_mut().insert(header::ALLOW, value);
            }
        }
        response.extensions_mut().insert(Enveloped);
        response
    }
}

/// Marks a response whose error status and body belong to another protocol on purpose (the
/// Convex HTTP protocol's 560 function failure, functions.md §10), so that [`ensure_envelope`]
/// passes it on unchanged.
pub fn keep_foreign_error(response: &mut Response) {
    response.extensions_mut().insert(Enveloped);
}

/// Runs the request; any error response that is not already an envelope (a framework
/// rejection, an unmatched method) is replaced by the envelope for its status.
pub async fn ensure_envelope(request: Request, next: Next) -> Response {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let (method, path) = (method.as_str(), uri.path());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || response.extensions().get::<Enveloped>().is_some() {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed: Vec<String> = response
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()).collect())
                .unwrap_or_default();
            NimbusError::new(
                ErrorCode::OpMethodNotAllowed,
                format!("{method} is not allowed on {path}"),
                Some(json!({ "method": method, "allowed": allowed })),
            )
        }
        StatusCode::NOT_FOUND => route_not_found(method, path),
        StatusCode::PAYLOAD_TOO_LARGE => NimbusError::payload_too_large(MAX_JSON_BODY_BYTES, None),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported_media_type(),
        s if s.is_client_error() => NimbusError::invalid_request(s.canonical_reason().unwrap_or("bad request")),
        _ => NimbusError::internal(),
    };
    ApiError(error).into_response()
}

/// 404 `service.route_not_found`.
pub fn route_not_found(method: &str, path: &str) -> NimbusError {
    NimbusError::new(
        ErrorCode::ServiceRouteNotFound,
        format!("no route for {method} {path}"),
        Some(json!({ "method": method, "path": path })),
    )
}

/// 415 `op.invalid_input`: a JSON route got another content type.
pub fn unsupported_media_type() -> NimbusError {
    let mut error = NimbusError::invalid_input("Content-Type", "must be application/json");
    error.status = Some(415);
    error
}

/// The fallback for unmatched paths.
pub async fn fallback(request: Request) -> ApiError {
    ApiError(route_not_found(request.method().as_str(), request.uri().path()))
}

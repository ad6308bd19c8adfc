//! Open and system routes: health, the error catalog, capabilities, token rotation, shutdown,
//! and the browser cookie exchange.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;

use crate::auth::AuthState;
use crate::body::RawBody;
use crate::capabilities::capabilities_json;
use crate::envelope::ApiResult;
use crate::state::AppState;
use crate::wire::{Accepted, CookieSessionBody, Health, Rotated};

/// `GET /health`.
pub async fn health() -> Json<Health> {
    Json(Health { ok: true })
}

/// `GET /errors`.
pub async fn errors() -> Json<Value> {
    Json(nimbus_core::catalog::catalog_json())
}

/// `GET /api/system/capabilities`.
pub async fn capabilities(State(state): State<AppState>) -> Json<Value> {
    Json(capabilities_json(state.sandboxes.backend_availability()))
}

/// `POST /api/system/token/rotate`.
pub async fn rotate_token(State(state): State<AppState>, body: RawBody) -> ApiResult<Json<Rotated>> {
    body.optional_json::<Value>()?;
    let auth = state.auth.clone();
    let generation = nimbus_compute::blocking(move || auth.rotate()).await??;
    Ok(Json(Rotated { generation }))
}

/// `POST /api/system/shutdown`: answers, then stops the server gracefully.
pub async fn shutdown(State(state): State<AppState>, body: RawBody) -> ApiResult<Json<Accepted>> {
    body.optional_json::<Value>()?;
    state.shutdown.notify_one();
    Ok(Json(Accepted { accepted: true }))
}

/// `POST /ui/auth/session`: exchanges the token for an HttpOnly session cookie.
pub async fn cookie_session(State(state): State<AppState>, body: RawBody) -> ApiResult<impl IntoResponse> {
    let request: CookieSessionBody = body.json()?;
    let value = state.auth.open_cookie_session(&request.token)?;
    Ok(([(header::SET_COOKIE, AuthState::cookie_header(&value))], Json(Health { ok: true })))
}

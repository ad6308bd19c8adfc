//! `/api/sessions`: open, list, get, close, renew (sessions.md §1–§4); the channel streams and
//! WebSocket attachments are in `stream.rs`, processes in `exec.rs`, files in `files.rs`.

mod browser;
mod exec;
mod files;
mod stream;

pub use browser::{cdp_ws, page};
pub use exec::{exec, process, process_signal, processes};
pub use files::{files_delete, files_get, files_list, files_put, files_stat};
pub use stream::{input, resize, stream, ws};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nimbus_compute::session::{BrowserOptions, Channel, OpenSession, ServiceBackend, SessionState, SessionTarget};
use nimbus_core::NimbusError;
use nimbus_core::ids::TenantId;
use nimbus_core::limits::MAX_RESOURCE_PAGE;
use serde_json::Value;

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::session_wire::{CloseBody, OpenSessionBody, RenewBody, TargetName, collection_json, session_json};
use crate::state::AppState;

/// A `{session_id}` route's session id and its optional `?tenantId=` (checked to exist).
/// Path syntax comes first (400), then the tenant (404 `session.tenant_not_found`).
pub(super) struct SessionPath {
    tenant: Option<String>,
    id: String,
}

impl SessionPath {
    fn parse(state: &AppState, params: &PathParams, query: &QueryParams) -> Result<Self, NimbusError> {
        let id = params.segment("session_id")?.to_owned();
        let tenant = match query.get("tenantId") {
            None => None,
            Some(raw) => {
                let tenant = TenantId::parse(raw, "tenantId")?;
                state.engine.tenant(&tenant)?;
                Some(tenant.as_str().to_owned())
            }
        };
        Ok(Self { tenant, id })
    }

    fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, NimbusError> {
    value.ok_or_else(|| NimbusError::invalid_input(field, "is required"))
}

/// `POST /api/sessions`: the checks of sessions.md §2, in order.
pub async fn open(State(state): State<AppState>, body: RawBody) -> ApiResult<(StatusCode, Json<Value>)> {
    let body: OpenSessionBody = body.json()?;
    let tenant = TenantId::parse(&required(body.tenant_id, "tenantId")?, "tenantId")?;
    state.engine.tenant(&tenant)?;
    let target = required(body.target, "target")?.into_name()?;
    let channels = Channel::parse_list(&required(body.channels, "channels")?)?;
    let target = match target {
        TargetName::Sandbox(id) => SessionTarget::Sandbox { id },
        TargetName::Service(name) => service_target(&state, tenant.as_str(), &name)?,
    };
    let browser = body
        .browser
        .map(|b| BrowserOptions { viewport: b.viewport.unwrap_or_default(), storage_state: b.storage_state });
    let request = OpenSession { target, channels, requested_ttl_ms: body.requested_ttl_ms, browser };
    let record = state.sessions.open_session(tenant.as_str(), request).await?;
    Ok((StatusCode::CREATED, Json(session_json(&record))))
}

/// Resolves a service target through the service registry: its definition (404), then no
/// lifecycle operation in progress (409 `operation_in_progress`). Readiness and channels are
/// checked by the session registry.
fn service_target(state: &AppState, tenant: &str, name: &str) -> Result<SessionTarget, NimbusError> {
    let target = state.services.session_target(tenant, name)?;
    if target.operation_in_progress {
        return Err(NimbusError::conflict(
            "operation_in_progress",
            format!("service `{name}` has a lifecycle operation in progress"),
            serde_json::json!({}),
        ));
    }
    let backend = match target.backend {
        "sandbox" => ServiceBackend::Sandbox,
        "builtIn" => ServiceBackend::BuiltIn,
        _ => ServiceBackend::External,
    };
    Ok(SessionTarget::Service {
        name: target.name,
        sandbox_id: target.sandbox_id.filter(|_| target.ready),
        generation: target.generation,
        backend,
        provider: target.provider,
    })
}

/// `GET /api/sessions?tenantId=…[&state=…]`: pagination as every agents collection.
pub async fn list(State(state): State<AppState>, query: QueryParams) -> ApiResult<Json<Value>> {
    let tenant = TenantId::parse(required(query.get("tenantId"), "tenantId")?, "tenantId")?;
    state.engine.tenant(&tenant)?;
    let limit = query
        .integer("limit", 0..=u64::MAX)?
        .map_or(MAX_RESOURCE_PAGE, |l| usize::try_from(l).unwrap_or(usize::MAX).clamp(1, MAX_RESOURCE_PAGE));
    let filter = query
        .get("state")
        .map(|raw| {
            SessionState::parse(raw)
                .ok_or_else(|| NimbusError::invalid_input("state", "must be one of open, closed, expired"))
        })
        .transpose()?;
    let page = state.sessions.list(tenant.as_str(), filter, query.get("pageToken"), limit).await;
    Ok(Json(collection_json(tenant.as_str(), &page, limit)))
}

/// `GET /api/sessions/{id}`.
pub async fn get(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Json<Value>> {
    let path = SessionPath::parse(&state, &params, &query)?;
    Ok(Json(session_json(&state.sessions.get(path.tenant(), &path.id).await?)))
}

/// `POST /api/sessions/{id}/close` with an optional `{"reason"}`.
pub async fn close(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<Json<Value>> {
    let path = SessionPath::parse(&state, &params, &query)?;
    let reason = body.optional_json::<CloseBody>()?.and_then(|b| b.reason);
    Ok(Json(session_json(&state.sessions.close(path.tenant(), &path.id, reason.as_deref()).await?)))
}

/// `POST /api/sessions/{id}/renew` with an optional `{"requestedTtlMs"}`.
pub async fn renew(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<Json<Value>> {
    let path = SessionPath::parse(&state, &params, &query)?;
    let ttl = body.optional_json::<RenewBody>()?.and_then(|b| b.requested_ttl_ms);
    Ok(Json(session_json(&state.sessions.renew(path.tenant(), &path.id, ttl).await?)))
}

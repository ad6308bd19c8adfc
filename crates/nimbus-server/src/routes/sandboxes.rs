//! `/api/tenants/{tenant_id}/sandboxes`: create, list, get (with `waitFor`), stop, delete and
//! logs (sandboxes.md §1).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use nimbus_compute::sandbox::{LifecycleState, ListFilter, LogCursor, LogRead, Sandboxes, WaitFor};
use nimbus_core::NimbusError;
use nimbus_core::limits::{
    LOG_FOLLOW_POLL_MS, LOG_HEARTBEAT_MS, MAX_RESOURCE_PAGE, SANDBOX_MAX_GRACE_MS, SANDBOX_STOP_GRACE_MS,
    WAIT_DEFAULT_TIMEOUT_MS, WAIT_MAX_TIMEOUT_MS,
};
use nimbus_core::time::{now_ms, rfc3339_ms};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::sandbox_wire::{CreateSandboxBody, collection_json, endpoints_json, sandbox_json};
use crate::state::AppState;

/// The tenant (checked to exist) and the sandbox id of a sandbox route.
pub(super) fn target(state: &AppState, params: &PathParams) -> Result<(String, String), NimbusError> {
    let id = params.segment("sandbox_id")?.to_owned();
    let tenant = state.tenant(params)?;
    Ok((tenant.id().as_str().to_owned(), id))
}

/// `POST /`: create and start.
pub async fn create(
    State(state): State<AppState>,
    params: PathParams,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant = state.tenant(&params)?;
    let tenant = tenant.id().as_str().to_owned();
    let request = body.json::<CreateSandboxBody>()?.into_request(&tenant)?;
    let record = state.sandboxes.create(&tenant, request).await?;
    Ok((StatusCode::CREATED, Json(sandbox_json(&record))))
}

/// `GET /`: filters `status`, `labelKey`, `labelValue`; pagination.
pub async fn list(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let tenant = tenant.id().as_str();
    let limit = query
        .integer("limit", 0..=u64::MAX)?
        .map_or(MAX_RESOURCE_PAGE, |l| usize::try_from(l).unwrap_or(usize::MAX).clamp(1, MAX_RESOURCE_PAGE));
    let state_filter = query
        .get("status")
        .map(|raw| {
            LifecycleState::parse(raw).ok_or_else(|| {
                NimbusError::invalid_input("status", "must be one of starting, ready, stopping, stopped, failed")
            })
        })
        .transpose()?;
    let label_key = query.get("labelKey").map(str::to_owned);
    let label_value = query.get("labelValue").map(str::to_owned);
    if label_value.is_some() && label_key.is_none() {
        return Err(NimbusError::invalid_input("labelValue", "is only valid with labelKey").into());
    }
    if let Some(key) = &label_key {
        nimbus_compute::labels::validate_key(key).map_err(|reason| NimbusError::invalid_input("labelKey", reason))?;
    }
    let filter = ListFilter { state: state_filter, label_key, label_value };
    let page = state.sandboxes.list(tenant, &filter, query.get("pageToken"), limit);
    Ok(Json(collection_json(tenant, &page, limit)))
}

/// `GET /{id}`, with `?waitFor=ready|stopped&timeoutMs=N`.
pub async fn get(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Json<Value>> {
    let (tenant, id) = target(&state, &params)?;
    let Some(raw) = query.get("waitFor") else {
        let record = state.sandboxes.get(&tenant, &id)?;
        let ports = state.sandboxes.listening(&tenant, &id).await?;
        let mut sandbox = sandbox_json(&record);
        sandbox["status"]["endpoints"] = endpoints_json(&record.tenant_id, &record.id, &ports);
        return Ok(Json(sandbox));
    };
    let condition =
        WaitFor::parse(raw).ok_or_else(|| NimbusError::invalid_input("waitFor", "must be \"ready\" or \"stopped\""))?;
    let timeout = query.integer("timeoutMs", 0..=u64::MAX)?.unwrap_or(WAIT_DEFAULT_TIMEOUT_MS).min(WAIT_MAX_TIMEOUT_MS);
    let record = state.sandboxes.wait_for(&tenant, &id, condition, Duration::from_millis(timeout)).await?;
    Ok(Json(sandbox_json(&record)))
}

/// The optional body of `POST /{id}/stop`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct StopBody {
    grace_period_ms: Option<u64>,
}

fn grace(ms: Option<u64>, default: u64) -> Result<Duration, NimbusError> {
    let ms = ms.unwrap_or(default);
    if ms > SANDBOX_MAX_GRACE_MS {
        return Err(NimbusError::invalid_input("gracePeriodMs", format!("must be from 0 to {SANDBOX_MAX_GRACE_MS}")));
    }
    Ok(Duration::from_millis(ms))
}

/// `POST /{id}/stop`: returns once `stopped`.
pub async fn stop(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<Value>> {
    let (tenant, id) = target(&state, &params)?;
    let body = body.optional_json::<StopBody>()?;
    let grace = grace(body.and_then(|b| b.grace_period_ms), SANDBOX_STOP_GRACE_MS)?;
    let record = state.sandboxes.stop(&tenant, &id, grace).await?;
    Ok(Json(sandbox_json(&record)))
}

/// `DELETE /{id}?gracePeriodMs=`: from any state.
pub async fn delete(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<StatusCode> {
    let (tenant, id) = target(&state, &params)?;
    let grace = grace(query.integer("gracePeriodMs", 0..=SANDBOX_MAX_GRACE_MS)?, 0)?;
    state.sandboxes.delete(&tenant, &id, grace).await?;
    state.egress.logs().forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /{id}/logs?tail=N&follow=true`: NDJSON.
pub async fn logs(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Response> {
    let (tenant, id) = target(&state, &params)?;
    let tail = tail(&query)?;
    let follow = query.flag("follow")?;
    let sandboxes = state.sandboxes.clone();
    let first = {
        let (tenant, id) = (tenant.clone(), id.clone());
        let sandboxes = sandboxes.clone();
        nimbus_compute::blocking(move || sandboxes.read_logs(&tenant, &id, tail)).await??
    };
    let body = if follow && !first.ended {
        Body::from_stream(follow_stream(sandboxes, tenant, id, first))
    } else {
        Body::from(ndjson(&first.frames))
    };
    Ok(super::ndjson::response(body))
}

/// `tail=N` of the NDJSON log routes: keep the last N lines.
pub(super) fn tail(query: &QueryParams) -> Result<Option<usize>, NimbusError> {
    Ok(query.integer("tail", 0..=u64::MAX)?.map(|t| usize::try_from(t).unwrap_or(usize::MAX)))
}

fn ndjson(frames: &[String]) -> String {
    frames.iter().map(|f| format!("{f}\n")).collect()
}

/// Streams the first read, then new records as they are written (checked every
/// [`LOG_FOLLOW_POLL_MS`]), a heartbeat after [`LOG_HEARTBEAT_MS`] of silence, and ends after the
/// `exit` frame. A sandbox deleted meanwhile ends the stream.
fn follow_stream(
    sandboxes: Arc<Sandboxes>,
    tenant: String,
    id: String,
    first: LogRead,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    struct Follow {
        cursor: Option<LogCursor>,
        pending: Option<String>,
        silent_since: tokio::time::Instant,
    }
    let start = Follow {
        cursor: Some(first.cursor),
        pending: Some(ndjson(&first.frames)),
        silent_since: tokio::time::Instant::now(),
    };
    futures_util::stream::unfold(start, move |mut follow| {
        let (sandboxes, tenant, id) = (sandboxes.clone(), tenant.clone(), id.clone());
        async move {
            if let Some(chunk) = follow.pending.take() {
                return Some((Ok(chunk), follow));
            }
            let cursor = follow.cursor?;
            loop {
                tokio::time::sleep(Duration::from_millis(LOG_FOLLOW_POLL_MS)).await;
                let (sandboxes, tenant, id) = (sandboxes.clone(), tenant.clone(), id.clone());
                let read = tokio::task::spawn_blocking(move || sandboxes.follow_logs(&tenant, &id, cursor)).await;
                let Ok(Ok(read)) = read else { return None };
                follow.cursor = (!read.ended).then_some(read.cursor);
                if !read.frames.is_empty() {
                    follow.silent_since = tokio::time::Instant::now();
                    return Some((Ok(ndjson(&read.frames)), follow));
                }
                if follow.silent_since.elapsed() >= Duration::from_millis(LOG_HEARTBEAT_MS) {
                    follow.silent_since = tokio::time::Instant::now();
                    let beat = json!({ "kind": "heartbeat", "time": rfc3339_ms(now_ms()) });
                    return Some((Ok(format!("{beat}\n")), follow));
                }
            }
        }
    })
}

//! `POST …/exec` and `…/processes` (ours, sessions.md §7).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_compute::session::parse_signal;
use nimbus_core::NimbusError;
use serde_json::{Value, json};

use super::SessionPath;
use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::session_wire::{ExecBody, SignalBody, exec_result_json, process_json};
use crate::state::AppState;

/// `POST /api/sessions/{id}/exec[?wait=true]`: 201 `{processId}`, or 200 with the result.
pub async fn exec(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<Response> {
    let path = SessionPath::parse(&state, &params, &query)?;
    let wait = query.flag("wait")?;
    let request = body.json::<ExecBody>()?.into_request();
    if wait {
        let result = state.sessions.exec_wait(path.tenant(), &path.id, request).await?;
        Ok(Json(exec_result_json(&result)).into_response())
    } else {
        let process = state.sessions.exec(path.tenant(), &path.id, request).await?;
        Ok((StatusCode::CREATED, Json(json!({ "processId": process.process_id }))).into_response())
    }
}

/// `GET /api/sessions/{id}/processes`.
pub async fn processes(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
) -> ApiResult<Json<Value>> {
    let path = SessionPath::parse(&state, &params, &query)?;
    let processes = state.sessions.processes(path.tenant(), &path.id).await?;
    Ok(Json(json!({ "items": processes.iter().map(process_json).collect::<Vec<_>>() })))
}

/// `GET /api/sessions/{id}/processes/{pid}`.
pub async fn process(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Json<Value>> {
    let path = SessionPath::parse(&state, &params, &query)?;
    let pid = params.segment("process_id")?;
    Ok(Json(process_json(&state.sessions.process(path.tenant(), &path.id, pid).await?)))
}

/// `POST /api/sessions/{id}/processes/{pid}/signal`: 202; to the process group.
pub async fn process_signal(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<StatusCode> {
    let path = SessionPath::parse(&state, &params, &query)?;
    let pid = params.segment("process_id")?;
    let body = body.json::<SignalBody>()?;
    let signal = parse_signal(&body.signal).ok_or_else(|| {
        NimbusError::invalid_input("signal", "must be one of HUP, INT, QUIT, KILL, USR1, USR2, TERM, CONT, STOP, WINCH")
    })?;
    state.sessions.process_signal(path.tenant(), &path.id, pid, signal).await?;
    Ok(StatusCode::ACCEPTED)
}

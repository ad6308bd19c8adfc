//! `…/files` (ours, sessions.md §8): the confined file operations of `nimbus_sandbox::files`,
//! run on a blocking thread against the target's root once the session's preconditions hold.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nimbus_core::NimbusError;
use std::time::Duration;

use http_body_util::BodyExt;
use nimbus_core::limits::{SESSION_FILE_BODY_IDLE_MS, SESSION_FILE_MAX_BYTES};
use nimbus_core::time::rfc3339_ms;
use nimbus_sandbox::files::{self, FileInfo};
use serde_json::{Value, json};

use super::SessionPath;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::state::AppState;

fn path_param(query: &QueryParams) -> Result<String, NimbusError> {
    query.get("path").map(str::to_owned).ok_or_else(|| NimbusError::invalid_input("path", "is required"))
}

/// Runs a file operation off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NimbusError> + Send + 'static,
) -> Result<T, NimbusError> {
    nimbus_compute::blocking(work).await?
}

fn mode_text(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// A directory entry (`{name, type, size, mode, modifiedAt}`).
fn entry_json(info: &FileInfo) -> Value {
    json!({
        "name": info.name,
        "type": info.kind.as_str(),
        "size": info.size,
        "mode": mode_text(info.mode),
        "modifiedAt": rfc3339_ms(info.modified_at_ms),
    })
}

/// `FileInfo`: an entry with its `path` and, for symlinks, `target`.
fn info_json(info: &FileInfo) -> Value {
    let mut value = entry_json(info);
    value["path"] = info.path.clone().into();
    if let Some(target) = &info.target {
        value["target"] = target.clone().into();
    }
    value
}

/// `Last-Modified` in the HTTP date format.
fn http_date(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// `GET …/files?path=[&offset=&length=]`: the bytes, with size, mode and modification time.
pub async fn files_get(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Response> {
    let session = SessionPath::parse(&state, &params, &query)?;
    let path = path_param(&query)?;
    let offset = query.integer("offset", 0..=u64::MAX)?.unwrap_or(0);
    let length = query.integer("length", 0..=u64::MAX)?;
    let access = state.sessions.files(session.tenant(), &session.id).await?;
    let (info, bytes) =
        blocking(move || files::read(&access.root, &path, offset, length).map_err(NimbusError::from)).await?;
    let mut response = (StatusCode::OK, Body::from(bytes)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    for (name, value) in [
        ("x-nimbus-file-size", info.size.to_string()),
        ("x-nimbus-file-mode", mode_text(info.mode)),
        ("last-modified", http_date(info.modified_at_ms)),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header::HeaderName::from_static(name), value);
        }
    }
    Ok(response)
}

/// `PUT …/files?path=[&mode=0644]`: the raw body (any content type), atomically replacing.
pub async fn files_put(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    request: Request,
) -> ApiResult<Json<Value>> {
    let session = SessionPath::parse(&state, &params, &query)?;
    let path = path_param(&query)?;
    let mode = query
        .get("mode")
        .map(|raw| {
            u32::from_str_radix(raw, 8)
                .ok()
                .filter(|m| *m <= 0o7777 && !raw.is_empty())
                .ok_or_else(|| NimbusError::invalid_input("mode", "must be an octal mode from 0000 to 7777"))
        })
        .transpose()?;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|size| *size > SESSION_FILE_MAX_BYTES) {
        return Err(NimbusError::payload_too_large(SESSION_FILE_MAX_BYTES, Some(size)).into());
    }
    let access = state.sessions.files(session.tenant(), &session.id).await?;
    let bytes = read_upload(request.into_body()).await?;
    let info =
        blocking(move || files::write(&access.root, &path, &bytes, mode, access.owner).map_err(NimbusError::from))
            .await?;
    Ok(Json(info_json(&info)))
}

/// An upload's body, at most `SESSION_FILE_MAX_BYTES`, each part arriving within
/// `SESSION_FILE_BODY_IDLE_MS` of the last (a client that stops sending gets 408
/// `op.body_timeout` instead of holding the request and the pinned sandbox root).
async fn read_upload(mut body: Body) -> Result<Vec<u8>, NimbusError> {
    let idle = Duration::from_millis(SESSION_FILE_BODY_IDLE_MS);
    let mut bytes = Vec::new();
    loop {
        let frame = tokio::time::timeout(idle, body.frame())
            .await
            .map_err(|_| NimbusError::body_timeout(SESSION_FILE_BODY_IDLE_MS))?;
        let Some(frame) = frame else { return Ok(bytes) };
        let frame = frame.map_err(|_| NimbusError::invalid_request("the request body could not be read"))?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > SESSION_FILE_MAX_BYTES {
                return Err(NimbusError::payload_too_large(SESSION_FILE_MAX_BYTES, None));
            }
            bytes.extend_from_slice(data);
        }
    }
}

/// `DELETE …/files?path=[&recursive=true]`: 204.
pub async fn files_delete(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
) -> ApiResult<StatusCode> {
    let session = SessionPath::parse(&state, &params, &query)?;
    let path = path_param(&query)?;
    let recursive = query.flag("recursive")?;
    let access = state.sessions.files(session.tenant(), &session.id).await?;
    blocking(move || files::delete(&access.root, &path, recursive).map_err(NimbusError::from)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/files/list?path=`: `{path, entries, truncated}`.
pub async fn files_list(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
) -> ApiResult<Json<Value>> {
    let session = SessionPath::parse(&state, &params, &query)?;
    let path = path_param(&query)?;
    let access = state.sessions.files(session.tenant(), &session.id).await?;
    let listed = path.clone();
    let (entries, truncated) = blocking(move || files::list(&access.root, &listed).map_err(NimbusError::from)).await?;
    Ok(Json(json!({
        "path": path,
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "truncated": truncated,
    })))
}

/// `GET …/files/stat?path=`: `FileInfo` (a final symlink is not followed).
pub async fn files_stat(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
) -> ApiResult<Json<Value>> {
    let session = SessionPath::parse(&state, &params, &query)?;
    let path = path_param(&query)?;
    let access = state.sessions.files(session.tenant(), &session.id).await?;
    let info = blocking(move || files::stat(&access.root, &path).map_err(NimbusError::from)).await?;
    Ok(Json(info_json(&info)))
}

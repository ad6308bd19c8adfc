//! `/api/images`: the operator image routes (server-wide, not tenant-scoped): import an archive,
//! pull from a registry (JSON, or NDJSON progress events), list, remove.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use nimbus_compute::sandbox::Sandboxes;
use nimbus_core::NimbusError;
use nimbus_core::limits::MAX_IMAGE_ARCHIVE_BYTES;
use nimbus_sandbox::image::{ImageError, ImageRecord, ImageStore, PullProgress, Reference};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::ndjson;
use crate::body::RawBody;
use crate::envelope::{ApiResult, envelope_json, unsupported_media_type};
use crate::params::QueryParams;
use crate::request_id;
use crate::state::AppState;
use crate::wire::{image_in_use, image_json};

/// Runs a blocking store operation off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<ImageStore>,
    operation: impl FnOnce(&ImageStore) -> Result<T, nimbus_sandbox::image::ImageError> + Send + 'static,
) -> Result<T, NimbusError> {
    let store = store.clone();
    nimbus_compute::blocking(move || operation(&store).map_err(NimbusError::from)).await?
}

fn check_content_type(headers: &HeaderMap) -> Result<(), NimbusError> {
    let accepted = ["application/x-tar", "application/gzip", "application/x-gzip", "application/octet-stream"];
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) if !accepted.contains(&ct.split(';').next().unwrap_or("").trim()) => Err(unsupported_media_type()),
        _ => Ok(()),
    }
}

/// Streams the request body into a staging file, refusing it past the archive limit.
async fn stage_upload(path: &std::path::Path, mut body: Body) -> Result<(), NimbusError> {
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, "cannot stage an image upload");
        NimbusError::internal()
    };
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| NimbusError::invalid_request("the request body was cut off"))?;
        let Ok(chunk) = frame.into_data() else { continue };
        size += chunk.len() as u64;
        if size > MAX_IMAGE_ARCHIVE_BYTES {
            let limit = usize::try_from(MAX_IMAGE_ARCHIVE_BYTES).unwrap_or(usize::MAX);
            return Err(NimbusError::payload_too_large(limit, None));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)
}

/// `POST /api/images/import[?reference=name:tag]`: imports an OCI-layout or docker-archive tar.
pub async fn import(
    State(state): State<AppState>,
    query: QueryParams,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_content_type(&headers)?;
    let reference = query.get("reference").map(str::to_owned);
    let upload = state.images.staging_path("upload");
    let staged = stage_upload(&upload, body).await;
    let imported = match staged {
        Ok(()) => {
            let path = upload.clone();
            blocking(&state.images, move |store| {
                let file = std::fs::File::open(&path)
                    .map_err(|source| nimbus_sandbox::image::ImageError::Io { context: "opening an upload", source })?;
                store.import(file, reference.as_deref())
            })
            .await
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&upload).await;
    let images: Vec<Value> = imported?.iter().map(|i| image_json(i, state.sandboxes.image_users(&i.digest))).collect();
    Ok((StatusCode::CREATED, Json(json!({ "images": images }))))
}

/// `POST /api/images/pull`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PullImage {
    /// The image reference (`registry/name:tag`, `name@sha256:…`).
    reference: String,
}

/// `POST /api/images/pull` `{"reference"}`: the stored image (pulled unless the store already
/// has it), through the same single-flight pull as sandbox creates. With
/// `Accept: application/x-ndjson`, a stream of `progress` events ending with `done` (the image)
/// or `error` (the envelope).
pub async fn pull(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> ApiResult<Response> {
    let reference = body.json::<PullImage>()?.reference;
    Reference::parse(&reference).map_err(|e| NimbusError::from(ImageError::from(e)))?;
    let streamed = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| {
        accept.split(',').any(|t| t.split(';').next().unwrap_or("").trim() == ndjson::MEDIA_TYPE)
    });
    if !streamed {
        let image = state.images.ensure(&reference).await.map_err(NimbusError::from)?;
        return Ok(Json(image_json(&image, state.sandboxes.image_users(&image.digest))).into_response());
    }
    let (progress, updates) = watch::channel(PullProgress::default());
    let images = state.images.clone();
    let pulling = Box::pin(async move {
        images
            .ensure_reporting(&reference, |p| {
                progress.send_replace(p.clone());
            })
            .await
    });
    let ending = Ending { sandboxes: state.sandboxes.clone(), request_id: request_id::current() };
    let stream = futures_util::stream::unfold(Some((pulling, updates)), move |pull| {
        let ending = ending.clone();
        async move {
            let (mut pulling, mut updates) = pull?;
            tokio::select! {
                // Progress first: the sender goes with the finished pull, so this branch ends.
                biased;
                Ok(()) = updates.changed() => {
                    let line = ndjson::line(&progress_event(&updates.borrow_and_update()));
                    Some((Ok::<_, std::io::Error>(line), Some((pulling, updates))))
                }
                outcome = &mut pulling => Some((Ok(ndjson::line(&ending.event(outcome))), None)),
            }
        }
    });
    Ok(ndjson::response(Body::from_stream(stream)))
}

/// `{"event": "progress", "layer", "layerBytes", "layerTotalBytes", "bytes", "totalBytes"}`.
fn progress_event(progress: &PullProgress) -> Value {
    json!({
        "event": "progress",
        "layer": progress.blob,
        "layerBytes": progress.blob_bytes,
        "layerTotalBytes": progress.blob_total_bytes,
        "bytes": progress.bytes,
        "totalBytes": progress.total_bytes,
    })
}

/// What the last event of a streamed pull needs: the image's users, the request id of an error.
#[derive(Clone)]
struct Ending {
    sandboxes: Arc<Sandboxes>,
    request_id: String,
}

impl Ending {
    /// `{"event": "done", "image"}` or `{"event": "error", "error": envelope}`.
    fn event(&self, outcome: Result<ImageRecord, ImageError>) -> Value {
        match outcome {
            Ok(image) => {
                json!({ "event": "done", "image": image_json(&image, self.sandboxes.image_users(&image.digest)) })
            }
            Err(e) => json!({ "event": "error", "error": envelope_json(&NimbusError::from(e), &self.request_id) }),
        }
    }
}

/// `GET /api/images`.
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let images = blocking(&state.images, |store| store.list()).await?;
    let items: Vec<Value> = images.iter().map(|i| image_json(i, state.sandboxes.image_users(&i.digest))).collect();
    Ok(Json(json!({ "items": items })))
}

/// `DELETE /api/images?reference=<reference or sha256:digest>`.
pub async fn remove(State(state): State<AppState>, query: QueryParams) -> ApiResult<StatusCode> {
    let reference = query
        .get("reference")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| NimbusError::invalid_input("reference", "is required"))?
        .to_owned();
    let sandboxes = state.sandboxes.clone();
    blocking(&state.images, move |store| {
        let image = store.resolve(&reference)?;
        let users = sandboxes.image_users(&image.digest);
        if users > 0 {
            return Ok(Err(image_in_use(&reference, users)));
        }
        store.remove(&reference).map(Ok)
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
}

//! `/api/tenants/{tenant_id}/services`: definitions (create, list, read, update, delete), the
//! runtime view (with `waitFor`) and the lifecycle verbs (services.md §1).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_compute::service::ServiceWaitFor;
use nimbus_compute::service::definition::validate_name;
use nimbus_core::NimbusError;
use nimbus_core::limits::{MAX_RESOURCE_PAGE, WAIT_DEFAULT_TIMEOUT_MS, WAIT_MAX_TIMEOUT_MS};
use serde_json::Value;

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::sandbox_wire::endpoints_json;
use crate::service_wire::{
    EmptyBody, RestartBody, RestartRequest, ServiceBody, collection_json, definition_json, receipt_json, view_json,
};
use crate::state::AppState;

/// The tenant (checked to exist) and the service name of a service route. The name is checked
/// first: path syntax (400) comes before a missing tenant (404).
fn target(state: &AppState, params: &PathParams) -> Result<(String, String), NimbusError> {
    let name = params.segment("service_name")?.to_owned();
    validate_name(&name, "service_name")?;
    let tenant = state.tenant(params)?;
    Ok((tenant.id().as_str().to_owned(), name))
}

/// Query strings of the agents surface are strict (conventions §5).
fn only(query: &QueryParams, allowed: &[&str]) -> Result<(), NimbusError> {
    match query.names().find(|name| !allowed.contains(name)) {
        Some(unknown) => Err(NimbusError::invalid_input(unknown, "is not a parameter of this route")),
        None => Ok(()),
    }
}

/// `POST /`: create a definition (201).
pub async fn create(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant = state.tenant(&params)?;
    let tenant = tenant.id().as_str().to_owned();
    only(&query, &[])?;
    let request = body.json::<ServiceBody>()?.into_create(&tenant)?;
    let def = state.services.create(&tenant, request)?;
    Ok((StatusCode::CREATED, Json(definition_json(&def))))
}

/// `GET /`: the definitions, by name, paginated.
pub async fn list(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let tenant = tenant.id().as_str();
    only(&query, &["limit", "pageToken"])?;
    let limit = query
        .integer("limit", 0..=u64::MAX)?
        .map_or(MAX_RESOURCE_PAGE, |l| usize::try_from(l).unwrap_or(usize::MAX).clamp(1, MAX_RESOURCE_PAGE));
    let page = state.services.list(tenant, query.get("pageToken"), limit);
    Ok(Json(collection_json(tenant, &page, limit)))
}

/// `GET /{name}`: the runtime view, with `?waitFor=ready|healthy|stopped&timeoutMs=N`.
pub async fn get(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Json<Value>> {
    let (tenant, name) = target(&state, &params)?;
    only(&query, &["waitFor", "timeoutMs"])?;
    let Some(raw) = query.get("waitFor") else {
        let view = state.services.get(&tenant, &name)?;
        let mut answer = view_json(&view);
        // The ports its current sandbox listens on (none once that sandbox is gone).
        if let Some(sandbox) = &view.sandbox_id {
            let ports = state.sandboxes.listening(&tenant, sandbox).await.unwrap_or_default();
            answer["endpoints"] = endpoints_json(&tenant, sandbox, &ports);
        }
        return Ok(Json(answer));
    };
    let condition = ServiceWaitFor::parse(raw)
        .ok_or_else(|| NimbusError::invalid_input("waitFor", "must be \"ready\", \"healthy\" or \"stopped\""))?;
    let timeout = query.integer("timeoutMs", 0..=u64::MAX)?.unwrap_or(WAIT_DEFAULT_TIMEOUT_MS).min(WAIT_MAX_TIMEOUT_MS);
    let view = state.services.wait_for(&tenant, &name, condition, Duration::from_millis(timeout)).await?;
    Ok(Json(view_json(&view)))
}

/// `GET /{name}/definition`.
pub async fn definition(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
) -> ApiResult<Json<Value>> {
    let (tenant, name) = target(&state, &params)?;
    only(&query, &[])?;
    Ok(Json(definition_json(&state.services.definition(&tenant, &name)?)))
}

/// `PUT /{name}`: replace the definition, fenced on `metadata.generation`.
pub async fn update(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<Json<Value>> {
    let (tenant, name) = target(&state, &params)?;
    only(&query, &[])?;
    let (request, generation) = body.json::<ServiceBody>()?.into_update(&tenant, &name)?;
    let def = state.services.update(&tenant, request, generation)?;
    Ok(Json(definition_json(&def)))
}

/// `DELETE /{name}?ifMatchGeneration=N[&force=true]` (204).
///
/// Sessions: a forced delete closes the service's sessions through the hooks the server wires
/// into the registry ([`nimbus_compute::service::ServiceSessions`]).
pub async fn delete(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<StatusCode> {
    let (tenant, name) = target(&state, &params)?;
    only(&query, &["ifMatchGeneration", "force"])?;
    let generation = query
        .integer("ifMatchGeneration", 1..=u64::MAX)?
        .ok_or_else(|| NimbusError::invalid_input("ifMatchGeneration", "is required"))?;
    let force = query.flag("force")?;
    state.services.delete(&tenant, &name, generation, force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /{name}/start`: returns once the sandbox exists (`starting` or `ready`).
pub async fn start(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<Json<Value>> {
    let (tenant, name) = verb_target(&state, &params, &query, &body)?;
    Ok(Json(view_json(&state.services.start(&tenant, &name).await?)))
}

/// `POST /{name}/stop`: returns once stopped.
pub async fn stop(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<Json<Value>> {
    let (tenant, name) = verb_target(&state, &params, &query, &body)?;
    Ok(Json(view_json(&state.services.stop(&tenant, &name).await?)))
}

/// The service of a body-less lifecycle verb (`start`, `stop`): no query parameters, an empty
/// body or `{}`.
fn verb_target(
    state: &AppState,
    params: &PathParams,
    query: &QueryParams,
    body: &RawBody,
) -> Result<(String, String), NimbusError> {
    let target = target(state, params)?;
    only(query, &[])?;
    body.optional_json::<EmptyBody>()?;
    Ok(target)
}

/// `POST /{name}/restart`: empty body → synchronous (200, runtime view); fenced body → 202
/// with a receipt.
pub async fn restart(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<Response> {
    let (tenant, name) = target(&state, &params)?;
    only(&query, &[])?;
    let request = body.optional_json::<RestartBody>()?.unwrap_or_default().into_request()?;
    match request {
        RestartRequest::Sync => Ok(Json(view_json(&state.services.restart(&tenant, &name).await?)).into_response()),
        RestartRequest::Fenced { source_generation, request_id } => {
            let (receipt, disposition) =
                state.services.restart_fenced(&tenant, &name, source_generation, &request_id).await?;
            let body = receipt_json(&tenant, &name, &receipt, disposition);
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
    }
}

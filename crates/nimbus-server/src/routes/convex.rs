//! The deployment URL `/convex/{t}` (functions.md §10): the routes Convex-style clients call.
//!
//! - `POST /query`, `/mutation`, `/action`: `{name, args}` → the bare return value; the
//!   function's kind must match the route.
//! - `POST /query/paginated`: a query function called with `args.paginationOpts`, its
//!   `{page, continueCursor, isDone}` answered as `{data, next_cursor, has_more}`.
//! - `POST /schedule/run_after`, `/schedule/run_at`, `DELETE /schedule/{job_id}`: function jobs.
//! - `GET /ws`: the `nimbus.v2` socket for this tenant, also taking `subscribe_named`.
//! - `POST /api/query`, `/api/mutation`, `/api/action`: Convex's HTTP protocol
//!   ([`crate::convex_wire`]): a failing call is a 560 with Convex's error body; only what fails
//!   before the call (credential, tenant, body) is an envelope.
//!
//! Every other failure is the usual envelope; the admin token is required as everywhere.

use axum::Json;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nimbus_core::NimbusError;
use nimbus_core::limits::{MAX_PAGE_SIZE, MAX_RUN_AFTER_MS};
use nimbus_engine::Tenant;
use nimbus_engine::tenant::Target;
use nimbus_functions::{CallRequest, Caller, Kind};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::functions::CallBody;
use crate::body::RawBody;
use crate::convex_wire::{self, ApiCall, FUNCTION_FAILED_STATUS};
use crate::envelope::{self, ApiResult};
use crate::functions::{NimbusFunctions, check_target};
use crate::params::PathParams;
use crate::realtime_wire::Dialect;
use crate::state::AppState;
use crate::wire::JobCreated;

/// `POST /query/paginated` body.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PaginatedBody {
    name: String,
    #[serde(default)]
    args: Option<Value>,
    page_size: i64,
    #[serde(default)]
    cursor: Option<String>,
}

/// `POST /schedule/run_after` body.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RunAfterBody {
    name: String,
    #[serde(default)]
    args: Option<Value>,
    run_after_ms: u64,
}

/// `POST /schedule/run_at` body.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RunAtBody {
    name: String,
    #[serde(default)]
    args: Option<Value>,
    run_at_ms: i64,
}

/// Calls the public function `name` as a client, after checking that it is of `kind`.
async fn invoke(
    state: &AppState,
    tenant: &Tenant,
    name: String,
    args: Value,
    kind: Kind,
) -> Result<Value, NimbusError> {
    let info = state.functions.public_function(tenant.id().as_str(), &name).await?;
    NimbusFunctions::expect_kind(&info, &[kind])?;
    let called = state
        .functions
        .call(CallRequest {
            tenant: tenant.id().as_str().to_owned(),
            name,
            args,
            caller: Caller::Client,
            request_id: crate::request_id::current(),
        })
        .await?;
    Ok(called.value)
}

/// `POST /{kind}`: the bare return value.
async fn call_kind(state: AppState, params: PathParams, body: RawBody, kind: Kind) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let CallBody { name, args } = body.json()?;
    let value = invoke(&state, &tenant, name, args.unwrap_or_else(|| json!({})), kind).await?;
    Ok(Json(value))
}

/// `POST /convex/{t}/query`.
pub async fn query(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<Value>> {
    call_kind(state, params, body, Kind::Query).await
}

/// `POST /convex/{t}/mutation`.
pub async fn mutation(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<Value>> {
    call_kind(state, params, body, Kind::Mutation).await
}

/// `POST /convex/{t}/action`.
pub async fn action(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<Value>> {
    call_kind(state, params, body, Kind::Action).await
}

/// `POST /convex/{t}/query/paginated`: `args.paginationOpts = {numItems: page_size, cursor}`;
/// the function must answer a page (`{page, continueCursor, isDone}`, what `.paginate()` gives).
pub async fn paginated(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let PaginatedBody { name, args, page_size, cursor } = body.json()?;
    if page_size < 1 {
        return Err(NimbusError::invalid_input("page_size", "must be greater than zero").into());
    }
    let page_size = usize::try_from(page_size).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE);
    let mut args = match args {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(args)) => args,
        Some(_) => return Err(NimbusError::invalid_input("args", "must be an object").into()),
    };
    if args.contains_key("paginationOpts") {
        return Err(NimbusError::invalid_input("args.paginationOpts", "is set from page_size and cursor").into());
    }
    args.insert("paginationOpts".into(), json!({ "numItems": page_size, "cursor": cursor }));
    let value = invoke(&state, &tenant, name.clone(), Value::Object(args), Kind::Query).await?;
    let (Some(page), Some(done)) =
        (value.get("page").and_then(Value::as_array), value.get("isDone").and_then(Value::as_bool))
    else {
        return Err(NimbusError::invalid_input(
            "name",
            format!("{name} did not answer a page ({{page, continueCursor, isDone}}): call it with paginate()"),
        )
        .into());
    };
    let next_cursor = if done { Value::Null } else { value.get("continueCursor").cloned().unwrap_or(Value::Null) };
    Ok(Json(json!({ "data": page, "next_cursor": next_cursor, "has_more": !done })))
}

/// Schedules a function job `run_after_ms` from now: 201 `{"job_id"}`.
async fn schedule(
    state: &AppState,
    tenant: &Tenant,
    name: String,
    args: Option<Value>,
    run_after_ms: u64,
) -> ApiResult<(StatusCode, Json<JobCreated>)> {
    let args = match args {
        None | Some(Value::Null) => json!({}),
        Some(args @ Value::Object(_)) => args,
        Some(_) => return Err(NimbusError::invalid_input("args", "must be an object").into()),
    };
    let target = Target::Function { name, args };
    check_target(&state.functions, tenant, &target).await?;
    let id = state.scheduler.schedule_job(tenant, target, run_after_ms).await?;
    Ok((StatusCode::CREATED, Json(JobCreated { job_id: id })))
}

/// The delay's bound, as for `POST /api/tenants/{t}/schedule`.
fn check_delay(run_after_ms: u64, field: &str) -> Result<(), NimbusError> {
    if run_after_ms > MAX_RUN_AFTER_MS {
        return Err(NimbusError::invalid_input(field, format!("must be at most {MAX_RUN_AFTER_MS} ms from now")));
    }
    Ok(())
}

/// `POST /convex/{t}/schedule/run_after`.
pub async fn run_after(
    State(state): State<AppState>,
    params: PathParams,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<JobCreated>)> {
    let tenant = state.tenant(&params)?;
    let RunAfterBody { name, args, run_after_ms } = body.json()?;
    check_delay(run_after_ms, "run_after_ms")?;
    schedule(&state, &tenant, name, args, run_after_ms).await
}

/// `POST /convex/{t}/schedule/run_at`: epoch ms; a time already past runs now.
pub async fn run_at(
    State(state): State<AppState>,
    params: PathParams,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<JobCreated>)> {
    let tenant = state.tenant(&params)?;
    let RunAtBody { name, args, run_at_ms } = body.json()?;
    let run_after_ms = u64::try_from(run_at_ms.saturating_sub(state.scheduler.now_ms())).unwrap_or(0);
    check_delay(run_after_ms, "run_at_ms")?;
    schedule(&state, &tenant, name, args, run_after_ms).await
}

/// `DELETE /convex/{t}/schedule/{job_id}`: cancels a pending job.
pub async fn cancel(State(state): State<AppState>, params: PathParams) -> ApiResult<StatusCode> {
    let job_id = params.segment("job_id")?.to_owned();
    let tenant = state.tenant(&params)?;
    state.scheduler.cancel_job(&tenant, &job_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /convex/{t}/ws`: `/ws`'s socket (and checks, in its order), the tenant from the path.
pub async fn ws(
    State(state): State<AppState>,
    params: PathParams,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let tenant = params.segment("tenant_id")?;
    super::ws::accept(state, &headers, Some((tenant, "tenant_id")), Dialect::Deployment, ws)
}

/// `POST /convex/{t}/api/{kind}`: the envelope for what fails before the call, Convex's 200
/// or 560 body for the call.
async fn api_call(state: AppState, params: PathParams, body: RawBody, kind: Kind) -> ApiResult<Response> {
    let tenant = state.tenant(&params)?;
    let call: ApiCall = body.json()?;
    let path = call.path.clone();
    let args = call.decoded_args()?;
    let outcome = match resolve(&state, &tenant, &path).await {
        Ok(name) => invoke(&state, &tenant, name, args, kind).await,
        Err(error) => Err(error),
    };
    Ok(match outcome {
        Ok(value) => Json(convex_wire::success(value)).into_response(),
        Err(error) => {
            let status = StatusCode::from_u16(FUNCTION_FAILED_STATUS).map_err(|_| NimbusError::internal())?;
            let mut response = (status, Json(convex_wire::failure(&error))).into_response();
            envelope::keep_foreign_error(&mut response);
            response
        }
    })
}

/// The deployed function a Convex path names: the first of its [candidate
/// names](convex_wire::candidate_names) that exists, else the path as sent (so that
/// `function.not_found` names it).
async fn resolve(state: &AppState, tenant: &Tenant, path: &str) -> Result<String, NimbusError> {
    let deployment = state.functions.deployment(tenant.id().as_str()).await?;
    let found = convex_wire::candidate_names(path).into_iter().find(|name| deployment.functions.contains_key(name));
    Ok(found.unwrap_or_else(|| path.to_owned()))
}

/// `POST /convex/{t}/api/query`.
pub async fn api_query(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Response> {
    api_call(state, params, body, Kind::Query).await
}

/// `POST /convex/{t}/api/mutation`.
pub async fn api_mutation(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Response> {
    api_call(state, params, body, Kind::Mutation).await
}

/// `POST /convex/{t}/api/action`.
pub async fn api_action(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Response> {
    api_call(state, params, body, Kind::Action).await
}

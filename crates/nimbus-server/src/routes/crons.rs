//! `/api/tenants/{t}/crons`: recurring jobs (create, list, get, patch, delete, run history).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nimbus_core::limits::{CRON_RUNS_DEFAULT_PAGE, CRON_RUNS_KEPT};
use serde_json::{Value, json};

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::schedule_wire::{
    CreateCron, PatchCron, check_cron_name, cron_json, cron_run_json, parse_schedule, parse_target,
};
use crate::state::AppState;

fn cron_name(params: &PathParams) -> Result<String, nimbus_core::NimbusError> {
    let name = params.segment("cron_name")?;
    check_cron_name(name, "cron_name")?;
    Ok(name.to_owned())
}

/// `POST /api/tenants/{t}/crons`.
pub async fn create(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<StatusCode> {
    let tenant = state.tenant(&params)?;
    let request: CreateCron = body.json()?;
    check_cron_name(&request.name, "name")?;
    let schedule = parse_schedule(&request.schedule)?;
    let target = parse_target(&request.mutation)?;
    crate::functions::check_target(&state.functions, &tenant, &target).await?;
    state.scheduler.create_cron(&tenant, request.name, schedule, target).await?;
    Ok(StatusCode::CREATED)
}

/// `GET /api/tenants/{t}/crons`: by name.
pub async fn list(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let crons = tenant.crons().await?;
    Ok(Json(json!({ "crons": crons.iter().map(cron_json).collect::<Vec<_>>() })))
}

/// `GET /api/tenants/{t}/crons/{name}`.
pub async fn get(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let name = cron_name(&params)?;
    let tenant = state.tenant(&params)?;
    let cron = tenant.cron(&name).await?;
    Ok(Json(json!({ "cron": cron_json(&cron) })))
}

/// `PATCH /api/tenants/{t}/crons/{name}`.
pub async fn patch(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<Value>> {
    let name = cron_name(&params)?;
    let tenant = state.tenant(&params)?;
    let request: PatchCron = body.json()?;
    let change = request.validate()?;
    if let Some(target) = &change.target {
        crate::functions::check_target(&state.functions, &tenant, target).await?;
    }
    let cron = state.scheduler.update_cron(&tenant, &name, change).await?;
    Ok(Json(json!({ "cron": cron_json(&cron) })))
}

/// `DELETE /api/tenants/{t}/crons/{name}`: 204 also when absent.
pub async fn delete(State(state): State<AppState>, params: PathParams) -> ApiResult<StatusCode> {
    let name = cron_name(&params)?;
    let tenant = state.tenant(&params)?;
    tenant.delete_cron(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/tenants/{t}/crons/{name}/runs?limit=`: newest first.
pub async fn runs(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Json<Value>> {
    let name = cron_name(&params)?;
    let limit = query.integer("limit", 1..=CRON_RUNS_KEPT as u64)?.map_or(CRON_RUNS_DEFAULT_PAGE, |l| l as usize);
    let tenant = state.tenant(&params)?;
    let runs = tenant.cron_runs(&name, limit).await?;
    Ok(Json(json!({ "runs": runs.iter().map(cron_run_json).collect::<Vec<_>>() })))
}

//! `/api/tenants/{t}/schedule`: one-shot jobs (create, list pending, look up, cancel, result).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::PathParams;
use crate::schedule_wire::{CreateJob, job_result_json, job_status_json, scheduled_job_json};
use crate::state::AppState;
use crate::wire::JobCreated;

/// `POST /api/tenants/{t}/schedule`.
pub async fn create(
    State(state): State<AppState>,
    params: PathParams,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<JobCreated>)> {
    let tenant = state.tenant(&params)?;
    let request: CreateJob = body.json()?;
    let (run_after_ms, target) = request.validate()?;
    crate::functions::check_target(&state.functions, &tenant, &target).await?;
    let id = state.scheduler.schedule_job(&tenant, target, run_after_ms).await?;
    Ok((StatusCode::CREATED, Json(JobCreated { job_id: id })))
}

/// `GET /api/tenants/{t}/schedule`: pending jobs by `run_at` then id.
pub async fn list(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let jobs = tenant.pending_jobs().await?;
    Ok(Json(json!({ "jobs": jobs.iter().map(scheduled_job_json).collect::<Vec<_>>() })))
}

/// `GET /api/tenants/{t}/schedule/{job_id}`: a job in any state.
pub async fn get(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let job_id = params.segment("job_id")?.to_owned();
    let tenant = state.tenant(&params)?;
    let job = tenant.job(&job_id).await?;
    Ok(Json(json!({ "job": job_status_json(&job) })))
}

/// `DELETE /api/tenants/{t}/schedule/{job_id}`: cancels a pending job.
pub async fn cancel(State(state): State<AppState>, params: PathParams) -> ApiResult<StatusCode> {
    let job_id = params.segment("job_id")?.to_owned();
    let tenant = state.tenant(&params)?;
    state.scheduler.cancel_job(&tenant, &job_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/tenants/{t}/schedule/history/{job_id}`: a finished job's result.
pub async fn history(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let job_id = params.segment("job_id")?.to_owned();
    let tenant = state.tenant(&params)?;
    let job = tenant.job(&job_id).await?;
    if !job.state.is_finished() {
        return Err(nimbus_engine::tenant::job_not_found(&job_id, Some(job.state)).into());
    }
    Ok(Json(json!({ "result": job_result_json(&job) })))
}

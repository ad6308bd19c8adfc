//! `/api/tenants`: create, list, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nimbus_core::ids::TenantId;

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::PathParams;
use crate::state::AppState;
use crate::wire::{CreateTenant, IdAnswer, TenantList};

/// `POST /api/tenants`.
pub async fn create(State(state): State<AppState>, body: RawBody) -> ApiResult<(StatusCode, Json<IdAnswer>)> {
    let request: CreateTenant = body.json()?;
    let id = TenantId::parse(&request.id, "id")?;
    state.engine.create_tenant(id.clone()).await?;
    // A new tenant with an old id starts with no functions, whatever a straggling call of the
    // deleted one cached.
    state.functions.forget(id.as_str());
    Ok((StatusCode::CREATED, Json(IdAnswer { id: id.as_str().to_owned() })))
}

/// `GET /api/tenants`.
pub async fn list(State(state): State<AppState>) -> Json<TenantList> {
    Json(TenantList { tenants: state.engine.tenant_ids() })
}

/// `DELETE /api/tenants/{tenant_id}`.
pub async fn delete(State(state): State<AppState>, params: PathParams) -> ApiResult<StatusCode> {
    let tenant = params.tenant()?;
    state.engine.delete_tenant(&tenant).await?;
    crate::tenant_removal::remove_dependents(&state, tenant.as_str()).await;
    Ok(StatusCode::NO_CONTENT)
}

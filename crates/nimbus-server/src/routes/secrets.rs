//! `/api/tenants/{tenant_id}/secrets`: a tenant's write-only secrets, for the egress proxy's
//! credential rules (networking.md, "Tenant secrets"). No answer ever carries a value.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nimbus_compute::secrets::{SecretMeta, validate_name};
use nimbus_core::NimbusError;
use nimbus_core::time::rfc3339_ms;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::state::AppState;

/// `PUT /{name}`'s body.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PutSecretBody {
    value: String,
}

/// The `Secret` resource: `{name, createdAt, updatedAt}`.
fn secret_json(meta: &SecretMeta) -> Value {
    json!({
        "name": meta.name,
        "createdAt": rfc3339_ms(meta.created_at_ms),
        "updatedAt": rfc3339_ms(meta.updated_at_ms),
    })
}

/// The tenant (checked to exist) and the name of a secret route. The name is checked first:
/// path syntax (400) comes before a missing tenant (404).
fn target(state: &AppState, params: &PathParams) -> Result<(String, String), NimbusError> {
    let name = params.segment("name")?.to_owned();
    validate_name(&name)?;
    let tenant = state.tenant(params)?;
    Ok((tenant.id().as_str().to_owned(), name))
}

/// These routes take no query parameters (query strings of the agents surface are strict).
fn no_query(query: &QueryParams) -> Result<(), NimbusError> {
    match query.names().next() {
        Some(unknown) => Err(NimbusError::invalid_input(unknown, "is not a parameter of this route")),
        None => Ok(()),
    }
}

/// `PUT /{name}` with `{"value": "…"}`: 201 when the secret is new, 200 when its value was
/// replaced; on disk before the answer.
pub async fn put(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (tenant, name) = target(&state, &params)?;
    no_query(&query)?;
    let PutSecretBody { value } = body.json()?;
    let secrets = state.secrets.clone();
    let (meta, created) = nimbus_compute::blocking(move || secrets.put(&tenant, &name, &value)).await??;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(secret_json(&meta))))
}

/// `GET /`: `{"items": [Secret]}`, sorted by name.
pub async fn list(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    no_query(&query)?;
    let items: Vec<Value> = state.secrets.list(tenant.id().as_str()).iter().map(secret_json).collect();
    Ok(Json(json!({ "items": items })))
}

/// `DELETE /{name}` (204; 404 `op.not_found` when absent).
pub async fn delete(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<StatusCode> {
    let (tenant, name) = target(&state, &params)?;
    no_query(&query)?;
    let secrets = state.secrets.clone();
    nimbus_compute::blocking(move || secrets.delete(&tenant, &name)).await??;
    Ok(StatusCode::NO_CONTENT)
}

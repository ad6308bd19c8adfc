//! `/api/tenants/{t}/functions`: deploy (`PUT`, `?dryRun=true`), list (`GET`), and
//! `/functions/call`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use nimbus_core::time::rfc3339_ms;
use nimbus_functions::{CallRequest, Caller, Deployment};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::state::AppState;

/// `PUT /functions` body.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeployBody {
    modules: BTreeMap<String, String>,
}

/// `POST /functions/call` body (also the deployment URL's `/query`, `/mutation`, `/action`).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallBody {
    /// The function.
    pub(crate) name: String,
    /// Its args (default `{}`).
    #[serde(default)]
    pub(crate) args: Option<Value>,
}

/// The deployment as `GET /functions` and deploys show it.
fn deployment_json(deployment: &Deployment) -> Value {
    json!({
        "version": deployment.version,
        "deployedAt": (deployment.version > 0).then(|| rfc3339_ms(deployment.deployed_at)),
        "functions": deployment.listing(),
    })
}

/// `PUT /api/tenants/{t}/functions[?dryRun=true]`.
pub async fn deploy(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<Json<Value>> {
    let dry_run = query.flag("dryRun")?;
    let tenant = state.tenant(&params)?;
    let DeployBody { modules } = body.json()?;
    let outcome = crate::functions::deploy(&state.functions, &tenant, modules, dry_run).await?;
    if !dry_run {
        state.realtime.redeployed(tenant.id());
    }
    let mut answer = deployment_json(&outcome.deployment);
    answer["warnings"] = Value::from(outcome.warnings);
    if dry_run {
        answer["deployedAt"] = Value::Null;
    }
    Ok(Json(answer))
}

/// `GET /api/tenants/{t}/functions`.
pub async fn list(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let deployment = state.functions.deployment(tenant.id().as_str()).await?;
    Ok(Json(deployment_json(&deployment)))
}

/// `POST /api/tenants/{t}/functions/call`.
pub async fn call(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let CallBody { name, args } = body.json()?;
    let called = state
        .functions
        .call(CallRequest {
            tenant: tenant.id().as_str().to_owned(),
            name,
            args: args.unwrap_or_else(|| json!({})),
            caller: Caller::Client,
            request_id: crate::request_id::current(),
        })
        .await?;
    Ok(Json(json!({ "value": called.value })))
}

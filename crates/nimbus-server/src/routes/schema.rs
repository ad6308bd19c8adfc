//! `/api/tenants/{t}/schema`: read all or one, put, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nimbus_engine::schema::TableSchema;
use serde_json::{Map, Value, json};

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::PathParams;
use crate::state::AppState;

fn schema_json(schema: &TableSchema) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// `GET /api/tenants/{t}/schema`.
pub async fn list(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let tables: Map<String, Value> =
        tenant.schemas().await?.iter().map(|s| (s.table.clone(), schema_json(s))).collect();
    Ok(Json(json!({ "tables": tables })))
}

/// `GET /api/tenants/{t}/schema/{table}`.
pub async fn get(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let table = params.table()?;
    let tenant = state.tenant(&params)?;
    let schema = tenant.schema(table).await?;
    Ok(Json(schema_json(&schema)))
}

/// `PUT /api/tenants/{t}/schema/{table}`.
pub async fn put(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<StatusCode> {
    let table = params.table()?;
    let tenant = state.tenant(&params)?;
    let schema: TableSchema = body.json()?;
    tenant.put_schema(table, schema).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/tenants/{t}/schema/{table}`.
pub async fn delete(State(state): State<AppState>, params: PathParams) -> ApiResult<StatusCode> {
    let table = params.table()?;
    let tenant = state.tenant(&params)?;
    tenant.delete_schema(table).await?;
    Ok(StatusCode::NO_CONTENT)
}

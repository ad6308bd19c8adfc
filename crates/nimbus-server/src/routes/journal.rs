//! `/api/tenants/{t}/journal` and `/journal/bootstrap`.

use axum::Json;
use axum::extract::State;
use nimbus_core::limits::{DEFAULT_JOURNAL_PAGE, MAX_JOURNAL_PAGE};
use serde_json::{Value, json};

use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::state::AppState;

/// `GET /api/tenants/{t}/journal?after=&limit=`.
pub async fn page(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    let parsed = query
        .integer("after", 0..=i64::MAX as u64)
        .and_then(|after| Ok((after.unwrap_or(0), query.integer("limit", 1..=MAX_JOURNAL_PAGE as u64)?)));
    let (after, limit) = match parsed {
        Ok((after, limit)) => (after, limit.map_or(DEFAULT_JOURNAL_PAGE, |l| l as usize)),
        Err(error) => return Err(tenant.journal_cursor_error(error).await.into()),
    };
    let page = tenant.journal_page(after, limit).await?;
    Ok(Json(json!({
        "records": page.records,
        "next_cursor": page.next_cursor,
        "latest_sequence": page.latest_sequence,
        "cursor_floor": page.cursor_floor,
        "has_more": page.has_more,
    })))
}

/// `GET /api/tenants/{t}/journal/bootstrap`.
pub async fn bootstrap(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let tenant = state.tenant(&params)?;
    Ok(Json(tenant.bootstrap().await?))
}

//! `/api/tenants/{t}/query` and `/query/paginated`.

use axum::Json;
use axum::extract::State;
use nimbus_core::NimbusError;
use nimbus_core::ids::TableName;
use nimbus_core::limits::MAX_PAGE_SIZE;
use nimbus_engine::query::Query;
use nimbus_engine::query::filter::Filter;
use nimbus_engine::query::order::Order;

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::PathParams;
use crate::state::AppState;
use crate::wire::{DocumentJson, DocumentPage, PaginatedQueryBody, QueryAnswer, QueryBody};

/// Converts a wire query into the engine's, naming bad fields by their path in the body.
pub(crate) fn to_query(body: QueryBody, prefix: &str) -> Result<Query, NimbusError> {
    let at = |field: &str| if prefix.is_empty() { field.to_owned() } else { format!("{prefix}.{field}") };
    let table = TableName::parse(&body.table, &at("table"))?;
    let filters = body
        .filters
        .into_iter()
        .enumerate()
        .map(|(i, f)| Filter::new(&f.field, &f.op, f.value).map_err(|e| e.within(&at(&format!("filters[{i}]")))))
        .collect::<Result<Vec<_>, _>>()?;
    let order = match body.order {
        Some(order) => Order::new(&order.field, &order.direction).map_err(|e| e.within(&at("order")))?,
        None => Order::default(),
    };
    let limit = match body.limit {
        Some(l) if l < 0 => return Err(NimbusError::invalid_input(at("limit"), "must not be negative")),
        Some(l) => Some(usize::try_from(l).unwrap_or(usize::MAX)),
        None => None,
    };
    Ok(Query { table, filters, order, limit })
}

/// `POST /api/tenants/{t}/query`.
pub async fn run(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<QueryAnswer>> {
    let tenant = state.tenant(&params)?;
    let query = to_query(body.json()?, "")?;
    let documents = tenant.query(query).await?;
    Ok(Json(QueryAnswer { data: DocumentJson::all(&documents) }))
}

/// `POST /api/tenants/{t}/query/paginated`.
pub async fn paginated(
    State(state): State<AppState>,
    params: PathParams,
    body: RawBody,
) -> ApiResult<Json<DocumentPage>> {
    let tenant = state.tenant(&params)?;
    let request: PaginatedQueryBody = body.json()?;
    let mut query = to_query(request.query, "query")?;
    query.limit = None;
    if request.page_size < 1 {
        return Err(NimbusError::invalid_input("page_size", "must be greater than zero").into());
    }
    let page_size = usize::try_from(request.page_size).unwrap_or(usize::MAX).min(MAX_PAGE_SIZE);
    let page = tenant.query_page(query, page_size, request.after).await?;
    Ok(Json(DocumentPage {
        data: DocumentJson::all(&page.documents),
        next_cursor: page.next_cursor,
        has_more: page.has_more,
    }))
}

//! `/api/tenants/{t}/documents`: insert, list, get, patch, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nimbus_core::ids::TableName;
use nimbus_core::limits::MAX_PAGE_SIZE;
use nimbus_engine::document::Document;
use serde_json::Value;

use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::state::AppState;
use crate::wire::{DocumentAnswer, DocumentJson, DocumentPage, IdAnswer, InsertDocument, PatchDocument};

/// Renders documents in their wire form.
pub fn documents_json(documents: &[Document]) -> Vec<Value> {
    documents.iter().map(Document::to_json).collect()
}

/// `POST /api/tenants/{t}/documents`.
pub async fn insert(
    State(state): State<AppState>,
    params: PathParams,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<IdAnswer>)> {
    let tenant = state.tenant(&params)?;
    let request: InsertDocument = body.json()?;
    let table = TableName::parse(&request.table, "table")?;
    let id = tenant.insert_document(table, request.fields).await?;
    Ok((StatusCode::CREATED, Json(IdAnswer { id: id.as_str().to_owned() })))
}

/// `GET /api/tenants/{t}/documents/{table}?limit=&cursor=`.
pub async fn list(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
) -> ApiResult<Json<DocumentPage>> {
    let table = params.table()?;
    let tenant = state.tenant(&params)?;
    let limit = query.integer("limit", 1..=MAX_PAGE_SIZE as u64)?.map(|l| l as usize);
    let cursor = query.get("cursor").map(str::to_owned);
    let page = tenant.list_documents(table, limit, cursor).await?;
    Ok(Json(DocumentPage {
        data: DocumentJson::all(&page.documents),
        next_cursor: page.next_cursor,
        has_more: page.has_more,
    }))
}

/// `GET /api/tenants/{t}/documents/{table}/{document_id}`.
pub async fn get(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<DocumentAnswer>> {
    let (table, id) = (params.table()?, params.document()?);
    let tenant = state.tenant(&params)?;
    let doc = tenant.get_document(table, id).await?;
    Ok(Json(DocumentAnswer { document: DocumentJson(doc.to_json()) }))
}

/// `PATCH /api/tenants/{t}/documents/{table}/{document_id}`.
pub async fn patch(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<IdAnswer>> {
    let (table, id) = (params.table()?, params.document()?);
    let tenant = state.tenant(&params)?;
    let request: PatchDocument = body.json()?;
    let doc = tenant.patch_document(table, id, request.patch).await?;
    Ok(Json(IdAnswer { id: doc.id.as_str().to_owned() }))
}

/// `DELETE /api/tenants/{t}/documents/{table}/{document_id}`.
pub async fn delete(State(state): State<AppState>, params: PathParams) -> ApiResult<StatusCode> {
    let (table, id) = (params.table()?, params.document()?);
    let tenant = state.tenant(&params)?;
    tenant.delete_document(table, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Reads over one tenant connection, shared by the writer (inside a transaction) and the read
//! pool (on a snapshot): loading documents and schemas, and running planned queries.

use nimbus_core::ids::{DocumentId, TableName};
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_store::documents::{self, StoredDocument};
use nimbus_store::{index_entries, schemas};
use rusqlite::Connection;
use serde_json::Value;

use crate::document::{Document, Fields};
use crate::policy::Operation;
use crate::query::plan::{self, Plan};
use crate::query::{Query, cursor};
use crate::schema::TableSchema;

/// 500 `service.serialization`: a stored row could not be decoded.
pub(crate) fn serialization_error(what: &str, error: impl std::fmt::Display) -> NimbusError {
    tracing::error!(%error, "could not decode stored {what}");
    NimbusError::new(ErrorCode::ServiceSerialization, format!("stored {what} could not be decoded"), None)
}

/// Decodes a stored row into a document.
pub(crate) fn decode_document(stored: StoredDocument) -> Result<Document, NimbusError> {
    let fields: Fields = match serde_json::from_str(&stored.fields) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(serialization_error("document", "fields are not an object")),
        Err(e) => return Err(serialization_error("document", e)),
    };
    Ok(Document {
        id: DocumentId::from_stored(stored.id),
        table: TableName::parse(&stored.table, "table").map_err(|e| serialization_error("document", e))?,
        creation_time: stored.creation_time,
        update_time: stored.update_time,
        fields,
    })
}

/// A document's row, from the document and its fields' JSON text.
pub(crate) fn encode_document(doc: &Document, fields: String) -> StoredDocument {
    StoredDocument {
        table: doc.table.as_str().to_owned(),
        id: doc.id.as_str().to_owned(),
        creation_time: doc.creation_time,
        update_time: doc.update_time,
        fields,
    }
}

/// Loads one document.
pub(crate) fn load_document(conn: &Connection, table: &TableName, id: &str) -> Result<Option<Document>, NimbusError> {
    documents::get(conn, table.as_str(), id)?.map(decode_document).transpose()
}

/// Loads the document with this id, whatever its table.
pub(crate) fn load_document_by_id(conn: &Connection, id: &str) -> Result<Option<Document>, NimbusError> {
    documents::find_by_id(conn, id)?.map(decode_document).transpose()
}

/// Loads a table's schema.
pub(crate) fn load_schema(conn: &Connection, table: &str) -> Result<Option<TableSchema>, NimbusError> {
    match schemas::get(conn, table)? {
        Some(body) => serde_json::from_str(&body).map(Some).map_err(|e| serialization_error("schema", e)),
        None => Ok(None),
    }
}

/// Loads every schema, in table order.
pub(crate) fn load_all_schemas(conn: &Connection) -> Result<Vec<TableSchema>, NimbusError> {
    schemas::all(conn)?
        .into_iter()
        .map(|(_, body)| serde_json::from_str(&body).map_err(|e| serialization_error("schema", e)))
        .collect()
}

/// Refuses a read up front when the table's policy denies reads to everyone this API serves.
pub(crate) fn check_read_allowed(schema: Option<&TableSchema>, table: &TableName) -> Result<(), NimbusError> {
    if let Some(policy) = schema.and_then(|s| s.access_policy.as_ref())
        && policy.denies_all(Operation::Read)
    {
        return policy.check(table.as_str(), Operation::Read, None, None);
    }
    Ok(())
}

/// Whether the table's policy lets the anonymous principal read this document.
pub(crate) fn readable(schema: Option<&TableSchema>, doc: &Document) -> bool {
    match schema.and_then(|s| s.access_policy.as_ref()) {
        Some(policy) => policy.check(doc.table.as_str(), Operation::Read, Some(doc), None).is_ok(),
        None => true,
    }
}

/// The documents a query must look at: an index scan when the planner finds a usable index,
/// else every document of the table. Callers apply the query's filters to the result, so the
/// candidates only need to be a superset of the matches.
pub(crate) fn candidates(
    conn: &Connection,
    query: &Query,
    schema: Option<&TableSchema>,
) -> Result<Vec<Document>, NimbusError> {
    let table = query.table.as_str();
    let indexes = schema.map(TableSchema::index_defs).unwrap_or_default();
    let stored = match plan::choose(&query.filters, &indexes) {
        Plan::FullScan => documents::list(conn, table, None, None)?,
        Plan::IndexScan { index, ranges } => {
            let mut ids = Vec::new();
            for range in &ranges {
                ids.extend(index_entries::scan(conn, table, &index, &range.lower, range.upper.as_deref())?);
            }
            ids.sort_unstable();
            ids.dedup();
            let mut docs = Vec::with_capacity(ids.len());
            for id in ids {
                // An entry without its row would be a bug; skipping it keeps the answer equal to
                // a full scan's.
                if let Some(doc) = documents::get(conn, table, &id)? {
                    docs.push(doc);
                }
            }
            docs
        }
    };
    let mut docs = Vec::with_capacity(stored.len());
    for row in stored {
        let doc = decode_document(row)?;
        if readable(schema, &doc) {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Runs a query to completion (filters, order, limit).
pub(crate) fn run_query(conn: &Connection, query: &Query) -> Result<Vec<Document>, NimbusError> {
    Ok(query.run(readable_candidates(conn, query)?))
}

/// Returns the page of `query` that follows `after` (a previous page's cursor for the same
/// query; 400 `op.invalid_input` on `after` otherwise).
pub(crate) fn run_page(
    conn: &Connection,
    query: &Query,
    page_size: usize,
    after: Option<&str>,
) -> Result<crate::tenant::DocumentPage, NimbusError> {
    let fingerprint = query.fingerprint();
    let position = match after {
        Some(c) => Some(
            cursor::decode_query_cursor(c, &fingerprint)
                .map_err(|reason| NimbusError::invalid_input("after", reason))?,
        ),
        None => None,
    };
    let page = query.page(readable_candidates(conn, query)?, position.as_ref(), page_size);
    let next_cursor = page.next.as_ref().map(|pos| cursor::encode_query_cursor(&fingerprint, pos));
    Ok(crate::tenant::DocumentPage { documents: page.documents, next_cursor, has_more: page.has_more })
}

/// The readable candidates of a query, after the table's policy allows reads at all.
pub(crate) fn readable_candidates(conn: &Connection, query: &Query) -> Result<Vec<Document>, NimbusError> {
    let schema = load_schema(conn, query.table.as_str())?;
    check_read_allowed(schema.as_ref(), &query.table)?;
    candidates(conn, query, schema.as_ref())
}

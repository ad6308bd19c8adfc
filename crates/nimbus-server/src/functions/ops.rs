//! The `ctx.db` operations of the prelude ABI (`nimbus-functions/src/prelude/ABI.md`): their
//! payloads, parsed strictly, and their effect on a [`Reader`] (a query's snapshot, a
//! mutation's transaction) or a mutation's [`Transaction`]. Each answer says how many
//! documents it read or wrote, for the per-invocation caps.

use nimbus_core::ids::{DocumentId, TableName};
use nimbus_core::limits::MAX_PAGE_SIZE;
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_engine::document::{Document, Fields};
use nimbus_engine::reader::Reader;
use nimbus_engine::transaction::Transaction;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::routes::query::to_query;
use crate::wire::{FilterBody, OrderBody, QueryBody};

/// What an operation did: its answer and how many documents it read and wrote.
pub(super) struct Done {
    pub(super) value: Value,
    pub(super) read: usize,
    pub(super) written: usize,
}

impl Done {
    fn read(value: Value, read: usize) -> Self {
        Self { value, read, written: 0 }
    }

    pub(super) fn wrote(value: Value) -> Self {
        Self { value, read: 0, written: 1 }
    }
}

/// The cursor answered after the last page: paginating from it gives an empty, done page.
const END_CURSOR: &str = "end";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Get {
    table: Option<String>,
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexFields {
    table: String,
    index: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryOp {
    table: String,
    #[serde(default)]
    filters: Vec<FilterBody>,
    #[serde(default)]
    order: Option<OrderBody>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    index: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Paginate {
    table: String,
    #[serde(default)]
    filters: Vec<FilterBody>,
    #[serde(default)]
    order: Option<OrderBody>,
    #[serde(default)]
    index: Option<String>,
    num_items: i64,
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Insert {
    table: String,
    fields: Fields,
}

/// A parsed `db.insert`, its id minted before it reaches a transaction (a buffered insert
/// answers its id at once and applies later).
pub(super) struct NewDocument {
    table: TableName,
    id: DocumentId,
    fields: Fields,
}

impl NewDocument {
    /// Parses a `db.insert` payload and mints the document's id.
    pub(super) fn parse(body: Value) -> Result<Self, NimbusError> {
        let Insert { table, fields } = payload("db.insert", body)?;
        Ok(Self { table: TableName::parse(&table, "table")?, id: DocumentId::mint(), fields })
    }

    /// The id it will have.
    pub(super) fn id(&self) -> &DocumentId {
        &self.id
    }

    /// Inserts it in `tx`.
    pub(super) fn insert(self, tx: &mut Transaction<'_>) -> Result<Done, NimbusError> {
        let id = tx.insert_with_id(&self.table, self.id, self.fields)?;
        Ok(Done::wrote(Value::from(id.as_str())))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Write {
    table: Option<String>,
    id: String,
    #[serde(default)]
    fields: Option<Fields>,
}

fn payload<T: DeserializeOwned>(name: &str, payload: Value) -> Result<T, NimbusError> {
    serde_json::from_value(payload).map_err(|e| NimbusError::invalid_input(name, format!("bad payload: {e}")))
}

fn docs(documents: &[Document]) -> Value {
    Value::Array(documents.iter().map(Document::to_json).collect())
}

/// Runs a read operation.
pub(super) fn read(reader: &mut dyn Reader, name: &str, body: Value) -> Result<Done, NimbusError> {
    match name {
        "db.get" => {
            let Get { table, id } = payload(name, body)?;
            let doc = match table {
                Some(table) => reader.get(&TableName::parse(&table, "table")?, &id)?,
                None => reader.get_by_id(&id)?,
            };
            let count = usize::from(doc.is_some());
            Ok(Done::read(doc.as_ref().map_or(Value::Null, Document::to_json), count))
        }
        "db.indexFields" => {
            let IndexFields { table, index } = payload(name, body)?;
            let fields = index_fields(reader, &TableName::parse(&table, "table")?, &index)?;
            Ok(Done::read(json!(fields), 0))
        }
        "db.query" => {
            let QueryOp { table, filters, order, limit, index } = payload(name, body)?;
            let query = to_query(QueryBody { table, filters, order, limit }, "")?;
            if let Some(index) = index {
                index_fields(reader, &query.table, &index)?;
            }
            let found = reader.query(&query)?;
            Ok(Done::read(docs(&found), found.len()))
        }
        "db.paginate" => {
            let Paginate { table, filters, order, index, num_items, cursor } = payload(name, body)?;
            let query = to_query(QueryBody { table, filters, order, limit: None }, "")?;
            if let Some(index) = index {
                index_fields(reader, &query.table, &index)?;
            }
            if num_items < 1 {
                return Err(NimbusError::invalid_input("numItems", "must be greater than zero"));
            }
            if cursor.as_deref() == Some(END_CURSOR) {
                return Ok(Done::read(json!({ "page": [], "continueCursor": END_CURSOR, "isDone": true }), 0));
            }
            let size = usize::try_from(num_items).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE);
            let page = reader.page(&query, size, cursor.as_deref())?;
            let next = page.next_cursor.clone().unwrap_or_else(|| END_CURSOR.to_owned());
            Ok(Done::read(
                json!({ "page": docs(&page.documents), "continueCursor": next, "isDone": !page.has_more }),
                page.documents.len(),
            ))
        }
        _ => Err(NimbusError::invalid_input(name, "unknown operation")),
    }
}

/// The fields of a named index of `table`'s schema (400 when there is none).
fn index_fields(reader: &mut dyn Reader, table: &TableName, index: &str) -> Result<Vec<String>, NimbusError> {
    let schema = reader.schema(table)?;
    schema.and_then(|s| s.indexes.into_iter().find(|i| i.name == index)).map(|i| i.fields).ok_or_else(|| {
        NimbusError::new(
            ErrorCode::OpInvalidInput,
            format!("table {table} has no index named {index:?}"),
            Some(json!({ "field": "index", "reason": format!("unknown index {index:?} of table {table}") })),
        )
    })
}

/// Runs an operation inside a mutation's transaction: the reads above, and writes.
pub(super) fn apply(tx: &mut Transaction<'_>, name: &str, body: Value) -> Result<Done, NimbusError> {
    match name {
        "db.insert" => NewDocument::parse(body)?.insert(tx),
        "db.patch" | "db.replace" | "db.delete" => {
            let Write { table, id, fields } = payload(name, body)?;
            let table = match table {
                Some(table) => TableName::parse(&table, "table")?,
                None => match tx.get_by_id(&id)? {
                    Some(doc) => doc.table,
                    None => return Err(NimbusError::document_not_found("", &id)),
                },
            };
            DocumentId::parse(&id, "id")?;
            let fields = || fields.clone().ok_or_else(|| NimbusError::invalid_input("fields", "is required"));
            match name {
                "db.patch" => tx.patch(&table, &id, fields()?).map(|_| ())?,
                "db.replace" => tx.replace(&table, &id, fields()?).map(|_| ())?,
                _ => tx.delete(&table, &id)?,
            }
            Ok(Done::wrote(Value::Null))
        }
        _ => read(tx, name, body),
    }
}

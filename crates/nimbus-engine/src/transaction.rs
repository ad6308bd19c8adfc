//! [`Transaction`]: a set of reads and writes on one tenant, committed atomically by the
//! tenant's writer, with what it wrote (the touched set) recorded for the journal and for
//! anything that reacts to commits.

use nimbus_core::NimbusError;
use nimbus_core::ids::{DocumentId, TableName};
use nimbus_core::limits::MAX_REPORTED_VIOLATIONS;
use nimbus_store::{documents, index_entries, schemas};
use rusqlite::Connection;
use serde_json::json;

use crate::document::{Document, Fields, check_document_caps, validate_user_fields};
use crate::policy::{AccessPolicy, Operation};
use crate::query::Query;
use crate::reads;
use crate::schema::TableSchema;

/// What a write did to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// The document was created.
    Insert,
    /// The document's fields changed.
    Update,
    /// The document was removed.
    Delete,
}

impl WriteOp {
    /// The journal's name for the operation.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOp::Insert => "insert",
            WriteOp::Update => "update",
            WriteOp::Delete => "delete",
        }
    }
}

/// One document write with its before and after images.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRecord {
    /// What happened.
    pub op: WriteOp,
    /// The table written.
    pub table: TableName,
    /// The document written.
    pub doc_id: DocumentId,
    /// The document before the write (`None` for inserts).
    pub previous: Option<Document>,
    /// The document after the write (`None` for deletes).
    pub current: Option<Document>,
}

/// A transaction in progress inside the tenant's writer. Reads see the transaction's own
/// earlier writes; nothing is visible to others until the writer commits.
pub struct Transaction<'c> {
    conn: &'c Connection,
    now: i64,
    writes: Vec<WriteRecord>,
    /// Tables whose access policy this transaction changed.
    policy_changes: Vec<TableName>,
    /// The execution id this transaction recorded (its journal record carries it).
    execution_id: Option<String>,
}

/// What a finished transaction hands the writer: its writes and the facts observers need.
pub(crate) struct TransactionParts {
    pub(crate) writes: Vec<WriteRecord>,
    pub(crate) policy_changes: Vec<TableName>,
    pub(crate) execution_id: Option<String>,
}

impl<'c> Transaction<'c> {
    pub(crate) fn new(conn: &'c Connection, now: i64) -> Self {
        Self { conn, now, writes: Vec::new(), policy_changes: Vec::new(), execution_id: None }
    }

    /// The commit timestamp every write of this transaction carries (epoch ms).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The writes so far, in order.
    pub fn writes(&self) -> &[WriteRecord] {
        &self.writes
    }

    /// Whether SQLite rolled back the whole enclosing transaction (it may on `SQLITE_FULL`,
    /// `SQLITE_IOERR` or `SQLITE_NOMEM`): the connection is back in autocommit mode, so any
    /// further statement would commit on its own. Nothing may run on it after that.
    pub(crate) fn rolled_back(&self) -> bool {
        self.conn.is_autocommit()
    }

    /// The writes and what observers need to know of this transaction.
    pub(crate) fn into_parts(self) -> TransactionParts {
        TransactionParts { writes: self.writes, policy_changes: self.policy_changes, execution_id: self.execution_id }
    }

    /// Records that `table`'s access policy goes from `before` to `after`, if it does.
    fn note_policy(&mut self, table: &TableName, before: Option<&AccessPolicy>, after: Option<&AccessPolicy>) {
        if before != after && !self.policy_changes.contains(table) {
            self.policy_changes.push(table.clone());
        }
    }

    /// Reads one document.
    pub fn get(&self, table: &TableName, id: &str) -> Result<Option<Document>, NimbusError> {
        reads::load_document(self.conn, table, id)
    }

    /// Runs a query against the transaction's view.
    pub fn query(&self, query: &Query) -> Result<Vec<Document>, NimbusError> {
        reads::run_query(self.conn, query)
    }

    /// Reads a table's schema.
    pub fn schema(&self, table: &TableName) -> Result<Option<TableSchema>, NimbusError> {
        reads::load_schema(self.conn, table.as_str())
    }

    /// Inserts a document with a fresh id.
    pub fn insert(&mut self, table: &TableName, fields: Fields) -> Result<DocumentId, NimbusError> {
        self.insert_as(table, DocumentId::mint(), fields)
    }

    /// Inserts a document with a chosen id; 409 `op.already_exists` when that id exists (an
    /// insert never overwrites).
    pub fn insert_with_id(
        &mut self,
        table: &TableName,
        id: DocumentId,
        fields: Fields,
    ) -> Result<DocumentId, NimbusError> {
        if self.get(table, id.as_str())?.is_some() {
            return Err(NimbusError::already_exists("document", id.as_str()));
        }
        self.insert_as(table, id, fields)
    }

    /// Records an execution id (`scheduled:<job_id>`, `cron:<name>:<scheduled_at>`) in this
    /// transaction. `Ok(true)` means it was already recorded: the work it names committed
    /// before and must not write again.
    /// The journal record of this transaction then carries the id as `scheduled_execution_id`.
    pub fn record_execution(&mut self, id: &str) -> Result<bool, NimbusError> {
        let recorded_before = !nimbus_store::schedule::record_execution(self.conn, id, self.now)?;
        if !recorded_before {
            self.execution_id = Some(id.to_owned());
        }
        Ok(recorded_before)
    }

    /// Reads the document with this id in whichever table holds it (the one-argument id
    /// forms of functions; ids are unique per tenant).
    pub fn get_by_id(&self, id: &str) -> Result<Option<Document>, NimbusError> {
        reads::load_document_by_id(self.conn, id)
    }

    /// The tenant's deployed function set, `None` before the first deploy.
    pub fn function_set(&self) -> Result<Option<nimbus_store::functions::StoredFunctionSet>, NimbusError> {
        Ok(nimbus_store::functions::get(self.conn)?)
    }

    /// Replaces the tenant's function set with `body` and returns its version (the previous
    /// version + 1).
    pub fn put_function_set(&mut self, body: String) -> Result<i64, NimbusError> {
        let version = nimbus_store::functions::version(self.conn)? + 1;
        let set = nimbus_store::functions::StoredFunctionSet { version, deployed_at: self.now, body };
        nimbus_store::functions::put(self.conn, &set)?;
        Ok(version)
    }

    /// The transaction's connection, for the engine's own non-document rows (scheduling).
    pub(crate) fn conn(&self) -> &Connection {
        self.conn
    }

    fn insert_as(&mut self, table: &TableName, id: DocumentId, fields: Fields) -> Result<DocumentId, NimbusError> {
        validate_user_fields(&fields, "fields")?;
        let doc = Document { id, table: table.clone(), creation_time: self.now, update_time: self.now, fields };
        let stored = check_document_caps(&doc)?;
        let schema = self.schema(table)?;
        if let Some(schema) = &schema {
            schema.check_document(&doc.fields)?;
            if let Some(policy) = &schema.access_policy {
                policy.check(table.as_str(), Operation::Create, Some(&doc), None)?;
            }
        }
        documents::insert(self.conn, &reads::encode_document(&doc, stored))?;
        self.index(schema.as_ref(), None, Some(&doc))?;
        let id = doc.id.clone();
        self.record(WriteOp::Insert, None, Some(doc));
        Ok(id)
    }

    /// Shallow-merges `patch` into a document's top-level fields.
    pub fn patch(&mut self, table: &TableName, id: &str, patch: Fields) -> Result<Document, NimbusError> {
        validate_user_fields(&patch, "patch")?;
        let previous = self.get(table, id)?.ok_or_else(|| NimbusError::document_not_found(table.as_str(), id))?;
        let mut doc = previous.clone();
        for (key, value) in patch {
            doc.fields.insert(key, value);
        }
        self.update(table, previous, doc)
    }

    /// Replaces a document's user fields, keeping `_id` and `_creationTime`.
    pub fn replace(&mut self, table: &TableName, id: &str, fields: Fields) -> Result<Document, NimbusError> {
        validate_user_fields(&fields, "fields")?;
        let previous = self.get(table, id)?.ok_or_else(|| NimbusError::document_not_found(table.as_str(), id))?;
        let mut doc = previous.clone();
        doc.fields = fields;
        self.update(table, previous, doc)
    }

    /// Stores `doc` as the new version of `previous` (validated against the table's schema
    /// and policy, indexes moved, the write recorded).
    fn update(&mut self, table: &TableName, previous: Document, mut doc: Document) -> Result<Document, NimbusError> {
        doc.update_time = self.now;
        let stored = check_document_caps(&doc)?;
        let schema = self.schema(table)?;
        if let Some(schema) = &schema {
            schema.check_document(&doc.fields)?;
            if let Some(policy) = &schema.access_policy {
                policy.check(table.as_str(), Operation::Update, Some(&doc), Some(&previous))?;
            }
        }
        documents::update(self.conn, &reads::encode_document(&doc, stored))?;
        self.index(schema.as_ref(), Some(&previous), Some(&doc))?;
        self.record(WriteOp::Update, Some(previous), Some(doc.clone()));
        Ok(doc)
    }

    /// Deletes a document.
    pub fn delete(&mut self, table: &TableName, id: &str) -> Result<(), NimbusError> {
        let previous = self.get(table, id)?.ok_or_else(|| NimbusError::document_not_found(table.as_str(), id))?;
        let schema = self.schema(table)?;
        if let Some(policy) = schema.as_ref().and_then(|s| s.access_policy.as_ref()) {
            policy.check(table.as_str(), Operation::Delete, None, Some(&previous))?;
        }
        documents::delete(self.conn, table.as_str(), id)?;
        self.index(schema.as_ref(), Some(&previous), None)?;
        self.record(WriteOp::Delete, Some(previous), None);
        Ok(())
    }

    /// Sets a table's schema: every existing document must satisfy it (else 422 listing the
    /// first violations and nothing changes), then the schema is stored and its indexes are
    /// rebuilt from the documents, all in this transaction.
    pub fn put_schema(&mut self, table: &TableName, schema: TableSchema) -> Result<(), NimbusError> {
        schema.validate(table)?;
        let docs: Vec<Document> = documents::list(self.conn, table.as_str(), None, None)?
            .into_iter()
            .map(reads::decode_document)
            .collect::<Result<_, _>>()?;
        let mut violations = Vec::new();
        let mut count = 0usize;
        for doc in &docs {
            if let Some((field, reason)) = schema.violation(&doc.fields) {
                count += 1;
                if violations.len() < MAX_REPORTED_VIOLATIONS {
                    violations.push(json!({ "documentId": doc.id.as_str(), "field": field, "reason": reason }));
                }
            }
        }
        if count > 0 {
            return Err(NimbusError::new(
                nimbus_core::ErrorCode::OpSchemaValidation,
                format!("{count} existing document(s) of table '{table}' violate the new schema"),
                Some(json!({ "table": table.as_str(), "violationCount": count, "violations": violations })),
            ));
        }
        let body = serde_json::to_string(&schema).map_err(|e| reads::serialization_error("schema", e))?;
        let before = reads::load_schema(self.conn, table.as_str())?;
        self.note_policy(table, before.as_ref().and_then(|s| s.access_policy.as_ref()), schema.access_policy.as_ref());
        schemas::put(self.conn, table.as_str(), &body)?;
        index_entries::clear_table(self.conn, table.as_str())?;
        for doc in &docs {
            self.index(Some(&schema), None, Some(doc))?;
        }
        Ok(())
    }

    /// Removes a table's schema and its indexes; documents stay.
    pub fn delete_schema(&mut self, table: &TableName) -> Result<(), NimbusError> {
        let before = reads::load_schema(self.conn, table.as_str())?;
        self.note_policy(table, before.as_ref().and_then(|s| s.access_policy.as_ref()), None);
        if !schemas::delete(self.conn, table.as_str())? {
            return Err(NimbusError::schema_not_found(table.as_str()));
        }
        index_entries::clear_table(self.conn, table.as_str())?;
        Ok(())
    }

    /// Moves a document's index entries from its old keys to its new ones.
    fn index(
        &self,
        schema: Option<&TableSchema>,
        old: Option<&Document>,
        new: Option<&Document>,
    ) -> Result<(), NimbusError> {
        let Some(schema) = schema else { return Ok(()) };
        let old_keys = old.map(|d| schema.index_keys(&d.fields)).unwrap_or_default();
        let new_keys = new.map(|d| schema.index_keys(&d.fields)).unwrap_or_default();
        let table = schema.table.as_str();
        if let Some(old) = old {
            for entry in old_keys.iter().filter(|e| !new_keys.contains(e)) {
                index_entries::delete(self.conn, table, &entry.0, &entry.1, old.id.as_str())?;
            }
        }
        if let Some(new) = new {
            for entry in new_keys.iter().filter(|e| !old_keys.contains(e)) {
                index_entries::insert(self.conn, table, &entry.0, &entry.1, new.id.as_str())?;
            }
        }
        Ok(())
    }

    fn record(&mut self, op: WriteOp, previous: Option<Document>, current: Option<Document>) {
        let Some(doc) = current.as_ref().or(previous.as_ref()) else { return };
        let (table, doc_id) = (doc.table.clone(), doc.id.clone());
        self.writes.push(WriteRecord { op, table, doc_id, previous, current });
    }
}

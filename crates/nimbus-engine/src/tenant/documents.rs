//! Single-document operations: insert, get, list (keyset pages by id), patch, delete.

use nimbus_core::NimbusError;
use nimbus_core::ids::{DocumentId, TableName};
use nimbus_store::documents as rows;

use super::{DocumentPage, Tenant};
use crate::document::{Document, Fields};
use crate::query::cursor;
use crate::reads;

impl Tenant {
    /// Inserts a document and returns its new id once durable.
    pub async fn insert_document(&self, table: TableName, fields: Fields) -> Result<DocumentId, NimbusError> {
        let (id, _) = self.transact(move |tx| tx.insert(&table, fields)).await?;
        Ok(id)
    }

    /// Shallow-merges `patch` into a document once durable.
    pub async fn patch_document(
        &self,
        table: TableName,
        id: DocumentId,
        patch: Fields,
    ) -> Result<Document, NimbusError> {
        let (doc, _) = self.transact(move |tx| tx.patch(&table, id.as_str(), patch)).await?;
        Ok(doc)
    }

    /// Deletes a document once durable.
    pub async fn delete_document(&self, table: TableName, id: DocumentId) -> Result<(), NimbusError> {
        self.transact(move |tx| tx.delete(&table, id.as_str())).await.map(|_| ())
    }

    /// Reads one document (404 `op.document_not_found`).
    pub async fn get_document(&self, table: TableName, id: DocumentId) -> Result<Document, NimbusError> {
        self.read(move |conn| {
            let schema = reads::load_schema(conn, table.as_str())?;
            reads::check_read_allowed(schema.as_ref(), &table)?;
            let doc = reads::load_document(conn, &table, id.as_str())?
                .ok_or_else(|| NimbusError::document_not_found(table.as_str(), id.as_str()))?;
            if let Some(policy) = schema.as_ref().and_then(|s| s.access_policy.as_ref()) {
                policy.check(table.as_str(), crate::policy::Operation::Read, Some(&doc), None)?;
            }
            Ok(doc)
        })
        .await
    }

    /// Lists a table in id order. Without `limit` every document is returned; with it, pages
    /// follow `cursor` (a previous page's `next_cursor` for the same table).
    pub async fn list_documents(
        &self,
        table: TableName,
        limit: Option<usize>,
        cursor: Option<String>,
    ) -> Result<DocumentPage, NimbusError> {
        let after = match &cursor {
            Some(c) => Some(
                cursor::decode_list_cursor(c, table.as_str())
                    .map_err(|reason| NimbusError::invalid_input("cursor", reason))?,
            ),
            None => None,
        };
        self.read(move |conn| {
            let schema = reads::load_schema(conn, table.as_str())?;
            reads::check_read_allowed(schema.as_ref(), &table)?;
            let has_policy = schema.as_ref().is_some_and(|s| s.access_policy.is_some());
            // With a policy some rows may be unreadable, so the page is cut after filtering.
            let fetch = if has_policy { None } else { limit.map(|l| l + 1) };
            let mut documents = Vec::new();
            for row in rows::list(conn, table.as_str(), after.as_deref(), fetch)? {
                let doc = reads::decode_document(row)?;
                if reads::readable(schema.as_ref(), &doc) {
                    documents.push(doc);
                }
            }
            let has_more = limit.is_some_and(|l| documents.len() > l);
            if let Some(limit) = limit {
                documents.truncate(limit);
            }
            let next_cursor = match documents.last() {
                Some(last) if has_more => Some(cursor::encode_list_cursor(table.as_str(), last.id.as_str())),
                _ => None,
            };
            Ok(DocumentPage { documents, next_cursor, has_more })
        })
        .await
    }
}

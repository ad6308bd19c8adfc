//! [`Reader`]: the reads a function's `ctx.db` makes, served by a read [`Snapshot`] (queries)
//! or by the writer's [`Transaction`] (mutations, which also see their own writes).
//!
//! [`Snapshot`]: crate::tenant::Snapshot

use nimbus_core::NimbusError;
use nimbus_core::ids::TableName;

use crate::document::Document;
use crate::query::Query;
use crate::reads;
use crate::schema::TableSchema;
use crate::tenant::DocumentPage;
use crate::transaction::Transaction;

/// Document reads on one consistent view of a tenant.
pub trait Reader {
    /// One document by table and id.
    fn get(&mut self, table: &TableName, id: &str) -> Result<Option<Document>, NimbusError>;
    /// One document by id alone, whatever its table.
    fn get_by_id(&mut self, id: &str) -> Result<Option<Document>, NimbusError>;
    /// A query run to completion (filters, order, limit).
    fn query(&mut self, query: &Query) -> Result<Vec<Document>, NimbusError>;
    /// One keyset page of a query after `after` (a previous page's cursor).
    fn page(&mut self, query: &Query, page_size: usize, after: Option<&str>) -> Result<DocumentPage, NimbusError>;
    /// A table's schema.
    fn schema(&mut self, table: &TableName) -> Result<Option<TableSchema>, NimbusError>;
}

impl Reader for Transaction<'_> {
    fn get(&mut self, table: &TableName, id: &str) -> Result<Option<Document>, NimbusError> {
        Transaction::get(self, table, id)
    }

    fn get_by_id(&mut self, id: &str) -> Result<Option<Document>, NimbusError> {
        Transaction::get_by_id(self, id)
    }

    fn query(&mut self, query: &Query) -> Result<Vec<Document>, NimbusError> {
        Transaction::query(self, query)
    }

    fn page(&mut self, query: &Query, page_size: usize, after: Option<&str>) -> Result<DocumentPage, NimbusError> {
        reads::run_page(self.conn(), query, page_size, after)
    }

    fn schema(&mut self, table: &TableName) -> Result<Option<TableSchema>, NimbusError> {
        Transaction::schema(self, table)
    }
}

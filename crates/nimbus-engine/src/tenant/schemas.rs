//! Schema operations: read one or all, put (validating existing documents and building
//! indexes in the same transaction), delete.

use nimbus_core::NimbusError;
use nimbus_core::ids::TableName;

use super::Tenant;
use crate::reads;
use crate::schema::TableSchema;

impl Tenant {
    /// Every table's schema, in table order.
    pub async fn schemas(&self) -> Result<Vec<TableSchema>, NimbusError> {
        self.read(|conn| reads::load_all_schemas(conn)).await
    }

    /// One table's schema (404 `op.schema_not_found`).
    pub async fn schema(&self, table: TableName) -> Result<TableSchema, NimbusError> {
        self.read(move |conn| {
            reads::load_schema(conn, table.as_str())?.ok_or_else(|| NimbusError::schema_not_found(table.as_str()))
        })
        .await
    }

    /// Sets a table's schema once every existing document satisfies it.
    pub async fn put_schema(&self, table: TableName, schema: TableSchema) -> Result<(), NimbusError> {
        self.transact(move |tx| tx.put_schema(&table, schema)).await.map(|_| ())
    }

    /// Removes a table's schema and indexes (404 when it has none).
    pub async fn delete_schema(&self, table: TableName) -> Result<(), NimbusError> {
        self.transact(move |tx| tx.delete_schema(&table)).await.map(|_| ())
    }
}

//! [`Snapshot`]: one consistent read view of a tenant, held across several reads (a query
//! function's `ctx.db`), recording what it read.

use std::sync::Arc;

use nimbus_core::NimbusError;
use nimbus_core::ids::TableName;
use nimbus_store::StoreError;

use super::read_pool::Checkout;
use super::{DocumentPage, Tenant};
use crate::document::Document;
use crate::query::Query;
use crate::read_set::ReadSet;
use crate::reader::Reader;
use crate::reads;
use crate::schema::TableSchema;

/// A read transaction on a pooled connection: every read sees the state of one commit (the
/// journal sequence [`Snapshot::sequence`]). Its methods block; use them from a blocking
/// thread. Dropping it ends the read transaction and returns the connection to the pool.
pub struct Snapshot {
    checkout: Checkout,
    sequence: u64,
    reads: ReadSet,
    /// Keeps the tenant open (and its gate's guard semantics simple) while the snapshot lives.
    _tenant: Arc<Tenant>,
}

impl Tenant {
    /// Opens a read snapshot of the tenant.
    pub async fn snapshot(self: &Arc<Self>) -> Result<Snapshot, NimbusError> {
        {
            let closed = self.gate.read().await;
            if *closed {
                return Err(NimbusError::tenant_not_found(self.id.as_str()));
            }
        }
        let mut checkout = self.readers.checkout().await?;
        // BEGIN then a read pins the snapshot in WAL mode: later reads on this connection see
        // the same commit until the transaction ends.
        let conn = checkout.conn();
        conn.execute_batch("BEGIN").map_err(|e| NimbusError::from(StoreError::new("opening a read snapshot", e)))?;
        let sequence = nimbus_store::journal::latest_sequence(conn)?;
        Ok(Snapshot { checkout, sequence, reads: ReadSet::default(), _tenant: self.clone() })
    }
}

impl Snapshot {
    /// The journal sequence this snapshot reflects (0 before any write).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// What was read so far.
    pub fn reads(&self) -> &ReadSet {
        &self.reads
    }

    /// Ends the snapshot and returns what it read.
    pub fn into_reads(mut self) -> ReadSet {
        std::mem::take(&mut self.reads)
    }
}

impl Reader for Snapshot {
    fn get(&mut self, table: &TableName, id: &str) -> Result<Option<Document>, NimbusError> {
        self.reads.document(table, id);
        reads::load_document(self.checkout.conn(), table, id)
    }

    fn get_by_id(&mut self, id: &str) -> Result<Option<Document>, NimbusError> {
        self.reads.any_table(id);
        reads::load_document_by_id(self.checkout.conn(), id)
    }

    fn query(&mut self, query: &Query) -> Result<Vec<Document>, NimbusError> {
        self.reads.range(query);
        reads::run_query(self.checkout.conn(), query)
    }

    fn page(&mut self, query: &Query, page_size: usize, after: Option<&str>) -> Result<DocumentPage, NimbusError> {
        self.reads.range(query);
        reads::run_page(self.checkout.conn(), query, page_size, after)
    }

    fn schema(&mut self, table: &TableName) -> Result<Option<TableSchema>, NimbusError> {
        reads::load_schema(self.checkout.conn(), table.as_str())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // A failed ROLLBACK leaves the connection in a transaction; a later BEGIN on it fails
        // and that read reports the error, so nothing is served from a stale snapshot.
        if let Err(e) = self.checkout.conn().execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "cannot end a read snapshot");
        }
    }
}

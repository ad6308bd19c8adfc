//! Queries: run to completion, or one keyset page at a time.

use nimbus_core::NimbusError;

use super::{DocumentPage, Tenant};
use crate::document::Document;
use crate::query::Query;
use crate::reads;

impl Tenant {
    /// Runs a query: filters, order (ties by `_id`), limit.
    pub async fn query(&self, query: Query) -> Result<Vec<Document>, NimbusError> {
        self.read(move |conn| reads::run_query(conn, &query)).await
    }

    /// Returns the page of `query` that follows `after` (a previous page's cursor for the same
    /// query). Pages are keyset-based over (order value, `_id`), so they stay correct while
    /// documents are written between pages.
    pub async fn query_page(
        &self,
        query: Query,
        page_size: usize,
        after: Option<String>,
    ) -> Result<DocumentPage, NimbusError> {
        self.read(move |conn| reads::run_page(conn, &query, page_size, after.as_deref())).await
    }
}

impl Tenant {
    /// Runs a query on one read snapshot and returns it with the journal sequence that snapshot
    /// reflects (0 before any write), so observers can order results by commit. Used by
    /// realtime subscriptions.
    pub async fn query_with_sequence(&self, query: Query) -> Result<(u64, Vec<Document>), NimbusError> {
        self.read(move |conn| {
            let tx = conn
                .transaction()
                .map_err(|e| NimbusError::from(nimbus_store::StoreError::new("opening a read transaction", e)))?;
            let sequence = nimbus_store::journal::latest_sequence(&tx)?;
            let documents = reads::run_query(&tx, &query)?;
            Ok((sequence, documents))
        })
        .await
    }
}

//! Queries: validated filters and order, planning over indexes, keyset pages and cursors.

pub mod cursor;
pub mod filter;
pub mod order;
pub mod plan;

use nimbus_core::ids::TableName;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::document::Document;
use crate::value::canonical_text;
use cursor::PagePosition;
use filter::Filter;
use order::{Direction, Order, compare, compare_to_position, sort_key};

/// A validated query.
#[derive(Debug, Clone)]
pub struct Query {
    /// Table to read.
    pub table: TableName,
    /// Filters, ANDed.
    pub filters: Vec<Filter>,
    /// Order (default `_id` ascending).
    pub order: Order,
    /// Most documents to return (`Some(0)` returns none).
    pub limit: Option<usize>,
}

/// One page of a query.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page's documents.
    pub documents: Vec<Document>,
    /// Position of the last document, present exactly when `has_more`.
    pub next: Option<PagePosition>,
    /// Whether more documents follow.
    pub has_more: bool,
}

impl Query {
    /// Identifies the query (everything but `limit`) for binding cursors to it.
    pub fn fingerprint(&self) -> String {
        let filters: Vec<Value> =
            self.filters.iter().map(|f| json!([f.path.dotted(), f.op.as_str(), canonical_text(&f.value)])).collect();
        let direction = match self.order.direction {
            Direction::Asc => "asc",
            Direction::Desc => "desc",
        };
        let text = json!([self.table.as_str(), filters, self.order.path.dotted(), direction]).to_string();
        Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn matching(&self, candidates: impl IntoIterator<Item = Document>) -> Vec<Document> {
        let mut docs: Vec<Document> =
            candidates.into_iter().filter(|d| self.filters.iter().all(|f| f.matches(d))).collect();
        docs.sort_by(|a, b| compare(&self.order, a, b));
        docs
    }

    /// Filters, orders and limits the candidates.
    pub fn run(&self, candidates: impl IntoIterator<Item = Document>) -> Vec<Document> {
        let mut docs = self.matching(candidates);
        if let Some(limit) = self.limit {
            docs.truncate(limit);
        }
        docs
    }

    /// The page of at most `page_size` matching documents strictly after `after`.
    pub fn page(
        &self,
        candidates: impl IntoIterator<Item = Document>,
        after: Option<&PagePosition>,
        page_size: usize,
    ) -> Page {
        let mut docs = self.matching(candidates);
        if let Some(pos) = after {
            docs.retain(|d| compare_to_position(&self.order, d, &pos.key, &pos.id).is_gt());
        }
        let has_more = docs.len() > page_size;
        docs.truncate(page_size);
        let next = match docs.last() {
            Some(last) if has_more => {
                Some(PagePosition { key: sort_key(&self.order, last), id: last.id.as_str().to_owned() })
            }
            _ => None,
        };
        Page { documents: docs, next, has_more }
    }
}

//! Queries: validated filters and order, planning over indexes, keyset pages and cursors.
//!
//! # Layout
//! - [`filter`]: one `{field, op, value}` filter and its match rules.
//! - [`order`]: the order of results and keyset positions under it.
//! - [`plan`]: index selection; plans only narrow candidates, filters are always re-applied.
//! - [`cursor`]: opaque cursors for paginated queries and table listings.

pub mod cursor;
pub mod filter;
pub mod order;
pub mod plan;

use nimbus_core::ids::TableName;
use nimbus_core::limits::MAX_PAGE_SIZE;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::document::Document;
use crate::value::canonical_text;
use cursor::PagePosition;
use filter::Filter;
use order::{Order, compare_to_position, first_sorted, sort_documents, sort_key};

/// A validated query.
#[derive(Debug, Clone)]
pub struct Query {
    /// Table to read.
    pub table: TableName,
    /// Filters, ANDed.
    pub filters: Vec<Filter>,
    /// Order (default `_id` ascending).
    pub order: Order,
    /// Most documents to return (`Some(0)` returns none, `None` all).
    pub limit: Option<usize>,
}

/// One page of a query.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page's documents, in query order.
    pub documents: Vec<Document>,
    /// Position of the last document, present exactly when `has_more`.
    pub next: Option<PagePosition>,
    /// Whether more documents follow.
    pub has_more: bool,
}

impl Query {
    /// Identifies the query for binding cursors to it: the hex SHA-256 of the canonical text of
    /// everything but `limit` (table, each filter's path, operator and value, the order). Values
    /// equal under JSON equality (`1` and `1.0`) give the same fingerprint.
    pub fn fingerprint(&self) -> String {
        let filters: Vec<Value> =
            self.filters.iter().map(|f| json!([f.path.dotted(), f.op.as_str(), f.value.clone()])).collect();
        let described = json!({
            "table": self.table.as_str(),
            "filters": filters,
            "order": [self.order.path.dotted(), self.order.direction.as_str()],
        });
        let digest = Sha256::digest(canonical_text(&described).as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether a document passes every filter.
    pub fn matches(&self, doc: &Document) -> bool {
        self.filters.iter().all(|f| f.matches(doc))
    }

    /// Filters, orders and limits the candidates.
    pub fn run(&self, candidates: impl IntoIterator<Item = Document>) -> Vec<Document> {
        let matching: Vec<Document> = candidates.into_iter().filter(|d| self.matches(d)).collect();
        match self.limit {
            Some(limit) => first_sorted(&self.order, matching, limit),
            None => sort_documents(&self.order, matching),
        }
    }

    /// The page of at most `page_size` matching documents strictly after `after` (from the
    /// start when `None`). `page_size` is clamped to `1..=MAX_PAGE_SIZE`; `limit` is ignored.
    pub fn page(
        &self,
        candidates: impl IntoIterator<Item = Document>,
        after: Option<&PagePosition>,
        page_size: usize,
    ) -> Page {
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let remaining: Vec<Document> = candidates
            .into_iter()
            .filter(|d| self.matches(d))
            .filter(|d| after.is_none_or(|pos| compare_to_position(&self.order, d, &pos.key, &pos.id).is_gt()))
            .collect();
        // One extra document tells whether more follow.
        let mut documents = first_sorted(&self.order, remaining, page_size + 1);
        let has_more = documents.len() > page_size;
        documents.truncate(page_size);
        let next = match documents.last() {
            Some(last) if has_more => {
                Some(PagePosition { key: sort_key(&self.order, last), id: last.id.as_str().to_owned() })
            }
            _ => None,
        };
        Page { documents, next, has_more }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn doc(id: &str, fields: Value) -> Document {
        crate::document::test_document(id, fields)
    }

    fn table(name: &str) -> TableName {
        TableName::parse(name, "table").expect("valid")
    }

    /// `(field, op, value)` of one filter.
    type FilterSpec<'a> = (&'a str, &'a str, Value);
    /// `(field, direction)` of an order, `None` for the default.
    type OrderSpec<'a> = Option<(&'a str, &'a str)>;

    fn query(filters: &[FilterSpec], order: OrderSpec, limit: Option<usize>) -> Query {
        Query {
            table: table("tasks"),
            filters: filters
                .iter()
                .map(|(field, op, value)| Filter::new(field, op, value.clone()).expect("valid filter"))
                .collect(),
            order: order.map_or_else(Order::default, |(f, d)| Order::new(f, d).expect("valid order")),
            limit,
        }
    }

    fn ids(docs: &[Document]) -> Vec<&str> {
        docs.iter().map(|d| d.id.as_str()).collect()
    }

    fn tasks() -> Vec<Document> {
        vec![
            doc("05", json!({"status": "open", "priority": 2, "owner": {"team": "infra"}})),
            doc("01", json!({"status": "blocked", "priority": 3, "owner": {"team": "infra"}})),
            doc("03", json!({"status": "open", "priority": 1, "owner": {"team": "web"}})),
            doc("02", json!({"status": "done", "priority": 5, "owner": {"team": "infra"}})),
            doc("04", json!({"status": "open", "owner": {"team": "infra"}})),
            doc("06", json!({"status": "open", "priority": "high", "owner": {"team": "infra"}})),
            doc("07", json!({"status": "open", "priority": 2.0, "owner": {"team": "infra"}})),
        ]
    }

    #[test]
    fn run_filters_orders_and_limits() {
        let contract_example = [
            ("status", "in", json!(["open", "blocked"])),
            ("owner.team", "eq", json!("infra")),
            ("priority", "gte", json!(2)),
        ];
        let cases: Vec<(Query, &[&str])> = vec![
            (query(&[], None, None), &["01", "02", "03", "04", "05", "06", "07"]),
            (query(&[], None, Some(0)), &[]),
            (query(&[], None, Some(2)), &["01", "02"]),
            (query(&[], None, Some(100)), &["01", "02", "03", "04", "05", "06", "07"]),
            (query(&contract_example, Some(("priority", "desc")), None), &["01", "05", "07"]),
            (query(&contract_example, Some(("priority", "desc")), Some(2)), &["01", "05"]),
            (query(&[], Some(("priority", "asc")), None), &["03", "05", "07", "01", "02", "06", "04"]),
            (query(&[], Some(("priority", "desc")), Some(3)), &["04", "06", "02"]),
            (query(&[("priority", "neq", json!(2))], Some(("priority", "asc")), None), &["03", "01", "02", "06"]),
            (query(&[("status", "eq", json!("open")), ("owner.team", "eq", json!("web"))], None, None), &["03"]),
            (query(&[("nothing", "neq", json!(1))], None, None), &[]),
        ];
        for (q, expected) in cases {
            assert_eq!(ids(&q.run(tasks())), expected, "{q:?}");
        }
    }

    #[test]
    fn fingerprint_covers_everything_but_limit() {
        let base = query(&[("a", "eq", json!({"x": 1, "y": 2}))], Some(("b", "desc")), Some(5));
        let fp = base.fingerprint();
        assert_eq!(fp.len(), 64);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
        let same = [
            query(&[("a", "eq", json!({"y": 2.0, "x": 1}))], Some(("b", "desc")), None),
            query(&[("a", "eq", json!({"x": 1, "y": 2}))], Some(("b", "desc")), Some(0)),
        ];
        for q in &same {
            assert_eq!(q.fingerprint(), fp, "{q:?}");
        }
        let mut other_table = base.clone();
        other_table.table = table("other");
        let different = [
            other_table,
            query(&[("a", "neq", json!({"x": 1, "y": 2}))], Some(("b", "desc")), Some(5)),
            query(&[("a", "eq", json!({"x": 1, "y": 3}))], Some(("b", "desc")), Some(5)),
            query(&[("a.x", "eq", json!({"x": 1, "y": 2}))], Some(("b", "desc")), Some(5)),
            query(&[("a", "eq", json!({"x": 1, "y": 2}))], Some(("b", "asc")), Some(5)),
            query(&[("a", "eq", json!({"x": 1, "y": 2}))], Some(("c", "desc")), Some(5)),
            query(&[("a", "eq", json!({"x": 1, "y": 2}))], None, Some(5)),
            query(&[], Some(("b", "desc")), Some(5)),
            query(&[("a", "eq", json!({"x": 1, "y": 2})), ("a", "eq", json!(1))], Some(("b", "desc")), Some(5)),
        ];
        for q in &different {
            assert_ne!(q.fingerprint(), fp, "{q:?}");
        }
    }

    /// Reads every page of `q` over a store that `mutate` changes between pages.
    fn walk(
        q: &Query,
        store: &mut Vec<Document>,
        page_size: usize,
        mutate: &dyn Fn(usize, &mut Vec<Document>),
    ) -> Vec<String> {
        let mut seen = Vec::new();
        let mut after: Option<PagePosition> = None;
        for round in 0.. {
            let page = q.page(store.clone(), after.as_ref(), page_size);
            assert!(page.documents.len() <= page_size.max(1));
            assert_eq!(page.next.is_some(), page.has_more, "next exactly when has_more");
            seen.extend(page.documents.iter().map(|d| d.id.as_str().to_owned()));
            if !page.has_more {
                break;
            }
            assert_eq!(page.documents.len(), page_size.max(1), "only the last page is short");
            after = page.next;
            mutate(round, store);
            assert!(round < 1000, "pagination terminates");
        }
        seen
    }

    fn numbered(n: usize) -> Vec<Document> {
        (0..n)
            .map(|i| {
                let value = match i % 5 {
                    0 => json!(i % 7),
                    1 => json!(format!("s{}", i % 4)),
                    2 => json!(null),
                    3 => json!([i % 2]),
                    _ => json!((i % 3) as f64 + 0.5),
                };
                let fields = if i.is_multiple_of(6) { json!({"n": i}) } else { json!({"v": value, "n": i}) };
                doc(&format!("{i:03}"), fields)
            })
            .collect()
    }

    #[test]
    fn pages_concatenate_to_the_full_result() {
        let orders = [None, Some(("v", "asc")), Some(("v", "desc")), Some(("n", "desc")), Some(("missing", "asc"))];
        for order in orders {
            for filters in [vec![], vec![("n", "gte", json!(10))], vec![("v", "neq", json!(null))]] {
                let q = query(&filters, order, Some(3));
                let mut all = q.clone();
                all.limit = None;
                let expected: Vec<String> = ids(&all.run(numbered(60))).into_iter().map(str::to_owned).collect();
                for page_size in [0, 1, 2, 7, 60, 61, 5000] {
                    let mut store = numbered(60);
                    let got = walk(&q, &mut store, page_size, &|_, _| {});
                    assert_eq!(got, expected, "{order:?} {filters:?} page {page_size}");
                }
            }
        }
    }

    #[test]
    fn pages_are_stable_under_concurrent_writes() {
        // Between pages, delete one document and insert two new ones; documents present
        // throughout must each appear exactly once.
        for order in [None, Some(("v", "asc")), Some(("v", "desc"))] {
            let q = query(&[], order, None);
            let mut store = numbered(50);
            let mutate = |round: usize, store: &mut Vec<Document>| {
                if !store.is_empty() {
                    let victim = (round * 7) % store.len();
                    store.remove(victim);
                }
                store.push(doc(&format!("n{round:03}a"), json!({"v": round % 4})));
                store.push(doc(&format!("n{round:03}b"), json!({"v": format!("s{round}")})));
            };
            let seen = walk(&q, &mut store, 4, &mutate);
            let mut unique = seen.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), seen.len(), "no duplicates under {order:?}");
            for survivor in store.iter().filter(|d| !d.id.as_str().starts_with('n')) {
                assert!(seen.iter().any(|s| s == survivor.id.as_str()), "{} skipped under {order:?}", survivor.id);
            }
        }
    }

    #[test]
    fn a_page_after_the_last_document_is_empty() {
        let q = query(&[], Some(("v", "asc")), None);
        let last = q.run(numbered(10)).pop().expect("documents");
        let after = PagePosition { key: sort_key(&q.order, &last), id: last.id.as_str().to_owned() };
        let page = q.page(numbered(10), Some(&after), 5);
        assert!(page.documents.is_empty() && !page.has_more && page.next.is_none());
    }
}

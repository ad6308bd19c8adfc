//! Query ordering: one field, a direction, missing fields at the end of `asc` and the start of
//! `desc`, and ties broken by `_id` ascending in both directions. Keyset positions
//! ([`SortKey`] plus id) compare against documents under the same rules.

use std::cmp::Ordering;

use nimbus_core::NimbusError;
use serde_json::Value;

use crate::document::{Document, FieldPath};
use crate::value::{canonical_text, kind_rank, total_cmp};

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

impl Direction {
    /// The direction's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Asc => "asc",
            Direction::Desc => "desc",
        }
    }

    /// Turns an ascending comparison into this direction's.
    fn apply(self, ascending: Ordering) -> Ordering {
        match self {
            Direction::Asc => ascending,
            Direction::Desc => ascending.reverse(),
        }
    }
}

/// A query's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// The field path.
    pub path: FieldPath,
    /// The direction.
    pub direction: Direction,
}

impl Default for Order {
    /// `_id` ascending.
    fn default() -> Self {
        Self { path: FieldPath::id(), direction: Direction::Asc }
    }
}

impl Order {
    /// Validates an order. Errors are 400 `op.invalid_input` naming `field` or `direction`;
    /// callers place them in the request (`order.direction`) with [`NimbusError::within`].
    pub fn new(field: &str, direction: &str) -> Result<Self, NimbusError> {
        let path = FieldPath::parse(field).map_err(|reason| NimbusError::invalid_input("field", reason))?;
        let direction = match direction {
            "asc" => Direction::Asc,
            "desc" => Direction::Desc,
            _ => return Err(NimbusError::invalid_input("direction", "must be asc or desc")),
        };
        Ok(Self { path, direction })
    }
}

/// A document's position key under an order: its value, or missing.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// The document lacks the field.
    Missing,
    /// The field's value.
    Value(Value),
}

/// The sort key of a document.
pub fn sort_key(order: &Order, doc: &Document) -> SortKey {
    doc.get(&order.path).map_or(SortKey::Missing, |v| SortKey::Value(v.into_owned()))
}

/// Ascending comparison of two optional values: values by [`total_cmp`], missing after all.
fn ascending(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => total_cmp(x, y),
        (x, y) => x.is_none().cmp(&y.is_none()),
    }
}

fn key_value(key: &SortKey) -> Option<&Value> {
    match key {
        SortKey::Missing => None,
        SortKey::Value(v) => Some(v),
    }
}

/// Compares a document with a keyset position `(key, id)`: `Greater` when the document comes
/// after the position under `order` (so a page "after" a position keeps the `Greater` ones).
pub fn compare_to_position(order: &Order, doc: &Document, key: &SortKey, id: &str) -> Ordering {
    let value = doc.get(&order.path);
    order
        .direction
        .apply(ascending(value.as_deref(), key_value(key)))
        .then_with(|| doc.id.as_str().as_bytes().cmp(id.as_bytes()))
}

/// Compares two documents under an order, ties by `_id` ascending.
pub fn compare(order: &Order, a: &Document, b: &Document) -> Ordering {
    let (x, y) = (a.get(&order.path), b.get(&order.path));
    order
        .direction
        .apply(ascending(x.as_deref(), y.as_deref()))
        .then_with(|| a.id.as_str().as_bytes().cmp(b.id.as_str().as_bytes()))
}

/// A sort key computed once per document: arrays and objects carry their canonical text, so
/// sorting does not re-render it on every comparison.
enum Prepared {
    Scalar(Value),
    Composite { rank: u8, text: String },
    Missing,
}

impl Prepared {
    fn of(order: &Order, doc: &Document) -> Self {
        match doc.get(&order.path) {
            None => Prepared::Missing,
            Some(v) if matches!(v.as_ref(), Value::Array(_) | Value::Object(_)) => {
                Prepared::Composite { rank: kind_rank(&v), text: canonical_text(&v) }
            }
            Some(v) => Prepared::Scalar(v.into_owned()),
        }
    }

    /// The same order as [`ascending`] over the original values.
    fn ascending(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Prepared::Scalar(x), Prepared::Scalar(y)) => total_cmp(x, y),
            (Prepared::Composite { rank: r, text: t }, Prepared::Composite { rank: s, text: u }) => {
                r.cmp(s).then_with(|| t.as_bytes().cmp(u.as_bytes()))
            }
            // Every scalar kind ranks below arrays and objects.
            (Prepared::Scalar(_), Prepared::Composite { .. }) => Ordering::Less,
            (Prepared::Composite { .. }, Prepared::Scalar(_)) => Ordering::Greater,
            (Prepared::Missing, Prepared::Missing) => Ordering::Equal,
            (Prepared::Missing, _) => Ordering::Greater,
            (_, Prepared::Missing) => Ordering::Less,
        }
    }
}

/// The first `count` documents under `order` (all of them when `count` is at least their
/// number), sorted. Equivalent to sorting with [`compare`] and truncating, but computes each
/// document's key once and only fully sorts the part that is kept.
pub fn first_sorted(order: &Order, docs: Vec<Document>, count: usize) -> Vec<Document> {
    let mut keyed: Vec<(Prepared, Document)> = docs.into_iter().map(|d| (Prepared::of(order, &d), d)).collect();
    let cmp = |(ka, a): &(Prepared, Document), (kb, b): &(Prepared, Document)| {
        order.direction.apply(ka.ascending(kb)).then_with(|| a.id.as_str().as_bytes().cmp(b.id.as_str().as_bytes()))
    };
    if count == 0 {
        return Vec::new();
    }
    if count < keyed.len() {
        keyed.select_nth_unstable_by(count - 1, cmp);
        keyed.truncate(count);
    }
    keyed.sort_unstable_by(cmp);
    keyed.into_iter().map(|(_, d)| d).collect()
}

/// Sorts documents under `order` (ties by `_id` ascending).
pub fn sort_documents(order: &Order, docs: Vec<Document>) -> Vec<Document> {
    first_sorted(order, docs, usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn doc(id: &str, fields: Value) -> Document {
        crate::document::test_document(id, fields)
    }

    /// Documents with mixed kinds, ties and missing fields, listed in ascending `x` order.
    fn ascending_docs() -> Vec<Document> {
        vec![
            doc("06", json!({"x": null})),
            doc("05", json!({"x": false})),
            doc("04", json!({"x": true})),
            doc("03", json!({"x": -1.5})),
            doc("02", json!({"x": 1})),
            doc("07", json!({"x": 1.0})),
            doc("01", json!({"x": 2})),
            doc("08", json!({"x": ""})),
            doc("09", json!({"x": "a"})),
            doc("0a", json!({"x": [1]})),
            doc("0b", json!({"x": [2]})),
            doc("0c", json!({"x": {"a": 1}})),
            doc("00", json!({})),
            doc("0e", json!({"y": 1, "z": {"x": 1}})),
        ]
    }

    fn ids(docs: &[Document]) -> Vec<&str> {
        docs.iter().map(|d| d.id.as_str()).collect()
    }

    fn order(field: &str, direction: &str) -> Order {
        Order::new(field, direction).expect("valid order")
    }

    #[test]
    fn ascending_ranks_kinds_and_puts_missing_last() {
        let expected = ascending_docs();
        let mut shuffled = expected.clone();
        shuffled.reverse();
        shuffled.rotate_left(5);
        let sorted = sort_documents(&order("x", "asc"), shuffled.clone());
        assert_eq!(ids(&sorted), ids(&expected));
        let mut by_compare = shuffled;
        by_compare.sort_by(|a, b| compare(&order("x", "asc"), a, b));
        assert_eq!(ids(&by_compare), ids(&expected));
    }

    #[test]
    fn descending_puts_missing_first_and_keeps_id_ties_ascending() {
        let sorted = sort_documents(&order("x", "desc"), ascending_docs());
        assert_eq!(
            ids(&sorted),
            ["00", "0e", "0c", "0b", "0a", "09", "08", "01", "02", "07", "03", "04", "05", "06"],
            "missing first (ids ascending), then values descending, 1 and 1.0 tied by id"
        );
    }

    #[test]
    fn default_order_is_id_ascending() {
        assert_eq!(Order::default(), order("_id", "asc"));
        let sorted = sort_documents(&Order::default(), ascending_docs());
        let docs = ascending_docs();
        let mut expected: Vec<&str> = ids(&docs);
        expected.sort_unstable();
        assert_eq!(ids(&sorted), expected);
    }

    #[test]
    fn position_comparison_agrees_with_document_comparison() {
        let docs = ascending_docs();
        for direction in ["asc", "desc"] {
            for field in ["x", "y", "_id"] {
                let order = order(field, direction);
                for a in &docs {
                    for b in &docs {
                        let key = sort_key(&order, b);
                        assert_eq!(
                            compare_to_position(&order, a, &key, b.id.as_str()),
                            compare(&order, a, b),
                            "{} vs {} by {field} {direction}",
                            a.id,
                            b.id
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn first_sorted_equals_sort_then_truncate() {
        let docs = ascending_docs();
        for direction in ["asc", "desc"] {
            let order = order("x", direction);
            let all = sort_documents(&order, docs.clone());
            for count in 0..=docs.len() + 2 {
                let first = first_sorted(&order, docs.clone(), count);
                assert_eq!(ids(&first), ids(&all[..count.min(all.len())]), "{count} {direction}");
            }
        }
    }

    #[test]
    fn validation_names_the_bad_part() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("a", "asc", None),
            ("a.b", "desc", None),
            ("_creationTime", "desc", None),
            ("", "asc", Some("field")),
            ("a.", "asc", Some("field")),
            ("a", "ASC", Some("direction")),
            ("a", "", Some("direction")),
        ];
        for (field, direction, expected) in cases {
            let got = Order::new(field, direction)
                .err()
                .and_then(|e| e.detail.and_then(|d| d["field"].as_str().map(str::to_owned)));
            assert_eq!(got.as_deref(), *expected, "{field:?} {direction:?}");
        }
        assert_eq!(Direction::Asc.as_str(), "asc");
        assert_eq!(Direction::Desc.as_str(), "desc");
    }
}

//! Query ordering: one field, a direction, missing fields at the end of `asc` and the start of
//! `desc`, and ties broken by `_id` ascending in both directions.

use std::cmp::Ordering;

use nimbus_core::NimbusError;
use serde_json::Value;

use crate::document::{Document, FieldPath};
use crate::value::total_cmp;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
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
    /// Validates an order; errors name `field` or `direction`.
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

/// Compares two sort keys in the order's direction (without the `_id` tie-break).
fn key_cmp(order: &Order, a: &SortKey, b: &SortKey) -> Ordering {
    let asc = match (a, b) {
        (SortKey::Missing, SortKey::Missing) => Ordering::Equal,
        (SortKey::Missing, SortKey::Value(_)) => Ordering::Greater,
        (SortKey::Value(_), SortKey::Missing) => Ordering::Less,
        (SortKey::Value(x), SortKey::Value(y)) => total_cmp(x, y),
    };
    match order.direction {
        Direction::Asc => asc,
        Direction::Desc => asc.reverse(),
    }
}

/// Compares a document with a keyset position `(key, id)`.
pub fn compare_to_position(order: &Order, doc: &Document, key: &SortKey, id: &str) -> Ordering {
    key_cmp(order, &sort_key(order, doc), key).then_with(|| doc.id.as_str().cmp(id))
}

/// Compares two documents under an order, ties by `_id` ascending.
pub fn compare(order: &Order, a: &Document, b: &Document) -> Ordering {
    key_cmp(order, &sort_key(order, a), &sort_key(order, b)).then_with(|| a.id.as_str().cmp(b.id.as_str()))
}

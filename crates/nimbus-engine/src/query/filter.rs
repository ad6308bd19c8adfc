//! Query filters: one field path, one operator, one operand.

use std::cmp::Ordering;

use nimbus_core::NimbusError;
use nimbus_core::limits::MAX_IN_VALUES;
use serde_json::Value;

use crate::document::{Document, FieldPath};
use crate::value::{json_eq, same_kind_cmp};

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// Equal (JSON equality).
    Eq,
    /// Present and not equal.
    Neq,
    /// Greater than (same kind only).
    Gt,
    /// Greater than or equal (same kind only).
    Gte,
    /// Less than (same kind only).
    Lt,
    /// Less than or equal (same kind only).
    Lte,
    /// Equal to one of a list.
    In,
}

impl FilterOp {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "eq" => FilterOp::Eq,
            "neq" => FilterOp::Neq,
            "gt" => FilterOp::Gt,
            "gte" => FilterOp::Gte,
            "lt" => FilterOp::Lt,
            "lte" => FilterOp::Lte,
            "in" => FilterOp::In,
            _ => return None,
        })
    }

    /// The operator's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOp::Eq => "eq",
            FilterOp::Neq => "neq",
            FilterOp::Gt => "gt",
            FilterOp::Gte => "gte",
            FilterOp::Lt => "lt",
            FilterOp::Lte => "lte",
            FilterOp::In => "in",
        }
    }

    /// Whether this is one of the ordered comparisons.
    pub fn is_range(self) -> bool {
        matches!(self, FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte)
    }
}

/// One validated filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The field path.
    pub path: FieldPath,
    /// The operator.
    pub op: FilterOp,
    /// The operand (an array for `in`).
    pub value: Value,
}

impl Filter {
    /// Validates a filter; errors name `field`, `op` or `value` (callers prefix the position).
    pub fn new(field: &str, op: &str, value: Value) -> Result<Self, NimbusError> {
        let path = FieldPath::parse(field).map_err(|reason| NimbusError::invalid_input("field", reason))?;
        let op = FilterOp::parse(op)
            .ok_or_else(|| NimbusError::invalid_input("op", "must be one of eq, neq, gt, gte, lt, lte, in"))?;
        if op.is_range() && !(value.is_string() || value.is_number()) {
            return Err(NimbusError::invalid_input(
                "value",
                format!("must be a string or a number for {}", op.as_str()),
            ));
        }
        if op == FilterOp::In {
            match &value {
                Value::Array(items) if items.len() <= MAX_IN_VALUES => {}
                Value::Array(_) => {
                    return Err(NimbusError::invalid_input(
                        "value",
                        format!("must have at most {MAX_IN_VALUES} elements"),
                    ));
                }
                _ => return Err(NimbusError::invalid_input("value", "must be an array for in")),
            }
        }
        Ok(Self { path, op, value })
    }

    /// Whether a document matches. A document lacking the field matches no operator.
    pub fn matches(&self, doc: &Document) -> bool {
        let Some(stored) = doc.get(&self.path) else { return false };
        let stored = stored.as_ref();
        let ordered = |accept: fn(Ordering) -> bool| same_kind_cmp(stored, &self.value).is_some_and(accept);
        match self.op {
            FilterOp::Eq => json_eq(stored, &self.value),
            FilterOp::Neq => !json_eq(stored, &self.value),
            FilterOp::Gt => ordered(Ordering::is_gt),
            FilterOp::Gte => ordered(Ordering::is_ge),
            FilterOp::Lt => ordered(Ordering::is_lt),
            FilterOp::Lte => ordered(Ordering::is_le),
            FilterOp::In => self.value.as_array().is_some_and(|items| items.iter().any(|v| json_eq(stored, v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_core::ids::{DocumentId, TableName};
    use serde_json::json;

    fn doc(fields: Value) -> Document {
        Document {
            id: DocumentId::from_stored("01".into()),
            table: TableName::parse("t", "table").expect("valid"),
            creation_time: 0,
            update_time: 0,
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn operators_follow_the_contract_table() {
        let cases: &[(&str, Value, Value, bool)] = &[
            ("eq", json!(1), json!({"x": 1.0}), true),
            ("eq", json!({"a": 1, "b": 2}), json!({"x": {"b": 2, "a": 1}}), true),
            ("neq", json!(1), json!({"x": 2}), true),
            ("neq", json!(1), json!({}), false),
            ("neq", json!(1), json!({"x": null}), true),
            ("gt", json!(1), json!({"x": 2}), true),
            ("gt", json!(1), json!({"x": "2"}), false),
            ("gte", json!("b"), json!({"x": "b"}), true),
            ("lt", json!("b"), json!({"x": "a"}), true),
            ("lte", json!(1), json!({"x": true}), false),
            ("in", json!([1, "a"]), json!({"x": "a"}), true),
            ("in", json!([]), json!({"x": "a"}), false),
            ("eq", json!(null), json!({"x": null}), true),
            ("eq", json!(null), json!({}), false),
        ];
        for (op, value, fields, expected) in cases {
            let filter = Filter::new("x", op, value.clone()).expect("valid filter");
            assert_eq!(filter.matches(&doc(fields.clone())), *expected, "{op} {value} on {fields}");
        }
    }

    #[test]
    fn validation_names_the_bad_part() {
        let field = |r: Result<Filter, NimbusError>| {
            r.expect_err("invalid").detail.and_then(|d| d["field"].as_str().map(str::to_owned))
        };
        assert_eq!(field(Filter::new("a..b", "eq", json!(1))).as_deref(), Some("field"));
        assert_eq!(field(Filter::new("a", "like", json!(1))).as_deref(), Some("op"));
        assert_eq!(field(Filter::new("a", "gt", json!(true))).as_deref(), Some("value"));
        assert_eq!(field(Filter::new("a", "in", json!(1))).as_deref(), Some("value"));
        assert_eq!(field(Filter::new("a", "in", Value::Array(vec![json!(1); 1001]))).as_deref(), Some("value"));
    }
}

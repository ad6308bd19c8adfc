//! Query filters: one field path, one operator, one operand, matched per the contract's
//! operator table (data.md §3).

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
    /// Every operator, in the order the contract lists them.
    pub const ALL: [FilterOp; 7] =
        [FilterOp::Eq, FilterOp::Neq, FilterOp::Gt, FilterOp::Gte, FilterOp::Lt, FilterOp::Lte, FilterOp::In];

    /// Parses an operator's wire name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == raw)
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

    /// Whether this is one of the ordered comparisons (`gt`, `gte`, `lt`, `lte`).
    pub fn is_range(self) -> bool {
        matches!(self, FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte)
    }

    /// Whether an ordered comparison accepts `stored` relative to the bound. `false` for the
    /// operators that are not ordered comparisons.
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            FilterOp::Gt => ordering.is_gt(),
            FilterOp::Gte => ordering.is_ge(),
            FilterOp::Lt => ordering.is_lt(),
            FilterOp::Lte => ordering.is_le(),
            FilterOp::Eq | FilterOp::Neq | FilterOp::In => false,
        }
    }
}

/// One validated filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The field path.
    pub path: FieldPath,
    /// The operator.
    pub op: FilterOp,
    /// The operand: any JSON for `eq`/`neq`, a string or number for the ordered comparisons,
    /// an array of at most [`MAX_IN_VALUES`] elements for `in`.
    pub value: Value,
}

impl Filter {
    /// Validates a filter. Errors are 400 `op.invalid_input` naming `field`, `op` or `value`;
    /// callers place them in the request (`filters[i].op`) with [`NimbusError::within`].
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
                        format!("must have at most {MAX_IN_VALUES} elements for in"),
                    ));
                }
                _ => return Err(NimbusError::invalid_input("value", "must be an array for in")),
            }
        }
        Ok(Self { path, op, value })
    }

    /// The elements of an `in` filter's list; empty for any other operator.
    pub fn in_values(&self) -> &[Value] {
        match (&self.op, &self.value) {
            (FilterOp::In, Value::Array(items)) => items,
            _ => &[],
        }
    }

    /// Whether a document matches. A document lacking the field matches no operator (not even
    /// `neq`); an ordered comparison against a stored value of another kind does not match.
    pub fn matches(&self, doc: &Document) -> bool {
        let Some(stored) = doc.get(&self.path) else { return false };
        let stored = stored.as_ref();
        match self.op {
            FilterOp::Eq => json_eq(stored, &self.value),
            FilterOp::Neq => !json_eq(stored, &self.value),
            FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => {
                same_kind_cmp(stored, &self.value).is_some_and(|ordering| self.op.accepts(ordering))
            }
            FilterOp::In => self.in_values().iter().any(|v| json_eq(stored, v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn doc(fields: Value) -> Document {
        crate::document::test_document("01j9z3k7q8w2m4n6p8r0t2v4x6", fields)
    }

    #[test]
    fn operators_follow_the_contract_table() {
        let cases: &[(&str, &str, Value, Value, bool)] = &[
            ("x", "eq", json!(1), json!({"x": 1.0}), true),
            ("x", "eq", json!(1), json!({"x": "1"}), false),
            ("x", "eq", json!({"a": 1, "b": 2}), json!({"x": {"b": 2, "a": 1}}), true),
            ("x", "eq", json!([1, 2]), json!({"x": [1.0, 2.0]}), true),
            ("x", "eq", json!([1, 2]), json!({"x": [2, 1]}), false),
            ("x", "eq", json!(null), json!({"x": null}), true),
            ("x", "eq", json!(null), json!({}), false),
            ("x", "eq", json!(9_007_199_254_740_993u64), json!({"x": 9_007_199_254_740_992.0}), false),
            ("x", "neq", json!(1), json!({"x": 2}), true),
            ("x", "neq", json!(1), json!({"x": 1.0}), false),
            ("x", "neq", json!(1), json!({"x": null}), true),
            ("x", "neq", json!(1), json!({"x": "1"}), true),
            ("x", "gt", json!(1), json!({"x": 2}), true),
            ("x", "gt", json!(1), json!({"x": 1}), false),
            ("x", "gt", json!(1), json!({"x": 1.5}), true),
            ("x", "gt", json!(1), json!({"x": "2"}), false),
            ("x", "gt", json!("a"), json!({"x": 5}), false),
            ("x", "gt", json!(0), json!({"x": true}), false),
            ("x", "gt", json!(0), json!({"x": [1]}), false),
            ("x", "gte", json!("b"), json!({"x": "b"}), true),
            ("x", "gte", json!(2), json!({"x": 2.0}), true),
            ("x", "gte", json!("b"), json!({"x": "a"}), false),
            ("x", "lt", json!("b"), json!({"x": "a"}), true),
            ("x", "lt", json!("b"), json!({"x": "b\u{0}"}), false),
            ("x", "lt", json!("é"), json!({"x": "z"}), true),
            ("x", "lt", json!(0), json!({"x": -0.5}), true),
            ("x", "lt", json!(0), json!({"x": null}), false),
            ("x", "lte", json!(1), json!({"x": 1}), true),
            ("x", "lte", json!(1), json!({"x": true}), false),
            ("x", "in", json!([1, "a"]), json!({"x": "a"}), true),
            ("x", "in", json!([1, "a"]), json!({"x": 1.0}), true),
            ("x", "in", json!([1, "a"]), json!({"x": "b"}), false),
            ("x", "in", json!([{"a": 1, "b": 2}]), json!({"x": {"b": 2.0, "a": 1}}), true),
            ("x", "in", json!([null]), json!({"x": null}), true),
            ("x", "in", json!([]), json!({"x": "a"}), false),
            ("x", "in", json!([null]), json!({}), false),
            ("owner.team", "eq", json!("infra"), json!({"owner": {"team": "infra"}}), true),
            ("owner.team", "neq", json!("infra"), json!({"owner": "infra"}), false),
            ("owner.team", "neq", json!("infra"), json!({"owner": [{"team": "x"}]}), false),
            ("_id", "eq", json!("01j9z3k7q8w2m4n6p8r0t2v4x6"), json!({}), true),
            ("_creationTime", "gte", json!(10), json!({}), true),
            ("_updateTime", "lt", json!(20), json!({}), false),
        ];
        for (field, op, value, fields, expected) in cases {
            let filter = Filter::new(field, op, value.clone()).expect("valid filter");
            assert_eq!(filter.matches(&doc(fields.clone())), *expected, "{field} {op} {value} on {fields}");
        }
    }

    #[test]
    fn a_missing_field_matches_no_operator() {
        let operands = [json!(1), json!("a"), json!([1, null]), json!(null)];
        for op in FilterOp::ALL {
            for operand in &operands {
                let Ok(filter) = Filter::new("x.y", op.as_str(), operand.clone()) else { continue };
                for fields in [json!({}), json!({"x": 1}), json!({"x": {"z": 1}}), json!({"x": [{"y": 1}]})] {
                    assert!(!filter.matches(&doc(fields.clone())), "{} {operand} on {fields}", op.as_str());
                }
            }
        }
    }

    #[test]
    fn operators_round_trip_their_names() {
        for op in FilterOp::ALL {
            assert_eq!(FilterOp::parse(op.as_str()), Some(op));
        }
        assert_eq!(FilterOp::parse("EQ"), None);
        assert_eq!(FilterOp::parse("ne"), None);
    }

    #[test]
    fn validation_names_the_bad_part() {
        let cases: &[(&str, &str, Value, Option<&str>)] = &[
            ("a", "eq", json!({"any": ["json"]}), None),
            ("a.b", "neq", json!(null), None),
            ("a", "gt", json!(1.5), None),
            ("a", "lte", json!(""), None),
            ("a", "in", json!([]), None),
            ("a", "in", Value::Array(vec![json!(1); MAX_IN_VALUES]), None),
            ("", "eq", json!(1), Some("field")),
            ("a..b", "eq", json!(1), Some("field")),
            (".a", "eq", json!(1), Some("field")),
            ("a", "like", json!(1), Some("op")),
            ("a", "", json!(1), Some("op")),
            ("a", "gt", json!(true), Some("value")),
            ("a", "gte", json!(null), Some("value")),
            ("a", "lt", json!([1]), Some("value")),
            ("a", "lte", json!({"a": 1}), Some("value")),
            ("a", "in", json!(1), Some("value")),
            ("a", "in", json!({"a": 1}), Some("value")),
            ("a", "in", Value::Array(vec![json!(1); MAX_IN_VALUES + 1]), Some("value")),
        ];
        for (field, op, value, expected) in cases {
            let got = Filter::new(field, op, value.clone())
                .err()
                .and_then(|e| e.detail.and_then(|d| d["field"].as_str().map(str::to_owned)));
            assert_eq!(got.as_deref(), *expected, "{field:?} {op:?} {value}");
        }
    }

    #[test]
    fn in_values_lists_only_in_operands() {
        let in_filter = Filter::new("a", "in", json!([1, 2])).expect("valid");
        assert_eq!(in_filter.in_values(), &[json!(1), json!(2)]);
        let eq_filter = Filter::new("a", "eq", json!([1, 2])).expect("valid");
        assert!(eq_filter.in_values().is_empty());
    }
}

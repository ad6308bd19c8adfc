//! JSON value semantics shared by filters, ordering, policies and index keys: equality with
//! numbers compared numerically and object key order ignored, and one total order across kinds.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Rank of a value's kind: `null < boolean < number < string < array < object`.
pub fn kind_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// A number as an exact integer when it is one, else as a float.
enum Num {
    Int(i128),
    Float(f64),
}

fn num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        Num::Float(n.as_f64().unwrap_or(0.0))
    }
}

/// Compares numbers numerically: integers exactly, anything involving a float as `f64`.
pub fn number_cmp(a: &Number, b: &Number) -> Ordering {
    match (num(a), num(b)) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (x, y) => {
            let as_f64 = |n: Num| match n {
                Num::Int(i) => i as f64,
                Num::Float(f) => f,
            };
            // JSON has no NaN, so partial_cmp is total here; it also makes -0.0 equal 0.
            as_f64(x).partial_cmp(&as_f64(y)).unwrap_or(Ordering::Equal)
        }
    }
}

/// JSON equality: numbers numerically (`1` equals `1.0`), object key order ignored, recursive.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The total order used for sorting: kind rank first; then `false < true`, numbers numerically,
/// strings by UTF-8 bytes, arrays and objects by their canonical text.
pub fn total_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
            canonical_text(a).cmp(&canonical_text(b))
        }
        _ => kind_rank(a).cmp(&kind_rank(b)),
    }
}

/// For range operators: the order of `stored` relative to `bound` when both are numbers or
/// both strings; `None` for any other pair (such a document simply does not match).
pub fn same_kind_cmp(stored: &Value, bound: &Value) -> Option<Ordering> {
    match (stored, bound) {
        (Value::Number(x), Value::Number(y)) => Some(number_cmp(x, y)),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

/// Compact JSON with object keys sorted and integral floats below 2^53 written as integers,
/// so values equal under [`json_eq`] mostly share one text.
pub fn canonical_text(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                out.push_str(&(f as i64).to_string());
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_is_numeric_and_ignores_key_order() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!({"a": 1, "b": [2.0]}), &json!({"b": [2], "a": 1.0})));
        assert!(!json_eq(&json!("1"), &json!(1)));
        assert!(!json_eq(&json!([1, 2]), &json!([2, 1])));
        assert!(!json_eq(&json!(9_007_199_254_740_993u64), &json!(9_007_199_254_740_992u64)));
    }

    #[test]
    fn total_order_ranks_kinds_then_values() {
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(-5),
            json!(1.5),
            json!(2),
            json!(""),
            json!("a"),
            json!("b"),
            json!([1]),
            json!({"a": 1}),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(total_cmp(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(same_kind_cmp(&json!(3), &json!("3")), None);
        assert_eq!(canonical_text(&json!({"b": 1.0, "a": [2.5]})), r#"{"a":[2.5],"b":1}"#);
    }
}

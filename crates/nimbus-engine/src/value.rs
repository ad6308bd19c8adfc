//! JSON value semantics shared by filters, ordering, policies and index keys: equality with
//! numbers compared numerically and object key order ignored, and one total order across kinds.
//!
//! Numbers are compared exactly, even an integer against a float (`2^53 + 1` is greater than
//! the float `2^53`). Comparing mixed pairs as `f64` instead would make the order intransitive
//! (`2^53 + 1 = 2^53.0 = 2^53` but `2^53 + 1 > 2^53`), and Rust's sorts may panic on a
//! comparator that is not a total order.

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
#[derive(Clone, Copy)]
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
        // Without serde_json's `arbitrary_precision` every non-integer is a finite f64.
        Num::Float(n.as_f64().unwrap_or(0.0))
    }
}

/// 2^127: every `i128` is below it, and every float of smaller magnitude truncates into `i128`.
const TWO_POW_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;

/// Compares an integer with a finite float exactly.
fn int_float_cmp(i: i128, f: f64) -> Ordering {
    if f >= TWO_POW_127 {
        return Ordering::Less;
    }
    if f < -TWO_POW_127 {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    // In range, so the cast is exact (and `as` saturates rather than panics anyway).
    i.cmp(&(whole as i128)).then_with(|| {
        // Same integer part: the float's fraction decides.
        if f > whole {
            Ordering::Less
        } else if f < whole {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    })
}

/// Compares numbers numerically and exactly: integers as `i128`, floats as `f64`, and an
/// integer against a float without rounding either. `-0.0` equals `0`.
pub fn number_cmp(a: &Number, b: &Number) -> Ordering {
    match (num(a), num(b)) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Int(x), Num::Float(y)) => int_float_cmp(x, y),
        (Num::Float(x), Num::Int(y)) => int_float_cmp(y, x).reverse(),
        // JSON has no NaN, so partial_cmp is total here; it also makes -0.0 equal 0.0.
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
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
/// strings by UTF-8 bytes, arrays and objects by their [`canonical_text`]. It returns `Equal`
/// exactly when [`json_eq`] holds.
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

/// Compact JSON with object keys sorted by bytes, recursively, and numbers normalized: a float
/// with an integral value in the range of JSON integers (`-2^63 ..= 2^64 - 1`) is written as that
/// integer, and `-0.0` as `0`. Two values have the same text exactly when [`json_eq`] holds.
pub fn canonical_text(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// -2^63 and 2^64: the range of integers serde_json stores exactly.
const INT_MIN_F64: f64 = -9_223_372_036_854_775_808.0;
const UINT_END_F64: f64 = 18_446_744_073_709_551_616.0;

fn write_number(n: &Number, out: &mut String) {
    match num(n) {
        Num::Int(i) => out.push_str(&i.to_string()),
        Num::Float(f) if f.fract() == 0.0 && (INT_MIN_F64..UINT_END_F64).contains(&f) => {
            // Integral and in range, so the cast is exact.
            out.push_str(&(f as i128).to_string());
        }
        // Any other float: serde_json's shortest round-trip form, the same for equal floats.
        Num::Float(_) => out.push_str(&n.to_string()),
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Number(n) => write_number(n, out),
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
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::String(s) => write_string(s, out),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
    }
}

fn write_string(s: &str, out: &mut String) {
    // Serializing a string cannot fail; the fallback only keeps this free of unwrap.
    match serde_json::to_string(s) {
        Ok(text) => out.push_str(&text),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2^53, the first integer where f64 loses integer precision.
    const P53: u64 = 1 << 53;

    #[test]
    fn kind_ranks_follow_the_contract() {
        let cases = [
            (json!(null), 0),
            (json!(false), 1),
            (json!(0), 2),
            (json!(0.5), 2),
            (json!(""), 3),
            (json!([]), 4),
            (json!({}), 5),
        ];
        for (value, rank) in cases {
            assert_eq!(kind_rank(&value), rank, "{value}");
        }
    }

    #[test]
    fn equality_table() {
        let cases: &[(Value, Value, bool)] = &[
            (json!(1), json!(1.0), true),
            (json!(-0.0), json!(0), true),
            (json!(-0.0), json!(0.0), true),
            (json!(u64::MAX), json!(u64::MAX), true),
            (json!(i64::MIN), json!(i64::MIN as f64), true),
            (json!(P53 + 1), json!(P53), false),
            (json!(P53 + 1), json!(P53 as f64), false),
            (json!(P53), json!(P53 as f64), true),
            (json!(1), json!(1.5), false),
            (json!({"a": 1, "b": [2.0]}), json!({"b": [2], "a": 1.0}), true),
            (json!({"a": 1}), json!({"a": 1, "b": 2}), false),
            (json!({"a": null}), json!({"b": null}), false),
            (json!("1"), json!(1), false),
            (json!([1, 2]), json!([2, 1]), false),
            (json!([1]), json!([1, 1]), false),
            (json!(null), json!(false), false),
            (json!(true), json!(true), true),
            (json!(""), json!(null), false),
        ];
        for (a, b, expected) in cases {
            assert_eq!(json_eq(a, b), *expected, "{a} == {b}");
            assert_eq!(json_eq(b, a), *expected, "{b} == {a}");
        }
    }

    #[test]
    fn numbers_compare_exactly_across_int_and_float() {
        let cases: &[(Value, Value, Ordering)] = &[
            (json!(1), json!(1.5), Ordering::Less),
            (json!(2), json!(1.5), Ordering::Greater),
            (json!(-2), json!(-1.5), Ordering::Less),
            (json!(-1), json!(-1.5), Ordering::Greater),
            (json!(P53 + 1), json!(P53 as f64), Ordering::Greater),
            (json!(u64::MAX), json!(1.8446744073709552e19), Ordering::Less),
            (json!(i64::MIN), json!(-1e300), Ordering::Greater),
            (json!(u64::MAX), json!(1e300), Ordering::Less),
            (json!(i64::MAX), json!(f64::MAX), Ordering::Less),
            (json!(0), json!(f64::MIN_POSITIVE), Ordering::Less),
            (json!(0), json!(-f64::MIN_POSITIVE), Ordering::Greater),
            (json!(-1), json!(u64::MAX), Ordering::Less),
        ];
        for (a, b, expected) in cases {
            assert_eq!(total_cmp(a, b), *expected, "{a} vs {b}");
            assert_eq!(total_cmp(b, a), expected.reverse(), "{b} vs {a}");
            assert_eq!(same_kind_cmp(a, b), Some(*expected), "{a} vs {b}");
        }
    }

    #[test]
    fn total_order_ranks_kinds_then_values() {
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1e300),
            json!(-5),
            json!(1.5),
            json!(2),
            json!(P53),
            json!(P53 + 1),
            json!(1e300),
            json!(""),
            json!("\u{0}"),
            json!("a"),
            json!("b"),
            json!("é"),
            // Arrays and objects by canonical text, byte by byte: `"` < `,` < `1` < `]` < `}`,
            // so `[1,2]` sorts before `[1]` (text order, as the contract says, not element order).
            json!(["a"]),
            json!([1, 2]),
            json!([1]),
            json!([]),
            json!({"a": 1}),
            json!({}),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(total_cmp(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn range_comparison_needs_the_same_kind() {
        let cases: &[(Value, Value, Option<Ordering>)] = &[
            (json!(3), json!(2.5), Some(Ordering::Greater)),
            (json!("a"), json!("ab"), Some(Ordering::Less)),
            (json!(3), json!("3"), None),
            (json!("3"), json!(3), None),
            (json!(null), json!(0), None),
            (json!(true), json!(1), None),
            (json!([1]), json!(1), None),
            (json!({"a": 1}), json!("a"), None),
        ];
        for (stored, bound, expected) in cases {
            assert_eq!(same_kind_cmp(stored, bound), *expected, "{stored} vs {bound}");
        }
    }

    #[test]
    fn canonical_text_table() {
        let cases: &[(Value, &str)] = &[
            (json!({"b": 1.0, "a": [2.5]}), r#"{"a":[2.5],"b":1}"#),
            (json!({"é": 1, "z": 2, "A": 3}), r#"{"A":3,"z":2,"é":1}"#),
            (json!(-0.0), "0"),
            (json!(1e15), "1000000000000000"),
            (json!(1e19), "10000000000000000000"),
            (json!(-9.223372036854776e18), "-9223372036854775808"),
            (json!(1e20), "1e+20"),
            (json!(0.1), "0.1"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!("a\"\u{0}"), r#""a\"\u0000""#),
            (json!([null, true, false, {}]), "[null,true,false,{}]"),
            (json!({"k": {"y": 1, "x": [1.0, {"b": 2, "a": 1}]}}), r#"{"k":{"x":[1,{"a":1,"b":2}],"y":1}}"#),
        ];
        for (value, text) in cases {
            assert_eq!(canonical_text(value), *text, "{value}");
            let reparsed: Value = serde_json::from_str(text).expect("canonical text is JSON");
            assert!(json_eq(&reparsed, value), "{text} reparses to an equal value");
        }
    }

    /// A spread of values with many equal-but-differently-written pairs.
    fn samples() -> Vec<Value> {
        let scalars = vec![
            json!(null),
            json!(false),
            json!(true),
            json!(0),
            json!(-0.0),
            json!(0.0),
            json!(1),
            json!(1.0),
            json!(-1),
            json!(-1.0),
            json!(0.5),
            json!(P53),
            json!(P53 as f64),
            json!(P53 + 1),
            json!(P53 + 2),
            json!((P53 + 2) as f64),
            json!(u64::MAX),
            json!(1.8446744073709552e19),
            json!(i64::MIN),
            json!(1e300),
            json!(""),
            json!("a"),
            json!("a\u{0}"),
            json!("ab"),
        ];
        let mut all = scalars.clone();
        for s in scalars.iter().step_by(3) {
            all.push(json!([s]));
            all.push(json!({"k": s}));
            all.push(json!({"k": s, "j": [s, 1.0]}));
            all.push(json!({"j": [s, 1], "k": s}));
        }
        all
    }

    #[test]
    fn order_equality_and_text_agree() {
        let values = samples();
        for a in &values {
            for b in &values {
                let eq = json_eq(a, b);
                assert_eq!(total_cmp(a, b) == Ordering::Equal, eq, "{a} vs {b}");
                assert_eq!(canonical_text(a) == canonical_text(b), eq, "{a} vs {b}");
                assert_eq!(total_cmp(a, b), total_cmp(b, a).reverse(), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn total_order_is_transitive() {
        let values = samples();
        for a in &values {
            for b in &values {
                for c in &values {
                    let (ab, bc, ac) = (total_cmp(a, b), total_cmp(b, c), total_cmp(a, c));
                    if ab != Ordering::Greater && bc != Ordering::Greater {
                        assert_ne!(ac, Ordering::Greater, "{a} <= {b} <= {c}");
                    }
                    if ab == Ordering::Equal && bc == Ordering::Equal {
                        assert_eq!(ac, Ordering::Equal, "{a} = {b} = {c}");
                    }
                }
            }
        }
        // Sorting must not panic and must leave the slice ordered.
        let mut sorted = values.clone();
        sorted.sort_by(total_cmp);
        assert!(sorted.windows(2).all(|w| total_cmp(&w[0], &w[1]) != Ordering::Greater));
    }
}

//! Order-preserving byte encoding of index keys: SQLite compares BLOBs with `memcmp`, so the
//! byte order of encoded keys must equal the order of the values they encode.
//!
//! Each component is a kind tag followed by a self-delimiting body, so encodings are
//! prefix-free and a composite key is the concatenation of its components. Numbers are encoded
//! as `f64`, so integers beyond 2^53 may share a key: index scans only narrow candidates and
//! every filter is re-applied to what they return.

use serde_json::Value;

use crate::value::canonical_text;

const TAG_NULL: u8 = 0x01;
const TAG_BOOL: u8 = 0x02;
const TAG_NUMBER: u8 = 0x03;
const TAG_STRING: u8 = 0x04;
const TAG_OTHER: u8 = 0x05;
/// Missing fields sort after every value.
const TAG_MISSING: u8 = 0xFE;

/// Appends bytes with `0x00` escaped as `0x00 0xFF`, then the terminator `0x00 0x00`.
fn escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// The sign-flip transform that makes `f64` bit patterns sort numerically as unsigned bytes.
fn f64_bytes(f: f64) -> [u8; 8] {
    let f = if f == 0.0 { 0.0 } else { f }; // -0.0 and 0.0 are equal numbers
    let bits = f.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    ordered.to_be_bytes()
}

/// Appends the encoding of one component (`None` = the field is missing).
pub fn encode_component(value: Option<&Value>, out: &mut Vec<u8>) {
    match value {
        None => out.push(TAG_MISSING),
        Some(Value::Null) => out.push(TAG_NULL),
        Some(Value::Bool(b)) => out.extend_from_slice(&[TAG_BOOL, u8::from(*b)]),
        Some(Value::Number(n)) => {
            out.push(TAG_NUMBER);
            out.extend_from_slice(&f64_bytes(n.as_f64().unwrap_or(0.0)));
        }
        Some(Value::String(s)) => {
            out.push(TAG_STRING);
            escaped(s.as_bytes(), out);
        }
        Some(other) => {
            out.push(TAG_OTHER);
            escaped(canonical_text(other).as_bytes(), out);
        }
    }
}

/// Encodes a composite key.
pub fn encode_key(values: &[Option<&Value>]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        encode_component(*value, &mut out);
    }
    out
}

/// The smallest byte string greater than every string that starts with `prefix`; `None` when
/// no such string exists (the prefix is all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// The half-open byte range `[start, end)` of one kind's tag, appended to `prefix`: every key
/// whose next component is a value of the same kind as `value` lies inside it.
pub fn kind_range(prefix: &[u8], value: &Value) -> (Vec<u8>, Vec<u8>) {
    let tag = match value {
        Value::Null => TAG_NULL,
        Value::Bool(_) => TAG_BOOL,
        Value::Number(_) => TAG_NUMBER,
        Value::String(_) => TAG_STRING,
        _ => TAG_OTHER,
    };
    let mut start = prefix.to_vec();
    start.push(tag);
    let mut end = prefix.to_vec();
    end.push(tag + 1);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::total_cmp;
    use serde_json::json;

    #[test]
    fn byte_order_equals_value_order() {
        let values = vec![
            json!(null),
            json!(false),
            json!(true),
            json!(-1e300),
            json!(-2.5),
            json!(-1),
            json!(-0.0),
            json!(0),
            json!(0.5),
            json!(1),
            json!(3),
            json!(1e300),
            json!(""),
            json!("\u{0}"),
            json!("\u{0}a"),
            json!("a"),
            json!("a\u{0}"),
            json!("ab"),
            json!("b"),
        ];
        for a in &values {
            for b in &values {
                let (ka, kb) = (encode_key(&[Some(a)]), encode_key(&[Some(b)]));
                assert_eq!(ka.cmp(&kb), total_cmp(a, b), "{a} vs {b}");
            }
            assert!(encode_key(&[Some(a)]) < encode_key(&[None]), "missing sorts last");
        }
    }

    #[test]
    fn composite_keys_order_by_first_component_first() {
        let k = |a: &Value, b: &Value| encode_key(&[Some(a), Some(b)]);
        assert!(k(&json!("a"), &json!(9)) < k(&json!("a\u{0}"), &json!(0)));
        assert!(k(&json!("a"), &json!(1)) < k(&json!("ab"), &json!(0)));
        let prefix = encode_key(&[Some(&json!("a"))]);
        let succ = prefix_successor(&prefix).expect("has successor");
        assert!(k(&json!("a"), &json!("zzz")) < succ);
        assert!(k(&json!("a\u{0}"), &json!(0)) >= succ);
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    }
}

//! Order-preserving byte encoding of index keys: SQLite compares BLOBs with `memcmp`, so the
//! byte order of encoded keys must equal the order of the values they encode.
//!
//! Each component is a kind tag followed by a self-delimiting body, so encodings are
//! prefix-free and a composite key is the concatenation of its components:
//!
//! | Value | Encoding |
//! | --- | --- |
//! | `null` | `01` |
//! | `false` / `true` | `02 00` / `02 01` |
//! | number | `03` + the `f64`'s 8 bytes, sign-flipped, big-endian |
//! | string | `04` + UTF-8 bytes with `00` escaped as `00 FF`, then `00 00` |
//! | array, object | `05` + escaped canonical text, then `00 00` |
//! | missing | `FE` (after every value) |
//!
//! Numbers are encoded as `f64`, so distinct integers beyond 2^53 may share a key (the order is
//! still never inverted, since rounding is monotone): index scans only narrow candidates and
//! every filter is re-applied to what they return. Arrays and objects share a tag, but canonical
//! text starts with `[` or `{`, so they still sort by kind rank, then by canonical text.

use serde_json::Value;

use crate::value::canonical_text;

const TAG_NULL: u8 = 0x01;
const TAG_BOOL: u8 = 0x02;
const TAG_NUMBER: u8 = 0x03;
const TAG_STRING: u8 = 0x04;
const TAG_OTHER: u8 = 0x05;
/// Missing fields sort after every value.
const TAG_MISSING: u8 = 0xFE;

/// Appends bytes with `0x00` escaped as `0x00 0xFF`, then the terminator `0x00 0x00`. The
/// terminator sorts below any continuation (`0x00 0xFF` or a non-zero byte), so a string
/// sorts before every string it is a proper prefix of.
fn escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// The sign-flip transform that makes `f64` bit patterns sort numerically as unsigned bytes:
/// negative numbers have every bit inverted, others only the sign bit set.
fn f64_bytes(f: f64) -> [u8; 8] {
    let f = if f == 0.0 { 0.0 } else { f }; // -0.0 and 0.0 are equal numbers
    let bits = f.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    ordered.to_be_bytes()
}

fn tag(value: &Value) -> u8 {
    match value {
        Value::Null => TAG_NULL,
        Value::Bool(_) => TAG_BOOL,
        Value::Number(_) => TAG_NUMBER,
        Value::String(_) => TAG_STRING,
        Value::Array(_) | Value::Object(_) => TAG_OTHER,
    }
}

/// Appends the encoding of one component (`None` = the field is missing).
pub fn encode_component(value: Option<&Value>, out: &mut Vec<u8>) {
    let Some(value) = value else {
        out.push(TAG_MISSING);
        return;
    };
    out.push(tag(value));
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        // Without `arbitrary_precision` every JSON number has an f64 form.
        Value::Number(n) => out.extend_from_slice(&f64_bytes(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => escaped(s.as_bytes(), out),
        Value::Array(_) | Value::Object(_) => escaped(canonical_text(value).as_bytes(), out),
    }
}

/// Encodes a composite key: the concatenation of its components' encodings.
pub fn encode_key(values: &[Option<&Value>]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        encode_component(*value, &mut out);
    }
    out
}

/// The smallest byte string greater than every string that starts with `prefix`; `None` when
/// no such string exists (the prefix is empty or all `0xFF`).
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

/// The half-open byte range `[start, end)` covering every key that starts with `prefix`
/// followed by a value of the same kind as `value` (any suffix after it). Numbers and strings
/// each have their own range; arrays and objects share one.
pub fn kind_range(prefix: &[u8], value: &Value) -> (Vec<u8>, Vec<u8>) {
    let tag = tag(value);
    let mut start = prefix.to_vec();
    start.push(tag);
    let mut end = prefix.to_vec();
    end.push(tag + 1);
    (start, end)
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;
    use crate::value::total_cmp;
    use serde_json::json;

    fn key(value: &Value) -> Vec<u8> {
        encode_key(&[Some(value)])
    }

    /// Numbers every `f64` represents exactly, so byte order must equal value order strictly.
    fn exact_numbers() -> Vec<Value> {
        let mut out = vec![
            json!(0),
            json!(-0.0),
            json!(0.0),
            json!(f64::MIN_POSITIVE),
            json!(-f64::MIN_POSITIVE),
            json!(5e-324),
            json!(-5e-324),
            json!(f64::MAX),
            json!(f64::MIN),
            json!(1e300),
            json!(-1e300),
            json!(1u64 << 53),
            json!(-(1i64 << 53)),
            json!(1u64 << 63),
            json!(i64::MIN),
        ];
        for i in -40i64..=40 {
            out.push(json!(i));
            out.push(json!(i as f64 / 4.0));
            out.push(json!(i as f64 * 1e10 + 0.5));
        }
        for shift in 0..62 {
            out.push(json!(1i64 << shift));
            out.push(json!(-(1i64 << shift)));
            out.push(json!((1u64 << shift) as f64 + 0.25));
        }
        out
    }

    /// Strings over an alphabet with NUL, 0x01, 0xFF-adjacent and multi-byte characters: every
    /// short combination, so many are prefixes of each other.
    fn strings() -> Vec<Value> {
        let alphabet = ["\u{0}", "\u{1}", "a", "b", "\u{7f}", "é", "\u{10ffff}"];
        let mut out = vec![String::new()];
        for a in alphabet {
            out.push(a.to_owned());
            for b in alphabet {
                out.push(format!("{a}{b}"));
                for c in ["\u{0}", "a", "é"] {
                    out.push(format!("{a}{b}{c}"));
                }
            }
        }
        out.into_iter().map(Value::String).collect()
    }

    fn composites() -> Vec<Value> {
        vec![
            json!([]),
            json!([1]),
            json!([1, 2]),
            json!([1.0, 2]),
            json!(["a\u{0}"]),
            json!([[]]),
            json!({}),
            json!({"a": 1}),
            json!({"b": 1, "a": 1.0}),
            json!({"a": 1, "b": 1}),
            json!({"a": "\u{0}"}),
        ]
    }

    fn all_values() -> Vec<Value> {
        let mut values = vec![json!(null), json!(false), json!(true)];
        values.extend(exact_numbers());
        values.extend(strings());
        values.extend(composites());
        values
    }

    #[test]
    fn byte_order_equals_value_order_within_and_across_kinds() {
        let values = all_values();
        assert!(values.len() > 500);
        let keys: Vec<Vec<u8>> = values.iter().map(key).collect();
        for (a, ka) in values.iter().zip(&keys) {
            for (b, kb) in values.iter().zip(&keys) {
                assert_eq!(ka.cmp(kb), total_cmp(a, b), "{a} vs {b}");
            }
            assert!(*ka < encode_key(&[None]), "missing sorts after {a}");
        }
    }

    #[test]
    fn large_integers_never_invert_the_order() {
        let base = 1u64 << 53;
        let mut values: Vec<Value> = (0..40).map(|i| json!(base + i)).collect();
        values.extend((0..40).map(|i| json!(u64::MAX - i)));
        values.extend((0..40).map(|i| json!(i64::MIN + i)));
        values.extend([json!(base as f64), json!(1.8446744073709552e19), json!(-9.223372036854776e18)]);
        for a in &values {
            for b in &values {
                if total_cmp(a, b) == Ordering::Less {
                    assert!(key(a) <= key(b), "{a} < {b}");
                }
            }
        }
    }

    #[test]
    fn encodings_are_prefix_free() {
        let values = all_values();
        let keys: Vec<Vec<u8>> = values.iter().map(key).chain([encode_key(&[None])]).collect();
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                if i != j && a != b {
                    assert!(!b.starts_with(a), "{a:?} is a prefix of {b:?}");
                }
            }
        }
    }

    #[test]
    fn composite_keys_order_component_by_component() {
        let firsts = [json!(null), json!(-1), json!(0.5), json!(""), json!("a"), json!("a\u{0}"), json!("ab")];
        let seconds = [json!(false), json!(9), json!("\u{0}"), json!("zzz")];
        let mut tuples: Vec<(Option<&Value>, Option<&Value>)> = Vec::new();
        for a in firsts.iter().map(Some).chain([None]) {
            for b in seconds.iter().map(Some).chain([None]) {
                tuples.push((a, b));
            }
        }
        let component_cmp = |x: Option<&Value>, y: Option<&Value>| match (x, y) {
            (Some(x), Some(y)) => total_cmp(x, y),
            (x, y) => x.is_none().cmp(&y.is_none()),
        };
        for &(a1, a2) in &tuples {
            for &(b1, b2) in &tuples {
                let expected = component_cmp(a1, b1).then_with(|| component_cmp(a2, b2));
                let got = encode_key(&[a1, a2]).cmp(&encode_key(&[b1, b2]));
                assert_eq!(got, expected, "({a1:?}, {a2:?}) vs ({b1:?}, {b2:?})");
            }
        }
    }

    #[test]
    fn prefix_successor_bounds_every_extension() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (&[0x04, 0x61], Some(&[0x04, 0x62])),
            (&[0x04, 0xFF], Some(&[0x05])),
            (&[0x04, 0xFF, 0xFF], Some(&[0x05])),
            (&[0xFF, 0xFF], None),
            (&[], None),
        ];
        for (prefix, expected) in cases {
            assert_eq!(prefix_successor(prefix).as_deref(), *expected, "{prefix:?}");
        }
        let prefix = key(&json!("a"));
        let succ = prefix_successor(&prefix).expect("has successor");
        for second in all_values().iter().map(Some).chain([None]) {
            let inside = encode_key(&[Some(&json!("a")), second]);
            assert!(prefix <= inside && inside < succ, "(a, {second:?})");
        }
        for outside in ["a\u{0}", "ab", "b"] {
            assert!(encode_key(&[Some(&json!(outside)), Some(&json!(0))]) >= succ, "{outside}");
        }
    }

    #[test]
    fn kind_ranges_hold_exactly_their_kind() {
        let prefix = key(&json!(7));
        let values = all_values();
        for probe in [json!(null), json!(true), json!(0), json!("s"), json!([1]), json!({"a": 1})] {
            let (start, end) = kind_range(&prefix, &probe);
            for v in &values {
                let k = encode_key(&[Some(&json!(7)), Some(v)]);
                let same_kind = tag(v) == tag(&probe);
                assert_eq!(start <= k && k < end, same_kind, "{v} in the range of {probe}");
            }
            let missing = encode_key(&[Some(&json!(7)), None]);
            assert!(!(start <= missing && missing < end), "missing is outside the range of {probe}");
        }
    }
}

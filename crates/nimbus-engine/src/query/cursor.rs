//! Opaque cursors: base64url (no padding) of a small versioned JSON object. A query cursor is
//! bound to its query's fingerprint; a list cursor to its table.
//!
//! Shapes (version 1): a query cursor is `{"v":1,"q":<fingerprint>,"k":<sort value>,"id":…}`, with
//! `"m":true` instead of `"k"` when the last document lacked the order field; a list cursor is
//! `{"v":1,"t":<table>,"id":…}`. Cursors are not secret: a forged one can only name a position.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::order::SortKey;

/// A keyset position: the last returned document's sort key and id.
#[derive(Debug, Clone, PartialEq)]
pub struct PagePosition {
    /// Sort key of the last returned document.
    pub key: SortKey,
    /// Id of the last returned document.
    pub id: String,
}

const VERSION: u64 = 1;

const MALFORMED: &str = "is not a cursor issued by this server";
const OTHER_QUERY: &str = "belongs to a different query";
const OTHER_TABLE: &str = "belongs to a different table";

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Decodes the envelope: base64url, a JSON object, the current version.
fn decode(cursor: &str) -> Result<Map<String, Value>, &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| MALFORMED)?;
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&bytes) else { return Err(MALFORMED) };
    if object.get("v").and_then(Value::as_u64) != Some(VERSION) {
        return Err(MALFORMED);
    }
    Ok(object)
}

fn id_of(object: &Map<String, Value>) -> Result<String, &'static str> {
    object.get("id").and_then(Value::as_str).map(str::to_owned).ok_or(MALFORMED)
}

/// Encodes the position after which the next page of a query starts.
pub fn encode_query_cursor(fingerprint: &str, position: &PagePosition) -> String {
    let mut object = Map::new();
    object.insert("v".into(), json!(VERSION));
    object.insert("q".into(), json!(fingerprint));
    match &position.key {
        SortKey::Missing => object.insert("m".into(), json!(true)),
        SortKey::Value(v) => object.insert("k".into(), v.clone()),
    };
    object.insert("id".into(), json!(position.id));
    encode(&Value::Object(object))
}

/// Decodes a query cursor, checking that it belongs to the query with `fingerprint`. The error
/// is the reason, to be reported on the request field that carried the cursor.
pub fn decode_query_cursor(cursor: &str, fingerprint: &str) -> Result<PagePosition, &'static str> {
    let object = decode(cursor)?;
    match object.get("q") {
        Some(Value::String(q)) if q == fingerprint => {}
        Some(Value::String(_)) => return Err(OTHER_QUERY),
        Some(_) => return Err(MALFORMED),
        // A list cursor (or something else) passed where a query cursor belongs.
        None if object.contains_key("t") => return Err(OTHER_QUERY),
        None => return Err(MALFORMED),
    }
    let key = match (object.get("m"), object.get("k")) {
        (Some(Value::Bool(true)), None) => SortKey::Missing,
        (None, Some(value)) => SortKey::Value(value.clone()),
        _ => return Err(MALFORMED),
    };
    Ok(PagePosition { key, id: id_of(&object)? })
}

/// Encodes the position after which the next page of a table listing starts.
pub fn encode_list_cursor(table: &str, last_id: &str) -> String {
    encode(&json!({ "v": VERSION, "t": table, "id": last_id }))
}

/// Decodes a list cursor, checking that it belongs to `table`. The error is the reason.
pub fn decode_list_cursor(cursor: &str, table: &str) -> Result<String, &'static str> {
    let object = decode(cursor)?;
    match object.get("t") {
        Some(Value::String(t)) if t == table => id_of(&object),
        Some(Value::String(_)) => Err(OTHER_TABLE),
        Some(_) => Err(MALFORMED),
        None if object.contains_key("q") => Err(OTHER_TABLE),
        None => Err(MALFORMED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    #[test]
    fn query_cursors_round_trip() {
        let positions = [
            PagePosition { key: SortKey::Value(json!({"a": [1, "x"]})), id: "01abc".into() },
            PagePosition { key: SortKey::Value(json!(null)), id: "01".into() },
            PagePosition { key: SortKey::Value(json!(-2.5)), id: "01".into() },
            PagePosition { key: SortKey::Value(json!("é\u{0}/+")), id: "id with spaces".into() },
            PagePosition { key: SortKey::Missing, id: "x".into() },
        ];
        for pos in positions {
            let cursor = encode_query_cursor("f1", &pos);
            assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{cursor}");
            assert_eq!(decode_query_cursor(&cursor, "f1"), Ok(pos.clone()));
            assert_eq!(decode_query_cursor(&cursor, "f2"), Err(OTHER_QUERY));
        }
    }

    #[test]
    fn list_cursors_round_trip() {
        let cursor = encode_list_cursor("tasks", "01x");
        assert_eq!(decode_list_cursor(&cursor, "tasks"), Ok("01x".into()));
        assert_eq!(decode_list_cursor(&cursor, "other"), Err(OTHER_TABLE));
        assert_eq!(decode_query_cursor(&cursor, "tasks"), Err(OTHER_QUERY));
        let query = encode_query_cursor("tasks", &PagePosition { key: SortKey::Missing, id: "a".into() });
        assert_eq!(decode_list_cursor(&query, "tasks"), Err(OTHER_TABLE));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let garbage = [
            String::new(),
            "!!!".into(),
            "e30=".into(),
            b64("{}"),
            b64("[]"),
            b64("null"),
            b64("not json"),
            b64(r#"{"v":2,"q":"f","k":1,"id":"a","t":"t"}"#),
            b64(r#"{"v":"1","q":"f","k":1,"id":"a","t":"t"}"#),
            URL_SAFE_NO_PAD.encode([0xFF, 0xFE, 0x00]),
            "a".repeat(10_001),
        ];
        for cursor in &garbage {
            assert_eq!(decode_query_cursor(cursor, "f"), Err(MALFORMED), "{cursor}");
            assert_eq!(decode_list_cursor(cursor, "t"), Err(MALFORMED), "{cursor}");
        }
        let bad_query = [
            r#"{"v":1,"q":"f","id":"a"}"#,
            r#"{"v":1,"q":"f","m":true,"k":1,"id":"a"}"#,
            r#"{"v":1,"q":"f","m":false,"id":"a"}"#,
            r#"{"v":1,"q":"f","k":1}"#,
            r#"{"v":1,"q":"f","k":1,"id":7}"#,
            r#"{"v":1,"q":7,"k":1,"id":"a"}"#,
        ];
        for text in bad_query {
            assert_eq!(decode_query_cursor(&b64(text), "f"), Err(MALFORMED), "{text}");
        }
        for text in [r#"{"v":1,"t":7,"id":"a"}"#, r#"{"v":1,"t":"t"}"#, r#"{"v":1,"t":"t","id":null}"#] {
            assert_eq!(decode_list_cursor(&b64(text), "t"), Err(MALFORMED), "{text}");
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // Deterministic xorshift over printable and base64 characters, plus mutations of a
        // genuine cursor: every input decodes to a result, never a panic.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let genuine =
            encode_query_cursor("f", &PagePosition { key: SortKey::Value(json!([1, {"a": 2}])), id: "i".into() });
        let charset: Vec<char> = "ABCXYZabcxyz0189-_+/=.{}\"é\u{0}".chars().collect();
        for round in 0..5000u32 {
            let text: String = if round.is_multiple_of(2) {
                let len = (next() % 64) as usize;
                (0..len).map(|_| charset[(next() % charset.len() as u64) as usize]).collect()
            } else {
                let mut chars: Vec<char> = genuine.chars().collect();
                let at = (next() % chars.len() as u64) as usize;
                chars[at] = charset[(next() % charset.len() as u64) as usize];
                chars.truncate(chars.len() - (next() % 3) as usize);
                chars.into_iter().collect()
            };
            let _ = decode_query_cursor(&text, "f");
            let _ = decode_list_cursor(&text, "t");
        }
    }
}

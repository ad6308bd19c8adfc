//! Opaque cursors: base64url of a small versioned JSON object. A query cursor is bound to its
//! query's fingerprint; a list cursor to its table.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

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

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode(cursor: &str) -> Result<Value, &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| "is not a cursor issued by this server")?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| "is not a cursor issued by this server")?;
    if value["v"].as_u64() != Some(VERSION) {
        return Err("is not a cursor issued by this server");
    }
    Ok(value)
}

/// Encodes the position after which the next page of a query starts.
pub fn encode_query_cursor(fingerprint: &str, position: &PagePosition) -> String {
    let key = match &position.key {
        SortKey::Missing => json!({ "m": true }),
        SortKey::Value(v) => json!({ "k": v }),
    };
    encode(&json!({ "v": VERSION, "q": fingerprint, "p": key, "id": position.id }))
}

/// Decodes a query cursor, checking that it belongs to the query with `fingerprint`.
pub fn decode_query_cursor(cursor: &str, fingerprint: &str) -> Result<PagePosition, &'static str> {
    let value = decode(cursor)?;
    if value["q"].as_str() != Some(fingerprint) {
        return Err("belongs to a different query");
    }
    let id = value["id"].as_str().ok_or("is not a cursor issued by this server")?.to_owned();
    let key = match value["p"].as_object() {
        Some(p) if p.get("m") == Some(&Value::Bool(true)) => SortKey::Missing,
        Some(p) => SortKey::Value(p.get("k").cloned().ok_or("is not a cursor issued by this server")?),
        None => return Err("is not a cursor issued by this server"),
    };
    Ok(PagePosition { key, id })
}

/// Encodes the position after which the next page of a table listing starts.
pub fn encode_list_cursor(table: &str, last_id: &str) -> String {
    encode(&json!({ "v": VERSION, "t": table, "id": last_id }))
}

/// Decodes a list cursor, checking that it belongs to `table`.
pub fn decode_list_cursor(cursor: &str, table: &str) -> Result<String, &'static str> {
    let value = decode(cursor)?;
    if value["t"].as_str() != Some(table) {
        return Err("belongs to a different table");
    }
    value["id"].as_str().map(str::to_owned).ok_or("is not a cursor issued by this server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_or_garbage() {
        let pos = PagePosition { key: SortKey::Value(json!({"a": [1, "x"]})), id: "01abc".into() };
        let c = encode_query_cursor("f1", &pos);
        assert_eq!(decode_query_cursor(&c, "f1"), Ok(pos));
        assert!(decode_query_cursor(&c, "f2").is_err());
        let missing = PagePosition { key: SortKey::Missing, id: "x".into() };
        assert_eq!(decode_query_cursor(&encode_query_cursor("f", &missing), "f"), Ok(missing));
        for garbage in ["", "!!!", "e30", "eyJ2IjoyfQ", &encode_list_cursor("t", "x")] {
            assert!(decode_query_cursor(garbage, "f").is_err(), "{garbage}");
        }
        let l = encode_list_cursor("tasks", "01x");
        assert_eq!(decode_list_cursor(&l, "tasks"), Ok("01x".into()));
        assert!(decode_list_cursor(&l, "other").is_err());
    }
}

//! The Convex HTTP protocol of `POST /convex/{t}/api/query|mutation|action` (functions.md §10),
//! as the `convex` npm package's `ConvexHttpClient` speaks it: the request body, its
//! `convex_encoded_json` arguments decoded to plain JSON, the forms of a function path, and the
//! answer bodies.
//!
//! Nimbus values are plain JSON, so the encoded forms decode as follows (anything else is 400
//! `function.invalid_args`, naming the argument's path):
//! - `{"$integer": base64}` (a bigint, 8 bytes little-endian) → a JSON number when it is a safe
//!   integer (|n| ≤ 2^53 − 1, exact as a JavaScript number);
//! - `{"$float": base64}` (8 bytes little-endian; the client sends NaN, ±Infinity and -0 so) →
//!   a JSON number when finite (-0 stays -0); NaN and ±Infinity are refused, JSON has no such
//!   numbers;
//! - `{"$bytes": …}` (an `ArrayBuffer`) is refused: there is no bytes type; so are the retired
//!   `{"$set": …}` and `{"$map": …}`.
//!
//! Answers are plain JSON, which the client decodes as is (a number is a float64 there).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nimbus_core::{ErrorCode, NimbusError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Number, Value, json};

/// The status of a failed function call: the client reads its body, as for a 2xx.
pub const FUNCTION_FAILED_STATUS: u16 = 560;

/// The largest integer magnitude a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The request body. Unknown fields are ignored, as newer clients may add some.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ApiCall {
    /// The function path: `dir/file:export`, also `dir/file.js:export` or `dir/file` (the
    /// default export); see [`candidate_names`].
    pub path: String,
    /// `convex_encoded_json` (what the client sends) or `json`; absent means the former.
    #[serde(default)]
    pub format: Option<String>,
    /// `[{…}]` (the client's form: always one object) or `{…}`; absent means `{}`.
    #[serde(default)]
    pub args: Option<Value>,
}

impl ApiCall {
    /// The checked format and the args, decoded to plain JSON. A malformed body is 400
    /// `op.invalid_input`; an encoded value Nimbus cannot hold is 400 `function.invalid_args`.
    pub fn decoded_args(self) -> Result<Value, NimbusError> {
        match self.format.as_deref() {
            None | Some("convex_encoded_json" | "json") => {}
            Some(_) => return Err(NimbusError::invalid_input("format", "must be convex_encoded_json or json")),
        }
        let args = match self.args {
            None | Some(Value::Null) => return Ok(json!({})),
            Some(Value::Array(items)) if items.len() == 1 => items.into_iter().next().unwrap_or(Value::Null),
            Some(object @ Value::Object(_)) => object,
            Some(_) => return Err(NimbusError::invalid_input("args", "must be an array holding one object")),
        };
        if !args.is_object() {
            return Err(NimbusError::invalid_input("args[0]", "must be an object"));
        }
        decode(args, "args", &self.path)
    }
}

/// Decodes `convex_encoded_json` into plain JSON; `path` names `value` in errors, `name` is the
/// function's.
fn decode(value: Value, path: &str, name: &str) -> Result<Value, NimbusError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| decode(item, &format!("{path}[{i}]"), name))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => {
            if map.len() == 1
                && let Some((key, encoded)) = map.iter().next()
                && matches!(key.as_str(), "$integer" | "$float" | "$bytes" | "$set" | "$map")
            {
                return special(key, encoded, path, name);
            }
            map.into_iter()
                .map(|(key, item)| decode(item, &format!("{path}.{key}"), name).map(|item| (key, item)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object)
        }
        other => Ok(other),
    }
}

/// One encoded value: `{"$integer"|"$float"|"$bytes"|"$set"|"$map": encoded}`.
fn special(key: &str, encoded: &Value, path: &str, name: &str) -> Result<Value, NimbusError> {
    let invalid = |reason: String| invalid_args(name, path, &reason);
    let eight_bytes = || -> Result<[u8; 8], NimbusError> {
        let text = encoded.as_str().ok_or_else(|| invalid(format!("{key} must hold a base64 string")))?;
        let bytes = STANDARD.decode(text).map_err(|_| invalid(format!("{key} is not valid base64")))?;
        <[u8; 8]>::try_from(bytes.as_slice()).map_err(|_| invalid(format!("{key} must encode 8 bytes")))
    };
    match key {
        "$integer" => {
            let n = i64::from_le_bytes(eight_bytes()?);
            if n.unsigned_abs() > MAX_SAFE_INTEGER {
                return Err(invalid(format!(
                    "the bigint {n} is outside ±(2^53 - 1), the integers a JSON number holds exactly"
                )));
            }
            Ok(Value::from(n))
        }
        "$float" => {
            let x = f64::from_le_bytes(eight_bytes()?);
            let shown = if x.is_nan() {
                "NaN"
            } else if x > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            Number::from_f64(x)
                .map(Value::Number)
                .ok_or_else(|| invalid(format!("{shown} cannot be passed: JSON has no such number")))
        }
        "$bytes" => Err(invalid("bytes (ArrayBuffer) cannot be passed: Nimbus values are JSON".into())),
        _ => Err(invalid("Set and Map values cannot be passed: Nimbus values are JSON".into())),
    }
}

/// 400 `function.invalid_args`, shaped as the args validator's.
fn invalid_args(name: &str, path: &str, reason: &str) -> NimbusError {
    NimbusError::new(
        ErrorCode::FunctionInvalidArgs,
        format!("invalid args for {name}: {reason} at {path}"),
        Some(json!({ "name": name, "path": path, "reason": reason })),
    )
}

/// The function names a path may mean, most literal first: as sent; with `:default` when it
/// names no export; with the module's `.js`, `.ts`, `.mjs` or `.mts` extension dropped.
pub fn candidate_names(path: &str) -> Vec<String> {
    let (module, export) = path.rsplit_once(':').unwrap_or((path, "default"));
    let mut names = vec![path.to_owned(), format!("{module}:{export}")];
    if let Some(bare) = [".js", ".ts", ".mjs", ".mts"].iter().find_map(|ext| module.strip_suffix(ext)) {
        names.push(format!("{bare}:{export}"));
    }
    names.dedup();
    names
}

/// The 200 body of a call that returned `value`.
pub fn success(value: Value) -> Value {
    json!({ "status": "success", "value": value, "logLines": [] })
}

/// The 560 body of a failed call: the error's message, and `errorData` only when the function
/// threw an error with `data` (a `ConvexError`), since the client turns any `errorData`, even
/// `null`, into a `ConvexError`.
pub fn failure(error: &NimbusError) -> Value {
    let mut body = json!({ "status": "error", "errorMessage": error.message, "logLines": [] });
    if error.code == ErrorCode::FunctionThrown
        && let Some(data) = error.detail.as_ref().and_then(|detail| detail.get("data"))
    {
        body["errorData"] = data.clone();
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(args: Value) -> Result<Value, NimbusError> {
        ApiCall { path: "m:f".into(), format: Some("convex_encoded_json".into()), args: Some(args) }.decoded_args()
    }

    fn b64(bytes: [u8; 8]) -> String {
        STANDARD.encode(bytes)
    }

    #[test]
    fn encoded_values_decode_to_plain_json() {
        let big = |n: i64| json!({ "$integer": b64(n.to_le_bytes()) });
        let float = |x: f64| json!({ "$float": b64(x.to_le_bytes()) });
        let decoded = args(json!([{ "n": big(-42), "safe": big(9_007_199_254_740_991), "z": float(-0.0),
                                    "list": [big(7), { "s": "x" }] }]))
        .expect("decodes");
        assert_eq!(
            decoded,
            json!({ "n": -42, "safe": 9_007_199_254_740_991_i64, "z": -0.0, "list": [7, { "s": "x" }] })
        );
        assert!(decoded["z"].as_f64().is_some_and(|z| z == 0.0 && z.is_sign_negative()));
        assert_eq!(args(json!({ "plain": 1 })).expect("an object is accepted"), json!({ "plain": 1 }));
    }

    #[test]
    fn values_json_cannot_hold_are_invalid_args_naming_their_path() {
        let cases = [
            (json!({ "a": { "$integer": b64((1_i64 << 53).to_le_bytes()) } }), "args.a"),
            (json!({ "a": [{ "$float": b64(f64::NAN.to_le_bytes()) }] }), "args.a[0]"),
            (json!({ "a": { "$float": b64(f64::NEG_INFINITY.to_le_bytes()) } }), "args.a"),
            (json!({ "a": { "$bytes": "AAE=" } }), "args.a"),
            (json!({ "a": { "$integer": "AAE=" } }), "args.a"),
        ];
        for (value, path) in cases {
            let error = args(json!([value])).expect_err("refused");
            assert_eq!(error.code, ErrorCode::FunctionInvalidArgs, "{error:?}");
            assert_eq!(error.detail.as_ref().map(|d| d["path"].clone()), Some(json!(path)), "{error:?}");
        }
    }

    #[test]
    fn malformed_bodies_are_invalid_input() {
        for bad in [json!([]), json!([{}, {}]), json!([1]), json!("x")] {
            assert_eq!(args(bad).expect_err("refused").code, ErrorCode::OpInvalidInput);
        }
        let call = ApiCall { path: "m:f".into(), format: Some("msgpack".into()), args: None };
        assert_eq!(call.decoded_args().expect_err("refused").code, ErrorCode::OpInvalidInput);
    }

    #[test]
    fn paths_try_the_literal_name_then_the_default_export_and_extensionless_module() {
        assert_eq!(candidate_names("messages:list"), ["messages:list"]);
        assert_eq!(candidate_names("messages"), ["messages", "messages:default"]);
        assert_eq!(candidate_names("dir/messages.js:list"), ["dir/messages.js:list", "dir/messages:list"]);
        assert_eq!(candidate_names("messages.ts"), ["messages.ts", "messages.ts:default", "messages:default"]);
    }

    #[test]
    fn error_data_is_present_only_for_thrown_data() {
        let thrown = |detail: Value| NimbusError::new(ErrorCode::FunctionThrown, "function m:f threw: x", Some(detail));
        assert_eq!(failure(&thrown(json!({ "data": null })))["errorData"], Value::Null);
        assert!(failure(&thrown(json!({ "data": null }))).as_object().is_some_and(|b| b.contains_key("errorData")));
        assert!(failure(&thrown(json!({ "message": "x" }))).as_object().is_some_and(|b| !b.contains_key("errorData")));
        let other = NimbusError::new(ErrorCode::OpConflict, "conflict", Some(json!({ "data": 1 })));
        assert!(failure(&other).as_object().is_some_and(|b| !b.contains_key("errorData")));
    }
}

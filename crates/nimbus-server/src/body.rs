//! Request bodies: read with the size limit, then parsed as JSON with the path of a bad field.
//!
//! Reading and parsing are split so handlers can follow the contract's validation order (path
//! syntax, then tenant existence, then the body).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use nimbus_core::NimbusError;
use nimbus_core::limits::MAX_JSON_BODY_BYTES;
use serde::de::DeserializeOwned;

use crate::envelope::{ApiError, unsupported_media_type};

/// A request body read up to the JSON limit, not yet parsed.
pub struct RawBody {
    content_type: Option<String>,
    bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = content_type(request.headers());
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(size) = declared.filter(|size| *size > MAX_JSON_BODY_BYTES) {
            return Err(NimbusError::payload_too_large(MAX_JSON_BODY_BYTES, Some(size)).into());
        }
        let bytes = axum::body::to_bytes(request.into_body(), MAX_JSON_BODY_BYTES)
            .await
            .map_err(|_| NimbusError::payload_too_large(MAX_JSON_BODY_BYTES, None))?;
        Ok(Self { content_type, bytes })
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("invalid").to_ascii_lowercase())
}

/// Whether a content type names JSON (`application/json`, optionally `; charset=utf-8`).
fn is_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    if parts.next() != Some("application/json") {
        return false;
    }
    parts
        .all(|p| p.is_empty() || p.eq_ignore_ascii_case("charset=utf-8") || p.eq_ignore_ascii_case("charset=\"utf-8\""))
}

impl RawBody {
    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }

    fn check_content_type(&self) -> Result<(), NimbusError> {
        match &self.content_type {
            Some(ct) if !self.is_empty() && !is_json(ct) => Err(unsupported_media_type()),
            _ => Ok(()),
        }
    }

    /// Parses a required JSON body into `T`; errors name the offending field path.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, NimbusError> {
        self.check_content_type()?;
        if self.is_empty() {
            return Err(NimbusError::invalid_request("a JSON body is required"));
        }
        parse(&self.bytes)
    }

    /// Parses an optional JSON body: empty (with or without a content type) gives `None`.
    pub fn optional_json<T: DeserializeOwned>(&self) -> Result<Option<T>, NimbusError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.json().map(Some)
    }
}

/// Parses a JSON object body into `T`, reporting the path of the first bad field. Every body
/// of the contract is an object; serde would otherwise read a top-level array positionally.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, NimbusError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(NimbusError::invalid_request("the body must be a JSON object"));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let reason = clean_reason(&inner);
        if inner.is_syntax() || inner.is_eof() {
            NimbusError::invalid_request(format!("body is not valid JSON: {reason}"))
        } else if path == "." {
            // A missing top-level field: serde names it in the message (`missing field `x``).
            match missing_field(&reason) {
                Some(field) => NimbusError::invalid_input(field, "is required"),
                None => NimbusError::invalid_request(reason),
            }
        } else {
            match missing_field(&reason) {
                Some(field) => NimbusError::invalid_input(format!("{path}.{field}"), "is required"),
                None => NimbusError::invalid_input(path, reason),
            }
        }
    })
}

/// serde's message without its " at line L column C" suffix.
fn clean_reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn missing_field(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("missing field `")?;
    Some(rest.trim_end_matches('`').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        field: String,
        op: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        table: String,
        filters: Vec<Inner>,
    }

    fn field_of(json: &str) -> Option<String> {
        let error = parse::<Outer>(json.as_bytes()).expect_err("must fail");
        error.detail.and_then(|d| d["field"].as_str().map(str::to_owned))
    }

    #[test]
    fn errors_name_the_field_path() {
        assert_eq!(field_of(r#"{"table": 1, "filters": []}"#).as_deref(), Some("table"));
        assert_eq!(field_of(r#"{"filters": []}"#).as_deref(), Some("table"));
        assert_eq!(
            field_of(r#"{"table": "t", "filters": [{"field": "a", "op": 3}]}"#).as_deref(),
            Some("filters[0].op")
        );
        assert_eq!(field_of(r#"{"table": "t", "filters": [{"field": "a"}]}"#).as_deref(), Some("filters[0].op"));
        assert_eq!(field_of(r#"{"table": "t""#), None);
        assert!(parse::<Outer>(br#"["t", []]"#).is_err());
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(!is_json("application/json; charset=latin1"));
        assert!(!is_json("text/plain"));
    }
}

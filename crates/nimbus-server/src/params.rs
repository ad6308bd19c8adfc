//! Path and query-string parameters, validated into typed ids with contract errors.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use nimbus_core::NimbusError;
use nimbus_core::ids::{DocumentId, TableName, TenantId};

use crate::envelope::ApiError;

/// Percent-decoded path parameters of the matched route.
pub struct PathParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| NimbusError::invalid_request("path parameters are not valid UTF-8"))?;
        Ok(Self(raw.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()))
    }
}

impl PathParams {
    /// A segment by name, checked against the shared segment rules: non-empty, no `/`, no
    /// leading or trailing whitespace.
    pub fn segment(&self, name: &str) -> Result<&str, NimbusError> {
        let value = self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
        if value.is_empty() {
            return Err(NimbusError::invalid_input(name, "must not be empty"));
        }
        if value.contains('/') {
            return Err(NimbusError::invalid_input(name, "must not contain '/'"));
        }
        if value.trim() != value {
            return Err(NimbusError::invalid_input(name, "must not have leading or trailing whitespace"));
        }
        Ok(value)
    }

    /// A wildcard parameter (`{*name}`, which may hold `/`), as matched.
    pub fn rest(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether the route matched a parameter `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// The `tenant_id` segment.
    pub fn tenant(&self) -> Result<TenantId, NimbusError> {
        TenantId::parse(self.segment("tenant_id")?, "tenant_id")
    }

    /// The `table` segment.
    pub fn table(&self) -> Result<TableName, NimbusError> {
        TableName::parse(self.segment("table")?, "table")
    }

    /// The `document_id` segment.
    pub fn document(&self) -> Result<DocumentId, NimbusError> {
        DocumentId::parse(self.segment("document_id")?, "document_id")
    }
}

/// Query-string parameters (the last value wins for a repeated key).
pub struct QueryParams(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(Self(form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

impl QueryParams {
    /// A raw parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The names of the parameters present (for strict query strings).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// An optional boolean parameter, `true` or `false` (absent: `false`; else 400 naming it).
    pub fn flag(&self, name: &str) -> Result<bool, NimbusError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(NimbusError::invalid_input(name, "must be true or false")),
        }
    }

    /// An optional integer parameter within `range` (else 400 naming it).
    pub fn integer(&self, name: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>, NimbusError> {
        let Some(raw) = self.get(name) else { return Ok(None) };
        let value: u64 = raw.parse().map_err(|_| {
            NimbusError::invalid_input(name, format!("must be an integer from {} to {}", range.start(), range.end()))
        })?;
        if !range.contains(&value) {
            return Err(NimbusError::invalid_input(
                name,
                format!("must be an integer from {} to {}", range.start(), range.end()),
            ));
        }
        Ok(Some(value))
    }
}

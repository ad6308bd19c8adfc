//! [`NimbusError`]: one catalogued error instance.

use serde_json::{Value, json};

use crate::catalog::{ErrorCode, Severity};

/// A catalogued error: its code, a human message and the structured `detail` the catalog
/// documents for that code. Every error a client sees is one of these.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} [{}]", code.as_str())]
pub struct NimbusError {
    /// The catalog code.
    pub code: ErrorCode,
    /// Human-readable message; clients must not branch on it.
    pub message: String,
    /// Structured detail, shaped as the catalog documents for `code`.
    pub detail: Option<Value>,
    /// Overrides the catalog's default retryability (codes whose retryability is per instance).
    pub retryable: Option<bool>,
    /// Overrides the catalog's default severity.
    pub severity: Option<Severity>,
    /// Advised delay before retrying, sent as `Retry-After`.
    pub retry_after_ms: Option<u64>,
    /// Overrides the catalog's HTTP status where the catalog lists two (415 for a wrong
    /// content type under `op.invalid_input`).
    pub status: Option<u16>,
}

impl NimbusError {
    /// An error with a code, message and detail.
    pub fn new(code: ErrorCode, message: impl Into<String>, detail: Option<Value>) -> Self {
        Self {
            code,
            message: message.into(),
            detail,
            retryable: None,
            severity: None,
            retry_after_ms: None,
            status: None,
        }
    }

    /// The envelope object (the value under `error`) that HTTP answers and WebSocket frames
    /// embed, stamped now with `request_id`.
    pub fn envelope(&self, request_id: &str) -> Value {
        let spec = self.code.spec();
        let severity = match self.effective_severity() {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut body = json!({
            "code": self.code.as_str(),
            "message": self.message,
            "requestId": request_id,
            "timestamp": crate::time::rfc3339_ms(crate::time::now_ms()),
            "severity": severity,
            "retryable": self.is_retryable(),
            "detail": self.detail.clone().unwrap_or(Value::Null),
        });
        if let Some(action) = spec.action {
            body["remediation"] = json!({ "action": action, "message": action.message() });
        }
        body
    }

    /// Whether a client may retry, after instance overrides.
    pub fn is_retryable(&self) -> bool {
        self.retryable.unwrap_or(self.code.spec().retryable)
    }

    /// The effective severity, after instance overrides.
    pub fn effective_severity(&self) -> Severity {
        self.severity.unwrap_or(self.code.spec().severity)
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.code.http_status())
    }

    /// Sets an advised retry delay (also reported as `detail.retryAfterMs`).
    pub fn with_retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        if let Some(Value::Object(detail)) = &mut self.detail {
            detail.insert("retryAfterMs".into(), ms.into());
        }
        self
    }

    /// Places a field-level error inside a part of the request: `field` becomes
    /// `prefix.field` (or `prefix` when the error named no field).
    pub fn within(mut self, prefix: &str) -> Self {
        if let Some(Value::Object(detail)) = &mut self.detail {
            let field = match detail.get("field").and_then(Value::as_str) {
                Some(inner) if !inner.is_empty() => format!("{prefix}.{inner}"),
                _ => prefix.to_owned(),
            };
            if let Some(reason) = detail.get("reason").and_then(Value::as_str)
                && self.code == ErrorCode::OpInvalidInput
            {
                self.message = format!("invalid input: {field} {reason}");
            }
            detail.insert("field".into(), Value::from(field));
        }
        self
    }

    /// 400 `op.invalid_input` naming the offending field.
    pub fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        Self::new(
            ErrorCode::OpInvalidInput,
            format!("invalid input: {field} {reason}"),
            Some(json!({ "field": field, "reason": reason })),
        )
    }

    /// 400 `op.invalid_input` about the request as a whole (no single field).
    pub fn invalid_request(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(ErrorCode::OpInvalidInput, format!("invalid input: {reason}"), Some(json!({ "reason": reason })))
    }

    /// 400 `op.cap_exceeded`: a documented cap was exceeded.
    pub fn cap_exceeded(cap: &str, observed: u64, limit: u64) -> Self {
        Self::new(
            ErrorCode::OpCapExceeded,
            format!("{cap} is {observed}, over the limit of {limit}"),
            Some(json!({ "cap": cap, "observed": observed, "limit": limit })),
        )
    }

    /// 413 `op.payload_too_large`.
    pub fn payload_too_large(limit_bytes: usize, size_bytes: Option<usize>) -> Self {
        let mut detail = json!({ "limitBytes": limit_bytes });
        if let Some(size) = size_bytes {
            detail["sizeBytes"] = size.into();
        }
        Self::new(
            ErrorCode::OpPayloadTooLarge,
            format!("request body is larger than the limit of {limit_bytes} bytes"),
            Some(detail),
        )
    }

    /// 404 `session.tenant_not_found`.
    pub fn tenant_not_found(tenant_id: &str) -> Self {
        Self::new(
            ErrorCode::SessionTenantNotFound,
            format!("tenant '{tenant_id}' does not exist"),
            Some(json!({ "tenantId": tenant_id })),
        )
    }

    /// 404 `op.document_not_found`.
    pub fn document_not_found(table: &str, document_id: &str) -> Self {
        Self::new(
            ErrorCode::OpDocumentNotFound,
            format!("document '{document_id}' not found in table '{table}'"),
            Some(json!({ "table": table, "documentId": document_id })),
        )
    }

    /// 404 `op.schema_not_found`.
    pub fn schema_not_found(table: &str) -> Self {
        Self::new(
            ErrorCode::OpSchemaNotFound,
            format!("table '{table}' has no schema"),
            Some(json!({ "table": table })),
        )
    }

    /// 404 `op.not_found`: an agents resource (sandbox, service, session) that does not exist
    /// for this tenant.
    pub fn not_found(resource: &str, id: &str) -> Self {
        Self::new(
            ErrorCode::OpNotFound,
            format!("{resource} '{id}' not found"),
            Some(json!({ "resource": resource, "id": id })),
        )
    }

    /// 404 `op.not_found` for a resource addressed by name (services): `detail: {resource, name}`.
    pub fn not_found_named(resource: &str, name: &str) -> Self {
        Self::new(
            ErrorCode::OpNotFound,
            format!("{resource} '{name}' not found"),
            Some(json!({ "resource": resource, "name": name })),
        )
    }

    /// 404 `op.not_found` for a resource addressed by path (sandbox files):
    /// `detail: {resource, path}`.
    pub fn not_found_path(resource: &str, path: &str) -> Self {
        Self::new(
            ErrorCode::OpNotFound,
            format!("{resource} '{path}' not found"),
            Some(json!({ "resource": resource, "path": path })),
        )
    }

    /// 409 `op.already_exists` for a resource addressed by name: `detail: {resource, name}`.
    pub fn already_exists_named(resource: &str, name: &str) -> Self {
        Self::new(
            ErrorCode::OpAlreadyExists,
            format!("{resource} '{name}' already exists"),
            Some(json!({ "resource": resource, "name": name })),
        )
    }

    /// 412 `op.precondition_failed`: a conditional write named a stale generation.
    pub fn precondition_failed(expected_generation: u64, current_generation: u64) -> Self {
        Self::new(
            ErrorCode::OpPreconditionFailed,
            format!("generation {expected_generation} is stale; the current generation is {current_generation}"),
            Some(json!({ "expectedGeneration": expected_generation, "currentGeneration": current_generation })),
        )
    }

    /// 501 `service.capability_unavailable`: declared, but not available in this version.
    pub fn capability_unavailable(capability: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            ErrorCode::ServiceCapabilityUnavailable,
            format!("`{capability}` is not available in this version: {reason}"),
            Some(json!({ "capability": capability, "reason": reason })),
        )
    }

    /// 409 `op.conflict` with a machine-readable `reason` and extra detail fields.
    pub fn conflict(reason: &str, message: impl Into<String>, extra: Value) -> Self {
        let mut detail = json!({ "reason": reason });
        if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), extra) {
            detail.extend(extra);
        }
        Self::new(ErrorCode::OpConflict, message, Some(detail))
    }

    /// 408 `op.body_timeout`: the request body did not arrive within `timeout_ms`.
    pub fn body_timeout(timeout_ms: u64) -> Self {
        Self::new(
            ErrorCode::OpBodyTimeout,
            format!("the request body did not arrive within {timeout_ms} ms"),
            Some(json!({ "timeoutMs": timeout_ms })),
        )
    }

    /// 408 `op.wait_timeout`: a long-poll's deadline passed (conventions §9).
    pub fn wait_timeout(wait_for: &str, timeout_ms: u64, observed: Value) -> Self {
        Self::new(
            ErrorCode::OpWaitTimeout,
            format!("'{wait_for}' did not hold within {timeout_ms} ms"),
            Some(json!({ "waitFor": wait_for, "timeoutMs": timeout_ms, "observed": observed })),
        )
    }

    /// 409 `op.wait_unsatisfiable`: the awaited condition can no longer become true.
    pub fn wait_unsatisfiable(wait_for: &str, observed: Value) -> Self {
        Self::new(
            ErrorCode::OpWaitUnsatisfiable,
            format!("'{wait_for}' can no longer hold"),
            Some(json!({ "waitFor": wait_for, "observed": observed })),
        )
    }

    /// 409 `op.already_exists`.
    pub fn already_exists(resource: &str, id: &str) -> Self {
        Self::new(
            ErrorCode::OpAlreadyExists,
            format!("{resource} '{id}' already exists"),
            Some(json!({ "resource": resource, "id": id })),
        )
    }

    /// 422 `op.schema_validation` for one field of one document.
    pub fn schema_violation(table: &str, field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            ErrorCode::OpSchemaValidation,
            format!("schema validation failed for table '{table}': {field} {reason}"),
            Some(json!({ "table": table, "field": field, "reason": reason })),
        )
    }

    /// 429 `rate.resource_exhausted`.
    pub fn resource_exhausted(resource: &str, limit: u64, current: Option<u64>) -> Self {
        let mut detail = json!({ "resource": resource, "limit": limit });
        if let Some(current) = current {
            detail["current"] = current.into();
        }
        Self::new(ErrorCode::RateResourceExhausted, format!("{resource} is full (limit {limit})"), Some(detail))
    }

    /// 401 `auth.unauthorized`.
    pub fn unauthorized(reason: &str) -> Self {
        Self::new(
            ErrorCode::AuthUnauthorized,
            "a valid admin token is required (Authorization: Bearer <token>)",
            Some(json!({ "reason": reason })),
        )
    }

    /// 403 `auth.forbidden`.
    pub fn forbidden(reason: &str) -> Self {
        Self::new(ErrorCode::AuthForbidden, format!("forbidden: {reason}"), Some(json!({ "reason": reason })))
    }

    /// 501 `sandbox.backend_unavailable`: the sandbox backend cannot run on this host.
    pub fn backend_unavailable(backend: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            ErrorCode::SandboxBackendUnavailable,
            format!("the `{backend}` sandbox backend is unavailable on this host: {reason}"),
            Some(json!({ "backend": backend, "reason": reason })),
        )
    }

    /// 500 `service.internal`: the message is generic by contract; the cause goes to the log.
    pub fn internal() -> Self {
        Self::new(ErrorCode::ServiceInternal, "internal error; see the server log for this requestId", None)
    }
}

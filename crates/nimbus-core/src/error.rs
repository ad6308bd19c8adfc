//! [`NimbusError`]: one catalogued error instance.

use serde_json::{Value, json};

use crate::catalog::{Action, ErrorCode, Severity};
use crate::remediation::{self, Remediation};

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
    /// Advised delay before retrying, sent as `Retry-After`. A `u32` (up to 49 days) keeps the
    /// error small enough to return by value.
    pub retry_after_ms: Option<u32>,
    /// Overrides the catalog's HTTP status where the catalog lists two (415 for a wrong
    /// content type under `op.invalid_input`).
    pub status: Option<u16>,
    /// A remediation for this instance's reason, rendered in place of the catalog's default
    /// (see [`crate::remediation`]). Boxed: most errors have none, and errors travel in `Err`.
    pub remediation: Option<Box<Remediation>>,
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
            remediation: None,
        }
    }

    /// The envelope object (the value under `error`) that HTTP answers and WebSocket frames
    /// embed, stamped now with `request_id`.
    pub fn envelope(&self, request_id: &str) -> Value {
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
        if let Some((action, message)) = self.effective_remediation() {
            body["remediation"] = json!({ "action": action, "message": message });
        }
        body
    }

    /// The remediation the envelope carries: this instance's (its action, or the catalog's when
    /// it set only a message), else the catalog's default; `None` when neither defines one.
    pub fn effective_remediation(&self) -> Option<(Action, &str)> {
        let default = self.code.spec().action;
        match &self.remediation {
            Some(own) => own.action.or(default).map(|action| (action, own.message.as_str())),
            None => default.map(|action| (action, action.message())),
        }
    }

    /// Gives this instance a remediation for its reason, with its own action, in place of the
    /// catalog's default. The message must hold no secret and no server-internal path.
    pub fn with_remediation(mut self, action: Action, message: impl Into<String>) -> Self {
        self.remediation = Some(Box::new(Remediation::new(action, message)));
        self
    }

    /// Gives this instance a remediation message for its reason, keeping the catalog's action.
    /// Only for codes whose catalog entry has an action (else use
    /// [`NimbusError::with_remediation`]; a lone message would have no action to go with).
    pub fn with_remediation_message(mut self, message: impl Into<String>) -> Self {
        debug_assert!(self.code.spec().action.is_some(), "{} has no catalog action", self.code.as_str());
        self.remediation = Some(Box::new(Remediation::message(message)));
        self
    }

    /// Gives this instance a prepared remediation (one of [`crate::remediation`]'s), in place of
    /// the catalog's default.
    pub fn remedy(mut self, remediation: Remediation) -> Self {
        self.remediation = Some(Box::new(remediation));
        self
    }

    /// Sets the remediation where one is given.
    fn remedied(mut self, remediation: Option<Remediation>) -> Self {
        if let Some(remediation) = remediation {
            self.remediation = Some(Box::new(remediation));
        }
        self
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
        self.retry_after_ms = Some(u32::try_from(ms).unwrap_or(u32::MAX));
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
        .remedied(Some(remediation::cap_exceeded(cap, observed, limit)))
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
        .remedied(Some(remediation::payload_too_large(limit_bytes)))
    }

    /// 404 `session.tenant_not_found`.
    pub fn tenant_not_found(tenant_id: &str) -> Self {
        Self::new(
            ErrorCode::SessionTenantNotFound,
            format!("tenant '{tenant_id}' does not exist"),
            Some(json!({ "tenantId": tenant_id })),
        )
        .remedied(Some(remediation::tenant_not_found(tenant_id)))
    }

    /// 404 `op.document_not_found`.
    pub fn document_not_found(table: &str, document_id: &str) -> Self {
        Self::new(
            ErrorCode::OpDocumentNotFound,
            format!("document '{document_id}' not found in table '{table}'"),
            Some(json!({ "table": table, "documentId": document_id })),
        )
        .remedied(Some(remediation::document_not_found(table)))
    }

    /// 404 `op.schema_not_found`.
    pub fn schema_not_found(table: &str) -> Self {
        Self::new(
            ErrorCode::OpSchemaNotFound,
            format!("table '{table}' has no schema"),
            Some(json!({ "table": table })),
        )
        .remedied(Some(remediation::schema_not_found(table)))
    }

    /// 404 `op.scheduled_job_not_found`: no job `job_id`, or (with `state`) one that is not in
    /// the state the operation needs.
    pub fn scheduled_job_not_found(job_id: &str, state: Option<&str>) -> Self {
        let (message, detail) = match state {
            Some(state) => (format!("scheduled job '{job_id}' is {state}"), json!({ "jobId": job_id, "state": state })),
            None => (format!("scheduled job '{job_id}' does not exist"), json!({ "jobId": job_id })),
        };
        Self::new(ErrorCode::OpScheduledJobNotFound, message, Some(detail))
            .remedied(Some(remediation::scheduled_job_not_found(state)))
    }

    /// 404 `function.not_found`: no function `name` in the tenant's deployed set.
    pub fn function_not_found(name: &str) -> Self {
        Self::new(ErrorCode::FunctionNotFound, format!("no function {name:?}"), Some(json!({ "name": name })))
            .remedied(Some(remediation::function_not_found()))
    }

    /// 404 `op.not_found`: an agents resource (sandbox, service, session) that does not exist
    /// for this tenant.
    pub fn not_found(resource: &str, id: &str) -> Self {
        Self::new(
            ErrorCode::OpNotFound,
            format!("{resource} '{id}' not found"),
            Some(json!({ "resource": resource, "id": id })),
        )
        .remedied(remediation::not_found(resource))
    }

    /// 404 `op.not_found` for a resource addressed by name (services): `detail: {resource, name}`.
    pub fn not_found_named(resource: &str, name: &str) -> Self {
        Self::new(
            ErrorCode::OpNotFound,
            format!("{resource} '{name}' not found"),
            Some(json!({ "resource": resource, "name": name })),
        )
        .remedied(remediation::not_found(resource))
    }

    /// 404 `op.not_found` for a resource addressed by path (sandbox files):
    /// `detail: {resource, path}`.
    pub fn not_found_path(resource: &str, path: &str) -> Self {
        Self::new(
            ErrorCode::OpNotFound,
            format!("{resource} '{path}' not found"),
            Some(json!({ "resource": resource, "path": path })),
        )
        .remedied(remediation::not_found(resource))
    }

    /// 409 `op.already_exists` for a resource addressed by name: `detail: {resource, name}`.
    pub fn already_exists_named(resource: &str, name: &str) -> Self {
        Self::new(
            ErrorCode::OpAlreadyExists,
            format!("{resource} '{name}' already exists"),
            Some(json!({ "resource": resource, "name": name })),
        )
        .remedied(remediation::already_exists(resource))
    }

    /// 412 `op.precondition_failed`: a conditional write named a stale generation.
    pub fn precondition_failed(expected_generation: u64, current_generation: u64) -> Self {
        Self::new(
            ErrorCode::OpPreconditionFailed,
            format!("generation {expected_generation} is stale; the current generation is {current_generation}"),
            Some(json!({ "expectedGeneration": expected_generation, "currentGeneration": current_generation })),
        )
        .remedied(Some(remediation::precondition_failed(current_generation)))
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
        Self::new(ErrorCode::OpConflict, message, Some(detail)).remedied(remediation::conflict(reason))
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
        .remedied(remediation::already_exists(resource))
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
            .remedied(remediation::resource_exhausted(resource, limit))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The envelope's `remediation` as `(action, message)`, `None` when absent.
    fn remediation_of(error: &NimbusError) -> Option<(String, String)> {
        let envelope = error.envelope("req_test");
        let remediation = envelope.get("remediation")?;
        let action = remediation["action"].as_str().expect("action is a string").to_owned();
        let message = remediation["message"].as_str().expect("message is a string").to_owned();
        assert_eq!(remediation.as_object().map(serde_json::Map::len), Some(2), "{remediation}");
        Some((action, message))
    }

    /// The envelope's remediation, asserting its action and that the message contains `parts`.
    fn assert_remedy(error: &NimbusError, action: &str, parts: &[&str]) -> String {
        let (got_action, message) =
            remediation_of(error).unwrap_or_else(|| panic!("{} has no remediation", error.code.as_str()));
        assert_eq!(got_action, action, "{message}");
        for part in parts {
            assert!(message.contains(part), "{:?} lacks {part:?}", message);
        }
        assert!(message.ends_with('.'), "{message:?}");
        message
    }

    #[test]
    fn instances_without_their_own_remediation_keep_the_catalog_default() {
        let invalid = NimbusError::invalid_input("page_size", "must be greater than zero");
        assert_eq!(
            remediation_of(&invalid),
            Some(("fix_request".into(), Action::FixRequest.message().into())),
            "the catalog's action and message"
        );
        let internal = NimbusError::internal();
        assert_eq!(
            remediation_of(&internal),
            Some(("contact_operator".into(), Action::ContactOperator.message().into()))
        );
        // A reason or resource with no specific remedy keeps the catalog's: none for op.not_found,
        // the action's default for op.conflict and rate.resource_exhausted.
        assert_eq!(remediation_of(&NimbusError::not_found("widget", "w1")), None);
        assert_eq!(remediation_of(&NimbusError::new(ErrorCode::OpNotFound, "gone", None)), None);
        assert_eq!(
            remediation_of(&NimbusError::conflict("transaction_conflict", "busy", json!({}))),
            Some(("fix_request".into(), Action::FixRequest.message().into()))
        );
        let full = NimbusError::resource_exhausted("tenant_write_queue", 1024, Some(1024));
        assert_eq!(remediation_of(&full), Some(("wait_and_retry".into(), Action::WaitAndRetry.message().into())));
        assert!(full.remediation.is_none());
    }

    #[test]
    fn an_instance_remediation_replaces_the_message_and_keeps_or_sets_the_action() {
        let kept = NimbusError::invalid_request("bad").with_remediation_message("Send JSON.");
        assert_eq!(remediation_of(&kept), Some(("fix_request".into(), "Send JSON.".into())));
        let replaced = NimbusError::internal().with_remediation(Action::Retry, "Try again.");
        assert_eq!(remediation_of(&replaced), Some(("retry".into(), "Try again.".into())));
        assert_eq!(replaced.effective_remediation(), Some((Action::Retry, "Try again.")));
        // A code the catalog gives no action carries one when the instance sets it.
        let found = NimbusError::new(ErrorCode::OpNotFound, "gone", None).with_remediation(Action::FixRequest, "Look.");
        assert_eq!(remediation_of(&found), Some(("fix_request".into(), "Look.".into())));
        // The envelope's other fields are unchanged.
        let envelope = found.envelope("req_x");
        assert_eq!((envelope["code"].clone(), envelope["retryable"].clone()), (json!("op.not_found"), json!(false)));
        // GET /errors still serves the catalog's defaults.
        let catalog = crate::catalog::catalog_json();
        let not_found = catalog["codes"].as_array().and_then(|c| c.iter().find(|e| e["code"] == "op.not_found"));
        assert_eq!(not_found.map(|e| e["remediation"].clone()), Some(Value::Null));
    }

    #[test]
    fn an_unknown_tenant_says_how_to_create_it() {
        let error = NimbusError::tenant_not_found("ghost");
        assert_remedy(&error, "fix_request", &[r#"`POST /api/tenants {"id": "ghost"}`"#, "`GET /api/tenants`"]);
    }

    #[test]
    fn a_stopped_target_says_so_and_how_to_open_a_new_session() {
        let stopped = NimbusError::conflict("target_stopped", "the sandbox is not running", json!({}));
        assert_remedy(&stopped, "fix_request", &["no longer running", "stopped", "`POST /api/sessions`"]);

        let closed = |reason: Option<&str>| {
            NimbusError::conflict("session_not_open", "session `s` is closed", json!({ "lifecycleState": "closed" }))
                .remedy(remediation::session_not_open(reason))
        };
        assert_remedy(
            &closed(Some("target_stopped")),
            "fix_request",
            &["its target stopped", "closeReason `target_stopped`", "`POST /api/sessions`"],
        );
        assert_remedy(
            &closed(Some("expired")),
            "fix_request",
            &["closeReason `expired`", "/renew", "`POST /api/sessions`"],
        );
        assert_remedy(&closed(Some("service_force_deleted")), "fix_request", &["`service_force_deleted`"]);
        // A caller's own close text is quoted, never taken for a system reason's explanation.
        assert_remedy(&closed(Some("done `here`")), "fix_request", &[r#"closeReason "done `here`""#, "/close"]);
        assert_remedy(&closed(None), "fix_request", &["no longer open", "`POST /api/sessions`"]);
    }

    #[test]
    fn an_unreachable_registry_points_to_the_import_route() {
        let refused = NimbusError::new(ErrorCode::SandboxImagePullFailed, "pull failed", None)
            .remedy(remediation::image_pull_unreachable("127.0.0.1:9", "127.0.0.1:9/app:1", true));
        let message = assert_remedy(
            &refused,
            "retry",
            &["`127.0.0.1:9` refused the connection", "`POST /api/images/import?reference=127.0.0.1:9/app:1`"],
        );
        assert!(message.contains("nimbus image import <file> --reference 127.0.0.1:9/app:1"), "{message}");
        assert!(!message.contains("backoff"), "{message}");
        let unresolved = remediation::image_pull_unreachable("registry.invalid", "registry.invalid/app:1", false);
        assert!(unresolved.message.contains("`registry.invalid` did not resolve"), "{unresolved:?}");
        let missing = NimbusError::new(ErrorCode::SandboxImageNotFound, "no image", None)
            .remedy(remediation::image_not_found("docker.io/library/nope:1"));
        assert_remedy(&missing, "fix_request", &["`docker.io/library/nope:1`", "`GET /api/images`"]);
    }

    #[test]
    fn not_found_errors_name_the_route_that_lists_what_exists() {
        let cases = [
            (NimbusError::not_found("sandbox", "sb-1"), "`GET /api/tenants/{tenant_id}/sandboxes`"),
            (NimbusError::not_found_named("service", "web"), "`GET /api/tenants/{tenant_id}/services`"),
            (NimbusError::not_found("session", "session-1"), "`GET /api/sessions?tenantId={tenant_id}`"),
            (NimbusError::not_found("process", "p-1"), "`GET /api/sessions/{session_id}/processes`"),
            (NimbusError::not_found("secret", "api_key"), "`GET /api/tenants/{tenant_id}/secrets`"),
            (NimbusError::not_found_named("cron", "nightly"), "`GET /api/tenants/{tenant_id}/crons`"),
            (NimbusError::not_found_path("file", "/tmp/x"), "`GET /api/sessions/{session_id}/files/list?path="),
            (NimbusError::document_not_found("items", "abc"), "`GET /api/tenants/{tenant_id}/documents/items`"),
            (NimbusError::document_not_found("", "abc"), "`GET /api/tenants/{tenant_id}/documents/{table}`"),
            (NimbusError::schema_not_found("items"), "`GET /api/tenants/{tenant_id}/schema`"),
            (NimbusError::scheduled_job_not_found("j1", None), "`GET /api/tenants/{tenant_id}/schedule`"),
            (NimbusError::function_not_found("messages:list"), "`GET /api/tenants/{tenant_id}/functions`"),
        ];
        for (error, route) in cases {
            assert_remedy(&error, "fix_request", &[route]);
            assert_eq!(error.http_status(), 404);
        }
        let schema = assert_remedy(&NimbusError::schema_not_found("items"), "fix_request", &[]);
        assert!(schema.contains("`PUT /api/tenants/{tenant_id}/schema/items`"), "{schema}");
        let finished = NimbusError::scheduled_job_not_found("j1", Some("completed"));
        assert_remedy(&finished, "fix_request", &["`completed`", "only a pending job can be cancelled"]);
        assert_eq!(finished.detail, Some(json!({ "jobId": "j1", "state": "completed" })));
    }

    #[test]
    fn precondition_caps_and_exhausted_resources_say_what_to_do() {
        let stale = NimbusError::precondition_failed(3, 5);
        assert_remedy(&stale, "refresh_resource", &["re-read", "current generation (5)"]);

        let cap = NimbusError::cap_exceeded("document_bytes", 2_000_000, 1_048_576);
        assert_remedy(&cap, "reduce_request", &["`document_bytes` may be at most 1048576", "reached 2000000"]);
        let secrets = NimbusError::cap_exceeded("tenant_secrets", 101, 100);
        assert_remedy(&secrets, "reduce_request", &["at most 100", "`DELETE /api/tenants/{tenant_id}/secrets/{name}`"]);

        let sandboxes = NimbusError::resource_exhausted("sandboxes", 16, Some(16));
        assert_remedy(&sandboxes, "wait_and_retry", &["active sandboxes", "(16)", "/stop`", "`DELETE /api/tenants"]);
        let cpu = NimbusError::resource_exhausted("cpu", 8, Some(8));
        assert_remedy(&cpu, "wait_and_retry", &["at most 8 CPUs", "Stop or delete sandboxes"]);
        let processes = NimbusError::resource_exhausted("processes", 64, Some(64));
        assert_remedy(&processes, "wait_and_retry", &["(64)", "/signal`"]);
        let sessions = NimbusError::resource_exhausted("sessions", 256, Some(256));
        assert_remedy(&sessions, "wait_and_retry", &["open sessions", "(256)", "/close`"]);
        let disk = NimbusError::resource_exhausted("data_dir_disk", 1, Some(0));
        assert_remedy(&disk, "wait_and_retry", &["`DELETE /api/images?reference=`"]);
    }

    #[test]
    fn conflicts_with_a_known_remedy_carry_it() {
        let conflict = |reason: &str| NimbusError::conflict(reason, "conflict", json!({}));
        assert_remedy(&conflict("service_active"), "fix_request", &["/stop`", "`force=true`"]);
        assert_remedy(&conflict("image_in_use"), "fix_request", &["`DELETE /api/tenants/{tenant_id}/sandboxes"]);
        assert_remedy(&conflict("target_not_ready"), "fix_request", &["?waitFor=ready"]);
        assert_remedy(&conflict("static_definition"), "contact_operator", &["operator"]);
        assert_remedy(&conflict("directory_not_empty"), "fix_request", &["recursive=true"]);
        assert_eq!(
            NimbusError::already_exists("tenant", "t").effective_remediation().map(|(a, _)| a),
            Some(Action::FixRequest)
        );
        assert_eq!(NimbusError::already_exists("document", "d").effective_remediation(), None);
    }

    #[test]
    fn remediations_hold_no_server_internals() {
        let errors = [
            NimbusError::tenant_not_found("t"),
            NimbusError::not_found("sandbox", "s"),
            NimbusError::not_found_path("file", "/etc/shadow"),
            NimbusError::resource_exhausted("data_dir_disk", 1, Some(0)),
            NimbusError::resource_exhausted("sandbox_id_ranges", 4, Some(4)),
            NimbusError::conflict("target_stopped", "m", json!({})),
        ];
        for error in errors {
            let (_, message) = remediation_of(&error).expect("a remediation");
            for internal in ["/etc/", "/var/", ".sqlite", "./data", "token", "/tmp/"] {
                assert!(!message.contains(internal), "{message:?} mentions {internal}");
            }
        }
    }
}

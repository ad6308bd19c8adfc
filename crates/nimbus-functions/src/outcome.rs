//! Turning what JavaScript produced into the call's answer: a JSON value, or the catalogued
//! error with the detail shapes of errors.md §3.7 (the last log lines in `detail.logs`).

use nimbus_core::limits::FUNCTION_MAX_RETURN_BYTES;
use nimbus_core::{ErrorCode, NimbusError};
use serde_json::{Map, Value, json};

use crate::config::Limits;
use crate::deployment::{FunctionInfo, Kind};
use crate::runtime::budget::Tripped;
use crate::runtime::isolate::{JsFailure, RawOutcome};
use crate::validator;

/// What the failing invocation was, for error details.
pub(crate) struct Failing<'a> {
    pub(crate) info: &'a FunctionInfo,
    pub(crate) logs: Vec<String>,
    pub(crate) call_path: &'a [String],
    pub(crate) limits: &'a Limits,
}

/// The call's value or error.
pub(crate) fn settle(raw: RawOutcome, failing: Failing<'_>) -> Result<Value, NimbusError> {
    let name = failing.info.name.as_str();
    let logs = || Value::from(failing.logs.clone());
    let text = match raw {
        Ok(text) => text,
        Err(JsFailure::Limit(limit)) => {
            let (which, budget) = match limit {
                Tripped::Cpu => ("cpu", failing.limits.cpu_for(failing.info.kind)),
                Tripped::Wall => ("wall", failing.limits.wall),
            };
            let ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
            return Err(NimbusError::new(
                ErrorCode::RuntimeExecutionTimeout,
                format!("function {name} ran past its {which} time limit of {ms} ms"),
                Some(json!({ "name": name, "limit": which, "limitMs": ms, "logs": logs() })),
            ));
        }
        Err(JsFailure::Memory) => {
            let bytes = failing.limits.memory_bytes;
            return Err(NimbusError::new(
                ErrorCode::RuntimeMemoryLimit,
                format!("function {name} ran out of its {bytes}-byte memory limit"),
                Some(json!({ "name": name, "limitBytes": bytes, "logs": logs() })),
            ));
        }
        Err(JsFailure::Stalled) => {
            return Err(NimbusError::new(
                ErrorCode::RuntimePromiseStalled,
                format!("function {name} returned a promise that nothing can settle"),
                Some(json!({ "name": name, "logs": logs() })),
            ));
        }
        Err(JsFailure::Exception { name: error_name, message, stack }) => {
            return Err(thrown(&failing, &error_name, &message, &stack, None, None));
        }
    };
    if text.len() > FUNCTION_MAX_RETURN_BYTES + 16 {
        return Err(NimbusError::cap_exceeded(
            "return_value_bytes",
            text.len() as u64,
            FUNCTION_MAX_RETURN_BYTES as u64,
        ));
    }
    let envelope: Value = serde_json::from_str(&text).map_err(|e| {
        tracing::error!(error = %e, "the prelude answered with malformed JSON");
        NimbusError::internal()
    })?;
    if let Some(value) = envelope.get("ok") {
        if let Some(returns) = &failing.info.returns
            && let Err(mismatch) = validator::check(returns, value, "returns")
        {
            let reason = format!("the return value does not match `returns`: {} at {}", mismatch.reason, mismatch.path);
            return Err(thrown(&failing, "Error", &reason, "", None, Some("returns")));
        }
        return Ok(value.clone());
    }
    let err = envelope.get("err").and_then(Value::as_object).cloned().unwrap_or_default();
    let field = |key: &str| err.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    if let Some(code) = err.get("code").and_then(Value::as_str).and_then(ErrorCode::from_code) {
        let detail = err.get("detail").cloned().filter(|d| !d.is_null());
        return Err(NimbusError::new(code, field("message"), detail));
    }
    let data = err.get("data").cloned();
    Err(thrown(&failing, &field("errorName"), &field("message"), &field("stack"), data, None))
}

/// 422 `function.thrown`.
fn thrown(
    failing: &Failing<'_>,
    error_name: &str,
    message: &str,
    stack: &str,
    data: Option<Value>,
    reason: Option<&str>,
) -> NimbusError {
    let name = failing.info.name.as_str();
    let mut detail = Map::new();
    detail.insert("name".into(), name.into());
    detail.insert("errorName".into(), if error_name.is_empty() { "Error" } else { error_name }.into());
    detail.insert("message".into(), message.into());
    detail.insert("stack".into(), stack.into());
    if let Some(data) = data {
        detail.insert("data".into(), data);
    }
    detail.insert("logs".into(), failing.logs.clone().into());
    if failing.call_path.len() > 1 {
        detail.insert("callPath".into(), failing.call_path.to_vec().into());
    }
    if let Some(reason) = reason {
        detail.insert("reason".into(), reason.into());
    }
    NimbusError::new(
        ErrorCode::FunctionThrown,
        format!("function {name} threw: {message}"),
        Some(Value::Object(detail)),
    )
}

/// 400 `function.invalid_args`, or `None` when `args` pass the function's validator.
pub(crate) fn check_args(info: &FunctionInfo, args: &Value) -> Result<(), NimbusError> {
    let invalid = |path: &str, reason: &str| {
        NimbusError::new(
            ErrorCode::FunctionInvalidArgs,
            format!("invalid args for {}: {reason} at {path}", info.name),
            Some(json!({ "name": info.name, "path": path, "reason": reason })),
        )
    };
    if !args.is_object() {
        return Err(invalid("args", "args must be a JSON object"));
    }
    match &info.args {
        Some(desc) => validator::check(desc, args, "args").map_err(|m| invalid(&m.path, &m.reason)),
        None => Ok(()),
    }
}

/// 403 `auth.forbidden` for an internal function called from outside.
pub(crate) fn internal_forbidden(name: &str) -> NimbusError {
    NimbusError::new(
        ErrorCode::AuthForbidden,
        format!("function {name} is internal: only other functions and the scheduler can call it"),
        Some(json!({ "name": name, "visibility": "internal" })),
    )
}

/// 400 `op.invalid_input` when a function of the wrong kind is named (`reason` names the kind).
pub(crate) fn wrong_kind(name: &str, kind: Kind, expected: &str) -> NimbusError {
    NimbusError::new(
        ErrorCode::OpInvalidInput,
        format!("function {name} is {}, not {expected}", kind.with_article()),
        Some(json!({ "field": "name", "reason": format!("{name} is {}", kind.with_article()) })),
    )
}

//! The `nimbus.v2` WebSocket frames of `/ws` and `/convex/{t}/ws` (realtime.md §2–§4,
//! functions.md §10): the client frames as parsed messages, and the server frames as JSON text.

use nimbus_core::ids::mint_request_id;
use nimbus_core::time::now_ms;
use nimbus_core::{ErrorCode, NimbusError};
use serde_json::{Value, json};

use crate::envelope::envelope_json;

/// The one subprotocol `/ws` speaks.
pub const PROTOCOL: &str = "nimbus.v2";

/// Longest client-chosen `request_id` (realtime.md §3).
const MAX_REQUEST_ID_CHARS: usize = 128;

/// The `hello` frame sent right after the upgrade.
pub fn hello(session: u64) -> String {
    json!({
        "type": "hello",
        "protocol": PROTOCOL,
        "server": { "version": env!("CARGO_PKG_VERSION"), "build": "unknown" },
        "features": ["queries.v1", "subscriptions.v1", "functions.v1", "heartbeat.v1"],
        "session": { "id": format!("ws-session-{session}"), "serverNow": now_ms() },
    })
    .to_string()
}

/// Checks the first client frame; a violation is the fatal error to close with.
pub fn check_client_hello(text: &str) -> Result<(), NimbusError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| NimbusError::new(ErrorCode::ProtocolInvalidJson, "the frame is not JSON", None))?;
    let received = value.get("type").and_then(Value::as_str);
    if received != Some("client_hello") {
        let received_type = match value.get("type") {
            Some(Value::String(s)) => Value::from(s.as_str()),
            Some(other) => Value::from(other.to_string()),
            None => Value::Null,
        };
        return Err(NimbusError::new(
            ErrorCode::ProtocolUnsupportedMessageType,
            "the first frame must be client_hello",
            Some(json!({ "receivedType": received_type, "expectedType": "client_hello" })),
        ));
    }
    let protocol = value.get("protocol").and_then(Value::as_str);
    if protocol != Some(PROTOCOL) {
        let received = value.get("protocol").cloned().unwrap_or(Value::Null);
        return Err(NimbusError::new(
            ErrorCode::ProtocolUnsupportedVersion,
            format!("only {PROTOCOL} is supported"),
            Some(json!({ "receivedProtocol": received })),
        ));
    }
    Ok(())
}

/// The token of the frame a socket upgraded without a credential must send first, in the shape
/// of Convex's client: `{"type": "Authenticate", "tokenType": "Admin", "value": "<token>",
/// "baseVersion": 0}` (`baseVersion` and other fields are ignored). Anything else is the fatal
/// `auth.unauthorized` to close with: `unsupported_token_type` for an `Authenticate` frame with
/// another `tokenType` than `Admin` (or `None`), else `missing_credential`.
pub fn parse_authenticate(text: &str) -> Result<String, NimbusError> {
    let missing = || NimbusError::unauthorized("missing_credential");
    let value: Value = serde_json::from_str(text).map_err(|_| missing())?;
    if value.get("type").and_then(Value::as_str) != Some("Authenticate") {
        return Err(missing());
    }
    match value.get("tokenType").and_then(Value::as_str) {
        Some("Admin") => value.get("value").and_then(Value::as_str).map(str::to_owned).ok_or_else(missing),
        None | Some("None") => Err(missing()),
        Some(_) => Err(NimbusError::unauthorized("unsupported_token_type")),
    }
}

/// `auth.unauthorized` when no `Authenticate` frame arrived in time.
pub fn authenticate_timeout() -> NimbusError {
    NimbusError::unauthorized("authenticate_timeout")
}

/// `protocol.hello_timeout`.
pub fn hello_timeout(timeout_ms: u64) -> NimbusError {
    NimbusError::new(
        ErrorCode::ProtocolHelloTimeout,
        "no client_hello arrived in time",
        Some(json!({ "timeoutMs": timeout_ms })),
    )
}

/// `protocol.unsupported_binary`.
pub fn unsupported_binary() -> NimbusError {
    NimbusError::new(ErrorCode::ProtocolUnsupportedBinary, "frames are JSON text", None)
}

/// Which client frames a socket accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `GET /ws`: the frames of realtime.md §3.
    Native,
    /// `GET /convex/{t}/ws` (functions.md §10): also `subscribe_named`, a function subscription.
    Deployment,
}

/// A decoded client frame after the handshake.
#[derive(Debug)]
pub enum ClientFrame {
    /// `subscribe`: the request id and what to subscribe to.
    Subscribe {
        /// The client's `request_id`.
        request_id: String,
        /// `query` or `function` (exactly one), or why not.
        target: Result<SubscribeTarget, NimbusError>,
    },
    /// `unsubscribe`.
    Unsubscribe {
        /// The server-assigned id.
        subscription_id: u64,
    },
    /// `authenticate`, or `Authenticate` after the handshake (unsupported: a socket
    /// authenticates once, at its upgrade or with its first frame).
    Authenticate,
    /// `clear_auth`.
    ClearAuth,
    /// `ping` **(ours)**.
    Ping,
}

/// What a `subscribe` names.
#[derive(Debug)]
pub enum SubscribeTarget {
    /// A query, as JSON (validated by the caller).
    Query(Value),
    /// A query function's name and args (default `{}`).
    Function(String, Value),
}

/// A session-scoped `protocol.invalid_json` with a reason **(ours)**.
pub fn invalid_frame(reason: impl Into<String>) -> NimbusError {
    let reason = reason.into();
    NimbusError::new(
        ErrorCode::ProtocolInvalidJson,
        format!("the frame cannot be decoded: {reason}"),
        Some(json!({ "reason": reason })),
    )
}

/// Decodes a client frame; an undecodable one is a session-scoped `protocol.invalid_json`.
pub fn parse_client_frame(text: &str, dialect: Dialect) -> Result<ClientFrame, NimbusError> {
    let value: Value = serde_json::from_str(text).map_err(|e| invalid_frame(format!("not JSON: {e}")))?;
    let Value::Object(frame) = value else { return Err(invalid_frame("a frame must be a JSON object")) };
    let kind = frame.get("type").and_then(Value::as_str).ok_or_else(|| invalid_frame("missing string field type"))?;
    match kind {
        "subscribe" => {
            let request_id = request_id(&frame)?;
            let query = frame.get("query").filter(|v| !v.is_null());
            let function = frame.get("function").filter(|v| !v.is_null());
            let target = match (query, function) {
                (Some(query), None) => Ok(SubscribeTarget::Query(query.clone())),
                (None, Some(function)) => function_target(function, "function.name"),
                _ => Err(NimbusError::invalid_input("query", "a subscribe carries exactly one of query or function")),
            };
            Ok(ClientFrame::Subscribe { request_id, target })
        }
        // `{"type": "subscribe_named", "request_id", "name", "args"}` = a `function` subscribe.
        "subscribe_named" if dialect == Dialect::Deployment => {
            let request_id = request_id(&frame)?;
            let target = function_target(&Value::Object(frame), "name");
            Ok(ClientFrame::Subscribe { request_id, target })
        }
        "unsubscribe" => match frame.get("subscription_id").and_then(Value::as_u64) {
            Some(subscription_id) => Ok(ClientFrame::Unsubscribe { subscription_id }),
            None => Err(invalid_frame("subscription_id must be a non-negative integer")),
        },
        "authenticate" | "Authenticate" => Ok(ClientFrame::Authenticate),
        "clear_auth" => Ok(ClientFrame::ClearAuth),
        "ping" => Ok(ClientFrame::Ping),
        other => Err(invalid_frame(format!("unknown message type {other:?}"))),
    }
}

/// A subscribe frame's `request_id`: a string of 1 to 128 characters.
fn request_id(frame: &serde_json::Map<String, Value>) -> Result<String, NimbusError> {
    match frame.get("request_id") {
        Some(Value::String(id)) if (1..=MAX_REQUEST_ID_CHARS).contains(&id.chars().count()) => Ok(id.clone()),
        _ => Err(invalid_frame("request_id must be a string of 1 to 128 characters")),
    }
}

/// A function subscription from an object with `name` (reported as `field` when missing) and
/// optional `args` (default `{}`).
fn function_target(function: &Value, field: &str) -> Result<SubscribeTarget, NimbusError> {
    match function.get("name").and_then(Value::as_str) {
        Some(name) => {
            let args = function.get("args").filter(|a| !a.is_null()).cloned().unwrap_or_else(|| json!({}));
            Ok(SubscribeTarget::Function(name.to_owned(), args))
        }
        None => Err(NimbusError::invalid_input(field, "must be a string")),
    }
}

/// A `subscription_result` frame; `request_id` only on a subscription's first result. `data` is
/// the already rendered JSON array of documents.
pub fn subscription_result(subscription_id: u64, request_id: Option<&str>, data: &str) -> String {
    let request_id = match request_id {
        Some(id) => format!(",\"request_id\":{}", Value::from(id)),
        None => String::new(),
    };
    format!("{{\"type\":\"subscription_result\",\"subscription_id\":{subscription_id}{request_id},\"data\":{data}}}")
}

/// An `op.error` frame: a request failed; the embedded `requestId` is the client's.
pub fn op_error(request_id: &str, error: &NimbusError) -> String {
    json!({ "type": "op.error", "id": request_id, "error": envelope_json(error, request_id) }).to_string()
}

/// An `error` frame: a session-scoped, non-fatal problem.
pub fn session_error(error: &NimbusError) -> String {
    json!({ "type": "error", "error": envelope_json(error, &mint_request_id()) }).to_string()
}

/// A `fatal_error` frame: the server is about to close the socket.
pub fn fatal_error(error: &NimbusError) -> String {
    json!({ "type": "fatal_error", "error": envelope_json(error, &mint_request_id()) }).to_string()
}

/// `session.unsubscribe_failed`.
pub fn unsubscribe_failed(subscription_id: u64) -> NimbusError {
    NimbusError::new(
        ErrorCode::SessionUnsubscribeFailed,
        format!("there is no subscription {subscription_id}"),
        Some(json!({ "subscriptionId": subscription_id })),
    )
}

/// `session.subscription_error` for a subscription that failed or was removed.
pub fn subscription_error(
    subscription_id: u64,
    dropped: bool,
    reason: &str,
    cause: Option<&NimbusError>,
) -> NimbusError {
    let mut detail = json!({ "subscriptionId": subscription_id, "dropped": dropped, "reason": reason });
    if let Some(cause) = cause {
        detail["cause"] = envelope_json(cause, &mint_request_id());
    }
    NimbusError::new(
        ErrorCode::SessionSubscriptionError,
        format!("subscription {subscription_id}: {reason}"),
        Some(detail),
    )
}

/// `auth.unauthorized` for an `authenticate` frame.
pub fn authenticate_unsupported() -> NimbusError {
    NimbusError::unauthorized("authenticate_unsupported")
}

/// The answer to `clear_auth`.
pub fn authenticated_false() -> String {
    json!({ "type": "authenticated", "is_authenticated": false }).to_string()
}

/// The answer to `ping`.
pub fn pong() -> String {
    json!({ "type": "pong" }).to_string()
}

/// `function.not_found` (no functions exist in this build).
pub fn function_not_found(name: &str) -> NimbusError {
    NimbusError::new(ErrorCode::FunctionNotFound, format!("no function {name:?}"), Some(json!({ "name": name })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        let error = parse_authenticate(text).expect_err("refused");
        assert_eq!(error.code, ErrorCode::AuthUnauthorized);
        error.detail.as_ref().and_then(|d| d["reason"].as_str()).unwrap_or_default().to_owned()
    }

    #[test]
    fn the_authenticate_frame_has_convex_clients_shape() {
        let frame = json!({ "type": "Authenticate", "tokenType": "Admin", "value": "nimbus_at_x", "baseVersion": 0 });
        assert_eq!(parse_authenticate(&frame.to_string()).expect("token"), "nimbus_at_x");
        let without_version = json!({ "type": "Authenticate", "tokenType": "Admin", "value": "t" });
        assert_eq!(parse_authenticate(&without_version.to_string()).expect("token"), "t");
        for other in [
            "not json".to_owned(),
            json!({ "type": "client_hello", "protocol": "nimbus.v2" }).to_string(),
            json!({ "type": "authenticate", "token": "t" }).to_string(),
            json!({ "type": "Authenticate", "value": "t" }).to_string(),
            json!({ "type": "Authenticate", "tokenType": "None", "baseVersion": 0 }).to_string(),
            json!({ "type": "Authenticate", "tokenType": "Admin", "value": 7 }).to_string(),
        ] {
            assert_eq!(reason(&other), "missing_credential", "{other}");
        }
        let user = json!({ "type": "Authenticate", "tokenType": "User", "value": "jwt", "baseVersion": 0 });
        assert_eq!(reason(&user.to_string()), "unsupported_token_type");
    }

    #[test]
    fn authenticate_after_the_handshake_is_unsupported_in_both_spellings() {
        for kind in ["authenticate", "Authenticate"] {
            let frame = json!({ "type": kind, "tokenType": "Admin", "value": "t" }).to_string();
            assert!(matches!(parse_client_frame(&frame, Dialect::Native), Ok(ClientFrame::Authenticate)));
        }
    }
}

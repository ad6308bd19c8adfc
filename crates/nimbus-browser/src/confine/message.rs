//! The DevTools messages the confinement reads and writes: a client's command parsed strictly
//! (and always re-serialised, so Chromium only ever reads what the rules checked), a light look
//! at a Chromium message, and the replies the proxy writes itself.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Number, Value, json};

/// A client's command: the only four fields Chromium reads from a message.
#[derive(Debug, Clone)]
pub(super) struct Command {
    /// The client's id, echoed back exactly in the reply.
    pub id: Number,
    pub method: String,
    /// The flat DevTools session the command is for; `None` is the browser session.
    pub session_id: Option<String>,
    pub params: Map<String, Value>,
}

/// Why a client's message is not a command; each is answered as Chromium answers it.
#[derive(Debug)]
pub(super) enum Malformed {
    NotJson,
    NoId,
    NoMethod(Number),
    BadSessionId(Number),
    BadParams(Number),
}

impl Command {
    /// Parses a client's text message. Any top-level field beyond Chromium's four is dropped
    /// when the command is re-serialised.
    pub fn parse(text: &str) -> Result<Command, Malformed> {
        let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
            return Err(Malformed::NotJson);
        };
        let id = match message.remove("id") {
            Some(Value::Number(id)) if id.is_i64() || id.is_u64() => id,
            _ => return Err(Malformed::NoId),
        };
        let method = match message.remove("method") {
            Some(Value::String(method)) => method,
            _ => return Err(Malformed::NoMethod(id)),
        };
        let session_id = match message.remove("sessionId") {
            None => None,
            Some(Value::String(session)) => Some(session),
            Some(_) => return Err(Malformed::BadSessionId(id)),
        };
        let params = match message.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params,
            Some(_) => return Err(Malformed::BadParams(id)),
        };
        Ok(Command { id, method, session_id, params })
    }

    /// The command as sent to Chromium, under the proxy's id.
    pub fn to_chromium(&self, proxy_id: u32) -> String {
        let mut message = Map::new();
        message.insert("id".into(), proxy_id.into());
        message.insert("method".into(), Value::String(self.method.clone()));
        message.insert("params".into(), Value::Object(self.params.clone()));
        if let Some(session) = &self.session_id {
            message.insert("sessionId".into(), Value::String(session.clone()));
        }
        Value::Object(message).to_string()
    }

    /// A string parameter, if present and a string.
    pub fn str_param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    /// The `(domain, name)` halves of the method (`Target.createTarget` → `Target`,
    /// `createTarget`); `None` for a method without a dot.
    pub fn domain_and_name(&self) -> Option<(&str, &str)> {
        self.method.split_once('.')
    }
}

impl Malformed {
    /// Chromium's own answer to such a message (its wording, so clients see what they would
    /// see without the proxy).
    pub fn reply(&self) -> String {
        match self {
            Malformed::NotJson => error_without_id(-32700, "Message must be in JSON format"),
            Malformed::NoId => error_without_id(-32600, "Message must have integer 'id' property"),
            Malformed::NoMethod(id) => error_reply(id, -32600, "Message must have string 'method' property"),
            Malformed::BadSessionId(id) => error_reply(id, -32600, "Message must have string 'sessionId' property"),
            Malformed::BadParams(id) => error_reply(id, -32602, "Invalid parameters: 'params' must be an object"),
        }
    }
}

/// The DevTools error Chromium uses for a refused operation (`-32000`, "server error").
pub(super) const NOT_ALLOWED_CODE: i64 = -32000;

/// A refusal: `{"id": <client id>, "error": {"code": -32000, "message": "Not allowed: …"}}`.
pub(super) fn not_allowed(id: &Number, why: &str) -> String {
    error_reply(id, NOT_ALLOWED_CODE, &format!("Not allowed: {why}"))
}

/// A successful reply with the given result.
pub(super) fn result_reply(id: &Number, result: Value) -> String {
    json!({ "id": id, "result": result }).to_string()
}

fn error_reply(id: &Number, code: i64, message: &str) -> String {
    json!({ "id": id, "error": { "code": code, "message": message } }).to_string()
}

fn error_without_id(code: i64, message: &str) -> String {
    json!({ "error": { "code": code, "message": message } }).to_string()
}

/// A command the proxy sends on its own account.
pub(super) fn own_command(proxy_id: u32, method: &str, params: Value, session_id: Option<&str>) -> String {
    let mut message = json!({ "id": proxy_id, "method": method, "params": params });
    if let (Some(session), Value::Object(fields)) = (session_id, &mut message) {
        fields.insert("sessionId".into(), Value::String(session.to_owned()));
    }
    message.to_string()
}

/// The routing fields of a Chromium message, read without building the rest of it (an event
/// on a page session, a screenshot's data, is passed on as it came).
#[derive(Debug, Deserialize)]
pub(super) struct Peek<'a> {
    /// Present on replies. Not a `u32`: Chromium's ids are ours, but a bad one must not make
    /// the whole message unreadable.
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default, borrow)]
    pub method: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "sessionId")]
    pub session_id: Option<Cow<'a, str>>,
}

impl<'a> Peek<'a> {
    /// Reads the routing fields; `None` when the text is not a JSON object with them well typed.
    pub fn read(text: &'a str) -> Option<Peek<'a>> {
        serde_json::from_str(text).ok()
    }
}

/// A target's context as a `TargetInfo` object names it.
pub(super) fn context_of(target_info: &Value) -> Option<&str> {
    target_info.get("browserContextId").and_then(Value::as_str)
}

/// A target's id as a `TargetInfo` object names it.
pub(super) fn target_id_of(target_info: &Value) -> Option<&str> {
    target_info.get("targetId").and_then(Value::as_str)
}

/// A target's type as a `TargetInfo` object names it.
pub(super) fn type_of(target_info: &Value) -> Option<&str> {
    target_info.get("type").and_then(Value::as_str)
}

/// The browser target itself (Puppeteer finds `browser.target()` among the targets): shown to
/// the client, but never attachable through the proxy.
pub(super) fn is_browser_target(target_info: &Value) -> bool {
    type_of(target_info) == Some("browser") && context_of(target_info).is_none()
}

//! Wire shapes of the session routes (sessions.md): the strict request bodies, the `Session`
//! resource and its collection, `Process`, the waited exec's answer, and stream frames (shared
//! by NDJSON streams and WebSocket attachments).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use nimbus_browser::context::{StorageState, Viewport};
use nimbus_compute::session::{
    Channel, EndReason, ExecRequest, ExecResult, Opened, SessionPage, SessionRecord, StreamItem, TargetRef,
    TargetSnapshot, signal_name,
};
use nimbus_core::NimbusError;
use nimbus_core::time::{now_ms, rfc3339_ms};
use nimbus_sandbox::backend::{Frame, OutputStream, ProcessInfo};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /api/sessions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenSessionBody {
    /// Owning tenant (required; checked first).
    pub tenant_id: Option<String>,
    /// Exactly one of `service` / `sandbox`.
    pub target: Option<TargetBody>,
    /// Channel names.
    pub channels: Option<Vec<String>>,
    /// Requested lease.
    pub requested_ttl_ms: Option<i64>,
    /// The browser context's defaults (ours; sessions on a browser service only).
    pub browser: Option<BrowserSessionBody>,
}

/// `browser` of an open request (docs/browser.md).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BrowserSessionBody {
    /// The default viewport of the session's pages (1280×720 when absent).
    pub viewport: Option<Viewport>,
    /// Cookies and local storage to restore (Playwright's `storageState` shape).
    pub storage_state: Option<StorageState>,
}

/// `target` of an open request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetBody {
    /// `{"name"}`.
    pub service: Option<ServiceTargetBody>,
    /// `{"id"}`.
    pub sandbox: Option<SandboxTargetBody>,
}

/// `target.service`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceTargetBody {
    /// Service name.
    pub name: String,
}

/// `target.sandbox`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SandboxTargetBody {
    /// Sandbox id.
    pub id: String,
}

/// What an open request targets, by name (resolution is the route's).
pub enum TargetName {
    /// A sandbox id.
    Sandbox(String),
    /// A service name.
    Service(String),
}

impl TargetBody {
    /// Exactly one of the two (400 otherwise).
    pub fn into_name(self) -> Result<TargetName, NimbusError> {
        match (self.service, self.sandbox) {
            (Some(service), None) if !service.name.is_empty() => Ok(TargetName::Service(service.name)),
            (None, Some(sandbox)) if !sandbox.id.is_empty() => Ok(TargetName::Sandbox(sandbox.id)),
            (Some(_), None) => Err(NimbusError::invalid_input("target.service.name", "must not be empty")),
            (None, Some(_)) => Err(NimbusError::invalid_input("target.sandbox.id", "must not be empty")),
            _ => Err(NimbusError::invalid_input("target", "must hold exactly one of `service` and `sandbox`")),
        }
    }
}

/// `POST …/close`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloseBody {
    /// Caller's reason.
    pub reason: Option<String>,
}

/// `POST …/renew`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RenewBody {
    /// Requested lease from now.
    pub requested_ttl_ms: Option<i64>,
}

/// `POST …/input` (channels and processes).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InputBody {
    /// Text, or base64 with `encoding`.
    pub data: Option<String>,
    /// `"base64"`.
    pub encoding: Option<String>,
    /// Close stdin after `data`.
    pub eof: Option<bool>,
}

impl InputBody {
    /// The bytes to write and whether to close stdin after them.
    pub fn decode(self) -> Result<(Vec<u8>, bool), NimbusError> {
        let eof = self.eof.unwrap_or(false);
        if self.data.is_none() && !eof {
            return Err(NimbusError::invalid_input("data", "is required unless `eof` is true"));
        }
        Ok((decode_data(self.data.unwrap_or_default(), self.encoding.as_deref())?, eof))
    }
}

fn decode_data(data: String, encoding: Option<&str>) -> Result<Vec<u8>, NimbusError> {
    match encoding {
        None | Some("utf-8" | "utf8") => Ok(data.into_bytes()),
        Some("base64") => STANDARD.decode(data).map_err(|_| NimbusError::invalid_input("data", "is not valid base64")),
        Some(_) => Err(NimbusError::invalid_input("encoding", "must be \"base64\"")),
    }
}

/// `POST …/resize`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResizeBody {
    /// Columns, 1..1000.
    pub cols: u64,
    /// Rows, 1..1000.
    pub rows: u64,
}

/// `POST …/processes/{pid}/signal`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignalBody {
    /// `SIGINT`, `INT`, ...
    pub signal: String,
}

/// `POST …/exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecBody {
    argv: Vec<String>,
    env: Option<Vec<String>>,
    cwd: Option<String>,
    user: Option<String>,
    tty: Option<bool>,
    cols: Option<u64>,
    rows: Option<u64>,
    timeout_ms: Option<u64>,
    stdin: Option<String>,
}

impl ExecBody {
    /// The control plane's request.
    pub fn into_request(self) -> ExecRequest {
        ExecRequest {
            argv: self.argv,
            env: self.env.unwrap_or_default(),
            cwd: self.cwd,
            user: self.user,
            tty: self.tty.unwrap_or(false),
            cols: self.cols,
            rows: self.rows,
            timeout_ms: self.timeout_ms,
            stdin: self.stdin.map(String::into_bytes),
        }
    }
}

/// A WebSocket client message (sessions.md §9).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "camelCase")]
pub enum ClientMessage {
    /// Input to the attached process.
    Input {
        /// Text, or base64 with `encoding`.
        data: String,
        /// `"base64"`.
        encoding: Option<String>,
    },
    /// Close the attached process's stdin.
    Eof,
    /// Resize its pty.
    Resize {
        /// Columns.
        cols: u64,
        /// Rows.
        rows: u64,
    },
}

impl ClientMessage {
    /// Decodes input data.
    pub fn input_bytes(data: String, encoding: Option<&str>) -> Result<Vec<u8>, NimbusError> {
        decode_data(data, encoding)
    }
}

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::from(rfc3339_ms(ms)))
}

fn time_u64(ms: Option<u64>) -> Value {
    time(ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)))
}

/// The `Session` resource (sessions.md §3).
pub fn session_json(record: &SessionRecord) -> Value {
    let target = match &record.target {
        TargetRef::Sandbox { id } => json!({ "sandbox": { "id": id } }),
        TargetRef::Service { name } => json!({ "service": { "name": name } }),
    };
    let snapshot = match &record.snapshot {
        TargetSnapshot::Sandbox { id, generation, profile, backend } => {
            json!({ "sandbox": { "id": id, "generation": generation, "profile": profile, "backend": backend } })
        }
        TargetSnapshot::Service { name, generation, backend, provider, sandbox_id } => {
            let mut service = json!({ "name": name, "generation": generation, "backend": backend.as_str() });
            if let Some(provider) = provider {
                service["provider"] = provider.clone().into();
            }
            if let Some(sandbox_id) = sandbox_id {
                service["sandboxId"] = sandbox_id.clone().into();
            }
            json!({ "service": service })
        }
    };
    let expires_at = rfc3339_ms(record.expires_at_ms);
    let (condition_status, condition_reason, message) = match &record.ending {
        None => ("True", "LeaseActive", format!("session `{}` is open", record.id)),
        Some(ending) => (
            "False",
            ending.condition_reason(),
            format!("session `{}` is {}: {}", record.id, record.state.as_str(), ending.close_reason()),
        ),
    };
    let mut status = json!({
        "lifecycleState": record.state.as_str(),
        "expiresAt": expires_at,
        "conditions": [{
            "type": "Open",
            "status": condition_status,
            "reason": condition_reason,
            "message": message,
            "observedGeneration": record.generation,
            "lastTransitionTime": rfc3339_ms(record.transition_at_ms),
        }],
    });
    if let Some(at) = record.closed_at_ms {
        status["closedAt"] = rfc3339_ms(at).into();
    }
    if let Some(ending) = &record.ending {
        status["closeReason"] = ending.close_reason().into();
    }
    json!({
        "metadata": {
            "tenantId": record.tenant_id,
            "id": record.id,
            "generation": record.generation,
            "resourceVersion": format!("session-v{}", record.generation),
            "createdAt": rfc3339_ms(record.created_at_ms),
            "updatedAt": rfc3339_ms(record.updated_at_ms),
        },
        "spec": {
            "target": target,
            "targetSnapshot": snapshot,
            "channels": record.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "expiresAt": expires_at,
        },
        "status": status,
    })
}

/// A `SessionCollection` page.
pub fn collection_json(tenant: &str, page: &SessionPage, limit: usize) -> Value {
    let mut metadata = json!({
        "tenantId": tenant,
        "resourceVersion": format!("sessions:{tenant}:{}", page.version),
        "limit": limit,
        "remainingCount": page.remaining,
    });
    if page.remaining > 0
        && let Some(last) = page.items.last()
    {
        metadata["nextPageToken"] = last.id.clone().into();
    }
    json!({ "metadata": metadata, "items": page.items.iter().map(session_json).collect::<Vec<_>>() })
}

/// The `Process` resource (sessions.md §7): every field present, `null` until known.
pub fn process_json(process: &ProcessInfo) -> Value {
    json!({
        "processId": process.process_id,
        "state": if process.finished_at_ms.is_some() { "exited" } else { "running" },
        "tty": process.tty,
        "startedAt": time_u64(Some(process.started_at_ms)),
        "finishedAt": time_u64(process.finished_at_ms),
        "exitCode": process.exit_code,
        "signal": process.signal.map(signal_name),
        "timedOut": process.timed_out,
    })
}

/// The answer of `POST …/exec?wait=true`.
pub fn exec_result_json(result: &ExecResult) -> Value {
    json!({
        "processId": result.process_id,
        "exitCode": result.exit_code,
        "signal": result.signal.map(signal_name),
        "timedOut": result.timed_out,
        "durationMs": result.duration_ms,
        "stdout": String::from_utf8_lossy(&result.stdout),
        "stderr": String::from_utf8_lossy(&result.stderr),
        "truncated": result.truncated,
    })
}

/// The first frame of a stream.
pub fn opened_json(opened: &Opened) -> Value {
    let mut frame = json!({
        "kind": "opened",
        "channel": opened.channel.as_str(),
        "targetGeneration": opened.target_generation,
    });
    if let Some(pid) = &opened.process_id {
        frame["processId"] = pid.clone().into();
    }
    frame
}

/// A stream item as its frame. Process streams carry `signal` and `timedOut` in `exit`.
pub fn item_json(item: &StreamItem, process: bool) -> Value {
    match item {
        StreamItem::Frame(Frame::Output { stream, data, replay, .. }) => {
            let kind = match stream {
                OutputStream::Stdout => "stdout",
                OutputStream::Stderr => "stderr",
            };
            let mut frame = match std::str::from_utf8(data) {
                Ok(text) => json!({ "kind": kind, "data": text }),
                Err(_) => json!({ "kind": kind, "data": STANDARD.encode(data), "encoding": "base64" }),
            };
            if *replay {
                frame["replay"] = true.into();
            }
            frame
        }
        StreamItem::Frame(Frame::Exit { code, signal, timed_out }) => {
            if process {
                json!({ "kind": "exit", "code": code, "signal": signal.map(signal_name), "timedOut": timed_out })
            } else {
                json!({ "kind": "exit", "code": code.or(signal.map(|s| 128 + s)) })
            }
        }
        StreamItem::Closed(reason) => closed_json(*reason),
    }
}

/// The last frame of a stream.
pub fn closed_json(reason: EndReason) -> Value {
    json!({ "kind": "closed", "reason": reason.as_str() })
}

/// A heartbeat frame.
pub fn heartbeat_json() -> Value {
    json!({ "kind": "heartbeat", "time": rfc3339_ms(now_ms()) })
}

/// Parses a `{channel}` path segment.
pub fn channel(raw: &str) -> Result<Channel, NimbusError> {
    Channel::parse(raw)
        .ok_or_else(|| NimbusError::invalid_input("channel", "must be one of stdio, exec, files, cdp, page"))
}

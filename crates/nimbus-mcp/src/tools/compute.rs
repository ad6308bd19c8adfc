//! The compute tools: sandboxes' lifecycle and logs, and, through a session opened for the call
//! and closed after it, `sandbox_exec` and the sandbox files tools.

use std::collections::BTreeMap;
use std::future::Future;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nimbus_core::NimbusError;
use nimbus_core::limits::{EXEC_WAIT_DEFAULT_TIMEOUT_MS, MCP_LOGS_DEFAULT_TAIL, MCP_OUTPUT_MAX_BYTES};
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::data::{tenant_path, without_nulls};
use crate::backend::{Backend, Body, Method, query, segment};
use crate::error::ToolError;
use crate::server::NimbusMcp;

/// How much longer than its command's timeout the session of a `sandbox_exec` is leased for.
const SESSION_TTL_MARGIN_MS: u64 = 60_000;

// ---------------------------------------------------------------------------------------------
// Inputs

/// A sandbox to create.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateInput {
    /// The tenant id.
    pub tenant: String,
    /// The OCI image reference (`busybox:1.36`, `docker.io/library/python:3.12`); the local
    /// store is used first, a missing image is pulled.
    pub image: String,
    /// The exact command line (default: the image's Entrypoint and Cmd).
    pub command: Option<Vec<String>>,
    /// `KEY=VALUE` strings laid over the image's environment.
    pub env: Option<Vec<String>>,
    /// Working directory (default: the image's).
    pub cwd: Option<String>,
    /// A name the sandbox id starts with (`agent-task` → `agent-task-…`).
    pub display_name: Option<String>,
    /// Labels to find it by (`sandboxes_list` filters on one).
    pub labels: Option<BTreeMap<String, String>>,
    /// CPUs, 1 to 4 (default 1).
    pub cpus: Option<u32>,
    /// Memory limit in bytes, 16 MiB to 4 GiB (default 512 MiB).
    pub memory_bytes: Option<u64>,
    /// Most processes, 8 to 4096 (default 256).
    pub pids_limit: Option<u32>,
    /// Size of its writable file system in bytes, 64 MiB to 64 GiB (default 4 GiB).
    pub disk_bytes: Option<u64>,
}

/// One sandbox.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SandboxInput {
    /// The tenant id.
    pub tenant: String,
    /// The sandbox id.
    pub id: String,
}

/// Sandboxes to list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    /// The tenant id.
    pub tenant: String,
    /// Only this state: `starting`, `ready`, `stopping`, `stopped` or `failed`.
    pub status: Option<String>,
    /// Only sandboxes with this label (with `labelValue`, that value).
    pub label_key: Option<String>,
    /// The label's value.
    pub label_value: Option<String>,
    /// Sandboxes per page.
    pub limit: Option<u32>,
    /// The `nextPageToken` of the previous page.
    pub page_token: Option<String>,
}

/// A sandbox to stop.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopInput {
    /// The tenant id.
    pub tenant: String,
    /// The sandbox id.
    pub id: String,
    /// Time between SIGTERM and SIGKILL, in ms (default 10 s).
    pub grace_period_ms: Option<u64>,
}

/// A sandbox's logs.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LogsInput {
    /// The tenant id.
    pub tenant: String,
    /// The sandbox id.
    pub id: String,
    /// Only the last N records (default 200).
    pub tail: Option<usize>,
}

/// A command to run in a sandbox.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecInput {
    /// The tenant id.
    pub tenant: String,
    /// The sandbox id (it must be `ready`).
    pub id: String,
    /// The command line, e.g. `["sh", "-c", "ls -l /"]`.
    pub command: Vec<String>,
    /// `KEY=VALUE` strings laid over the sandbox's environment.
    pub env: Option<Vec<String>>,
    /// Working directory.
    pub cwd: Option<String>,
    /// User (`uid`, `uid:gid`, `name`).
    pub user: Option<String>,
    /// Text written to its stdin, then closed.
    pub stdin: Option<String>,
    /// Kill it after this many ms (default 60 s, at most 10 min).
    pub timeout_ms: Option<u64>,
}

/// How a file's content is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Text.
    Utf8,
    /// Bytes, base64-encoded.
    Base64,
}

/// A file to read.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileReadInput {
    /// The tenant id.
    pub tenant: String,
    /// The sandbox id (it must be `ready`).
    pub id: String,
    /// Absolute path inside the sandbox.
    pub path: String,
    /// Where to start reading, in bytes (default 0): read on past a truncated answer.
    pub offset: Option<u64>,
}

/// A file to write.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileWriteInput {
    /// The tenant id.
    pub tenant: String,
    /// The sandbox id (it must be `ready`).
    pub id: String,
    /// Absolute path inside the sandbox; parents are created, the write is atomic.
    pub path: String,
    /// The content.
    pub content: String,
    /// How `content` is encoded (default `utf8`).
    pub encoding: Option<Encoding>,
}

/// A directory to list.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileListInput {
    /// The tenant id.
    pub tenant: String,
    /// The sandbox id (it must be `ready`).
    pub id: String,
    /// Absolute path of a directory inside the sandbox.
    pub path: String,
}

// ---------------------------------------------------------------------------------------------
// Outputs

/// One sandbox resource.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Sandbox {
    /// `metadata` (id, labels, generation), `spec` (command lines and environment redacted) and
    /// `status` (`lifecycleState`, `exitCode`, `terminationReason`, …) as docs/sandboxes.md says.
    pub sandbox: Value,
}

/// A page of sandboxes.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sandboxes {
    /// Sandbox resources, sorted by id.
    pub items: Vec<Value>,
    /// Pass as `pageToken` for the next page.
    pub next_page_token: Option<String>,
}

/// A deleted sandbox.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Deleted {
    /// The sandbox id.
    pub id: String,
    /// Always true (a failure is a tool error).
    pub deleted: bool,
}

/// A sandbox's log records.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Logs {
    /// `{kind: "stdout"|"stderr", time, data}` records, then `{kind: "exit", code}` once it
    /// ended; a first `{kind: "truncated"}` says older output was dropped by the server.
    pub records: Vec<Value>,
    /// Whether records were left out to stay within the tool's output bound (ask for a smaller
    /// `tail`).
    pub truncated: bool,
}

/// A command's outcome.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecOutcome {
    /// Its exit code (127: not found, 126: not executable); `null` when a signal ended it.
    pub exit_code: Option<i64>,
    /// The signal that ended it (`SIGKILL`), if any.
    pub signal: Option<String>,
    /// Whether it was killed at its timeout.
    pub timed_out: bool,
    /// How long it ran, in ms.
    pub duration_ms: u64,
    /// Its standard output (bytes that are not UTF-8 replaced).
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Whether stdout or stderr was cut (each is kept up to 64 KiB).
    pub truncated: bool,
}

/// A file's content.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileContent {
    /// The path read.
    pub path: String,
    /// The bytes read, as text or base64 (see `encoding`).
    pub content: String,
    /// `utf8` when the bytes are UTF-8 text, else `base64`.
    pub encoding: Encoding,
    /// Where the bytes start in the file.
    pub offset: u64,
    /// How many bytes `content` holds.
    pub bytes: usize,
    /// Whether the file goes on past them (read on with `offset`).
    pub truncated: bool,
}

/// A written file.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileWritten {
    /// Its metadata after the write: `{name, type, size, mode, modifiedAt, path}`.
    pub file: Value,
}

/// A directory's entries.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Listing {
    /// The directory.
    pub path: String,
    /// `{name, type, size, mode, modifiedAt}` per entry.
    pub entries: Vec<Value>,
    /// Whether entries were cut (the server lists at most 10 000).
    pub truncated: bool,
}

// ---------------------------------------------------------------------------------------------
// Tools

#[tool_router(router = compute_tools, vis = "pub(crate)")]
impl<B: Backend> NimbusMcp<B> {
    /// Creates and starts a sandbox from an OCI image, with limits and labels; answers once it
    /// runs (`status.lifecycleState` `ready`), or has failed to start (`failed`, with the
    /// reason in `status.message`). Delete it when done.
    #[tool(annotations(read_only_hint = false, destructive_hint = false, open_world_hint = true))]
    async fn sandboxes_create(&self, Parameters(input): Parameters<CreateInput>) -> Result<Json<Sandbox>, ToolError> {
        let process = json!({ "argv": input.command, "env": input.env, "cwd": input.cwd });
        let spec = json!({
            "owner": { "kind": "standalone", "displayName": input.display_name },
            "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": input.image } },
            "process": process,
            "resources": {
                "cpuCount": input.cpus,
                "memoryLimitBytes": input.memory_bytes,
                "pidsLimit": input.pids_limit,
                "diskLimitBytes": input.disk_bytes,
            },
        });
        let body = Body::Json(without_nulls(json!({ "labels": input.labels, "spec": spec })));
        let sandbox = self.call(Method::Post, tenant_path(&input.tenant, "/sandboxes"), body).await?;
        Ok(Json(Sandbox { sandbox }))
    }

    /// Lists a tenant's sandboxes, by state or label, one page at a time.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn sandboxes_list(&self, Parameters(input): Parameters<ListInput>) -> Result<Json<Sandboxes>, ToolError> {
        let query = query([
            ("status", input.status),
            ("labelKey", input.label_key),
            ("labelValue", input.label_value),
            ("limit", input.limit.map(|l| l.to_string())),
            ("pageToken", input.page_token),
        ]);
        let mut page =
            self.call(Method::Get, tenant_path(&input.tenant, &format!("/sandboxes{query}")), Body::Empty).await?;
        let items = match page["items"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        };
        let next_page_token = page["metadata"]["nextPageToken"].as_str().map(str::to_owned);
        Ok(Json(Sandboxes { items, next_page_token }))
    }

    /// Reads a sandbox: its state, exit code, termination reason, image and limits.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn sandboxes_get(&self, Parameters(input): Parameters<SandboxInput>) -> Result<Json<Sandbox>, ToolError> {
        let sandbox = self.call(Method::Get, sandbox_path(&input.tenant, &input.id, ""), Body::Empty).await?;
        Ok(Json(Sandbox { sandbox }))
    }

    /// Stops a sandbox: SIGTERM to its main process, SIGKILL after the grace period; answers
    /// once it has stopped. It stays readable (logs too) until deleted.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn sandboxes_stop(&self, Parameters(input): Parameters<StopInput>) -> Result<Json<Sandbox>, ToolError> {
        let body = Body::Json(without_nulls(json!({ "gracePeriodMs": input.grace_period_ms })));
        let sandbox = self.call(Method::Post, sandbox_path(&input.tenant, &input.id, "/stop"), body).await?;
        Ok(Json(Sandbox { sandbox }))
    }

    /// Deletes a sandbox from any state: kills it and frees everything it holds.
    #[tool(annotations(read_only_hint = false, destructive_hint = true, open_world_hint = false))]
    async fn sandboxes_delete(&self, Parameters(input): Parameters<SandboxInput>) -> Result<Json<Deleted>, ToolError> {
        self.call(Method::Delete, sandbox_path(&input.tenant, &input.id, ""), Body::Empty).await?;
        Ok(Json(Deleted { id: input.id, deleted: true }))
    }

    /// Reads the main process's output so far (the last `tail` records), without waiting.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn sandboxes_logs(&self, Parameters(input): Parameters<LogsInput>) -> Result<Json<Logs>, ToolError> {
        let tail = input.tail.unwrap_or(MCP_LOGS_DEFAULT_TAIL);
        let path =
            sandbox_path(&input.tenant, &input.id, &format!("/logs{}", query([("tail", Some(tail.to_string()))])));
        let answer = self.output(Method::Get, path).await?;
        // A cut answer ends inside a record: only whole lines count.
        let whole = if answer.cut {
            answer.body.iter().rposition(|b| *b == b'\n').map_or(&answer.body[..0], |end| &answer.body[..end])
        } else {
            &answer.body[..]
        };
        let records = whole
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect();
        Ok(Json(Logs { records, truncated: answer.cut }))
    }

    /// Runs a command in a running sandbox and waits for it: exit code, stdout, stderr (each
    /// bounded; `truncated` says when cut). Its processes end with the call.
    #[tool(annotations(read_only_hint = false, destructive_hint = true, open_world_hint = false))]
    async fn sandbox_exec(&self, Parameters(input): Parameters<ExecInput>) -> Result<Json<ExecOutcome>, ToolError> {
        let timeout_ms = input.timeout_ms.unwrap_or(EXEC_WAIT_DEFAULT_TIMEOUT_MS);
        let body = Body::Json(without_nulls(json!({
            "argv": input.command,
            "env": input.env,
            "cwd": input.cwd,
            "user": input.user,
            "stdin": input.stdin,
            "timeoutMs": timeout_ms,
        })));
        let ttl_ms = timeout_ms.saturating_add(SESSION_TTL_MARGIN_MS);
        let result = self
            .in_session(&input.tenant, &input.id, "exec", ttl_ms, |session| async move {
                self.call(Method::Post, format!("{session}/exec?wait=true"), body).await
            })
            .await?;
        let (stdout, stdout_cut) = bounded_text(result["stdout"].as_str().unwrap_or_default());
        let (stderr, stderr_cut) = bounded_text(result["stderr"].as_str().unwrap_or_default());
        Ok(Json(ExecOutcome {
            exit_code: result["exitCode"].as_i64(),
            signal: result["signal"].as_str().map(str::to_owned),
            timed_out: result["timedOut"].as_bool().unwrap_or(false),
            duration_ms: result["durationMs"].as_u64().unwrap_or(0),
            stdout,
            stderr,
            truncated: stdout_cut || stderr_cut || result["truncated"].as_bool().unwrap_or(false),
        }))
    }

    /// Reads a file in a running sandbox (up to 64 KiB per call; `offset` reads on).
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn sandbox_files_read(
        &self,
        Parameters(input): Parameters<FileReadInput>,
    ) -> Result<Json<FileContent>, ToolError> {
        let offset = input.offset.unwrap_or(0);
        // One byte more than is kept tells whether the file goes on.
        let query = query([
            ("path", Some(input.path.clone())),
            ("offset", Some(offset.to_string())),
            ("length", Some((MCP_OUTPUT_MAX_BYTES + 1).to_string())),
        ]);
        let answer = self
            .in_session(&input.tenant, &input.id, "files", SESSION_TTL_MARGIN_MS, |session| async move {
                self.output(Method::Get, format!("{session}/files{query}")).await
            })
            .await?;
        let mut bytes = answer.body;
        let truncated = answer.cut || bytes.len() > MCP_OUTPUT_MAX_BYTES;
        bytes.truncate(MCP_OUTPUT_MAX_BYTES);
        let count = bytes.len();
        let (content, encoding) = match String::from_utf8(bytes) {
            Ok(text) => (text, Encoding::Utf8),
            Err(e) => (STANDARD.encode(e.as_bytes()), Encoding::Base64),
        };
        Ok(Json(FileContent { path: input.path, content, encoding, offset, bytes: count, truncated }))
    }

    /// Writes a file in a running sandbox, atomically, creating its parent directories;
    /// replaces any file at that path.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn sandbox_files_write(
        &self,
        Parameters(input): Parameters<FileWriteInput>,
    ) -> Result<Json<FileWritten>, ToolError> {
        let bytes = match input.encoding.unwrap_or(Encoding::Utf8) {
            Encoding::Utf8 => input.content.into_bytes(),
            Encoding::Base64 => STANDARD
                .decode(input.content.as_bytes())
                .map_err(|e| ToolError::from(NimbusError::invalid_input("content", format!("is not base64: {e}"))))?,
        };
        let query = query([("path", Some(input.path))]);
        let file = self
            .in_session(&input.tenant, &input.id, "files", SESSION_TTL_MARGIN_MS, |session| async move {
                self.call(Method::Put, format!("{session}/files{query}"), Body::Bytes(bytes)).await
            })
            .await?;
        Ok(Json(FileWritten { file }))
    }

    /// Lists a directory in a running sandbox.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn sandbox_files_list(
        &self,
        Parameters(input): Parameters<FileListInput>,
    ) -> Result<Json<Listing>, ToolError> {
        let query = query([("path", Some(input.path))]);
        let listing = self
            .in_session(&input.tenant, &input.id, "files", SESSION_TTL_MARGIN_MS, |session| async move {
                self.call_as(Method::Get, format!("{session}/files/list{query}"), Body::Empty).await
            })
            .await?;
        Ok(Json(listing))
    }
}

impl<B: Backend> NimbusMcp<B> {
    /// Opens a session on a sandbox with one channel for `ttl_ms`, runs `work` with the
    /// session's path (`/api/sessions/<id>`), then closes the session whatever `work` answered.
    async fn in_session<T, F, Fut>(
        &self,
        tenant: &str,
        sandbox: &str,
        channel: &str,
        ttl_ms: u64,
        work: F,
    ) -> Result<T, ToolError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<T, ToolError>>,
    {
        let body = Body::Json(json!({
            "tenantId": tenant,
            "target": { "sandbox": { "id": sandbox } },
            "channels": [channel],
            "requestedTtlMs": ttl_ms,
        }));
        let session = self.call(Method::Post, "/api/sessions".into(), body).await?;
        let id = session["metadata"]["id"].as_str().unwrap_or_default();
        let path = format!("/api/sessions/{}", segment(id));
        let result = work(path.clone()).await;
        // A close that fails leaves the session to its lease's expiry; the call's own outcome
        // is what the agent needs.
        let _ =
            self.call(Method::Post, format!("{path}/close"), Body::Json(json!({ "reason": "mcp_call_done" }))).await;
        result
    }
}

fn sandbox_path(tenant: &str, id: &str, rest: &str) -> String {
    tenant_path(tenant, &format!("/sandboxes/{}{rest}", segment(id)))
}

/// `text` cut to `MCP_OUTPUT_MAX_BYTES` at a character boundary, and whether it was cut.
fn bounded_text(text: &str) -> (String, bool) {
    if text.len() <= MCP_OUTPUT_MAX_BYTES {
        return (text.to_owned(), false);
    }
    let mut end = MCP_OUTPUT_MAX_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let short = "é".repeat(10);
        assert_eq!(bounded_text(&short), (short.clone(), false));
        let long = "é".repeat(MCP_OUTPUT_MAX_BYTES);
        let (cut, truncated) = bounded_text(&long);
        assert!(truncated);
        assert_eq!(cut.len(), MCP_OUTPUT_MAX_BYTES);
    }
}

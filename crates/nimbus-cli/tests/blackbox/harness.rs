//! The black-box harness: spawns the built `nimbus` binary on a free loopback port with private
//! temporary directories, speaks HTTP/1.1 to it, and checks the cross-cutting contract on every
//! response it sees (request id header; error envelope shape and catalog membership).
//!
//! The HTTP client is a small hand-written one over `TcpStream` so that a test controls every byte
//! it sends (odd content types, oversized bodies, `Expect: 100-continue`, raw path segments) and
//! can read the answer to a body the server refuses before reading it.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nimbus_core::ErrorCode;
use nimbus_core::catalog::Action;
use serde_json::{Value, json};
use tempfile::TempDir;

/// Safety nets only: a server that never prints its URL, never exits, or a socket that never
/// answers fails the test instead of hanging it. No test waits on these to synchronise.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Bodies up to this size are written inline; larger ones by a second thread.
const INLINE_BODY_BYTES: usize = 16 * 1024;

/// Every error code observed in any response by any test of this process.
static OBSERVED_CODES: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The error codes observed so far (for coverage checks).
pub fn observed_codes() -> BTreeSet<String> {
    OBSERVED_CODES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

// ---------------------------------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------------------------------

/// The private directories of one server "installation": data dir, HOME and the XDG dirs.
/// Shared (through `Arc`) by the servers of a restart test so they see the same state.
pub struct Dirs {
    root: TempDir,
}

impl Dirs {
    /// Fresh, empty directories.
    pub fn new() -> Arc<Dirs> {
        let root = tempfile::Builder::new().prefix("nimbus-bb-").tempdir().expect("create temp dir");
        let dirs = Dirs { root };
        for dir in [dirs.home(), dirs.xdg_data(), dirs.xdg_runtime(), dirs.xdg_state(), dirs.xdg_config()] {
            std::fs::create_dir_all(&dir).expect("create dir");
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dirs.xdg_runtime(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod runtime dir");
        Arc::new(dirs)
    }

    pub fn root(&self) -> PathBuf {
        self.root.path().to_owned()
    }
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }
    pub fn xdg_data(&self) -> PathBuf {
        self.root.path().join("xdg-data")
    }
    pub fn xdg_runtime(&self) -> PathBuf {
        self.root.path().join("xdg-runtime")
    }
    pub fn xdg_state(&self) -> PathBuf {
        self.root.path().join("xdg-state")
    }
    pub fn xdg_config(&self) -> PathBuf {
        self.root.path().join("xdg-config")
    }
    /// `$XDG_DATA_HOME/nimbus/auth/token`.
    pub fn token_path(&self) -> PathBuf {
        self.xdg_data().join("nimbus/auth/token")
    }
    /// `$XDG_RUNTIME_DIR/nimbus/server.json`.
    pub fn discovery_path(&self) -> PathBuf {
        self.xdg_runtime().join("nimbus/server.json")
    }

    /// The token file, parsed.
    pub fn token_record(&self) -> Value {
        let bytes = std::fs::read(self.token_path()).expect("read token file");
        serde_json::from_slice(&bytes).expect("token file is JSON")
    }

    /// The current admin token, read from the token file.
    pub fn token(&self) -> String {
        self.token_record()["token"].as_str().expect("token file has a token").to_owned()
    }

    /// A `nimbus` command with a clean environment pointing at these directories.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.xdg_data())
            .env("XDG_RUNTIME_DIR", self.xdg_runtime())
            .env("XDG_STATE_HOME", self.xdg_state())
            .env("XDG_CONFIG_HOME", self.xdg_config())
            .env("TMPDIR", self.root())
            .env("RUST_BACKTRACE", "1")
            .current_dir(self.root());
        command
    }

    /// Runs a CLI command to completion.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let output: Output = self.command().args(args).stdin(Stdio::null()).output().expect("run nimbus");
        CliOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Spawns `nimbus start` on a free port; `Err` when the process exits before listening.
    pub fn try_start(self: &Arc<Self>) -> Result<Server, StartFailure> {
        self.try_start_on_port(0)
    }

    /// Spawns `nimbus start` on a given port (0 = a free one).
    pub fn try_start_on_port(self: &Arc<Self>, port: u16) -> Result<Server, StartFailure> {
        self.try_start_with(port, &[])
    }

    /// Spawns `nimbus start` on a free port with extra flags (`--service-catalog …`).
    pub fn try_start_with_args(self: &Arc<Self>, extra: &[&str]) -> Result<Server, StartFailure> {
        self.try_start_with(0, extra)
    }

    /// Starts a server with extra environment variables (the server's test-only knobs).
    pub fn start_with_env(self: &Arc<Self>, env: &[(&str, &str)]) -> Server {
        match self.try_start_with_env(0, &[], env) {
            Ok(server) => server,
            Err(failure) => panic!("nimbus start exited with {:?}; stderr:\n{}", failure.status, failure.stderr),
        }
    }

    fn try_start_with(self: &Arc<Self>, port: u16, extra: &[&str]) -> Result<Server, StartFailure> {
        self.try_start_with_env(port, extra, &[])
    }

    fn try_start_with_env(
        self: &Arc<Self>,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, StartFailure> {
        let mut child = self
            .command()
            .envs(env.iter().copied())
            .args(["start", "--host", "127.0.0.1", "--port", &port.to_string(), "--data-dir"])
            .arg(self.data())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nimbus start");
        let pid = child.id();
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                // Reads every line until EOF, so the pipe never fills, and reports the URL once.
                let mut reader = BufReader::new(stderr);
                let mut tx = Some(tx);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if let Some(at) = line.find(" listening on http://")
                        && let Some(tx) = tx.take()
                    {
                        let url = line[at + " listening on ".len()..].trim().to_owned();
                        let _ = tx.send(url);
                    }
                    lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(url) => {
                let port: u16 = url
                    .strip_prefix("http://127.0.0.1:")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected listen URL {url:?}"));
                Ok(Server { child: Some(child), pid, port, base: url, dirs: self.clone(), stderr: lines })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait for nimbus");
                let stderr = lines.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                Err(StartFailure { status, stderr })
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nimbus did not print its listen URL; stderr:\n{}", lines.lock().unwrap().join("\n"));
            }
        }
    }

    /// Starts a server on these directories (panics if it cannot start).
    pub fn start(self: &Arc<Self>) -> Server {
        match self.try_start() {
            Ok(server) => server,
            Err(failure) => panic!("nimbus start exited with {:?}; stderr:\n{}", failure.status, failure.stderr),
        }
    }
}

/// A CLI command's result.
#[derive(Debug)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// The single JSON document on stdout.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }
}

/// A server that exited before listening.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub stderr: String,
}

// ---------------------------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------------------------

/// One running `nimbus start` child. Killed (by its pid, SIGKILL) on drop if still running.
pub struct Server {
    child: Option<Child>,
    pid: u32,
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    dirs: Arc<Dirs>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

#[allow(unsafe_code)]
fn send_signal(pid: u32, signal: i32) {
    // SAFETY: `kill(2)` has no memory-safety preconditions; the pid is our own unreaped child.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed: {}", io::Error::last_os_error());
}

impl Server {
    /// A server with fresh directories.
    pub fn start() -> Server {
        Dirs::new().start()
    }

    /// A server on existing directories (restart tests).
    pub fn start_in(dirs: &Arc<Dirs>) -> Server {
        dirs.start()
    }

    pub fn dirs(&self) -> Arc<Dirs> {
        self.dirs.clone()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }

    /// The current admin token (read from the token file).
    pub fn token(&self) -> String {
        self.dirs.token()
    }

    /// Waits for the child to exit, with a safety-net deadline (SIGKILL and panic past it).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server already reaped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(EXIT_TIMEOUT) {
            Ok(status) => status.expect("wait for nimbus"),
            Err(_) => {
                // Still our unreaped child (the waiting thread reaps it after this signal).
                send_signal(self.pid, libc::SIGKILL);
                panic!("nimbus (pid {}) did not exit; stderr:\n{}", self.pid, self.stderr());
            }
        }
    }

    /// Graceful stop: SIGTERM, then wait for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        assert!(self.child.is_some(), "server already stopped");
        send_signal(self.pid, libc::SIGTERM);
        self.wait_exit()
    }

    /// Sends SIGKILL without reaping (usable while other threads share the server); reap with
    /// [`Server::wait_exit`].
    pub fn sigkill(&self) {
        assert!(self.child.is_some(), "server already reaped");
        send_signal(self.pid, libc::SIGKILL);
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server already stopped");
        child.kill().expect("SIGKILL nimbus");
        child.wait().expect("reap nimbus")
    }

    // -----------------------------------------------------------------------------------------
    // HTTP
    // -----------------------------------------------------------------------------------------

    /// One request, exactly as given (no token added). Panics on transport errors.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: transport error: {e}\nserver stderr:\n{}", self.stderr()))
    }

    /// One request; `Err` on transport errors (connection refused/reset). The response is
    /// checked against the cross-cutting contract (request id; envelope on errors).
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<Resp> {
        let (status, headers, body) = exchange(self.port, method, path, headers, body)?;
        let resp = Resp::new(status, headers, body, format!("{method} {path}"));
        check_contract(&resp);
        Ok(resp)
    }

    /// One request with the admin token (`Authorization: Bearer`).
    pub fn authed(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
        let auth = format!("Bearer {}", self.token());
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.request(method, path, &all, body)
    }

    /// As [`Server::authed`] for an answer that may be another server's (the ports route passes
    /// a sandbox's own errors on): only the request id is checked, not the error envelope.
    pub fn authed_foreign(&self, method: &str, path: &str, body: Option<&[u8]>) -> Resp {
        let auth = format!("Bearer {}", self.token());
        let (status, headers, body) = exchange(self.port, method, path, &[("Authorization", auth.as_str())], body)
            .unwrap_or_else(|e| panic!("{method} {path}: transport error: {e}"));
        let resp = Resp::new(status, headers, body, format!("{method} {path}"));
        assert!(resp.header("x-request-id").is_some_and(is_request_id), "no request id: {resp}");
        resp
    }

    /// As [`Server::authed`] but returning transport errors.
    pub fn try_authed(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<Resp> {
        let auth = format!("Bearer {}", self.token());
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.try_request(method, path, &all, body)
    }

    fn json_call(&self, method: &str, path: &str, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).expect("encode body");
        self.authed(method, path, &[("Content-Type", "application/json")], Some(&bytes))
    }

    pub fn get(&self, path: &str) -> Resp {
        self.authed("GET", path, &[], None)
    }
    pub fn delete(&self, path: &str) -> Resp {
        self.authed("DELETE", path, &[], None)
    }
    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.json_call("POST", path, body)
    }
    pub fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.json_call("PUT", path, body)
    }
    pub fn patch_json(&self, path: &str, body: &Value) -> Resp {
        self.json_call("PATCH", path, body)
    }
    /// POST without a body (system routes whose body is optional).
    pub fn post_empty(&self, path: &str) -> Resp {
        self.authed("POST", path, &[], None)
    }

    // -----------------------------------------------------------------------------------------
    // Data helpers
    // -----------------------------------------------------------------------------------------

    /// Creates a tenant (asserts 201).
    pub fn create_tenant(&self, name: &str) {
        let resp = self.post_json("/api/tenants", &json!({ "id": name }));
        resp.expect_status(201);
        assert_eq!(resp.json, json!({ "id": name }), "create tenant body");
    }

    /// Inserts a document (asserts 201) and returns its id.
    pub fn insert(&self, tenant: &str, table: &str, fields: &Value) -> String {
        let resp =
            self.post_json(&format!("/api/tenants/{tenant}/documents"), &json!({ "table": table, "fields": fields }));
        resp.expect_status(201);
        let id = resp.json["id"].as_str().unwrap_or_else(|| panic!("insert answered without id: {resp}")).to_owned();
        assert_ulid(&id);
        id
    }

    /// Reads a document (asserts 200).
    pub fn document(&self, tenant: &str, table: &str, id: &str) -> Value {
        let resp = self.get(&format!("/api/tenants/{tenant}/documents/{table}/{id}"));
        resp.expect_status(200);
        resp.json["document"].clone()
    }

    /// Lists a whole table without `limit` (asserts 200).
    pub fn list_all(&self, tenant: &str, table: &str) -> Vec<Value> {
        let resp = self.get(&format!("/api/tenants/{tenant}/documents/{table}"));
        resp.expect_status(200);
        resp.json["data"].as_array().unwrap_or_else(|| panic!("list without data: {resp}")).clone()
    }

    /// Runs a query (asserts 200) and returns its documents.
    pub fn query(&self, tenant: &str, body: &Value) -> Vec<Value> {
        let resp = self.post_json(&format!("/api/tenants/{tenant}/query"), body);
        if resp.status != 200 {
            panic!("query {body} failed: {resp}");
        }
        resp.json["data"].as_array().unwrap_or_else(|| panic!("query without data: {resp}")).clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Responses and the cross-cutting contract
// ---------------------------------------------------------------------------------------------

/// A parsed response. `json` is `Null` when the body is empty or not JSON.
#[derive(Clone)]
pub struct Resp {
    pub status: u16,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub json: Value,
    /// `METHOD path`, for messages.
    pub what: String,
}

impl std::fmt::Display for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.body);
        let shown: String = text.chars().take(2000).collect();
        write!(f, "{} -> {} {}", self.what, self.status, shown)
    }
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Resp {
    fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>, what: String) -> Resp {
        let is_json =
            headers.iter().any(|(k, v)| k == "content-type" && v.to_ascii_lowercase().starts_with("application/json"));
        let json = if is_json && !body.is_empty() {
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{what}: application/json body is not JSON ({e})"))
        } else {
            Value::Null
        };
        Resp { status, headers, body, json, what }
    }

    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.as_str()).collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `error.code`, or `""` for a success.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// `error.detail`.
    pub fn detail(&self) -> &Value {
        &self.json["error"]["detail"]
    }

    /// Asserts the status.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Resp {
        assert_eq!(self.status, status, "unexpected status: {self}");
        self
    }

    /// Asserts an error status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Resp {
        assert_eq!((self.status, self.code()), (status, code), "unexpected answer: {self}");
        self
    }

    /// Asserts an error status, code and `detail.field`.
    #[track_caller]
    pub fn expect_field(&self, status: u16, code: &str, field: &str) -> &Resp {
        self.expect_error(status, code);
        assert_eq!(self.detail()["field"].as_str(), Some(field), "unexpected detail.field: {self}");
        self
    }
}

/// Percent-encodes a query-string value or path segment (everything but unreserved characters).
pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `req_` + 26 lowercase Crockford base32 characters.
pub fn is_request_id(value: &str) -> bool {
    value
        .strip_prefix("req_")
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()))
}

/// A server-minted id: 26 lowercase Crockford base32 characters.
#[track_caller]
pub fn assert_ulid(id: &str) {
    const CROCKFORD: &str = "0123456789abcdefghjkmnpqrstvwxyz";
    assert!(id.len() == 26 && id.chars().all(|c| CROCKFORD.contains(c)), "not a lowercase ULID: {id:?}");
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn is_timestamp(value: &str) -> bool {
    let pattern = b"dddd-dd-ddTdd:dd:dd.dddZ";
    value.len() == pattern.len()
        && value.bytes().zip(pattern.iter()).all(|(b, p)| if *p == b'd' { b.is_ascii_digit() } else { b == *p })
}

/// Checks what every response must satisfy; panics otherwise. Records observed error codes.
fn check_contract(resp: &Resp) {
    let header_id = resp.header("x-request-id").unwrap_or_else(|| panic!("response without X-Request-Id: {resp}"));
    assert!(is_request_id(header_id), "X-Request-Id {header_id:?} is not req_<ULID>: {resp}");
    if resp.status < 400 {
        return;
    }
    let content_type = resp.header("content-type").unwrap_or("");
    assert!(content_type.starts_with("application/json"), "error response is not JSON ({content_type:?}): {resp}");
    let error = resp
        .json
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("error response without envelope: {resp}"));
    let code_str = error.get("code").and_then(Value::as_str).unwrap_or_else(|| panic!("envelope without code: {resp}"));
    OBSERVED_CODES.lock().unwrap_or_else(|e| e.into_inner()).insert(code_str.to_owned());
    let code =
        ErrorCode::from_code(code_str).unwrap_or_else(|| panic!("code {code_str:?} is not in the catalog: {resp}"));
    let spec = code.spec();
    assert!(!spec.reserved, "reserved code {code_str} emitted: {resp}");
    let status_ok = spec.http_status == Some(resp.status) || (code == ErrorCode::OpInvalidInput && resp.status == 415);
    assert!(
        status_ok,
        "status {} does not match the catalog's {:?} for {code_str}: {resp}",
        resp.status, spec.http_status
    );
    assert!(error.get("message").is_some_and(Value::is_string), "envelope without message: {resp}");
    let request_id =
        error.get("requestId").and_then(Value::as_str).unwrap_or_else(|| panic!("envelope without requestId: {resp}"));
    assert!(is_request_id(request_id), "requestId {request_id:?} is not req_<ULID>: {resp}");
    assert_eq!(request_id, header_id, "requestId differs from X-Request-Id: {resp}");
    let timestamp =
        error.get("timestamp").and_then(Value::as_str).unwrap_or_else(|| panic!("envelope without timestamp: {resp}"));
    assert!(is_timestamp(timestamp), "timestamp {timestamp:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ: {resp}");
    assert!(error.get("retryable").is_some_and(Value::is_boolean), "retryable is not a boolean: {resp}");
    let severity = error.get("severity").and_then(Value::as_str);
    assert!(matches!(severity, Some("fatal" | "error" | "warning")), "bad severity {severity:?}: {resp}");
    let detail = error.get("detail").unwrap_or_else(|| panic!("envelope without detail: {resp}"));
    assert!(detail.is_object() || detail.is_null(), "detail is neither object nor null: {resp}");
    // The catalog's remediation, or one the instance carries for its reason (which a code
    // without a catalog action may carry too): always `{action, message}` with a known action.
    match (spec.action, error.get("remediation")) {
        (_, Some(r)) => {
            let fields = r.as_object().map(|o| o.keys().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(fields, Some(vec!["action", "message"]), "bad remediation: {resp}");
            assert!(r["action"].as_str().and_then(Action::parse).is_some(), "unknown remediation action: {resp}");
            assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "empty remediation message: {resp}");
        }
        (Some(_), None) => panic!("envelope without the catalog's remediation: {resp}"),
        (None, None) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

struct ResponseReader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl ResponseReader {
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        // A signal (SIGCHLD from another test's server exiting) may interrupt a long wait.
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Status and headers of the next response head.
    fn head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response head"));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status =
            status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {status_line:?}"))
            })?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Ok((status, headers))
    }

    fn exact(&mut self, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a body"));
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                self.buf.drain(..at + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a chunk header"));
            }
        }
    }

    fn body(&mut self, status: u16, headers: &[(String, String)], method: &str) -> io::Result<Vec<u8>> {
        if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(Vec::new());
        }
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let size_line = self.line()?;
                let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {size_line:?}")))?;
                if size == 0 {
                    while !self.line()?.is_empty() {}
                    return Ok(body);
                }
                body.extend(self.exact(size)?);
                self.exact(2)?;
            }
        }
        if let Some(len) = get("content-length") {
            let len: usize =
                len.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?;
            return self.exact(len);
        }
        loop {
            match self.fill() {
                Ok(0) => return Ok(std::mem::take(&mut self.buf)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(std::mem::take(&mut self.buf)),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the answer.
///
/// The body is written by a second thread while this one reads, so a server that answers before
/// reading the body (e.g. 413) is heard. With `Expect: 100-continue` the body is only sent after a
/// `100 Continue`; a final answer instead means it is never sent.
/// The answer's status, headers and body.
type RawExchange = (u16, Vec<(String, String)>, Vec<u8>);

fn exchange(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<RawExchange> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body
        && !has("content-length")
        && !has("transfer-encoding")
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let expect_continue =
        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue"));
    let mut writer = stream.try_clone()?;
    writer.write_all(head.as_bytes())?;
    let mut reader = ResponseReader { stream: stream.try_clone()?, buf: Vec::new() };

    std::thread::scope(|scope| {
        let send_body = |writer: &mut TcpStream| {
            if let Some(body) = body.filter(|b| !b.is_empty()) {
                if body.len() <= INLINE_BODY_BYTES {
                    // Fits the socket buffer: cannot block even if the server never reads it.
                    let _ = writer.write_all(body);
                    return;
                }
                let mut writer = writer.try_clone().expect("clone stream");
                scope.spawn(move || {
                    // Errors are expected when the server answers without reading the body.
                    let _ = writer.write_all(body);
                });
            }
        };
        let mut read_answer = || -> io::Result<_> {
            let (status, headers) = if expect_continue {
                let (status, headers) = reader.head()?;
                if status == 100 {
                    send_body(&mut writer);
                    reader.head()?
                } else {
                    (status, headers)
                }
            } else {
                send_body(&mut writer);
                let mut answer = reader.head()?;
                while answer.0 == 100 {
                    answer = reader.head()?;
                }
                answer
            };
            let body = reader.body(status, &headers, method)?;
            Ok((status, headers, body))
        };
        let answer = read_answer();
        // Unblocks a body writer the server stopped reading, before the scope joins it.
        let _ = stream.shutdown(Shutdown::Both);
        answer
    })
}

// ---------------------------------------------------------------------------------------------
// Keep-alive connections
// ---------------------------------------------------------------------------------------------

/// How a request body goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`; the body follows the head at once.
    Length,
    /// `Transfer-Encoding: chunked`, in 8 KiB chunks following the head at once.
    Chunked,
    /// `Content-Length` and `Expect: 100-continue`: the body follows a `100 Continue`, or a final
    /// answer that does not announce the close (the server then reads it, RFC 9110 §10.1.1).
    ExpectContinue,
}

/// One HTTP/1.1 connection kept open across requests (no `Connection: close` sent), for tests
/// of what a server does to the connection after an answer.
pub struct KeepAliveConn {
    port: u16,
    stream: TcpStream,
    reader: ResponseReader,
}

/// One answer on a [`KeepAliveConn`].
pub struct Answer {
    /// The response, checked against the cross-cutting contract.
    pub resp: Resp,
    /// How writing the request body ended: an error means the server reset the connection
    /// while the client was still sending.
    pub sent: io::Result<()>,
}

impl Answer {
    /// Whether the response announced that the server closes the connection.
    pub fn announces_close(&self) -> bool {
        self.resp
            .header_all("connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
    }
}

impl KeepAliveConn {
    /// Connects to the server.
    pub fn open(server: &Server) -> io::Result<KeepAliveConn> {
        let stream = TcpStream::connect(("127.0.0.1", server.port))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let reader = ResponseReader { stream: stream.try_clone()?, buf: Vec::new() };
        Ok(KeepAliveConn { port: server.port, stream, reader })
    }

    /// Sends one request and reads its answer. The body is written by a second thread while
    /// this one reads, so an answer sent before the server reads the body is heard; `Err` is a
    /// transport error on the answer.
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        framing: Framing,
    ) -> io::Result<Answer> {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", self.port);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let wire_body = match framing {
            Framing::Length | Framing::ExpectContinue => {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                body.to_vec()
            }
            Framing::Chunked => {
                head.push_str("Transfer-Encoding: chunked\r\n");
                let mut wire = Vec::new();
                for chunk in body.chunks(8 * 1024) {
                    wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    wire.extend_from_slice(chunk);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\n\r\n");
                wire
            }
        };
        if framing == Framing::ExpectContinue {
            head.push_str("Expect: 100-continue\r\n");
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes())?;
        let (stream, reader) = (&self.stream, &mut self.reader);
        let answer = std::thread::scope(|scope| {
            let writer = || -> io::Result<()> {
                let mut writer = stream.try_clone()?;
                writer.write_all(&wire_body)
            };
            let mut sender = None;
            if framing != Framing::ExpectContinue {
                sender = Some(scope.spawn(writer));
            }
            let mut read_answer = || -> io::Result<Resp> {
                let (mut status, mut headers) = reader.head()?;
                while status == 100 {
                    if sender.is_none() {
                        sender = Some(scope.spawn(writer));
                    }
                    (status, headers) = reader.head()?;
                }
                let body = reader.body(status, &headers, method)?;
                Ok(Resp::new(status, headers, body, format!("{method} {target}")))
            };
            let resp = match read_answer() {
                Ok(resp) => resp,
                Err(e) => {
                    // Unblocks a body writer the server stopped reading, before the scope joins it.
                    let _ = stream.shutdown(Shutdown::Both);
                    return Err(e);
                }
            };
            let mut answer = Answer { resp, sent: Ok(()) };
            if sender.is_none() && !answer.announces_close() {
                sender = Some(scope.spawn(writer));
            }
            if let Some(sender) = sender {
                answer.sent = sender.join().unwrap_or_else(|_| Err(io::Error::other("body writer panicked")));
            }
            Ok(answer)
        })?;
        check_contract(&answer.resp);
        Ok(answer)
    }

    /// Reads until the server closes the connection: the bytes it sent after the last answer
    /// (none, from a server that announced the close); `Err` if it reset the connection.
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        while self.reader.fill()? > 0 {}
        Ok(std::mem::take(&mut self.reader.buf))
    }
}

/// Safety net of [`wait_for`]: a healthy run meets each condition far sooner.
const WAIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// Pause between polls of a condition (the loop re-checks; not a synchronisation sleep).
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Polls until `check` yields a value, panicking past the deadline with `what`.
pub fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    wait_for_or(what, check, String::new)
}

/// As [`wait_for`], adding `explain()` (what the test saw) to the panic past the deadline.
pub fn wait_for_or<T>(what: &str, mut check: impl FnMut() -> Option<T>, explain: impl FnOnce() -> String) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        if start.elapsed() >= WAIT_DEADLINE {
            panic!("timed out waiting for {what}\n{}", explain());
        }
        std::thread::sleep(WAIT_POLL);
    }
}

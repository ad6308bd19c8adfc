//! Sessions (sessions.md) end to end with real sandboxes: the agent quickstart (open, stream the
//! main process, write its stdin, close), exec, the files channel's confinement, expiry tearing
//! everything down, and the error cases. Runs as root, like the sandbox suite.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Resp, enc, is_timestamp};
use crate::sandboxes::{Fixture, TENANT, id_of};

/// A sandbox fixture with session helpers.
struct Sx {
    fx: Fixture,
}

impl Sx {
    fn start() -> Sx {
        Sx { fx: Fixture::start() }
    }

    /// Creates a sandbox running `argv` and waits until it is ready.
    fn sandbox(&self, argv: &[&str], extra: Value) -> String {
        let id = id_of(&self.fx.create(argv, extra));
        self.fx.server().get(&self.fx.path(&format!("/{id}?waitFor=ready"))).expect_status(200);
        id
    }

    fn open_raw(&self, body: &Value) -> Resp {
        self.fx.server().post_json("/api/sessions", body)
    }

    /// Opens a session (asserts 201) and returns it.
    fn open(&self, sandbox: &str, channels: &[&str], ttl: Option<u64>) -> Value {
        let mut body = json!({ "tenantId": TENANT, "target": { "sandbox": { "id": sandbox } }, "channels": channels });
        if let Some(ttl) = ttl {
            body["requestedTtlMs"] = ttl.into();
        }
        let resp = self.open_raw(&body);
        resp.expect_status(201);
        resp.json.clone()
    }

    fn get(&self, session: &str) -> Value {
        let resp = self.fx.server().get(&format!("/api/sessions/{session}"));
        resp.expect_status(200);
        resp.json.clone()
    }

    fn post(&self, session: &str, rest: &str, body: &Value) -> Resp {
        self.fx.server().post_json(&format!("/api/sessions/{session}{rest}"), body)
    }

    /// `exec?wait=true` (asserts 200).
    fn run(&self, session: &str, body: Value) -> Value {
        let resp = self.post(session, "/exec?wait=true", &body);
        resp.expect_status(200);
        resp.json.clone()
    }

    /// Opens an NDJSON stream (asserts 200 and the stream headers).
    fn stream(&self, path: &str) -> Lines {
        let mut lines = Lines::open(self.fx.server().port, &self.fx.server().token(), path);
        if lines.status != 200 {
            let status = lines.status;
            panic!("stream {path}: {status} {}", lines.error_body());
        }
        assert_eq!(lines.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(lines.header("cache-control"), Some("no-store"));
        assert_eq!(lines.header("x-accel-buffering"), Some("no"));
        lines
    }
}

fn session_id(session: &Value) -> String {
    session["metadata"]["id"].as_str().expect("metadata.id").to_owned()
}

/// Reads frames until one of `kind` arrives; returns every frame read (that one last).
fn until(lines: &mut Lines, what: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let frame = lines.next().unwrap_or_else(|| panic!("stream ended before the awaited frame: {seen:?}"));
        let done = what(&frame);
        seen.push(frame);
        if done {
            return seen;
        }
    }
}

/// An NDJSON response read frame by frame as it arrives (chunked transfer encoding).
struct Lines {
    stream: TcpStream,
    status: u16,
    headers: Vec<(String, String)>,
    raw: Vec<u8>,
    body: Vec<u8>,
    ended: bool,
}

impl Lines {
    fn open(port: u16, token: &str, path: &str) -> Lines {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("send");
        let mut lines =
            Lines { stream, status: 0, headers: Vec::new(), raw: Vec::new(), body: Vec::new(), ended: false };
        let end = loop {
            if let Some(at) = lines.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            assert!(lines.fill() > 0, "connection closed before the response head");
        };
        let head = String::from_utf8_lossy(&lines.raw[..end]).into_owned();
        lines.raw.drain(..end + 4);
        let mut rows = head.split("\r\n");
        lines.status = rows.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
        lines.headers = rows
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        lines
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("stream read failed: {e}"),
                Ok(n) => break n,
            }
        };
        self.raw.extend_from_slice(&chunk[..n]);
        n
    }

    /// Moves complete chunks from `raw` to `body`; `false` when more bytes are needed.
    fn dechunk(&mut self) -> bool {
        let Some(at) = self.raw.windows(2).position(|w| w == b"\r\n") else { return false };
        let size_line = String::from_utf8_lossy(&self.raw[..at]).into_owned();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).expect("chunk size");
        if size == 0 {
            self.ended = true;
            return true;
        }
        if self.raw.len() < at + 2 + size + 2 {
            return false;
        }
        self.body.extend_from_slice(&self.raw[at + 2..at + 2 + size]);
        self.raw.drain(..at + 2 + size + 2);
        true
    }

    /// The next frame; `None` at the end of the body.
    fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(at) = self.body.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.body.drain(..=at).collect();
                return Some(serde_json::from_slice(&line).expect("an NDJSON line"));
            }
            if self.ended {
                return None;
            }
            if !self.dechunk() && self.fill() == 0 {
                return None;
            }
        }
    }

    fn error_body(&mut self) -> String {
        if self.status == 200 {
            return String::new();
        }
        while self.fill() > 0 {}
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

#[test]
fn session_quickstart_streams_the_main_process_and_writes_its_stdin() {
    let sx = Sx::start();
    let sandbox = sx.sandbox(&["sh", "-c", "echo ready; while read l; do echo got:$l; done"], json!({}));
    let session = sx.open(&sandbox, &["stdio", "exec", "files"], Some(300_000));
    let id = session_id(&session);
    let ulid = id.strip_prefix("session-").expect("session-<ULID>");
    crate::harness::assert_ulid(ulid);
    assert_eq!(session["metadata"]["generation"], 1);
    assert_eq!(session["metadata"]["tenantId"], TENANT);
    assert_eq!(session["spec"]["target"], json!({ "sandbox": { "id": sandbox } }));
    assert_eq!(
        session["spec"]["targetSnapshot"],
        json!({ "sandbox": { "id": sandbox, "generation": 1, "profile": "worker", "backend": "container" } })
    );
    assert_eq!(session["spec"]["channels"], json!(["stdio", "exec", "files"]));
    let expires = session["spec"]["expiresAt"].as_str().expect("expiresAt").to_owned();
    assert!(is_timestamp(&expires));
    assert_eq!(session["status"]["expiresAt"], expires.as_str());
    assert_eq!(session["status"]["lifecycleState"], "open");
    let condition = &session["status"]["conditions"][0];
    assert_eq!((condition["type"].as_str(), condition["status"].as_str()), (Some("Open"), Some("True")));
    assert_eq!(condition["reason"], "LeaseActive");
    assert!(session["status"].get("closeReason").is_none() && session["status"].get("closedAt").is_none());

    // Input needs a live attachment.
    let early = sx.post(&id, "/channels/stdio/input", &json!({ "data": "x\n" }));
    early.expect_error(409, "op.conflict");
    assert_eq!(early.detail()["reason"], "no_attachment");

    let mut stream = sx.stream(&format!("/api/sessions/{id}/channels/stdio/stream"));
    assert_eq!(stream.next(), Some(json!({ "kind": "opened", "channel": "stdio", "targetGeneration": 1 })));
    let replayed =
        until(&mut stream, |f| f["kind"] == "stdout" && f["data"].as_str().is_some_and(|d| d.contains("ready")));
    assert_eq!(replayed.last().map(|f| &f["replay"]), Some(&json!(true)), "output from before the attach is replayed");

    sx.post(&id, "/channels/stdio/input", &json!({ "data": "hello\n" })).expect_status(202);
    let echoed = until(&mut stream, |f| f["data"].as_str().is_some_and(|d| d.contains("got:hello")));
    assert!(echoed.last().is_some_and(|f| f.get("replay").is_none()), "live output is not marked replay: {echoed:?}");
    sx.post(&id, "/channels/stdio/input", &json!({ "data": "YmluYXJ5Cg==", "encoding": "base64" })).expect_status(202);
    until(&mut stream, |f| f["data"].as_str().is_some_and(|d| d.contains("got:binary")));

    // Attaching, reading and writing input never move the lease or change the resource.
    let read = sx.get(&id);
    assert_eq!(read["status"]["expiresAt"], expires.as_str());
    assert_eq!(read["metadata"]["updatedAt"], session["metadata"]["updatedAt"]);
    assert_eq!(read["metadata"]["resourceVersion"], session["metadata"]["resourceVersion"]);
    // ?tenantId= is optional, and must match when given.
    sx.fx.server().get(&format!("/api/sessions/{id}?tenantId={TENANT}")).expect_status(200);

    // A second attachment replaces the first.
    let mut second = sx.stream(&format!("/api/sessions/{id}/channels/stdio/stream"));
    assert_eq!(second.next().map(|f| f["kind"].clone()), Some(json!("opened")));
    let ended = until(&mut stream, |f| f["kind"] == "closed");
    assert_eq!(ended.last(), Some(&json!({ "kind": "closed", "reason": "replaced" })));
    assert_eq!(stream.next(), None, "closed is the last frame");

    let closed = sx.post(&id, "/close", &json!({ "reason": "  task done  " }));
    closed.expect_status(200);
    let status = &closed.json["status"];
    assert_eq!(status["lifecycleState"], "closed");
    assert_eq!(status["closeReason"], "task done");
    assert!(status["closedAt"].as_str().is_some_and(is_timestamp));
    assert_eq!(status["conditions"][0]["reason"], "ClientClosed");
    assert_eq!(status["conditions"][0]["status"], "False");
    assert_eq!(closed.json["metadata"]["generation"], 2);
    let ended = until(&mut second, |f| f["kind"] == "closed");
    assert_eq!(ended.last(), Some(&json!({ "kind": "closed", "reason": "session_closed" })));

    // Closing again returns it unchanged; renewing a closed session is a conflict.
    let again = sx.fx.server().post_empty(&format!("/api/sessions/{id}/close"));
    again.expect_status(200);
    assert_eq!(again.json, closed.json);
    let renew = sx.post(&id, "/renew", &json!({}));
    renew.expect_error(409, "op.conflict");
    assert_eq!(renew.detail()["reason"], "session_not_open");
    assert_eq!(renew.detail()["lifecycleState"], "closed");
    let input = sx.post(&id, "/channels/stdio/input", &json!({ "data": "x\n" }));
    input.expect_error(409, "op.conflict");

    let listed = sx.fx.server().get(&format!("/api/sessions?tenantId={TENANT}&state=closed"));
    listed.expect_status(200);
    assert_eq!(listed.json["items"][0]["metadata"]["id"], id.as_str());
    let open = sx.fx.server().get(&format!("/api/sessions?tenantId={TENANT}&state=open"));
    assert_eq!(open.json["items"], json!([]));

    sx.fx.server().post_empty(&sx.fx.path(&format!("/{sandbox}/stop"))).expect_status(200);
    sx.fx.delete(&sandbox);
}

#[test]
fn session_exec_runs_commands_with_exit_codes_ttys_signals_and_timeouts() {
    let sx = Sx::start();
    let sandbox = sx.sandbox(&["sleep", "100000"], json!({}));
    let id = session_id(&sx.open(&sandbox, &["exec"], None));

    let result = sx.run(&id, json!({ "argv": ["sh", "-c", "echo out; echo err >&2; exit 3"] }));
    assert_eq!(result["exitCode"], 3);
    assert_eq!((result["stdout"].as_str(), result["stderr"].as_str()), (Some("out\n"), Some("err\n")));
    assert_eq!((result["signal"].clone(), result["timedOut"].clone()), (Value::Null, json!(false)));
    assert_eq!(result["truncated"], false);
    assert!(result["durationMs"].is_u64());
    assert!(result["processId"].as_str().is_some_and(|p| p.starts_with("proc-")), "{result}");

    let env =
        sx.run(&id, json!({ "argv": ["sh", "-c", "echo $GREETING; pwd"], "env": ["GREETING=hi"], "cwd": "/tmp" }));
    assert_eq!(env["stdout"], "hi\n/tmp\n");
    let stdin = sx.run(&id, json!({ "argv": ["cat"], "stdin": "piped" }));
    assert_eq!(stdin["stdout"], "piped");
    // A burst larger than the replay buffer, written before the wait attaches: the answer holds
    // all of it, or says it does not; never a cut answer that claims to be whole.
    for _ in 0..5 {
        let burst = sx.run(&id, json!({ "argv": ["sh", "-c", "yes | head -c 100000"] }));
        let length = burst["stdout"].as_str().map_or(0, str::len);
        assert!(length == 100_000 || burst["truncated"] == true, "{length} of 100000 bytes, not marked truncated");
        assert_eq!(burst["exitCode"], 0, "stderr: {}", burst["stderr"]);
    }
    let tty = sx.run(&id, json!({ "argv": ["busybox", "tty"], "tty": true }));
    assert!(tty["stdout"].as_str().is_some_and(|s| s.starts_with("/dev/pts/")), "{tty}");
    let missing = sx.run(&id, json!({ "argv": ["/no/such/binary"] }));
    assert_eq!(missing["exitCode"], 127, "{missing}");
    let timed_out = sx.run(&id, json!({ "argv": ["sleep", "30"], "timeoutMs": 300 }));
    assert_eq!(timed_out["timedOut"], true, "{timed_out}");

    // A background process: listed, streamed, signalled.
    let started = sx.post(&id, "/exec", &json!({ "argv": ["sh", "-c", "echo started; exec sleep 1000"] }));
    started.expect_status(201);
    let pid = started.json["processId"].as_str().expect("processId").to_owned();
    let process = sx.fx.server().get(&format!("/api/sessions/{id}/processes/{pid}"));
    process.expect_status(200);
    assert_eq!(process.json["state"], "running");
    assert_eq!(process.json["tty"], false);
    assert!(process.json["finishedAt"].is_null() && process.json["exitCode"].is_null());
    let listed = sx.fx.server().get(&format!("/api/sessions/{id}/processes"));
    assert!(listed.json["items"].as_array().is_some_and(|items| items.iter().any(|p| p["processId"] == pid.as_str())));

    let mut stream = sx.stream(&format!("/api/sessions/{id}/processes/{pid}/stream"));
    assert_eq!(
        stream.next(),
        Some(json!({ "kind": "opened", "channel": "exec", "targetGeneration": 1, "processId": pid }))
    );
    until(&mut stream, |f| f["data"].as_str().is_some_and(|d| d.contains("started")));
    sx.post(&id, &format!("/processes/{pid}/signal"), &json!({ "signal": "BOGUS" }))
        .expect_error(400, "op.invalid_input");
    sx.post(&id, &format!("/processes/{pid}/signal"), &json!({ "signal": "TERM" })).expect_status(202);
    let ended = until(&mut stream, |f| f["kind"] == "closed");
    let exit = ended.iter().find(|f| f["kind"] == "exit").expect("an exit frame");
    assert_eq!(exit["signal"], "SIGTERM", "{exit}");
    assert_eq!(ended.last(), Some(&json!({ "kind": "closed", "reason": "source_closed" })));
    let exited = sx.post(&id, &format!("/processes/{pid}/signal"), &json!({ "signal": "SIGKILL" }));
    exited.expect_error(409, "op.conflict");
    assert_eq!(exited.detail()["reason"], "process_exited");
    let gone = sx.fx.server().get(&format!("/api/sessions/{id}/processes/proc-00000000000000000000000000"));
    gone.expect_error(404, "op.not_found");
    assert_eq!(gone.detail()["resource"], "process");

    sx.post(&id, "/exec", &json!({ "argv": [] })).expect_field(400, "op.invalid_input", "argv");
    sx.post(&id, "/exec", &json!({ "argv": ["true"], "cwd": "tmp" })).expect_field(400, "op.invalid_input", "cwd");
    sx.post(&id, "/exec?wait=true", &json!({ "argv": ["true"], "timeoutMs": 600_001 })).expect_field(
        400,
        "op.invalid_input",
        "timeoutMs",
    );
    sx.post(&id, "/exec", &json!({ "argv": ["true"], "shell": true })).expect_error(400, "op.invalid_input");
    // Channels the session was not opened with.
    sx.fx.server().get(&format!("/api/sessions/{id}/files/stat?path=/")).expect_error(400, "op.invalid_input");
    sx.fx.delete(&sandbox);
}

/// Removes a host file when dropped (also when the test fails).
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

#[test]
fn session_files_never_reach_outside_the_sandbox() {
    let sx = Sx::start();
    let secret = format!("/tmp/nimbus-host-secret-{}", std::process::id());
    std::fs::write(&secret, "HOST").expect("write the host secret");
    let _cleanup = RemoveOnDrop(secret.clone());
    let sandbox = sx.sandbox(&["sleep", "100000"], json!({}));
    let id = session_id(&sx.open(&sandbox, &["exec", "files"], None));
    let files = |query: &str| format!("/api/sessions/{id}/files{query}");

    let put = sx.fx.server().authed(
        "PUT",
        &files("?path=/work/notes.txt"),
        &[("Content-Type", "text/plain")],
        Some(b"hello"),
    );
    put.expect_status(200);
    assert_eq!(put.json["size"], 5);
    assert_eq!(put.json["mode"], "0644");
    assert_eq!(put.json["type"], "file");
    let read = sx.fx.server().get(&files("?path=/work/notes.txt"));
    read.expect_status(200);
    assert_eq!(read.body, b"hello");
    assert_eq!(read.header("x-nimbus-file-size"), Some("5"));
    assert_eq!(read.header("x-nimbus-file-mode"), Some("0644"));
    assert!(read.header("last-modified").is_some());
    let seen = sx.run(&id, json!({ "argv": ["cat", "/work/notes.txt"] }));
    assert_eq!(seen["stdout"], "hello", "written content is visible to processes at once");
    let ranged = sx.fx.server().get(&files("?path=/work/notes.txt&offset=1&length=3"));
    assert_eq!(ranged.body, b"ell");

    // The attack list: every path resolves inside the sandbox's root.
    let setup = sx.run(
        &id,
        json!({ "argv": ["sh", "-c", format!(
            "ln='busybox ln -s'; $ln {secret} /tmp/abs && $ln /tmp/loop /tmp/loop && $ln /proc/self/root /tmp/procroot \
             && $ln ../../../../../../.. /tmp/up && $ln / /tmp/rootdir && echo inside > /tmp/inside"
        )] }),
    );
    assert_eq!(setup["exitCode"], 0, "{setup}");
    let attacks = [
        format!("/../../../../..{secret}"),
        "/tmp/abs".to_owned(),
        format!("/tmp/up{secret}"),
        format!("/tmp/rootdir/../..{secret}"),
        format!("/tmp/procroot{secret}"),
        "/tmp/loop".to_owned(),
        format!("/proc/1/root{secret}"),
    ];
    for path in &attacks {
        let resp = sx.fx.server().get(&files(&format!("?path={}", enc(path))));
        assert!(matches!(resp.status, 400 | 404), "GET {path} must stay inside: {resp}");
    }
    // Writes land inside the sandbox or are refused; never on the host.
    for path in &attacks {
        let write = sx.fx.server().authed("PUT", &files(&format!("?path={}", enc(path))), &[], Some(b"pwned"));
        assert!(write.status == 200 || (400..500).contains(&write.status), "PUT {path}: {write}");
    }
    let inside = sx.run(&id, json!({ "argv": ["cat", secret.as_str()] }));
    assert_eq!(inside["stdout"], "pwned", "the writes went to the sandbox's own path: {inside}");
    assert_eq!(std::fs::read_to_string(&secret).expect("host secret"), "HOST", "the host file is untouched");
    let via_link = sx.fx.server().get(&files(&format!("?path={}", enc("/tmp/rootdir/tmp/inside"))));
    assert_eq!(via_link.body, b"inside\n", "a symlinked directory resolves inside the sandbox: {via_link}");
    let stat = sx.fx.server().get(&files("/stat?path=/tmp/abs"));
    stat.expect_status(200);
    assert_eq!((stat.json["type"].as_str(), stat.json["target"].as_str()), (Some("symlink"), Some(secret.as_str())));
    let list = sx.fx.server().get(&files("/list?path=/work"));
    list.expect_status(200);
    assert_eq!(list.json["entries"][0]["name"], "notes.txt");
    assert_eq!(list.json["truncated"], false);

    sx.fx.server().delete(&files("?path=/work")).expect_error(409, "op.conflict");
    sx.fx.server().delete(&files("?path=/work&recursive=true")).expect_status(204);
    sx.fx.server().get(&files("?path=/work/notes.txt")).expect_error(404, "op.not_found");
    sx.fx.delete(&sandbox);
}

#[test]
fn session_expiry_closes_streams_and_kills_its_processes() {
    let sx = Sx::start();
    let sandbox = sx.sandbox(&["sleep", "100000"], json!({}));
    let short = sx.open(&sandbox, &["exec"], Some(1500));
    let id = session_id(&short);
    let started = sx.post(&id, "/exec", &json!({ "argv": ["sleep", "1000"] }));
    started.expect_status(201);
    let pid = started.json["processId"].as_str().expect("processId").to_owned();
    let mut stream = sx.stream(&format!("/api/sessions/{id}/processes/{pid}/stream"));
    let frames = until(&mut stream, |f| f["kind"] == "closed");
    assert_eq!(frames.last(), Some(&json!({ "kind": "closed", "reason": "session_expired" })), "{frames:?}");
    assert_eq!(stream.next(), None);

    let expired = sx.get(&id);
    assert_eq!(expired["status"]["lifecycleState"], "expired");
    assert_eq!(expired["status"]["closeReason"], "expired");
    assert_eq!(expired["status"]["conditions"][0]["reason"], "LeaseExpired");
    assert_eq!(expired["spec"]["expiresAt"], short["spec"]["expiresAt"], "expiry never moves the lease");
    let exec = sx.post(&id, "/exec", &json!({ "argv": ["true"] }));
    exec.expect_error(409, "op.conflict");
    assert_eq!(exec.detail()["lifecycleState"], "expired");

    let check = session_id(&sx.open(&sandbox, &["exec"], None));
    let ps = sx.run(&check, json!({ "argv": ["ps", "-o", "pid,args"] }));
    let survivors =
        ps["stdout"].as_str().unwrap_or("").lines().filter(|l| l.trim_end().ends_with(" sleep 1000")).count();
    assert_eq!(survivors, 0, "the expired session's process runs on: {ps}");
    // Closing an expired session returns it unchanged.
    let closed = sx.post(&id, "/close", &json!({}));
    assert_eq!(closed.json, expired);

    // A stopped target closes its sessions with `target_stopped`.
    sx.fx.server().post_empty(&sx.fx.path(&format!("/{sandbox}/stop"))).expect_status(200);
    let stopped = sx.get(&check);
    assert_eq!(stopped["status"]["lifecycleState"], "closed");
    assert_eq!(stopped["status"]["closeReason"], "target_stopped");
    assert_eq!(stopped["status"]["conditions"][0]["reason"], "TargetStopped");
    sx.fx.delete(&sandbox);
}

#[test]
fn session_errors_and_lease_rules() {
    let sx = Sx::start();
    let server = sx.fx.server();
    let sandbox = sx.sandbox(&["sleep", "100000"], json!({}));
    let open = |body: Value| sx.open_raw(&body);
    let target = json!({ "sandbox": { "id": sandbox } });

    open(json!({ "target": target, "channels": ["exec"] })).expect_field(400, "op.invalid_input", "tenantId");
    open(json!({ "tenantId": "nobody", "target": target, "channels": ["exec"] }))
        .expect_error(404, "session.tenant_not_found");
    open(json!({ "tenantId": TENANT, "target": {}, "channels": ["exec"] })).expect_field(
        400,
        "op.invalid_input",
        "target",
    );
    open(json!({ "tenantId": TENANT, "target": { "sandbox": { "id": sandbox }, "service": { "name": "web" } }, "channels": ["exec"] }))
        .expect_field(400, "op.invalid_input", "target");
    open(json!({ "tenantId": TENANT, "target": target, "channels": ["shell"] })).expect_field(
        400,
        "op.invalid_input",
        "channels[0]",
    );
    open(json!({ "tenantId": TENANT, "target": target, "channels": ["exec", "exec"] })).expect_field(
        400,
        "op.invalid_input",
        "channels[1]",
    );
    open(json!({ "tenantId": TENANT, "target": target, "channels": [] })).expect_field(
        400,
        "op.invalid_input",
        "channels",
    );
    open(json!({ "tenantId": TENANT, "target": target, "channels": ["cdp"] })).expect_field(
        400,
        "op.invalid_input",
        "channels[0]",
    );
    open(json!({ "tenantId": TENANT, "target": target, "channels": ["exec"], "requestedTtlMs": 0 })).expect_field(
        400,
        "op.invalid_input",
        "requestedTtlMs",
    );
    open(json!({ "tenantId": TENANT, "target": target, "channels": ["exec"], "extra": 1 }))
        .expect_error(400, "op.invalid_input");
    let unknown = open(
        json!({ "tenantId": TENANT, "target": { "sandbox": { "id": "nope-01j9z4c8e2g4j6m8p0r2t4w6y8" } }, "channels": ["exec"] }),
    );
    unknown.expect_error(404, "op.not_found");
    assert_eq!(unknown.detail()["resource"], "sandbox");
    open(json!({ "tenantId": TENANT, "target": { "service": { "name": "web" } }, "channels": ["exec"] }))
        .expect_error(404, "op.not_found");
    let stopped = sx.sandbox(&["sleep", "100000"], json!({}));
    server.post_empty(&sx.fx.path(&format!("/{stopped}/stop"))).expect_status(200);
    let not_ready =
        open(json!({ "tenantId": TENANT, "target": { "sandbox": { "id": stopped } }, "channels": ["exec"] }));
    not_ready.expect_error(409, "op.conflict");
    assert_eq!(not_ready.detail()["reason"], "target_not_ready");
    assert_eq!(not_ready.detail()["lifecycleState"], "stopped");

    // TTLs: clamped at 1 h; renew never shortens and bumps the generation.
    let long = sx.open(&sandbox, &["stdio", "exec"], Some(10_000_000));
    let created = jiff_ms(long["metadata"]["createdAt"].as_str().expect("createdAt"));
    assert_eq!(jiff_ms(long["spec"]["expiresAt"].as_str().expect("expiresAt")) - created, 3_600_000);
    let id = session_id(&long);
    let renewed = sx.post(&id, "/renew", &json!({ "requestedTtlMs": 1000 }));
    renewed.expect_status(200);
    assert_eq!(renewed.json["spec"]["expiresAt"], long["spec"]["expiresAt"], "renew never shortens");
    assert_eq!(renewed.json["metadata"]["generation"], 2);
    sx.post(&id, "/renew", &json!({ "requestedTtlMs": 0 })).expect_field(400, "op.invalid_input", "requestedTtlMs");
    let short = session_id(&sx.open(&sandbox, &["exec"], Some(60_000)));
    let extended = sx.fx.server().post_empty(&format!("/api/sessions/{short}/renew"));
    extended.expect_status(200);
    let extended_ms = jiff_ms(extended.json["status"]["expiresAt"].as_str().expect("expiresAt"));
    assert!(extended_ms - jiff_ms(extended.json["metadata"]["createdAt"].as_str().expect("createdAt")) >= 900_000);
    sx.post(&short, "/close", &json!({ "reason": "x".repeat(257) })).expect_field(400, "op.invalid_input", "reason");
    let blank = sx.post(&short, "/close", &json!({ "reason": "   " }));
    assert_eq!(blank.json["status"]["closeReason"], "client_close");

    // Lookups: unknown ids, other tenants, bad tenants.
    let missing = server.get("/api/sessions/session-01j9z5a1c3e5g7j9m1p3r5t7w9");
    missing.expect_error(404, "op.not_found");
    assert_eq!(missing.detail()["resource"], "session");
    server.create_tenant("second");
    server.get(&format!("/api/sessions/{id}?tenantId=second")).expect_error(404, "op.not_found");
    server
        .post_json(&format!("/api/sessions/{id}/close?tenantId=second"), &json!({}))
        .expect_error(404, "op.not_found");
    server.get(&format!("/api/sessions/{id}?tenantId=ghost")).expect_error(404, "session.tenant_not_found");
    server.get("/api/sessions").expect_field(400, "op.invalid_input", "tenantId");
    server.get(&format!("/api/sessions?tenantId={TENANT}&state=sleepy")).expect_field(400, "op.invalid_input", "state");
    let page = server.get(&format!("/api/sessions?tenantId={TENANT}&limit=1"));
    page.expect_status(200);
    assert_eq!(page.json["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page.json["metadata"]["remainingCount"], 1);
    let token = page.json["metadata"]["nextPageToken"].as_str().expect("nextPageToken").to_owned();
    let rest = server.get(&format!("/api/sessions?tenantId={TENANT}&limit=1&pageToken={token}"));
    assert!(rest.json["metadata"].get("nextPageToken").is_none(), "{rest}");

    // Channel preconditions.
    let stream = |channel: &str| server.get(&format!("/api/sessions/{id}/channels/{channel}/stream"));
    stream("files").expect_field(400, "op.invalid_input", "channel");
    stream("exec").expect_field(400, "op.invalid_input", "channel");
    stream("tty").expect_field(400, "op.invalid_input", "channel");
    let resize = sx.post(&id, "/channels/stdio/resize", &json!({ "cols": 100, "rows": 40 }));
    resize.expect_error(409, "op.conflict");
    assert_eq!(resize.detail()["reason"], "not_a_tty");
    sx.post(&id, "/channels/stdio/resize", &json!({ "cols": 0, "rows": 40 })).expect_field(
        400,
        "op.invalid_input",
        "cols",
    );
    let big = "x".repeat(1024 * 1024 + 1);
    sx.post(&id, "/channels/stdio/input", &json!({ "data": big })).expect_error(413, "op.payload_too_large");

    // Deleting the tenant closes its sessions.
    server.delete(&format!("/api/tenants/{TENANT}")).expect_status(204);
    server.get(&format!("/api/sessions/{id}")).expect_error(404, "op.not_found");
}

/// Epoch ms of a `YYYY-MM-DDTHH:MM:SS.mmmZ` timestamp.
fn jiff_ms(text: &str) -> i64 {
    let (date, time) = text.trim_end_matches('Z').split_once('T').expect("timestamp");
    let d: Vec<i64> = date.split('-').map(|p| p.parse().expect("date")).collect();
    let (hms, ms) = time.split_once('.').expect("millis");
    let t: Vec<i64> = hms.split(':').map(|p| p.parse().expect("time")).collect();
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms.parse::<i64>().expect("ms")
}

#[test]
fn sessions_survive_a_server_restart_unless_their_target_is_lost() {
    let mut sx = Sx::start();
    let kept = sx.sandbox(&["sleep", "100000"], json!({}));
    let lost = sx.sandbox(&["sleep", "100000"], json!({}));
    let session = sx.open(&kept, &["exec"], None);
    let id = session_id(&session);
    let started = sx.post(&id, "/exec", &json!({ "argv": ["sleep", "1000"] }));
    started.expect_status(201);
    let pid = started.json["processId"].as_str().expect("processId").to_owned();
    let orphan = session_id(&sx.open(&lost, &["exec"], None));

    sx.fx.server.as_mut().expect("server").stop();
    // The supervisor of `lost` dies while no server runs.
    let pid_file = sx.fx.dirs.data().join("sandboxes").join(&lost).join("supervisor.pid");
    let supervisor: i32 = std::fs::read_to_string(&pid_file).expect("supervisor.pid").trim().parse().expect("pid");
    kill9(supervisor);
    sx.fx.server = Some(crate::harness::Server::start_in(&sx.fx.dirs));

    let reloaded = sx.get(&id);
    assert_eq!(reloaded["status"]["lifecycleState"], "open", "{reloaded}");
    assert_eq!(reloaded["spec"]["expiresAt"], session["spec"]["expiresAt"]);
    assert_eq!(reloaded["metadata"]["resourceVersion"], session["metadata"]["resourceVersion"]);
    let process = sx.fx.server().get(&format!("/api/sessions/{id}/processes/{pid}"));
    assert_eq!(process.json["state"], "running", "exec processes keep running: {process}");
    assert_eq!(sx.run(&id, json!({ "argv": ["echo", "still here"] }))["stdout"], "still here\n");

    let closed = sx.get(&orphan);
    assert_eq!(closed["status"]["lifecycleState"], "closed", "{closed}");
    assert_eq!(closed["status"]["closeReason"], "target_stopped");
    sx.fx.delete(&kept);
    sx.fx.delete(&lost);
}

#[allow(unsafe_code)]
fn kill9(pid: i32) {
    // SAFETY: `kill(2)` has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill -9 {pid}: {}", io::Error::last_os_error());
}

/// Reads WebSocket messages until a text frame matching `what`; returns it.
fn ws_until(socket: &mut tungstenite::WebSocket<TcpStream>, what: impl Fn(&Value) -> bool) -> Value {
    loop {
        match socket.read().expect("a WebSocket message") {
            tungstenite::Message::Text(text) => {
                let frame: Value = serde_json::from_str(text.as_str()).expect("a JSON text frame");
                if what(&frame) {
                    return frame;
                }
            }
            tungstenite::Message::Close(frame) => panic!("closed early: {frame:?}"),
            _ => {}
        }
    }
}

#[test]
fn session_websocket_carries_frames_input_and_errors() {
    use tungstenite::client::IntoClientRequest;

    let sx = Sx::start();
    let sandbox = sx.sandbox(&["sh", "-c", "while read l; do echo got:$l; done"], json!({}));
    let id = session_id(&sx.open(&sandbox, &["stdio"], None));
    // Preconditions fail as HTTP envelopes before the upgrade.
    sx.fx.server().get(&format!("/api/sessions/{id}/channels/files/ws")).expect_error(400, "op.invalid_input");

    let port = sx.fx.server().port;
    let request = || {
        let mut request = format!("ws://127.0.0.1:{port}/api/sessions/{id}/channels/stdio/ws")
            .into_client_request()
            .expect("request");
        let auth = format!("Bearer {}", sx.fx.server().token()).parse().expect("header");
        request.headers_mut().insert("authorization", auth);
        request
    };
    let connect = || {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        stream
    };
    let (mut socket, response) = tungstenite::client::client(request(), connect()).expect("upgrade");
    assert_eq!(response.status().as_u16(), 101);
    let opened = ws_until(&mut socket, |_| true);
    assert_eq!(opened, json!({ "kind": "opened", "channel": "stdio", "targetGeneration": 1 }));

    let send = |socket: &mut tungstenite::WebSocket<TcpStream>, value: Value| {
        socket.send(tungstenite::Message::text(value.to_string())).expect("send");
    };
    send(&mut socket, json!({ "kind": "input", "data": "over ws\n" }));
    ws_until(&mut socket, |f| f["data"].as_str().is_some_and(|d| d.contains("got:over ws")));
    // The WebSocket is the live attachment: HTTP input reaches the same process.
    sx.post(&id, "/channels/stdio/input", &json!({ "data": "over http\n" })).expect_status(202);
    ws_until(&mut socket, |f| f["data"].as_str().is_some_and(|d| d.contains("got:over http")));

    // Invalid messages are answered with an error and the socket stays open.
    send(&mut socket, json!({ "kind": "shout" }));
    let error = ws_until(&mut socket, |f| f["kind"] == "error");
    assert_eq!(error["error"]["code"], "op.invalid_input");
    assert!(error["error"]["requestId"].as_str().is_some_and(crate::harness::is_request_id));
    send(&mut socket, json!({ "kind": "resize", "cols": 80, "rows": 24 }));
    let not_tty = ws_until(&mut socket, |f| f["kind"] == "error");
    assert_eq!(not_tty["error"]["detail"]["reason"], "not_a_tty");
    send(&mut socket, json!({ "kind": "input", "data": "still open\n" }));
    ws_until(&mut socket, |f| f["data"].as_str().is_some_and(|d| d.contains("got:still open")));

    // A client message over the inbound cap (1 MiB, as on `/ws`) closes the attachment with 1009;
    // the session stays open for a new one.
    let huge = json!({ "kind": "input", "data": "x".repeat(2 * 1024 * 1024) });
    let _ = socket.send(tungstenite::Message::text(huge.to_string()));
    let close = loop {
        match socket.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame,
            Ok(_) => continue,
            Err(e) => panic!("expected a close frame, got {e}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1009), "a too-big message closes with 1009");
    assert_eq!(sx.get(&id)["status"]["lifecycleState"], "open");

    let (mut socket, _) = tungstenite::client::client(request(), connect()).expect("upgrade again");
    ws_until(&mut socket, |f| f["kind"] == "opened");
    sx.post(&id, "/close", &json!({})).expect_status(200);
    let closed = ws_until(&mut socket, |f| f["kind"] == "closed");
    assert_eq!(closed["reason"], "session_closed");
    match socket.read().expect("the close frame") {
        tungstenite::Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected a close frame, got {other:?}"),
    }
    sx.fx.delete(&sandbox);
}

#[test]
fn a_stdio_client_that_stops_reading_is_told_backpressure() {
    let sx = Sx::start();
    let sandbox = sx.sandbox(&["yes", "a line of output the client will not keep up with"], json!({}));
    let session = session_id(&sx.open(&sandbox, &["stdio"], None));
    let mut lines = sx.stream(&format!("/api/sessions/{session}/channels/stdio/stream"));
    // The client reads nothing. Once more than 64 KiB is pending for it, the server ends the
    // attachment; from then on input has no live attachment to go to.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let resp = sx.post(&session, "/channels/stdio/input", &json!({ "data": "x" }));
        if resp.status == 409 {
            assert_eq!(resp.detail()["reason"], "no_attachment", "{resp}");
            break;
        }
        resp.expect_status(202);
        assert!(std::time::Instant::now() < deadline, "the attachment of a client that reads nothing never ended");
    }
    // What was pending still arrives, and the stream ends with a frame that says why.
    let frames = until(&mut lines, |f| f["kind"] == "closed");
    assert_eq!(frames.last().map(|f| f["reason"].clone()), Some(json!("backpressure")), "{:?}", frames.last());
    assert!(frames.iter().any(|f| f["kind"] == "stdout"), "output before the cut-off was delivered");
    // Nothing else suffered: the session is open and the process still runs.
    assert_eq!(sx.get(&session)["status"]["lifecycleState"], "open");
    let sandbox_now = sx.fx.server().get(&sx.fx.path(&format!("/{sandbox}")));
    assert_eq!(sandbox_now.json["status"]["lifecycleState"], "ready");
}

/// Attack: the sandbox replaces its `/etc/passwd` with a FIFO (reading it would block forever),
/// then with a sparse terabyte, and asks exec for a `user`. Each is refused with a catalogued
/// error, and the session's later execs still run.
#[test]
fn a_forged_etc_passwd_never_hangs_exec() {
    let sx = Sx::start();
    let sandbox = sx.sandbox(&["sleep", "100000"], json!({}));
    let id = session_id(&sx.open(&sandbox, &["exec"], None));
    let forge = |script: &str| assert_eq!(sx.run(&id, json!({ "argv": ["sh", "-c", script] }))["exitCode"], 0);
    let as_user = || sx.post(&id, "/exec?wait=true", &json!({ "argv": ["id", "-u"], "user": "app" }));

    forge("rm -f /etc/passwd && busybox mkfifo /etc/passwd");
    let fifo = as_user();
    fifo.expect_error(400, "op.invalid_input");
    assert!(fifo.detail()["reason"].as_str().is_some_and(|r| r.contains("not a regular file")), "{fifo}");

    forge("rm -f /etc/passwd && dd if=/dev/zero of=/etc/passwd bs=1 count=1 seek=1099511627775 2>/dev/null");
    let huge = as_user();
    huge.expect_error(400, "op.invalid_input");
    assert!(huge.detail()["reason"].as_str().is_some_and(|r| r.contains("larger than")), "{huge}");

    assert_eq!(
        sx.run(&id, json!({ "argv": ["echo", "alive"] }))["stdout"],
        "alive\n",
        "the session still serves execs"
    );
    sx.fx.delete(&sandbox);
}

/// A `files` upload sent by hand: the head (with `Expect: 100-continue`), then, once the server
/// asks for the body (its handler has checked the session and pinned the root), the first
/// `sent` bytes of a `length`-byte body; the rest is up to the test.
fn start_upload(sx: &Sx, session: &str, path: &str, length: usize, sent: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", sx.fx.server().port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("read timeout");
    let head = format!(
        "PUT /api/sessions/{session}/files?path={} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n",
        enc(path),
        sx.fx.server().token()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("read the interim answer"), 1, "the server closed the upload");
        interim.push(byte[0]);
    }
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&interim));
    stream.write_all(sent).expect("send the first part");
    stream
}

/// The status and body of the answer on `stream`.
fn answer(stream: &mut TcpStream) -> (u16, Value) {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&text);
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && let Some(length) = head.lines().find_map(|l| l.strip_prefix("content-length: "))
            && body.len() >= length.trim().parse::<usize>().unwrap_or(usize::MAX)
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn an_upload_into_a_sandbox_that_ends_meanwhile_fails_and_a_stalled_one_times_out() {
    let sx = Sx::start();
    let sandbox = sx.sandbox(&["sleep", "100000"], json!({}));
    let id = session_id(&sx.open(&sandbox, &["exec", "files"], None));

    // A client that stops sending mid-body is answered 408 once the idle limit passed.
    let mut stalled = start_upload(&sx, &id, "/tmp/stalled", 100, b"0123456789");
    let (status, body) = answer(&mut stalled);
    assert_eq!((status, body["error"]["code"].as_str()), (408, Some("op.body_timeout")), "{body}");
    assert_eq!(body["error"]["detail"]["timeoutMs"], 10_000);
    let listed = sx.fx.server().get(&format!("/api/sessions/{id}/files/stat?path=/tmp/stalled"));
    listed.expect_error(404, "op.not_found");

    // The root is pinned when the request starts: the sandbox ends during the body, and the
    // write fails instead of landing in whatever the sandbox's pid means by then.
    let marker = format!("nimbus-pinned-{}", sandbox);
    let body = vec![b'x'; 64 * 1024];
    let mut upload = start_upload(&sx, &id, &format!("/tmp/{marker}"), body.len(), &body[..1024]);
    sx.fx
        .server()
        .post_json(&sx.fx.path(&format!("/{sandbox}/stop")), &json!({ "gracePeriodMs": 0 }))
        .expect_status(200);
    upload.write_all(&body[1024..]).expect("send the rest");
    let (status, answer) = answer(&mut upload);
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("op.conflict")), "{answer}");
    assert_eq!(answer["error"]["detail"]["reason"], "target_stopped", "{answer}");
    assert!(!std::path::Path::new("/tmp").join(&marker).exists(), "nothing reached the host's /tmp");
    sx.fx.delete(&sandbox);
}

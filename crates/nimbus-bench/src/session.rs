//! Session figures for the sandbox benchmark: exec round trip against the raw runtime's exec,
//! stdio echo latency over the WebSocket attach, and time to first command.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

use crate::sandbox::{Api, Live};

/// Timed round trips per case.
pub const ROUNDS: usize = 40;

fn sorted(mut times: Vec<Duration>) -> Vec<Duration> {
    times.sort_unstable();
    times
}

/// `runc exec <container> echo hi` against a detached `runc run` of `sleep` on `bundle`.
pub fn raw_execs(runc: &str, bundle: &Path, state: &Path) -> Result<Vec<Duration>, String> {
    let path = bundle.join("config.json");
    let mut spec: Value =
        serde_json::from_slice(&std::fs::read(&path).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    spec["process"]["args"] = json!(["/bin/sleep", "100000"]);
    std::fs::write(&path, spec.to_string()).map_err(|e| e.to_string())?;
    let id = format!("nimbus-bench-exec-{}", std::process::id());
    let runc_cmd = |args: &[&str]| {
        Command::new(runc)
            .arg("--root")
            .arg(state)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())
    };
    let bundle_arg = bundle.to_string_lossy().into_owned();
    if !runc_cmd(&["run", "--detach", "--bundle", &bundle_arg, &id])?.success() {
        return Err("runc run --detach failed".into());
    }
    let mut times = Vec::with_capacity(ROUNDS);
    let mut result = Ok(());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let output = Command::new(runc).arg("--root").arg(state).args(["exec", &id, "/bin/echo", "hi"]).output();
        times.push(started.elapsed());
        match output {
            Ok(out) if out.status.success() && out.stdout == b"hi\n" => {}
            other => {
                result = Err(format!("runc exec failed: {other:?}"));
                break;
            }
        }
    }
    let _ = runc_cmd(&["kill", &id, "KILL"]);
    let _ = runc_cmd(&["delete", "--force", &id]);
    result.map(|()| sorted(times))
}

/// Opens a session on `sandbox` (`<tenant>/sandboxes/<id>`); returns its id.
fn open_session(api: &Api, sandbox: &str, channels: &[&str]) -> Result<String, String> {
    let (tenant, id) = sandbox.split_once("/sandboxes/").ok_or("bad sandbox name")?;
    let body = json!({ "tenantId": tenant, "target": { "sandbox": { "id": id } }, "channels": channels });
    match api.call("POST", "/api/sessions", Some(("application/json", body.to_string().into_bytes())))? {
        (201, session) => Ok(session["metadata"]["id"].as_str().unwrap_or_default().to_owned()),
        (status, body) => Err(format!("session open answered {status}: {body}")),
    }
}

fn exec_echo(api: &Api, session: &str) -> Result<(), String> {
    let body = json!({ "argv": ["echo", "hi"] }).to_string().into_bytes();
    match api.call("POST", &format!("/api/sessions/{session}/exec?wait=true"), Some(("application/json", body)))? {
        (200, out) if out["stdout"] == "hi\n" && out["exitCode"] == 0 => Ok(()),
        (status, out) => Err(format!("exec answered {status}: {out}")),
    }
}

/// Nimbus `POST /exec?wait=true` of `echo hi` through an open session.
pub fn nimbus_execs(live: &mut Live<'_>, tenant: &str) -> Result<Vec<Duration>, String> {
    let (sandbox, _) = live.create(tenant, &["sleep", "100000"])?;
    let session = open_session(live.api, &sandbox, &["exec"])?;
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        exec_echo(live.api, &session)?;
        times.push(started.elapsed());
    }
    live.delete_all()?;
    Ok(sorted(times))
}

/// Create a sandbox, open a session, run `echo hi` and get its output: the whole path an agent
/// takes to its first command.
pub fn first_commands(live: &mut Live<'_>, tenant: &str) -> Result<Vec<Duration>, String> {
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let (sandbox, _) = live.create(tenant, &["sleep", "100000"])?;
        let session = open_session(live.api, &sandbox, &["exec"])?;
        exec_echo(live.api, &session)?;
        times.push(started.elapsed());
        live.delete_all()?;
    }
    Ok(sorted(times))
}

/// Input → echoed output over the stdio WebSocket of a sandbox running `cat`.
pub fn stdio_echoes(live: &mut Live<'_>, tenant: &str, address: &str, token: &str) -> Result<Vec<Duration>, String> {
    let (sandbox, _) = live.create(tenant, &["cat"])?;
    let session = open_session(live.api, &sandbox, &["stdio"])?;
    let url = format!("ws://{address}/api/sessions/{session}/channels/stdio/ws");
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let auth = format!("Bearer {token}").parse().map_err(|_| "bad token header")?;
    request.headers_mut().insert("authorization", auth);
    let stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut socket, _) = tungstenite::client::client(request, stream).map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let line = format!("echo-{round}\n");
        let started = Instant::now();
        let input = json!({ "kind": "input", "data": line }).to_string();
        socket.send(Message::text(input)).map_err(|e| e.to_string())?;
        let mut seen = String::new();
        while !seen.contains(&line) {
            let message = socket.read().map_err(|e| e.to_string())?;
            let Message::Text(text) = message else { continue };
            let frame: Value = serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
            match frame["kind"].as_str() {
                Some("stdout") if frame["replay"] != true => seen.push_str(frame["data"].as_str().unwrap_or("")),
                Some("closed") => return Err(format!("the stdio stream closed: {frame}")),
                _ => {}
            }
        }
        times.push(started.elapsed());
    }
    let _ = socket.close(None);
    live.delete_all()?;
    Ok(sorted(times))
}

//! The browser benchmark (docs/performance.md): a browser service from the browser image, then
//! (a) session open → first screenshot through the `page` channel, (b) a DevTools round trip
//! (`Runtime.evaluate` of `1+1` on the session's page) through the `cdp` channel against the same
//! call made directly to Chromium's endpoint from inside the sandbox's network namespace, and
//! (c) the service's memory at rest, in one run.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::network::{join_netns, sandbox_pid};
use crate::sandbox::{Api, ms, percentile};
use crate::server::Server;

const TENANT: &str = "bench";
/// Sessions opened for the open → screenshot figure.
const SESSIONS: usize = 20;
/// DevTools round trips per case.
const ROUND_TRIPS: usize = 300;
/// Chromium's DevTools port inside the sandbox.
const DEVTOOLS_PORT: u16 = 9222;

fn post(api: &Api, path: &str, body: Value) -> Result<Value, String> {
    match api.call("POST", path, Some(("application/json", body.to_string().into_bytes())))? {
        (200 | 201, answer) => Ok(answer),
        (status, answer) => Err(format!("POST {path} answered {status}: {answer}")),
    }
}

/// A DevTools client on a WebSocket, sending commands one at a time.
struct Devtools {
    socket: WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next: u64,
}

impl Devtools {
    fn connect(url: &str, authorization: Option<&str>) -> Result<Self, String> {
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        if let Some(authorization) = authorization {
            request.headers_mut().insert("authorization", authorization.parse().map_err(|_| "header")?);
        }
        let (socket, _) = tungstenite::connect(request).map_err(|e| format!("{url}: {e}"))?;
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
        }
        Ok(Self { socket, next: 1 })
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next;
        self.next += 1;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        self.socket.send(Message::Text(message.to_string().into())).map_err(|e| e.to_string())?;
        loop {
            if let Message::Text(text) = self.socket.read().map_err(|e| e.to_string())? {
                let reply: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                if reply["id"] == id {
                    return match reply.get("error") {
                        Some(error) => Err(format!("{method}: {error}")),
                        None => Ok(reply["result"].clone()),
                    };
                }
            }
        }
    }

    /// Attaches to `page` and times `Runtime.evaluate` of `1+1` on it.
    fn round_trips(&mut self, page: &str) -> Result<Vec<Duration>, String> {
        let attached = self.call(None, "Target.attachToTarget", json!({ "targetId": page, "flatten": true }))?;
        let session = attached["sessionId"].as_str().ok_or("no sessionId")?.to_owned();
        let mut times = Vec::with_capacity(ROUND_TRIPS);
        for _ in 0..ROUND_TRIPS {
            let started = Instant::now();
            let result =
                self.call(Some(&session), "Runtime.evaluate", json!({ "expression": "1+1", "returnByValue": true }))?;
            times.push(started.elapsed());
            if result["result"]["value"] != 2 {
                return Err(format!("1+1 gave {result}"));
            }
        }
        times.sort_unstable();
        Ok(times)
    }
}

/// Chromium's browser endpoint, asked from inside the sandbox's network namespace (its DevTools
/// server keeps the connection open: the body is read to its `Content-Length`).
fn direct_endpoint() -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", DEVTOOLS_PORT)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /json/version HTTP/1.1\r\nHost: 127.0.0.1:9222\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let body = loop {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the DevTools endpoint closed before answering".into());
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or("no Content-Length")?;
            if body.len() >= length {
                break body[..length].to_owned();
            }
        }
    };
    let version: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    version["webSocketDebuggerUrl"].as_str().map(str::to_owned).ok_or_else(|| "no webSocketDebuggerUrl".into())
}

/// Resident memory of the sandbox's processes (cgroup `rss` of `memory.stat`) and its whole
/// charge (`memory.usage_in_bytes`, page cache included), in MiB.
fn memory_mib(sandbox: &str) -> Result<(f64, f64), String> {
    let dir = format!("/sys/fs/cgroup/memory/nimbus/{sandbox}");
    let stat = std::fs::read_to_string(format!("{dir}/memory.stat")).map_err(|e| e.to_string())?;
    let rss = stat
        .lines()
        .find_map(|l| l.strip_prefix("total_rss ").or_else(|| l.strip_prefix("rss ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or("no rss in memory.stat")?;
    let usage = std::fs::read_to_string(format!("{dir}/memory.usage_in_bytes"))
        .map_err(|e| e.to_string())?
        .trim()
        .parse::<f64>()
        .map_err(|e| e.to_string())?;
    Ok((rss / 1048576.0, usage / 1048576.0))
}

/// Runs the benchmark against the `nimbus` binary at `nimbus`; the browser image comes from
/// `nimbus image build-browser` with its cache in `cache_dir`.
pub fn run(nimbus: &str, cache_dir: &str) -> Result<(), String> {
    let server = Server::start(nimbus)?;
    let api = Api::new(&server);
    let built = Instant::now();
    let status = Command::new(nimbus)
        .args(["image", "build-browser", "--quiet", "--cache-dir", cache_dir, "--url"])
        .arg(format!("http://{}", server.address))
        .arg("--data-dir")
        .arg(&server.data_dir)
        .env("NIMBUS_TOKEN", &server.token)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("nimbus image build-browser failed".into());
    }
    println!("browser image stored in {:.1} s", built.elapsed().as_secs_f64());
    post(&api, "/api/tenants", json!({ "id": TENANT }))?;
    let services = format!("/api/tenants/{TENANT}/services");
    post(
        &api,
        &services,
        json!({ "metadata": { "name": "browser" }, "spec": { "backend": { "kind": "builtIn", "provider": "browser" } } }),
    )?;
    let started = Instant::now();
    post(&api, &format!("{services}/browser/start"), json!({}))?;
    let (status, ready) = api.call("GET", &format!("{services}/browser?waitFor=ready&timeoutMs=120000"), None)?;
    if status != 200 {
        return Err(format!("the browser service never got ready: {ready}"));
    }
    let start_to_ready = started.elapsed();
    let sandbox = ready["sandboxId"].as_str().ok_or("no sandboxId")?.to_owned();
    let result = measure(&server, &api, &sandbox, start_to_ready);
    let _ = api.call("DELETE", &format!("{services}/browser?ifMatchGeneration=1&force=true"), None);
    result
}

fn measure(server: &Server, api: &Api, sandbox: &str, start_to_ready: Duration) -> Result<(), String> {
    // Memory at rest: the service ready, no session open.
    let (rss, usage) = memory_mib(sandbox)?;

    let mut opens = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let began = Instant::now();
        let session = post(
            api,
            "/api/sessions",
            json!({ "tenantId": TENANT, "target": { "service": { "name": "browser" } }, "channels": ["page"] }),
        )?;
        let id = session["metadata"]["id"].as_str().ok_or("no session id")?.to_owned();
        let (status, png) = api.post_raw(&format!("/api/sessions/{id}/page/screenshot"), "{}")?;
        opens.push(began.elapsed());
        if status != 200 || !png.starts_with(b"\x89PNG") {
            return Err(format!("screenshot answered {status}"));
        }
        post(api, &format!("/api/sessions/{id}/close"), json!({}))?;
    }
    opens.sort_unstable();

    let session = post(
        api,
        "/api/sessions",
        json!({ "tenantId": TENANT, "target": { "service": { "name": "browser" } }, "channels": ["cdp", "page"] }),
    )?;
    let id = session["metadata"]["id"].as_str().ok_or("no session id")?.to_owned();
    let pages = post(api, &format!("/api/sessions/{id}/page/pages"), json!({}))?;
    let page = pages["pages"][0]["pageId"].as_str().ok_or("no page")?.to_owned();
    let url = format!("ws://{}/api/sessions/{id}/channels/cdp/ws", server.address);
    let through = Devtools::connect(&url, Some(&format!("Bearer {}", server.token)))?.round_trips(&page)?;
    let pid = sandbox_pid(&format!("{TENANT}/sandboxes/{sandbox}"))?;
    let direct = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                join_netns(pid)?;
                Devtools::connect(&direct_endpoint()?, None)?.round_trips(&page)
            })
            .join()
            .map_err(|_| "the direct client panicked".to_owned())?
    })?;
    post(api, &format!("/api/sessions/{id}/close"), json!({}))?;

    println!(
        "browser benchmark (headless Chromium in a browser service; {} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("service start -> ready: {:.0} ms", ms(start_to_ready));
    println!("memory at rest: {rss:.0} MiB resident, {usage:.0} MiB charged to the sandbox (page cache included)");
    println!(
        "session open -> first screenshot ({SESSIONS} sessions): p50 {:.1} ms, p99 {:.1} ms",
        ms(percentile(&opens, 50.0)),
        ms(percentile(&opens, 99.0))
    );
    println!("{:<58} {:>9} {:>9}", "Runtime.evaluate(1+1), one at a time", "p50 ms", "p99 ms");
    for (name, times) in
        [("direct, inside the sandbox's network namespace", &direct), ("through the cdp channel", &through)]
    {
        println!("{name:<58} {:>9.3} {:>9.3}", ms(percentile(times, 50.0)), ms(percentile(times, 99.0)));
    }
    let ratio = ms(percentile(&through, 50.0)) / ms(percentile(&direct, 50.0));
    println!("  target: cdp channel p50 <= 1.5x direct -> {ratio:.2}x {}", if ratio <= 1.5 { "met" } else { "MISSED" });
    Ok(())
}

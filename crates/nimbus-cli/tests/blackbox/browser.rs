//! The builtIn `browser` service (docs/browser.md) with real parts: the browser image built from
//! Debian's Chromium, a browser service running it in a real sandbox, a test site on a host
//! loopback address (127.0.0.2; inside the sandbox that address is its own, so pages reach the
//! site only through the egress proxy, by an explicit allow rule), and the `page` and `cdp`
//! channels over real HTTP and WebSocket.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

use crate::browser_image::browser_image;
use crate::harness::{Dirs, Resp, wait_for_or};
use crate::sandboxes::{Fixture, TENANT};

/// The test site's pages: a heading a button changes, a form, a page that sets a cookie and one
/// that shows the cookies it got.
fn page_for(path: &str) -> (&'static str, String, Vec<String>) {
    let html = |body: &str| {
        format!("<!doctype html><html><head><title>Nimbus test site</title></head><body>{body}</body></html>")
    };
    match path.split_once('?').map_or(path, |(p, _)| p) {
        "/" => (
            "200 OK",
            html(
                r#"<h1 id="title">Welcome to the test site</h1>
<button id="change" onclick="document.getElementById('title').textContent='Clicked'">Change the title</button>
<label for="email">Email</label><input id="email" type="text">
<label for="colour">Colour</label><select id="colour"><option value="r">Red</option><option value="g">Green</option></select>
<p id="tall" style="height:3000px">tall</p>"#,
            ),
            vec![],
        ),
        "/set-cookie" => {
            let value = path.split_once("v=").map_or("none", |(_, v)| v).to_owned();
            ("200 OK", html("<p>cookie set</p>"), vec![format!("Set-Cookie: who={value}; Path=/")])
        }
        "/whoami" => (
            "200 OK",
            html(
                "<p id=\"who\"></p><script>document.getElementById('who').textContent = 'cookies: ' + document.cookie</script>",
            ),
            vec![],
        ),
        _ => ("404 Not Found", html("<h1>not here</h1>"), vec![]),
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.2 (a free port): one thread accepts, one serves each
/// connection (one request, then close). Dropping it stops the acceptor.
struct Site {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Site {
    fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.2:0").expect("listen on 127.0.0.2");
        let addr = listener.local_addr().expect("site address");
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        std::thread::spawn(move || serve(stream));
                    }
                }
            })
        };
        Site { addr, stop, acceptor: Some(acceptor) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Proxied plain HTTP arrives in origin form (the proxy forwards it so).
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let path = target.split_once("://").map_or(target.as_str(), |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
            break;
        }
    }
    let (status, body, headers) = page_for(path);
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for header in headers {
        answer.push_str(&header);
        answer.push_str("\r\n");
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    let mut stream = reader.into_inner();
    let _ = stream.write_all(answer.as_bytes());
}

/// A server allowed to reach internal addresses (the site is on host loopback), with the
/// browser image imported and a browser service `browser` created from `backend_extra` and
/// started; returns the fixture and the service's sandbox id.
fn browser_fixture(site: &Site, backend_extra: Value) -> (Fixture, String) {
    let fx = Fixture::on(Dirs::new(), |dirs: &Arc<Dirs>| {
        dirs.try_start_with_args(&["--egress-allow-internal"]).expect("server starts")
    });
    browser_image(&fx);
    let mut backend = json!({ "kind": "builtIn", "provider": "browser", "browser": {
        "network": { "egress": { "allow": [{ "host": site.addr.ip().to_string(), "ports": [site.addr.port()] }] } } } });
    crate::sandboxes::merge(&mut backend, backend_extra);
    let services = format!("/api/tenants/{TENANT}/services");
    fx.server()
        .post_json(&services, &json!({ "metadata": { "name": "browser" }, "spec": { "backend": backend } }))
        .expect_status(201);
    fx.server().post_empty(&format!("{services}/browser/start")).expect_status(200);
    let ready = fx.server().get(&format!("{services}/browser?waitFor=ready&timeoutMs=120000"));
    ready.expect_status(200);
    let sandbox = ready.json["sandboxId"].as_str().expect("sandboxId of a ready browser").to_owned();
    (fx, sandbox)
}

/// Opens a session on the browser service; returns its id.
fn open(fx: &Fixture, channels: &[&str], browser: Option<Value>) -> String {
    let mut body = json!({ "tenantId": TENANT, "target": { "service": { "name": "browser" } }, "channels": channels });
    if let Some(browser) = browser {
        body["browser"] = browser;
    }
    let opened = fx.server().post_json("/api/sessions", &body);
    opened.expect_status(201);
    opened.json["metadata"]["id"].as_str().expect("session id").to_owned()
}

fn page(fx: &Fixture, session: &str, operation: &str, body: Value) -> Resp {
    fx.server().post_json(&format!("/api/sessions/{session}/page/{operation}"), &body)
}

fn page_ok(fx: &Fixture, session: &str, operation: &str, body: Value) -> Value {
    let resp = page(fx, session, operation, body.clone());
    assert_eq!(resp.status, 200, "page/{operation} {body}: {}", resp.text());
    resp.json.clone()
}

/// The ref of the snapshot line that holds `role "name"`.
fn ref_of(snapshot: &str, role: &str, name: &str) -> String {
    let wanted = format!("{role} \"{name}\"");
    let line = snapshot
        .lines()
        .find(|l| l.contains(&wanted))
        .unwrap_or_else(|| panic!("no `{wanted}` in the snapshot:\n{snapshot}"));
    let start = line.find("[ref=").expect("a ref on the line") + 5;
    line[start..].split(']').next().expect("ref").to_owned()
}

/// The width and height in a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {:?}", &bytes[..bytes.len().min(16)]);
    assert_eq!(&bytes[12..16], b"IHDR");
    let word = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (word(16), word(20))
}

/// The page ids of every target Chromium holds, read from its DevTools endpoint through the
/// ports route (admin only): what the sessions cannot see of each other.
fn all_targets(fx: &Fixture, sandbox: &str) -> Vec<String> {
    let list = fx.server().get(&fx.path(&format!("/{sandbox}/ports/9222/json/list")));
    list.expect_status(200);
    let targets: Value = serde_json::from_slice(&list.body).expect("json/list");
    targets.as_array().expect("targets").iter().filter_map(|t| t["id"].as_str().map(str::to_owned)).collect()
}

#[test]
fn browser_sessions_drive_pages_in_contexts_of_their_own() {
    let site = Site::start();
    let (fx, sandbox) = browser_fixture(&site, json!({}));
    let services = format!("/api/tenants/{TENANT}/services");
    let definition = fx.server().get(&format!("{services}/browser/definition"));
    let backend = &definition.json["spec"]["backend"];
    assert_eq!(backend["browser"]["image"], "nimbus/browser:bookworm-1", "{backend}");
    assert_eq!(backend["browser"]["resources"]["memoryLimitBytes"], 1024 * 1024 * 1024, "{backend}");
    assert_eq!(backend["restartPolicy"], "on_failure", "{backend}");

    // Navigation, the snapshot and a click by ref.
    let alice = open(&fx, &["page", "cdp"], Some(json!({ "viewport": { "width": 640, "height": 360 } })));
    let went = page_ok(&fx, &alice, "goto", json!({ "url": site.url("/") }));
    assert_eq!((went["status"].as_u64(), went["title"].as_str()), (Some(200), Some("Nimbus test site")), "{went}");
    let first_page = went["pageId"].as_str().expect("pageId").to_owned();
    let snapshot = page_ok(&fx, &alice, "snapshot", json!({}));
    let text = snapshot["snapshot"].as_str().expect("snapshot text");
    assert!(text.contains("heading \"Welcome to the test site\""), "{text}");
    let button = ref_of(text, "button", "Change the title");
    page_ok(&fx, &alice, "click", json!({ "ref": button }));
    let title = page_ok(&fx, &alice, "text", json!({ "selector": "#title" }));
    assert_eq!(title["text"], "Clicked", "{title}");

    // Typing, selecting, evaluating.
    let email = ref_of(text, "textbox", "Email");
    page_ok(&fx, &alice, "type", json!({ "ref": email, "text": "ada@example.com" }));
    let selected = page_ok(&fx, &alice, "select", json!({ "selector": "#colour", "values": ["Green"] }));
    assert_eq!(selected["selected"], json!(["g"]), "{selected}");
    let values = page_ok(
        &fx,
        &alice,
        "evaluate",
        json!({ "expression": "[document.querySelector('#email').value, document.querySelector('#colour').value]" }),
    );
    assert_eq!(values["result"], json!(["ada@example.com", "g"]), "{values}");
    page_ok(&fx, &alice, "press", json!({ "key": "Backspace", "selector": "#email" }));
    let typed = page_ok(&fx, &alice, "evaluate", json!({ "expression": "document.querySelector('#email').value" }));
    assert_eq!(typed["result"], "ada@example.co", "{typed}");

    // Captures: the viewport asked for at the open, the full page, a PDF.
    let shot = page(&fx, &alice, "screenshot", json!({}));
    shot.expect_status(200);
    assert_eq!(shot.header("content-type"), Some("image/png"));
    assert_eq!(png_size(&shot.body), (640, 360));
    let full = page(&fx, &alice, "screenshot", json!({ "fullPage": true }));
    let (width, height) = png_size(&full.body);
    // The document's size: as wide as the viewport less its scroll bar, as tall as the page.
    assert!((600..=640).contains(&width) && height > 3000, "a full-page shot is the document's size: {width}x{height}");
    let pdf = page(&fx, &alice, "pdf", json!({}));
    pdf.expect_status(200);
    assert!(pdf.body.starts_with(b"%PDF"), "not a PDF");

    // Catalogued failures.
    let nowhere = page(&fx, &alice, "goto", json!({ "url": "http://nonexistent.invalid/" }));
    nowhere.expect_error(502, "browser.navigation_failed");
    assert_eq!(nowhere.detail()["url"], "http://nonexistent.invalid/");
    // Refused by the egress proxy (no rule allows the name), which the navigation reports.
    assert_eq!(nowhere.detail()["reason"], "egress_refused: not_allowed", "{}", nowhere.text());
    // A page cannot reach Chromium's own DevTools endpoint on the sandbox's loopback (it would
    // list and drive every session's pages).
    for devtools in ["http://127.0.0.1:9222/json/list", "http://localhost:9222/json/version"] {
        let refused = page(&fx, &alice, "goto", json!({ "url": devtools }));
        refused.expect_error(502, "browser.navigation_failed");
    }
    let fetched = page(
        &fx,
        &alice,
        "evaluate",
        json!({ "expression": "fetch('http://127.0.0.1:9222/json/list').then(r => r.text()).catch(e => 'refused: ' + e)" }),
    );
    assert!(!fetched.text().contains("webSocketDebuggerUrl"), "a page read the DevTools endpoint: {}", fetched.text());
    page(&fx, &alice, "click", json!({ "selector": "#nope" })).expect_error(404, "browser.element_not_found");
    page(&fx, &alice, "click", json!({ "ref": "e999999999" })).expect_error(404, "browser.element_not_found");
    page(&fx, &alice, "click", json!({})).expect_error(400, "op.invalid_input");
    page(&fx, &alice, "text", json!({ "pageId": "0123456789ABCDEF0123456789ABCDEF" }))
        .expect_error(404, "browser.page_not_found");
    let thrown = page(&fx, &alice, "evaluate", json!({ "expression": "(() => { throw new Error('boom') })()" }));
    thrown.expect_error(422, "browser.evaluation_failed");
    assert!(thrown.detail()["exception"].as_str().is_some_and(|e| e.contains("boom")), "{}", thrown.text());
    page(&fx, &alice, "frobnicate", json!({})).expect_error(404, "service.route_not_found");
    let stalled = page(&fx, &alice, "evaluate", json!({ "expression": "new Promise(() => {})", "timeoutMs": 300 }));
    stalled.expect_error(504, "browser.timeout");
    assert_eq!(stalled.detail()["timeoutMs"], 300);
    page(&fx, &alice, "goto", json!({ "url": site.url("/"), "extra": 1 })).expect_error(400, "op.invalid_input");

    // Pages: a second one, listed in order, closed.
    let second = page_ok(&fx, &alice, "open", json!({ "url": site.url("/whoami") }));
    let second_id = second["pageId"].as_str().expect("pageId").to_owned();
    let pages = page_ok(&fx, &alice, "pages", json!({}));
    let ids: Vec<&str> =
        pages["pages"].as_array().expect("pages").iter().filter_map(|p| p["pageId"].as_str()).collect();
    assert_eq!(ids, [first_page.as_str(), second_id.as_str()], "{pages}");
    page_ok(&fx, &alice, "close", json!({ "pageId": second_id }));
    page(&fx, &alice, "text", json!({ "pageId": second_id })).expect_error(404, "browser.page_not_found");

    // Cookies are the session's own; its storage state carries them to a new session.
    page_ok(&fx, &alice, "goto", json!({ "url": site.url("/set-cookie?v=alice") }));
    let bob = open(&fx, &["page"], None);
    page_ok(&fx, &bob, "goto", json!({ "url": site.url("/whoami") }));
    let seen = page_ok(&fx, &bob, "text", json!({ "selector": "#who" }));
    assert_eq!(seen["text"], "cookies:", "bob sees none of alice's cookies: {seen}");
    let state = page_ok(&fx, &alice, "storageState", json!({}));
    let cookies = state["cookies"].as_array().expect("cookies");
    assert!(cookies.iter().any(|c| c["name"] == "who" && c["value"] == "alice"), "{state}");
    let carol = open(&fx, &["page"], Some(json!({ "storageState": state })));
    page_ok(&fx, &carol, "goto", json!({ "url": site.url("/whoami") }));
    let restored = page_ok(&fx, &carol, "text", json!({ "selector": "#who" }));
    assert_eq!(restored["text"], "cookies: who=alice", "{restored}");

    // Closing a session closes its context: its pages leave Chromium; the others' stay.
    let bob_pages = page_ok(&fx, &bob, "pages", json!({}));
    let bob_page = bob_pages["pages"][0]["pageId"].as_str().expect("bob's page").to_owned();
    assert!(all_targets(&fx, &sandbox).contains(&first_page));
    fx.server().post_empty(&format!("/api/sessions/{alice}/close")).expect_status(200);
    let targets = all_targets(&fx, &sandbox);
    assert!(!targets.contains(&first_page), "alice's page outlived her session: {targets:?}");
    assert!(targets.contains(&bob_page), "bob's page went with alice's session: {targets:?}");
    page(&fx, &alice, "text", json!({})).expect_error(409, "op.conflict");
    for session in [&bob, &carol] {
        fx.server().post_empty(&format!("/api/sessions/{session}/close")).expect_status(200);
    }
    fx.server().delete(&format!("{services}/browser?ifMatchGeneration=1&force=true")).expect_status(204);
}

/// A DevTools client on a session's `cdp` socket.
struct Cdp {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Cdp {
    fn connect(fx: &Fixture, session: &str) -> Cdp {
        let url = format!("ws://127.0.0.1:{}/api/sessions/{session}/channels/cdp/ws", fx.server().port);
        let mut request = url.into_client_request().expect("request");
        let bearer = format!("Bearer {}", fx.server().token());
        request.headers_mut().insert("authorization", bearer.parse().expect("header"));
        let (socket, _) = tungstenite::connect(request).expect("the cdp socket opens");
        Cdp { socket, next_id: 1 }
    }

    /// Sends a command and returns its reply (events before it are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({ "id": id, "method": method, "params": params });
        self.socket.send(Message::Text(message.to_string().into())).expect("send");
        loop {
            match self.socket.read().expect("a reply") {
                Message::Text(text) => {
                    let reply: Value = serde_json::from_str(&text).expect("json");
                    if reply["id"] == id {
                        return reply;
                    }
                }
                Message::Close(_) => panic!("the socket closed before answering {method}"),
                _ => {}
            }
        }
    }

    fn page_ids(&mut self) -> Vec<String> {
        let targets = self.call("Target.getTargets", json!({}));
        targets["result"]["targetInfos"]
            .as_array()
            .expect("targetInfos")
            .iter()
            .filter(|t| t["type"] == "page")
            .filter_map(|t| t["targetId"].as_str().map(str::to_owned))
            .collect()
    }
}

#[test]
fn a_cdp_socket_sees_only_its_sessions_context_and_a_runaway_page_is_contained() {
    let site = Site::start();
    let (fx, sandbox) =
        browser_fixture(&site, json!({ "browser": { "resources": { "memoryLimitBytes": 768 * 1024 * 1024 } } }));
    let alice = open(&fx, &["cdp", "page"], None);
    let bob = open(&fx, &["cdp", "page"], None);
    let alice_first = page_ok(&fx, &alice, "pages", json!({}))["pages"][0]["pageId"].as_str().expect("page").to_owned();
    let bob_first = page_ok(&fx, &bob, "pages", json!({}))["pages"][0]["pageId"].as_str().expect("page").to_owned();

    let mut cdp = Cdp::connect(&fx, &alice);
    assert!(
        cdp.call("Browser.getVersion", json!({}))["result"]["product"].as_str().is_some_and(|p| p.contains("Chrom"))
    );
    assert_eq!(cdp.page_ids(), [alice_first.as_str()], "alice's socket sees her page only");
    let contexts = cdp.call("Target.getBrowserContexts", json!({}));
    // The session's context plays the browser's default one; no other session's is listed.
    assert_eq!(contexts["result"]["browserContextIds"], json!([]), "{contexts}");
    assert!(contexts["result"]["defaultBrowserContextId"].is_string(), "{contexts}");
    // Bob's page cannot be attached to, closed, or reached by a forged session id.
    for (method, params) in [
        ("Target.attachToTarget", json!({ "targetId": bob_first, "flatten": true })),
        ("Target.closeTarget", json!({ "targetId": bob_first })),
        ("Target.attachToBrowserTarget", json!({})),
        ("Browser.crash", json!({})),
    ] {
        let refused = cdp.call(method, params);
        assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("Not allowed")), "{method}: {refused}");
    }
    // A page created over the socket lands in alice's context, and bob never sees it.
    let created = cdp.call("Target.createTarget", json!({ "url": site.url("/") }));
    let made = created["result"]["targetId"].as_str().expect("targetId").to_owned();
    let alice_pages = page_ok(&fx, &alice, "pages", json!({}));
    assert!(
        alice_pages["pages"].as_array().expect("pages").iter().any(|p| p["pageId"] == made.as_str()),
        "{alice_pages}"
    );
    let mut bobs = Cdp::connect(&fx, &bob);
    assert_eq!(bobs.page_ids(), [bob_first.as_str()]);
    // Browser.close ends the socket, not Chromium.
    let closed = cdp.call("Browser.close", json!({}));
    assert!(closed.get("error").is_none(), "{closed}");
    assert!(page_ok(&fx, &bob, "pages", json!({}))["pages"].as_array().is_some_and(|p| p.len() == 1));
    drop(bobs);

    // A page that allocates without bound: its renderer dies at the sandbox's memory limit, the
    // service stays (or comes back) ready, and a new session works.
    let hog = open(&fx, &["page"], None);
    page_ok(&fx, &hog, "goto", json!({ "url": site.url("/") }));
    let crashed = page(
        &fx,
        &hog,
        "evaluate",
        json!({ "expression": "(() => { const keep = []; for (;;) keep.push(new Uint8Array(64 << 20).fill(7)); })()", "timeoutMs": 120000 }),
    );
    // Its renderer died at the limit; the browser process goes on.
    crashed.expect_error(502, "browser.page_crashed");
    // The renderer was killed inside the sandbox's cgroup (v1 memory controller, as on this
    // host), which never grew past its limit.
    let cgroup = format!("/sys/fs/cgroup/memory/nimbus/{sandbox}");
    let read = |file: &str| std::fs::read_to_string(format!("{cgroup}/{file}")).expect("the sandbox's memory cgroup");
    let oom = read("memory.oom_control");
    assert!(oom.lines().any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"), "no OOM kill: {oom}");
    let limit = read("memory.limit_in_bytes").trim().parse::<u64>().expect("limit");
    let peak = read("memory.max_usage_in_bytes").trim().parse::<u64>().expect("peak");
    assert!(limit == 768 * 1024 * 1024 && peak <= limit, "peak {peak} within limit {limit}");
    let services = format!("/api/tenants/{TENANT}/services");
    wait_for_or(
        "the browser service ready again after the runaway page",
        || {
            let view = fx.server().get(&format!("{services}/browser"));
            (view.json["state"] == "ready").then_some(())
        },
        || fx.server().get(&format!("{services}/browser")).text(),
    );
    let after = open(&fx, &["page"], None);
    page_ok(&fx, &after, "goto", json!({ "url": site.url("/") }));
    let shot = page(&fx, &after, "screenshot", json!({}));
    assert_eq!(png_size(&shot.body), (1280, 720), "the default viewport");

    // Chromium itself dies: the service starts a new one per its policy (on_failure), and the
    // sessions on the old one end.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &chromium_browser_pid(&sandbox).to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let restarted = wait_for_or(
        "the browser service running a new Chromium",
        || {
            let view = fx.server().get(&format!("{services}/browser")).json.clone();
            let fresh = view["sandboxId"].as_str().is_some_and(|id| id != sandbox);
            (view["state"] == "ready" && fresh).then_some(view)
        },
        || fx.server().get(&format!("{services}/browser")).text(),
    );
    assert_eq!(restarted["restartCount"], 1, "{restarted}");
    page(&fx, &after, "pages", json!({})).expect_error(409, "op.conflict");
    let again = open(&fx, &["page"], None);
    page_ok(&fx, &again, "goto", json!({ "url": site.url("/") }));
    fx.server().delete(&format!("{services}/browser?ifMatchGeneration=1&force=true")).expect_status(204);
}

/// The pid of Chromium's browser process (the one without `--type=`) in a sandbox.
fn chromium_browser_pid(sandbox: &str) -> u32 {
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/nimbus/{sandbox}/cgroup.procs"))
        .expect("the sandbox's processes");
    procs
        .lines()
        .filter_map(|line| line.trim().parse::<u32>().ok())
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"/chromium")) && !args.iter().any(|a| a.starts_with(b"--type="))
        })
        .unwrap_or_else(|| panic!("no Chromium browser process in {sandbox}: {procs}"))
}

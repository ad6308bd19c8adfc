//! The page operations against a real Chromium on this host.
//!
//! Ignored by default: the test suite runs Chromium only inside a sandbox (the black-box
//! tests drive it through the server). Run it by hand where Chromium is installed:
//! `cargo test -p nimbus-browser -- --ignored --nocapture chromium` (`NIMBUS_TEST_CHROMIUM`
//! names the binary; `/usr/bin/chromium` by default).

use std::sync::Arc;
use std::time::Instant;

use nimbus_core::ErrorCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use super::{PageAnswer, SessionPages, run};
use crate::Dial;
use crate::cdp::Connection;
use crate::context::{self, StorageState, Viewport};

/// Chromium with a fresh profile, killed (and its profile removed) on drop.
struct Chromium {
    child: Child,
    profile: std::path::PathBuf,
    port: u16,
}

impl Chromium {
    async fn start() -> Chromium {
        let binary = std::env::var("NIMBUS_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let profile = std::env::temp_dir().join(format!("nimbus-chromium-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&profile).expect("a profile directory");
        let mut child = Command::new(binary)
            .args(["--headless", "--no-sandbox", "--remote-debugging-port=0", "--no-first-run", "about:blank"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        // Chromium says where it listens on stderr: "DevTools listening on ws://127.0.0.1:PORT/…".
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let port = loop {
            let line = lines.next_line().await.expect("stderr reads").expect("chromium printed its endpoint");
            if let Some(rest) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                break rest.split('/').next().and_then(|p| p.parse().ok()).expect("a port");
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Chromium { child, profile, port }
    }

    /// Kills Chromium, waits for it to exit and removes its profile.
    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    fn dial(&self) -> Dial {
        let port = self.port;
        Arc::new(move || Box::pin(TcpStream::connect(("127.0.0.1", port))))
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

const HOME: &str = r#"<!doctype html><html><head><title>Home</title></head><body>
<h1>Welcome</h1>
<form action="/submitted" method="get">
<label for="email">Email</label><input id="email" name="email" type="text">
<label>Color <select id="color" name="color"><option value="r">Red</option><option value="g">Green</option><option value="b">Blue</option></select></label>
<button type="submit">Sign in</button>
</form>
<a href="/next">Forgot password?</a>
<button id="late" style="display:none" onclick="document.title='late clicked'">Late</button>
<script>
document.getElementById('color').addEventListener('change', e => document.title = 'changed ' + e.target.value);
setTimeout(() => document.getElementById('late').style.display = 'inline', 300);
</script>
<div style="height: 3000px">tall</div>
</body></html>"#;

/// Serves `HOME` at `/`, a 404 at `/404`, and a page naming its path anywhere else.
async fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a listener");
    let port = listener.local_addr().expect("an address").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                let (status, body) = match path.split('?').next().unwrap_or("/") {
                    "/" => ("200 OK", HOME.to_owned()),
                    "/404" => ("404 Not Found", "<p>nope</p>".to_owned()),
                    "/big" => ("200 OK", (0..40_000).map(|i| format!("<p>item {i}</p>")).collect()),
                    other => (
                        "200 OK",
                        format!("<html><head><title>{other}</title></head><body><p>at {path}</p></body></html>"),
                    ),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

async fn ok(conn: &Connection, pages: &SessionPages, operation: &str, body: Value) -> Value {
    match run(conn, pages, operation, body.clone()).await {
        Ok(PageAnswer::Json(answer)) => answer,
        Ok(PageAnswer::Binary { .. }) => panic!("{operation} answered binary"),
        Err(error) => panic!("{operation} {body} failed: {error} {:?}", error.detail),
    }
}

async fn binary(conn: &Connection, pages: &SessionPages, operation: &str, body: Value) -> (&'static str, Vec<u8>) {
    match run(conn, pages, operation, body).await {
        Ok(PageAnswer::Binary { content_type, bytes }) => (content_type, bytes),
        other => panic!("{operation}: {other:?}"),
    }
}

async fn fails(conn: &Connection, pages: &SessionPages, operation: &str, body: Value) -> nimbus_core::NimbusError {
    match run(conn, pages, operation, body.clone()).await {
        Err(error) => error,
        Ok(answer) => panic!("{operation} {body} answered {answer:?}"),
    }
}

/// The ref on the first snapshot line containing `needle`.
fn ref_of(snapshot: &str, needle: &str) -> String {
    let line = snapshot.lines().find(|line| line.contains(needle)).unwrap_or_else(|| panic!("{needle} in\n{snapshot}"));
    let start = line.rfind("[ref=").expect("a ref") + 5;
    line[start..line.len() - 1].to_owned()
}

fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

fn ms(since: Instant) -> u128 {
    since.elapsed().as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Chromium on the host; the suite runs Chromium only inside a sandbox"]
async fn chromium_page_operations() {
    let chromium = Chromium::start().await;
    let site = serve().await;
    let origin = format!("http://127.0.0.1:{site}");
    let started = Instant::now();
    let conn = Connection::connect(&chromium.dial()).await.expect("connects");
    println!("connect: {} ms", ms(started));

    let state: StorageState = serde_json::from_value(json!({
        "cookies": [{ "name": "sid", "value": "s1", "domain": "127.0.0.1", "path": "/" }],
        "origins": [{ "origin": origin, "localStorage": [{ "name": "k", "value": "v" }] }],
    }))
    .expect("a storage state");
    let viewport = Viewport { width: 1000, height: 700 };
    let started = Instant::now();
    let browser = context::create(&conn, viewport, Some(state)).await.expect("a context");
    println!("context create with storage restore: {} ms", ms(started));
    let started = Instant::now();
    let plain = context::create(&conn, Viewport::default(), None).await.expect("a context");
    println!("context create: {} ms", ms(started));
    let pages = SessionPages::new(&browser, viewport);

    let started = Instant::now();
    let home = ok(&conn, &pages, "goto", json!({ "url": format!("{origin}/") })).await;
    println!("goto: {} ms", ms(started));
    assert_eq!(
        (home["pageId"].as_str(), home["title"].as_str(), home["status"].as_u64()),
        (Some(browser.first_page.as_str()), Some("Home"), Some(200))
    );
    let restored =
        ok(&conn, &pages, "evaluate", json!({ "expression": "[localStorage.getItem('k'), document.cookie]" })).await;
    assert_eq!(restored["result"], json!(["v", "sid=s1"]));

    let started = Instant::now();
    let snapshot = ok(&conn, &pages, "snapshot", json!({})).await;
    println!("snapshot: {} ms", ms(started));
    let text = snapshot["snapshot"].as_str().expect("text");
    println!("{text}");
    assert!(text.contains("- heading \"Welcome\" [level=1]"), "{text}");

    let email = ref_of(text, "textbox \"Email\"");
    ok(&conn, &pages, "type", json!({ "ref": email, "text": "hello" })).await;
    let typed = ok(&conn, &pages, "evaluate", json!({ "expression": "document.getElementById('email').value" })).await;
    assert_eq!(typed["result"], "hello");
    ok(&conn, &pages, "press", json!({ "ref": email, "key": "Backspace" })).await;
    ok(&conn, &pages, "press", json!({ "key": "!" })).await;
    let pressed =
        ok(&conn, &pages, "evaluate", json!({ "expression": "document.getElementById('email').value" })).await;
    assert_eq!(pressed["result"], "hell!");

    ok(&conn, &pages, "press", json!({ "selector": "#email", "key": "Tab" })).await;
    let focused = ok(&conn, &pages, "evaluate", json!({ "expression": "document.activeElement.id" })).await;
    assert_eq!(focused["result"], "color", "Tab moves the focus on");
    let color = ref_of(text, "combobox \"Color\"");
    let selected = ok(&conn, &pages, "select", json!({ "ref": color, "values": ["Blue"] })).await;
    assert_eq!(selected["selected"], json!(["b"]));
    let title = ok(&conn, &pages, "evaluate", json!({ "expression": "document.title" })).await;
    assert_eq!(title["result"], "changed b", "input and change fired");
    let not_select = fails(&conn, &pages, "select", json!({ "ref": email, "values": ["x"] })).await;
    assert_eq!(not_select.code, ErrorCode::OpInvalidInput);
    let no_option = fails(&conn, &pages, "select", json!({ "selector": "#color", "values": ["Purple"] })).await;
    assert_eq!(no_option.code, ErrorCode::BrowserElementNotFound);

    let heading = ok(&conn, &pages, "text", json!({ "selector": "h1" })).await;
    assert_eq!((heading["text"].as_str(), heading["truncated"].as_bool()), (Some("Welcome"), Some(false)));
    let whole = ok(&conn, &pages, "text", json!({})).await;
    assert!(whole["text"].as_str().is_some_and(|t| t.contains("Forgot password?")));

    let started = Instant::now();
    let (kind, png) = binary(&conn, &pages, "screenshot", json!({})).await;
    println!("screenshot: {} ms, {} bytes", ms(started), png.len());
    assert_eq!((kind, png_size(&png)), ("image/png", (1000, 700)));
    let started = Instant::now();
    let (_, full) = binary(&conn, &pages, "screenshot", json!({ "fullPage": true })).await;
    println!("full-page screenshot: {} ms, {:?}", ms(started), png_size(&full));
    assert!(png_size(&full).1 > 3000);
    let started = Instant::now();
    let (kind, pdf) = binary(&conn, &pages, "pdf", json!({ "printBackground": true })).await;
    println!("pdf: {} ms, {} bytes", ms(started), pdf.len());
    assert_eq!((kind, &pdf[..5]), ("application/pdf", &b"%PDF-"[..]));

    // A button that shows itself after 300 ms: the click waits for its box.
    let late = ok(&conn, &pages, "click", json!({ "selector": "#late" })).await;
    assert!(late["url"].as_str().is_some_and(|u| u.ends_with('/')));
    let clicked = ok(&conn, &pages, "evaluate", json!({ "expression": "document.title" })).await;
    assert_eq!(clicked["result"], "late clicked");

    let link = ref_of(text, "link \"Forgot password?\"");
    let started = Instant::now();
    let navigated = ok(&conn, &pages, "click", json!({ "ref": link })).await;
    println!("click with navigation: {} ms", ms(started));
    assert_eq!(navigated["url"], format!("{origin}/next"), "the click answers once the navigation committed");
    let gone = fails(&conn, &pages, "click", json!({ "ref": email })).await;
    assert_eq!(gone.code, ErrorCode::BrowserElementNotFound, "{gone}");

    ok(&conn, &pages, "goto", json!({ "url": format!("{origin}/"), "waitUntil": "domcontentloaded" })).await;
    let submitted = ok(&conn, &pages, "type", json!({ "selector": "#email", "text": "a@b.c", "submit": true })).await;
    assert!(submitted["url"].as_str().is_some_and(|u| u.contains("/submitted?email=a%40b.c")), "{submitted}");

    let missing = ok(&conn, &pages, "goto", json!({ "url": format!("{origin}/404") })).await;
    assert_eq!(missing["status"], 404);
    let started = Instant::now();
    let failed = fails(&conn, &pages, "goto", json!({ "url": "http://nonexistent.invalid/" })).await;
    println!("failed navigation: {} ms", ms(started));
    assert_eq!(failed.code, ErrorCode::BrowserNavigationFailed);
    assert_eq!(failed.detail.as_ref().map(|d| d["reason"].clone()), Some(json!("net::ERR_NAME_NOT_RESOLVED")));
    let unparsable = fails(&conn, &pages, "goto", json!({ "url": "http://" })).await;
    assert_eq!(unparsable.code, ErrorCode::BrowserNavigationFailed, "{unparsable}");
    let internal = fails(&conn, &pages, "goto", json!({ "url": "chrome://inspect" })).await;
    assert_eq!(internal.code, ErrorCode::OpInvalidInput);
    let data = ok(&conn, &pages, "goto", json!({ "url": "data:text/html,<title>d</title><p>data</p>" })).await;
    assert_eq!((data["title"].as_str(), data.get("status")), (Some("d"), None));

    for (expression, expected) in [
        ("({ a: 1, b: [true, null] })", json!({ "a": 1, "b": [true, null] })),
        ("await new Promise(r => setTimeout(() => r(5), 10))", json!(5)),
        ("undefined", Value::Null),
        ("'x'.repeat(3)", json!("xxx")),
        ("let a = 2; a * 21", json!(42)),
    ] {
        let answer = ok(&conn, &pages, "evaluate", json!({ "expression": expression })).await;
        assert_eq!(answer["result"], expected, "{expression}");
    }
    for expression in [
        "throw new Error('boom')",
        "1n",
        "NaN",
        "(() => { const o = {}; o.o = o; return o; })()",
        "() => 1",
        "'x'.repeat(2 * 1024 * 1024)",
        "syntax error here",
    ] {
        let error = fails(&conn, &pages, "evaluate", json!({ "expression": expression })).await;
        assert_eq!(error.code, ErrorCode::BrowserEvaluationFailed, "{expression}: {error}");
        println!("evaluate {expression:?}: {}", error.message);
    }
    let started = Instant::now();
    let hung = fails(&conn, &pages, "evaluate", json!({ "expression": "while (true) {}", "timeoutMs": 500 })).await;
    println!("a busy loop ends with {} after {} ms: {}", hung.code.as_str(), ms(started), hung.message);
    assert_eq!(hung.code, ErrorCode::BrowserTimeout);
    let after = ok(&conn, &pages, "evaluate", json!({ "expression": "1 + 1" })).await;
    assert_eq!(after["result"], 2, "the page answers again after a runaway script");
    let waited =
        fails(&conn, &pages, "evaluate", json!({ "expression": "new Promise(() => {})", "timeoutMs": 300 })).await;
    assert_eq!(waited.code, ErrorCode::BrowserTimeout);

    let bad_ref = fails(&conn, &pages, "click", json!({ "ref": "e99999999" })).await;
    assert_eq!(bad_ref.code, ErrorCode::BrowserElementNotFound);
    let no_match = fails(&conn, &pages, "click", json!({ "selector": "#nope" })).await;
    assert_eq!(no_match.code, ErrorCode::BrowserElementNotFound);
    let bad_selector = fails(&conn, &pages, "click", json!({ "selector": "<<" })).await;
    assert_eq!(bad_selector.code, ErrorCode::OpInvalidInput);
    let unknown = fails(&conn, &pages, "dance", json!({})).await;
    assert_eq!(unknown.code, ErrorCode::OpNotFound);
    let bad_page = fails(&conn, &pages, "snapshot", json!({ "pageId": plain.first_page })).await;
    assert_eq!(bad_page.code, ErrorCode::BrowserPageNotFound, "another session's page is not found");

    // A page too large for one `Accessibility.getFullAXTree` answer is read node by node (and
    // a small one in one answer: every snapshot above).
    ok(&conn, &pages, "goto", json!({ "url": format!("{origin}/big") })).await;
    let started = Instant::now();
    let big = ok(&conn, &pages, "snapshot", json!({})).await;
    let big_text = big["snapshot"].as_str().expect("text");
    println!(
        "snapshot of 40000 paragraphs: {} ms, {} bytes, truncated {}",
        ms(started),
        big_text.len(),
        big["truncated"]
    );
    assert!(big_text.starts_with("- text \"item 0\" [ref=e"), "{}", &big_text[..100]);
    assert_eq!(big["truncated"], true, "40000 lines pass the text bound");
    assert!(big_text.len() > 1_000_000, "{}", big_text.len());

    // Pages: opening order, the default page moving on, closing.
    let started = Instant::now();
    let second = ok(
        &conn,
        &pages,
        "open",
        json!({ "url": format!("{origin}/second"), "viewport": { "width": 300, "height": 200 } }),
    )
    .await;
    println!("open with url: {} ms", ms(started));
    let second_id = second["pageId"].as_str().expect("an id").to_owned();
    let (_, small) = binary(&conn, &pages, "screenshot", json!({ "pageId": second_id })).await;
    assert_eq!(png_size(&small), (300, 200));
    // A page a `cdp` client creates comes after the pages the operations opened.
    let created = conn
        .call(None, "Target.createTarget", json!({ "url": "about:blank", "browserContextId": browser.context_id }))
        .await
        .expect("a client's page");
    let client_page = created["targetId"].as_str().expect("an id").to_owned();
    let unopened = fails(&conn, &pages, "open", json!({ "url": "http://nonexistent.invalid/" })).await;
    assert_eq!(unopened.code, ErrorCode::BrowserNavigationFailed);
    let listed = ok(&conn, &pages, "pages", json!({})).await;
    let ids: Vec<&str> =
        listed["pages"].as_array().expect("pages").iter().filter_map(|p| p["pageId"].as_str()).collect();
    assert_eq!(
        ids,
        [browser.first_page.as_str(), second_id.as_str(), client_page.as_str()],
        "opening order, a client's page last, and a page whose load failed closed again"
    );
    ok(&conn, &pages, "close", json!({ "pageId": client_page })).await;
    let exported = ok(&conn, &pages, "storageState", json!({})).await;
    println!("storageState: {exported}");
    assert_eq!(exported["origins"], json!([{ "origin": origin, "localStorage": [{ "name": "k", "value": "v" }] }]));
    assert!(exported["cookies"].as_array().is_some_and(|c| c.iter().any(|c| c["name"] == "sid")));
    ok(&conn, &pages, "close", json!({})).await;
    let default = ok(&conn, &pages, "text", json!({})).await;
    assert_eq!(default["pageId"], second_id.as_str(), "the earliest-opened page left is the default");
    assert_eq!(default["text"], "at /second");
    let closed = fails(&conn, &pages, "snapshot", json!({ "pageId": browser.first_page })).await;
    assert_eq!(closed.code, ErrorCode::BrowserPageNotFound);

    // The exported state restores into a fresh context.
    let state: StorageState = serde_json::from_value(exported).expect("the export parses back");
    let copy = context::create(&conn, Viewport::default(), Some(state)).await.expect("a context");
    let copy_pages = SessionPages::new(&copy, Viewport::default());
    ok(&conn, &copy_pages, "goto", json!({ "url": format!("{origin}/x") })).await;
    let copied =
        ok(&conn, &copy_pages, "evaluate", json!({ "expression": "[localStorage.getItem('k'), document.cookie]" }))
            .await;
    assert_eq!(copied["result"], json!(["v", "sid=s1"]));
    let other = SessionPages::new(&plain, Viewport::default());
    ok(&conn, &other, "goto", json!({ "url": format!("{origin}/x") })).await;
    let isolated =
        ok(&conn, &other, "evaluate", json!({ "expression": "[localStorage.getItem('k'), document.cookie]" })).await;
    assert_eq!(isolated["result"], json!([null, ""]), "contexts share nothing");

    // The page limit.
    let started = Instant::now();
    let mut opened = 1;
    let limit = loop {
        match run(&conn, &pages, "open", json!({})).await {
            Ok(_) => opened += 1,
            Err(error) => break error,
        }
    };
    println!("opened {opened} pages in {} ms", ms(started));
    assert_eq!(
        (opened, limit.code),
        (nimbus_core::limits::BROWSER_MAX_PAGES_PER_SESSION, ErrorCode::RateResourceExhausted)
    );

    // A crashed renderer.
    let session = conn.attach(&second_id).await.expect("attaches");
    let crash_conn = conn.clone();
    let crashing = tokio::spawn(async move { crash_conn.call(Some(&session), "Page.crash", json!({})).await });
    let started = Instant::now();
    let crashed =
        fails(&conn, &pages, "evaluate", json!({ "pageId": second_id, "expression": "new Promise(() => {})" })).await;
    println!("crash noticed after {} ms", ms(started));
    assert_eq!(crashed.code, ErrorCode::BrowserPageCrashed, "{crashed}");
    let still = fails(&conn, &pages, "snapshot", json!({ "pageId": second_id })).await;
    assert_eq!(still.code, ErrorCode::BrowserPageCrashed, "{still}");
    crashing.abort();
    ok(&conn, &pages, "close", json!({ "pageId": second_id })).await;

    let started = Instant::now();
    for context in [&browser, &plain, &copy] {
        context::dispose(&conn, &context.context_id).await.expect("disposes");
    }
    context::dispose(&conn, &plain.context_id).await.expect("disposing twice is fine");
    println!("dispose x3: {} ms", ms(started));
    let gone = ok(&conn, &pages, "pages", json!({})).await;
    assert_eq!(gone["pages"], json!([]), "a disposed context has no pages");
    let none = fails(&conn, &pages, "snapshot", json!({})).await;
    assert_eq!(none.code, ErrorCode::BrowserPageNotFound);

    // Chromium going away fails what waits at once.
    let last = context::create(&conn, Viewport::default(), None).await.expect("a context");
    let last_pages = SessionPages::new(&last, Viewport::default());
    let waiting = {
        let conn = conn.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let error = fails(&conn, &last_pages, "evaluate", json!({ "expression": "new Promise(() => {})" })).await;
            (error, started.elapsed())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    chromium.stop().await;
    let (error, waited) = waiting.await.expect("the task ends");
    println!("Chromium killed: {} after {} ms", error.code.as_str(), waited.as_millis());
    assert_eq!(error.code, ErrorCode::BrowserUnavailable);
    assert!(conn.is_closed());
}

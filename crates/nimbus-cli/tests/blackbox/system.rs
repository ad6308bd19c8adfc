//! Open and system routes: health, docs, llms.txt, capabilities, shutdown (conventions §10).

use serde_json::{Value, json};

use crate::harness::{Server, is_timestamp};

fn docs_dir() -> std::path::PathBuf {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs")).to_owned()
}

#[test]
fn docs_and_open_routes() {
    let mut server = Server::start();

    let resp = server.request("GET", "/health", &[], None);
    resp.expect_status(200);
    assert_eq!(resp.json, json!({ "ok": true }));
    assert!(resp.header("content-type").unwrap_or("").starts_with("application/json"), "{resp:?}");

    // Docs pages. Problems are collected so one missing page does not hide the rest of the
    // contract (capabilities, shutdown) checked below.
    let mut problems: Vec<String> = Vec::new();
    let mut check = |ok: bool, problem: String| {
        if !ok {
            problems.push(problem);
        }
    };
    let committed = std::fs::read_to_string(docs_dir().join("errors.md")).expect("docs/errors.md");
    let resp = server.request("GET", "/docs/errors.md", &[], None);
    check(resp.status == 200, format!("errors page: {resp}"));
    check(resp.text() == committed, "/docs/errors.md differs from the committed docs/errors.md".into());
    let mut pages: Vec<String> = [
        "conventions",
        "data",
        "realtime",
        "scheduling",
        "functions",
        "sandboxes",
        "sessions",
        "services",
        "errors",
        "cli",
        "sdk",
        "current-capabilities",
    ]
    .map(str::to_owned)
    .to_vec();
    // Every committed page is served too.
    for entry in std::fs::read_dir(docs_dir()).expect("docs dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(page) = name.strip_suffix(".md") {
            pages.push(page.to_owned());
        }
    }
    for page in &pages {
        let resp = server.request("GET", &format!("/docs/{page}.md"), &[], None);
        if resp.status != 200 {
            check(false, format!("GET /docs/{page}.md -> {} {}", resp.status, resp.code()));
            continue;
        }
        let content_type = resp.header("content-type").unwrap_or("").to_owned();
        check(content_type.starts_with("text/markdown"), format!("/docs/{page}.md content type {content_type:?}"));
        check(resp.text().starts_with("# "), format!("/docs/{page}.md does not start with a heading"));
    }
    let resp = server.request("GET", "/docs/nope.md", &[], None);
    resp.expect_error(404, "service.route_not_found");
    assert_eq!(resp.detail()["path"], "/docs/nope.md", "{resp}");

    // llms.txt: H1, summary blockquote, H2 link lists, an Optional section.
    let resp = server.request("GET", "/llms.txt", &[], None);
    if resp.status == 200 {
        let content_type = resp.header("content-type").unwrap_or("").to_owned();
        check(content_type.starts_with("text/plain"), format!("/llms.txt content type {content_type:?}"));
        let text = resp.text();
        check(text.starts_with("# "), "llms.txt must start with an H1".into());
        check(text.lines().any(|l| l.starts_with("> ")), "llms.txt lacks the summary blockquote".into());
        check(text.lines().any(|l| l.starts_with("## ")), "llms.txt lacks H2 sections".into());
        check(text.lines().any(|l| l.trim() == "## Optional"), "llms.txt lacks ## Optional".into());
        check(text.contains("/docs/errors.md"), "llms.txt does not link the docs pages".into());
    } else {
        check(false, format!("GET /llms.txt -> {} {}", resp.status, resp.code()));
    }
    let resp = server.request("GET", "/llms-full.txt", &[], None);
    if resp.status == 200 {
        let content_type = resp.header("content-type").unwrap_or("").to_owned();
        check(content_type.starts_with("text/plain"), format!("/llms-full.txt content type {content_type:?}"));
        check(resp.text().contains(committed.lines().next().unwrap()), "llms-full.txt lacks the errors page".into());
    } else {
        check(false, format!("GET /llms-full.txt -> {} {}", resp.status, resp.code()));
    }

    // Capabilities need the token.
    server.request("GET", "/api/system/capabilities", &[], None).expect_error(401, "auth.unauthorized");
    let resp = server.get("/api/system/capabilities");
    resp.expect_status(200);
    let caps = &resp.json;
    assert!(caps["version"].is_string(), "{caps}");
    let rows = caps["capabilities"].as_array().unwrap_or_else(|| panic!("{caps}"));
    assert!(!rows.is_empty(), "{caps}");
    for row in rows {
        assert!(row["area"].is_string() && row["capability"].is_string(), "{row}");
        assert!(matches!(row["status"].as_str(), Some("available" | "available_with_caveats" | "not_yet")), "{row}");
    }
    assert_eq!(caps["host"]["os"], std::env::consts::OS, "{caps}");
    assert_eq!(caps["host"]["sandboxBackends"]["krun"]["available"], false, "{caps}");
    assert!(caps["host"]["sandboxBackends"]["krun"]["reason"].is_string(), "{caps}");

    // Discovery file while running.
    let dirs = server.dirs();
    let record: Value =
        serde_json::from_slice(&std::fs::read(dirs.discovery_path()).expect("server.json while running")).unwrap();
    assert_eq!(record["pid"], server.pid(), "{record}");
    assert_eq!(record["address"], format!("127.0.0.1:{}", server.port), "{record}");
    assert_eq!(record["version"], env!("CARGO_PKG_VERSION"), "{record}");
    assert!(is_timestamp(record["startedAt"].as_str().unwrap_or("")), "{record}");

    // Shutdown: accepted, then a clean exit that removes server.json.
    server.request("POST", "/api/system/shutdown", &[], None).expect_error(401, "auth.unauthorized");
    let resp = server.post_empty("/api/system/shutdown");
    resp.expect_status(200);
    assert_eq!(resp.json, json!({ "accepted": true }));
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "exit after /api/system/shutdown; stderr:\n{}", server.stderr());
    assert!(!dirs.discovery_path().exists(), "server.json not removed after shutdown");

    assert!(problems.is_empty(), "docs problems:\n{}", problems.join("\n"));
}

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

    // Docs pages.
    let committed = std::fs::read_to_string(docs_dir().join("errors.md")).expect("docs/errors.md");
    let resp = server.request("GET", "/docs/errors.md", &[], None);
    resp.expect_status(200);
    assert!(resp.header("content-type").unwrap_or("").starts_with("text/markdown"), "{resp:?}");
    assert!(resp.text() == committed, "/docs/errors.md differs from the committed docs/errors.md");
    for page in [
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
    ] {
        let resp = server.request("GET", &format!("/docs/{page}.md"), &[], None);
        resp.expect_status(200);
        assert!(resp.header("content-type").unwrap_or("").starts_with("text/markdown"), "{page}: {resp:?}");
        assert!(resp.text().starts_with("# "), "/docs/{page}.md does not start with a heading");
    }
    // Every committed page is served.
    for entry in std::fs::read_dir(docs_dir()).expect("docs dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(page) = name.strip_suffix(".md") {
            server.request("GET", &format!("/docs/{page}.md"), &[], None).expect_status(200);
        }
    }
    let resp = server.request("GET", "/docs/nope.md", &[], None);
    resp.expect_error(404, "service.route_not_found");
    assert_eq!(resp.detail()["path"], "/docs/nope.md", "{resp}");

    // llms.txt: H1, summary blockquote, H2 link lists, an Optional section.
    let resp = server.request("GET", "/llms.txt", &[], None);
    resp.expect_status(200);
    assert!(resp.header("content-type").unwrap_or("").starts_with("text/plain"), "{resp:?}");
    let text = resp.text();
    assert!(text.starts_with("# "), "llms.txt must start with an H1");
    assert!(text.lines().any(|l| l.starts_with("> ")), "llms.txt lacks the summary blockquote");
    assert!(text.lines().any(|l| l.starts_with("## ")), "llms.txt lacks H2 sections");
    assert!(text.lines().any(|l| l.trim() == "## Optional"), "llms.txt lacks ## Optional");
    assert!(text.contains("/docs/errors.md"), "llms.txt does not link the docs pages");
    let resp = server.request("GET", "/llms-full.txt", &[], None);
    resp.expect_status(200);
    assert!(resp.header("content-type").unwrap_or("").starts_with("text/plain"), "{resp:?}");
    assert!(resp.text().contains(committed.lines().next().unwrap()), "llms-full.txt lacks the errors page");

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
}

//! Every route answers bad input with the documented envelope (conventions §1, §3, §8), and
//! `GET /errors` serves the committed catalog (errors §1).

use std::collections::BTreeSet;

use nimbus_core::ErrorCode;
use serde_json::{Value, json};

use crate::harness::Server;

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];
const TEXT: &[(&str, &str)] = &[("Content-Type", "text/plain")];
const NONE: &[(&str, &str)] = &[];

/// One row: a request and the answer it must get.
struct Case {
    method: &'static str,
    path: String,
    headers: &'static [(&'static str, &'static str)],
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
    /// Expected `detail.field`, when the contract names one.
    field: Option<&'static str>,
}

fn case(
    method: &'static str,
    path: impl Into<String>,
    headers: &'static [(&'static str, &'static str)],
    body: Option<&str>,
    status: u16,
    code: &'static str,
) -> Case {
    Case { method, path: path.into(), headers, body: body.map(|b| b.as_bytes().to_vec()), status, code, field: None }
}

impl Case {
    fn field(mut self, field: &'static str) -> Case {
        self.field = Some(field);
        self
    }
}

#[test]
fn every_route_enveloped_on_bad_input() {
    let server = Server::start();
    server.create_tenant("t");
    let id = server.insert("t", "items", &json!({ "a": 1 }));
    let doc = format!("/api/tenants/t/documents/items/{id}");
    let bad = 400;
    let inv = "op.invalid_input";

    let mut cases = vec![
        // Tenants.
        case("POST", "/api/tenants", JSON, Some(r#"{"id":"#), bad, inv),
        case("POST", "/api/tenants", JSON, Some(r#"{"id": 5}"#), bad, inv).field("id"),
        case("POST", "/api/tenants", JSON, Some("{}"), bad, inv).field("id"),
        case("POST", "/api/tenants", JSON, None, bad, inv),
        case("POST", "/api/tenants", TEXT, Some(r#"{"id":"x"}"#), 415, inv),
        case(
            "POST",
            "/api/tenants",
            &[("Content-Type", "application/json; charset=latin1")],
            Some(r#"{"id":"x"}"#),
            415,
            inv,
        ),
        case("POST", "/api/tenants", JSON, Some("\u{feff}{\"id\":\"x\"} trailing"), bad, inv),
        // Documents.
        case("POST", "/api/tenants/t/documents", JSON, Some("not json"), bad, inv),
        case("POST", "/api/tenants/t/documents", JSON, Some(r#"{"table": 1, "fields": {}}"#), bad, inv).field("table"),
        case("POST", "/api/tenants/t/documents", JSON, Some(r#"{"fields": {}}"#), bad, inv).field("table"),
        case("POST", "/api/tenants/t/documents", JSON, Some(r#"{"table": "items"}"#), bad, inv).field("fields"),
        case("POST", "/api/tenants/t/documents", JSON, Some(r#"{"table": "items", "fields": 3}"#), bad, inv)
            .field("fields"),
        case("POST", "/api/tenants/t/documents", TEXT, Some(r#"{"table": "items", "fields": {}}"#), 415, inv),
        case(
            "POST",
            "/api/tenants/t/documents",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some("table=items"),
            415,
            inv,
        ),
        case("PATCH", doc.clone(), JSON, Some("{"), bad, inv),
        case("PATCH", doc.clone(), JSON, Some(r#"{"patch": 3}"#), bad, inv).field("patch"),
        case("PATCH", doc.clone(), JSON, Some("{}"), bad, inv).field("patch"),
        case("PATCH", doc.clone(), TEXT, Some(r#"{"patch": {}}"#), 415, inv),
        case("GET", "/api/tenants/t/documents/items?limit=0", NONE, None, bad, inv).field("limit"),
        case("GET", "/api/tenants/t/documents/items?cursor=zzz", NONE, None, bad, inv).field("cursor"),
        case("GET", "/api/tenants/t/documents/items/abc", NONE, None, 404, "op.document_not_found"),
        // Queries.
        case("POST", "/api/tenants/t/query", JSON, Some("[1,"), bad, inv),
        case("POST", "/api/tenants/t/query", JSON, Some(r#"{"table": "items"}"#), bad, inv).field("filters"),
        case("POST", "/api/tenants/t/query", JSON, Some(r#"{"filters": []}"#), bad, inv).field("table"),
        case(
            "POST",
            "/api/tenants/t/query",
            JSON,
            Some(r#"{"table": "items", "filters": [], "limit": "x"}"#),
            bad,
            inv,
        )
        .field("limit"),
        case(
            "POST",
            "/api/tenants/t/query",
            JSON,
            Some(r#"{"table": "items", "filters": [{"field": "a", "op": "gt", "value": true}]}"#),
            bad,
            inv,
        )
        .field("filters[0].value"),
        case("POST", "/api/tenants/t/query", TEXT, Some(r#"{"table": "items", "filters": []}"#), 415, inv),
        case("POST", "/api/tenants/t/query/paginated", JSON, Some("{]"), bad, inv),
        case("POST", "/api/tenants/t/query/paginated", JSON, Some(r#"{"page_size": 5}"#), bad, inv).field("query"),
        case(
            "POST",
            "/api/tenants/t/query/paginated",
            JSON,
            Some(r#"{"query": {"table": "items", "filters": []}, "page_size": "x"}"#),
            bad,
            inv,
        )
        .field("page_size"),
        case(
            "POST",
            "/api/tenants/t/query/paginated",
            JSON,
            Some(r#"{"query": {"table": "items", "filters": []}, "page_size": 0}"#),
            bad,
            inv,
        )
        .field("page_size"),
        case(
            "POST",
            "/api/tenants/t/query/paginated",
            JSON,
            Some(r#"{"query": {"table": "items", "filters": []}, "page_size": 5, "after": "bad"}"#),
            bad,
            inv,
        )
        .field("after"),
        case(
            "POST",
            "/api/tenants/t/query/paginated",
            TEXT,
            Some(r#"{"query": {"table": "items", "filters": []}, "page_size": 5}"#),
            415,
            inv,
        ),
        // Schemas.
        case("PUT", "/api/tenants/t/schema/items", JSON, Some("{"), bad, inv),
        case("PUT", "/api/tenants/t/schema/items", JSON, Some(r#"{"table": "items", "indexes": []}"#), bad, inv)
            .field("fields"),
        case("PUT", "/api/tenants/t/schema/items", JSON, Some(r#"{"table": "items", "fields": []}"#), bad, inv)
            .field("indexes"),
        case(
            "PUT",
            "/api/tenants/t/schema/items",
            JSON,
            Some(r#"{"table": "other", "fields": [], "indexes": []}"#),
            bad,
            inv,
        )
        .field("table"),
        case(
            "PUT",
            "/api/tenants/t/schema/items",
            TEXT,
            Some(r#"{"table": "items", "fields": [], "indexes": []}"#),
            415,
            inv,
        ),
        case("GET", "/api/tenants/t/schema/items", NONE, None, 404, "op.schema_not_found"),
        case("DELETE", "/api/tenants/t/schema/items", NONE, None, 404, "op.schema_not_found"),
        // Journal.
        case("GET", "/api/tenants/t/journal?limit=abc", NONE, None, bad, inv).field("limit"),
        case("GET", "/api/tenants/t/journal?after=999999", NONE, None, bad, inv).field("after"),
        // System.
        case("POST", "/ui/auth/session", JSON, Some("{}"), bad, inv).field("token"),
        case("POST", "/ui/auth/session", JSON, Some("{"), bad, inv),
        case("POST", "/ui/auth/session", TEXT, Some(r#"{"token": "x"}"#), 415, inv),
        // A JSON array is the wrong type for an object body (not a positional struct).
        case("POST", "/api/tenants", JSON, Some(r#"["arr"]"#), bad, inv),
        case("POST", "/api/tenants/t/documents", JSON, Some(r#"["items", {"a": 1}]"#), bad, inv),
        case("PATCH", doc.clone(), JSON, Some(r#"[{"a": 2}]"#), bad, inv),
        case("POST", "/api/tenants/t/query", JSON, Some(r#"["items", []]"#), bad, inv),
        case("PUT", "/api/tenants/t/schema/items", JSON, Some(r#"["items", [], []]"#), bad, inv),
        case("POST", "/ui/auth/session", JSON, Some(r#"["x"]"#), bad, inv),
        // Unknown routes.
        case("GET", "/api/nope", NONE, None, 404, "service.route_not_found"),
        case("GET", "/", NONE, None, 404, "service.route_not_found"),
        case("POST", "/api/tenants/t/unknown", JSON, Some("{}"), 404, "service.route_not_found"),
        case("GET", "/api/tenants/t/documents/items/x/y", NONE, None, 404, "service.route_not_found"),
        // Wrong methods.
        case("DELETE", "/api/tenants", NONE, None, 405, "op.method_not_allowed"),
        case("PUT", "/api/tenants/t/documents", JSON, Some("{}"), 405, "op.method_not_allowed"),
        case("POST", doc.clone(), JSON, Some("{}"), 405, "op.method_not_allowed"),
        case("GET", "/api/tenants/t/query", NONE, None, 405, "op.method_not_allowed"),
        case("GET", "/api/system/shutdown", NONE, None, 405, "op.method_not_allowed"),
        case("GET", "/api/system/token/rotate", NONE, None, 405, "op.method_not_allowed"),
        case("POST", "/api/tenants/t/schema", JSON, Some("{}"), 405, "op.method_not_allowed"),
        case("POST", "/api/tenants/t/journal", NONE, None, 405, "op.method_not_allowed"),
        case("POST", "/health", NONE, None, 405, "op.method_not_allowed"),
        // Unknown tenant: checked before the body.
        case("GET", "/api/tenants/ghost/documents/items", NONE, None, 404, "session.tenant_not_found"),
        case("POST", "/api/tenants/ghost/documents", JSON, Some("{"), 404, "session.tenant_not_found"),
        case("POST", "/api/tenants/ghost/query", JSON, Some("{}"), 404, "session.tenant_not_found"),
        case("PUT", "/api/tenants/ghost/schema/items", JSON, Some("{}"), 404, "session.tenant_not_found"),
        case("GET", "/api/tenants/ghost/journal?limit=0", NONE, None, 404, "session.tenant_not_found"),
        case("DELETE", "/api/tenants/ghost", NONE, None, 404, "session.tenant_not_found"),
        // Bad path segments: checked before the tenant.
        case("GET", "/api/tenants/t/documents/items/a%2Fb", NONE, None, bad, inv),
        case("DELETE", "/api/tenants/t/documents/items/a%2Fb", NONE, None, bad, inv),
        case("GET", "/api/tenants/t/documents/items/%20abc", NONE, None, bad, inv),
        case("GET", "/api/tenants/t/documents/items/abc%20", NONE, None, bad, inv),
        case("GET", "/api/tenants/t/documents/items/a%00b", NONE, None, bad, inv),
        case("GET", format!("/api/tenants/t/documents/items/{}", "x".repeat(1501)), NONE, None, bad, inv),
        case("GET", "/api/tenants/t/documents/it%2Fems", NONE, None, bad, inv),
        case("GET", "/api/tenants/t/documents/a.b", NONE, None, bad, inv),
        case("GET", "/api/tenants/t/documents/%20items", NONE, None, bad, inv),
        case("GET", "/api/tenants/gh%2Fost/documents/items", NONE, None, bad, inv),
        case("GET", "/api/tenants/bad.id/documents/items", NONE, None, bad, inv),
        case("POST", "/api/tenants/_sys/documents", JSON, Some("{"), bad, inv),
        case("DELETE", "/api/tenants/_sys", NONE, None, bad, inv),
        case("PUT", "/api/tenants/t/schema/%20x", JSON, Some("{}"), bad, inv),
    ];
    // Body over 16 MiB: announced by Content-Length (the server may refuse before reading it).
    let huge = vec![b' '; 16 * 1024 * 1024 + 1];
    for path in ["/api/tenants", "/api/tenants/t/documents", "/api/tenants/t/query"] {
        cases.push(Case {
            method: "POST",
            path: path.to_owned(),
            headers: &[("Content-Type", "application/json"), ("Expect", "100-continue")],
            body: Some(huge.clone()),
            status: 413,
            code: "op.payload_too_large",
            field: None,
        });
    }
    cases.push(Case {
        method: "PATCH",
        path: doc.clone(),
        headers: JSON,
        body: Some(huge.clone()),
        status: 413,
        code: "op.payload_too_large",
        field: None,
    });

    let mut failures = Vec::new();
    for case in &cases {
        let resp = server.authed(case.method, &case.path, case.headers, case.body.as_deref());
        let shown_path: String = case.path.chars().take(120).collect();
        if (resp.status, resp.code()) != (case.status, case.code) {
            failures.push(format!(
                "{} {shown_path}: expected {} {}, got {} {}",
                case.method,
                case.status,
                case.code,
                resp.status,
                resp.text()
            ));
            continue;
        }
        if let Some(field) = case.field
            && resp.detail()["field"].as_str() != Some(field)
        {
            failures.push(format!(
                "{} {shown_path}: expected detail.field {field:?}, got {}",
                case.method,
                resp.detail()
            ));
        }
        let detail = resp.detail();
        match case.code {
            "service.route_not_found" => {
                let path_only = case.path.split('?').next().unwrap();
                if detail != &json!({ "method": case.method, "path": path_only }) {
                    failures.push(format!("{} {shown_path}: route_not_found detail {detail}", case.method));
                }
            }
            "op.method_not_allowed" => {
                let allow: BTreeSet<String> = resp
                    .header("allow")
                    .unwrap_or("")
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect();
                let allowed: BTreeSet<String> = detail["allowed"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                if allow.is_empty() || allow.contains(case.method) || detail["method"] != case.method {
                    failures.push(format!("{} {shown_path}: Allow {allow:?}, detail {detail}", case.method));
                }
                // The detail lists the same methods as the header (HEAD may be implied by GET).
                let without_head =
                    |s: &BTreeSet<String>| s.iter().filter(|m| *m != "HEAD").cloned().collect::<BTreeSet<_>>();
                if without_head(&allow) != without_head(&allowed) {
                    failures.push(format!(
                        "{} {shown_path}: Allow {allow:?} differs from detail.allowed {allowed:?}",
                        case.method
                    ));
                }
            }
            "op.payload_too_large" if detail["limitBytes"] != 16 * 1024 * 1024 => {
                failures.push(format!("{} {shown_path}: payload_too_large detail {detail}", case.method));
            }
            "session.tenant_not_found" if detail["tenantId"] != "ghost" => {
                failures.push(format!("{} {shown_path}: tenant_not_found detail {detail}", case.method));
            }
            _ => {}
        }
    }
    // Spot-check the Allow contents of one route.
    let resp = server.authed("DELETE", "/api/tenants", &[], None);
    let allow = resp.header("allow").unwrap_or("").to_owned();
    for method in ["GET", "POST"] {
        if !allow.split(',').any(|m| m.trim() == method) {
            failures.push(format!("DELETE /api/tenants: Allow {allow:?} lacks {method}"));
        }
    }
    let resp = server.authed("POST", &doc, JSON, Some(b"{}"));
    let allow = resp.header("allow").unwrap_or("").to_owned();
    for method in ["GET", "PATCH", "DELETE"] {
        if !allow.split(',').any(|m| m.trim() == method) {
            failures.push(format!("POST {doc}: Allow {allow:?} lacks {method}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // The failed requests changed nothing.
    assert_eq!(server.list_all("t", "items").len(), 1);
    assert_eq!(server.get("/api/tenants").json, json!({ "tenants": ["t"] }));
}

/// The codes listed in the committed `docs/errors.md` table.
fn documented_codes() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md"))
        .expect("read docs/errors.md");
    text.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        // The remediation-action table also has backticked first cells; codes contain a dot.
        .filter(|cell| cell.contains('.'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn errors_route_serves_the_catalog() {
    let server = Server::start();
    let resp = server.request("GET", "/errors", &[], None);
    resp.expect_status(200);
    assert!(resp.header("content-type").unwrap_or("").starts_with("application/json"), "{resp:?}");
    let catalog = &resp.json;
    assert!(catalog["version"].as_str().is_some_and(|v| !v.is_empty()), "{catalog}");
    let codes = catalog["codes"].as_array().unwrap_or_else(|| panic!("{catalog}"));

    let served: BTreeSet<String> = codes.iter().map(|c| c["code"].as_str().expect("code").to_owned()).collect();
    assert_eq!(served.len(), codes.len(), "duplicate codes in /errors");
    let documented = documented_codes();
    assert!(documented.len() > 30, "parsed too few codes from docs/errors.md: {documented:?}");
    assert_eq!(served, documented, "/errors and docs/errors.md list different codes");

    for entry in codes {
        let code = entry["code"].as_str().unwrap();
        let known = ErrorCode::from_code(code).unwrap_or_else(|| panic!("/errors serves unknown code {code}"));
        let spec = known.spec();
        assert!(
            code.split_once('.').is_some_and(|(ns, rest)| !ns.is_empty()
                && ns.bytes().all(|b| b.is_ascii_lowercase())
                && !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')),
            "code {code} does not match ^[a-z]+\\.[a-z_]+$"
        );
        match &entry["httpStatus"] {
            Value::Null => assert_eq!(entry["surface"], "ws", "{entry}"),
            status => assert_eq!(status.as_u64().map(|s| s as u16), spec.http_status, "{entry}"),
        }
        assert!(matches!(entry["severity"].as_str(), Some("fatal" | "error" | "warning")), "{entry}");
        assert!(entry["retryable"].is_boolean(), "{entry}");
        assert!(matches!(entry["surface"].as_str(), Some("http" | "ws" | "both")), "{entry}");
        assert_eq!(entry["reserved"].as_bool(), Some(spec.reserved), "{entry}");
        assert!(entry["since"].as_str().is_some_and(|s| !s.is_empty()), "{entry}");
        assert!(entry["meaning"].as_str().is_some_and(|s| !s.is_empty()), "{entry}");
        assert!(entry["detail"].is_object() || entry["detail"].is_null(), "{entry}");
        match spec.action {
            Some(_) => assert!(entry["remediation"]["action"].is_string(), "{entry}"),
            None => assert!(entry.get("remediation").is_none_or(Value::is_null), "{entry}"),
        }
    }
    // Every catalogued code is served.
    assert_eq!(served.len(), ErrorCode::ALL.len());
    // Spot checks from the spec's tables.
    let entry =
        |code: &str| codes.iter().find(|c| c["code"] == code).unwrap_or_else(|| panic!("{code} missing")).clone();
    assert_eq!(entry("op.invalid_input")["httpStatus"], 400);
    assert_eq!(entry("service.internal")["severity"], "fatal");
    assert_eq!(entry("rate.resource_exhausted")["retryable"], true);
    assert_eq!(entry("op.missing_index")["reserved"], true);
    assert!(entry("op.failed")["httpStatus"].is_null());
}

/// `error.remediation` as `(action, message)`; panics when the envelope carries none.
#[track_caller]
fn remediation(resp: &crate::harness::Resp) -> (String, String) {
    let remediation = &resp.json["error"]["remediation"];
    let action = remediation["action"].as_str().unwrap_or_else(|| panic!("no remediation.action: {resp}"));
    let message = remediation["message"].as_str().unwrap_or_else(|| panic!("no remediation.message: {resp}"));
    (action.to_owned(), message.to_owned())
}

/// Asserts the remediation's action and that its message contains every part.
#[track_caller]
fn expect_remedy(resp: &crate::harness::Resp, action: &str, parts: &[&str]) -> String {
    let (got, message) = remediation(resp);
    assert_eq!(got, action, "{resp}");
    for part in parts {
        assert!(message.contains(part), "remediation lacks {part:?}: {resp}");
    }
    message
}

/// Issue 14 ("errors that teach"): an error instance carries a remediation for its reason in
/// place of the catalog's generic one, and following it works. Catalog defaults stay where no
/// specific remedy exists.
#[test]
fn errors_carry_a_remediation_for_their_reason() {
    let server = Server::start();

    // An unknown tenant says how to create it; doing so makes the same request succeed.
    let ghost = server.get("/api/tenants/ghost/documents/items");
    ghost.expect_error(404, "session.tenant_not_found");
    expect_remedy(&ghost, "fix_request", &[r#"`POST /api/tenants {"id": "ghost"}`"#, "`GET /api/tenants`"]);
    server.post_json("/api/tenants", &json!({ "id": "ghost" })).expect_status(201);
    server.get("/api/tenants/ghost/documents/items").expect_status(200);
    // `GET /errors` still serves the catalog's default for the code: none.
    let catalog = server.request("GET", "/errors", &[], None);
    let entry =
        catalog.json["codes"].as_array().and_then(|c| c.iter().find(|e| e["code"] == "session.tenant_not_found"));
    assert_eq!(entry.map(|e| e["remediation"].clone()), Some(Value::Null), "{catalog}");

    // A code without a specific remedy keeps the catalog's default message.
    let bad = server.post_json("/api/tenants", &json!({ "id": 5 }));
    bad.expect_error(400, "op.invalid_input");
    assert_eq!(
        remediation(&bad),
        ("fix_request".to_owned(), "Correct the request payload before retrying.".to_owned()),
        "{bad}"
    );

    // Not found: the route that lists what exists.
    let cron = server.get("/api/tenants/ghost/crons/nightly");
    cron.expect_error(404, "op.not_found");
    expect_remedy(&cron, "fix_request", &["`GET /api/tenants/{tenant_id}/crons`"]);
    let schema = server.get("/api/tenants/ghost/schema/items");
    schema.expect_error(404, "op.schema_not_found");
    expect_remedy(&schema, "fix_request", &["`GET /api/tenants/{tenant_id}/schema`", "/schema/items`"]);

    // A stale generation says to re-read and send the current one; doing so succeeds.
    let service = json!({
        "metadata": { "name": "upstream" },
        "spec": { "backend": { "kind": "external", "endpoint": { "url": "http://127.0.0.1:9" },
                               "health": { "kind": "http", "path": "/health", "intervalMs": 1000 } } },
    });
    server.post_json("/api/tenants/ghost/services", &service).expect_status(201);
    let stale = server.delete("/api/tenants/ghost/services/upstream?ifMatchGeneration=7");
    stale.expect_error(412, "op.precondition_failed");
    assert_eq!(stale.detail()["currentGeneration"], 1, "{stale}");
    expect_remedy(&stale, "refresh_resource", &["re-read", "current generation (1)"]);
    let current = server.get("/api/tenants/ghost/services/upstream/definition");
    current.expect_status(200);
    let generation = current.json["metadata"]["generation"].as_u64().expect("metadata.generation");
    server.delete(&format!("/api/tenants/ghost/services/upstream?ifMatchGeneration={generation}")).expect_status(204);

    // A registry that refuses the connection points to importing the image instead of
    // "retry with backoff"; the code, status and retryability are the catalog's.
    let closed = format!("127.0.0.1:{}", crate::registry::free_port());
    let reference = format!("{closed}/nimbus-test/busybox:1");
    let pull = server.post_json(
        "/api/tenants/ghost/sandboxes",
        &json!({ "spec": { "root": crate::sandboxes::image_root(&reference), "process": { "argv": ["true"] } } }),
    );
    pull.expect_error(502, "sandbox.image_pull_failed");
    assert_eq!(pull.json["error"]["retryable"], true, "{pull}");
    let message = expect_remedy(
        &pull,
        "retry",
        &[
            &format!("`{closed}` refused the connection"),
            &format!("`POST /api/images/import?reference={reference}`"),
            &format!("`nimbus image import <file> --reference {reference}`"),
        ],
    );
    assert!(!message.contains("backoff"), "{message}");
}

/// A session whose target stopped says so, with its close reason, and how to open a new one;
/// so does a port request into the stopped sandbox. Runs real sandboxes (as root).
#[test]
fn a_session_whose_target_stopped_says_how_to_go_on() {
    let fx = crate::sandboxes::Fixture::start();
    let sandbox = crate::sandboxes::id_of(&fx.create(&["sleep", "100000"], json!({})));
    fx.server().get(&fx.path(&format!("/{sandbox}?waitFor=ready"))).expect_status(200);
    let opened = fx.server().post_json(
        "/api/sessions",
        &json!({ "tenantId": crate::sandboxes::TENANT, "target": { "sandbox": { "id": sandbox } }, "channels": ["exec"] }),
    );
    opened.expect_status(201);
    let session = opened.json["metadata"]["id"].as_str().expect("metadata.id").to_owned();

    fx.server().post_json(&fx.path(&format!("/{sandbox}/stop")), &json!({ "gracePeriodMs": 0 })).expect_status(200);
    let exec = fx.server().post_json(&format!("/api/sessions/{session}/exec"), &json!({ "argv": ["true"] }));
    exec.expect_error(409, "op.conflict");
    assert_eq!(exec.detail()["reason"], "session_not_open", "{exec}");
    expect_remedy(
        &exec,
        "fix_request",
        &["its target stopped", "closeReason `target_stopped`", "`POST /api/sessions`"],
    );
    let read = fx.server().get(&format!("/api/sessions/{session}"));
    assert_eq!(read.json["status"]["closeReason"], "target_stopped", "{read}");

    // The sandbox itself: a request into one of its ports is a `target_stopped` conflict that
    // says the sandbox no longer runs and how to go on.
    let port = fx.server().get(&fx.path(&format!("/{sandbox}/ports/8080/")));
    port.expect_error(409, "op.conflict");
    assert_eq!(port.detail()["reason"], "target_stopped", "{port}");
    expect_remedy(&port, "fix_request", &["no longer running", "`POST /api/sessions`", "/sandboxes`"]);
    fx.delete(&sandbox);

    // A registry that answers but has no such image: check the reference (no "retry").
    let absent = format!("{}/nimbus-test/absent:1", fx.registry.host());
    let missing = fx.server().post_json(
        &fx.path(""),
        &json!({ "spec": { "root": crate::sandboxes::image_root(&absent), "process": { "argv": ["true"] } } }),
    );
    missing.expect_error(404, "sandbox.image_not_found");
    expect_remedy(&missing, "fix_request", &[&format!("Check the reference `{absent}`"), "`GET /api/images`"]);
}

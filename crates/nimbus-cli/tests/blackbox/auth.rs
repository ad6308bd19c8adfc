//! Local security: the admin token, origin policy and CORS, cookie sessions, rotation, and the
//! token CLI commands (conventions §6–7, cli §3–4).

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::harness::{Dirs, Server, is_timestamp};

const WRONG_TOKEN: &str = "nimbus_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[test]
fn token_and_origin_rules() {
    let server = Server::start();
    let token = server.token();
    let bearer = format!("Bearer {token}");

    // Credentials.
    let resp = server.request("GET", "/api/tenants", &[], None);
    resp.expect_error(401, "auth.unauthorized");
    assert_eq!(resp.detail()["reason"], "missing_credential", "{resp}");

    let wrong = format!("Bearer {WRONG_TOKEN}");
    let resp = server.request("GET", "/api/tenants", &[("Authorization", &wrong)], None);
    resp.expect_error(401, "auth.unauthorized");
    assert_eq!(resp.detail()["reason"], "invalid_token", "{resp}");

    let resp = server.request("GET", "/api/tenants", &[("X-Nimbus-Admin-Token", WRONG_TOKEN)], None);
    resp.expect_error(401, "auth.unauthorized");
    assert_eq!(resp.detail()["reason"], "invalid_token", "{resp}");

    let resp = server.request("GET", "/api/tenants", &[("Authorization", &bearer)], None);
    resp.expect_status(200);
    assert_eq!(resp.json, json!({ "tenants": [] }));
    server.request("GET", "/api/tenants", &[("X-Nimbus-Admin-Token", &token)], None).expect_status(200);

    // A client-sent X-Request-Id is ignored: the server mints its own.
    let resp =
        server.request("GET", "/api/tenants", &[("Authorization", &bearer), ("X-Request-Id", "req_client")], None);
    assert_ne!(resp.header("x-request-id"), Some("req_client"));
    // One id per request.
    let ids: std::collections::BTreeSet<String> = (0..5)
        .map(|_| server.request("GET", "/health", &[], None).header("x-request-id").unwrap_or("").to_owned())
        .collect();
    assert_eq!(ids.len(), 5, "request ids repeat: {ids:?}");

    // Origin policy: foreign origins are refused even with a valid token.
    for origin in [
        "http://evil.example".to_owned(),
        format!("https://127.0.0.1:{}", server.port),
        format!("http://127.0.0.1:{}", server.port.wrapping_add(1).max(1)),
        "null".to_owned(),
    ] {
        let resp = server.request("GET", "/api/tenants", &[("Authorization", &bearer), ("Origin", &origin)], None);
        resp.expect_error(403, "auth.forbidden");
        assert_eq!(resp.detail()["reason"], "origin_not_allowed", "{resp}");
    }
    // Applied before authentication.
    let resp = server.request("GET", "/api/tenants", &[("Origin", "http://evil.example")], None);
    resp.expect_error(403, "auth.forbidden");

    for origin in [format!("http://127.0.0.1:{}", server.port), format!("http://localhost:{}", server.port)] {
        let resp = server.request("GET", "/api/tenants", &[("Authorization", &bearer), ("Origin", &origin)], None);
        resp.expect_status(200);
        assert_eq!(resp.header("access-control-allow-origin"), Some(origin.as_str()), "{resp:?}");
        let exposed = resp.header("access-control-expose-headers").unwrap_or("").to_ascii_lowercase();
        assert!(exposed.contains("x-request-id"), "x-request-id not exposed: {exposed:?}");
    }

    // Errors answered to an allowed origin are readable by it too.
    let origin = format!("http://127.0.0.1:{}", server.port);
    let resp = server.request("GET", "/api/tenants", &[("Origin", &origin)], None);
    resp.expect_error(401, "auth.unauthorized");
    assert_eq!(resp.header("access-control-allow-origin"), Some(origin.as_str()), "{resp:?}");

    // Preflight from an allowed origin.
    let origin = format!("http://127.0.0.1:{}", server.port);
    let resp = server.request(
        "OPTIONS",
        "/api/tenants",
        &[
            ("Origin", &origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization, content-type"),
        ],
        None,
    );
    resp.expect_status(204);
    assert_eq!(resp.header("access-control-allow-origin"), Some(origin.as_str()));
    let methods = resp.header("access-control-allow-methods").unwrap_or("").to_ascii_uppercase();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        assert!(methods.split(',').any(|m| m.trim() == method), "allow-methods {methods:?} lacks {method}");
    }
    let allowed_headers = resp.header("access-control-allow-headers").unwrap_or("").to_ascii_lowercase();
    for header in ["authorization", "content-type", "x-nimbus-admin-token", "x-tenant-id", "convex-client"] {
        assert!(
            allowed_headers.split(',').any(|h| h.trim() == header),
            "allow-headers {allowed_headers:?} lacks {header}"
        );
    }
    // Preflight from a foreign origin.
    let resp = server.request(
        "OPTIONS",
        "/api/tenants",
        &[("Origin", "http://evil.example"), ("Access-Control-Request-Method", "POST")],
        None,
    );
    resp.expect_error(403, "auth.forbidden");
    assert!(resp.header("access-control-allow-origin").is_none(), "{resp:?}");
    let resp = server.request(
        "OPTIONS",
        "/api/tenants",
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Private-Network", "true"),
        ],
        None,
    );
    resp.expect_error(403, "auth.forbidden");

    // Open routes need no token (and no origin check).
    // (Whether each page exists is `system::docs_and_open_routes`'s business; here only the
    // absence of 401/403 matters.)
    for path in ["/health", "/errors", "/docs/errors.md", "/llms.txt", "/llms-full.txt", "/docs/no-such-page.md"] {
        for headers in [&[][..], &[("Origin", "http://evil.example")][..]] {
            let resp = server.request("GET", path, headers, None);
            assert!(resp.status == 200 || resp.status == 404, "open route {path} must not require credentials: {resp}");
        }
    }
    server.request("GET", "/health", &[], None).expect_status(200);
    server.request("GET", "/errors", &[], None).expect_status(200);
    server.request("GET", "/api/system/capabilities", &[], None).expect_error(401, "auth.unauthorized");

    // The token file.
    let dirs = server.dirs();
    let path = dirs.token_path();
    let file_mode = std::fs::metadata(&path).expect("token file").permissions().mode() & 0o777;
    assert_eq!(file_mode, 0o600, "token file mode {file_mode:o}");
    let dir_mode = std::fs::metadata(path.parent().unwrap()).expect("token dir").permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "token dir mode {dir_mode:o}");
    let record = dirs.token_record();
    assert_eq!(record["version"], 1, "{record}");
    assert_eq!(record["scope"], "local-admin", "{record}");
    assert_eq!(record["generation"], 1, "{record}");
    assert!(is_timestamp(record["issuedAt"].as_str().unwrap_or("")), "issuedAt: {record}");
    let token = record["token"].as_str().unwrap_or("");
    let suffix = token.strip_prefix("nimbus_at_").unwrap_or_else(|| panic!("token prefix: {token}"));
    // base64url without padding of 32 bytes = 43 characters.
    assert_eq!(suffix.len(), 43, "token {token}");
    assert!(suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "token {token}");
}

fn cookie_of(resp: &crate::harness::Resp) -> String {
    let set_cookie = resp
        .header_all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("nimbus_session="))
        .unwrap_or_else(|| panic!("no nimbus_session cookie: {resp:?}"))
        .to_owned();
    let attributes: Vec<String> = set_cookie.split(';').map(|a| a.trim().to_ascii_lowercase()).collect();
    for attribute in ["httponly", "samesite=strict", "path=/", "max-age=43200"] {
        assert!(attributes.iter().any(|a| a == attribute), "cookie {set_cookie:?} lacks {attribute}");
    }
    set_cookie.split(';').next().unwrap().trim().to_owned()
}

#[test]
fn rotation_revokes_old_token() {
    let server = Server::start();
    let old = server.token();

    // Cookie exchange.
    let body = serde_json::to_vec(&json!({ "token": WRONG_TOKEN })).unwrap();
    server
        .request("POST", "/ui/auth/session", &[("Content-Type", "application/json")], Some(&body))
        .expect_error(401, "auth.unauthorized");
    let body = serde_json::to_vec(&json!({ "token": old })).unwrap();
    let resp = server.request("POST", "/ui/auth/session", &[("Content-Type", "application/json")], Some(&body));
    resp.expect_status(200);
    let cookie = cookie_of(&resp);
    server.request("GET", "/api/tenants", &[("Cookie", &cookie)], None).expect_status(200);
    let resp = server.request("GET", "/api/tenants", &[("Cookie", "nimbus_session=forged")], None);
    resp.expect_error(401, "auth.unauthorized");

    // Rotate.
    let resp = server.post_empty("/api/system/token/rotate");
    resp.expect_status(200);
    assert_eq!(resp.json, json!({ "generation": 2 }));

    let record = server.dirs().token_record();
    assert_eq!(record["generation"], 2, "{record}");
    let new = server.token();
    assert_ne!(new, old, "rotation kept the token");
    assert!(new.starts_with("nimbus_at_"));

    let old_bearer = format!("Bearer {old}");
    let resp = server.request("GET", "/api/tenants", &[("Authorization", &old_bearer)], None);
    resp.expect_error(401, "auth.unauthorized");
    assert_eq!(resp.detail()["reason"], "token_revoked", "{resp}");
    let resp = server.request("GET", "/api/tenants", &[("X-Nimbus-Admin-Token", &old)], None);
    assert_eq!(resp.detail()["reason"], "token_revoked", "{resp}");
    // The old token cannot buy a cookie either.
    let body = serde_json::to_vec(&json!({ "token": old })).unwrap();
    server
        .request("POST", "/ui/auth/session", &[("Content-Type", "application/json")], Some(&body))
        .expect_error(401, "auth.unauthorized");

    // Cookies are revoked by the rotation.
    server.request("GET", "/api/tenants", &[("Cookie", &cookie)], None).expect_error(401, "auth.unauthorized");

    server.request("GET", "/api/tenants", &[("Authorization", &format!("Bearer {new}"))], None).expect_status(200);

    // Rotation with the other header.
    let resp = server.request("POST", "/api/system/token/rotate", &[("X-Nimbus-Admin-Token", &new)], None);
    resp.expect_status(200);
    assert_eq!(resp.json, json!({ "generation": 3 }));
    assert_eq!(server.dirs().token_record()["generation"], 3);
    let resp = server.request("GET", "/api/tenants", &[("X-Nimbus-Admin-Token", &new)], None);
    assert_eq!(resp.detail()["reason"], "token_revoked", "{resp}");
    server.get("/api/tenants").expect_status(200);
}

#[test]
fn cli_token_and_version_commands() {
    // No token file yet.
    let dirs = Dirs::new();
    let out = dirs.cli(&["auth", "token"]);
    assert_eq!(out.code, Some(1), "auth token without a token file: {out:?}");

    let mut server = dirs.start();
    let token = server.token();

    let out = dirs.cli(&["auth", "token"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("{token}\n"));

    let out = dirs.cli(&["auth", "token", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let record = out.json();
    assert_eq!(record["token"], token.as_str());
    assert_eq!(record["generation"], 1);
    assert!(is_timestamp(record["issuedAt"].as_str().unwrap_or("")), "{record}");
    assert_eq!(record["path"].as_str().map(std::path::PathBuf::from), Some(dirs.token_path()), "{record}");

    // server.json describes the live server.
    let discovery: Value = serde_json::from_slice(&std::fs::read(dirs.discovery_path()).expect("server.json")).unwrap();
    assert_eq!(discovery["pid"], server.pid(), "{discovery}");
    assert_eq!(discovery["address"], format!("127.0.0.1:{}", server.port), "{discovery}");

    // Live rotation.
    let out = dirs.cli(&["token", "rotate", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.json(), json!({ "generation": 2, "mode": "live" }));
    let rotated = server.token();
    assert_ne!(rotated, token);
    let resp = server.request("GET", "/api/tenants", &[("Authorization", &format!("Bearer {token}"))], None);
    assert_eq!(resp.detail()["reason"], "token_revoked", "{resp}");
    server.get("/api/tenants").expect_status(200);

    // Offline rotation once the server is gone.
    let status = server.stop();
    assert_eq!(status.code(), Some(0), "graceful stop exit status");
    assert!(!dirs.discovery_path().exists(), "server.json left behind after a graceful stop");
    let out = dirs.cli(&["token", "rotate", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.json(), json!({ "generation": 3, "mode": "offline" }));
    let record = dirs.token_record();
    assert_eq!(record["generation"], 3);
    assert_ne!(record["token"], rotated.as_str());
    let mode = std::fs::metadata(dirs.token_path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "token file mode after offline rotation {mode:o}");

    // Version.
    let out = dirs.cli(&["version", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let version = out.json();
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"), "{version}");
    assert!(version["build"].as_str().is_some_and(|b| !b.is_empty()), "{version}");
    assert!(version["protocolVersions"].as_array().is_some_and(|p| p.contains(&json!("nimbus.v2"))), "{version}");
    assert_eq!(version["os"], std::env::consts::OS, "{version}");
    assert_eq!(version["arch"], std::env::consts::ARCH, "{version}");
    let out = dirs.cli(&["version"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let prefix = format!("nimbus {} (build ", env!("CARGO_PKG_VERSION"));
    assert!(out.stdout.starts_with(&prefix) && out.stdout.trim_end().ends_with(')'), "{out:?}");

    // Usage errors exit 2.
    let out = dirs.cli(&["no-such-command"]);
    assert_eq!(out.code, Some(2), "{out:?}");
}

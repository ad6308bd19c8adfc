//! The OpenAPI document (`GET /openapi.json`): served without a credential, equal to the
//! committed `docs/openapi.json`, and listing every route the router serves: each documented
//! operation reaches a handler (never the router's "no route" or "method not allowed"), while a
//! path the document lacks gets the router's 404.

use serde_json::Value;

use crate::harness::Server;

/// A value for each path parameter: the tenant does not exist, so every tenant route answers
/// after routing without touching anything.
fn fill(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some("tenant_id") => "no-such-tenant".to_owned(),
            Some("page") => "quickstart.md".to_owned(),
            Some("port") => "8080".to_owned(),
            Some("channel") => "stdio".to_owned(),
            Some(_) => "x".to_owned(),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_document_is_served_committed_and_lists_every_route() {
    let server = Server::start();
    let served = server.request("GET", "/openapi.json", &[], None);
    assert_eq!(served.status, 200, "{served}");
    let committed =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).expect("docs/openapi.json");
    assert!(served.body == committed, "GET /openapi.json differs from docs/openapi.json (run scripts/gen-docs)");
    assert_eq!(served.json["openapi"], "3.1.0");

    let paths = served.json["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let method = method.to_ascii_uppercase();
            // A JSON array is no route's body: routes that read one refuse it before acting
            // (even `/api/system/shutdown` and the token rotation).
            let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then_some(&b"[]"[..]);
            let headers: &[(&str, &str)] = if body.is_some() { &[("Content-Type", "application/json")] } else { &[] };
            let answer = server.authed(&method, &fill(path), headers, body);
            let code = answer.json["error"]["code"].as_str().unwrap_or_default();
            assert!(
                answer.status != 405 && code != "service.route_not_found",
                "{method} {path} is documented but not routed: {answer}"
            );
            operations += 1;
        }
    }
    assert!(operations >= 100, "only {operations} operations documented");

    // The check above can fail: a path outside the document is the router's 404.
    let missing = server.authed("GET", "/api/tenants/no-such-tenant/nowhere", &[], None);
    assert_eq!(missing.status, 404, "{missing}");
    assert_eq!(missing.json["error"]["code"], Value::from("service.route_not_found"), "{missing}");
    server.get("/api/system/capabilities").json.as_object().expect("the server still serves");
}

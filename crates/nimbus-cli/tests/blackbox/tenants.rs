//! Tenants: creation, id rules, listing, deletion and re-creation (data §1, conventions §3).

use serde_json::json;

use crate::harness::Server;

#[test]
fn tenant_lifecycle_and_id_rules() {
    let server = Server::start();

    for id in ["beta", "alpha", "Zed-1_x"] {
        server.create_tenant(id);
    }
    let long_ok = "a".repeat(128);
    server.create_tenant(&long_ok);

    let resp = server.post_json("/api/tenants", &json!({ "id": "beta" }));
    resp.expect_error(409, "op.already_exists");

    // Byte order: uppercase sorts before lowercase.
    let resp = server.get("/api/tenants");
    resp.expect_status(200);
    assert_eq!(resp.json, json!({ "tenants": ["Zed-1_x", long_ok, "alpha", "beta"] }));

    // Bad ids: reserved prefix, bad characters, length, wrong type.
    let too_long = "a".repeat(129);
    for id in ["_x", "_", "a b", "a.b", "a/b", "é", "", " a", too_long.as_str()] {
        let resp = server.post_json("/api/tenants", &json!({ "id": id }));
        resp.expect_error(400, "op.invalid_input");
    }
    for body in [json!({ "id": 5 }), json!({}), json!({ "id": null }), json!("demo")] {
        server.post_json("/api/tenants", &body).expect_error(400, "op.invalid_input");
    }
    // Reserved ids are refused on every route.
    server.delete("/api/tenants/_x").expect_error(400, "op.invalid_input");
    server.get("/api/tenants/_x/documents/t").expect_error(400, "op.invalid_input");
    server
        .post_json("/api/tenants/_x/query", &json!({ "table": "t", "filters": [] }))
        .expect_error(400, "op.invalid_input");
    let resp = server.get("/api/tenants");
    assert_eq!(resp.json["tenants"].as_array().map(Vec::len), Some(4), "bad ids must not be created: {resp}");

    // Delete: data goes with the tenant.
    server.insert("beta", "t", &json!({ "x": 1 }));
    server.put_json(
        "/api/tenants/beta/schema/t",
        &json!({ "table": "t", "fields": [{ "name": "x", "field_type": "number", "required": true }], "indexes": [] }),
    )
    .expect_status(204);
    let resp = server.delete("/api/tenants/beta");
    resp.expect_status(204);
    assert!(resp.body.is_empty(), "204 with a body: {resp}");

    let resp = server.delete("/api/tenants/beta");
    resp.expect_error(404, "session.tenant_not_found");
    assert_eq!(resp.detail()["tenantId"], "beta", "{resp}");
    let gone = [
        server.get("/api/tenants/beta/documents/t"),
        server.get("/api/tenants/beta/documents/t/01j9z3k7q8w2m4n6p8r0t2v4x6"),
        server.post_json("/api/tenants/beta/documents", &json!({ "table": "t", "fields": {} })),
        server.patch_json("/api/tenants/beta/documents/t/01j9z3k7q8w2m4n6p8r0t2v4x6", &json!({ "patch": {} })),
        server.delete("/api/tenants/beta/documents/t/01j9z3k7q8w2m4n6p8r0t2v4x6"),
        server.post_json("/api/tenants/beta/query", &json!({ "table": "t", "filters": [] })),
        server.post_json(
            "/api/tenants/beta/query/paginated",
            &json!({ "query": { "table": "t", "filters": [] }, "page_size": 5 }),
        ),
        server.get("/api/tenants/beta/schema"),
        server.get("/api/tenants/beta/schema/t"),
        server.get("/api/tenants/beta/journal"),
        server.get("/api/tenants/beta/journal/bootstrap"),
    ];
    for resp in &gone {
        resp.expect_error(404, "session.tenant_not_found");
        assert_eq!(resp.detail()["tenantId"], "beta", "{resp}");
    }
    let resp = server.get("/api/tenants");
    assert_eq!(resp.json, json!({ "tenants": ["Zed-1_x", long_ok, "alpha"] }));

    // Re-creation starts empty.
    server.create_tenant("beta");
    assert!(server.list_all("beta", "t").is_empty(), "re-created tenant still has documents");
    let resp = server.get("/api/tenants/beta/schema");
    resp.expect_status(200);
    assert_eq!(resp.json, json!({ "tables": {} }));
    server.get("/api/tenants/beta/schema/t").expect_error(404, "op.schema_not_found");
    let resp = server.get("/api/tenants/beta/journal");
    resp.expect_status(200);
    assert_eq!(resp.json["records"], json!([]), "re-created tenant has journal records: {resp}");
    // A document without the old schema's required field is accepted.
    server.insert("beta", "t", &json!({ "y": 1 }));

    // Tenants are isolated.
    server.insert("alpha", "t", &json!({ "only": "alpha" }));
    assert_eq!(server.list_all("beta", "t").len(), 1);
    assert_eq!(server.list_all("alpha", "t").len(), 1);

    // The body must be an object: an array is a wrong type, not a positional `{"id": …}`.
    let resp = server.post_json("/api/tenants", &json!(["demo"]));
    resp.expect_error(400, "op.invalid_input");
}

/// A deletion cut short by a crash (the registry row gone, the database file, sandbox and
/// session still there) is finished by the next start: a new tenant with the old id starts
/// empty and no process of the old one runs.
#[test]
fn a_new_tenant_never_inherits_what_a_crashed_deletion_left() {
    use crate::sandboxes::{Fixture, TENANT, assert_nothing_left, id_of};

    let mut fx = Fixture::start();
    fx.server().insert(TENANT, "notes", &json!({ "text": "the old tenant's" }));
    let sandbox = id_of(&fx.create(&["sleep", "100000"], json!({})));
    fx.server().get(&fx.path(&format!("/{sandbox}?waitFor=ready&timeoutMs=60000"))).expect_status(200);
    let body = json!({ "tenantId": TENANT, "target": { "sandbox": { "id": sandbox } }, "channels": ["exec"] });
    let session = fx.server().post_json("/api/sessions", &body);
    session.expect_status(201);
    let session = session.json["metadata"]["id"].as_str().expect("session id").to_owned();

    // The crash: the server dies right after the deletion removed the registry row.
    fx.server.as_mut().expect("server").kill9();
    let system = rusqlite::Connection::open(fx.dirs.data().join("system.sqlite3")).expect("open system db");
    assert_eq!(system.execute("DELETE FROM tenants WHERE id = ?1", [TENANT]).expect("delete the row"), 1);
    drop(system);

    fx.server = Some(Server::start_in(&fx.dirs));
    assert_nothing_left(&sandbox);
    fx.server().get(&format!("/api/sessions/{session}")).expect_error(404, "op.not_found");
    fx.server().create_tenant(TENANT);
    assert!(fx.server().list_all(TENANT, "notes").is_empty(), "the new tenant's database starts empty");
    let listed = fx.server().get(&fx.path(""));
    listed.expect_status(200);
    assert_eq!(listed.json["items"], json!([]), "no sandbox of the old tenant: {listed}");
}

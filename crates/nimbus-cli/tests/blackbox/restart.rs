//! Graceful restart keeps everything; the data directory is exclusively locked (cli §2).

use serde_json::{Value, json};

use crate::harness::{Server, is_timestamp};

/// Everything observable about the data, for before/after comparison.
fn snapshot(server: &Server) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut get = |path: &str| {
        let resp = server.get(path);
        resp.expect_status(200);
        out.push((path.to_owned(), resp.json.clone()));
    };
    get("/api/tenants");
    get("/api/tenants/one/documents/tasks");
    get("/api/tenants/one/documents/other");
    get("/api/tenants/two/documents/tasks");
    get("/api/tenants/one/schema");
    get("/api/tenants/two/schema");
    get("/api/tenants/one/journal?limit=1000");
    get("/api/tenants/two/journal?limit=1000");
    for body in [
        json!({ "table": "tasks", "filters": [{ "field": "priority", "op": "gte", "value": 2 }], "order": { "field": "priority", "direction": "desc" } }),
        json!({ "table": "tasks", "filters": [{ "field": "title", "op": "eq", "value": "t3" }] }),
    ] {
        let resp = server.post_json("/api/tenants/one/query", &body);
        resp.expect_status(200);
        out.push((body.to_string(), resp.json.clone()));
    }
    out
}

#[test]
fn data_survives_restart() {
    let mut server = Server::start();
    let dirs = server.dirs();
    server.create_tenant("one");
    server.create_tenant("two");
    let schema = json!({
        "table": "tasks",
        "fields": [{ "name": "title", "field_type": "string", "required": true }, { "name": "priority", "field_type": "number", "required": false }],
        "indexes": [{ "name": "by_priority", "fields": ["priority"] }, { "name": "by_title", "fields": ["title"] }],
        "access_policy": null
    });
    server.put_json("/api/tenants/one/schema/tasks", &schema).expect_status(204);
    let ids: Vec<String> = (0..10)
        .map(|i| server.insert("one", "tasks", &json!({ "title": format!("t{i}"), "priority": i % 4 })))
        .collect();
    server
        .patch_json(
            &format!("/api/tenants/one/documents/tasks/{}", ids[3]),
            &json!({ "patch": { "priority": 9, "note": null } }),
        )
        .expect_status(200);
    server.delete(&format!("/api/tenants/one/documents/tasks/{}", ids[4])).expect_status(204);
    server.insert("one", "other", &json!({ "nested": { "deep": [1, { "x": "y" }] } }));
    server.insert("two", "tasks", &json!({ "anything": true }));
    let token = server.token();
    let before = snapshot(&server);

    // The data directory is locked while the server runs.
    let second = dirs.try_start();
    match second {
        Ok(_) => panic!("a second server started on a locked data directory"),
        Err(failure) => assert_eq!(failure.status.code(), Some(1), "second server on the same data dir: {failure:?}"),
    }
    // A port in use is a startup failure too.
    match crate::harness::Dirs::new().try_start_on_port(server.port) {
        Ok(_) => panic!("a second server bound the port of the first"),
        Err(failure) => assert_eq!(failure.status.code(), Some(1), "start on a port in use: {failure:?}"),
    }
    // The first server is unaffected.
    server.get("/health").expect_status(200);
    let discovery: Value = serde_json::from_slice(&std::fs::read(dirs.discovery_path()).expect("server.json")).unwrap();
    assert_eq!(discovery["pid"], server.pid(), "the failed start clobbered server.json: {discovery}");
    assert_eq!(discovery["address"], format!("127.0.0.1:{}", server.port));
    assert!(is_timestamp(discovery["startedAt"].as_str().unwrap_or("")), "{discovery}");
    assert_eq!(discovery["protocolVersions"], json!(["nimbus.v2"]));

    let status = server.stop();
    assert_eq!(status.code(), Some(0), "graceful stop; stderr:\n{}", server.stderr());
    assert!(!dirs.discovery_path().exists(), "server.json not removed on graceful stop");

    let server = Server::start_in(&dirs);
    assert_eq!(server.token(), token, "token changed across a restart");
    assert_eq!(dirs.token_record()["generation"], 1);
    let after = snapshot(&server);
    for ((what, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{what} differs after restart");
    }
    // Schema enforcement and sequencing continue.
    server
        .post_json("/api/tenants/one/documents", &json!({ "table": "tasks", "fields": { "priority": 1 } }))
        .expect_error(422, "op.schema_validation");
    let new_id = server.insert("one", "tasks", &json!({ "title": "after restart", "priority": 2 }));
    assert!(ids.iter().all(|id| *id < new_id), "id minted after restart sorts before older ids");
    let journal = server.get("/api/tenants/one/journal?limit=1000").json.clone();
    let before_latest =
        before.iter().find(|(w, _)| w.starts_with("/api/tenants/one/journal")).unwrap().1["latest_sequence"]
            .as_i64()
            .unwrap();
    assert!(journal["latest_sequence"].as_i64().unwrap() > before_latest, "{journal}");
}

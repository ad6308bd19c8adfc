//! Storage faults injected into a real tenant database reach clients as catalogued storage
//! errors (errors.md §1, test 4): never a panic, a hang, a success with wrong data, or a
//! generic 500 without a code.

use serde_json::json;

use crate::harness::Server;

/// Opens a tenant's database file directly, as another process would.
fn open_tenant_file(server: &Server, tenant: &str) -> rusqlite::Connection {
    let path = server.dirs().data().join(format!("tenants/{tenant}.sqlite3"));
    let conn = rusqlite::Connection::open(&path).expect("open tenant file");
    conn.busy_timeout(std::time::Duration::from_secs(10)).expect("busy timeout");
    conn
}

#[test]
fn storage_faults_are_catalogued() {
    let mut server = Server::start();
    server.create_tenant("faults");
    let good = server.insert("faults", "docs", &json!({ "n": 1 }));
    let bad = server.insert("faults", "docs", &json!({ "n": 2 }));
    server.stop();

    // Damage stored rows behind the server's back: a document whose fields are not JSON, and a
    // journal record whose content no longer matches its integrity hash.
    {
        let dirs = server.dirs();
        let conn = rusqlite::Connection::open(dirs.data().join("tenants/faults.sqlite3")).expect("open");
        conn.execute("UPDATE documents SET fields = '{not json' WHERE id = ?1", [&bad]).expect("corrupt document");
        let tampered = conn
            .execute("UPDATE journal SET body = replace(body, '\"n\":1', '\"n\":7') WHERE sequence = 1", [])
            .expect("tamper journal");
        assert_eq!(tampered, 1, "the first journal record holds n = 1");
    }
    let server = Server::start_in(&server.dirs());

    // The intact document still reads; the damaged one is a serialization error, not a panic.
    server.get(&format!("/api/tenants/faults/documents/docs/{good}")).expect_status(200);
    let resp = server.get(&format!("/api/tenants/faults/documents/docs/{bad}"));
    resp.expect_status(500);
    assert_eq!(resp.code(), "service.serialization");

    // The tampered journal record fails its integrity check.
    let resp = server.get("/api/tenants/faults/journal?after=0&limit=10");
    resp.expect_status(500);
    assert_eq!(resp.code(), "service.storage_corruption");
    assert_eq!(resp.detail()["storageKind"], "corruption");
    assert_eq!(resp.json["error"]["severity"], "fatal");

    // Another process holds the write lock longer than the busy timeout: the write is refused
    // as retryable `service.storage_busy`, and succeeds once the lock is gone.
    let holder = open_tenant_file(&server, "faults");
    holder.execute_batch("BEGIN EXCLUSIVE").expect("take the write lock");
    let resp = server.post_json("/api/tenants/faults/documents", &json!({ "table": "docs", "fields": { "n": 3 } }));
    resp.expect_status(503);
    assert_eq!(resp.code(), "service.storage_busy");
    assert_eq!(resp.json["error"]["retryable"], true);
    holder.execute_batch("ROLLBACK").expect("release the write lock");
    server
        .post_json("/api/tenants/faults/documents", &json!({ "table": "docs", "fields": { "n": 3 } }))
        .expect_status(201);
}

#[test]
fn a_broken_tenant_file_fails_alone() {
    let mut server = Server::start();
    server.create_tenant("broken");
    server.create_tenant("healthy");
    let id = server.insert("healthy", "docs", &json!({ "ok": true }));
    server.stop();
    let dirs = server.dirs();
    let file = dirs.data().join("tenants/broken.sqlite3");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    std::fs::write(&file, b"this is not a database, just 48 bytes of text!!!").expect("overwrite");

    // The server still starts; the broken tenant answers with a catalogued storage error while
    // the others work, and it can still be deleted.
    let server = Server::start_in(&dirs);
    let tenants = server.get("/api/tenants");
    assert_eq!(tenants.json["tenants"], json!(["broken", "healthy"]));
    let resp = server.get("/api/tenants/broken/documents/docs");
    resp.expect_status(500);
    assert_eq!(resp.code(), "service.storage_corruption");
    server.get(&format!("/api/tenants/healthy/documents/docs/{id}")).expect_status(200);
    server.delete("/api/tenants/broken").expect_status(204);
    assert!(!file.exists(), "the broken tenant's file is removed with it");
    server.get("/api/tenants/broken/documents/docs").expect_status(404);
}

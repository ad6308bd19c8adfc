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

/// A size-limited tmpfs mounted over a directory for one test, unmounted when dropped (after
/// the server using it, which is declared later and so dropped first).
pub struct SmallFilesystem(std::path::PathBuf);

impl SmallFilesystem {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) over `dir`.
    pub fn mount(dir: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let options = format!("size={size},mode=0700");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "nimbus-test-full"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root");
        Self(dir.to_owned())
    }

    /// Resizes the tmpfs to `size`.
    pub fn grow(&self, size: &str) {
        let options = format!("remount,size={size}");
        let status =
            std::process::Command::new("mount").args(["-o", &options]).arg(&self.0).status().expect("run mount");
        assert!(status.success(), "remounting the tmpfs");
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Every journal record of a tenant, paged.
fn journal_records(server: &Server, tenant: &str) -> Vec<serde_json::Value> {
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let page = server.get(&format!("/api/tenants/{tenant}/journal?after={after}&limit=1000"));
        page.expect_status(200);
        let batch = page.json["records"].as_array().unwrap_or_else(|| panic!("{page}")).clone();
        records.extend(batch);
        if page.json["has_more"] != true {
            return records;
        }
        after = page.json["next_cursor"].as_u64().unwrap_or_else(|| panic!("{page}"));
    }
}

#[test]
fn a_full_disk_fails_whole_batches_and_the_writer_recovers_when_space_returns() {
    let dirs = crate::harness::Dirs::new();
    let disk = SmallFilesystem::mount(&dirs.data(), "24m");
    let server = std::sync::Arc::new(Server::start_in(&dirs));
    server.create_tenant("full");
    let filler = "x".repeat(400 * 1024);

    // Four clients insert until the disk is full; each stops after its third refusal, so
    // refusals land in batches holding other clients' inserts too.
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let (server, filler) = (server.clone(), filler.clone());
            std::thread::spawn(move || {
                let (mut acknowledged, mut refused) = (Vec::new(), Vec::new());
                for i in 0..5_000 {
                    let n = client * 100_000 + i;
                    let resp = server.post_json(
                        "/api/tenants/full/documents",
                        &json!({ "table": "docs", "fields": { "n": n, "filler": filler } }),
                    );
                    if resp.status == 201 {
                        acknowledged.push(resp.json["id"].as_str().expect("id").to_owned());
                    } else {
                        refused.push((n, resp.code().to_owned(), resp.status));
                        if refused.len() == 3 {
                            break;
                        }
                    }
                }
                (acknowledged, refused)
            })
        })
        .collect();
    let (mut acknowledged, mut refused) = (Vec::new(), Vec::new());
    for client in clients {
        let (a, r) = client.join().expect("client thread");
        acknowledged.extend(a);
        refused.extend(r);
    }
    assert_eq!(refused.len(), 24, "every client met the full disk: {refused:?}");
    for (n, code, status) in &refused {
        assert_eq!((code.as_str(), *status), ("service.storage_io", 500), "insert {n} got a catalogued storage error");
    }

    // Space returns: the writer works again, and its journal head is right.
    disk.grow("64m");
    let after = server.insert("full", "docs", &json!({ "n": -1 }));
    acknowledged.push(after.clone());

    // Exactly the acknowledged inserts are stored and journaled, under gapless sequences.
    let records = journal_records(&server, "full");
    let sequences: Vec<u64> = records.iter().map(|r| r["sequence"].as_u64().expect("sequence")).collect();
    let first = sequences.first().copied().unwrap_or(0);
    assert!(
        sequences.iter().enumerate().all(|(i, s)| *s == first + i as u64),
        "journal sequences have gaps or repeats: {sequences:?}"
    );
    let mut journaled: Vec<String> = records
        .iter()
        .flat_map(|r| r["writes"].as_array().cloned().unwrap_or_default())
        .filter(|w| w["table"] == "docs")
        .map(|w| w["doc_id"].as_str().unwrap_or_else(|| panic!("{w}")).to_owned())
        .collect();
    journaled.sort();
    let mut expected = acknowledged.clone();
    expected.sort();
    assert_eq!(journaled, expected, "the journal holds exactly the acknowledged inserts");
    for (n, _, _) in &refused {
        let found =
            server.query("full", &json!({ "table": "docs", "filters": [{ "field": "n", "op": "eq", "value": n }] }));
        assert!(found.is_empty(), "refused insert {n} was stored anyway");
    }
    for id in &acknowledged {
        server.get(&format!("/api/tenants/full/documents/docs/{id}")).expect_status(200);
    }
}

#[test]
fn a_sandbox_whose_record_cannot_be_written_is_refused() {
    let server = Server::start();
    server.create_tenant("rec");
    // The system database refuses sandbox rows, as a full or failing disk would.
    let system = rusqlite::Connection::open(server.dirs().data().join("system.sqlite3")).expect("open system db");
    system.busy_timeout(std::time::Duration::from_secs(10)).expect("busy timeout");
    system
        .execute_batch(
            "CREATE TRIGGER refuse_sandbox_rows BEFORE INSERT ON records WHEN NEW.kind = 'sandbox' \
             BEGIN SELECT RAISE(FAIL, 'injected fault'); END;",
        )
        .expect("install the fault");
    let root = json!({ "kind": "oci_image", "source": { "kind": "reference", "reference": "127.0.0.1:1/nothing:1" } });
    let body = json!({ "spec": { "root": root, "process": { "argv": ["true"] } } });
    let refused = server.post_json("/api/tenants/rec/sandboxes", &body);
    refused.expect_error(500, "service.storage_other");
    let listed = server.get("/api/tenants/rec/sandboxes");
    assert_eq!(listed.json["items"], json!([]), "no sandbox exists without its record: {listed}");
}

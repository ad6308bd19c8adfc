//! Documents: insert/get/patch/delete codes and bodies, field rules, caps, list pagination
//! (data §2).

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::harness::{Server, assert_ulid, enc};

fn keys(doc: &Value) -> Vec<String> {
    doc.as_object().unwrap_or_else(|| panic!("document is not an object: {doc}")).keys().cloned().collect()
}

/// `{"a": {"a": … 1}}` with `depth` object levels counting the document itself.
fn nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "a": value });
    }
    value
}

#[test]
fn crud_codes_and_bodies() {
    let server = Server::start();
    server.create_tenant("t");
    let docs = "/api/tenants/t/documents";

    // Insert.
    let fields =
        json!({ "title": "write spec", "priority": 2, "owner": { "team": "infra" }, "alpha": [1, "x"], "zeta": null });
    let resp = server.post_json(docs, &json!({ "table": "tasks", "fields": fields, "id": "chosen-by-client" }));
    resp.expect_status(201);
    let id = resp.json["id"].as_str().expect("id").to_owned();
    assert_ulid(&id);
    assert_eq!(resp.json, json!({ "id": id }), "insert body");

    // Get: system fields first, then fields in insertion order.
    let resp = server.get(&format!("{docs}/tasks/{id}"));
    resp.expect_status(200);
    let doc = resp.json["document"].clone();
    assert_eq!(
        keys(&doc),
        ["_id", "_creationTime", "_updateTime", "title", "priority", "owner", "alpha", "zeta"],
        "{doc}"
    );
    assert_eq!(doc["_id"], id.as_str());
    let created = doc["_creationTime"].as_i64().expect("_creationTime integer");
    let updated = doc["_updateTime"].as_i64().expect("_updateTime integer");
    assert!(created > 1_600_000_000_000 && updated >= created, "{doc}");
    for (key, value) in fields.as_object().unwrap() {
        assert_eq!(&doc[key], value, "field {key}");
    }

    // Ids are minted in creation order.
    let second = server.insert("t", "tasks", &json!({ "title": "second" }));
    assert!(second > id, "ids not increasing: {id} then {second}");

    // Patch: shallow merge, null stored, empty patch commits.
    let resp = server.patch_json(
        &format!("{docs}/tasks/{id}"),
        &json!({ "patch": { "priority": 3, "owner": { "lead": "ann" }, "title": null, "extra": true } }),
    );
    resp.expect_status(200);
    assert_eq!(resp.json, json!({ "id": id }));
    let patched = server.document("t", "tasks", &id);
    assert_eq!(patched["priority"], 3);
    assert_eq!(patched["owner"], json!({ "lead": "ann" }), "patch must replace top-level values, not deep-merge");
    assert!(
        patched.as_object().unwrap().contains_key("title") && patched["title"].is_null(),
        "null must be stored: {patched}"
    );
    assert_eq!(patched["alpha"], json!([1, "x"]));
    assert_eq!(patched["extra"], true);
    assert_eq!(patched["_creationTime"], created, "_creationTime changed");
    let after_patch = patched["_updateTime"].as_i64().unwrap();
    assert!(after_patch >= updated, "_updateTime went backwards");
    assert_eq!(&keys(&patched)[..3], ["_id", "_creationTime", "_updateTime"]);

    let journal_before =
        server.get("/api/tenants/t/journal").json["latest_sequence"].as_i64().expect("latest_sequence");
    server.patch_json(&format!("{docs}/tasks/{id}"), &json!({ "patch": {} })).expect_status(200);
    let journal_after = server.get("/api/tenants/t/journal").json["latest_sequence"].as_i64().unwrap();
    assert!(
        journal_after > journal_before,
        "empty patch did not commit (latest_sequence {journal_before} -> {journal_after})"
    );
    let repatched = server.document("t", "tasks", &id);
    assert!(repatched["_updateTime"].as_i64().unwrap() >= after_patch);
    assert_eq!(repatched["_creationTime"], created);

    // Field name rules, on insert and on patch.
    for bad in ["_x", "_id", "a.b", ""] {
        let resp = server.post_json(docs, &json!({ "table": "tasks", "fields": { bad: 1 } }));
        resp.expect_error(400, "op.invalid_input");
        let field = resp.detail()["field"].as_str().unwrap_or_else(|| panic!("no detail.field: {resp}"));
        if !bad.is_empty() {
            assert!(field.contains(bad), "detail.field {field:?} does not name {bad:?}");
        }
        let resp = server.patch_json(&format!("{docs}/tasks/{id}"), &json!({ "patch": { bad: 1 } }));
        resp.expect_error(400, "op.invalid_input");
        assert!(resp.detail()["field"].is_string(), "no detail.field: {resp}");
    }
    // Nested keys are free-form.
    let free = server.insert("t", "tasks", &json!({ "o": { "_a": 1, "b.c": 2, "": 3 } }));
    assert_eq!(server.document("t", "tasks", &free)["o"], json!({ "_a": 1, "b.c": 2, "": 3 }));

    // `fields` must be an object.
    for body in [
        json!({ "table": "tasks", "fields": [1] }),
        json!({ "table": "tasks", "fields": "x" }),
        json!({ "table": "tasks", "fields": null }),
        json!({ "table": "tasks" }),
    ] {
        server.post_json(docs, &body).expect_field(400, "op.invalid_input", "fields");
    }
    for body in [json!({ "fields": {} }), json!({ "table": 3, "fields": {} }), json!({ "table": "a b", "fields": {} })]
    {
        server.post_json(docs, &body).expect_field(400, "op.invalid_input", "table");
    }
    server.patch_json(&format!("{docs}/tasks/{id}"), &json!({ "patch": [1] })).expect_field(
        400,
        "op.invalid_input",
        "patch",
    );
    server.patch_json(&format!("{docs}/tasks/{id}"), &json!({})).expect_field(400, "op.invalid_input", "patch");

    // Caps.
    let big = "x".repeat(1024 * 1024);
    let resp = server.post_json(docs, &json!({ "table": "tasks", "fields": { "blob": big } }));
    resp.expect_error(400, "op.cap_exceeded");
    assert_eq!(resp.detail()["cap"], "document_bytes", "{resp}");
    assert_eq!(resp.detail()["limit"], 1024 * 1024, "{resp}");
    assert!(resp.detail()["observed"].as_u64().is_some_and(|o| o > 1024 * 1024), "{resp}");
    let resp =
        server.patch_json(&format!("{docs}/tasks/{id}"), &json!({ "patch": { "blob": "x".repeat(1024 * 1024) } }));
    resp.expect_error(400, "op.cap_exceeded");
    assert_eq!(resp.detail()["cap"], "document_bytes", "{resp}");
    // Just under the cap is fine.
    let near = server.insert("t", "big", &json!({ "blob": "y".repeat(1024 * 1024 - 1024) }));
    assert_eq!(server.document("t", "big", &near)["blob"].as_str().map(str::len), Some(1024 * 1024 - 1024));

    let resp = server.post_json(docs, &json!({ "table": "tasks", "fields": nested(65) }));
    resp.expect_error(400, "op.cap_exceeded");
    assert_eq!(resp.detail()["cap"], "document_depth", "{resp}");
    assert_eq!(resp.detail()["limit"], 64, "{resp}");
    let deep = server.insert("t", "deep", &nested(64));
    assert_eq!(server.document("t", "deep", &deep)["a"], nested(63));

    // Delete.
    let resp = server.delete(&format!("{docs}/tasks/{id}"));
    resp.expect_status(204);
    assert!(resp.body.is_empty());
    for resp in [
        server.get(&format!("{docs}/tasks/{id}")),
        server.delete(&format!("{docs}/tasks/{id}")),
        server.patch_json(&format!("{docs}/tasks/{id}"), &json!({ "patch": { "a": 1 } })),
        // An existing id in another table is not that table's document.
        server.get(&format!("{docs}/other/{second}")),
    ] {
        resp.expect_error(404, "op.document_not_found");
        let table = if resp.what.contains("/other/") { "other" } else { "tasks" };
        let expected_id = if table == "other" { second.as_str() } else { id.as_str() };
        assert_eq!(resp.detail(), &json!({ "table": table, "documentId": expected_id }), "{resp}");
    }
    // Unknown or empty tables list no rows.
    assert!(server.list_all("t", "nothing_here").is_empty());
}

#[test]
fn list_pages_while_writing() {
    let server = Arc::new(Server::start());
    server.create_tenant("t");
    let originals: Vec<String> = (0..50).map(|i| server.insert("t", "items", &json!({ "n": i }))).collect();

    // A concurrent writer adds (and removes some of its own) documents while we page.
    let writer = {
        let server = server.clone();
        std::thread::spawn(move || {
            let mut added = 0;
            for i in 0..60 {
                let id = server.insert("t", "items", &json!({ "late": i }));
                added += 1;
                if i % 3 == 0 {
                    server.delete(&format!("/api/tenants/t/documents/items/{id}")).expect_status(204);
                    added -= 1;
                }
            }
            added
        })
    };

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/api/tenants/t/documents/items?limit=7".to_owned(),
            Some(c) => format!("/api/tenants/t/documents/items?limit=7&cursor={}", enc(c)),
        };
        let resp = server.get(&path);
        resp.expect_status(200);
        pages += 1;
        let data = resp.json["data"].as_array().unwrap_or_else(|| panic!("{resp}"));
        assert!(data.len() <= 7, "page larger than limit: {resp}");
        seen.extend(data.iter().map(|d| d["_id"].as_str().expect("_id").to_owned()));
        let has_more = resp.json["has_more"].as_bool().unwrap_or_else(|| panic!("has_more not a bool: {resp}"));
        let next = &resp.json["next_cursor"];
        if has_more {
            let next = next.as_str().unwrap_or_else(|| panic!("has_more without a string next_cursor: {resp}"));
            assert!(!data.is_empty(), "has_more on an empty page: {resp}");
            cursor = Some(next.to_owned());
        } else {
            assert!(next.is_null(), "next_cursor must be null when has_more is false: {resp}");
            break;
        }
        assert!(pages < 1000, "pagination does not terminate");
    }
    let added = writer.join().expect("writer thread");

    assert!(seen.windows(2).all(|w| w[0] < w[1]), "ids not strictly increasing across pages: {seen:?}");
    let seen_set: HashSet<&String> = seen.iter().collect();
    for id in &originals {
        assert_eq!(seen.iter().filter(|s| *s == id).count(), 1, "original {id} not seen exactly once");
    }
    assert!(seen_set.len() == seen.len());

    // Without limit: everything, in id order, no more pages.
    let resp = server.get("/api/tenants/t/documents/items");
    resp.expect_status(200);
    let all = resp.json["data"].as_array().unwrap();
    assert_eq!(all.len(), 50 + added, "{} documents listed", all.len());
    assert_eq!(resp.json["has_more"], false);
    assert!(resp.json["next_cursor"].is_null());
    let ids: Vec<&str> = all.iter().map(|d| d["_id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "list not ordered by _id");
    assert_eq!(&ids[..50], originals.iter().map(String::as_str).collect::<Vec<_>>().as_slice());

    // Exact page boundary: has_more false on the last full page.
    let resp = server.get("/api/tenants/t/documents/items?limit=1000");
    resp.expect_status(200);
    assert_eq!(resp.json["has_more"], false);
    assert!(resp.json["next_cursor"].is_null());

    // Bad limits.
    for limit in ["0", "1001", "-1", "abc", "1.5", ""] {
        server.get(&format!("/api/tenants/t/documents/items?limit={limit}")).expect_field(
            400,
            "op.invalid_input",
            "limit",
        );
    }

    // A cursor from another table, or a malformed one.
    for i in 0..3 {
        server.insert("t", "other", &json!({ "i": i }));
    }
    let resp = server.get("/api/tenants/t/documents/other?limit=1");
    let foreign = resp.json["next_cursor"].as_str().unwrap_or_else(|| panic!("{resp}")).to_owned();
    server.get(&format!("/api/tenants/t/documents/items?limit=5&cursor={}", enc(&foreign))).expect_field(
        400,
        "op.invalid_input",
        "cursor",
    );
    server.get("/api/tenants/t/documents/items?limit=5&cursor=garbage").expect_field(400, "op.invalid_input", "cursor");
    // The foreign cursor still works on its own table.
    let resp = server.get(&format!("/api/tenants/t/documents/other?limit=5&cursor={}", enc(&foreign)));
    resp.expect_status(200);
    assert_eq!(resp.json["data"].as_array().map(Vec::len), Some(2));
}

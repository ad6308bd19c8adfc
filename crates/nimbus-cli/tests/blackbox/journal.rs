//! The journal (change data capture) and bootstrap snapshot (data §6).

use serde_json::{Value, json};

use crate::harness::Server;

/// A field of a before/after image, whether the image is in wire form (`{_id, …, title}`) or
/// storage form (`{id, table, …, fields: {title}}`).
fn image_field<'a>(image: &'a Value, name: &str) -> &'a Value {
    match image.get("fields") {
        Some(fields) if fields.is_object() => &fields[name],
        _ => &image[name],
    }
}

fn journal(server: &Server, query: &str) -> Value {
    let resp = server.get(&format!("/api/tenants/j/journal{query}"));
    resp.expect_status(200);
    resp.json.clone()
}

#[test]
fn journal_pages_and_bootstrap() {
    let server = Server::start();
    server.create_tenant("j");

    let ids: Vec<String> =
        (0..5).map(|i| server.insert("j", "tasks", &json!({ "title": format!("t{i}"), "i": i }))).collect();
    server
        .patch_json(&format!("/api/tenants/j/documents/tasks/{}", ids[1]), &json!({ "patch": { "title": "changed" } }))
        .expect_status(200);
    server.delete(&format!("/api/tenants/j/documents/tasks/{}", ids[2])).expect_status(204);

    let page = journal(&server, "?after=0&limit=100");
    let records = page["records"].as_array().unwrap_or_else(|| panic!("{page}")).clone();
    // Every write is one committed batch (schema changes may add records of their own; none here).
    assert_eq!(records.len(), 7, "{page}");
    let sequences: Vec<i64> = records.iter().map(|r| r["sequence"].as_i64().expect("sequence")).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "sequences not strictly increasing: {sequences:?}");
    assert!(sequences[0] >= 1);
    let latest = *sequences.last().unwrap();
    assert_eq!(page["latest_sequence"], latest, "{page}");
    assert_eq!(page["has_more"], false, "{page}");
    assert_eq!(page["next_cursor"], latest, "{page}");
    let floor = page["cursor_floor"].as_i64().unwrap_or_else(|| panic!("cursor_floor: {page}"));
    assert!(floor >= 0 && floor < sequences[0]);

    for record in &records {
        assert_eq!(record["version"], 1, "{record}");
        assert!(record["timestamp"].as_i64().is_some_and(|t| t > 1_600_000_000_000), "{record}");
        assert!(record["scheduled_execution_id"].is_null(), "{record}");
        let digest = record["integrity_sha256"].as_array().unwrap_or_else(|| panic!("{record}"));
        assert_eq!(digest.len(), 32, "{record}");
        assert!(digest.iter().all(|b| b.as_u64().is_some_and(|b| b <= 255)), "{record}");
        assert_eq!(record["writes"].as_array().map(Vec::len), Some(1), "{record}");
    }
    let write = |i: usize| records[i]["writes"][0].clone();
    for (i, id) in ids.iter().enumerate() {
        let w = write(i);
        assert_eq!(
            (w["table"].as_str(), w["op_type"].as_str(), w["doc_id"].as_str()),
            (Some("tasks"), Some("insert"), Some(id.as_str())),
            "{w}"
        );
        assert!(w["previous"].is_null(), "{w}");
        assert_eq!(image_field(&w["current"], "title"), &json!(format!("t{i}")), "{w}");
    }
    let update = write(5);
    assert_eq!(
        (update["op_type"].as_str(), update["doc_id"].as_str()),
        (Some("update"), Some(ids[1].as_str())),
        "{update}"
    );
    assert_eq!(image_field(&update["previous"], "title"), "t1", "{update}");
    assert_eq!(image_field(&update["current"], "title"), "changed", "{update}");
    assert_eq!(image_field(&update["current"], "i"), 1, "{update}");
    let delete = write(6);
    assert_eq!(
        (delete["op_type"].as_str(), delete["doc_id"].as_str()),
        (Some("delete"), Some(ids[2].as_str())),
        "{delete}"
    );
    assert_eq!(image_field(&delete["previous"], "title"), "t2", "{delete}");
    assert!(delete["current"].is_null(), "{delete}");

    // Default parameters.
    assert_eq!(journal(&server, "")["records"], json!(records));

    // Paging.
    let mut after = 0;
    let mut paged = Vec::new();
    loop {
        let page = journal(&server, &format!("?after={after}&limit=2"));
        let batch = page["records"].as_array().unwrap().clone();
        assert!(batch.len() <= 2);
        paged.extend(batch.iter().cloned());
        if page["has_more"] != true {
            break;
        }
        assert_eq!(batch.len(), 2, "a short page with has_more: {page}");
        after = page["next_cursor"].as_i64().unwrap_or_else(|| panic!("next_cursor: {page}"));
        assert_eq!(after, batch.last().unwrap()["sequence"].as_i64().unwrap());
    }
    assert_eq!(paged, records, "paged journal differs from one page");
    let tail = journal(&server, &format!("?after={}", sequences[4]));
    assert_eq!(tail["records"].as_array().map(Vec::len), Some(2));
    let at_latest = journal(&server, &format!("?after={latest}"));
    assert_eq!(at_latest["records"], json!([]));
    assert_eq!(at_latest["has_more"], false);

    // Bad cursors and limits.
    let resp = server.get(&format!("/api/tenants/j/journal?after={}", latest + 5));
    resp.expect_error(400, "op.invalid_input");
    assert_eq!(resp.detail()["field"], "after", "{resp}");
    assert_eq!(resp.detail()["latestSequence"], latest, "{resp}");
    assert_eq!(resp.detail()["cursorFloor"], floor, "{resp}");
    for query in ["?limit=0", "?limit=1001", "?limit=x", "?after=-1", "?after=x"] {
        let resp = server.get(&format!("/api/tenants/j/journal{query}"));
        resp.expect_error(400, "op.invalid_input");
        let field = resp.detail()["field"].as_str().unwrap_or("");
        assert!(query.contains(field) && !field.is_empty(), "{query}: detail.field {field:?}: {resp}");
        assert!(resp.detail()["latestSequence"].is_i64() && resp.detail()["cursorFloor"].is_i64(), "{query}: {resp}");
    }

    // Bootstrap.
    let resp = server.get("/api/tenants/j/journal/bootstrap");
    resp.expect_status(200);
    let boot = resp.json.clone();
    assert_eq!(boot["resume_after_sequence"], latest, "{boot}");
    assert!(boot["bootstrap_cut_sequence"].is_i64() && boot["cursor_floor_sequence"].is_i64(), "{boot}");
    let snapshot = &boot["snapshot"];
    for key in ["version", "applied_sequence", "durable_head", "schema", "documents", "scheduled_execution_ids"] {
        assert!(snapshot.get(key).is_some(), "snapshot lacks {key}: {boot}");
    }
    assert_eq!(snapshot["applied_sequence"], latest, "{boot}");
    let documents = snapshot["documents"].as_array().unwrap_or_else(|| panic!("{boot}"));
    let mut snap_ids: Vec<&str> = documents.iter().map(|d| d["id"].as_str().expect("id")).collect();
    snap_ids.sort();
    let live: Vec<&str> = [0, 1, 3, 4].iter().map(|i| ids[*i].as_str()).collect();
    assert_eq!(snap_ids, live, "{boot}");
    for doc in documents {
        let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "storage form is {{id, table, creation_time, update_time, fields}}: {doc}");
        let id = doc["id"].as_str().unwrap();
        let wire = server.document("j", "tasks", id);
        assert_eq!(doc["table"], "tasks");
        assert_eq!(doc["creation_time"], wire["_creationTime"], "{doc}");
        assert_eq!(doc["update_time"], wire["_updateTime"], "{doc}");
        assert_eq!(doc["fields"]["title"], wire["title"], "{doc}");
        assert_eq!(doc["fields"]["i"], wire["i"], "{doc}");
        assert!(doc["fields"].get("_id").is_none(), "system fields inside storage fields: {doc}");
    }

    // Resume from the bootstrap point.
    let new_id = server.insert("j", "tasks", &json!({ "title": "after bootstrap" }));
    let page = journal(&server, &format!("?after={}", boot["resume_after_sequence"]));
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{page}");
    assert_eq!(records[0]["writes"][0]["doc_id"], new_id.as_str());
    assert_eq!(records[0]["writes"][0]["op_type"], "insert");
    assert!(records[0]["sequence"].as_i64().unwrap() > latest);
}

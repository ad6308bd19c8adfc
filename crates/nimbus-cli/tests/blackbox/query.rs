//! Queries and paginated queries: operators, ordering across kinds, keyset pagination under
//! concurrent writes (data §3–4).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::harness::Server;

/// Inserts labelled documents in order; returns label → id.
fn insert_labelled(server: &Server, tenant: &str, table: &str, rows: &[(&str, Value)]) -> HashMap<String, String> {
    rows.iter().map(|(label, fields)| ((*label).to_owned(), server.insert(tenant, table, fields))).collect()
}

/// The labels of the returned documents, in order.
fn labels_of(docs: &[Value], ids: &HashMap<String, String>) -> Vec<String> {
    let by_id: HashMap<&str, &str> = ids.iter().map(|(l, id)| (id.as_str(), l.as_str())).collect();
    docs.iter()
        .map(|d| {
            by_id.get(d["_id"].as_str().unwrap_or("")).unwrap_or_else(|| panic!("unknown document {d}")).to_string()
        })
        .collect()
}

#[test]
fn each_operator_on_mixed_documents() {
    let server = Server::start();
    server.create_tenant("q");
    let rows: Vec<(&str, Value)> = vec![
        ("a", json!({ "v": 1, "owner": { "team": "infra" } })),
        ("b", json!({ "v": 1.0 })),
        ("c", json!({ "v": 2.5, "owner": { "team": "core" } })),
        ("d", json!({ "v": -3 })),
        ("e", json!({ "v": "a" })),
        ("f", json!({ "v": "b", "owner": "infra" })),
        ("g", json!({ "v": "1" })),
        ("h", json!({ "v": true })),
        ("i", json!({ "v": false })),
        ("j", json!({ "v": null, "owner": { "team": null } })),
        ("k", json!({ "v": [1, 2] })),
        ("l", json!({ "v": { "x": 1, "y": 2 } })),
        ("m", json!({ "w": 1, "owner": [{ "team": "infra" }] })),
        ("n", json!({ "v": 10, "owner": { "team": "infra", "lead": "ann" } })),
        ("o", json!({ "v": "B" })),
        ("p", json!({ "v": { "y": 2, "x": 1 } })),
        ("q", json!({ "v": [2, 1] })),
    ];
    let ids = insert_labelled(&server, "q", "mixed", &rows);
    let all_with_v: Vec<&str> = rows.iter().filter(|(_, f)| f.get("v").is_some()).map(|(l, _)| *l).collect();
    let all_with_v_except = |skip: &[&str]| -> String {
        all_with_v.iter().filter(|l| !skip.contains(l)).copied().collect::<Vec<_>>().join(" ")
    };
    let neq_1 = all_with_v_except(&["a", "b"]);
    let neq_null = all_with_v_except(&["j"]);
    let every = rows.iter().map(|(l, _)| *l).collect::<Vec<_>>().join(" ");
    let (id_c, id_n) = (ids["c"].clone(), ids["n"].clone());

    // (filters, expected labels in _id order)
    let cases: Vec<(Value, String)> = vec![
        (json!([["v", "eq", 1]]), "a b".into()),
        (json!([["v", "eq", 1.0]]), "a b".into()),
        (json!([["v", "eq", "1"]]), "g".into()),
        (json!([["v", "eq", true]]), "h".into()),
        (json!([["v", "eq", false]]), "i".into()),
        (json!([["v", "eq", null]]), "j".into()),
        (json!([["v", "eq", [1, 2]]]), "k".into()),
        (json!([["v", "eq", [2, 1]]]), "q".into()),
        (json!([["v", "eq", { "x": 1, "y": 2 }]]), "l p".into()),
        (json!([["v", "eq", { "y": 2, "x": 1 }]]), "l p".into()),
        (json!([["v", "eq", 99]]), "".into()),
        (json!([["v", "neq", 1]]), neq_1),
        (json!([["v", "neq", null]]), neq_null),
        (json!([["w", "neq", 2]]), "m".into()),
        (json!([["v", "gt", 1]]), "c n".into()),
        (json!([["v", "gte", 1]]), "a b c n".into()),
        (json!([["v", "lt", 1]]), "d".into()),
        (json!([["v", "lte", 2.5]]), "a b c d".into()),
        (json!([["v", "gt", -100]]), "a b c d n".into()),
        (json!([["v", "gt", "a"]]), "f".into()),
        (json!([["v", "gte", "a"]]), "e f".into()),
        (json!([["v", "lt", "a"]]), "g o".into()),
        (json!([["v", "lte", "B"]]), "g o".into()),
        (json!([["v", "in", [1, "a", null]]]), "a b e j".into()),
        (json!([["v", "in", []]]), "".into()),
        (json!([["v", "in", [[1, 2], { "y": 2, "x": 1 }]]]), "k l p".into()),
        (json!([["v", "in", [true]]]), "h".into()),
        (json!([["owner.team", "eq", "infra"]]), "a n".into()),
        (json!([["owner.team", "neq", "infra"]]), "c j".into()),
        (json!([["owner.team", "eq", null]]), "j".into()),
        (json!([["owner.team", "in", ["core", "infra"]]]), "a c n".into()),
        (json!([["owner.lead", "eq", "ann"]]), "n".into()),
        (json!([["owner.team.x", "eq", "infra"]]), "".into()),
        (json!([["w", "eq", 1]]), "m".into()),
        (json!([["v.x", "eq", 1]]), "l p".into()),
        (json!([["v.0", "eq", 1]]), "".into()),
        (json!([["nowhere", "neq", 1]]), "".into()),
        (json!([["_id", "eq", id_c]]), "c".into()),
        (json!([["_id", "gt", id_n]]), "o p q".into()),
        (json!([["_creationTime", "gte", 0]]), every.clone()),
        (json!([["_updateTime", "lt", 0]]), "".into()),
        (json!([["v", "gte", 1], ["owner.team", "eq", "infra"]]), "a n".into()),
        (json!([["v", "gte", 1], ["v", "lt", 2]]), "a b".into()),
        (json!([]), every),
    ];
    for (filters, expected) in &cases {
        let filters: Vec<Value> =
            filters.as_array().unwrap().iter().map(|f| json!({ "field": f[0], "op": f[1], "value": f[2] })).collect();
        let docs = server.query("q", &json!({ "table": "mixed", "filters": filters }));
        let got = labels_of(&docs, &ids).join(" ");
        assert_eq!(&got, expected, "filters {}", json!(filters));
    }

    // `null` for optional fields means absent; `limit` applies after filtering.
    let docs = server.query("q", &json!({ "table": "mixed", "filters": [], "order": null, "limit": null }));
    assert_eq!(docs.len(), rows.len());
    let docs = server
        .query("q", &json!({ "table": "mixed", "filters": [{ "field": "v", "op": "gte", "value": 1 }], "limit": 2 }));
    assert_eq!(labels_of(&docs, &ids), ["a", "b"]);
    assert!(
        server.query("q", &json!({ "table": "mixed", "filters": [], "limit": 0 })).is_empty(),
        "limit 0 must return nothing"
    );
    assert!(server.query("q", &json!({ "table": "no_such_table", "filters": [] })).is_empty());
    // Returned documents are in wire form.
    let doc =
        &server.query("q", &json!({ "table": "mixed", "filters": [{ "field": "v", "op": "eq", "value": 10 }] }))[0];
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["_id", "_creationTime", "_updateTime", "v", "owner"]);

    // Validation errors name the offending path.
    let path = "/api/tenants/q/query";
    let filter = |field: Value, op: Value, value: Value| json!({ "field": field, "op": op, "value": value });
    let bad: Vec<(Value, &str)> = vec![
        (json!({ "table": "mixed", "filters": [filter(json!("v"), json!("gt"), json!(true))] }), "filters[0].value"),
        (json!({ "table": "mixed", "filters": [filter(json!("v"), json!("gte"), json!(null))] }), "filters[0].value"),
        (json!({ "table": "mixed", "filters": [filter(json!("v"), json!("lt"), json!([1]))] }), "filters[0].value"),
        (
            json!({ "table": "mixed", "filters": [filter(json!("v"), json!("eq"), json!(1)), filter(json!("v"), json!("lte"), json!({}))] }),
            "filters[1].value",
        ),
        (json!({ "table": "mixed", "filters": [filter(json!("v"), json!("like"), json!(1))] }), "filters[0].op"),
        (json!({ "table": "mixed", "filters": [filter(json!("v"), json!(3), json!(1))] }), "filters[0].op"),
        (json!({ "table": "mixed", "filters": [filter(json!("v"), json!("in"), json!(1))] }), "filters[0].value"),
        (
            json!({ "table": "mixed", "filters": [filter(json!("v"), json!("in"), json!((0..1001).collect::<Vec<_>>()))] }),
            "filters[0].value",
        ),
        (json!({ "table": "mixed", "filters": [filter(json!(""), json!("eq"), json!(1))] }), "filters[0].field"),
        (json!({ "table": "mixed", "filters": [filter(json!("a..b"), json!("eq"), json!(1))] }), "filters[0].field"),
        (json!({ "table": "mixed", "filters": [filter(json!(5), json!("eq"), json!(1))] }), "filters[0].field"),
        (json!({ "table": "mixed", "filters": [], "limit": -1 }), "limit"),
        (json!({ "table": "mixed", "filters": [], "limit": "5" }), "limit"),
        (json!({ "table": "mixed", "filters": [], "order": { "field": "v", "direction": "up" } }), "order.direction"),
        (json!({ "table": "mixed", "filters": [], "order": { "field": "", "direction": "asc" } }), "order.field"),
        (json!({ "table": "mixed" }), "filters"),
        (json!({ "table": "mixed", "filters": {} }), "filters"),
        (json!({ "filters": [] }), "table"),
        (json!({ "table": "bad name", "filters": [] }), "table"),
    ];
    for (body, field) in &bad {
        server.post_json(path, body).expect_field(400, "op.invalid_input", field);
    }
    // 1000 values is the documented maximum.
    let thousand: Vec<i64> = (0..1000).collect();
    let docs =
        server.query("q", &json!({ "table": "mixed", "filters": [filter(json!("v"), json!("in"), json!(thousand))] }));
    assert_eq!(labels_of(&docs, &ids), ["a", "b", "n"]);
}

#[test]
fn ordering_ties_and_missing_fields() {
    let server = Server::start();
    server.create_tenant("q");
    let rows: Vec<(&str, Value)> = vec![
        ("o1", json!({ "k": "b" })),
        ("o2", json!({ "k": 2 })),
        ("o3", json!({ "k": null })),
        ("o4", json!({ "z": 1 })),
        ("o5", json!({ "k": true })),
        ("o6", json!({ "k": [1] })),
        ("o7", json!({ "k": { "a": 1 } })),
        ("o8", json!({ "k": 2.0 })),
        ("o9", json!({ "k": false })),
        ("o10", json!({ "k": "a" })),
        ("o11", json!({ "z": 2 })),
        ("o12", json!({ "k": 1.5 })),
        ("o13", json!({ "k": [0, 5] })),
        ("o14", json!({ "k": { "a": 0 } })),
        ("o15", json!({ "k": "b" })),
        ("o16", json!({ "k": null })),
    ];
    let ids = insert_labelled(&server, "q", "ord", &rows);
    let ordered = |field: &str, direction: &str, filters: Value, limit: Option<u64>| -> Vec<String> {
        let mut body =
            json!({ "table": "ord", "filters": filters, "order": { "field": field, "direction": direction } });
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        labels_of(&server.query("q", &body), &ids)
    };
    let split = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();

    assert_eq!(ordered("k", "asc", json!([]), None), split("o3 o16 o9 o5 o12 o2 o8 o10 o1 o15 o13 o6 o14 o7 o4 o11"));
    assert_eq!(ordered("k", "desc", json!([]), None), split("o4 o11 o7 o14 o6 o13 o1 o15 o10 o2 o8 o12 o5 o9 o3 o16"));
    assert_eq!(ordered("k", "asc", json!([]), Some(3)), split("o3 o16 o9"));
    assert_eq!(ordered("k", "desc", json!([]), Some(3)), split("o4 o11 o7"));
    // Nested path: only o7 and o14 have `k.a`.
    assert_eq!(ordered("k.a", "asc", json!([]), Some(4)), split("o14 o7 o1 o2"));
    assert_eq!(ordered("k.a", "desc", json!([]), None)[14..], split("o7 o14"));
    // Filter then order.
    let gte = json!([{ "field": "k", "op": "gte", "value": 1.5 }]);
    assert_eq!(ordered("k", "desc", gte.clone(), None), split("o2 o8 o12"));
    assert_eq!(ordered("k", "asc", gte, None), split("o12 o2 o8"));
    // `_id` order, both directions.
    let by_id: Vec<String> = rows.iter().map(|(l, _)| (*l).to_owned()).collect();
    assert_eq!(ordered("_id", "asc", json!([]), None), by_id);
    assert_eq!(ordered("_id", "desc", json!([]), None), by_id.iter().rev().cloned().collect::<Vec<_>>());
    // Default order is `_id` ascending.
    assert_eq!(labels_of(&server.query("q", &json!({ "table": "ord", "filters": [] })), &ids), by_id);

    // `_creationTime`: ties (same millisecond) by `_id` ascending in both directions.
    let docs = server.query("q", &json!({ "table": "ord", "filters": [] }));
    let mut expect_asc: Vec<(i64, String)> =
        docs.iter().map(|d| (d["_creationTime"].as_i64().unwrap(), d["_id"].as_str().unwrap().to_owned())).collect();
    expect_asc.sort();
    let mut expect_desc = expect_asc.clone();
    expect_desc.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let ids_of = |docs: Vec<Value>| docs.iter().map(|d| d["_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let asc = server.query(
        "q",
        &json!({ "table": "ord", "filters": [], "order": { "field": "_creationTime", "direction": "asc" } }),
    );
    assert_eq!(ids_of(asc), expect_asc.iter().map(|e| e.1.clone()).collect::<Vec<_>>());
    let desc = server.query(
        "q",
        &json!({ "table": "ord", "filters": [], "order": { "field": "_creationTime", "direction": "desc" } }),
    );
    assert_eq!(ids_of(desc), expect_desc.iter().map(|e| e.1.clone()).collect::<Vec<_>>());
}

/// Kind rank then value for the numbers-only `rank` field used below.
fn rank_key(doc: &Value) -> (f64, String) {
    (doc["rank"].as_f64().unwrap_or_else(|| panic!("rank missing: {doc}")), doc["_id"].as_str().unwrap().to_owned())
}

/// Walks a paginated query to the end; returns every document in page order.
fn walk(server: &Server, tenant: &str, query: &Value, page_size: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = Value::Null;
    for _ in 0..10_000 {
        let resp = server.post_json(
            &format!("/api/tenants/{tenant}/query/paginated"),
            &json!({ "query": query, "page_size": page_size, "after": after }),
        );
        resp.expect_status(200);
        let data = resp.json["data"].as_array().unwrap_or_else(|| panic!("{resp}"));
        assert!(data.len() as u64 <= page_size, "page larger than page_size: {resp}");
        out.extend(data.iter().cloned());
        let has_more = resp.json["has_more"].as_bool().unwrap_or_else(|| panic!("has_more not a bool: {resp}"));
        let next = resp.json["next_cursor"].clone();
        if !has_more {
            assert!(next.is_null(), "next_cursor without has_more: {resp}");
            return out;
        }
        assert!(next.is_string(), "has_more without next_cursor: {resp}");
        after = next;
    }
    panic!("paginated query does not terminate");
}

#[test]
fn paginated_query_while_writing() {
    let server = Arc::new(Server::start());
    server.create_tenant("p");
    let stable: Vec<String> =
        (0..60).map(|i| server.insert("p", "pq", &json!({ "rank": i % 7, "group": "stable", "i": i }))).collect();

    // Concurrently: insert and patch other documents.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (server, stop) = (server.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            let mut noise = Vec::new();
            while !stop.load(Ordering::SeqCst) || n < 20 {
                let id = server.insert("p", "pq", &json!({ "rank": (n * 5) % 9, "group": "noise" }));
                noise.push(id);
                let target = &noise[(n as usize * 7) % noise.len()];
                server
                    .patch_json(
                        &format!("/api/tenants/p/documents/pq/{target}"),
                        &json!({ "patch": { "rank": (n * 3) % 8 } }),
                    )
                    .expect_status(200);
                n += 1;
            }
            n
        })
    };
    let query = json!({ "table": "pq", "filters": [], "order": { "field": "rank", "direction": "asc" } });
    let docs = walk(&server, "p", &query, 8);
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().expect("writer");
    assert!(written >= 20);

    let keys: Vec<(f64, String)> = docs.iter().map(rank_key).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "pages not in strictly increasing (rank, _id) order: {keys:?}");
    let seen: Vec<&str> = docs.iter().map(|d| d["_id"].as_str().unwrap()).collect();
    for id in &stable {
        assert_eq!(seen.iter().filter(|s| **s == id.as_str()).count(), 1, "stable document {id} not seen exactly once");
    }

    // Descending, filtered, after the writer stopped: exactly the stable documents, ties by _id asc.
    let query_desc = json!({
        "table": "pq",
        "filters": [{ "field": "group", "op": "eq", "value": "stable" }],
        "order": { "field": "rank", "direction": "desc" },
        "limit": 1
    });
    let docs = walk(&server, "p", &query_desc, 7);
    let got: Vec<String> = docs.iter().map(|d| d["_id"].as_str().unwrap().to_owned()).collect();
    let mut expected: Vec<(i64, String)> =
        stable.iter().enumerate().map(|(i, id)| (i as i64 % 7, id.clone())).collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(got, expected.into_iter().map(|e| e.1).collect::<Vec<_>>(), "desc walk (query.limit must be ignored)");

    // Cursor rules.
    let paginated = "/api/tenants/p/query/paginated";
    let first = server.post_json(paginated, &json!({ "query": query, "page_size": 5, "after": null }));
    first.expect_status(200);
    let cursor = first.json["next_cursor"].clone();
    assert!(cursor.is_string(), "{first}");
    let other_query = json!({ "table": "pq", "filters": [], "order": { "field": "rank", "direction": "desc" } });
    server.post_json(paginated, &json!({ "query": other_query, "page_size": 5, "after": cursor })).expect_field(
        400,
        "op.invalid_input",
        "after",
    );
    let other_filter = json!({ "table": "pq", "filters": [{ "field": "group", "op": "eq", "value": "noise" }], "order": { "field": "rank", "direction": "asc" } });
    server.post_json(paginated, &json!({ "query": other_filter, "page_size": 5, "after": cursor })).expect_field(
        400,
        "op.invalid_input",
        "after",
    );
    // Only `limit` may differ.
    let mut with_limit = query.clone();
    with_limit["limit"] = json!(3);
    server.post_json(paginated, &json!({ "query": with_limit, "page_size": 5, "after": cursor })).expect_status(200);
    server.post_json(paginated, &json!({ "query": query, "page_size": 5, "after": "not-a-cursor" })).expect_field(
        400,
        "op.invalid_input",
        "after",
    );
    server.post_json(paginated, &json!({ "query": query, "page_size": 5, "after": 7 })).expect_field(
        400,
        "op.invalid_input",
        "after",
    );
    server.post_json(paginated, &json!({ "query": query, "page_size": 0 })).expect_field(
        400,
        "op.invalid_input",
        "page_size",
    );
    server.post_json(paginated, &json!({ "query": query, "page_size": -2 })).expect_field(
        400,
        "op.invalid_input",
        "page_size",
    );
    server.post_json(paginated, &json!({ "page_size": 5 })).expect_field(400, "op.invalid_input", "query");

    // page_size above 1000 is clamped to 1000.
    server.create_tenant("big");
    let mut writers = Vec::new();
    for w in 0..8u64 {
        let server = server.clone();
        writers.push(std::thread::spawn(move || {
            for i in 0..126u64 {
                server.insert("big", "many", &json!({ "w": w, "i": i }));
            }
        }));
    }
    for w in writers {
        w.join().expect("bulk writer");
    }
    let resp = server.post_json(
        "/api/tenants/big/query/paginated",
        &json!({ "query": { "table": "many", "filters": [] }, "page_size": 5000 }),
    );
    resp.expect_status(200);
    let data = resp.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 1000, "page_size 5000 must be clamped to 1000 (1008 documents exist)");
    assert_eq!(resp.json["has_more"], true);
    let rest = server.post_json(
        "/api/tenants/big/query/paginated",
        &json!({ "query": { "table": "many", "filters": [] }, "page_size": 5000, "after": resp.json["next_cursor"] }),
    );
    rest.expect_status(200);
    assert_eq!(rest.json["data"].as_array().map(Vec::len), Some(8));
    assert_eq!(rest.json["has_more"], false);
    let ids: BTreeSet<&str> =
        data.iter().chain(rest.json["data"].as_array().unwrap()).map(|d| d["_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1008);
}

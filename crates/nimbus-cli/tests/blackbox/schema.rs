//! Schemas, indexes and access policies (data §5).

use serde_json::{Value, json};

use crate::harness::Server;

fn field(name: &str, field_type: &str, required: bool) -> Value {
    json!({ "name": name, "field_type": field_type, "required": required })
}

fn index(name: &str, fields: &[&str]) -> Value {
    json!({ "name": name, "fields": fields })
}

fn schema(table: &str, fields: Vec<Value>, indexes: Vec<Value>) -> Value {
    json!({ "table": table, "fields": fields, "indexes": indexes, "access_policy": null })
}

#[test]
fn schema_validation_and_index_backfill() {
    let server = Server::start();
    server.create_tenant("s");
    let base = "/api/tenants/s";
    let pre = server.insert("s", "tasks", &json!({ "title": "before schema", "priority": 1 }));
    server.insert("s", "tasks", &json!({ "title": "no priority" }));

    let tasks = schema(
        "tasks",
        vec![field("title", "string", true), field("priority", "number", false), field("tags", "array", false)],
        vec![index("by_priority", &["priority"]), index("by_title_priority", &["title", "priority"])],
    );
    let resp = server.put_json(&format!("{base}/schema/tasks"), &tasks);
    resp.expect_status(204);
    assert!(resp.body.is_empty());

    let resp = server.get(&format!("{base}/schema/tasks"));
    resp.expect_status(200);
    for key in ["table", "fields", "indexes"] {
        assert_eq!(resp.json[key], tasks[key], "schema {key} round trip: {resp}");
    }
    assert!(resp.json["access_policy"].is_null(), "{resp}");
    let resp = server.get(&format!("{base}/schema"));
    resp.expect_status(200);
    let tables = resp.json["tables"].as_object().unwrap_or_else(|| panic!("{resp}"));
    assert_eq!(tables.keys().collect::<Vec<_>>(), ["tasks"]);
    assert_eq!(tables["tasks"]["fields"], tasks["fields"]);
    assert_eq!(tables["tasks"]["indexes"], tasks["indexes"]);

    // Backfilled index answers queries over pre-existing documents.
    let docs =
        server.query("s", &json!({ "table": "tasks", "filters": [{ "field": "priority", "op": "eq", "value": 1 }] }));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["_id"], pre.as_str());

    // Inserts and patches are validated.
    let insert =
        |fields: Value| server.post_json(&format!("{base}/documents"), &json!({ "table": "tasks", "fields": fields }));
    for fields in [
        json!({ "priority": 2 }),
        json!({ "title": 5 }),
        json!({ "title": null }),
        json!({ "title": "x", "priority": "high" }),
        json!({ "title": "x", "priority": null }),
        json!({ "title": "x", "tags": { "a": 1 } }),
    ] {
        let resp = insert(fields.clone());
        resp.expect_error(422, "op.schema_validation");
        assert_eq!(resp.detail()["table"], "tasks", "{resp}");
    }
    insert(json!({ "title": "ok", "priority": 2.5, "tags": [], "extra": { "any": "thing" } })).expect_status(201);
    let resp = server.patch_json(&format!("{base}/documents/tasks/{pre}"), &json!({ "patch": { "title": 7 } }));
    resp.expect_error(422, "op.schema_validation");
    assert_eq!(server.document("s", "tasks", &pre)["title"], "before schema", "rejected patch changed the document");

    // PUT over existing bad documents: nothing changes.
    for i in 0..25 {
        server.insert("s", "legacy", &json!({ "i": i }));
    }
    for i in 0..3 {
        server.insert("s", "legacy", &json!({ "name": format!("n{i}") }));
    }
    let legacy = schema("legacy", vec![field("name", "string", true)], vec![index("by_name", &["name"])]);
    let resp = server.put_json(&format!("{base}/schema/legacy"), &legacy);
    resp.expect_error(422, "op.schema_validation");
    let detail = resp.detail();
    assert_eq!(detail["table"], "legacy", "{resp}");
    assert_eq!(detail["violationCount"], 25, "{resp}");
    let violations = detail["violations"].as_array().unwrap_or_else(|| panic!("{resp}"));
    assert_eq!(violations.len(), 20, "{resp}");
    for v in violations {
        assert!(v["documentId"].is_string() && v["field"] == "name" && v["reason"].is_string(), "violation {v}");
    }
    server.get(&format!("{base}/schema/legacy")).expect_error(404, "op.schema_not_found");
    server.insert("s", "legacy", &json!({ "still": "free" }));
    // Replacing an existing schema with a violating one keeps the old one.
    let stricter = schema("tasks", vec![field("title", "string", true), field("priority", "number", true)], vec![]);
    let resp = server.put_json(&format!("{base}/schema/tasks"), &stricter);
    resp.expect_error(422, "op.schema_validation");
    assert_eq!(resp.detail()["violationCount"], 1, "one task lacks priority: {resp}");
    assert_eq!(server.get(&format!("{base}/schema/tasks")).json["indexes"], tasks["indexes"]);

    // Index and schema rules.
    let declared = || {
        vec![
            field("a", "string", false),
            field("b", "number", false),
            field("c", "boolean", false),
            field("arr", "array", false),
            field("obj", "object", false),
            field("anything", "any", false),
        ]
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "duplicate index name",
            schema("t2", declared(), vec![index("i", &["a"]), index("i", &["b"])]),
            422,
            "op.schema_validation",
        ),
        ("undeclared field", schema("t2", declared(), vec![index("i", &["nope"])]), 422, "op.schema_validation"),
        ("array field", schema("t2", declared(), vec![index("i", &["arr"])]), 422, "op.schema_validation"),
        ("object field", schema("t2", declared(), vec![index("i", &["obj"])]), 422, "op.schema_validation"),
        ("any field", schema("t2", declared(), vec![index("i", &["anything"])]), 422, "op.schema_validation"),
        ("no fields", schema("t2", declared(), vec![index("i", &[])]), 422, "op.schema_validation"),
        ("field twice", schema("t2", declared(), vec![index("i", &["a", "a"])]), 422, "op.schema_validation"),
        ("bad index name", schema("t2", declared(), vec![index("by a", &["a"])]), 400, "op.invalid_input"),
        ("empty index name", schema("t2", declared(), vec![index("", &["a"])]), 400, "op.invalid_input"),
        (
            "33 indexes",
            schema("t2", declared(), (0..33).map(|i| index(&format!("i{i}"), &["a"])).collect()),
            400,
            "op.cap_exceeded",
        ),
        (
            "17 index fields",
            schema(
                "t2",
                (0..17).map(|i| field(&format!("f{i}"), "number", false)).collect(),
                vec![json!({ "name": "wide", "fields": (0..17).map(|i| format!("f{i}")).collect::<Vec<_>>() })],
            ),
            400,
            "op.cap_exceeded",
        ),
        ("table mismatch", schema("other", declared(), vec![]), 400, "op.invalid_input"),
        ("bad field type", schema("t2", vec![field("a", "text", false)], vec![]), 400, "op.invalid_input"),
        ("reserved field name", schema("t2", vec![field("_a", "string", false)], vec![]), 400, "op.invalid_input"),
        ("dotted field name", schema("t2", vec![field("a.b", "string", false)], vec![]), 400, "op.invalid_input"),
        ("fields missing", json!({ "table": "t2", "indexes": [] }), 400, "op.invalid_input"),
        ("indexes missing", json!({ "table": "t2", "fields": [] }), 400, "op.invalid_input"),
        (
            "required not a bool",
            json!({ "table": "t2", "fields": [{ "name": "a", "field_type": "string", "required": "yes" }], "indexes": [] }),
            400,
            "op.invalid_input",
        ),
    ];
    for (name, body, status, code) in &cases {
        let resp = server.put_json(&format!("{base}/schema/t2"), body);
        assert_eq!((resp.status, resp.code()), (*status, *code), "{name}: {resp}");
        if *code == "op.cap_exceeded" {
            assert!(resp.detail()["cap"].is_string() && resp.detail()["limit"].is_u64(), "{name}: {resp}");
        }
    }
    server.get(&format!("{base}/schema/t2")).expect_error(404, "op.schema_not_found");
    // The limits themselves are accepted.
    let at_limits = schema("t2", (0..16).map(|i| field(&format!("f{i}"), "number", false)).collect(), {
        let mut indexes: Vec<Value> = (0..31).map(|i| index(&format!("i{i}"), &["f0"])).collect();
        indexes.push(json!({ "name": "wide", "fields": (0..16).map(|i| format!("f{i}")).collect::<Vec<_>>() }));
        indexes
    });
    server.put_json(&format!("{base}/schema/t2"), &at_limits).expect_status(204);
    // A declared `any` field accepts null.
    server
        .put_json(&format!("{base}/schema/t3"), &schema("t3", vec![field("x", "any", true)], vec![]))
        .expect_status(204);
    server.insert("s", "t3", &json!({ "x": null }));

    // Delete.
    let resp = server.delete(&format!("{base}/schema/tasks"));
    resp.expect_status(204);
    let resp = server.get(&format!("{base}/schema/tasks"));
    resp.expect_error(404, "op.schema_not_found");
    assert_eq!(resp.detail()["table"], "tasks", "{resp}");
    server.delete(&format!("{base}/schema/tasks")).expect_error(404, "op.schema_not_found");
    server.delete(&format!("{base}/schema/never")).expect_error(404, "op.schema_not_found");
    assert_eq!(server.list_all("s", "tasks").len(), 3, "documents must stay when the schema goes");
    insert(json!({ "priority": "now free" })).expect_status(201);
    let tables = server.get(&format!("{base}/schema")).json["tables"].clone();
    assert!(tables.get("tasks").is_none() && tables.get("t2").is_some(), "{tables}");
}

/// A small deterministic generator (no dependencies).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn random_doc(rng: &mut Lcg, seq: u64) -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert("seq".into(), json!(seq));
    if rng.next(6) != 0 {
        doc.insert("cat".into(), json!(["a", "b", "c", "d", "B"][rng.next(5) as usize]));
    }
    match rng.next(5) {
        0 => {}
        1 => {
            doc.insert("n".into(), json!(rng.next(20) as f64 + 0.5));
        }
        _ => {
            doc.insert("n".into(), json!(rng.next(20)));
        }
    }
    if rng.next(3) != 0 {
        doc.insert("flag".into(), json!(rng.next(2) == 1));
    }
    if rng.next(4) != 0 {
        let letters = ["m", "ma", "mb", "z", "a", "", "é", "M"];
        doc.insert("s".into(), json!(format!("{}{}", letters[rng.next(8) as usize], rng.next(3))));
    }
    if rng.next(2) == 0 {
        doc.insert("loose".into(), if rng.next(2) == 0 { json!(rng.next(5)) } else { json!("x") });
    }
    Value::Object(doc)
}

#[test]
fn indexed_answers_equal_full_scans() {
    let server = Server::start();
    server.create_tenant("idx");
    server.create_tenant("scan");
    let mut rng = Lcg(42);
    let docs: Vec<Value> = (0..300).map(|i| random_doc(&mut rng, i)).collect();
    let indexed_schema = schema(
        "r",
        vec![
            field("seq", "number", true),
            field("cat", "string", false),
            field("n", "number", false),
            field("flag", "boolean", false),
            field("s", "string", false),
        ],
        vec![
            index("by_cat", &["cat"]),
            index("by_n", &["n"]),
            index("by_cat_n", &["cat", "n"]),
            index("by_flag_n", &["flag", "n"]),
            index("by_s", &["s"]),
            index("by_n_cat_flag", &["n", "cat", "flag"]),
        ],
    );
    // Half before the schema (backfill), half after (maintenance).
    let mut ids: Vec<(String, String)> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if i == 150 {
            server.put_json("/api/tenants/idx/schema/r", &indexed_schema).expect_status(204);
        }
        ids.push((server.insert("idx", "r", doc), server.insert("scan", "r", doc)));
    }
    // Same patches and deletes on both sides.
    for i in (0..300).step_by(7) {
        let cat = ["a", "c"][i % 2];
        let patch = json!({ "patch": { "n": (i % 11) as u64, "cat": cat } });
        server.patch_json(&format!("/api/tenants/idx/documents/r/{}", ids[i].0), &patch).expect_status(200);
        server.patch_json(&format!("/api/tenants/scan/documents/r/{}", ids[i].1), &patch).expect_status(200);
    }
    for i in (3..300).step_by(13) {
        server.delete(&format!("/api/tenants/idx/documents/r/{}", ids[i].0)).expect_status(204);
        server.delete(&format!("/api/tenants/scan/documents/r/{}", ids[i].1)).expect_status(204);
    }

    let f = |field: &str, op: &str, value: Value| json!({ "field": field, "op": op, "value": value });
    let order = |field: &str, direction: &str| json!({ "field": field, "direction": direction });
    let mut queries: Vec<Value> = Vec::new();
    for cat in ["a", "b", "c", "d", "B", "zz"] {
        queries.push(json!({ "filters": [f("cat", "eq", json!(cat))] }));
        queries
            .push(json!({ "filters": [f("cat", "eq", json!(cat)), f("n", "gte", json!(5)), f("n", "lt", json!(15))] }));
        queries.push(json!({ "filters": [f("cat", "eq", json!(cat))], "order": order("n", "desc"), "limit": 7 }));
    }
    for n in [0, 3, 7, 19] {
        queries.push(json!({ "filters": [f("n", "eq", json!(n))] }));
        queries.push(json!({ "filters": [f("n", "eq", json!(n as f64))] }));
        queries.push(json!({ "filters": [f("n", "eq", json!(n as f64 + 0.5))] }));
        queries.push(json!({ "filters": [f("n", "gt", json!(n))], "order": order("n", "asc") }));
        queries.push(json!({ "filters": [f("n", "lte", json!(n))], "order": order("n", "desc") }));
    }
    queries.extend([
        json!({ "filters": [f("cat", "in", json!(["a", "c"]))] }),
        json!({ "filters": [f("cat", "in", json!(["a", "c"])), f("n", "in", json!([1, 5, 7.0, 3.5]))] }),
        json!({ "filters": [f("n", "in", json!([]))] }),
        json!({ "filters": [f("cat", "neq", json!("a"))] }),
        json!({ "filters": [f("flag", "eq", json!(true))], "order": order("n", "desc") }),
        json!({ "filters": [f("flag", "eq", json!(false)), f("n", "gt", json!(4.5))], "order": order("n", "asc"), "limit": 10 }),
        json!({ "filters": [f("s", "gte", json!("m")), f("s", "lt", json!("mb"))], "order": order("s", "asc") }),
        json!({ "filters": [f("s", "gt", json!("M"))], "order": order("s", "desc") }),
        json!({ "filters": [f("cat", "gt", json!("B")), f("cat", "lte", json!("c"))] }),
        json!({ "filters": [f("cat", "gt", json!(1))] }),
        json!({ "filters": [f("n", "gt", json!("a"))] }),
        json!({ "filters": [], "order": order("n", "asc") }),
        json!({ "filters": [], "order": order("n", "desc"), "limit": 40 }),
        json!({ "filters": [], "order": order("cat", "desc") }),
        json!({ "filters": [], "order": order("s", "asc") }),
        json!({ "filters": [f("cat", "eq", json!("b"))], "order": order("s", "asc") }),
        json!({ "filters": [f("n", "eq", json!(3)), f("cat", "eq", json!("a")), f("flag", "eq", json!(true))] }),
        json!({ "filters": [f("loose", "gte", json!(2))], "order": order("loose", "asc") }),
        json!({ "filters": [f("n", "gte", json!(2)), f("n", "lte", json!(2))] }),
        json!({ "filters": [f("n", "gt", json!(100))] }),
    ]);
    let seqs = |tenant: &str, q: &Value| -> Vec<u64> {
        let mut body = q.clone();
        body["table"] = json!("r");
        server.query(tenant, &body).iter().map(|d| d["seq"].as_u64().expect("seq")).collect()
    };
    let mut non_empty = 0;
    for q in &queries {
        let (indexed, scanned) = (seqs("idx", q), seqs("scan", q));
        assert_eq!(indexed, scanned, "indexed and full-scan answers differ for {q}");
        if !indexed.is_empty() {
            non_empty += 1;
        }
    }
    assert!(
        non_empty * 2 > queries.len(),
        "too few queries matched anything ({non_empty}/{}); the comparison is vacuous",
        queries.len()
    );

    // Paginated walks agree too.
    for q in [
        json!({ "table": "r", "filters": [f("cat", "eq", json!("a"))], "order": order("n", "asc") }),
        json!({ "table": "r", "filters": [f("n", "gte", json!(4))], "order": order("n", "desc") }),
    ] {
        let walk = |tenant: &str| -> Vec<u64> {
            let mut out = Vec::new();
            let mut after = Value::Null;
            loop {
                let resp = server.post_json(
                    &format!("/api/tenants/{tenant}/query/paginated"),
                    &json!({ "query": q, "page_size": 6, "after": after }),
                );
                resp.expect_status(200);
                out.extend(resp.json["data"].as_array().unwrap().iter().map(|d| d["seq"].as_u64().unwrap()));
                if resp.json["has_more"] != true {
                    return out;
                }
                after = resp.json["next_cursor"].clone();
            }
        };
        let (indexed, scanned) = (walk("idx"), walk("scan"));
        assert!(!indexed.is_empty());
        assert_eq!(indexed, scanned, "paginated walks differ for {q}");
        assert_eq!(
            indexed,
            seqs("scan", &{
                let mut q = q.clone();
                q.as_object_mut().unwrap().remove("table");
                q
            }),
            "paginated walk differs from the plain query for {q}"
        );
    }
}

fn rule(require_authenticated: bool, predicates: Value) -> Value {
    json!({ "require_authenticated": require_authenticated, "predicates": predicates })
}

fn open_rule() -> Value {
    rule(false, json!([]))
}

#[test]
fn access_policy_denies_anonymous() {
    let server = Server::start();
    server.create_tenant("ap");
    let base = "/api/tenants/ap";

    // Reads need an authenticated principal, which the HTTP API never is.
    let mut secret = schema("secret", vec![field("v", "number", false)], vec![]);
    secret["access_policy"] =
        json!({ "read": rule(true, json!([])), "create": open_rule(), "update": open_rule(), "delete": open_rule() });
    server.put_json(&format!("{base}/schema/secret"), &secret).expect_status(204);
    let resp = server.get(&format!("{base}/schema/secret"));
    assert_eq!(resp.json["access_policy"], secret["access_policy"], "{resp}");
    let id = server.insert("ap", "secret", &json!({ "v": 1 }));
    for resp in [
        server.post_json(&format!("{base}/query"), &json!({ "table": "secret", "filters": [] })),
        server.post_json(
            &format!("{base}/query/paginated"),
            &json!({ "query": { "table": "secret", "filters": [] }, "page_size": 10 }),
        ),
        server.get(&format!("{base}/documents/secret/{id}")),
        server.get(&format!("{base}/documents/secret")),
    ] {
        resp.expect_error(403, "auth.permission_denied");
        assert_eq!(resp.detail(), &json!({ "table": "secret", "operation": "read" }), "{resp}");
    }

    // Create predicates on the new document's fields; update predicates on the stored one;
    // delete requires authentication.
    let mut guarded = schema("guarded", vec![field("status", "string", false)], vec![]);
    guarded["access_policy"] = json!({
        "read": open_rule(),
        "create": rule(false, json!([{ "left": { "source": "document_field", "field": "status" }, "op": "eq", "right": { "source": "literal", "value": "open" } }])),
        "update": rule(false, json!([{ "left": { "source": "existing_document_field", "field": "locked" }, "op": "neq", "right": { "source": "literal", "value": true } }])),
        "delete": rule(true, json!([])),
    });
    server.put_json(&format!("{base}/schema/guarded"), &guarded).expect_status(204);
    let resp = server
        .post_json(&format!("{base}/documents"), &json!({ "table": "guarded", "fields": { "status": "closed" } }));
    resp.expect_error(403, "auth.permission_denied");
    assert_eq!(resp.detail(), &json!({ "table": "guarded", "operation": "create" }), "{resp}");
    let unlocked = server.insert("ap", "guarded", &json!({ "status": "open", "locked": false }));
    let locked = server.insert("ap", "guarded", &json!({ "status": "open", "locked": true }));
    assert_eq!(server.list_all("ap", "guarded").len(), 2, "a denied insert was stored");
    let resp = server.patch_json(&format!("{base}/documents/guarded/{locked}"), &json!({ "patch": { "status": "x" } }));
    resp.expect_error(403, "auth.permission_denied");
    assert_eq!(resp.detail()["operation"], "update", "{resp}");
    server
        .patch_json(&format!("{base}/documents/guarded/{unlocked}"), &json!({ "patch": { "status": "x" } }))
        .expect_status(200);
    let resp = server.delete(&format!("{base}/documents/guarded/{unlocked}"));
    resp.expect_error(403, "auth.permission_denied");
    assert_eq!(resp.detail()["operation"], "delete", "{resp}");
    assert_eq!(server.document("ap", "guarded", &unlocked)["status"], "x");

    // A principal-claim predicate denies the anonymous principal.
    let mut claims = schema("claims", vec![], vec![]);
    claims["access_policy"] = json!({
        "read": rule(false, json!([{ "left": { "source": "principal_claim", "principal": "identity", "claim": "sub" }, "op": "eq", "right": { "source": "literal", "value": "u1" } }])),
        "create": open_rule(), "update": open_rule(), "delete": open_rule(),
    });
    server.put_json(&format!("{base}/schema/claims"), &claims).expect_status(204);
    server.insert("ap", "claims", &json!({ "a": 1 }));
    server
        .post_json(&format!("{base}/query"), &json!({ "table": "claims", "filters": [] }))
        .expect_error(403, "auth.permission_denied");

    // Operand sources are restricted per operation.
    let mut bad = schema("bad", vec![], vec![]);
    bad["access_policy"] = json!({
        "read": open_rule(), "create": open_rule(), "update": open_rule(),
        "delete": rule(false, json!([{ "left": { "source": "document_field", "field": "a" }, "op": "eq", "right": { "source": "literal", "value": 1 } }])),
    });
    server.put_json(&format!("{base}/schema/bad"), &bad).expect_error(400, "op.invalid_input");
    bad["access_policy"]["delete"] = open_rule();
    bad["access_policy"]["create"] = rule(
        false,
        json!([{ "left": { "source": "existing_document_field", "field": "a" }, "op": "eq", "right": { "source": "literal", "value": 1 } }]),
    );
    server.put_json(&format!("{base}/schema/bad"), &bad).expect_error(400, "op.invalid_input");
    bad["access_policy"]["create"] = rule(
        false,
        json!([{ "left": { "source": "literal", "value": 1 }, "op": "like", "right": { "source": "literal", "value": 1 } }]),
    );
    server.put_json(&format!("{base}/schema/bad"), &bad).expect_error(400, "op.invalid_input");

    // Removing the schema removes the policy.
    server.delete(&format!("{base}/schema/secret")).expect_status(204);
    assert_eq!(server.query("ap", &json!({ "table": "secret", "filters": [] })).len(), 1);
}

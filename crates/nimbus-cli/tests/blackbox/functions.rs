//! Functions (functions.md): deploy, call, the authoring API, isolation between tenants,
//! limits, transactions and function targets of scheduled jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Resp, Server};

/// Safety net for conditional waits; a healthy run finishes each wait far sooner.
const DEADLINE: Duration = Duration::from_secs(30);
/// Pause between polls of a condition (the loop re-checks; not a synchronisation sleep).
const POLL: Duration = Duration::from_millis(20);

fn deploy(server: &Server, tenant: &str, modules: Value) -> Resp {
    server.put_json(&format!("/api/tenants/{tenant}/functions"), &json!({ "modules": modules }))
}

fn call(server: &Server, tenant: &str, name: &str, args: Value) -> Resp {
    server.post_json(&format!("/api/tenants/{tenant}/functions/call"), &json!({ "name": name, "args": args }))
}

fn value(server: &Server, tenant: &str, name: &str, args: Value) -> Value {
    let resp = call(server, tenant, name, args);
    resp.expect_status(200);
    resp.json["value"].clone()
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

const MESSAGES_TS: &str = r#"
import { query, mutation, action, internalMutation, v } from "@nimbus/nimbus/server";
import type { Doc } from "./lib/types";
import { short } from "./lib/format";

interface Listed { count: number; bodies: string[] }

function first<T>(items: T[]): T | undefined { return items[0]; }

export const list = query({
  args: { channel: v.string(), limit: v.optional(v.number()) },
  handler: async (ctx, { channel, limit }): Promise<Listed> => {
    const docs = (await ctx.db.query("messages").filter("channel", "eq", channel).order("asc").take(limit ?? 50)) as Doc[];
    const result = { count: docs.length, bodies: docs.map((d) => short(d.body as string)) } satisfies Listed;
    void first(docs);
    return result;
  },
});

export const send = mutation({
  args: { channel: v.string(), body: v.string() },
  handler: async (ctx, args) => {
    const id = await ctx.db.insert("messages", { ...args, status: "new" });
    return id;
  },
});

export const deliver = internalMutation({
  args: { id: v.string() },
  handler: async (ctx, { id }) => {
    await ctx.db.patch("messages", id, { status: "delivered" });
    return "delivered";
  },
});

export const digest = action({
  handler: async (ctx) => {
    const listed = await ctx.runQuery("messages:list", { channel: "general" });
    const id = await ctx.runMutation("messages:send", { channel: "digest", body: `count=${listed.count}` });
    return { count: listed.count, id };
  },
});
"#;

const TYPES_TS: &str = "export type Doc = { _id: string; [key: string]: unknown };\n";
const FORMAT_TS: &str = "export function short(s: string, n: number = 10): string { return s.slice(0, n); }\n";

fn messages_modules() -> Value {
    json!({ "messages.ts": MESSAGES_TS, "lib/types.ts": TYPES_TS, "lib/format.ts": FORMAT_TS })
}

#[test]
fn typescript_modules_deploy_list_and_every_kind_calls() {
    let server = Server::start();
    server.create_tenant("f1");
    let before = server.get("/api/tenants/f1/functions");
    before.expect_status(200);
    assert_eq!((before.json["version"].clone(), before.json["deployedAt"].clone()), (json!(0), Value::Null));

    let dry = server.put_json("/api/tenants/f1/functions?dryRun=true", &json!({ "modules": messages_modules() }));
    dry.expect_status(200);
    assert_eq!(dry.json["version"], 1, "{dry}");
    assert_eq!(server.get("/api/tenants/f1/functions").json["version"], 0, "a dry run activates nothing");

    let deployed = deploy(&server, "f1", messages_modules());
    deployed.expect_status(200);
    assert_eq!(deployed.json["version"], 1);
    assert!(deployed.json["deployedAt"].is_string(), "{deployed}");
    assert_eq!(
        deployed.json["functions"],
        json!([
            { "name": "messages:deliver", "kind": "mutation", "visibility": "internal" },
            { "name": "messages:digest", "kind": "action", "visibility": "public" },
            { "name": "messages:list", "kind": "query", "visibility": "public" },
            { "name": "messages:send", "kind": "mutation", "visibility": "public" },
        ])
    );
    assert_eq!(deployed.json["warnings"], json!([]));
    assert_eq!(server.get("/api/tenants/f1/functions").json["functions"], deployed.json["functions"]);

    let id = value(&server, "f1", "messages:send", json!({ "channel": "general", "body": "hello there, world" }));
    let id = id.as_str().expect("the mutation returns the new id").to_owned();
    assert_eq!(server.document("f1", "messages", &id)["status"], "new");
    let listed = value(&server, "f1", "messages:list", json!({ "channel": "general" }));
    assert_eq!(listed, json!({ "count": 1, "bodies": ["hello ther"] }));
    let digest = value(&server, "f1", "messages:digest", json!({}));
    assert_eq!(digest["count"], 1);
    let digest_id = digest["id"].as_str().expect("nested mutation's id");
    assert_eq!(server.document("f1", "messages", digest_id)["body"], "count=1");

    // A redeploy replaces the set atomically and bumps the version.
    let second = deploy(
        &server,
        "f1",
        json!({ "only.js": "import { query } from \"nimbus/server\";\nexport default query({ handler: () => 42 });\n" }),
    );
    second.expect_status(200);
    assert_eq!(second.json["version"], 2);
    assert_eq!(value(&server, "f1", "only:default", json!({})), 42);
    call(&server, "f1", "messages:list", json!({ "channel": "general" })).expect_error(404, "function.not_found");
}

#[test]
fn deploy_errors_carry_file_line_and_column() {
    let server = Server::start();
    server.create_tenant("f2");
    let source = "import { query } from \"@nimbus/nimbus/server\";\n\nexport enum Color { Red, Green }\nexport const q = query({ handler: () => 1 });\n";
    let resp = deploy(&server, "f2", json!({ "colors.ts": source }));
    resp.expect_error(400, "function.deploy_failed");
    let error = &resp.detail()["errors"][0];
    assert_eq!((error["file"].as_str(), error["line"].as_i64()), (Some("colors.ts"), Some(3)), "{resp}");
    assert_eq!(error["column"], 8, "{resp}");

    let unresolved =
        deploy(&server, "f2", json!({ "a.ts": "import { x } from \"./missing\";\nexport const y = x;\n" }));
    unresolved.expect_error(400, "function.deploy_failed");
    assert_eq!(unresolved.detail()["errors"][0]["line"], 1);

    let thrown = deploy(&server, "f2", json!({ "boom.js": "const a = 1;\nthrow new Error(\"top-level\");\n" }));
    thrown.expect_error(400, "function.deploy_failed");
    let message = thrown.detail()["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("top-level"), "{thrown}");

    let huge = "x".repeat(1024 * 1024 + 1);
    deploy(&server, "f2", json!({ "big.js": format!("// {huge}") })).expect_error(400, "op.cap_exceeded");
    // Nothing of the failed deploys was activated.
    assert_eq!(server.get("/api/tenants/f2/functions").json["version"], 0);
}

const COUNTER_JS: &str = r#"
import { query, mutation, internalQuery, v } from "@nimbus/nimbus/server";
export const increment = mutation({
  handler: async (ctx) => {
    const doc = await ctx.db.query("counters").first();
    if (doc === null) return ctx.db.insert("counters", { n: 1 });
    await ctx.db.patch("counters", doc._id, { n: doc.n + 1 });
    return doc._id;
  },
});
export const read = query({ handler: async (ctx) => (await ctx.db.query("counters").first())?.n ?? 0 });
export const secret = internalQuery({ handler: () => "hidden" });
export const typed = query({ args: { n: v.number(), tags: v.array(v.string()) }, handler: (_ctx, { n }) => n });
export const failing = mutation({
  handler: async (ctx) => {
    await ctx.db.insert("counters", { n: 1000 });
    await ctx.scheduler.runAfter(0, "counter:increment", {});
    console.log("about to fail");
    throw new Error("no thanks");
  },
});
export const big = query({ handler: () => "x".repeat(17 * 1024 * 1024) });
export const loop = query({ handler: () => { for (;;) {} } });
export const bomb = query({ handler: () => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); } });
export const stall = query({ handler: () => new Promise(() => {}) });
let seen;
export const remember = mutation({ args: { value: v.string() }, handler: (_ctx, { value }) => { globalThis.leak = value; seen = value; return value; } });
export const recall = query({ handler: () => ({ global: globalThis.leak ?? null, module: seen ?? null }) });
"#;

#[test]
fn concurrent_increments_are_serializable() {
    let server = Arc::new(Server::start());
    server.create_tenant("f3");
    deploy(&server, "f3", json!({ "counter.js": COUNTER_JS })).expect_status(200);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    call(&server, "f3", "counter:increment", json!({})).expect_status(200);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
    assert_eq!(value(&server, "f3", "counter:read", json!({})), 400);
    assert_eq!(server.list_all("f3", "counters").len(), 1);
}

#[test]
fn a_throwing_mutation_leaves_no_writes_and_no_jobs() {
    let server = Server::start();
    server.create_tenant("f4");
    deploy(&server, "f4", json!({ "counter.js": COUNTER_JS })).expect_status(200);
    let resp = call(&server, "f4", "counter:failing", json!({}));
    resp.expect_error(422, "function.thrown");
    let detail = resp.detail();
    assert_eq!((detail["name"].as_str(), detail["errorName"].as_str()), (Some("counter:failing"), Some("Error")));
    assert_eq!(detail["message"], "no thanks");
    assert!(detail["logs"].to_string().contains("about to fail"), "{resp}");
    assert!(server.list_all("f4", "counters").is_empty(), "the insert rolled back");
    assert_eq!(server.get("/api/tenants/f4/schedule").json["jobs"], json!([]), "the job never existed");
}

#[test]
fn internal_functions_and_bad_input_answer_with_envelopes() {
    let server = Server::start();
    server.create_tenant("f5");
    deploy(&server, "f5", json!({ "counter.js": COUNTER_JS })).expect_status(200);
    let forbidden = call(&server, "f5", "counter:secret", json!({}));
    forbidden.expect_error(403, "auth.forbidden");
    assert_eq!(forbidden.detail()["visibility"], "internal");
    call(&server, "f5", "counter:nope", json!({})).expect_error(404, "function.not_found");
    let not_object = call(&server, "f5", "counter:read", json!([1, 2]));
    not_object.expect_error(400, "function.invalid_args");
    let mismatch = call(&server, "f5", "counter:typed", json!({ "n": 1, "tags": ["a", 2] }));
    mismatch.expect_error(400, "function.invalid_args");
    assert_eq!(mismatch.detail()["path"], "args.tags[1]", "{mismatch}");
    assert_eq!(value(&server, "f5", "counter:typed", json!({ "n": 7, "tags": [] })), 7);
    let big = call(&server, "f5", "counter:big", json!({}));
    big.expect_error(400, "op.cap_exceeded");
    let stalled = call(&server, "f5", "counter:stall", json!({}));
    stalled.expect_error(422, "runtime.promise_stalled");
    server.post_json("/api/tenants/f5/functions/call", &json!({ "args": {} })).expect_status(400);
}

#[test]
fn a_runaway_loop_times_out_while_another_tenant_is_served() {
    let server = Arc::new(Server::start());
    server.create_tenant("loopy");
    server.create_tenant("calm");
    deploy(&server, "loopy", json!({ "counter.js": COUNTER_JS })).expect_status(200);
    deploy(&server, "calm", json!({ "counter.js": COUNTER_JS })).expect_status(200);
    let finished = Arc::new(AtomicBool::new(false));
    let looping = {
        let (server, finished) = (server.clone(), finished.clone());
        std::thread::spawn(move || {
            let resp = call(&server, "loopy", "counter:loop", json!({}));
            finished.store(true, Ordering::SeqCst);
            resp
        })
    };
    for _ in 0..5 {
        call(&server, "calm", "counter:increment", json!({})).expect_status(200);
    }
    assert!(!finished.load(Ordering::SeqCst), "tenant calm was served while tenant loopy's loop still ran");
    let resp = looping.join().expect("loop thread");
    resp.expect_error(408, "runtime.execution_timeout");
    assert_eq!((resp.detail()["limit"].as_str(), resp.detail()["limitMs"].as_i64()), (Some("cpu"), Some(1000)));
    assert_eq!(value(&server, "calm", "counter:read", json!({})), 5);

    let bomb = call(&server, "loopy", "counter:bomb", json!({}));
    bomb.expect_error(422, "runtime.memory_limit");
    assert_eq!(bomb.detail()["limitBytes"], 64 * 1024 * 1024);
    assert_eq!(value(&server, "loopy", "counter:read", json!({})), 0, "the server keeps serving");
}

#[test]
fn globals_and_module_state_never_cross_tenants() {
    let server = Server::start();
    server.create_tenant("ta");
    server.create_tenant("tb");
    deploy(&server, "ta", json!({ "counter.js": COUNTER_JS })).expect_status(200);
    deploy(&server, "tb", json!({ "counter.js": COUNTER_JS })).expect_status(200);
    for round in 0..4 {
        assert_eq!(
            value(&server, "ta", "counter:remember", json!({ "value": format!("a-secret-{round}") })),
            json!(format!("a-secret-{round}"))
        );
        // Tenant B's isolates (fresh or pooled) never see A's global or module state.
        assert_eq!(value(&server, "tb", "counter:recall", json!({})), json!({ "global": null, "module": null }));
    }
}

const JOBS_JS: &str = r#"
import { mutation, internalMutation, action, v } from "@nimbus/nimbus/server";
export const later = mutation({
  args: { label: v.string() },
  handler: async (ctx, { label }) => ctx.scheduler.runAfter(0, "jobs:record", { label }),
});
export const record = internalMutation({
  args: { label: v.string() },
  handler: async (ctx, { label }) => ctx.db.insert("records", { label }),
});
export const kick = action({ handler: async (ctx) => ctx.scheduler.runAfter(0, "jobs:record", { label: "from-action" }) });
"#;

#[test]
fn jobs_scheduled_by_functions_run_their_function_targets() {
    let server = Server::start();
    server.create_tenant("f6");
    deploy(&server, "f6", json!({ "jobs.js": JOBS_JS })).expect_status(200);
    let job_id = value(&server, "f6", "jobs:later", json!({ "label": "x" }));
    let job_id = job_id.as_str().expect("runAfter returns the job id").to_owned();
    let job = wait_for("the function job to finish", || {
        let job = server.get(&format!("/api/tenants/f6/schedule/{job_id}")).json["job"].clone();
        matches!(job["state"].as_str(), Some("completed" | "failed")).then_some(job)
    });
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["mutation"], json!({ "type": "function", "name": "jobs:record", "args": { "label": "x" } }));
    let records = server.list_all("f6", "records");
    assert_eq!(records.len(), 1);
    let result = server.get(&format!("/api/tenants/f6/schedule/history/{job_id}"));
    assert_eq!(result.json["result"]["value"], records[0]["_id"], "the job's value is the function's return value");

    let from_action = value(&server, "f6", "jobs:kick", json!({}));
    let from_action = from_action.as_str().expect("job id").to_owned();
    wait_for("the action's job", || {
        let job = server.get(&format!("/api/tenants/f6/schedule/{from_action}")).json["job"].clone();
        (job["state"] == "completed").then_some(())
    });
    assert_eq!(server.list_all("f6", "records").len(), 2);

    // A job naming a query is refused; one naming a missing function is 404.
    let bad = server.post_json(
        "/api/tenants/f6/schedule",
        &json!({ "run_after_ms": 0, "mutation": { "type": "function", "name": "jobs:nope", "args": {} } }),
    );
    bad.expect_error(404, "function.not_found");
}

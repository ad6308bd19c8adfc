//! Functions (functions.md): deploy, call, the authoring API, isolation between tenants,
//! limits, transactions and function targets of scheduled jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::harness::{Resp, Server, wait_for};

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

/// Mutations whose inserts come first are run optimistically (functions.md, Transactions):
/// each case below takes another path through that, and JavaScript must see every insert's
/// outcome where it happens.
const INSERTS_TS: &str = r#"
import { mutation } from "@nimbus/nimbus/server";
const ok = (title: string) => ({ title, status: "open", priority: 1 });
export const readOwn = mutation({
  handler: async (ctx) => {
    const id = await ctx.db.insert("tasks", ok("first"));
    const doc = await ctx.db.get(id);
    await ctx.db.insert("tasks", ok("second"));
    return [doc.title, (await ctx.db.query("tasks").collect()).length];
  },
});
export const catches = mutation({
  handler: async (ctx) => {
    await ctx.db.insert("tasks", ok("kept"));
    try {
      await ctx.db.insert("tasks", { title: 1 });
    } catch (e) {
      await ctx.db.insert("tasks", ok("fallback"));
      return e.code;
    }
    return "inserted";
  },
});
export const catchesThenReads = mutation({
  handler: async (ctx) => {
    try {
      await ctx.db.insert("tasks", { title: 2 });
    } catch (e) {}
    return (await ctx.db.query("tasks").collect()).map((d) => d.title).sort();
  },
});
export const throwsAfter = mutation({
  handler: async (ctx) => {
    await ctx.db.insert("tasks", ok("never"));
    throw new Error("changed my mind");
  },
});
"#;

#[test]
fn inserts_fail_where_they_happen_and_only_committing_attempts_write() {
    let server = Server::start();
    server.create_tenant("fi");
    deploy(&server, "fi", json!({ "schema.ts": SCHEMA_TS, "inserts.ts": INSERTS_TS })).expect_status(200);
    let titles = |server: &Server| {
        let mut titles: Vec<String> =
            server.list_all("fi", "tasks").iter().map(|d| d["title"].as_str().unwrap_or_default().to_owned()).collect();
        titles.sort();
        titles
    };
    // An insert read back in the same mutation: buffered, then replayed on the writer.
    assert_eq!(value(&server, "fi", "inserts:readOwn", json!({})), json!(["first", 2]));
    assert_eq!(titles(&server), ["first", "second"]);
    // A failing insert is caught where it was made, though the first attempt buffered it as
    // if it had succeeded; only the attempt that saw the failure wrote.
    assert_eq!(value(&server, "fi", "inserts:catches", json!({})), "op.schema_validation");
    assert_eq!(titles(&server), ["fallback", "first", "kept", "second"]);
    // The failure surfaces when the buffer is replayed before a read: the attempt is voided
    // and the next one catches it and reads.
    assert_eq!(
        value(&server, "fi", "inserts:catchesThenReads", json!({})),
        json!(["fallback", "first", "kept", "second"])
    );
    call(&server, "fi", "inserts:throwsAfter", json!({})).expect_error(422, "function.thrown");
    assert_eq!(titles(&server), ["fallback", "first", "kept", "second"], "a throw discards buffered inserts");
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

const LIVE_V1: &str = r#"
import { query, mutation, internalQuery, v } from "@nimbus/nimbus/server";
export const byChannel = query({
  args: { channel: v.string() },
  handler: async (ctx, { channel }) => (await ctx.db.query("messages").filter("channel", "eq", channel).collect()).map((m) => m.body),
});
export const send = mutation({ args: { channel: v.string(), body: v.string() }, handler: (ctx, a) => ctx.db.insert("messages", a) });
export const hidden = internalQuery({ handler: () => 1 });
"#;

#[test]
fn function_subscriptions_rerun_only_when_their_read_set_changes() {
    use crate::realtime::{connect, delta, next, send, stats, subscription_error};
    let server = Server::start();
    server.create_tenant("live");
    deploy(&server, "live", json!({ "live.js": LIVE_V1 })).expect_status(200);
    let mut socket = connect(&server, "live");
    let subscribe = json!({ "type": "subscribe", "request_id": "r1", "function": { "name": "live:byChannel", "args": { "channel": "a" } } });
    send(&mut socket, subscribe);
    let first = next(&mut socket);
    assert_eq!((first["type"].as_str(), first["data"].clone()), (Some("subscription_result"), json!([])), "{first}");
    let id = first["subscription_id"].clone();

    // Writes outside the read set (another channel, another table) re-run nothing.
    let before = stats(&server, "live");
    server.insert("live", "messages", &json!({ "channel": "b", "body": "elsewhere" }));
    server.insert("live", "other", &json!({ "x": 1 }));
    let seen = wait_for("the hub to see both commits", || {
        let now = stats(&server, "live");
        (delta(&before, &now, "commits_seen") >= 2).then_some(now)
    });
    assert_eq!(delta(&before, &seen, "function_evaluations"), 0, "{seen}");
    assert_eq!(delta(&before, &seen, "function_skipped"), 2, "{seen}");

    // A write inside it (through a mutation function) pushes the new value.
    value(&server, "live", "live:send", json!({ "channel": "a", "body": "hello" }));
    let push = next(&mut socket);
    assert_eq!((push["subscription_id"].clone(), push["data"].clone()), (id.clone(), json!(["hello"])), "{push}");
    let after = stats(&server, "live");
    assert_eq!(delta(&seen, &after, "function_evaluations"), 1, "{after}");
    assert_eq!(delta(&seen, &after, "function_invalidations"), 1, "{after}");
    // The sample is recorded once the frame is handed to the socket, which may be just after
    // the client already read it.
    let latency = wait_for("the delivery's latency sample", || {
        let now = stats(&server, "live");
        (now["delivery_latency"]["samples"].as_u64().unwrap_or(0) >= 1).then_some(now)
    });
    assert!(latency["delivery_latency"]["p50_us"].as_u64().is_some(), "{latency}");

    // A redeploy re-runs it against the new code.
    let v2 = LIVE_V1.replace("map((m) => m.body)", "map((m) => m.body.toUpperCase())");
    deploy(&server, "live", json!({ "live.js": v2 })).expect_status(200);
    let rerun = next(&mut socket);
    assert_eq!(rerun["data"], json!(["HELLO"]), "{rerun}");

    // A redeploy without it drops the subscription with notice.
    deploy(&server, "live", json!({ "other.js": "import { query } from \"nimbus/server\";\nexport const q = query({ handler: () => 0 });\n" }))
        .expect_status(200);
    let dropped = next(&mut socket);
    assert_eq!(
        subscription_error(&dropped),
        &json!({ "subscriptionId": id, "dropped": true, "reason": "function_removed" })
    );

    // Subscribing to a non-query, an internal or a missing function fails the request.
    deploy(&server, "live", json!({ "live.js": LIVE_V1 })).expect_status(200);
    for (name, code) in
        [("live:send", "op.invalid_input"), ("live:hidden", "auth.forbidden"), ("live:nope", "function.not_found")]
    {
        send(&mut socket, json!({ "type": "subscribe", "request_id": name, "function": { "name": name, "args": {} } }));
        let error = next(&mut socket);
        assert_eq!(
            (error["type"].as_str(), error["error"]["code"].as_str()),
            (Some("op.error"), Some(code)),
            "{error}"
        );
    }
}

const ONCE_JS: &str = r#"
import { internalMutation, v } from "@nimbus/nimbus/server";
export const apply = internalMutation({
  args: { round: v.number() },
  handler: async (ctx, { round }) => ctx.db.insert("once", { round }),
});
"#;

/// The process aborts (like `kill -9`: no cleanup) right after a function job's claim commits,
/// or right after its mutation commits; after each restart the job completes and its mutation
/// applied exactly once.
#[test]
fn a_scheduled_mutation_applies_exactly_once_across_crashes() {
    use std::os::unix::process::ExitStatusExt;
    let dirs = crate::harness::Dirs::new();
    {
        let server = dirs.start();
        server.create_tenant("k2");
        deploy(&server, "k2", json!({ "once.js": ONCE_JS })).expect_status(200);
    }
    for round in 0..4u64 {
        let fault = if round % 2 == 0 { "crash_after_claim" } else { "crash_after_commit" };
        let mut crashing = dirs.start_with_env(&[("NIMBUS_TEST_FAULT", fault)]);
        let target = json!({ "type": "function", "name": "once:apply", "args": { "round": round } });
        let resp = crashing.post_json("/api/tenants/k2/schedule", &json!({ "run_after_ms": 0, "mutation": target }));
        resp.expect_status(201);
        let id = resp.json["job_id"].as_str().expect("job id").to_owned();
        let status = crashing.wait_exit();
        assert_eq!(status.signal(), Some(libc::SIGABRT), "round {round}: {status:?}; stderr:\n{}", crashing.stderr());

        let mut server = dirs.start();
        let done = wait_for("the recovered job", || {
            let job = server.get(&format!("/api/tenants/k2/schedule/{id}")).json["job"].clone();
            matches!(job["state"].as_str(), Some("completed" | "failed")).then_some(job)
        });
        assert_eq!(
            (done["state"].as_str(), done["attempts"].as_u64()),
            (Some("completed"), Some(2)),
            "round {round}: {done}"
        );
        let applied = server.list_all("k2", "once").iter().filter(|d| d["round"] == json!(round)).count();
        assert_eq!(applied, 1, "round {round} ({fault})");
        server.stop();
    }
}

/// Every job target reports its result: an insert's `value` is the new id, and the journal
/// record of a job's write carries the job's execution id.
#[test]
fn job_results_and_journal_records_name_their_execution() {
    let server = Server::start();
    server.create_tenant("k3");
    let resp = server.post_json(
        "/api/tenants/k3/schedule",
        &json!({ "run_after_ms": 0, "mutation": { "type": "insert", "table": "t", "fields": { "k": 1 } } }),
    );
    resp.expect_status(201);
    let id = resp.json["job_id"].as_str().expect("job id").to_owned();
    let done = wait_for("the job", || {
        let job = server.get(&format!("/api/tenants/k3/schedule/{id}")).json["job"].clone();
        (job["state"] == "completed").then_some(job)
    });
    let docs = server.list_all("k3", "t");
    let result = server.get(&format!("/api/tenants/k3/schedule/history/{id}"));
    assert_eq!(result.json["result"]["value"], docs[0]["_id"], "{done}");
    let journal = server.get("/api/tenants/k3/journal?after=0&limit=100");
    journal.expect_status(200);
    let records = journal.json["records"].as_array().cloned().unwrap_or_default();
    let record = records.iter().find(|r| r["writes"][0]["doc_id"] == docs[0]["_id"]).expect("the job's journal record");
    assert_eq!(record["scheduled_execution_id"], json!(format!("scheduled:{id}")), "{record}");
}

const SCHEMA_TS: &str = r#"
import { defineSchema, defineTable, v } from "@nimbus/nimbus/server";
export default defineSchema({
  tasks: defineTable({ title: v.string(), status: v.string(), priority: v.number(), owner: v.optional(v.string()) })
    .index("by_status_priority", ["status", "priority"]),
});
"#;

const TASKS_TS: &str = r#"
import { query, mutation, action, paginatedQuery, paginationOptsValidator, v } from "@nimbus/nimbus/server";
import { ConvexError } from "@nimbus/nimbus/values";

export const add = mutation({
  args: { title: v.string(), status: v.string(), priority: v.number() },
  returns: v.id("tasks"),
  handler: (ctx, args) => ctx.db.insert("tasks", args),
});
export const open = query({
  handler: async (ctx) =>
    (await ctx.db.query("tasks").withIndex("by_status_priority", (q) => q.eq("status", "open").gt("priority", 1)).collect())
      .map((t) => t.title),
});
export const either = query({
  handler: async (ctx) =>
    (await ctx.db.query("tasks").filter((q) => q.or(q.eq(q.field("title"), "a"), q.gte(q.field("priority"), 5))).collect())
      .map((t) => t.title).sort(),
});
export const byIdAlone = mutation({
  args: { id: v.id("tasks") },
  handler: async (ctx, { id }) => {
    const before = await ctx.db.get(id);
    await ctx.db.patch(id, { status: "done" });
    const after = await ctx.db.get(id);
    await ctx.db.delete(id);
    return { before: before.status, after: after.status, gone: (await ctx.db.get(id)) === null };
  },
});
export const page = paginatedQuery({
  args: { paginationOpts: paginationOptsValidator },
  handler: (ctx, { paginationOpts }) => ctx.db.query("tasks").order("asc", "priority").paginate(paginationOpts),
});
export const lies = query({ returns: v.number(), handler: () => "not a number" });
export const who = query({ handler: async (ctx) => ctx.auth.getUserIdentity() });
export const one = query({ handler: (ctx) => ctx.db.query("tasks").unique() });
export const bad = mutation({ handler: (ctx) => ctx.db.insert("tasks", { title: 1 }) });
export const refuse = mutation({ handler: () => { throw new ConvexError({ reason: "full", left: 0 }); } });
export const env = query({
  handler: () => [typeof fetch, typeof require, typeof process, typeof setTimeout, typeof XMLHttpRequest, typeof WebSocket],
});
export const wait = action({
  handler: () => new Promise((resolve) => setTimeout(() => resolve(typeof setTimeout), 5)),
});
export const deep = action({ args: { n: v.number() }, handler: (ctx, { n }) => (n === 0 ? 0 : ctx.runAction("tasks:deep", { n: n - 1 })) });
"#;

#[test]
fn the_convex_authoring_forms_work() {
    let server = Server::start();
    server.create_tenant("cv");
    deploy(&server, "cv", json!({ "schema.ts": SCHEMA_TS, "tasks.ts": TASKS_TS })).expect_status(200);
    // schema.ts put the table's schema and index.
    let schema = server.get("/api/tenants/cv/schema/tasks");
    schema.expect_status(200);
    assert_eq!(schema.json["indexes"], json!([{ "name": "by_status_priority", "fields": ["status", "priority"] }]));

    let mut ids = Vec::new();
    for (title, status, priority) in [("a", "open", 1), ("b", "open", 3), ("c", "open", 5), ("d", "done", 9)] {
        let id = value(&server, "cv", "tasks:add", json!({ "title": title, "status": status, "priority": priority }));
        ids.push(id.as_str().expect("an id").to_owned());
    }
    assert_eq!(value(&server, "cv", "tasks:open", json!({})), json!(["b", "c"]));
    assert_eq!(value(&server, "cv", "tasks:either", json!({})), json!(["a", "c", "d"]));
    let first = value(&server, "cv", "tasks:page", json!({ "paginationOpts": { "numItems": 3, "cursor": null } }));
    assert_eq!((first["page"].as_array().map(Vec::len), first["isDone"].as_bool()), (Some(3), Some(false)), "{first}");
    let rest = value(
        &server,
        "cv",
        "tasks:page",
        json!({ "paginationOpts": { "numItems": 3, "cursor": first["continueCursor"] } }),
    );
    assert_eq!((rest["page"][0]["title"].as_str(), rest["isDone"].as_bool()), (Some("d"), Some(true)), "{rest}");
    let one_arg = value(&server, "cv", "tasks:byIdAlone", json!({ "id": ids[0] }));
    assert_eq!(one_arg, json!({ "before": "open", "after": "done", "gone": true }));

    let lies = call(&server, "cv", "tasks:lies", json!({}));
    lies.expect_error(422, "function.thrown");
    assert_eq!(lies.detail()["reason"], "returns");
    assert_eq!(value(&server, "cv", "tasks:who", json!({})), Value::Null);
    call(&server, "cv", "tasks:one", json!({})).expect_error(400, "op.invalid_input");
    call(&server, "cv", "tasks:bad", json!({})).expect_error(422, "op.schema_validation");
    let refused = call(&server, "cv", "tasks:refuse", json!({}));
    refused.expect_error(422, "function.thrown");
    assert_eq!(refused.detail()["data"], json!({ "reason": "full", "left": 0 }));
    assert_eq!(
        value(&server, "cv", "tasks:env", json!({})),
        json!(["undefined", "undefined", "undefined", "undefined", "undefined", "undefined"])
    );
    assert_eq!(value(&server, "cv", "tasks:wait", json!({})), "function", "actions have timers");
    assert_eq!(value(&server, "cv", "tasks:deep", json!({ "n": 3 })), 0);
    let too_deep = call(&server, "cv", "tasks:deep", json!({ "n": 40 }));
    too_deep.expect_error(400, "op.cap_exceeded");
    assert_eq!(too_deep.detail()["cap"], "nested_calls", "{too_deep}");
    // Existing documents that violate a new schema.ts fail the deploy; the old set stays.
    let strict = SCHEMA_TS.replace("owner: v.optional(v.string())", "owner: v.string()");
    deploy(&server, "cv", json!({ "schema.ts": strict, "tasks.ts": TASKS_TS }))
        .expect_error(400, "function.deploy_failed");
    assert_eq!(server.get("/api/tenants/cv/functions").json["version"], 1);
}

#[test]
fn a_deploy_warns_about_jobs_and_crons_whose_function_is_gone() {
    let server = Server::start();
    server.create_tenant("w");
    deploy(&server, "w", json!({ "jobs.js": JOBS_JS })).expect_status(200);
    let target = json!({ "type": "function", "name": "jobs:record", "args": { "label": "later" } });
    for _ in 0..2 {
        server
            .post_json("/api/tenants/w/schedule", &json!({ "run_after_ms": 86_400_000, "mutation": target }))
            .expect_status(201);
    }
    let cron = json!({ "name": "c", "schedule": { "type": "interval", "seconds": 86_400 }, "mutation": target });
    server.post_json("/api/tenants/w/crons", &cron).expect_status(201);
    let resp = deploy(
        &server,
        "w",
        json!({ "other.js": "import { query } from \"nimbus/server\";\nexport const q = query({ handler: () => 0 });\n" }),
    );
    resp.expect_status(200);
    assert_eq!(
        resp.json["warnings"],
        json!([{ "kind": "scheduled_function_missing", "name": "jobs:record", "count": 3 }])
    );
}

#[test]
fn a_deleted_tenants_functions_never_reach_a_new_tenant_with_its_id() {
    let server = Server::start();
    server.create_tenant("again");
    deploy(&server, "again", json!({ "counter.js": COUNTER_JS })).expect_status(200);
    assert_eq!(value(&server, "again", "counter:read", json!({})), 0);
    server.delete("/api/tenants/again").expect_status(204);
    server.create_tenant("again");
    let fresh = server.get("/api/tenants/again/functions");
    assert_eq!((fresh.json["version"].clone(), fresh.json["functions"].clone()), (json!(0), json!([])));
    call(&server, "again", "counter:read", json!({})).expect_error(404, "function.not_found");
}

#[test]
fn the_wall_clock_limit_ends_a_waiting_action() {
    let dirs = crate::harness::Dirs::new();
    let server = dirs.try_start_with_args(&["--function-wall-ms", "300"]).expect("the server starts");
    server.create_tenant("slow");
    let module = "import { action } from \"nimbus/server\";\nexport const nap = action({ handler: () => new Promise((r) => setTimeout(r, 60000)) });\n";
    deploy(&server, "slow", json!({ "slow.js": module })).expect_status(200);
    let resp = call(&server, "slow", "slow:nap", json!({}));
    resp.expect_error(408, "runtime.execution_timeout");
    assert_eq!(
        (resp.detail()["limit"].as_str(), resp.detail()["limitMs"].as_i64()),
        (Some("wall"), Some(300)),
        "{resp}"
    );
}

/// An action target runs beside later jobs: a job due after a long-running action completes
/// while the action is still running.
#[test]
fn an_action_job_does_not_hold_up_later_jobs() {
    let server = Server::start();
    server.create_tenant("aj");
    let module = "import { action } from \"nimbus/server\";\nexport const nap = action({ handler: () => new Promise((r) => setTimeout(r, 50000)) });\n";
    deploy(&server, "aj", json!({ "slow.js": module })).expect_status(200);
    let schedule = |mutation: Value| {
        let resp = server.post_json("/api/tenants/aj/schedule", &json!({ "run_after_ms": 0, "mutation": mutation }));
        resp.expect_status(201);
        resp.json["job_id"].as_str().expect("job id").to_owned()
    };
    let job = |id: &str| server.get(&format!("/api/tenants/aj/schedule/{id}")).json["job"].clone();
    let action = schedule(json!({ "type": "function", "name": "slow:nap", "args": {} }));
    wait_for("the action to start", || (job(&action)["state"] == "running").then_some(()));
    let insert = schedule(json!({ "type": "insert", "table": "t", "fields": { "k": 1 } }));
    wait_for("the later job to complete", || (job(&insert)["state"] == "completed").then_some(()));
    assert_eq!(job(&action)["state"], "running", "the action is still running");
}

//! `nimbus-bench functions <nimbus binary>`: tenants' functions against the plain HTTP and live
//! query paths they sit beside, each baseline measured in the same run:
//!
//! - (a) a trivial query function over `POST /functions/call` at concurrency 16 against a plain
//!   `GET` of one document at concurrency 16 (and, for scale, a query function that reads that
//!   same document with `ctx.db.get`);
//! - (b) an insert mutation function at concurrency 32 against plain HTTP inserts at 32;
//! - (c) isolate creation, estimated: the first call of a trivial function on each of 200 fresh
//!   tenants (which must create and evaluate an isolate) against a second, warm call on each
//!   (which takes the pooled one); the difference of the medians is the estimate;
//! - (d) the memory of one pooled idle isolate: the server's RSS and PSS before and after those
//!   200 first calls (each leaves one idle isolate), divided by 200;
//! - (e) write→push latency with 100 subscribers of one query function against 100 subscribers
//!   of the equivalent live query (client side: insert sent → frame received);
//! - (f) the server's own commit-to-socket-write `delivery_latency` from the realtime stats with
//!   1,000 subscribers of one live query and of one query function.
//!
//! Every load and wait is bounded in count and in time; all traffic goes to 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{Value, json};

use crate::client::{Outcome, Request, load};
use crate::realtime::{latency_of, percentile};
use crate::schedule::Http;
use crate::server::Server;

/// The tenant module: a trivial query, a one-document read, an insert and a live feed.
const MODULE: &str = r#"import { query, mutation, v } from "nimbus/server";

export const ping = query({ handler: () => 1 });

export const get = query({
  args: { id: v.string() },
  handler: (ctx, { id }: { id: string }) => ctx.db.get("docs", id),
});

export const insert = mutation({
  args: { n: v.number() },
  handler: (ctx, { n }: { n: number }) => ctx.db.insert("bench", { n, title: `row ${n}` }),
});

export const latest = query({
  handler: (ctx) => ctx.db.query("feed").filter("seq", "gte", 0).order("desc", "seq").take(1),
});
"#;

/// Documents the read cases read, by id in a fixed pseudo-random order.
const READ_DOCS: usize = 100;
/// Connections and requests per connection of the read cases (a).
const READ_WORKERS: usize = 16;
const READS_PER_WORKER: usize = 1500;
/// Connections and inserts per connection of the insert cases (b).
const INSERT_WORKERS: usize = 32;
const INSERTS_PER_WORKER: usize = 250;
/// Trials of each throughput case, interleaved with its baseline; the median is reported.
const TRIALS: usize = 3;
/// Any one load run gives up after this long.
const LOAD_DEADLINE: Duration = Duration::from_secs(120);
/// Fresh tenants of the isolate cases (c) and (d).
const TENANTS: usize = 200;
/// Subscribers and rounds of the client-side latency case (e).
const SUBSCRIBERS: usize = 100;
const ROUNDS: usize = 200;
/// Subscribers and rounds of the server-side latency case (f): 61 × 1,000 deliveries fit the
/// 65,536 samples the server keeps per tenant.
const FANOUT_SUBSCRIBERS: usize = 1000;
const FANOUT_ROUNDS: usize = 60;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn deploy(http: &Http, tenant: &str) -> Result<(), String> {
    http.send("PUT", &format!("/api/tenants/{tenant}/functions"), Some(&json!({ "modules": { "bench.ts": MODULE } })))
        .map(|_| ())
}

fn create_tenant(http: &Http, tenant: &str) -> Result<(), String> {
    http.send("POST", "/api/tenants", Some(&json!({ "id": tenant }))).map(|_| ())
}

fn call_request(tenant: &str, name: &str, args: &Value) -> Request {
    Request {
        method: Method::POST,
        path: format!("/api/tenants/{tenant}/functions/call"),
        body: Some(json!({ "name": name, "args": args }).to_string()),
    }
}

/// Runs the whole benchmark and prints its figures.
pub fn run(nimbus: &str) -> Result<(), String> {
    throughput(nimbus)?;
    isolates(nimbus)?;
    subscriptions(nimbus)?;
    Ok(())
}

/// One row of a throughput table.
fn row(name: &str, outcome: &Outcome, baseline: Option<f64>) {
    let ratio = baseline.map_or_else(|| "1.00x".to_owned(), |b| format!("{:.2}x", outcome.ops_per_sec() / b));
    println!(
        "  {name:<52} {:>9.0} {:>8.2} {:>8.2} {ratio:>8}",
        outcome.ops_per_sec(),
        ms(outcome.percentile(50.0)),
        ms(outcome.percentile(99.0)),
    );
}

/// Runs `measure` and `baseline` alternately `TRIALS` times and returns the median trial of
/// each (by throughput).
async fn paired<F, B, FF, BF>(measure: F, baseline: B) -> Result<(Outcome, Outcome), String>
where
    F: Fn(usize) -> FF,
    B: Fn(usize) -> BF,
    FF: Future<Output = Result<Outcome, String>>,
    BF: Future<Output = Result<Outcome, String>>,
{
    let (mut measured, mut baselines) = (Vec::new(), Vec::new());
    for trial in 0..TRIALS {
        baselines.push(bounded(baseline(trial)).await?);
        measured.push(bounded(measure(trial)).await?);
    }
    let pick = |mut runs: Vec<Outcome>| {
        runs.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
        runs.swap_remove(TRIALS / 2)
    };
    Ok((pick(measured), pick(baselines)))
}

async fn bounded(run: impl Future<Output = Result<Outcome, String>>) -> Result<Outcome, String> {
    tokio::time::timeout(LOAD_DEADLINE, run).await.map_err(|_| format!("a load run took over {LOAD_DEADLINE:?}"))?
}

/// (a) and (b).
fn throughput(nimbus: &str) -> Result<(), String> {
    let server = Server::start(nimbus)?;
    let http = Http::new(&server);
    create_tenant(&http, "fn")?;
    deploy(&http, "fn")?;
    let mut ids = Vec::with_capacity(READ_DOCS);
    for i in 0..READ_DOCS {
        let body = json!({ "table": "docs", "fields": { "n": i, "title": format!("doc {i}") } });
        let answer = http.send("POST", "/api/tenants/fn/documents", Some(&body))?;
        ids.push(answer["id"].as_str().ok_or("insert answered without an id")?.to_owned());
    }
    let ids = Arc::new(ids);
    let pick = {
        let ids = ids.clone();
        move |w: usize, i: usize| ids[(w * 7919 + i * 104_729) % ids.len()].clone()
    };
    // One client thread: the load generator shares the machine's cores with the server.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (address, token) = (server.address.as_str(), server.token.as_str());
        let get_doc = {
            let pick = pick.clone();
            move |w: usize, i: usize| Request {
                method: Method::GET,
                path: format!("/api/tenants/fn/documents/docs/{}", pick(w, i)),
                body: None,
            }
        };
        let ping = |_: usize, _: usize| call_request("fn", "bench:ping", &json!({}));
        let get_fn = move |w: usize, i: usize| call_request("fn", "bench:get", &json!({ "id": pick(w, i) }));
        // Warm-up (pooled isolates, read connections, allocator), not measured.
        bounded(load(address, token, READ_WORKERS, 100, 200, get_doc.clone())).await?;
        bounded(load(address, token, READ_WORKERS, 100, 200, ping)).await?;
        bounded(load(address, token, READ_WORKERS, 100, 200, get_fn.clone())).await?;

        let (query, reads) = paired(
            |_| load(address, token, READ_WORKERS, READS_PER_WORKER, 200, ping),
            |_| load(address, token, READ_WORKERS, READS_PER_WORKER, 200, get_doc.clone()),
        )
        .await?;
        let reading = bounded(load(address, token, READ_WORKERS, READS_PER_WORKER, 200, get_fn)).await?;

        let plain_insert = |trial: usize| {
            move |w: usize, i: usize| {
                let n = trial * 10_000_000 + w * 100_000 + i;
                Request {
                    method: Method::POST,
                    path: "/api/tenants/fn/documents".into(),
                    body: Some(format!(r#"{{"table":"bench","fields":{{"n":{n},"title":"row {n}"}}}}"#)),
                }
            }
        };
        let function_insert = |trial: usize| {
            move |w: usize, i: usize| {
                let n = 500_000_000 + trial * 10_000_000 + w * 100_000 + i;
                call_request("fn", "bench:insert", &json!({ "n": n }))
            }
        };
        bounded(load(address, token, INSERT_WORKERS, 20, 200, function_insert(99))).await?;
        let (mutation, inserts) = paired(
            |t| load(address, token, INSERT_WORKERS, INSERTS_PER_WORKER, 200, function_insert(t)),
            |t| load(address, token, INSERT_WORKERS, INSERTS_PER_WORKER, 201, plain_insert(t)),
        )
        .await?;

        println!("functions: throughput (baselines in the same run; median of {TRIALS} interleaved trials)");
        println!("  {:<52} {:>9} {:>8} {:>8} {:>8}", "case", "ops/s", "p50 ms", "p99 ms", "ratio");
        row(&format!("plain HTTP GET of one document, c={READ_WORKERS}"), &reads, None);
        row(&format!("trivial query function (returns 1), c={READ_WORKERS}"), &query, Some(reads.ops_per_sec()));
        row(
            &format!("query function ctx.db.get of one document, c={READ_WORKERS}"),
            &reading,
            Some(reads.ops_per_sec()),
        );
        row(&format!("plain HTTP insert, c={INSERT_WORKERS}"), &inserts, None);
        row(&format!("insert mutation function, c={INSERT_WORKERS}"), &mutation, Some(inserts.ops_per_sec()));
        let (a, b) = (query.ops_per_sec() / reads.ops_per_sec(), mutation.ops_per_sec() / inserts.ops_per_sec());
        println!("  target: trivial query >= 0.5x document GET -> {a:.2}x {}", verdict(a >= 0.5));
        println!("  target: insert mutation >= 0.7x HTTP insert -> {b:.2}x {}", verdict(b >= 0.7));
        Ok(())
    })
}

/// `(VmRSS, Pss)` of a process, KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64), String> {
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| format!("no {name}"))
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).map_err(|e| e.to_string())?;
    Ok((field(&status, "VmRSS:")?, field(&rollup, "Pss:")?))
}

/// Times one call (serially, over the keep-alive client).
fn timed_call(http: &Http, tenant: &str) -> Result<Duration, String> {
    let body = json!({ "name": "bench:ping", "args": {} });
    let started = Instant::now();
    let answer = http.send("POST", &format!("/api/tenants/{tenant}/functions/call"), Some(&body))?;
    let took = started.elapsed();
    if answer["value"] != 1 {
        return Err(format!("bench:ping answered {answer}"));
    }
    Ok(took)
}

/// (c) and (d).
fn isolates(nimbus: &str) -> Result<(), String> {
    let server = Server::start(nimbus)?;
    let http = Http::new(&server);
    let tenants: Vec<String> = (0..TENANTS).map(|i| format!("iso{i}")).collect();
    for tenant in &tenants {
        create_tenant(&http, tenant)?;
        deploy(&http, tenant)?;
        // A write and a read open the tenant's writer and a pooled read connection, so that
        // neither is counted as the isolate's time or memory below.
        let answer = http.send(
            "POST",
            &format!("/api/tenants/{tenant}/documents"),
            Some(&json!({ "table": "docs", "fields": { "n": 0 } })),
        )?;
        let id = answer["id"].as_str().ok_or("insert answered without an id")?;
        http.send("GET", &format!("/api/tenants/{tenant}/documents/docs/{id}"), None)?;
    }
    // Let the allocator settle (mimalloc returns freed pages after a short delay).
    std::thread::sleep(Duration::from_secs(2));
    let before = memory_kib(server.pid())?;
    let mut first = Vec::with_capacity(TENANTS);
    for tenant in &tenants {
        first.push(timed_call(&http, tenant)?);
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = memory_kib(server.pid())?;
    let mut warm = Vec::with_capacity(TENANTS);
    for tenant in &tenants {
        warm.push(timed_call(&http, tenant)?);
    }
    first.sort();
    warm.sort();
    let (first50, warm50) = (percentile(&first, 50.0), percentile(&warm, 50.0));
    println!("functions: isolates ({TENANTS} fresh tenants, the same trivial module; one call at a time)");
    println!(
        "  first call per tenant (creates an isolate): p50 {first50:.2} ms  p99 {:.2} ms",
        percentile(&first, 99.0)
    );
    println!(
        "  second call per tenant (pooled isolate):     p50 {warm50:.2} ms  p99 {:.2} ms",
        percentile(&warm, 99.0)
    );
    println!(
        "  isolate creation, estimated as the difference of the medians: {:.2} ms (an estimate: it also holds \
         the module's evaluation and anything else a first call does that a second does not)",
        first50 - warm50
    );
    let per = |b: u64, a: u64| a.saturating_sub(b) as f64 / TENANTS as f64;
    println!(
        "  server memory before {:.1} MiB RSS / {:.1} MiB PSS, after {TENANTS} idle isolates {:.1} / {:.1} MiB: \
         {:.0} KiB RSS, {:.0} KiB PSS per idle isolate",
        before.0 as f64 / 1024.0,
        before.1 as f64 / 1024.0,
        after.0 as f64 / 1024.0,
        after.1 as f64 / 1024.0,
        per(before.0, after.0),
        per(before.1, after.1),
    );
    Ok(())
}

/// The subscription frames of the query case and the function case: the same result (the
/// newest `feed` document by `seq`).
fn subscription_frames() -> (Value, Value) {
    let query = json!({ "table": "feed", "filters": [{ "field": "seq", "op": "gte", "value": 0 }],
                        "order": { "field": "seq", "direction": "desc" }, "limit": 1 });
    (json!({ "query": query }), json!({ "function": { "name": "bench:latest", "args": {} } }))
}

/// (e) and (f).
fn subscriptions(nimbus: &str) -> Result<(), String> {
    let (query, function) = subscription_frames();
    let server = Server::start(nimbus)?;
    let http = Http::new(&server);
    println!("functions: write→push latency, client side (HTTP insert sent → subscription_result received)");
    let mut client_side = Vec::new();
    for (label, frame, tenant) in [("live query", &query, "subq"), ("query function", &function, "subf")] {
        create_tenant(&http, tenant)?;
        deploy(&http, tenant)?;
        let samples = latency_of(&server, tenant, "feed", frame, SUBSCRIBERS, ROUNDS)?;
        let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
        println!(
            "  {SUBSCRIBERS} subscribers of one {label:<15} p50 {p50:.2} ms  p99 {p99:.2} ms  ({} samples)",
            samples.len()
        );
        client_side.push((p50, p99));
    }
    if let [(q50, q99), (f50, f99)] = client_side[..] {
        println!("  function / query: p50 {:.2}x, p99 {:.2}x", f50 / q50, f99 / q99);
    }
    drop(server);

    let server = Server::start(nimbus)?;
    let http = Http::new(&server);
    println!(
        "functions: delivery latency, server side (realtime stats delivery_latency: commit durable → frame written \
         to the socket), {FANOUT_SUBSCRIBERS} subscribers, {FANOUT_ROUNDS} writes"
    );
    let floor = crate::realtime::fanout_floor(FANOUT_SUBSCRIBERS, FANOUT_ROUNDS)?;
    println!(
        "  floor, no server: one thread writing a frame to each of {FANOUT_SUBSCRIBERS} loopback sockets, round start → \
         write returned: p50 {:.2} ms  p99 {:.2} ms",
        percentile(&floor, 50.0),
        percentile(&floor, 99.0)
    );
    for (label, frame, tenant) in [("live query", &query, "fanq"), ("query function", &function, "fanf")] {
        create_tenant(&http, tenant)?;
        deploy(&http, tenant)?;
        let samples = latency_of(&server, tenant, "feed", frame, FANOUT_SUBSCRIBERS, FANOUT_ROUNDS)?;
        let stats = http.send("GET", &format!("/api/tenants/{tenant}/realtime/stats"), None)?;
        let delivery = &stats["delivery_latency"];
        let micros =
            |key: &str| delivery[key].as_f64().map(|us| us / 1000.0).ok_or(format!("stats without {key}: {stats}"));
        let (p50, p99) = (micros("p50_us")?, micros("p99_us")?);
        println!(
            "  one {label:<15} server p50 {p50:.2} ms  p99 {p99:.2} ms ({} samples; target p50 <= 2 ms: {}, p99 <= 5 ms: {}); \
             client p50 {:.2} ms  p99 {:.2} ms",
            delivery["samples"],
            verdict(p50 <= 2.0),
            verdict(p99 <= 5.0),
            percentile(&samples, 50.0),
            percentile(&samples, 99.0),
        );
        if tenant == "fanf" {
            println!(
                "    function counters: evaluations {}, invalidations {}, skipped {} (one shared call for all subscribers)",
                stats["function_evaluations"], stats["function_invalidations"], stats["function_skipped"]
            );
        }
    }
    Ok(())
}

//! The deployment URL `/convex/{t}` (functions.md §10): calls by kind, paginated queries,
//! function jobs, the socket with `subscribe_named`, and Convex's HTTP protocol as the `convex`
//! npm package's `ConvexHttpClient` speaks it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;

use crate::harness::{Resp, Server, is_request_id, wait_for};
use crate::realtime::{Socket, connect, next, send};

const APP_TS: &str = r#"
import { query, mutation, action, internalQuery, paginationOptsValidator, v } from "@nimbus/nimbus/server";
import { ConvexError } from "@nimbus/nimbus/values";

export const list = query({
  args: { channel: v.string() },
  handler: async (ctx, { channel }) =>
    (await ctx.db.query("messages").filter("channel", "eq", channel).order("asc").collect()).map((m) => m.body),
});
export const send = mutation({
  args: { channel: v.string(), body: v.string() },
  handler: (ctx, args) => ctx.db.insert("messages", args),
});
export const shout = action({ args: { text: v.string() }, handler: async (ctx, { text }) => text.toUpperCase() });
export const hidden = internalQuery({ handler: () => "secret" });
export const page = query({
  args: { channel: v.string(), paginationOpts: paginationOptsValidator },
  handler: (ctx, { channel, paginationOpts }) =>
    ctx.db.query("messages").filter("channel", "eq", channel).order("asc").paginate(paginationOpts),
});
export const twice = query({
  args: { n: v.number() },
  handler: (ctx, { n }) => ({ doubled: n * 2, isInteger: Number.isInteger(n) }),
});
export const refuse = mutation({ handler: () => { throw new ConvexError({ code: "NOPE", limit: 3 }); } });
export const crash = mutation({ handler: () => { throw new Error("boom"); } });
export default query({ handler: () => "the default" });
"#;

/// A tenant with `app.ts` deployed.
fn app(server: &Server, tenant: &str) {
    server.create_tenant(tenant);
    server
        .put_json(&format!("/api/tenants/{tenant}/functions"), &json!({ "modules": { "app.ts": APP_TS } }))
        .expect_status(200);
}

/// `POST /convex/{t}/{route}` with `body`.
fn post(server: &Server, tenant: &str, route: &str, body: Value) -> Resp {
    server.post_json(&format!("/convex/{tenant}/{route}"), &body)
}

/// `POST /convex/{t}/{kind}` (`query`, `mutation`, `action`): asserts 200, returns the value.
fn value(server: &Server, tenant: &str, kind: &str, name: &str, args: Value) -> Value {
    let resp = post(server, tenant, kind, json!({ "name": name, "args": args }));
    resp.expect_status(200);
    resp.json.clone()
}

/// A request exactly as `ConvexHttpClient` sends it to `{address}/api/{kind}`, read without the
/// harness's envelope check (a 560 carries Convex's body, not an envelope): status and body.
fn convex_client(server: &Server, tenant: &str, kind: &str, path: &str, args: Value) -> (u16, Value) {
    let body = json!({ "path": path, "format": "convex_encoded_json", "args": [args] }).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let head = format!(
        "POST /convex/{tenant}/api/{kind} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nConvex-Client: npm-1.51.0\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {length}\r\n\r\n",
        port = server.port,
        token = server.token(),
        length = body.len(),
    );
    stream.write_all(format!("{head}{body}").as_bytes()).expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end: {raw}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {head}"));
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    };
    assert!(header("x-request-id").is_some_and(|id| is_request_id(&id)), "{head}");
    assert!(header("content-type").is_some_and(|t| t.starts_with("application/json")), "{head}");
    assert!(header("transfer-encoding").is_none(), "a sized body is expected: {head}");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")))
}

/// `{"$integer": …}`: a bigint as `convex_encoded_json` writes it.
fn integer(n: i64) -> Value {
    json!({ "$integer": STANDARD.encode(n.to_le_bytes()) })
}

/// `{"$float": …}`: NaN, ±Infinity and -0 as `convex_encoded_json` writes them.
fn float(x: f64) -> Value {
    json!({ "$float": STANDARD.encode(x.to_le_bytes()) })
}

#[test]
fn deployment_routes_answer_bare_values_and_refuse_other_kinds() {
    let server = Server::start();
    app(&server, "cx1");
    let id = value(&server, "cx1", "mutation", "app:send", json!({ "channel": "a", "body": "hi" }));
    assert!(id.as_str().is_some_and(|id| id.len() == 26), "a mutation answers its bare value: {id}");
    assert_eq!(value(&server, "cx1", "query", "app:list", json!({ "channel": "a" })), json!(["hi"]));
    assert_eq!(value(&server, "cx1", "action", "app:shout", json!({ "text": "hey" })), json!("HEY"));
    let defaulted = post(&server, "cx1", "query", json!({ "name": "app:default" }));
    assert_eq!((defaulted.status, defaulted.json.clone()), (200, json!("the default")), "args default to {{}}");

    for (route, name, kind) in
        [("query", "app:send", "mutation"), ("mutation", "app:list", "query"), ("action", "app:send", "mutation")]
    {
        let resp = post(&server, "cx1", route, json!({ "name": name, "args": {} }));
        resp.expect_error(400, "op.invalid_input");
        let reason = resp.detail()["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(kind), "the error names the kind {kind}: {resp}");
    }
    let internal = post(&server, "cx1", "query", json!({ "name": "app:hidden", "args": {} }));
    internal.expect_error(403, "auth.forbidden");
    assert_eq!(internal.detail()["visibility"], "internal");
    post(&server, "cx1", "query", json!({ "name": "app:nope", "args": {} })).expect_error(404, "function.not_found");
    post(&server, "cx1", "query", json!({ "name": "app:list", "args": { "channel": 1 } }))
        .expect_error(400, "function.invalid_args");
    post(&server, "cx1", "query", json!({ "args": {} })).expect_error(400, "op.invalid_input");
    post(&server, "nope", "query", json!({ "name": "app:list", "args": {} }))
        .expect_error(404, "session.tenant_not_found");
    let body = json!({ "name": "app:list", "args": { "channel": "a" } }).to_string();
    server
        .request("POST", "/convex/cx1/query", &[("Content-Type", "application/json")], Some(body.as_bytes()))
        .expect_error(401, "auth.unauthorized");
}

#[test]
fn the_paginated_route_passes_pagination_opts_and_maps_the_page() {
    let server = Server::start();
    app(&server, "cx2");
    for i in 0..5 {
        value(&server, "cx2", "mutation", "app:send", json!({ "channel": "p", "body": format!("m{i}") }));
    }
    value(&server, "cx2", "mutation", "app:send", json!({ "channel": "other", "body": "x" }));

    let mut bodies = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let body = json!({ "name": "app:page", "args": { "channel": "p" }, "page_size": 2, "cursor": cursor });
        let resp = post(&server, "cx2", "query/paginated", body);
        resp.expect_status(200);
        let data = resp.json["data"].as_array().unwrap_or_else(|| panic!("no data: {resp}"));
        assert!(data.len() <= 2, "{resp}");
        bodies.extend(data.iter().map(|doc| doc["body"].clone()));
        pages += 1;
        if resp.json["has_more"] == false {
            assert_eq!(resp.json["next_cursor"], Value::Null, "the last page has no cursor: {resp}");
            break;
        }
        assert_eq!(resp.json["has_more"], true, "{resp}");
        cursor = resp.json["next_cursor"].clone();
        assert!(cursor.is_string(), "{resp}");
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"].map(Value::from).to_vec());
    assert_eq!(pages, 3);

    // A function that does not answer a page, and bad page sizes or args.
    let not_a_page =
        post(&server, "cx2", "query/paginated", json!({ "name": "app:default", "page_size": 2, "cursor": null }));
    not_a_page.expect_field(400, "op.invalid_input", "name");
    post(&server, "cx2", "query/paginated", json!({ "name": "app:page", "args": { "channel": "p" }, "page_size": 0 }))
        .expect_field(400, "op.invalid_input", "page_size");
    post(&server, "cx2", "query/paginated", json!({ "name": "app:send", "args": {}, "page_size": 2 }))
        .expect_error(400, "op.invalid_input");
}

#[test]
fn schedule_routes_create_and_cancel_function_jobs() {
    let server = Server::start();
    app(&server, "cx3");
    let job_state = |id: &str| server.get(&format!("/api/tenants/cx3/schedule/{id}")).json["job"]["state"].clone();
    let args = json!({ "channel": "jobs", "body": "soon" });
    let created =
        post(&server, "cx3", "schedule/run_after", json!({ "name": "app:send", "args": args, "run_after_ms": 0 }));
    created.expect_status(201);
    let soon = created.json["job_id"].as_str().unwrap_or_else(|| panic!("no job_id: {created}")).to_owned();
    wait_for("the job to complete", || (job_state(&soon) == "completed").then_some(()));

    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64;
    let past =
        json!({ "name": "app:send", "args": { "channel": "jobs", "body": "past" }, "run_at_ms": now_ms - 60_000 });
    let past = post(&server, "cx3", "schedule/run_at", past);
    past.expect_status(201);
    let past = past.json["job_id"].as_str().expect("job_id").to_owned();
    wait_for("a job due in the past to run now", || (job_state(&past) == "completed").then_some(()));
    assert_eq!(value(&server, "cx3", "query", "app:list", json!({ "channel": "jobs" })), json!(["soon", "past"]));

    let later =
        json!({ "name": "app:send", "args": { "channel": "jobs", "body": "later" }, "run_at_ms": now_ms + 3_600_000 });
    let later = post(&server, "cx3", "schedule/run_at", later);
    later.expect_status(201);
    let later = later.json["job_id"].as_str().expect("job_id").to_owned();
    assert_eq!(job_state(&later), "pending");
    let cancelled = server.delete(&format!("/convex/cx3/schedule/{later}"));
    cancelled.expect_status(204);
    assert_eq!(job_state(&later), "cancelled");
    server.delete(&format!("/convex/cx3/schedule/{later}")).expect_error(404, "op.scheduled_job_not_found");

    // Targets must exist and be mutations or actions; delays are bounded.
    post(&server, "cx3", "schedule/run_after", json!({ "name": "app:list", "args": {}, "run_after_ms": 0 }))
        .expect_error(400, "op.invalid_input");
    post(&server, "cx3", "schedule/run_after", json!({ "name": "app:nope", "args": {}, "run_after_ms": 0 }))
        .expect_error(404, "function.not_found");
    post(&server, "cx3", "schedule/run_after", json!({ "name": "app:send", "args": {}, "run_after_ms": 0 }))
        .expect_error(400, "function.invalid_args");
    let too_far = json!({ "name": "app:send", "args": args, "run_after_ms": 400_u64 * 24 * 3_600_000 });
    post(&server, "cx3", "schedule/run_after", too_far).expect_field(400, "op.invalid_input", "run_after_ms");
}

#[test]
fn convex_http_protocol_answers_as_convex_does() {
    let server = Server::start();
    app(&server, "cx4");
    let (status, sent) =
        convex_client(&server, "cx4", "mutation", "app:send", json!({ "channel": "c", "body": "hello" }));
    assert_eq!(
        (status, sent["status"].clone(), sent["logLines"].clone()),
        (200, json!("success"), json!([])),
        "{sent}"
    );
    assert!(sent["value"].is_string(), "{sent}");
    let listed = convex_client(&server, "cx4", "query", "app:list", json!({ "channel": "c" }));
    assert_eq!(listed, (200, json!({ "status": "success", "value": ["hello"], "logLines": [] })));
    // The path forms: a module with its extension, a module alone for its default export.
    assert_eq!(convex_client(&server, "cx4", "action", "app.js:shout", json!({ "text": "a" })).1["value"], "A");
    assert_eq!(convex_client(&server, "cx4", "query", "app", json!({})).1["value"], "the default");
    // Encoded arguments: a bigint becomes a number, -0 stays a number.
    let doubled = convex_client(&server, "cx4", "query", "app:twice", json!({ "n": integer(21) }));
    assert_eq!(doubled.1["value"], json!({ "doubled": 42, "isInteger": true }), "{doubled:?}");
    let negative = convex_client(&server, "cx4", "query", "app:twice", json!({ "n": float(-0.0) }));
    assert_eq!(negative.0, 200, "{negative:?}");

    // A thrown ConvexError carries its data; a plain Error has no errorData at all.
    let (status, refused) = convex_client(&server, "cx4", "mutation", "app:refuse", json!({}));
    assert_eq!((status, refused["status"].clone()), (560, json!("error")), "{refused}");
    assert_eq!(refused["errorData"], json!({ "code": "NOPE", "limit": 3 }), "{refused}");
    assert!(refused["errorMessage"].as_str().is_some_and(|m| m.contains("NOPE")), "{refused}");
    let (status, crashed) = convex_client(&server, "cx4", "mutation", "app:crash", json!({}));
    assert_eq!((status, crashed["status"].clone()), (560, json!("error")), "{crashed}");
    assert!(crashed.as_object().is_some_and(|body| !body.contains_key("errorData")), "{crashed}");
    assert!(crashed["errorMessage"].as_str().is_some_and(|m| m.contains("boom")), "{crashed}");
    // Failures of the call itself are 560s too: another kind, internal, missing, bad args.
    for (kind, path, args, says) in [
        ("query", "app:send", json!({}), "mutation"),
        ("query", "app:hidden", json!({}), "internal"),
        ("query", "app:nope", json!({}), "app:nope"),
        ("query", "app:list", json!({ "channel": 3 }), "channel"),
    ] {
        let (status, failed) = convex_client(&server, "cx4", kind, path, args);
        assert_eq!((status, failed["status"].clone()), (560, json!("error")), "{path}: {failed}");
        assert!(failed["errorMessage"].as_str().is_some_and(|m| m.contains(says)), "{path}: {failed}");
        assert!(failed.as_object().is_some_and(|body| !body.contains_key("errorData")), "{failed}");
    }

    // What fails before the call is an envelope: encodings JSON cannot hold, a malformed body,
    // an unknown tenant, a missing credential.
    let api = |tenant: &str, body: Value| server.post_json(&format!("/convex/{tenant}/api/query"), &body);
    let encoded = |n: Value| json!({ "path": "app:twice", "format": "convex_encoded_json", "args": [{ "n": n }] });
    for bad in [integer(1 << 53), float(f64::NAN), float(f64::INFINITY), json!({ "$bytes": "AAE=" })] {
        let resp = api("cx4", encoded(bad));
        resp.expect_error(400, "function.invalid_args");
        assert_eq!(resp.detail()["path"], "args.n", "{resp}");
    }
    api("cx4", json!({ "format": "convex_encoded_json", "args": [{}] })).expect_error(400, "op.invalid_input");
    api("cx4", json!({ "path": "app:list", "args": [{}, {}] })).expect_field(400, "op.invalid_input", "args");
    api("nope", json!({ "path": "app:list", "args": [{}] })).expect_error(404, "session.tenant_not_found");
    let body = json!({ "path": "app:list", "args": [{ "channel": "c" }] }).to_string();
    server
        .request("POST", "/convex/cx4/api/query", &[("Content-Type", "application/json")], Some(body.as_bytes()))
        .expect_error(401, "auth.unauthorized");
}

/// Upgrades to `/convex/{tenant}/ws` and completes the handshake.
fn deployment_socket(server: &Server, tenant: &str) -> Socket {
    let mut request =
        format!("ws://127.0.0.1:{}/convex/{tenant}/ws", server.port).into_client_request().expect("request");
    let headers = request.headers_mut();
    headers.insert("authorization", format!("Bearer {}", server.token()).parse().expect("header"));
    headers.insert("sec-websocket-protocol", "nimbus.v2".parse().expect("header"));
    let stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    // A safety net only: every read below expects a frame the server must send.
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let (mut socket, response) = tungstenite::client::client(request, stream).expect("upgrade");
    assert_eq!(response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()), Some("nimbus.v2"));
    assert_eq!(next(&mut socket)["type"], "hello");
    send(&mut socket, json!({ "type": "client_hello", "protocol": "nimbus.v2" }));
    socket
}

#[test]
fn subscribe_named_over_the_deployment_socket_pushes_function_values() {
    let server = Server::start();
    app(&server, "cx5");
    let mut socket = deployment_socket(&server, "cx5");
    send(
        &mut socket,
        json!({ "type": "subscribe_named", "request_id": "n1", "name": "app:list", "args": { "channel": "live" } }),
    );
    let first = next(&mut socket);
    assert_eq!(
        (first["type"].as_str(), first["request_id"].as_str(), first["data"].clone()),
        (Some("subscription_result"), Some("n1"), json!([])),
        "{first}"
    );
    let id = first["subscription_id"].clone();
    value(&server, "cx5", "mutation", "app:send", json!({ "channel": "live", "body": "first" }));
    let update = next(&mut socket);
    assert_eq!((update["subscription_id"].clone(), update["data"].clone()), (id, json!(["first"])), "{update}");
    assert!(update.get("request_id").is_none(), "only the first result carries request_id: {update}");

    // The same checks as a function subscribe; a frame without a name fails its request.
    for (frame, code) in [
        (json!({ "type": "subscribe_named", "request_id": "n2", "name": "app:send", "args": {} }), "op.invalid_input"),
        (json!({ "type": "subscribe_named", "request_id": "n2", "name": "app:hidden" }), "auth.forbidden"),
        (json!({ "type": "subscribe_named", "request_id": "n2", "args": {} }), "op.invalid_input"),
    ] {
        send(&mut socket, frame);
        let error = next(&mut socket);
        assert_eq!(
            (error["type"].as_str(), error["id"].as_str(), error["error"]["code"].as_str()),
            (Some("op.error"), Some("n2"), Some(code)),
            "{error}"
        );
    }

    // `/ws` keeps realtime.md's frames: there, subscribe_named is an unknown type.
    let mut plain = connect(&server, "cx5");
    send(
        &mut plain,
        json!({ "type": "subscribe_named", "request_id": "p1", "name": "app:list", "args": { "channel": "live" } }),
    );
    let refused = next(&mut plain);
    assert_eq!(
        (refused["type"].as_str(), refused["error"]["code"].as_str()),
        (Some("error"), Some("protocol.invalid_json")),
        "{refused}"
    );

    // The upgrade's checks are `/ws`'s, with the tenant from the path.
    server
        .authed("GET", "/convex/nope/ws", &[("Sec-WebSocket-Protocol", "nimbus.v2")], None)
        .expect_error(404, "session.tenant_not_found");
    server
        .authed("GET", "/convex/cx5/ws", &[("Sec-WebSocket-Protocol", "other")], None)
        .expect_error(400, "protocol.no_overlap");
}

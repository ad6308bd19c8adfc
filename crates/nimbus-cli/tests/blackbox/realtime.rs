//! Realtime (`GET /ws`, realtime.md): the upgrade's checks, the handshake's fatal errors, a
//! socket without headers (the `Authenticate` frame, `?tenant=`), the session frames, pushes on
//! HTTP writes, unsubscribe, many subscriptions, a slow consumer, and precise invalidation
//! through `GET /api/tenants/{t}/realtime/stats`.

use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::harness::{Dirs, Server, is_request_id};

pub(crate) type Socket = WebSocket<TcpStream>;

/// Upgrades to `/ws` on `tenant`, offering `protocols`; returns the socket and the 101 response.
fn upgrade(server: &Server, tenant: &str, protocols: &str) -> (Socket, tungstenite::handshake::client::Response) {
    let token = format!("Bearer {}", server.token());
    let headers = [("authorization", token.as_str()), ("x-tenant-id", tenant), ("sec-websocket-protocol", protocols)];
    upgrade_to(server, "/ws", &headers)
}

/// Upgrades to `path_and_query` with exactly `extra` headers besides the WebSocket ones.
fn upgrade_to(
    server: &Server,
    path_and_query: &str,
    extra: &[(&str, &str)],
) -> (Socket, tungstenite::handshake::client::Response) {
    let mut request = format!("ws://127.0.0.1:{}{path_and_query}", server.port).into_client_request().expect("request");
    let headers = request.headers_mut();
    for (name, value) in extra {
        headers.insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("header"),
        );
    }
    let stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    // A safety net only: every read below expects a frame the server must send.
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let (socket, response) = tungstenite::client::client(request, stream).expect("upgrade");
    (socket, response)
}

/// The next text frame as JSON (control frames skipped); panics on a close.
pub(crate) fn next(socket: &mut Socket) -> Value {
    loop {
        match socket.read().expect("a WebSocket message") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("a JSON text frame"),
            Message::Close(frame) => panic!("closed early: {frame:?}"),
            _ => {}
        }
    }
}

/// Reads the close frame, skipping nothing else: returns its code and reason.
fn closed(socket: &mut Socket) -> (u16, String) {
    loop {
        match socket.read().expect("the close frame") {
            Message::Close(Some(frame)) => return (u16::from(frame.code), frame.reason.to_string()),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

pub(crate) fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::text(frame.to_string())).expect("send");
}

/// A socket past the handshake.
pub(crate) fn connect(server: &Server, tenant: &str) -> Socket {
    let (mut socket, _) = upgrade(server, tenant, "nimbus.v2");
    assert_eq!(next(&mut socket)["type"], "hello");
    send(&mut socket, json!({ "type": "client_hello", "protocol": "nimbus.v2" }));
    socket
}

/// Subscribes and returns (subscription id, first data).
fn subscribe(socket: &mut Socket, request_id: &str, query: Value) -> (u64, Vec<Value>) {
    send(socket, json!({ "type": "subscribe", "request_id": request_id, "query": query }));
    let first = next(socket);
    assert_eq!(first["type"], "subscription_result", "{first}");
    assert_eq!(first["request_id"], request_id, "{first}");
    (first["subscription_id"].as_u64().expect("id"), first["data"].as_array().expect("data").clone())
}

/// Round trip through the socket's frame order: every frame sent before has been handled.
fn sync(socket: &mut Socket) {
    send(socket, json!({ "type": "ping" }));
    assert_eq!(next(socket), json!({ "type": "pong" }));
}

pub(crate) fn stats(server: &Server, tenant: &str) -> Value {
    let resp = server.get(&format!("/api/tenants/{tenant}/realtime/stats"));
    resp.expect_status(200);
    resp.json.clone()
}

pub(crate) fn delta(before: &Value, after: &Value, counter: &str) -> u64 {
    after[counter].as_u64().expect("counter") - before[counter].as_u64().expect("counter")
}

fn table_query(table: &str) -> Value {
    json!({ "table": table, "filters": [] })
}

#[test]
fn the_upgrade_checks_run_in_order_as_envelopes() {
    let server = Server::start();
    server.create_tenant("rt");
    let token = format!("Bearer {}", server.token());
    let ws = [
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    fn with<'a>(ws: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut headers = ws.to_vec();
        headers.extend_from_slice(extra);
        headers
    }
    let foreign = with(&ws, &[("origin", "http://evil.example"), ("authorization", &token)]);
    server.request("GET", "/ws?tenant_id=rt", &foreign, None).expect_error(403, "auth.forbidden");
    // Without a credential too: the origin policy applies to a socket that would authenticate
    // with its first frame.
    let foreign = with(&ws, &[("origin", "http://evil.example"), ("sec-websocket-protocol", "nimbus.v2")]);
    server.request("GET", "/ws?tenant=rt", &foreign, None).expect_error(403, "auth.forbidden");
    let wrong = with(&ws, &[("authorization", "Bearer nimbus_at_wrong")]);
    let resp = server.request("GET", "/ws?tenant_id=rt", &wrong, None);
    resp.expect_error(401, "auth.unauthorized");
    assert_eq!(resp.detail()["reason"], "invalid_token");
    // A credential may be left out only by a WebSocket upgrade.
    let resp = server.request("GET", "/ws?tenant_id=rt", &[("sec-websocket-protocol", "nimbus.v2")], None);
    resp.expect_error(401, "auth.unauthorized");
    assert_eq!(resp.detail()["reason"], "missing_credential");
    let authed = with(&ws, &[("authorization", &token), ("sec-websocket-protocol", "nimbus.v2")]);
    server.request("GET", "/ws", &authed, None).expect_error(400, "op.invalid_input");
    server.request("GET", "/ws?tenant_id=bad%20id", &authed, None).expect_error(400, "op.invalid_input");
    let no_overlap = with(&ws, &[("authorization", &token), ("sec-websocket-protocol", "nimbus.v1, other")]);
    let resp = server.request("GET", "/ws?tenant_id=missing", &no_overlap, None);
    resp.expect_error(400, "protocol.no_overlap");
    assert_eq!(resp.detail(), &json!({ "serverSupports": ["nimbus.v2"], "clientOffered": ["nimbus.v1", "other"] }));
    server.request("GET", "/ws?tenant_id=missing", &authed, None).expect_error(404, "session.tenant_not_found");
}

#[test]
fn the_handshake_echoes_the_subprotocol_and_violations_are_fatal_with_1008() {
    let server = Server::start();
    server.create_tenant("rt");
    let (mut socket, response) = upgrade(&server, "rt", "nimbus.v1, nimbus.v2");
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(response.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap()), Some("nimbus.v2"));
    let hello = next(&mut socket);
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["protocol"], "nimbus.v2");
    assert_eq!(hello["features"], json!(["queries.v1", "subscriptions.v1", "functions.v1", "heartbeat.v1"]));
    assert!(hello["session"]["id"].as_str().is_some_and(|id| id.starts_with("ws-session-")), "{hello}");
    assert!(hello["session"]["serverNow"].as_i64().is_some_and(|t| t > 0), "{hello}");

    let cases: [(Message, &str, Value); 4] = [
        (Message::text("not json"), "protocol.invalid_json", Value::Null),
        (
            Message::text(json!({ "type": "subscribe" }).to_string()),
            "protocol.unsupported_message_type",
            json!({ "receivedType": "subscribe", "expectedType": "client_hello" }),
        ),
        (
            Message::text(json!({ "type": "client_hello", "protocol": "nimbus.v1" }).to_string()),
            "protocol.unsupported_version",
            json!({ "receivedProtocol": "nimbus.v1" }),
        ),
        (Message::binary(vec![1, 2, 3]), "protocol.unsupported_binary", Value::Null),
    ];
    for (frame, code, detail) in cases {
        let (mut socket, _) = upgrade(&server, "rt", "nimbus.v2");
        assert_eq!(next(&mut socket)["type"], "hello");
        socket.send(frame).expect("send");
        let fatal = next(&mut socket);
        assert_eq!(fatal["type"], "fatal_error", "{fatal}");
        assert_eq!(fatal["error"]["code"], code, "{fatal}");
        assert_eq!(fatal["error"]["detail"], detail, "{fatal}");
        assert!(fatal["error"]["requestId"].as_str().is_some_and(is_request_id), "{fatal}");
        assert_eq!(closed(&mut socket), (1008, code.to_owned()));
    }
}

#[test]
fn no_client_hello_in_time_is_a_retryable_fatal_error() {
    let server = Dirs::new().start_with_env(&[("NIMBUS_TEST_HELLO_TIMEOUT_MS", "300")]);
    server.create_tenant("rt");
    let (mut socket, _) = upgrade(&server, "rt", "nimbus.v2");
    assert_eq!(next(&mut socket)["type"], "hello");
    let fatal = next(&mut socket);
    assert_eq!(fatal["error"]["code"], "protocol.hello_timeout", "{fatal}");
    assert_eq!(fatal["error"]["retryable"], true);
    assert_eq!(fatal["error"]["detail"], json!({ "timeoutMs": 300 }));
    assert_eq!(closed(&mut socket), (1008, "protocol.hello_timeout".to_owned()));
}

/// A WebSocket upgrade of `path_and_query` without any credential or tenant header.
fn upgrade_without_headers(server: &Server, path_and_query: &str) -> Socket {
    let (socket, response) = upgrade_to(server, path_and_query, &[("sec-websocket-protocol", "nimbus.v2")]);
    assert_eq!(response.status().as_u16(), 101);
    socket
}

fn authenticate_frame(token: &str) -> Value {
    json!({ "type": "Authenticate", "tokenType": "Admin", "value": token, "baseVersion": 0 })
}

/// The socket's next frame is a `fatal_error` with `code` and `detail`, then the close `close`
/// with the code as reason (nothing else before: no `hello` for an unauthenticated socket).
fn refused(socket: &mut Socket, code: &str, detail: &Value, close: u16) {
    let fatal = next(socket);
    assert_eq!(fatal["type"], "fatal_error", "{fatal}");
    assert_eq!(fatal["error"]["code"], code, "{fatal}");
    assert_eq!(&fatal["error"]["detail"], detail, "{fatal}");
    assert!(fatal["error"]["requestId"].as_str().is_some_and(is_request_id), "{fatal}");
    assert_eq!(closed(socket), (close, code.to_owned()));
}

#[test]
fn a_socket_without_headers_authenticates_with_its_first_frame() {
    let server = Server::start();
    server.create_tenant("rt");
    let id = server.insert("rt", "notes", &json!({ "text": "hi" }));
    let mut socket = upgrade_without_headers(&server, "/ws?tenant=rt");
    send(&mut socket, authenticate_frame(&server.token()));
    let hello = next(&mut socket);
    assert_eq!((hello["type"].as_str(), hello["protocol"].as_str()), (Some("hello"), Some("nimbus.v2")), "{hello}");
    send(&mut socket, json!({ "type": "client_hello", "protocol": "nimbus.v2" }));
    let (sub, data) = subscribe(&mut socket, "r1", table_query("notes"));
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["_id"], id);
    let second = server.insert("rt", "notes", &json!({ "text": "again" }));
    let push = next(&mut socket);
    assert_eq!(push["subscription_id"], sub, "{push}");
    assert_eq!(push["data"][1]["_id"], second, "{push}");
    // Authenticating once is all: a later `Authenticate` is refused without closing.
    send(&mut socket, authenticate_frame(&server.token()));
    let error = next(&mut socket);
    assert_eq!((error["type"].as_str(), error["error"]["code"].as_str()), (Some("error"), Some("auth.unauthorized")));
    sync(&mut socket);

    // Pipelined: the frames after `Authenticate` wait for it.
    let mut socket = upgrade_without_headers(&server, "/ws?tenant_id=rt");
    send(&mut socket, authenticate_frame(&server.token()));
    send(&mut socket, json!({ "type": "client_hello", "protocol": "nimbus.v2" }));
    send(&mut socket, json!({ "type": "subscribe", "request_id": "r1", "query": table_query("notes") }));
    assert_eq!(next(&mut socket)["type"], "hello");
    let first = next(&mut socket);
    assert_eq!(first["data"].as_array().map(Vec::len), Some(2), "{first}");

    // The deployment URL's socket too, its tenant from the path; a wrong token is refused there
    // as here.
    let mut socket = upgrade_without_headers(&server, "/convex/rt/ws");
    send(&mut socket, authenticate_frame(&server.token()));
    assert_eq!(next(&mut socket)["type"], "hello");
    let mut socket = upgrade_without_headers(&server, "/convex/rt/ws");
    send(&mut socket, authenticate_frame("nimbus_at_wrong"));
    refused(&mut socket, "auth.unauthorized", &json!({ "reason": "invalid_token" }), 1008);
    // Other sockets (a session's channels) still need the credential at the upgrade.
    let channel = server.request(
        "GET",
        "/api/sessions/session-x/channels/stdio/ws",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        None,
    );
    channel.expect_error(401, "auth.unauthorized");
}

#[test]
fn a_socket_without_headers_is_closed_unless_its_first_frame_authenticates() {
    let server = Server::start();
    server.create_tenant("rt");
    let token = server.token();
    let cases: [(Message, &str); 6] = [
        (Message::text(authenticate_frame("nimbus_at_wrong").to_string()), "invalid_token"),
        (Message::text(json!({ "type": "client_hello", "protocol": "nimbus.v2" }).to_string()), "missing_credential"),
        (Message::text(json!({ "type": "authenticate", "token": token }).to_string()), "missing_credential"),
        (
            Message::text(json!({ "type": "Authenticate", "tokenType": "User", "value": token }).to_string()),
            "unsupported_token_type",
        ),
        (Message::text("not json"), "missing_credential"),
        (Message::binary(vec![1, 2, 3]), "missing_credential"),
    ];
    for (frame, reason) in cases {
        let mut socket = upgrade_without_headers(&server, "/ws?tenant=rt");
        socket.send(frame).expect("send");
        refused(&mut socket, "auth.unauthorized", &json!({ "reason": reason }), 1008);
    }
    // A rotated token is told apart, as on HTTP.
    server.post_empty("/api/system/token/rotate").expect_status(200);
    let mut socket = upgrade_without_headers(&server, "/ws?tenant=rt");
    send(&mut socket, authenticate_frame(&token));
    refused(&mut socket, "auth.unauthorized", &json!({ "reason": "token_revoked" }), 1008);
}

#[test]
fn no_authenticate_frame_in_time_closes_the_socket() {
    let server = Dirs::new().start_with_env(&[("NIMBUS_TEST_WS_AUTH_TIMEOUT_MS", "300")]);
    server.create_tenant("rt");
    let mut socket = upgrade_without_headers(&server, "/ws?tenant=rt");
    refused(&mut socket, "auth.unauthorized", &json!({ "reason": "authenticate_timeout" }), 1008);
}

#[test]
fn the_tenant_may_be_named_by_tenant_in_the_query_string() {
    let server = Server::start();
    server.create_tenant("rt");
    let token = format!("Bearer {}", server.token());
    let (mut socket, _) =
        upgrade_to(&server, "/ws?tenant=rt", &[("authorization", &token), ("sec-websocket-protocol", "nimbus.v2")]);
    assert_eq!(next(&mut socket)["type"], "hello");
    send(&mut socket, json!({ "type": "client_hello", "protocol": "nimbus.v2" }));
    let id = server.insert("rt", "notes", &json!({ "text": "hi" }));
    let (_, data) = subscribe(&mut socket, "r1", table_query("notes"));
    assert_eq!(data[0]["_id"], id);

    // The same checks and errors as the other forms.
    let ws = [
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("authorization", &token),
        ("sec-websocket-protocol", "nimbus.v2"),
    ];
    server.request("GET", "/ws?tenant=missing", &ws, None).expect_error(404, "session.tenant_not_found");
    server.request("GET", "/ws?tenant=bad%20id", &ws, None).expect_field(400, "op.invalid_input", "tenant");
    server.request("GET", "/ws?tenant=_system", &ws, None).expect_field(400, "op.invalid_input", "tenant");

    // Without a credential, the tenant's existence is checked only once the socket has
    // authenticated: nobody learns which tenants exist without the token.
    let mut socket = upgrade_without_headers(&server, "/ws?tenant=missing");
    send(&mut socket, authenticate_frame("nimbus_at_wrong"));
    refused(&mut socket, "auth.unauthorized", &json!({ "reason": "invalid_token" }), 1008);
    let mut socket = upgrade_without_headers(&server, "/ws?tenant=missing");
    send(&mut socket, authenticate_frame(&server.token()));
    let fatal = next(&mut socket);
    assert_eq!(fatal["type"], "fatal_error", "{fatal}");
    assert_eq!(fatal["error"]["code"], "session.tenant_not_found", "{fatal}");
    assert_eq!(closed(&mut socket), (4404, "session.tenant_not_found".to_owned()));
}

#[test]
fn session_frames_are_answered_and_bad_requests_are_scoped() {
    let server = Server::start();
    server.create_tenant("rt");
    let mut socket = connect(&server, "rt");
    send(&mut socket, json!({ "type": "clear_auth" }));
    assert_eq!(next(&mut socket), json!({ "type": "authenticated", "is_authenticated": false }));
    send(&mut socket, json!({ "type": "authenticate", "token": "x" }));
    let error = next(&mut socket);
    assert_eq!((error["type"].as_str(), error["error"]["code"].as_str()), (Some("error"), Some("auth.unauthorized")));
    assert_eq!(error["error"]["detail"]["reason"], "authenticate_unsupported");
    send(&mut socket, json!({ "type": "shout" }));
    let error = next(&mut socket);
    assert_eq!(
        (error["type"].as_str(), error["error"]["code"].as_str()),
        (Some("error"), Some("protocol.invalid_json"))
    );
    assert!(error["error"]["detail"]["reason"].is_string(), "{error}");
    send(&mut socket, json!({ "type": "unsubscribe", "subscription_id": 99 }));
    let error = next(&mut socket);
    assert_eq!(error["error"]["code"], "session.unsubscribe_failed");
    assert_eq!(error["error"]["detail"], json!({ "subscriptionId": 99 }));

    let bad: [(Value, &str); 4] = [
        (json!({ "function": { "name": "messages:list", "args": {} } }), "function.not_found"),
        (json!({ "query": { "table": "bad name", "filters": [] } }), "op.invalid_input"),
        (
            json!({ "query": { "table": "t", "filters": [{ "field": "x", "op": "like", "value": 1 }] } }),
            "op.invalid_input",
        ),
        (json!({}), "op.invalid_input"),
    ];
    for (i, (body, code)) in bad.into_iter().enumerate() {
        let request_id = format!("bad{i}");
        let mut frame = json!({ "type": "subscribe", "request_id": request_id });
        frame.as_object_mut().expect("object").extend(body.as_object().expect("object").clone());
        send(&mut socket, frame);
        let error = next(&mut socket);
        assert_eq!(error["type"], "op.error", "{error}");
        assert_eq!(error["id"], request_id);
        assert_eq!(error["error"]["code"], code, "{error}");
        assert_eq!(error["error"]["requestId"], request_id);
    }
    // The socket is still usable.
    let (_, data) = subscribe(&mut socket, "ok", table_query("t"));
    assert!(data.is_empty());
}

#[test]
fn a_write_is_pushed_and_unsubscribe_stops_pushes() {
    let server = Server::start();
    server.create_tenant("rt");
    let mut socket = connect(&server, "rt");
    let (first, data) = subscribe(&mut socket, "r1", table_query("notes"));
    assert!(data.is_empty());
    let id = server.insert("rt", "notes", &json!({ "text": "hi" }));
    let push = next(&mut socket);
    assert_eq!(push["type"], "subscription_result");
    assert_eq!(push["subscription_id"], first);
    assert!(push.get("request_id").is_none(), "request_id only on the first result: {push}");
    assert_eq!(push["data"][0]["_id"], id);
    assert_eq!(push["data"][0]["text"], "hi");

    send(&mut socket, json!({ "type": "unsubscribe", "subscription_id": first }));
    sync(&mut socket);
    server.insert("rt", "notes", &json!({ "text": "after" }));
    // Had the first subscription still been live, its push would precede this one's result.
    let (second, data) = subscribe(&mut socket, "r2", table_query("notes"));
    assert_ne!(second, first);
    assert_eq!(data.len(), 2);
    sync(&mut socket);
}

#[test]
fn two_hundred_subscriptions_on_one_socket_all_get_results() {
    let server = Server::start();
    server.create_tenant("rt");
    let mut socket = connect(&server, "rt");
    for i in 0..200 {
        let query = json!({ "table": "n", "filters": [{ "field": "n", "op": "gte", "value": i }] });
        send(&mut socket, json!({ "type": "subscribe", "request_id": format!("r{i}"), "query": query }));
    }
    let mut ids = std::collections::BTreeSet::new();
    while ids.len() < 200 {
        let frame = next(&mut socket);
        assert_eq!(frame["type"], "subscription_result", "{frame}");
        assert!(frame["request_id"].is_string());
        ids.insert(frame["subscription_id"].as_u64().expect("id"));
    }
    server.insert("rt", "n", &json!({ "n": 1000 }));
    let mut pushed = std::collections::BTreeSet::new();
    while pushed.len() < 200 {
        let frame = next(&mut socket);
        assert_eq!(frame["data"].as_array().map(Vec::len), Some(1), "{frame}");
        pushed.insert(frame["subscription_id"].as_u64().expect("id"));
    }
    assert_eq!(pushed, ids);
}

#[test]
fn a_slow_consumer_blocks_neither_writes_nor_other_sockets() {
    let server = Server::start();
    server.create_tenant("rt");
    let mut slow = connect(&server, "rt");
    subscribe(&mut slow, "big", table_query("big"));
    let mut other = connect(&server, "rt");
    subscribe(&mut other, "small", table_query("small"));
    // The slow client stops reading; every result it is sent is the whole (growing) table, so
    // its socket buffers fill long before the writes end.
    let blob = "x".repeat(100 * 1024);
    const WRITES: usize = 60;
    for i in 0..WRITES {
        server.insert("rt", "big", &json!({ "i": i, "blob": blob }));
    }
    let id = server.insert("rt", "small", &json!({ "ping": true }));
    let push = next(&mut other);
    assert_eq!(push["data"][0]["_id"], id, "{push}");
    // Coalescing: once it reads again, the slow client converges to the latest state.
    loop {
        let frame = next(&mut slow);
        if frame["data"].as_array().map(Vec::len) == Some(WRITES) {
            break;
        }
    }
}

#[test]
fn invalidation_is_precise() {
    let server = Server::start();
    server.create_tenant("rt");
    let mut socket = connect(&server, "rt");
    let open = json!({ "table": "tasks", "filters": [{ "field": "status", "op": "eq", "value": "open" }] });
    let (sub, _) = subscribe(&mut socket, "r1", open);
    let before = stats(&server, "rt");

    server.insert("rt", "other", &json!({ "status": "open" }));
    let done = server.insert("rt", "tasks", &json!({ "status": "done" }));
    server
        .patch_json(&format!("/api/tenants/rt/documents/tasks/{done}"), &json!({ "patch": { "n": 1 } }))
        .expect_status(200);
    let entering = server.insert("rt", "tasks", &json!({ "status": "open" }));
    // Commits are processed in order: this push proves the earlier ones were handled too.
    let push = next(&mut socket);
    assert_eq!(push["subscription_id"], sub);
    assert_eq!(push["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(push["data"][0]["_id"], entering);
    let after = stats(&server, "rt");
    assert_eq!(delta(&before, &after, "commits_seen"), 4, "{before} {after}");
    assert_eq!(delta(&before, &after, "skipped_other_table"), 1, "{before} {after}");
    assert_eq!(delta(&before, &after, "candidates_considered"), 3, "{before} {after}");
    assert_eq!(delta(&before, &after, "skipped_by_filter"), 2, "{before} {after}");
    assert_eq!(delta(&before, &after, "evaluations"), 1, "{before} {after}");
    assert_eq!(delta(&before, &after, "pushes"), 1, "{before} {after}");

    // An evaluation whose result equals the last one sent is not pushed.
    let first =
        json!({ "table": "tasks", "filters": [{ "field": "status", "op": "eq", "value": "open" }], "limit": 1 });
    let (limited, data) = subscribe(&mut socket, "r2", first);
    assert_eq!(data[0]["_id"], entering);
    let before = stats(&server, "rt");
    server.insert("rt", "tasks", &json!({ "status": "open" }));
    // Both subscriptions re-run; only the unlimited one's result changed.
    let push = next(&mut socket);
    assert_eq!(push["subscription_id"], sub, "{push}");
    assert_eq!(push["data"].as_array().map(Vec::len), Some(2));
    // The limited query's re-run is its own task: wait until it has found its result unchanged.
    until("the limited query's re-run", || delta(&before, &stats(&server, "rt"), "skipped_duplicate") == 1);
    sync(&mut socket);
    let after = stats(&server, "rt");
    assert_eq!(delta(&before, &after, "evaluations"), 2, "{before} {after}");
    assert_eq!(delta(&before, &after, "pushes"), 1, "{before} {after}");
    assert_eq!(delta(&before, &after, "skipped_duplicate"), 1, "{before} {after}");
    let _ = limited;
}

#[test]
fn deleting_the_tenant_closes_its_sockets_with_4404() {
    let server = Server::start();
    server.create_tenant("rt");
    let mut socket = connect(&server, "rt");
    subscribe(&mut socket, "r1", table_query("t"));
    server.delete("/api/tenants/rt").expect_status(204);
    let fatal = next(&mut socket);
    assert_eq!(fatal["type"], "fatal_error");
    assert_eq!(fatal["error"]["code"], "session.tenant_not_found");
    assert_eq!(closed(&mut socket), (4404, "session.tenant_not_found".to_owned()));
}

/// Polls `condition` until it holds; panics after 60 s (a safety net, not a timing assertion).
fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The next frame read from the raw TCP stream (server frames are unmasked): opcode and payload.
fn raw_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).expect("frame header");
    let length = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n).expect("length");
            u16::from_be_bytes(n) as usize
        }
        127 => {
            let mut n = [0u8; 8];
            stream.read_exact(&mut n).expect("length");
            u64::from_be_bytes(n) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).expect("payload");
    (head[0] & 0x0f, payload)
}

pub(crate) fn subscription_error(frame: &Value) -> &Value {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["error"]["code"], "session.subscription_error", "{frame}");
    &frame["error"]["detail"]
}

#[test]
fn a_policy_change_drops_that_tables_subscriptions() {
    let server = Server::start();
    server.create_tenant("rt");
    let mut socket = connect(&server, "rt");
    let (tasks, _) = subscribe(&mut socket, "r1", table_query("tasks"));
    let (other, _) = subscribe(&mut socket, "r2", table_query("other"));
    let allow = json!({ "require_authenticated": false, "predicates": [] });
    let policy = json!({ "read": allow, "create": allow, "update": allow, "delete": allow });
    let schema = json!({ "table": "tasks", "fields": [], "indexes": [], "access_policy": policy });
    server.put_json("/api/tenants/rt/schema/tasks", &schema).expect_status(204);

    let frame = next(&mut socket);
    assert_eq!(
        subscription_error(&frame),
        &json!({ "subscriptionId": tasks, "dropped": true, "reason": "policy_changed" })
    );
    assert_eq!(stats(&server, "rt")["subscriptions"], 1);
    // The dropped subscription is gone; the other table's is untouched.
    send(&mut socket, json!({ "type": "unsubscribe", "subscription_id": tasks }));
    assert_eq!(next(&mut socket)["error"]["code"], "session.unsubscribe_failed");
    let id = server.insert("rt", "other", &json!({ "n": 1 }));
    let push = next(&mut socket);
    assert_eq!((&push["subscription_id"], &push["data"][0]["_id"]), (&json!(other), &json!(id)), "{push}");

    // Resubscribing works, and a schema change that keeps the policy drops nothing: the next
    // frame is the push for the write that follows it.
    let (again, _) = subscribe(&mut socket, "r3", table_query("tasks"));
    let schema = json!({ "table": "tasks", "fields": [{ "name": "n", "field_type": "number", "required": false }], "indexes": [],
                         "access_policy": policy });
    server.put_json("/api/tenants/rt/schema/tasks", &schema).expect_status(204);
    let id = server.insert("rt", "tasks", &json!({ "n": 2 }));
    let push = next(&mut socket);
    assert_eq!((&push["subscription_id"], &push["data"][0]["_id"]), (&json!(again), &json!(id)), "{push}");

    // Removing the schema removes the policy: dropped again.
    server.delete("/api/tenants/rt/schema/tasks").expect_status(204);
    let frame = next(&mut socket);
    assert_eq!(subscription_error(&frame)["subscriptionId"], again);
    assert_eq!(subscription_error(&frame)["reason"], "policy_changed");
}

#[test]
fn a_result_over_16_mib_is_dropped_with_result_too_large() {
    let server = Server::start();
    server.create_tenant("rt");
    let blob = "x".repeat(1000 * 1024);
    for i in 0..17 {
        server.insert("rt", "big", &json!({ "i": i, "blob": blob }));
    }
    let mut socket = connect(&server, "rt");
    send(&mut socket, json!({ "type": "subscribe", "request_id": "r1", "query": table_query("big") }));
    let frame = next(&mut socket);
    assert_eq!(
        subscription_error(&frame),
        &json!({ "subscriptionId": 1, "dropped": true, "reason": "result_too_large" })
    );
    assert_eq!(stats(&server, "rt")["subscriptions"], 0);
    // The socket goes on serving.
    let (_, data) = subscribe(&mut socket, "r2", json!({ "table": "big", "filters": [], "limit": 1 }));
    assert_eq!(data.len(), 1);
}

#[test]
fn a_socket_over_16_mib_for_the_grace_period_loses_its_subscriptions_with_notice() {
    let server = Dirs::new().start_with_env(&[("NIMBUS_TEST_WS_BACKPRESSURE_GRACE_MS", "200")]);
    server.create_tenant("rt");
    // 40 subscriptions of ~800 KiB each: 32 MB queued for a client that does not read, more
    // than the socket buffers and the 16 MiB high-water mark together.
    const SUBSCRIPTIONS: u64 = 40;
    let blob = "x".repeat(800 * 1024);
    for k in 0..SUBSCRIPTIONS {
        server.insert("rt", "big", &json!({ "k": k, "blob": blob }));
    }
    let mut socket = connect(&server, "rt");
    // A first subscription, registered for sure (its result was read): from here the gauge of
    // live subscriptions can only reach 0 by the drop.
    let (first, _) = subscribe(&mut socket, "small", table_query("small"));
    for k in 0..SUBSCRIPTIONS {
        let query = json!({ "table": "big", "filters": [{ "field": "k", "op": "eq", "value": k }] });
        send(&mut socket, json!({ "type": "subscribe", "request_id": format!("r{k}"), "query": query }));
    }
    until("the subscriptions to be dropped", || stats(&server, "rt")["subscriptions"] == 0);

    // Reading again: results sent before the drop, then one notice per subscription.
    let mut dropped = Vec::new();
    while (dropped.len() as u64) < SUBSCRIPTIONS + 1 {
        let frame = next(&mut socket);
        if frame["type"] == "subscription_result" {
            continue;
        }
        let detail = subscription_error(&frame);
        assert_eq!((&detail["dropped"], &detail["reason"]), (&json!(true), &json!("backpressure")), "{frame}");
        dropped.push(detail["subscriptionId"].as_u64().expect("id"));
    }
    dropped.sort_unstable();
    assert_eq!(dropped, (first..=first + SUBSCRIPTIONS).collect::<Vec<_>>());
    sync(&mut socket);
}

#[test]
fn an_inbound_frame_over_1_mib_closes_with_1009() {
    use std::io::Write;
    let server = Server::start();
    server.create_tenant("rt");
    let mut socket = connect(&server, "rt");
    sync(&mut socket);
    // A masked text frame header announcing 2 MiB; the server refuses it from the header alone.
    let mut header = vec![0x81, 0xff];
    header.extend_from_slice(&(2u64 * 1024 * 1024).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    socket.get_mut().write_all(&header).expect("write the header");
    assert_eq!(closed(&mut socket), (1009, "message_too_big".to_owned()));
}

#[test]
fn a_silent_peer_is_closed_with_4408() {
    let server =
        Dirs::new().start_with_env(&[("NIMBUS_TEST_WS_PING_MS", "100"), ("NIMBUS_TEST_WS_DEAD_PEER_MS", "300")]);
    server.create_tenant("rt");
    let socket = connect(&server, "rt");
    // From here the client reads raw bytes and never answers the server's pings.
    let mut stream = socket.into_inner();
    let mut pings = 0;
    loop {
        let (opcode, payload) = raw_frame(&mut stream);
        match opcode {
            0x9 => pings += 1,
            0x8 => {
                assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 4408);
                assert_eq!(&payload[2..], b"heartbeat_timeout");
                break;
            }
            other => panic!("unexpected opcode {other}"),
        }
    }
    assert!(pings >= 1, "the server pings before it gives up");
}

#[test]
fn a_failed_re_run_is_reported_and_the_next_one_resumes_results() {
    let server = Server::start();
    server.create_tenant("rt");
    let mut socket = connect(&server, "rt");
    let (sub, _) = subscribe(&mut socket, "r1", table_query("tasks"));
    let bad = server.insert("rt", "tasks", &json!({ "n": 1 }));
    assert_eq!(next(&mut socket)["data"].as_array().map(Vec::len), Some(1));

    // Damage the stored document behind the server's back, as another process could.
    let file = server.dirs().data().join("tenants/rt.sqlite3");
    let conn = rusqlite::Connection::open(&file).expect("open the tenant file");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    let fields: String =
        conn.query_row("SELECT fields FROM documents WHERE id = ?1", [&bad], |row| row.get(0)).expect("row");
    conn.execute("UPDATE documents SET fields = '{not json' WHERE id = ?1", [&bad]).expect("corrupt");

    // A write re-runs the query, which now fails: reported, the subscription kept.
    server.insert("rt", "tasks", &json!({ "n": 2 }));
    let frame = next(&mut socket);
    let detail = subscription_error(&frame);
    assert_eq!((&detail["subscriptionId"], &detail["dropped"]), (&json!(sub), &json!(false)), "{frame}");
    assert_eq!(detail["reason"], "evaluation_failed");
    assert_eq!(detail["cause"]["code"], "service.serialization", "{frame}");
    assert_eq!(stats(&server, "rt")["subscriptions"], 1);

    // Repaired, the next write's re-run succeeds and results resume.
    conn.execute("UPDATE documents SET fields = ?1 WHERE id = ?2", [&fields, &bad]).expect("repair");
    server.insert("rt", "tasks", &json!({ "n": 3 }));
    let push = next(&mut socket);
    assert_eq!(push["subscription_id"], sub, "{push}");
    assert_eq!(push["data"].as_array().map(Vec::len), Some(3), "{push}");
}

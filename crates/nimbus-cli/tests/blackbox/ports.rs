//! The ports route (networking: inbound): HTTP and WebSocket into a port a sandbox listens on,
//! through a connection its supervisor opens inside the sandbox's network namespace. Real parts:
//! busybox `httpd` (files and a CGI script) and a static WebSocket echo server built here, both
//! inside a real sandbox; a hostile "server" that answers garbage.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

use crate::harness::{wait_for, wait_for_or};
use crate::sandboxes::{Fixture, TENANT, id_of};

/// The CGI script: what the sandbox's server saw of the request, then its body.
const ECHO_CGI: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-From-Sandbox: yes\\r\\n\\r\\n'\n\
    echo \"method=$REQUEST_METHOD auth=[$HTTP_AUTHORIZATION] prefix=$HTTP_X_FORWARDED_PREFIX query=$QUERY_STRING\"\n\
    head -c \"${CONTENT_LENGTH:-0}\"\n";

fn build_ws_echo(dir: &Path) -> Vec<u8> {
    let binary = dir.join("ws_echo");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/blackbox/ws_echo.c");
    let out = Command::new("cc").args(["-static", "-O1", "-o"]).arg(&binary).arg(&source).output().expect("run cc");
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&binary).expect("read ws_echo")
}

#[test]
fn http_and_websocket_reach_a_sandbox_port_and_garbage_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let ws_echo = build_ws_echo(work.path());
    let fx = Fixture::start();
    // The main process: an HTTP server on 8080 (a page, a 1 MiB file, a CGI echo), a "server" on
    // 8081 that answers any connection with 64 KiB of garbage, and (uploaded below) a WebSocket
    // echo on 9000.
    let script = "mkdir -p /www/cgi-bin && echo served > /www/index.html && dd if=/dev/zero of=/www/big bs=1024 count=1024 2>/dev/null \
         && printf '%s' \"$ECHO\" > /www/cgi-bin/echo && chmod 755 /www/cgi-bin/echo \
         && (while true; do head -c 65536 /dev/urandom | nc -l -p 8081; done &) \
         && exec httpd -f -p 127.0.0.1:8080 -h /www";
    let sandbox = id_of(
        &fx.create(&["sh", "-c", script], json!({ "spec": { "process": { "env": [format!("ECHO={ECHO_CGI}")] } } })),
    );
    let port = |port: &str, rest: &str| format!("/api/tenants/{TENANT}/sandboxes/{sandbox}/ports/{port}{rest}");
    let last = std::cell::RefCell::new(None);
    let page = wait_for_or(
        "the sandbox's httpd to answer through the ports route",
        || {
            let resp = fx.server().authed_foreign("GET", &port("8080", "/index.html"), None);
            if resp.status == 200 {
                return Some(resp);
            }
            last.replace(Some(format!("{resp}")));
            None
        },
        || {
            let record = fx.server().get(&fx.path(&format!("/{sandbox}")));
            let logs = fx.logs(&sandbox);
            format!("last answer: {:?}\nsandbox: {}\nlogs: {logs:?}", last.borrow(), record.json)
        },
    );
    assert_eq!(page.body, b"served\n");
    // The sandbox lists what it listens on, with the route to each, but not its proxy listener.
    let listed = fx.server().get(&fx.path(&format!("/{sandbox}")));
    let endpoints = listed.json["status"]["endpoints"].as_array().expect("endpoints").clone();
    let http = endpoints.iter().find(|e| e["port"] == 8080).unwrap_or_else(|| panic!("8080 in {endpoints:?}"));
    assert_eq!(http["url"], port("8080", "/"));
    assert_eq!(http["name"], "tcp-8080");
    assert!(endpoints.iter().all(|e| e["port"] != 3128), "the proxy listener is not an endpoint");
    // The port's root, with or without the slash, is the server's `/`.
    for root in ["", "/"] {
        assert_eq!(fx.server().authed_foreign("GET", &port("8080", root), None).body, b"served\n", "{root:?}");
    }

    // Streamed both ways: a 1 MiB file out; a body in, seen by the sandbox's CGI with the query,
    // without the admin token, and with the route's prefix.
    let big = fx.server().authed("GET", &port("8080", "/big"), &[], None);
    assert_eq!((big.status, big.body.len()), (200, 1024 * 1024));
    let echoed = fx.server().authed("POST", &port("8080", "/cgi-bin/echo?x=1"), &[], Some(b"hello body"));
    assert_eq!(echoed.status, 200, "{}", String::from_utf8_lossy(&echoed.body));
    assert_eq!(echoed.header("x-from-sandbox"), Some("yes"));
    let expected = format!("method=POST auth=[] prefix={} query=x=1\nhello body", port("8080", ""));
    assert_eq!(String::from_utf8_lossy(&echoed.body), expected);
    // The sandbox's own errors pass through as they are, not as Nimbus envelopes.
    let missing = fx.server().authed_foreign("GET", &port("8080", "/nope"), None);
    assert_eq!(missing.status, 404);
    assert!(
        !String::from_utf8_lossy(&missing.body).contains("\"error\""),
        "{}",
        String::from_utf8_lossy(&missing.body)
    );

    // What Nimbus refuses is enveloped: no token, a bad port, nothing listening, garbage.
    assert_eq!(fx.server().request("GET", &port("8080", "/index.html"), &[], None).status, 401);
    for bad in ["0", "65536", "http"] {
        let refused = fx.server().authed("GET", &port(bad, ""), &[], None);
        assert_eq!((refused.status, refused.code()), (400, "op.invalid_input"), "port {bad}");
    }
    let closed = fx.server().authed("GET", &port("8082", "/"), &[], None);
    assert_eq!((closed.status, closed.code()), (502, "sandbox.port_unreachable"));
    assert_eq!(closed.detail()["port"], 8082);
    let garbage = wait_for("the garbage server to listen", || {
        let resp = fx.server().authed("GET", &port("8081", "/"), &[], None);
        (resp.status == 502 && resp.detail()["reason"].as_str().is_some_and(|r| r.starts_with("not an HTTP response")))
            .then_some(resp)
    });
    assert_eq!(garbage.code(), "sandbox.port_unreachable");
    fx.server().get("/health").expect_status(200);

    // WebSocket: the upgrade is relayed, then messages both ways, a ping, and the close.
    let opened = fx.server().post_json(
        "/api/sessions",
        &json!({ "tenantId": TENANT, "target": { "sandbox": { "id": sandbox } }, "channels": ["exec", "files"] }),
    );
    opened.expect_status(201);
    let session = opened.json["metadata"]["id"].as_str().expect("metadata.id").to_owned();
    fx.server()
        .authed("PUT", &format!("/api/sessions/{session}/files?path=/tmp/ws_echo&mode=0755"), &[], Some(&ws_echo))
        .expect_status(200);
    let spawned =
        fx.server().post_json(&format!("/api/sessions/{session}/exec"), &json!({ "argv": ["/tmp/ws_echo", "9000"] }));
    spawned.expect_status(201);
    let url = format!("ws://127.0.0.1:{}{}", fx.server().port, port("9000", "/echo"));
    let mut socket = wait_for("the WebSocket echo to accept through the ports route", || {
        let mut request = url.as_str().into_client_request().expect("request");
        let token = format!("Bearer {}", fx.server().token());
        request.headers_mut().insert("authorization", token.parse().expect("header"));
        let stream = TcpStream::connect(("127.0.0.1", fx.server().port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        tungstenite::client::client(request, stream).ok().map(|(socket, _)| socket)
    });
    socket.send(Message::text("hello sandbox")).expect("send text");
    assert_eq!(socket.read().expect("echo"), Message::text("hello sandbox"));
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    socket.send(Message::binary(blob.clone())).expect("send binary");
    assert_eq!(socket.read().expect("echo"), Message::binary(blob));
    socket.close(None).expect("close");
    loop {
        match socket.read() {
            Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break,
            Ok(_) => {}
            Err(err) => panic!("closing: {err}"),
        }
    }
    fx.delete(&sandbox);
}

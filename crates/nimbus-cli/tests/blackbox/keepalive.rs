//! Keep-alive after an early answer (conventions §Transport): a request answered before its body
//! was read (a 405, a 415, a missing parameter, an unknown path, a missing token) leaves the
//! connection usable. A body up to the drain bound is read and discarded, so the next request on
//! the same connection is served; a larger one, or one never solicited (`Expect: 100-continue`),
//! gets `Connection: close` and the connection then ends cleanly, never with a reset while the
//! client is still sending or reading.

use nimbus_core::limits::{HTTP_DRAIN_MAX_BYTES, MAX_JSON_BODY_BYTES};
use serde_json::json;

use crate::harness::{Framing, KeepAliveConn, Server};

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];
const TEXT: &[(&str, &str)] = &[("Content-Type", "text/plain")];
const NONE: &[(&str, &str)] = &[];

/// The default body: more than the server reads with the request head, so it is still arriving
/// when an early answer is ready, and within the drain bound.
const BODY_BYTES: usize = 32 * 1024;
const _: () = assert!(BODY_BYTES as u64 <= HTTP_DRAIN_MAX_BYTES);

/// What the connection must do after the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// Stays open: the next request on it is served.
    Open,
    /// `Connection: close` on the answer, then a clean end of stream.
    Closed,
}

/// One row: a request with a body, the status it must get, and what happens to the connection.
struct Case {
    method: &'static str,
    path: String,
    headers: &'static [(&'static str, &'static str)],
    /// Whether the admin token is sent.
    token: bool,
    body_bytes: usize,
    framing: Framing,
    status: u16,
    after: After,
}

fn case(
    method: &'static str,
    path: impl Into<String>,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
) -> Case {
    Case {
        method,
        path: path.into(),
        headers,
        token: true,
        body_bytes: BODY_BYTES,
        framing: Framing::Length,
        status,
        after: After::Open,
    }
}

impl Case {
    fn without_token(mut self) -> Case {
        self.token = false;
        self
    }

    fn body(mut self, bytes: usize) -> Case {
        self.body_bytes = bytes;
        self
    }

    fn framing(mut self, framing: Framing) -> Case {
        self.framing = framing;
        self
    }

    /// The answer must announce the close.
    fn closes(mut self) -> Case {
        self.after = After::Closed;
        self
    }

    fn what(&self) -> String {
        format!("{} {} ({} body bytes, {:?})", self.method, self.path, self.body_bytes, self.framing)
    }
}

/// Sends the bad request on a fresh connection, then checks the connection: a second request
/// (`GET /health`) is served on it, or the close was announced and the server ends it cleanly.
fn check(server: &Server, case: &Case) {
    let what = case.what();
    let auth = format!("Bearer {}", server.token());
    let mut headers = Vec::new();
    if case.token {
        headers.push(("Authorization", auth.as_str()));
    }
    headers.extend_from_slice(case.headers);
    let body = vec![b'x'; case.body_bytes];

    let mut conn = KeepAliveConn::open(server).unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    let answer = conn
        .send(case.method, &case.path, &headers, &body, case.framing)
        .unwrap_or_else(|e| panic!("{what}: no complete answer: {e}"));
    answer.resp.expect_status(case.status);
    if let Err(e) = &answer.sent {
        panic!("{what}: the server reset the connection while the body was being sent: {e}");
    }
    let after = if answer.announces_close() { After::Closed } else { After::Open };
    assert_eq!(after, case.after, "{what}: connection after the answer: {}", answer.resp);
    match after {
        After::Closed => {
            let rest = conn.read_to_close().unwrap_or_else(|e| panic!("{what}: no clean close after the answer: {e}"));
            assert!(rest.is_empty(), "{what}: {} bytes after an answer that announced the close", rest.len());
        }
        After::Open => {
            let next = conn
                .send("GET", "/health", &[], &[], Framing::Length)
                .unwrap_or_else(|e| panic!("{what}: the next request on the connection failed: {e}"));
            next.resp.expect_status(200);
            assert_eq!(next.resp.json, json!({ "ok": true }), "{what}: health answer");
        }
    }
}

#[test]
fn early_answers_leave_the_connection_usable_on_every_route_family() {
    let server = Server::start();
    server.create_tenant("t");
    let id = server.insert("t", "items", &json!({ "a": 1 }));
    let over = usize::try_from(HTTP_DRAIN_MAX_BYTES).expect("bound fits usize") + 64 * 1024;

    let cases = vec![
        // Tenants: a delete reads no body; a create reads it, then refuses the content type.
        case("DELETE", "/api/tenants/nope", NONE, 404),
        case("POST", "/api/tenants", TEXT, 415),
        // Documents: a delete reads no body; a list ignores the body it was sent.
        case("DELETE", "/api/tenants/t/documents/items/nope", NONE, 404),
        case("GET", "/api/tenants/t/documents/items", NONE, 200),
        case("PATCH", format!("/api/tenants/nope/documents/items/{id}"), JSON, 404),
        // Query: wrong method; a body that is not JSON.
        case("GET", "/api/tenants/t/query", NONE, 405),
        case("POST", "/api/tenants/t/query", JSON, 400),
        // Schema.
        case("GET", "/api/tenants/t/schema/bad%20name", NONE, 400),
        case("DELETE", "/api/tenants/nope/schema/items", NONE, 404),
        // Functions.
        case("GET", "/api/tenants/nope/functions", NONE, 404),
        case("POST", "/api/tenants/t/functions/call", TEXT, 415),
        // Scheduling.
        case("DELETE", "/api/tenants/t/schedule/nope", NONE, 404),
        case("GET", "/api/tenants/t/crons/nope", NONE, 404),
        // Sandboxes: validation fails before any container is involved.
        case("POST", "/api/tenants/t/sandboxes", JSON, 400),
        case("DELETE", "/api/tenants/nope/sandboxes/nope", NONE, 404),
        // Sessions: a files PUT without `path` answers before reading the content.
        case("PUT", "/api/sessions/ses_nope/files", NONE, 400),
        case("POST", "/api/sessions", JSON, 400),
        // Services.
        case("DELETE", "/api/tenants/t/services/nope", NONE, 400),
        case("GET", "/api/tenants/nope/services/nope", NONE, 404),
        // Images: the content type is refused before the archive is read.
        case("POST", "/api/images/import", TEXT, 415),
        // Convex deployment URL.
        case("POST", "/convex/nope/query", JSON, 404),
        // Routing and authentication: unknown path, wrong method, missing token.
        case("POST", "/nope", JSON, 404),
        case("PUT", "/health", JSON, 405),
        case("GET", "/health", NONE, 200),
        case("POST", "/api/tenants", JSON, 401).without_token(),
        // A chunked body within the bound is drained too.
        case("PUT", "/health", NONE, 405).framing(Framing::Chunked),
        case("POST", "/api/images/import", TEXT, 415).framing(Framing::Chunked),
        // A small body, likely read with the head.
        case("PUT", "/health", NONE, 405).body(4 * 1024),
        // Past the drain bound: the close is announced, and the rest of the body is still read so
        // the client finishes sending and reads the answer before a clean close.
        case("PUT", "/health", NONE, 405).body(over).closes(),
        case("POST", "/api/images/import", TEXT, 415).body(over).closes(),
        case("PUT", "/api/sessions/ses_nope/files", NONE, 400).body(over).closes(),
        case("PUT", "/health", NONE, 405).body(over).framing(Framing::Chunked).closes(),
        // A declared size over the JSON limit: refused before reading, the whole body discarded.
        case("POST", "/api/tenants", JSON, 413).body(MAX_JSON_BODY_BYTES + 1).closes(),
        // A body the client offered with `Expect: 100-continue` and the server never asked for:
        // it cannot be told from the next request, so the connection closes.
        case("PUT", "/health", NONE, 405).framing(Framing::ExpectContinue).closes(),
        case("POST", "/api/images/import", TEXT, 415).framing(Framing::ExpectContinue).closes(),
    ];
    for case in &cases {
        check(&server, case);
    }
}

/// Several bad requests in a row on one connection, each followed by a good one.
#[test]
fn one_connection_survives_a_run_of_early_answers() {
    let server = Server::start();
    let auth = format!("Bearer {}", server.token());
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "text/plain")];
    let body = vec![b'x'; 48 * 1024];
    let mut conn = KeepAliveConn::open(&server).expect("connect");
    for round in 0..20 {
        let bad = conn
            .send("POST", "/api/images/import", &headers, &body, Framing::Length)
            .unwrap_or_else(|e| panic!("round {round}: bad request: {e}"));
        bad.resp.expect_status(415);
        assert!(bad.sent.is_ok() && !bad.announces_close(), "round {round}: {}", bad.resp);
        let good = conn
            .send("GET", "/health", &[], &[], Framing::Length)
            .unwrap_or_else(|e| panic!("round {round}: next request: {e}"));
        good.resp.expect_status(200);
    }
}

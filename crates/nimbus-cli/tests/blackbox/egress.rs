//! Sandbox egress (networking.md) with real parts: the host's curl inside real sandboxes, loopback
//! HTTP and HTTPS upstreams on host addresses (127.0.0.2 and up; inside a sandbox those are its
//! own, empty loopback), a test CA the server is told to trust upstream, and the decision log.
//! Every request below is made from inside a sandbox, as a hostile tenant's code would.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::harness::Dirs;
use crate::sandboxes::{Fixture, TENANT, id_of};
use crate::syscalls::exec;
use crate::upstream::{TestCa, Upstream, push_curl_image};

/// The secret value no part of the sandbox may ever see.
const SECRET: &str = "s3cr3t-VALUE-9f1c";

/// A fixture whose server runs with `args`, and the curl image pushed to its registry.
fn fixture(args: Vec<String>) -> (Fixture, String) {
    let fx = Fixture::on(Dirs::new(), move |dirs: &Arc<Dirs>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dirs.try_start_with_args(&args).expect("server starts")
    });
    push_curl_image(&fx.registry, "nimbus-test/curl:1");
    let image = format!("{}/nimbus-test/curl:1", fx.registry.host());
    (fx, image)
}

/// Creates a curl sandbox that sleeps, with `network`; returns its id and an exec session.
fn curl_sandbox(fx: &Fixture, image: &str, network: Value) -> (String, String) {
    let body = json!({ "spec": {
        "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": image } },
        "process": { "argv": ["sleep", "100000"] },
        "network": network } });
    let created = fx.server().post_json(&fx.path(""), &body);
    created.expect_status(201);
    let id = id_of(&created.json);
    fx.server().get(&fx.path(&format!("/{id}?waitFor=ready"))).expect_status(200);
    let session = json!({ "tenantId": TENANT, "target": { "sandbox": { "id": id } }, "channels": ["exec"] });
    let opened = fx.server().post_json("/api/sessions", &session);
    opened.expect_status(201);
    (id, opened.json["metadata"]["id"].as_str().expect("session id").to_owned())
}

/// Runs `sh -c script` in the sandbox; returns (exit code, stdout, stderr).
fn sh(fx: &Fixture, session: &str, script: &str) -> (i64, String, String) {
    let out = exec(fx, session, &["sh", "-c", script]);
    let text = |k: &str| out[k].as_str().unwrap_or_default().to_owned();
    (out["exitCode"].as_i64().expect("exit code"), text("stdout"), text("stderr"))
}

/// The sandbox's decision log.
fn decisions(fx: &Fixture, id: &str) -> Vec<Value> {
    let resp = fx.server().get(&fx.path(&format!("/{id}/egress")));
    resp.expect_status(200);
    assert_eq!(resp.header("content-type"), Some("application/x-ndjson"));
    resp.text().lines().map(|l| serde_json::from_str(l).expect("an NDJSON line")).collect()
}

fn find<'a>(log: &'a [Value], what: impl Fn(&Value) -> bool, describe: &str) -> &'a Value {
    log.iter().find(|e| what(e)).unwrap_or_else(|| panic!("no decision {describe} in {log:#?}"))
}

#[test]
fn allowed_hosts_are_reached_through_the_proxy_and_everything_else_is_refused_and_logged() {
    let ca = TestCa::new();
    let work = tempfile::tempdir().expect("tempdir");
    let ca_file = work.path().join("upstream-ca.pem");
    ca.write_pem(&ca_file);
    let plain = Upstream::http([127, 0, 0, 2], "plain");
    let api = Upstream::https([127, 0, 0, 3], "api", &ca, &["127.0.0.3"]);
    let tunnel = Upstream::https([127, 0, 0, 4], "tunnel", &ca, &["127.0.0.4"]);
    // A host whose certificate comes from a CA the server was not told to trust.
    let stranger = TestCa::named("Not trusted upstream CA");
    let untrusted = Upstream::https([127, 0, 0, 7], "untrusted", &stranger, &["127.0.0.7"]);
    let closed = crate::registry::free_port();
    let (fx, image) =
        fixture(vec!["--egress-allow-internal".into(), "--egress-upstream-ca".into(), ca_file.display().to_string()]);
    fx.server()
        .put_json(&format!("/api/tenants/{TENANT}/secrets/api-token"), &json!({ "value": SECRET }))
        .expect_status(201);
    let network = json!({ "egress": {
        "allow": [
            { "host": "127.0.0.2", "ports": [plain.port()] },
            { "host": "127.0.0.3", "ports": [api.port()] },
            { "host": "127.0.0.4", "ports": [tunnel.port()] },
            { "host": "127.0.0.5", "ports": [closed] },
            { "host": "127.0.0.7", "ports": [untrusted.port()] } ],
        "credentials": [
            { "host": "127.0.0.3", "header": "Authorization", "secret": "api-token", "prefix": "Bearer " },
            { "host": "127.0.0.2", "header": "X-Api-Key", "secret": "api-token" },
            { "host": "127.0.0.7", "header": "Authorization", "secret": "api-token" } ] } });
    let (id, session) = curl_sandbox(&fx, &image, network);

    // Plain HTTP through the proxy variables: the upstream sees an ordinary request.
    let (code, out, err) = sh(&fx, &session, &format!("curl -sS http://127.0.0.2:{}/hello", plain.port()));
    assert_eq!((code, out.as_str()), (0, "upstream plain: GET /hello\n"), "{err}");
    let seen = plain.requests();
    assert_eq!(seen.last().expect("a request").header("host"), Some(format!("127.0.0.2:{}", plain.port()).as_str()));
    assert!(seen.iter().all(|r| r.header("proxy-connection").is_none() && r.header("authorization").is_none()));
    // A plain-HTTP request to a credential host gets its header the same way.
    assert_eq!(seen.last().expect("a request").header("x-api-key"), Some(SECRET));

    // HTTPS to the credential host: the proxy completes TLS with a certificate the sandbox trusts
    // (its bundle has the Nimbus CA), adds the header and re-encrypts to the verified upstream.
    let (code, out, err) = sh(&fx, &session, &format!("curl -sS https://127.0.0.3:{}/v1/me", api.port()));
    assert_eq!((code, out.as_str()), (0, "upstream api: GET /v1/me\n"), "{err}");
    let request = api.requests().pop().expect("the api got the request");
    assert_eq!(request.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    // A header the sandbox sends itself is replaced, never doubled.
    let (code, _, err) = sh(
        &fx,
        &session,
        &format!("curl -sS -H 'Authorization: Bearer forged' https://127.0.0.3:{}/again", api.port()),
    );
    assert_eq!(code, 0, "{err}");
    let request = api.requests().pop().expect("the second request");
    assert_eq!(request.header_all("authorization"), [format!("Bearer {SECRET}").as_str()]);

    // A host without a credential rule is tunneled untouched: the upstream's own certificate
    // (from the test CA, which the sandbox does not trust: -k), no header added.
    let (code, out, err) = sh(&fx, &session, &format!("curl -sSk https://127.0.0.4:{}/raw", tunnel.port()));
    assert_eq!((code, out.as_str()), (0, "upstream tunnel: GET /raw\n"), "{err}");
    assert!(tunnel.requests().iter().all(|r| r.header("authorization").is_none()));

    // A name no rule allows gets the proxy's 403, whose body says how to allow it; nothing is
    // resolved or sent for it.
    let (code, out, _) = sh(
        &fx,
        &session,
        "curl -sS -w '\\n%{http_code}' http://not-allowed.example/ ; echo; curl -sS https://not-allowed.example/",
    );
    assert_ne!(code, 0, "the CONNECT is refused: {out}");
    let (body, status) = out.trim_end().rsplit_once('\n').map(|(b, s)| (b, s.trim())).expect("body and status");
    assert_eq!(status, "403", "{out}");
    let refusal: Value = serde_json::from_str(body).expect("an envelope");
    assert_eq!(refusal["error"]["code"], "sandbox.egress_refused");
    assert_eq!(refusal["error"]["detail"]["reason"], "not_allowed");
    assert!(refusal["error"]["message"].as_str().expect("message").contains("\"host\": \"not-allowed.example\""));

    // An allowed host where nothing listens: the proxy's 502, and a failure in the log.
    let (_, out, _) = sh(&fx, &session, &format!("curl -sS http://127.0.0.5:{closed}/"));
    let failure: Value = serde_json::from_str(&out).expect("an envelope");
    assert_eq!(failure["error"]["code"], "sandbox.egress_upstream_failed", "{out}");
    assert_eq!(failure["error"]["detail"]["reason"], "connect_failed");

    // The proxy verifies the upstream it re-encrypts to: a certificate from an unknown CA gets
    // the sandbox a 502, and the credential is never sent.
    let (_, out, _) = sh(&fx, &session, &format!("curl -sS https://127.0.0.7:{}/", untrusted.port()));
    let failure: Value = serde_json::from_str(&out).expect("an envelope");
    assert_eq!(failure["error"]["code"], "sandbox.egress_upstream_failed", "{out}");
    assert_eq!(failure["error"]["detail"]["reason"], "upstream_tls");
    assert!(untrusted.requests().is_empty(), "nothing reached the unverified upstream");

    // A tunnel whose TLS names another host than its CONNECT (domain fronting) is cut, both for
    // an untouched tunnel and for an intercepted one.
    for (port, ip) in [(tunnel.port(), "127.0.0.4"), (api.port(), "127.0.0.3")] {
        let script =
            format!("curl -sSk --connect-to evil.example:{port}:{ip}:{port} https://evil.example:{port}/fronted");
        let (code, _, _) = sh(&fx, &session, &script);
        assert_ne!(code, 0, "a fronted tunnel to {ip} must fail");
    }
    assert!(tunnel.requests().iter().chain(api.requests().iter()).all(|r| r.path != "/fronted"));

    // Without the proxy there is no way out: the sandbox's own 127.0.0.2 has nothing on it.
    let (code, _, _) =
        sh(&fx, &session, &format!("curl -sS --noproxy '*' --max-time 5 http://127.0.0.2:{}/", plain.port()));
    assert_eq!(code, 7, "a direct connection fails to connect");

    // A credential whose secret is gone: the request is refused rather than sent without it.
    fx.server().delete(&format!("/api/tenants/{TENANT}/secrets/api-token")).expect_status(204);
    let (code, _, _) = sh(&fx, &session, &format!("curl -sS https://127.0.0.3:{}/gone", api.port()));
    assert_ne!(code, 0, "the CONNECT is refused");
    assert!(api.requests().iter().all(|r| r.path != "/gone"));

    // The secret is nowhere the sandbox can look: environment, files, processes.
    let search = format!(
        "env | grep -c {SECRET}; cat /proc/*/environ 2>/dev/null | grep -c {SECRET}; \
         grep -rl {SECRET} / --exclude-dir=proc --exclude-dir=sys 2>/dev/null | wc -l"
    );
    let (_, found, _) = sh(&fx, &session, &search);
    assert_eq!(found.split_whitespace().collect::<Vec<_>>(), ["0", "0", "0"], "the secret leaked: {found}");

    // The decision log has every connection and request, with its reason; the secret is in no
    // answer of the API.
    let log = decisions(&fx, &id);
    let plain_entry = find(&log, |e| e["host"] == "127.0.0.2" && e["kind"] == "request", "for the plain request");
    assert_eq!(plain_entry["decision"], "allowed");
    assert_eq!(plain_entry["status"], 200);
    assert!(plain_entry["bytesIn"].as_u64().expect("bytesIn") > 0);
    let injected = find(&log, |e| e["host"] == "127.0.0.3" && e["kind"] == "request", "for the api request");
    assert_eq!(injected["credential"], "api-token");
    find(&log, |e| e["host"] == "127.0.0.3" && e["kind"] == "tunnel", "for the api tunnel");
    find(&log, |e| e["host"] == "not-allowed.example" && e["reason"] == "not_allowed", "refusing the name");
    find(&log, |e| e["host"] == "127.0.0.5" && e["decision"] == "failed", "failing the closed port");
    find(&log, |e| e["host"] == "127.0.0.3" && e["reason"] == "secret_missing", "refusing without the secret");
    let fronted: Vec<&Value> = log.iter().filter(|e| e["reason"] == "sni_mismatch").collect();
    assert_eq!(fronted.len(), 2, "both fronted tunnels are logged: {log:#?}");
    let sandbox = fx.server().get(&fx.path(&format!("/{id}")));
    for text in [sandbox.text(), fx.server().get(&format!("/api/tenants/{TENANT}/secrets")).text(), format!("{log:?}")]
    {
        assert!(!text.contains(SECRET), "the secret leaked through the API: {text}");
    }
    assert_eq!(sandbox.json["spec"]["sandbox"]["network"]["egress"]["credentials"][0]["secret"], "api-token");
    assert!(!fx.server().stderr().contains(SECRET), "the secret leaked into the server's log");

    // A live rules update: the plain host is no longer allowed for new connections.
    let update = json!({ "metadata": { "generation": 1 },
                         "egress": { "allow": [{ "host": "127.0.0.4", "ports": [tunnel.port()] }] } });
    let updated = fx.server().put_json(&fx.path(&format!("/{id}/network")), &update);
    updated.expect_status(200);
    assert_eq!(updated.json["metadata"]["generation"], 2);
    let (_, out, _) =
        sh(&fx, &session, &format!("curl -sS -o /dev/null -w '%{{http_code}}' http://127.0.0.2:{}/", plain.port()));
    assert_eq!(out, "403");
    let stale = fx.server().put_json(&fx.path(&format!("/{id}/network")), &update);
    stale.expect_error(412, "op.precondition_failed");
    let missing = json!({ "metadata": { "generation": 2 }, "egress": { "allow": [{ "host": "127.0.0.3" }],
        "credentials": [{ "host": "127.0.0.3", "header": "Authorization", "secret": "nope" }] } });
    fx.server().put_json(&fx.path(&format!("/{id}/network")), &missing).expect_field(
        400,
        "op.invalid_input",
        "egress.credentials[0].secret",
    );

    // The proxy listener belongs to the sandbox: it is in the sandbox's namespace while it runs,
    // and nothing of it is left once the sandbox is deleted.
    let supervisor: u32 = std::fs::read_to_string(fx.dirs.data().join(format!("sandboxes/{id}/supervisor.pid")))
        .expect("supervisor pid")
        .trim()
        .parse()
        .expect("a pid");
    let listening = std::fs::read_to_string(format!("/proc/{supervisor}/net/tcp")).expect("the sandbox's sockets");
    assert!(listening.lines().any(|l| l.contains(":0C38") && l.split_whitespace().nth(3) == Some("0A")), "{listening}");
    fx.delete(&id);
    assert!(!std::path::Path::new(&format!("/proc/{supervisor}")).exists(), "the supervisor is gone");
    assert!(decisions_gone(&fx, &id));
}

fn decisions_gone(fx: &Fixture, id: &str) -> bool {
    fx.server().get(&fx.path(&format!("/{id}/egress"))).status == 404
}

#[test]
fn internal_addresses_and_the_operators_ceiling_are_enforced() {
    let local = Upstream::http([127, 0, 0, 1], "local");
    let work = tempfile::tempdir().expect("tempdir");
    let policy = work.path().join("policy.json");
    let ceiling = json!({ "allow": [ { "host": "localhost", "ports": [local.port()] }, { "host": "*.example.org" } ] });
    std::fs::write(&policy, ceiling.to_string()).expect("policy");
    let (fx, image) = fixture(vec!["--egress-policy".into(), policy.display().to_string()]);

    // Beyond the ceiling: refused at create, naming the host.
    let beyond = json!({ "spec": {
        "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": image } },
        "process": { "argv": ["true"] },
        "network": { "egress": { "allow": [{ "host": "pypi.org", "ports": [443] }] } } } });
    let refused = fx.server().post_json(&fx.path(""), &beyond);
    refused.expect_error(403, "sandbox.egress_beyond_policy");
    assert_eq!(refused.detail()["host"], "pypi.org");
    assert_eq!(refused.detail()["field"], "spec.network.egress.allow[0]");

    // Within it, but `localhost` resolves to loopback, which sandboxes may not reach unless the
    // operator allows internal targets.
    let network = json!({ "egress": { "allow": [{ "host": "localhost", "ports": [local.port()] }] } });
    let (id, session) = curl_sandbox(&fx, &image, network);
    let script = format!("env -u NO_PROXY -u no_proxy curl -sS http://localhost:{}/", local.port());
    let (_, out, _) = sh(&fx, &session, &script);
    let refusal: Value = serde_json::from_str(&out).expect("an envelope");
    assert_eq!(refusal["error"]["detail"]["reason"], "internal_address", "{out}");
    assert!(local.requests().is_empty(), "nothing reached the loopback upstream");
    let log = decisions(&fx, &id);
    find(&log, |e| e["host"] == "localhost" && e["decision"] == "refused", "refusing loopback");
    // A followed log ends when its sandbox does, with everything written before.
    std::thread::scope(|scope| {
        let follower = scope.spawn(|| fx.server().get(&fx.path(&format!("/{id}/egress?follow=true"))));
        fx.server().post_json(&fx.path(&format!("/{id}/stop")), &json!({ "gracePeriodMs": 0 })).expect_status(200);
        let followed = follower.join().expect("the follower");
        followed.expect_status(200);
        assert!(followed.text().contains("\"internal_address\""), "{}", followed.text());
    });
    fx.delete(&id);
}

/// Sends one plain-HTTP proxy request for `target` to the proxy listener of the sandbox whose
/// supervisor is `supervisor`, from a thread that joined the sandbox's network namespace (so it
/// works while no server runs); returns the answer's status line and body.
fn through_listener(supervisor: u32, target: &str) -> (String, String) {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    let target = target.to_owned();
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{supervisor}/ns/net")).expect("the sandbox's namespace");
        // SAFETY: setns takes a descriptor held open for the call; it changes only this thread's
        // network namespace, and the thread ends with the request.
        #[allow(unsafe_code)]
        let joined = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(joined, 0, "setns: {}", std::io::Error::last_os_error());
        let mut stream = std::net::TcpStream::connect("127.0.0.1:3128").expect("the proxy listener");
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("timeout");
        let host = target.trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned();
        write!(stream, "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("the answer");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
    })
    .join()
    .expect("the request thread")
}

#[test]
fn a_sandbox_keeps_its_way_out_across_a_server_restart_and_hears_503_while_none_runs() {
    let upstream = Upstream::http([127, 0, 0, 6], "restart");
    let (mut fx, image) = fixture(vec!["--egress-allow-internal".into()]);
    let network = json!({ "egress": { "allow": [{ "host": "127.0.0.6", "ports": [upstream.port()] }] } });
    let (id, _) = curl_sandbox(&fx, &image, network);
    let supervisor: u32 = std::fs::read_to_string(fx.dirs.data().join(format!("sandboxes/{id}/supervisor.pid")))
        .expect("supervisor pid")
        .trim()
        .parse()
        .expect("a pid");
    let target = format!("http://127.0.0.6:{}/before", upstream.port());
    let (status, body) = through_listener(supervisor, &target);
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "upstream restart: GET /before\n"));

    // No server: the listener still answers, at once, and says why.
    fx.server.take().expect("server").stop();
    let (status, body) = through_listener(supervisor, &target);
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert!(body.contains("egress proxy is not running"), "{body}");

    // The next server adopts the sandbox and serves its connections with its rules.
    let server = fx.dirs.try_start_with_args(&["--egress-allow-internal"]).expect("restart");
    fx.server = Some(server);
    let (status, body) = through_listener(supervisor, &format!("http://127.0.0.6:{}/after", upstream.port()));
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "upstream restart: GET /after\n"));
    let log = decisions(&fx, &id);
    find(&log, |e| e["host"] == "127.0.0.6" && e["decision"] == "allowed", "after the restart");
    fx.delete(&id);
}

//! The service API (services.md) end to end: definitions with generation checks, the runtime
//! view and its long-polls, readiness probes inside real sandboxes, restart policies, fenced
//! restarts, forced deletes, the operator's static catalog, external services watched by the
//! server's health loop, and services that outlive a server restart.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use serde_json::{Value, json};

use crate::harness::{Dirs, Resp, Server};
use crate::sandboxes::{Fixture, TENANT};

fn path(rest: &str) -> String {
    format!("/api/tenants/{TENANT}/services{rest}")
}

/// A sandbox-backed definition running `argv` in the fixture's busybox image, with `extra`
/// merged into `spec.backend`.
fn sandbox_service(fx: &Fixture, name: &str, argv: &[&str], extra: Value) -> Value {
    let mut backend = json!({
        "kind": "sandbox",
        "sandbox": { "owner": { "kind": "service" }, "root": fx.root(), "process": { "argv": argv, "env": ["SECRET=hunter2"] } },
    });
    if let (Some(backend), Value::Object(extra)) = (backend.as_object_mut(), extra) {
        backend.extend(extra);
    }
    json!({ "metadata": { "name": name, "labels": { "tier": "dev" } }, "spec": { "backend": backend } })
}

fn create(server: &Server, body: &Value) -> Value {
    let resp = server.post_json(&path(""), body);
    resp.expect_status(201);
    resp.json.clone()
}

fn view(server: &Server, name: &str) -> Value {
    let resp = server.get(&path(&format!("/{name}")));
    resp.expect_status(200);
    resp.json.clone()
}

/// Long-polls the runtime view until `condition` holds.
fn wait(server: &Server, name: &str, condition: &str) -> Value {
    let resp = server.get(&path(&format!("/{name}?waitFor={condition}&timeoutMs=60000")));
    assert_eq!(resp.status, 200, "waitFor={condition} on {name}: {resp}");
    resp.json.clone()
}

fn conflict(resp: &Resp, reason: &str) {
    resp.expect_error(409, "op.conflict");
    assert_eq!(resp.detail()["reason"], reason, "{resp}");
}

fn sandbox_path(id: &str) -> String {
    format!("/api/tenants/{TENANT}/sandboxes/{id}")
}

#[test]
fn service_definitions_are_generation_checked() {
    let server = Server::start();
    server.create_tenant(TENANT);
    let root = json!({ "kind": "oci_image", "source": { "kind": "reference", "reference": "busybox:1" } });
    let body = json!({ "metadata": { "name": "web", "labels": { "tier": "dev" } }, "spec": { "backend": {
        "kind": "sandbox",
        "sandbox": { "owner": { "kind": "service" }, "root": root,
                     "process": { "argv": ["httpd", "-f"], "env": ["SECRET=hunter2"], "cwd": "/srv" } },
        "readiness": { "kind": "exec", "argv": ["true", "secret-arg"] },
        "restartPolicy": "on_failure" } } });
    let created = create(&server, &body);
    let metadata = &created["metadata"];
    assert_eq!((metadata["name"].as_str(), metadata["generation"].as_u64()), (Some("web"), Some(1)));
    assert_eq!(metadata["source"], "dynamic");
    assert_eq!(metadata["tenantId"], TENANT);
    let backend = &created["spec"]["backend"];
    assert_eq!(backend["sandbox"]["owner"], json!({ "kind": "service", "serviceName": "web" }));
    assert_eq!(backend["sandbox"]["process"]["argv"], json!({ "redacted": true, "valueCount": 2 }));
    assert_eq!(backend["sandbox"]["process"]["environment"], json!({ "redacted": true, "valueCount": 1 }));
    assert_eq!(backend["sandbox"]["resources"]["cpuCount"], 1, "defaults are filled in");
    assert_eq!(backend["readiness"]["argv"], json!({ "redacted": true, "valueCount": 2 }));
    assert_eq!(
        (backend["readiness"]["intervalMs"].as_u64(), backend["readiness"]["failureThreshold"].as_u64()),
        (Some(1000), Some(3))
    );
    assert_eq!((backend["startTimeoutMs"].as_u64(), backend["maxRestarts"].as_u64()), (Some(120_000), Some(5)));
    assert!(!created.to_string().contains("hunter2") && !created.to_string().contains("secret-arg"));
    assert_eq!(created["status"]["lifecycleState"], "stopped");
    assert_eq!(created["status"]["conditions"][0]["type"], "Admitted");

    // Reads: the definition and the runtime view of a service never started.
    let read = server.get(&path("/web/definition"));
    read.expect_status(200);
    assert_eq!(read.json, created);
    let runtime = view(&server, "web");
    assert_eq!(
        json!([runtime["state"], runtime["lifecycleState"], runtime["readiness"], runtime["health"]]),
        json!(["stopped", "stopped", "stopped", "unknown"])
    );
    assert_eq!((runtime["restartCount"].as_u64(), runtime["lastTermination"].is_null()), (Some(0), true));
    assert!(runtime["definitionGeneration"].is_null() && runtime.get("sandboxId").is_none());
    server.get(&path("/web?waitFor=ready")).expect_error(409, "op.wait_unsatisfiable");
    assert_eq!(wait(&server, "web", "stopped")["state"], "stopped");

    // Create errors.
    let again = server.post_json(&path(""), &body);
    again.expect_error(409, "op.already_exists");
    assert_eq!((again.detail()["resource"].as_str(), again.detail()["name"].as_str()), (Some("service"), Some("web")));
    let mut with_generation = body.clone();
    with_generation["metadata"]["generation"] = json!(1);
    server.post_json(&path(""), &with_generation).expect_field(400, "op.invalid_input", "metadata.generation");
    let mut bad = body.clone();
    bad["metadata"]["name"] = json!(" web");
    server.post_json(&path(""), &bad).expect_field(400, "op.invalid_input", "metadata.name");
    let mut bad = body.clone();
    bad["spec"]["backend"]["readiness"] = json!({ "kind": "tcp", "port": 70000 });
    server.post_json(&path(""), &bad).expect_field(400, "op.invalid_input", "spec.backend.readiness.port");
    let mut bad = body.clone();
    bad["metadata"]["name"] = json!("other");
    bad["spec"]["backend"]["restartPolicy"] = json!("never");
    bad["spec"]["backend"]["maxRestarts"] = json!(2);
    server.post_json(&path(""), &bad).expect_field(400, "op.invalid_input", "spec.backend.maxRestarts");
    let mut bad = body.clone();
    bad["spec"]["backend"]["sandbox"]["owner"] = json!({ "kind": "standalone" });
    server.post_json(&path(""), &bad).expect_field(400, "op.invalid_input", "spec.backend.sandbox.owner.kind");
    let mut bad = body.clone();
    bad["spec"]["backend"]["sandbox"]["resources"] = json!({ "cpuCount": 64 });
    server.post_json(&path(""), &bad).expect_error(400, "op.cap_exceeded");
    let external = |url: &str| {
        json!({ "metadata": { "name": "ext" }, "spec": { "backend": { "kind": "external",
            "endpoint": { "url": url }, "health": { "kind": "http", "path": "/healthz" } } } })
    };
    for url in ["ftp://example.com", "http://user:pw@example.com", "http://"] {
        server.post_json(&path(""), &external(url)).expect_field(400, "op.invalid_input", "spec.backend.endpoint.url");
    }
    let unknown = server.post_json(
        &path(""),
        &json!({ "metadata": { "name": "x", "colour": "red" },
        "spec": { "backend": { "kind": "builtIn", "provider": "browser" } } }),
    );
    unknown.expect_field(400, "op.invalid_input", "metadata.colour");
    server
        .post_json(
            &path(""),
            &json!({ "metadata": { "name": "x" }, "spec": { "backend": { "kind": "builtIn", "provider": "ftp" } } }),
        )
        .expect_field(400, "op.invalid_input", "spec.backend.provider");
    server.get(&path("/nope")).expect_error(404, "op.not_found");
    assert_eq!(server.get(&path("/nope/definition")).detail()["name"], "nope");
    server.get("/api/tenants/ghost/services/web").expect_error(404, "session.tenant_not_found");

    // Two concurrent updates from the same generation: exactly one wins.
    let mut update = body.clone();
    update["metadata"]["generation"] = json!(1);
    update["metadata"]["labels"] = json!({ "tier": "prod" });
    let statuses: Vec<Resp> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2).map(|_| s.spawn(|| server.put_json(&path("/web"), &update))).collect();
        handles.into_iter().map(|h| h.join().expect("PUT thread")).collect()
    });
    let mut codes: Vec<u16> = statuses.iter().map(|r| r.status).collect();
    codes.sort_unstable();
    assert_eq!(codes, [200, 412], "{statuses:?}");
    let lost = statuses.iter().find(|r| r.status == 412).expect("a 412");
    lost.expect_error(412, "op.precondition_failed");
    assert_eq!(lost.detail()["expectedGeneration"], 1);
    assert_eq!(lost.detail()["currentGeneration"], 2);
    let won = statuses.iter().find(|r| r.status == 200).expect("a 200");
    assert_eq!(won.json["metadata"]["generation"], 2);
    assert_eq!(won.json["metadata"]["labels"], json!({ "tier": "prod" }));
    assert_ne!(won.json["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);

    // Update errors: generation missing, a name that is not the path's, a missing service.
    let mut no_generation = body.clone();
    no_generation["metadata"].as_object_mut().expect("metadata").remove("labels");
    server.put_json(&path("/web"), &no_generation).expect_field(400, "op.invalid_input", "metadata.generation");
    let mut renamed = update.clone();
    renamed["metadata"]["name"] = json!("other");
    server.put_json(&path("/web"), &renamed).expect_field(400, "op.invalid_input", "metadata.name");
    update["metadata"]["name"] = json!("missing");
    server.put_json(&path("/missing"), &update).expect_error(404, "op.not_found");

    // Listing, by name, paginated.
    let mut second = body.clone();
    second["metadata"]["name"] = json!("api");
    create(&server, &second);
    let names = |query: &str| -> Vec<String> {
        let resp = server.get(&path(query));
        resp.expect_status(200);
        resp.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(names(""), ["api", "web"]);
    let first = server.get(&path("?limit=1"));
    assert_eq!(
        (first.json["metadata"]["remainingCount"].as_u64(), first.json["metadata"]["nextPageToken"].as_str()),
        (Some(1), Some("api"))
    );
    assert_eq!(names("?limit=1&pageToken=api"), ["web"]);
    server.get(&path("?colour=red")).expect_field(400, "op.invalid_input", "colour");

    // Delete: ifMatchGeneration required, stale is 412, then gone.
    server.delete(&path("/web")).expect_field(400, "op.invalid_input", "ifMatchGeneration");
    let stale = server.delete(&path("/web?ifMatchGeneration=1"));
    stale.expect_error(412, "op.precondition_failed");
    assert_eq!(stale.detail()["currentGeneration"], 2);
    server.delete(&path("/web?ifMatchGeneration=2")).expect_status(204);
    server.get(&path("/web")).expect_error(404, "op.not_found");
    server.delete(&path("/web?ifMatchGeneration=2")).expect_error(404, "op.not_found");
    assert_eq!(names(""), ["api"]);
}

#[test]
fn builtin_providers_other_than_the_browser_are_declared_only() {
    let server = Server::start();
    server.create_tenant(TENANT);
    let created = create(
        &server,
        &json!({ "metadata": { "name": "gateway" }, "spec": { "backend": { "kind": "builtIn", "provider": "modelGateway" } } }),
    );
    assert_eq!(created["status"]["lifecycleState"], "declared");
    assert_eq!(created["spec"]["backend"], json!({ "kind": "builtIn", "provider": "modelGateway" }));
    for verb in ["start", "restart"] {
        let resp = server.post_empty(&path(&format!("/gateway/{verb}")));
        resp.expect_error(501, "service.capability_unavailable");
        assert_eq!(resp.detail()["capability"], "builtIn.modelGateway");
        assert!(resp.detail()["reason"].is_string());
    }
    let stopped = server.post_empty(&path("/gateway/stop"));
    stopped.expect_status(200);
    assert_eq!(stopped.json["state"], "stopped");
    server.get(&path("/gateway?waitFor=healthy")).expect_error(409, "op.wait_unsatisfiable");
    server.post_json(&path("/gateway/start"), &json!({ "x": 1 })).expect_error(400, "op.invalid_input");
    // Only the browser provider takes a `browser` block and the lifecycle fields.
    let block = json!({ "metadata": { "name": "g2" }, "spec": { "backend": { "kind": "builtIn",
        "provider": "loadBalancer", "browser": {} } } });
    server.post_json(&path(""), &block).expect_field(400, "op.invalid_input", "spec.backend.browser");
    let policy = json!({ "metadata": { "name": "g2" }, "spec": { "backend": { "kind": "builtIn",
        "provider": "serviceDiscovery", "restartPolicy": "always" } } });
    server.post_json(&path(""), &policy).expect_field(400, "op.invalid_input", "spec.backend.restartPolicy");
}

/// A tiny HTTP server on 127.0.0.1 that answers every request with 200 or 500 (switchable) and
/// reports each request it served.
struct Endpoint {
    port: u16,
    healthy: Arc<AtomicBool>,
    served: mpsc::Receiver<bool>,
}

impl Endpoint {
    fn start() -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the endpoint");
        let port = listener.local_addr().expect("address").port();
        let healthy = Arc::new(AtomicBool::new(true));
        let (tx, served) = mpsc::channel();
        let flag = healthy.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut line = String::new();
                // Read the request head.
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let ok = flag.load(Ordering::SeqCst);
                let status = if ok { "200 OK" } else { "500 Internal Server Error" };
                let _ = stream.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                );
                drop(stream);
                if tx.send(ok).is_err() {
                    return;
                }
            }
        });
        Endpoint { port, healthy, served }
    }

    /// Waits until `n` more requests got the current answer.
    fn served(&self, answer: bool, n: usize) {
        let mut seen = 0;
        while seen < n {
            let ok =
                self.served.recv_timeout(std::time::Duration::from_secs(60)).expect("the health loop stopped polling");
            if ok == answer {
                seen += 1;
            }
        }
    }
}

#[test]
fn external_service_health_follows_its_endpoint() {
    let server = Server::start();
    server.create_tenant(TENANT);
    let endpoint = Endpoint::start();
    let body = json!({ "metadata": { "name": "ext" }, "spec": { "backend": { "kind": "external",
        "endpoint": { "url": format!("http://127.0.0.1:{}", endpoint.port) }, "auth": { "kind": "none" },
        "health": { "kind": "http", "path": "/healthz", "intervalMs": 100, "timeoutMs": 1000, "failureThreshold": 2 } } } });
    let created = create(&server, &body);
    assert_eq!(created["status"]["lifecycleState"], "declared");
    assert_eq!(created["spec"]["backend"]["health"]["intervalMs"], 100);
    assert_eq!(view(&server, "ext")["state"], "stopped");

    let started = server.post_empty(&path("/ext/start"));
    started.expect_status(200);
    assert!(started.json.get("sandboxId").is_none(), "{}", started.json);
    let healthy = wait(&server, "ext", "healthy");
    assert_eq!((healthy["state"].as_str(), healthy["readiness"].as_str()), (Some("ready"), Some("ready")));

    // Failing answers: `failureThreshold` of them make it unhealthy. The loop is sequential,
    // so once a third failing request arrives, the second one's result is recorded.
    endpoint.healthy.store(false, Ordering::SeqCst);
    endpoint.served(false, 3);
    let unhealthy = view(&server, "ext");
    assert_eq!(
        json!([unhealthy["state"], unhealthy["readiness"], unhealthy["health"]]),
        json!(["not_ready", "not_ready", "unhealthy"])
    );
    server.get(&path("/ext?waitFor=healthy&timeoutMs=0")).expect_error(408, "op.wait_timeout");
    endpoint.healthy.store(true, Ordering::SeqCst);
    assert_eq!(wait(&server, "ext", "healthy")["health"], "healthy");

    // While started, the definition cannot change; stop, then it can.
    let mut update = body.clone();
    update["metadata"]["generation"] = json!(1);
    conflict(&server.put_json(&path("/ext"), &update), "service_active");
    conflict(&server.delete(&path("/ext?ifMatchGeneration=1")), "service_active");
    let stopped = server.post_empty(&path("/ext/stop"));
    stopped.expect_status(200);
    assert_eq!((stopped.json["state"].as_str(), stopped.json["health"].as_str()), (Some("stopped"), Some("unknown")));
    server.put_json(&path("/ext"), &update).expect_status(200);

    // Restart (empty body) enables the loop again.
    let restarted = server.post_empty(&path("/ext/restart"));
    restarted.expect_status(200);
    assert_eq!(wait(&server, "ext", "ready")["definitionGeneration"], 2);
    server.delete(&path("/ext?ifMatchGeneration=2&force=true")).expect_status(204);
    server.get(&path("/ext")).expect_error(404, "op.not_found");
}

#[test]
fn static_catalog_services_are_read_only() {
    let dirs = Dirs::new();
    let catalog = dirs.root().join("catalog.json");
    let write = |value: Value| std::fs::write(&catalog, value.to_string()).expect("write the catalog");
    write(json!({ TENANT: [{ "metadata": { "name": "gw" },
        "spec": { "backend": { "kind": "builtIn", "provider": "modelGateway" } } }] }));
    let catalog_arg = catalog.to_str().expect("utf-8 path").to_owned();
    let server = dirs.try_start_with_args(&["--service-catalog", &catalog_arg]).expect("start with a catalog");
    server.create_tenant(TENANT);
    let read = server.get(&path("/gw/definition"));
    read.expect_status(200);
    assert_eq!(
        (read.json["metadata"]["source"].as_str(), read.json["metadata"]["generation"].as_u64()),
        (Some("staticCatalog"), Some(1))
    );
    let listed = server.get(&path(""));
    assert_eq!(listed.json["items"][0]["metadata"]["name"], "gw");
    let update = json!({ "metadata": { "name": "gw", "generation": 1 },
        "spec": { "backend": { "kind": "builtIn", "provider": "browser" } } });
    conflict(&server.put_json(&path("/gw"), &update), "static_definition");
    conflict(&server.delete(&path("/gw?ifMatchGeneration=1")), "static_definition");
    conflict(&server.delete(&path("/gw?ifMatchGeneration=1&force=true")), "static_definition");
    let mut taken = update.clone();
    taken["metadata"].as_object_mut().expect("metadata").remove("generation");
    server.post_json(&path(""), &taken).expect_error(409, "op.already_exists");
    drop(server);

    // An invalid catalog fails the start, naming the entry.
    write(json!({ TENANT: [{ "metadata": { "name": "gw" },
        "spec": { "backend": { "kind": "builtIn", "provider": "nope" } } }] }));
    match Dirs::new().try_start_with_args(&["--service-catalog", &catalog_arg]) {
        Ok(_) => panic!("a server started with an invalid service catalog"),
        Err(failure) => {
            assert_eq!(failure.status.code(), Some(1), "{failure:?}");
            assert!(failure.stderr.contains(&format!("{TENANT}[0].spec.backend.provider")), "{}", failure.stderr);
        }
    }
}

#[test]
fn sandbox_service_runs_with_probes_and_owns_its_sandbox() {
    let fx = Fixture::start();
    let server = fx.server();
    // An http probe against busybox httpd (serving / from an empty directory: 404 would fail,
    // so serve the image's /etc).
    let http = sandbox_service(
        &fx,
        "web",
        &["busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"],
        json!({ "readiness": { "kind": "http", "port": 8080, "path": "/passwd", "intervalMs": 100 } }),
    );
    create(server, &http);
    let started = server.post_empty(&path("/web/start"));
    started.expect_status(200);
    let state = started.json["state"].as_str().unwrap_or("");
    assert!(state == "starting" || state == "ready", "{}", started.json);
    let sandbox_id = started.json["sandboxId"].as_str().expect("a live sandbox").to_owned();
    assert!(sandbox_id.starts_with("web-"), "{sandbox_id}");
    assert_eq!(started.json["backend"], "container");
    assert_eq!(started.json["definitionGeneration"], 1);
    let ready = wait(server, "web", "ready");
    assert_eq!((ready["health"].as_str(), ready["sandboxId"].as_str()), (Some("healthy"), Some(sandbox_id.as_str())));
    assert_eq!(wait(server, "web", "healthy")["state"], "ready");

    // The sandbox is listed as the service's, and only the service may stop or delete it.
    let sandbox = server.get(&sandbox_path(&sandbox_id));
    sandbox.expect_status(200);
    assert_eq!(sandbox.json["spec"]["sandbox"]["owner"], json!({ "kind": "service", "serviceName": "web" }));
    // Its server is reachable through the ports route of its sandbox, as any sandbox's.
    let page = server.authed_foreign("GET", &format!("{}/ports/8080/passwd", sandbox_path(&sandbox_id)), None);
    assert_eq!(page.status, 200, "{page}");
    assert!(String::from_utf8_lossy(&page.body).starts_with("root:"), "{page}");
    let listed = server.get(&format!("/api/tenants/{TENANT}/sandboxes"));
    assert!(
        listed.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|s| s["spec"]["sandbox"]["owner"]["kind"] == "service")
    );
    for resp in
        [server.post_empty(&format!("{}/stop", sandbox_path(&sandbox_id))), server.delete(&sandbox_path(&sandbox_id))]
    {
        conflict(&resp, "owned_by_service");
        assert_eq!(resp.detail()["serviceName"], "web");
    }
    server
        .post_json(
            &format!("/api/tenants/{TENANT}/sandboxes"),
            &json!({ "spec": { "owner": { "kind": "service" }, "root": fx.root() } }),
        )
        .expect_field(400, "op.invalid_input", "spec.owner.kind");

    // Running: no update, no delete without force; start is a no-op.
    let mut update = http.clone();
    update["metadata"]["generation"] = json!(1);
    conflict(&server.put_json(&path("/web"), &update), "service_active");
    conflict(&server.delete(&path("/web?ifMatchGeneration=1")), "service_active");
    assert_eq!(server.post_empty(&path("/web/start")).json["sandboxId"], sandbox_id.as_str());

    // Restart, synchronous: a fresh sandbox.
    let restarted = server.post_empty(&path("/web/restart"));
    restarted.expect_status(200);
    let second = restarted.json["sandboxId"].as_str().expect("a new sandbox").to_owned();
    assert_ne!(second, sandbox_id);
    assert_eq!(restarted.json["lastTermination"]["sandboxId"], sandbox_id.as_str());
    assert_eq!(restarted.json["lastTermination"]["terminationReason"], "stopped_by_request");
    let old = server.get(&sandbox_path(&sandbox_id));
    assert_eq!(old.json["status"]["lifecycleState"], "stopped", "the previous sandbox follows retention");
    wait(server, "web", "ready");

    // Restart, fenced: 202 with a receipt; the same requestId replays it; a stale generation
    // is 412.
    let fenced = json!({ "sourceGeneration": 1, "requestId": "deploy-42" });
    let applied = server.post_json(&path("/web/restart"), &fenced);
    applied.expect_status(202);
    assert_eq!(applied.json["disposition"], "applied");
    assert_eq!(
        (applied.json["requestId"].as_str(), applied.json["sourceGeneration"].as_u64()),
        (Some("deploy-42"), Some(1))
    );
    assert!(applied.json["workloadRestartRequestId"].as_str().is_some_and(|id| id.starts_with("restart-")));
    let replayed = server.post_json(&path("/web/restart"), &fenced);
    replayed.expect_status(202);
    assert_eq!(replayed.json["disposition"], "replayed");
    assert_eq!(replayed.json["workloadRestartRequestId"], applied.json["workloadRestartRequestId"]);
    assert_eq!(replayed.json["restartEpoch"], applied.json["restartEpoch"]);
    let stale = server.post_json(&path("/web/restart"), &json!({ "sourceGeneration": 7, "requestId": "deploy-43" }));
    stale.expect_error(412, "op.precondition_failed");
    server.post_json(&path("/web/restart"), &json!({ "requestId": "x" })).expect_field(
        400,
        "op.invalid_input",
        "sourceGeneration",
    );
    let third = wait(server, "web", "ready");
    let third_id = third["sandboxId"].as_str().expect("sandbox").to_owned();
    assert!(third_id != second && third_id != sandbox_id, "the fenced restart made a fresh sandbox");

    // Stop: no restart follows; stop again is a no-op.
    let stopped = server.post_empty(&path("/web/stop"));
    stopped.expect_status(200);
    assert_eq!((stopped.json["state"].as_str(), stopped.json.get("sandboxId")), (Some("stopped"), None));
    assert_eq!(stopped.json["lastTermination"]["sandboxId"], third_id.as_str());
    server.post_json(&path("/web/stop"), &json!({})).expect_status(200);
    server.get(&path("/web?waitFor=ready&timeoutMs=0")).expect_error(409, "op.wait_unsatisfiable");

    // A tcp probe and an exec probe.
    let tcp = sandbox_service(
        &fx,
        "tcp",
        &["busybox", "httpd", "-f", "-p", "9000"],
        json!({ "readiness": { "kind": "tcp", "port": 9000, "intervalMs": 100 } }),
    );
    create(server, &tcp);
    server.post_empty(&path("/tcp/start")).expect_status(200);
    assert_eq!(wait(server, "tcp", "ready")["health"], "healthy");
    // The service lists what its sandbox listens on, with the ports route to it.
    let listed = view(server, "tcp");
    let tcp_sandbox = listed["sandboxId"].as_str().expect("sandbox").to_owned();
    assert_eq!(
        listed["endpoints"],
        json!([{ "name": "tcp-9000", "protocol": "tcp", "host": "127.0.0.1", "port": 9000,
                 "url": format!("/api/tenants/{TENANT}/sandboxes/{tcp_sandbox}/ports/9000/") }])
    );
    let exec = sandbox_service(
        &fx,
        "exec",
        &["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 1000"],
        json!({ "readiness": { "kind": "exec", "argv": ["test", "-f", "/tmp/ready"], "intervalMs": 100 } }),
    );
    create(server, &exec);
    let started = server.post_empty(&path("/exec/start"));
    assert_eq!(started.json["state"], "starting", "not ready before the file exists: {}", started.json);
    assert_eq!(wait(server, "exec", "ready")["state"], "ready");

    // Forced delete of a running service: 204, and its sandboxes are gone.
    let running = view(server, "tcp")["sandboxId"].as_str().expect("sandbox").to_owned();
    server.delete(&path("/tcp?ifMatchGeneration=1&force=true")).expect_status(204);
    server.get(&sandbox_path(&running)).expect_error(404, "op.not_found");
    server.get(&path("/tcp")).expect_error(404, "op.not_found");
    crate::sandboxes::assert_nothing_left(&running);
    server.delete(&path("/web?ifMatchGeneration=1")).expect_status(204);
    server.get(&sandbox_path(&sandbox_id)).expect_error(404, "op.not_found");
}

#[test]
fn crashing_service_is_restarted_until_max_restarts_then_fails() {
    let fx = Fixture::start();
    let server = fx.server();
    let body = sandbox_service(
        &fx,
        "crash",
        &["sh", "-c", "exit 3"],
        json!({ "restartPolicy": "on_failure", "maxRestarts": 2 }),
    );
    create(server, &body);
    server.post_empty(&path("/crash/start")).expect_status(200);
    let ended = wait(server, "crash", "stopped");
    assert_eq!(
        json!([ended["state"], ended["readiness"], ended["health"]]),
        json!(["failed", "failed", "unhealthy"]),
        "{ended}"
    );
    assert_eq!(ended["restartCount"], 2);
    let last = &ended["lastTermination"];
    assert_eq!((last["exitCode"].as_i64(), last["terminationReason"].as_str()), (Some(3), Some("exited")));
    assert!(last["sandboxId"].as_str().is_some_and(|id| id.starts_with("crash-")) && last["finishedAt"].is_string());
    assert!(ended.get("sandboxId").is_none());
    server.get(&path("/crash?waitFor=ready")).expect_error(409, "op.wait_unsatisfiable");
    // Three runs, three sandboxes, all the service's.
    let sandboxes = server.get(&format!("/api/tenants/{TENANT}/sandboxes"));
    let owned = sandboxes.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|s| s["spec"]["sandbox"]["owner"]["serviceName"] == "crash")
        .count();
    assert_eq!(owned, 3);

    // Never ready within startTimeoutMs: the sandbox is stopped and the run ends failed.
    let body = sandbox_service(
        &fx,
        "deaf",
        &["sleep", "1000"],
        json!({ "readiness": { "kind": "tcp", "port": 9, "intervalMs": 100, "timeoutMs": 100 }, "startTimeoutMs": 1000 }),
    );
    create(server, &body);
    server.post_empty(&path("/deaf/start")).expect_status(200);
    let ended = wait(server, "deaf", "stopped");
    assert_eq!((ended["state"].as_str(), ended["restartCount"].as_u64()), (Some("failed"), Some(0)), "{ended}");
    assert_eq!(ended["lastTermination"]["terminationReason"], "start_failed");
    let sandbox = ended["lastTermination"]["sandboxId"].as_str().expect("sandbox").to_owned();
    assert_eq!(server.get(&sandbox_path(&sandbox)).json["status"]["lifecycleState"], "stopped");

    // A clean exit with `never` just stops.
    create(server, &sandbox_service(&fx, "once", &["true"], json!({})));
    server.post_empty(&path("/once/start")).expect_status(200);
    let ended = wait(server, "once", "stopped");
    assert_eq!((ended["state"].as_str(), ended["restartCount"].as_u64()), (Some("stopped"), Some(0)));
    assert_eq!(ended["lastTermination"]["exitCode"], 0);
}

#[test]
fn running_service_survives_a_server_restart() {
    let mut fx = Fixture::start();
    create(
        fx.server(),
        &sandbox_service(
            &fx,
            "web",
            &["busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"],
            json!({ "readiness": { "kind": "http", "port": 8080, "path": "/passwd", "intervalMs": 100 } }),
        ),
    );
    fx.server().post_empty(&path("/web/start")).expect_status(200);
    let before = wait(fx.server(), "web", "ready");
    let status = fx.server.as_mut().expect("server").stop();
    assert_eq!(status.code(), Some(0));
    fx.server = Some(Server::start_in(&fx.dirs));
    let after = view(fx.server(), "web");
    assert_eq!(after["state"], "ready", "{after}");
    assert_eq!(after["sandboxId"], before["sandboxId"], "the same sandbox was re-adopted");
    assert_eq!(after["definitionGeneration"], 1);
    assert_eq!(wait(fx.server(), "web", "healthy")["sandboxId"], before["sandboxId"]);
    // The resumed run is the service's: stop ends it.
    let stopped = fx.server().post_empty(&path("/web/stop"));
    assert_eq!(stopped.json["state"], "stopped");
    assert_eq!(stopped.json["lastTermination"]["sandboxId"], before["sandboxId"]);
}

#[test]
fn sessions_on_a_service_follow_it_and_its_force_delete() {
    let fx = Fixture::start();
    let server = fx.server();
    create(server, &sandbox_service(&fx, "shell", &["sh", "-c", "echo service-up; exec sleep 1000"], json!({})));
    server.post_empty(&path("/shell/start")).expect_status(200);
    let ready = wait(server, "shell", "ready");
    let sandbox = ready["sandboxId"].as_str().expect("sandboxId").to_owned();

    // A session on the service binds to its current sandbox and runs commands there.
    let open =
        json!({ "tenantId": TENANT, "target": { "service": { "name": "shell" } }, "channels": ["exec", "files"] });
    let session = server.post_json("/api/sessions", &open);
    session.expect_status(201);
    let snapshot = &session.json["spec"]["targetSnapshot"]["service"];
    assert_eq!((snapshot["name"].as_str(), snapshot["sandboxId"].as_str()), (Some("shell"), Some(sandbox.as_str())));
    assert_eq!(snapshot["backend"], "sandbox");
    let id = session.json["metadata"]["id"].as_str().expect("session id").to_owned();
    let ran = server.post_json(&format!("/api/sessions/{id}/exec?wait=true"), &json!({ "argv": ["hostname"] }));
    ran.expect_status(200);
    assert_eq!(ran.json["stdout"].as_str().map(str::trim), Some(&sandbox[..sandbox.len().min(63)]));

    // Open sessions block a plain delete; a forced one closes them with `service_force_deleted`.
    let generation =
        server.get(&path("/shell/definition")).json["metadata"]["generation"].as_u64().expect("generation");
    let blocked = server.delete(&path(&format!("/shell?ifMatchGeneration={generation}")));
    blocked.expect_error(409, "op.conflict");
    assert_eq!(
        (blocked.detail()["reason"].as_str(), blocked.detail()["count"].as_u64()),
        (Some("open_sessions"), Some(1))
    );
    server.delete(&path(&format!("/shell?ifMatchGeneration={generation}&force=true"))).expect_status(204);
    let closed = server.get(&format!("/api/sessions/{id}"));
    assert_eq!(closed.json["status"]["lifecycleState"], "closed", "{closed}");
    assert_eq!(closed.json["status"]["closeReason"], "service_force_deleted", "{closed}");
    server.get(&sandbox_path(&sandbox)).expect_status(404);
    crate::sandboxes::assert_nothing_left(&sandbox);
}

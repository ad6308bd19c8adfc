//! The sandbox API (sandboxes.md) end to end with real containers: images pulled from a real
//! registry on loopback, the built binary over HTTP, and the host's /proc, mounts and cgroup
//! tree inspected after teardown. Runs as root.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use nimbus_sandbox::backend::Backend;
use nimbus_sandbox::runtime::ContainerBackend;
use nimbus_sandbox::runtime::userns::IdPool;
use serde_json::{Value, json};

use crate::harness::{Dirs, Server};
use crate::registry::Registry;

pub const TENANT: &str = "agents";

/// A server with a tenant and a registry holding a busybox image. On drop (also when a test
/// fails), the server is killed and every sandbox it left is swept: processes, mounts, cgroups.
pub struct Fixture {
    pub server: Option<Server>,
    pub dirs: Arc<Dirs>,
    pub registry: Registry,
    /// `127.0.0.1:PORT/nimbus-test/busybox:1`.
    pub image: String,
    pub digest: String,
}

impl Fixture {
    pub fn start() -> Fixture {
        Fixture::on(Dirs::new(), Server::start_in)
    }

    /// A fixture whose server `start` starts on `dirs` (with flags, on a prepared data dir).
    pub fn on(dirs: Arc<Dirs>, start: impl FnOnce(&Arc<Dirs>) -> Server) -> Fixture {
        let registry = Registry::start();
        let digest = registry.push_busybox("nimbus-test/busybox:1");
        let image = format!("{}/nimbus-test/busybox:1", registry.host());
        let server = start(&dirs);
        server.create_tenant(TENANT);
        Fixture { server: Some(server), dirs, registry, image, digest }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    pub fn path(&self, rest: &str) -> String {
        format!("/api/tenants/{TENANT}/sandboxes{rest}")
    }

    /// Creates a sandbox running `argv` in the busybox image; returns the 201 body.
    pub fn create(&self, argv: &[&str], extra: Value) -> Value {
        self.create_from(&self.image, argv, extra)
    }

    /// Creates a sandbox running `argv` in the image `reference` (pulled by the server, e.g. from
    /// [`Fixture::registry`]); returns the 201 body.
    pub fn create_from(&self, reference: &str, argv: &[&str], extra: Value) -> Value {
        let mut body = json!({ "spec": { "root": image_root(reference), "process": { "argv": argv } } });
        merge(&mut body, extra);
        let resp = self.server().post_json(&self.path(""), &body);
        resp.expect_status(201);
        resp.json.clone()
    }

    pub fn root(&self) -> Value {
        image_root(&self.image)
    }

    /// Long-polls until the sandbox is `stopped` or `failed`.
    pub fn wait_stopped(&self, id: &str) -> Value {
        let resp = self.server().get(&self.path(&format!("/{id}?waitFor=stopped&timeoutMs=60000")));
        resp.expect_status(200);
        resp.json.clone()
    }

    /// The retained log records.
    pub fn logs(&self, id: &str) -> Vec<Value> {
        let resp = self.server().get(&self.path(&format!("/{id}/logs")));
        resp.expect_status(200);
        assert_eq!(resp.header("content-type"), Some("application/x-ndjson"));
        resp.text().lines().map(|l| serde_json::from_str(l).expect("NDJSON line")).collect()
    }

    /// The text of one stream of the logs.
    pub fn output(&self, id: &str, kind: &str) -> String {
        self.logs(id).iter().filter(|r| r["kind"] == kind).filter_map(|r| r["data"].as_str()).collect()
    }

    pub fn delete(&self, id: &str) {
        self.server().delete(&self.path(&format!("/{id}"))).expect_status(204);
        assert_nothing_left(id);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.server.take());
        sweep_sandboxes(&self.dirs);
    }
}

/// Removes every sandbox left under a test's data directory (processes, mounts, cgroups, state),
/// for drop guards: sandboxes outlive the server that started them.
pub fn sweep_sandboxes(dirs: &Dirs) {
    if let Ok(backend) = ContainerBackend::new(
        dirs.data().join("sandboxes"),
        PathBuf::from(env!("CARGO_BIN_EXE_nimbus")),
        IdPool::default(),
    ) {
        backend.sweep(&[]);
    }
}

/// `spec.root` for an OCI image reference.
pub fn image_root(reference: &str) -> Value {
    json!({ "kind": "oci_image", "source": { "kind": "reference", "reference": reference } })
}

/// Merges `extra` into `target`, objects key by key.
pub fn merge(target: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(extra)) = (target, extra) {
        for (key, value) in extra {
            match target.get_mut(&key) {
                Some(existing) if existing.is_object() && value.is_object() => merge(existing, value),
                _ => {
                    target.insert(key, value);
                }
            }
        }
    }
}

/// After a delete: no mount, cgroup directory or process of the sandbox is left on the host.
pub fn assert_nothing_left(id: &str) {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts");
    assert!(!mounts.contains(id), "a mount of {id} is left:\n{mounts}");
    for controller in ["memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "unified"] {
        let dir = PathBuf::from("/sys/fs/cgroup").join(controller).join("nimbus").join(id);
        assert!(!dir.exists(), "cgroup directory {} is left", dir.display());
    }
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        assert!(!cgroup.contains(id), "process {:?} is still in the sandbox's cgroup", entry.file_name());
    }
}

pub fn id_of(sandbox: &Value) -> String {
    sandbox["metadata"]["id"].as_str().expect("metadata.id").to_owned()
}

#[test]
fn sandbox_runs_from_a_pulled_image_and_reports_its_exit() {
    let fx = Fixture::start();
    let created = fx.create(
        &["sh", "-c", "echo hello; echo oops >&2; exit 3"],
        json!({ "labels": { "purpose": "exit" }, "spec": { "owner": { "kind": "standalone", "displayName": "Exit Task" },
                "process": { "env": ["SECRET=hunter2"] } } }),
    );
    let id = id_of(&created);
    assert!(id.starts_with("exit-task-") && id.len() == "exit-task-".len() + 26, "{id}");
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["status"]["image"]["digest"], fx.digest.as_str());
    assert_eq!(created["status"]["image"]["reference"], fx.image.as_str());
    let process = &created["spec"]["sandbox"]["process"];
    assert_eq!(process["argv"], json!({ "redacted": true, "valueCount": 3 }));
    assert_eq!(process["environment"], json!({ "redacted": true, "valueCount": 2 }), "image PATH + SECRET");
    assert!(!created.to_string().contains("hunter2") && !created.to_string().contains("oops"));
    assert_eq!(created["spec"]["sandbox"]["resources"]["cpuCount"], 1);
    assert!(created["status"]["startedAt"].is_string() || created["status"]["lifecycleState"] == "failed");

    let ended = fx.wait_stopped(&id);
    let status = &ended["status"];
    assert_eq!(status["lifecycleState"], "failed");
    assert_eq!((status["readiness"].as_str(), status["health"].as_str()), (Some("failed"), Some("unhealthy")));
    assert_eq!(status["exitCode"], 3);
    assert_eq!(status["terminationReason"], "exited");
    assert!(status["finishedAt"].is_string() && status["retainedUntil"].is_string());
    assert_eq!(status["conditions"][0]["status"], "False");

    assert_eq!(fx.output(&id, "stdout"), "hello\n");
    assert_eq!(fx.output(&id, "stderr"), "oops\n");
    let logs = fx.logs(&id);
    assert_eq!(logs.last(), Some(&json!({ "kind": "exit", "code": 3, "terminationReason": "exited" })));
    let tail = fx.server().get(&fx.path(&format!("/{id}/logs?tail=0")));
    assert_eq!(tail.text().lines().count(), 1, "tail=0 leaves only the exit frame: {tail}");

    // A clean exit is `stopped`; a stop of a terminal sandbox returns it unchanged.
    let clean = id_of(&fx.create(&["true"], json!({})));
    let ended = fx.wait_stopped(&clean);
    assert_eq!(
        (ended["status"]["lifecycleState"].as_str(), ended["status"]["exitCode"].as_i64()),
        (Some("stopped"), Some(0))
    );
    let again = fx.server().post_empty(&fx.path(&format!("/{clean}/stop")));
    again.expect_status(200);
    assert_eq!(again.json["status"]["finishedAt"], ended["status"]["finishedAt"]);
    assert_eq!(again.json["metadata"]["resourceVersion"], ended["metadata"]["resourceVersion"]);

    // Waiting for `ready` on a terminal sandbox can never succeed.
    let unsatisfiable = fx.server().get(&fx.path(&format!("/{clean}?waitFor=ready")));
    unsatisfiable.expect_status(409);
    assert_eq!(unsatisfiable.code(), "op.wait_unsatisfiable");
    assert_eq!(unsatisfiable.detail()["observed"]["lifecycleState"], "stopped");

    // The image is in use until its sandboxes are deleted.
    let in_use = fx.server().delete(&format!("/api/images?reference={}", fx.image));
    in_use.expect_status(409);
    assert_eq!(in_use.code(), "op.conflict");
    assert_eq!(in_use.detail()["reason"], "image_in_use");
    fx.delete(&id);
    fx.delete(&clean);
    fx.server().delete(&fx.path(&format!("/{id}"))).expect_status(404);
    fx.server().get(&fx.path(&format!("/{id}"))).expect_status(404);
}

#[test]
fn sandbox_lifecycle_listing_waiting_stop_and_fencing() {
    let fx = Fixture::start();
    let a = id_of(&fx.create(&["sleep", "1000"], json!({ "labels": { "team": "red", "tier": "1" } })));
    let b = id_of(&fx.create(&["sleep", "1000"], json!({ "labels": { "team": "blue" } })));
    let ready = fx.server().get(&fx.path(&format!("/{a}?waitFor=ready&timeoutMs=60000")));
    ready.expect_status(200);
    assert_eq!(ready.json["status"]["lifecycleState"], "ready");
    assert_eq!(ready.json["status"]["conditions"][0]["status"], "True");

    // A wait that cannot be met in time is 408 with what was observed.
    let timeout = fx.server().get(&fx.path(&format!("/{a}?waitFor=stopped&timeoutMs=0")));
    timeout.expect_status(408);
    assert_eq!(timeout.code(), "op.wait_timeout");
    assert_eq!(timeout.detail()["observed"]["lifecycleState"], "ready");

    // Listing: label filters, state filter, pagination in id order.
    let ids = |query: &str| -> Vec<String> {
        let resp = fx.server().get(&fx.path(query));
        resp.expect_status(200);
        resp.json["items"].as_array().expect("items").iter().map(id_of).collect()
    };
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(ids(""), both);
    assert_eq!(ids("?labelKey=team&labelValue=red"), vec![a.clone()]);
    assert_eq!(ids("?labelKey=tier"), vec![a.clone()]);
    assert_eq!(ids("?status=ready"), both);
    assert!(ids("?status=stopped").is_empty());
    let first = fx.server().get(&fx.path("?limit=1"));
    assert_eq!(first.json["metadata"]["remainingCount"], 1);
    let token = first.json["metadata"]["nextPageToken"].as_str().expect("nextPageToken").to_owned();
    assert_eq!(ids(&format!("?limit=1&pageToken={token}")), vec![both[1].clone()]);

    // Another tenant sees none of it.
    fx.server().create_tenant("other");
    let other = fx.server().get(&format!("/api/tenants/other/sandboxes/{a}"));
    other.expect_status(404);
    assert_eq!(other.code(), "op.not_found");
    assert_eq!(other.detail()["resource"], "sandbox");
    fx.server().post_empty(&format!("/api/tenants/other/sandboxes/{a}/stop")).expect_status(404);
    fx.server().delete(&format!("/api/tenants/other/sandboxes/{a}")).expect_status(404);
    assert!(fx.server().get("/api/tenants/other/sandboxes").json["items"].as_array().is_some_and(Vec::is_empty));

    // Stop: SIGTERM ends `sleep`; the sandbox is `stopped` by request when the call returns.
    let stopped = fx.server().post_json(&fx.path(&format!("/{a}/stop")), &json!({ "gracePeriodMs": 5000 }));
    stopped.expect_status(200);
    let status = &stopped.json["status"];
    assert_eq!(status["lifecycleState"], "stopped");
    assert_eq!(status["terminationReason"], "stopped_by_request");
    assert_eq!(ids("?status=stopped"), vec![a.clone()]);

    // Delete from `ready` with a grace period, and from `stopped`.
    let deleted = fx.server().delete(&fx.path(&format!("/{b}?gracePeriodMs=100")));
    deleted.expect_status(204);
    assert_nothing_left(&b);
    fx.delete(&a);
    assert!(ids("").is_empty());
}

#[test]
fn sandbox_network_has_only_loopback_and_cannot_reach_the_host() {
    let fx = Fixture::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind host listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let script = format!(
        "ip -o link; echo ROUTES; ip route; ip -6 route; echo END; \
         if nc -w 2 127.0.0.1 {port} </dev/null; then echo REACHED; else echo BLOCKED; fi; hostname"
    );
    let id = id_of(&fx.create(&["sh", "-c", &script], json!({})));
    fx.wait_stopped(&id);
    let out = fx.output(&id, "stdout");
    let (links, rest) = out.split_once("ROUTES\n").unwrap_or_else(|| panic!("no ROUTES marker: {out}"));
    let names: BTreeSet<&str> = links.lines().filter_map(|l| l.split(':').nth(1)).map(str::trim).collect();
    assert_eq!(names, BTreeSet::from(["lo"]), "only loopback: {links}");
    assert!(links.contains("UP"), "loopback is up: {links}");
    let (routes, rest) = rest.split_once("END\n").expect("END marker");
    assert!(routes.trim().is_empty(), "no routes: {routes:?}");
    assert!(rest.contains("BLOCKED") && !rest.contains("REACHED"), "{rest}");
    assert_eq!(rest.lines().last(), Some(&id[..id.len().min(63)]), "hostname is the sandbox id");
    // The sandbox's 127.0.0.1 is its own: the host listener never saw a connection.
    assert_eq!(listener.accept().map(|_| ()).map_err(|e| e.kind()), Err(std::io::ErrorKind::WouldBlock));
    fx.delete(&id);
}

#[test]
fn sandbox_names_localhost_and_itself_as_other_runtimes_do() {
    let fx = Fixture::start();
    // A new user's first try: a server on the sandbox's loopback, reached by name.
    let script = "mkdir -p /tmp/www && echo served > /tmp/www/index.html && httpd -p 127.0.0.1:8000 -h /tmp/www                   && wget -q -O - http://localhost:8000/index.html && wget -q -O - http://$(hostname):8000/index.html                   && echo HOSTNAME $(cat /etc/hostname) && echo ROOT CAN EDIT >> /etc/hosts && tail -n 1 /etc/hosts";
    let id = id_of(&fx.create(&["sh", "-c", script], json!({})));
    let ended = fx.wait_stopped(&id);
    let out = fx.output(&id, "stdout");
    assert_eq!(ended["status"]["exitCode"], 0, "{ended}\nstdout: {out}\nstderr: {}", fx.output(&id, "stderr"));
    let hostname = &id[..id.len().min(63)];
    assert_eq!(out, format!("served\nserved\nHOSTNAME {hostname}\nROOT CAN EDIT\n"), "{out}");
    fx.delete(&id);
}

#[test]
fn sandbox_limits_contain_memory_hogs_and_fork_bombs() {
    let fx = Fixture::start();
    let hog = id_of(&fx.create(
        &["sh", "-c", "a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done"],
        json!({ "spec": { "resources": { "memoryLimitBytes": 33554432 } } }),
    ));
    let bomb = id_of(&fx.create(
        &["sh", "-c", "echo started; i=0; while [ $i -lt 64 ]; do sleep 1000 & i=$((i+1)); done; echo loop-done"],
        json!({ "spec": { "resources": { "pidsLimit": 16 } } }),
    ));
    let ended = fx.wait_stopped(&hog);
    assert_eq!(ended["status"]["lifecycleState"], "failed");
    assert_eq!(ended["status"]["terminationReason"], "oom_killed");
    assert_eq!(ended["status"]["exitCode"], 137);
    // The server kept serving.
    fx.server().get("/health").expect_status(200);

    // busybox sh gives up (exit 2) at the first fork the pids limit refuses; the sleeps it did
    // start end with the sandbox.
    let ended = fx.wait_stopped(&bomb);
    assert_eq!(ended["status"]["terminationReason"], "exited", "{ended}");
    assert_eq!(fx.output(&bomb, "stdout"), "started\n", "the loop never completed");
    assert!(fx.output(&bomb, "stderr").contains("can't fork"), "forks beyond the pids limit failed");
    fx.delete(&hog);
    fx.delete(&bomb);
}

#[test]
fn sandboxes_from_one_image_do_not_see_each_others_writes() {
    let fx = Fixture::start();
    let writer =
        id_of(&fx.create(&["sh", "-c", "echo secret > /marker && echo extra >> /etc/passwd && echo wrote"], json!({})));
    fx.wait_stopped(&writer);
    assert_eq!(fx.output(&writer, "stdout"), "wrote\n");
    let reader = id_of(&fx.create(
        &["sh", "-c", "if [ -e /marker ]; then echo SEEN; else echo CLEAN; fi; grep -c extra /etc/passwd; touch /tmp/t && echo tmp-ok"],
        json!({})
    ));
    fx.wait_stopped(&reader);
    assert_eq!(fx.output(&reader, "stdout"), "CLEAN\n0\ntmp-ok\n");
    let rootfs = fx.dirs.data().join("images/rootfs").join(&fx.digest["sha256:".len()..]);
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(!rootfs.join("marker").exists(), "the shared image root stays pristine");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("image passwd");
    assert!(!passwd.contains("extra"));
    fx.delete(&writer);
    fx.delete(&reader);
}

#[test]
fn sandbox_bad_specs_are_rejected_with_the_field_named() {
    let fx = Fixture::start();
    // An image without Entrypoint or Cmd, for the empty command line case.
    let mut bare = crate::registry::busybox_config();
    bare["config"] = json!({ "Env": ["PATH=/bin"] });
    let busybox = std::fs::read("/usr/bin/busybox").expect("busybox");
    fx.registry.push_image("nimbus-test/bare:1", vec![("bin/busybox".into(), busybox, 0o755)], bare);
    let bare_ref = format!("{}/nimbus-test/bare:1", fx.registry.host());
    let root = fx.root();
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({ "spec": { "root": root, "bogus": 1 } }), 400, "op.invalid_input", "spec.bogus"),
        (
            json!({ "spec": { "root": root, "process": { "argv": ["true"], "bogus": 1 } } }),
            400,
            "op.invalid_input",
            "spec.process.bogus",
        ),
        (
            json!({ "spec": { "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": bare_ref } } } }),
            400,
            "op.invalid_input",
            "spec.process.argv",
        ),
        (
            json!({ "spec": { "root": root, "owner": { "kind": "service" } } }),
            400,
            "op.invalid_input",
            "spec.owner.kind",
        ),
        (json!({ "spec": { "root": { "kind": "rootfs", "path": "/" } } }), 400, "op.invalid_input", "spec.root.kind"),
        (
            json!({ "spec": { "root": { "kind": "oci_image", "source": { "kind": "build", "context": "." } } } }),
            400,
            "op.invalid_input",
            "spec.root.source.kind",
        ),
        (json!({ "spec": { "root": root }, "labels": { "bad key": "v" } }), 400, "op.invalid_input", "labels.bad key"),
        (json!({ "spec": { "root": root }, "labels": { "k": "a\u{7}b" } }), 400, "op.invalid_input", "labels.k"),
        (
            json!({ "spec": { "root": root, "resources": { "cpuCount": 8 } } }),
            400,
            "op.cap_exceeded",
            "spec.resources.cpuCount",
        ),
        (
            json!({ "spec": { "root": root, "resources": { "memoryLimitBytes": 8589934592u64 } } }),
            400,
            "op.cap_exceeded",
            "spec.resources.memoryLimitBytes",
        ),
        (
            json!({ "spec": { "root": root, "resources": { "pidsLimit": 100000 } } }),
            400,
            "op.cap_exceeded",
            "spec.resources.pidsLimit",
        ),
        (
            json!({ "spec": { "root": root, "resources": { "memoryLimitBytes": 1024 } } }),
            400,
            "op.invalid_input",
            "spec.resources.memoryLimitBytes",
        ),
        (
            json!({ "spec": { "root": root, "process": { "env": ["NIMBUS_SANDBOX_ID=x"] } } }),
            400,
            "op.invalid_input",
            "spec.process.env[0]",
        ),
        (
            json!({ "spec": { "root": root, "process": { "env": ["NOEQUALS"] } } }),
            400,
            "op.invalid_input",
            "spec.process.env[0]",
        ),
        (
            json!({ "spec": { "root": root, "process": { "cwd": "relative" } } }),
            400,
            "op.invalid_input",
            "spec.process.cwd",
        ),
        (json!({ "profile": "gamer", "spec": { "root": root } }), 400, "op.invalid_input", "profile"),
        (json!({ "spec": { "root": root, "tenantId": "someone-else" } }), 400, "op.invalid_input", "spec.tenantId"),
        (json!({ "spec": { "root": root, "backend": "vmware" } }), 400, "op.invalid_input", "spec.backend"),
        (
            json!({ "spec": { "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": "Not A Ref" } } } }),
            400,
            "op.invalid_input",
            "spec.root.source.reference",
        ),
    ];
    for (body, status, code, field) in cases {
        let resp = fx.server().post_json(&fx.path(""), &body);
        assert_eq!((resp.status, resp.code()), (status, code), "{body}: {resp}");
        assert_eq!(resp.detail()["field"], field, "{body}: {resp}");
    }
    let over =
        fx.server().post_json(&fx.path(""), &json!({ "spec": { "root": root, "resources": { "cpuCount": 8 } } }));
    assert_eq!(
        (over.detail()["cap"].as_str(), over.detail()["observed"].as_u64(), over.detail()["limit"].as_u64()),
        (Some("cpuCount"), Some(8), Some(4))
    );

    // A missing image is 404 with the reference; krun fails closed with 501.
    let missing = format!("{}/nimbus-test/absent:1", fx.registry.host());
    let resp = fx.server().post_json(
        &fx.path(""),
        &json!({ "spec": { "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": missing } }, "process": { "argv": ["true"] } } }),
    );
    resp.expect_status(404);
    assert_eq!(resp.code(), "sandbox.image_not_found");
    assert_eq!(resp.detail()["reference"], missing.as_str());
    let unreachable = format!("127.0.0.1:{}/nimbus-test/busybox:1", crate::registry::free_port());
    let resp = fx.server().post_json(
        &fx.path(""),
        &json!({ "spec": { "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": unreachable } }, "process": { "argv": ["true"] } } }),
    );
    resp.expect_status(502);
    assert_eq!(resp.code(), "sandbox.image_pull_failed");
    assert_eq!(resp.json["error"]["retryable"], true);
    assert_eq!(resp.detail()["reference"], unreachable.as_str());
    let krun = fx.server().post_json(
        &fx.path(""),
        &json!({ "spec": { "root": root, "backend": "krun", "process": { "argv": ["true"] } } }),
    );
    krun.expect_status(501);
    assert_eq!(krun.code(), "sandbox.backend_unavailable");
    assert_eq!(krun.detail()["backend"], "krun");
    assert!(krun.detail()["reason"].as_str().is_some_and(|r| !r.is_empty()));

    // A missing executable makes a created sandbox that failed to start.
    let failed = fx
        .server()
        .post_json(&fx.path(""), &json!({ "spec": { "root": root, "process": { "argv": ["/no/such/binary"] } } }));
    failed.expect_status(201);
    let failed = fx.wait_stopped(&id_of(&failed.json));
    assert_eq!(
        (failed["status"]["lifecycleState"].as_str(), failed["status"]["terminationReason"].as_str()),
        (Some("failed"), Some("start_failed"))
    );
    assert!(failed["status"]["message"].as_str().is_some_and(|m| m.contains("/no/such/binary")), "{failed}");
    assert_eq!(failed["status"]["exitCode"], Value::Null);
    fx.delete(&id_of(&failed));

    // Query parameters.
    for query in ["?status=sleeping", "?labelValue=x", "?limit=x", "?labelKey=bad%20key"] {
        fx.server().get(&fx.path(query)).expect_status(400);
    }
    fx.server().get("/api/tenants/nobody/sandboxes").expect_status(404);
    assert!(
        fx.server().get(&fx.path("")).json["items"].as_array().is_some_and(Vec::is_empty),
        "no sandbox was left by a bad request"
    );
}

#[test]
fn sandboxes_outlive_a_server_restart_and_lost_ones_are_cleaned_up() {
    let mut fx = Fixture::start();
    let sleepers: Vec<String> = (0..5).map(|_| id_of(&fx.create(&["sleep", "1000"], json!({})))).collect();
    let finisher = id_of(&fx.create(&["sh", "-c", "sleep 2; exit 7"], json!({})));
    let lost = id_of(&fx.create(&["sleep", "1000"], json!({})));
    for id in sleepers.iter().chain([&finisher, &lost]) {
        fx.server().get(&fx.path(&format!("/{id}?waitFor=ready&timeoutMs=60000"))).expect_status(200);
    }
    fx.server.as_mut().expect("server").stop();
    // The supervisor of `lost` dies while no server runs.
    let pid_file = fx.dirs.data().join("sandboxes").join(&lost).join("supervisor.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file).expect("supervisor.pid").trim().parse().expect("pid");
    kill9(pid);

    fx.server = Some(Server::start_in(&fx.dirs));
    for id in &sleepers {
        let got = fx.server().get(&fx.path(&format!("/{id}")));
        assert_eq!(got.json["status"]["lifecycleState"], "ready", "re-adopted: {got}");
    }
    let ended = fx.wait_stopped(&finisher);
    assert_eq!(
        (ended["status"]["exitCode"].as_i64(), ended["status"]["terminationReason"].as_str()),
        (Some(7), Some("exited"))
    );
    let gone = fx.server().get(&fx.path(&format!("/{lost}")));
    assert_eq!(gone.json["status"]["lifecycleState"], "failed");
    assert_eq!(gone.json["status"]["terminationReason"], "server_restart_lost");
    assert_nothing_left_running(&lost);
    for id in &sleepers {
        let stopped = fx.server().post_json(&fx.path(&format!("/{id}/stop")), &json!({ "gracePeriodMs": 5000 }));
        assert_eq!(stopped.json["status"]["terminationReason"], "stopped_by_request", "{stopped}");
        fx.delete(id);
    }
    fx.delete(&finisher);
    fx.delete(&lost);
}

/// A lost sandbox has no process or cgroup left (its record and logs stay until deleted).
fn assert_nothing_left_running(id: &str) {
    for controller in ["memory", "pids", "cpu"] {
        assert!(!PathBuf::from("/sys/fs/cgroup").join(controller).join("nimbus").join(id).exists());
    }
    let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
    assert!(!mounts.contains(id));
}

#[allow(unsafe_code)]
fn kill9(pid: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is a supervisor this test's
    // server started, read from its own pid file.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill {pid}");
}

#[test]
fn sandbox_process_is_confined() {
    let fx = Fixture::start();
    let script = "grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status; \
                  echo pid1=$(cat /proc/1/comm); \
                  if mount -t tmpfs none /mnt 2>/dev/null; then echo MOUNTED; else echo mount-denied; fi; \
                  if echo 1 > /proc/sys/kernel/panic 2>/dev/null; then echo SYSCTL; else echo sysctl-denied; fi; \
                  if [ -s /proc/kcore ]; then echo KCORE; else echo kcore-masked; fi; \
                  if [ -n \"$(ls -A /sys/devices/virtual/powercap 2>/dev/null)\" ]; then echo POWERCAP; else echo powercap-masked; fi; \
                  grep ' /tmp ' /proc/mounts | cut -d' ' -f3; \
                  cut -d: -f3 /proc/self/cgroup | sort -u; \
                  ls /dev | tr '\\n' ' '";
    let id = id_of(&fx.create(&["sh", "-c", script], json!({})));
    fx.wait_stopped(&id);
    let out = fx.output(&id, "stdout");
    let line = |prefix: &str| out.lines().find(|l| l.starts_with(prefix)).map(|l| l[prefix.len()..].trim().to_owned());
    assert_eq!(line("Seccomp:").as_deref(), Some("2"), "a seccomp filter is installed: {out}");
    assert_eq!(line("NoNewPrivs:").as_deref(), Some("1"), "{out}");
    // CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE.
    assert_eq!(line("CapEff:").as_deref(), Some("00000000000005fb"), "{out}");
    assert_eq!(line("CapBnd:").as_deref(), Some("00000000000005fb"), "{out}");
    assert_ne!(line("pid1=").as_deref(), Some("sh"), "PID 1 is the Nimbus init, not the main process: {out}");
    for expected in ["mount-denied", "sysctl-denied", "kcore-masked", "powercap-masked", "tmpfs"] {
        assert!(out.lines().any(|l| l == expected), "{expected}: {out}");
    }
    assert!(out.lines().any(|l| l == "/"), "the cgroup namespace hides the host's cgroup paths: {out}");
    let devices: BTreeSet<&str> = out.lines().last().unwrap_or("").split_whitespace().collect();
    for dev in ["null", "zero", "full", "random", "urandom", "tty", "pts"] {
        assert!(devices.contains(dev), "/dev/{dev}: {devices:?}");
    }
    for absent in ["sda", "vda", "mem", "kmsg", "kvm"] {
        assert!(!devices.contains(absent), "/dev/{absent} must not exist: {devices:?}");
    }
    fx.delete(&id);
}

#[test]
fn sandbox_tenant_quota_is_enforced() {
    let fx = Fixture::start();
    // 32 sandboxes of 4 CPUs use the tenant's 128-CPU quota.
    let ids: Vec<String> = (0..32)
        .map(|_| id_of(&fx.create(&["sleep", "1000"], json!({ "spec": { "resources": { "cpuCount": 4 } } }))))
        .collect();
    let body = json!({ "spec": { "root": fx.root(), "process": { "argv": ["sleep", "1000"] } } });
    let refused = fx.server().post_json(&fx.path(""), &body);
    refused.expect_status(429);
    assert_eq!(refused.code(), "rate.resource_exhausted");
    assert_eq!(refused.detail()["resource"], "cpu");
    assert_eq!((refused.detail()["limit"].as_u64(), refused.detail()["current"].as_u64()), (Some(128), Some(128)));
    // A stopped sandbox no longer counts; another tenant has its own quota.
    fx.server().post_json(&fx.path(&format!("/{}/stop", ids[0])), &json!({ "gracePeriodMs": 0 })).expect_status(200);
    let admitted = fx.server().post_json(&fx.path(""), &body);
    admitted.expect_status(201);
    fx.server().create_tenant("second");
    let other = fx.server().post_json("/api/tenants/second/sandboxes", &body);
    other.expect_status(201);
    fx.server().delete(&format!("/api/tenants/second/sandboxes/{}", id_of(&other.json))).expect_status(204);
    // Deleting the tenant deletes its sandboxes.
    let count = fx.server().get(&fx.path("?limit=100")).json["items"].as_array().map_or(0, Vec::len);
    assert_eq!(count, 33);
    fx.server().delete(&format!("/api/tenants/{TENANT}")).expect_status(204);
    for id in ids.iter().chain([&id_of(&admitted.json)]) {
        assert_nothing_left(id);
    }
}

#[test]
fn sandbox_logs_follow_until_exit_and_carry_binary_output() {
    let fx = Fixture::start();
    let id = id_of(&fx.create(&["sh", "-c", "echo one; printf '\\377\\376\\n'; sleep 1; echo two >&2"], json!({})));
    // Follow from the start: the stream ends by itself with the exit record.
    let followed = fx.server().get(&fx.path(&format!("/{id}/logs?follow=true")));
    followed.expect_status(200);
    assert_eq!(followed.header("cache-control"), Some("no-store"));
    let records: Vec<Value> = followed.text().lines().map(|l| serde_json::from_str(l).expect("NDJSON")).collect();
    let data: Vec<(&str, &str)> =
        records.iter().filter_map(|r| Some((r["kind"].as_str()?, r["data"].as_str()?))).collect();
    assert_eq!(data.first(), Some(&("stdout", "one\n")), "{records:?}");
    let binary = records.iter().find(|r| r["encoding"] == "base64").expect("a base64 record");
    assert_eq!(binary["data"], "//4K", "0xff 0xfe newline, base64-encoded");
    assert!(data.contains(&("stderr", "two\n")), "{records:?}");
    assert_eq!(records.last(), Some(&json!({ "kind": "exit", "code": 0, "terminationReason": "exited" })));
    let times: Vec<&str> = records.iter().filter_map(|r| r["time"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]) && !times.is_empty(), "records are in time order: {times:?}");
    // tail=1 keeps the newest record, then the exit record.
    let tail = fx.server().get(&fx.path(&format!("/{id}/logs?tail=1")));
    let lines: Vec<Value> = tail.text().lines().map(|l| serde_json::from_str(l).expect("NDJSON")).collect();
    assert_eq!(lines.len(), 2, "{tail}");
    assert_eq!(lines[0]["data"], "two\n");
    fx.server().get(&fx.path(&format!("/{id}/logs?follow=maybe"))).expect_status(400);
    fx.delete(&id);
}

//! The sandbox benchmark: raw runtime start vs Nimbus create→ready, and idle memory per sandbox.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::Server;
use crate::session;

/// Timed starts per case.
const STARTS: usize = 40;
/// Idle sandboxes held at once for the memory figure.
const IDLE: usize = 100;
/// Sandboxes per tenant in the idle case (the tenant quota is 64 active sandboxes).
const TENANT_SANDBOXES: usize = 50;
/// Busybox applets linked in the benchmark image.
const APPLETS: &[&str] = &["sh", "true", "sleep", "echo", "cat"];

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((p / 100.0) * (sorted.len().saturating_sub(1)) as f64).round() as usize;
    sorted.get(index.min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

/// A docker-archive tar of a one-layer busybox image (from the host's static busybox).
pub(crate) fn busybox_archive() -> Result<Vec<u8>, String> {
    let busybox = std::fs::read("/usr/bin/busybox").map_err(|e| format!("/usr/bin/busybox (busybox-static): {e}"))?;
    let mut layer = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| -> Result<(), String> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        if let Some(link) = link {
            header.set_link_name(link).map_err(|e| e.to_string())?;
        }
        layer.append_data(&mut header, path, data).map_err(|e| e.to_string())
    };
    for dir in ["bin/", "tmp/", "proc/", "sys/", "dev/", "etc/"] {
        add(dir, tar::EntryType::Directory, b"", None)?;
    }
    add("bin/busybox", tar::EntryType::Regular, &busybox, None)?;
    for applet in APPLETS {
        add(&format!("bin/{applet}"), tar::EntryType::Symlink, b"", Some("busybox"))?;
    }
    add("etc/passwd", tar::EntryType::Regular, b"root:x:0:0:root:/root:/bin/sh\n", None)?;
    let layer = layer.into_inner().map_err(|e| e.to_string())?;
    let config = json!({ "architecture": "amd64", "os": "linux",
                         "config": { "Cmd": ["sh"], "Env": ["PATH=/bin"] }, "rootfs": { "type": "layers", "diff_ids": [] } });
    let manifest = json!([{ "Config": "config.json", "RepoTags": ["bench/busybox:1"], "Layers": ["layer.tar"] }]);
    let mut archive = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        ("manifest.json", manifest.to_string().into_bytes()),
        ("config.json", config.to_string().into_bytes()),
        ("layer.tar", layer),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        archive.append_data(&mut header, name, bytes.as_slice()).map_err(|e| e.to_string())?;
    }
    archive.into_inner().map_err(|e| e.to_string())
}

pub(crate) struct Api {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Api {
    pub(crate) fn new(server: &Server) -> Self {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        Self { agent, base: format!("http://{}", server.address), auth: format!("Bearer {}", server.token) }
    }

    /// `POST path` with a JSON body; the status and the raw answer (a PNG, say).
    pub(crate) fn post_raw(&self, path: &str, json: &str) -> Result<(u16, Vec<u8>), String> {
        let request = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .body(json.as_bytes().to_vec())
            .map_err(|e| e.to_string())?;
        let response = self.agent.run(request).map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response.into_body().with_config().limit(64 << 20).read_to_vec().map_err(|e| e.to_string())?;
        Ok((status, bytes))
    }

    pub(crate) fn call(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.base);
        let request = ureq::http::Request::builder().method(method).uri(&url).header("authorization", &self.auth);
        let response = match body {
            Some((content_type, bytes)) => {
                let request = request.header("content-type", content_type).body(bytes).map_err(|e| e.to_string())?;
                self.agent.run(request)
            }
            None => self.agent.run(request.body(()).map_err(|e| e.to_string())?),
        }
        .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Creates a busybox sandbox running `argv`, with `network` as its `spec.network` if given.
    fn create(&self, tenant: &str, argv: &[&str], network: Option<&Value>) -> Result<(String, Duration), String> {
        let mut body = json!({ "spec": { "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": "bench/busybox:1" } },
                                         "process": { "argv": argv }, "resources": { "memoryLimitBytes": 67108864 } } });
        if let Some(network) = network {
            body["spec"]["network"] = network.clone();
        }
        let started = Instant::now();
        let path = format!("/api/tenants/{tenant}/sandboxes");
        let (status, sandbox) = self.call("POST", &path, Some(("application/json", body.to_string().into_bytes())))?;
        let elapsed = started.elapsed();
        if status != 201 || sandbox["status"]["lifecycleState"] != "ready" {
            return Err(format!("create answered {status}: {sandbox}"));
        }
        Ok((format!("{tenant}/sandboxes/{}", sandbox["metadata"]["id"].as_str().unwrap_or_default()), elapsed))
    }

    /// Deletes a sandbox named `<tenant>/sandboxes/<id>` as `create` returns it.
    fn delete(&self, sandbox: &str) -> Result<(), String> {
        match self.call("DELETE", &format!("/api/tenants/{sandbox}"), None)? {
            (204, _) => Ok(()),
            (status, body) => Err(format!("delete answered {status}: {body}")),
        }
    }
}

/// The sandboxes a run created and has not deleted yet; deleted on drop (an early error).
pub(crate) struct Live<'a> {
    pub(crate) api: &'a Api,
    ids: Vec<String>,
}

impl<'a> Live<'a> {
    /// None yet.
    pub(crate) fn new(api: &'a Api) -> Self {
        Self { api, ids: Vec::new() }
    }

    pub(crate) fn create(&mut self, tenant: &str, argv: &[&str]) -> Result<(String, Duration), String> {
        self.create_networked(tenant, argv, None)
    }

    /// As `create`, with `network` (if given) as the sandbox's `spec.network`.
    pub(crate) fn create_networked(
        &mut self,
        tenant: &str,
        argv: &[&str],
        network: Option<&Value>,
    ) -> Result<(String, Duration), String> {
        let (id, elapsed) = self.api.create(tenant, argv, network)?;
        self.ids.push(id.clone());
        Ok((id, elapsed))
    }

    pub(crate) fn delete_all(&mut self) -> Result<(), String> {
        while let Some(id) = self.ids.pop() {
            self.api.delete(&id)?;
        }
        Ok(())
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.delete_all() {
            eprintln!("warning: cleaning up sandboxes failed: {e}");
        }
    }
}

/// `runc run` of `/bin/true` on a bundle whose read-only root is the image's unpacked root.
fn raw_starts(runc: &str, rootfs: &Path, work: &Path) -> Result<Vec<Duration>, String> {
    let bundle = work.join("bundle");
    std::fs::create_dir_all(&bundle).map_err(|e| e.to_string())?;
    let status = Command::new(runc).args(["spec"]).current_dir(&bundle).status().map_err(|e| format!("{runc}: {e}"))?;
    if !status.success() {
        return Err("runc spec failed".into());
    }
    let path = bundle.join("config.json");
    let mut spec: Value =
        serde_json::from_slice(&std::fs::read(&path).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    spec["root"] = json!({ "path": rootfs, "readonly": true });
    spec["process"]["args"] = json!(["/bin/true"]);
    spec["process"]["terminal"] = json!(false);
    spec["linux"]["resources"] = json!({ "memory": { "limit": 67108864 }, "pids": { "limit": 256 } });
    std::fs::write(&path, spec.to_string()).map_err(|e| e.to_string())?;
    let root = work.join("runc-state");
    let mut times = Vec::with_capacity(STARTS);
    for i in 0..STARTS {
        let started = Instant::now();
        let status = Command::new(runc)
            .arg("--root")
            .arg(&root)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(format!("nimbus-bench-{}-{i}", std::process::id()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        times.push(started.elapsed());
        if !status.success() {
            return Err(format!("runc run failed: {status}"));
        }
    }
    times.sort_unstable();
    Ok(times)
}

/// Resident and proportional set size of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    (field(&status, "VmRSS:"), field(&rollup, "Pss:"))
}

/// Memory in KiB: (RSS, PSS) of the server plus every supervisor, and the same plus each
/// sandbox's init (the supervisor's child, PID 1 of the sandbox).
struct Memory {
    supervised: (u64, u64),
    with_inits: (u64, u64),
}

fn total_memory(server: &Server) -> Memory {
    let sum = |pids: &[u32]| pids.iter().map(|p| memory_kib(*p)).fold((0, 0), |(r, p), (rss, pss)| (r + rss, p + pss));
    let mut pids = vec![server.pid()];
    let mut inits = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(server.data_dir.join("sandboxes")) {
        for dir in dirs.flatten() {
            let pid =
                std::fs::read_to_string(dir.path().join("supervisor.pid")).ok().and_then(|p| p.trim().parse().ok());
            if let Some(pid) = pid {
                pids.push(pid);
                let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
                inits.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
            }
        }
    }
    let supervised = sum(&pids);
    let init = sum(&inits);
    Memory { supervised, with_inits: (supervised.0 + init.0, supervised.1 + init.1) }
}

/// Runs the sandbox benchmark and prints the table.
pub fn run(nimbus: &str, runc: &str) -> Result<(), String> {
    let server = Server::start(nimbus)?;
    let api = Api::new(&server);
    // The idle sandboxes are spread over tenants, each within its quota of active sandboxes.
    let tenants: Vec<String> = (0..IDLE.div_ceil(TENANT_SANDBOXES)).map(|i| format!("bench{i}")).collect();
    for tenant in &tenants {
        api.call("POST", "/api/tenants", Some(("application/json", json!({ "id": tenant }).to_string().into_bytes())))?;
    }
    let (status, imported) = api.call("POST", "/api/images/import", Some(("application/x-tar", busybox_archive()?)))?;
    if status != 201 {
        return Err(format!("import answered {status}: {imported}"));
    }
    let digest = imported["images"][0]["digest"].as_str().ok_or("no digest")?.to_owned();
    let rootfs: PathBuf = server.data_dir.join("images/rootfs").join(&digest["sha256:".len()..]);

    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let raw = raw_starts(runc, &rootfs, work.path())?;

    // Sandboxes outlive their server: whatever happens below, delete what was created.
    let mut live = Live::new(&api);

    // Create→ready, one at a time; each sandbox is deleted before the next (not timed).
    let mut nimbus_times = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let (_, elapsed) = live.create(&tenants[0], &["sleep", "100000"])?;
        nimbus_times.push(elapsed);
        live.delete_all()?;
    }
    nimbus_times.sort_unstable();

    // Idle memory: server plus supervisors (plus each sandbox's init), before and with IDLE
    // sandboxes.
    let before = total_memory(&server);
    for i in 0..IDLE {
        live.create(&tenants[i / TENANT_SANDBOXES], &["sleep", "100000"])?;
    }
    let after = total_memory(&server);
    live.delete_all()?;

    // Sessions: exec round trip vs the raw runtime's exec, stdio echo, time to first command.
    let raw_exec = session::raw_execs(runc, &work.path().join("bundle"), &work.path().join("runc-state"))?;
    let exec = session::nimbus_execs(&mut live, &tenants[0])?;
    let echo = session::stdio_echoes(&mut live, &tenants[0], &server.address, &server.token)?;
    let first = session::first_commands(&mut live, &tenants[0])?;
    let per = |before: u64, after: u64| after.saturating_sub(before) as f64 / IDLE as f64 / 1024.0;

    let (raw_p50, nimbus_p50) = (percentile(&raw, 50.0), percentile(&nimbus_times, 50.0));
    println!("sandbox benchmark ({STARTS} starts per case, raw runtime measured in the same run)");
    println!("{:<52} {:>10} {:>10} {:>10}", "case", "p50 ms", "p99 ms", "vs raw");
    println!(
        "{:<52} {:>10.2} {:>10.2} {:>10}",
        "raw runtime: runc run /bin/true (same image root)",
        ms(raw_p50),
        ms(percentile(&raw, 99.0)),
        "1.00x"
    );
    println!(
        "{:<52} {:>10.2} {:>10.2} {:>9.2}x",
        "nimbus: POST sandbox -> ready (HTTP, pull-free)",
        ms(nimbus_p50),
        ms(percentile(&nimbus_times, 99.0)),
        nimbus_p50.as_secs_f64() / raw_p50.as_secs_f64()
    );
    let row = |name: &str, times: &[Duration], base: Option<Duration>| {
        let ratio =
            base.map_or("-".to_owned(), |b| format!("{:.2}x", percentile(times, 50.0).as_secs_f64() / b.as_secs_f64()));
        println!("{name:<52} {:>10.2} {:>10.2} {ratio:>10}", ms(percentile(times, 50.0)), ms(percentile(times, 99.0)));
    };
    let raw_exec_p50 = percentile(&raw_exec, 50.0);
    row("raw runtime: runc exec echo hi", &raw_exec, Some(raw_exec_p50));
    row("nimbus: session exec?wait=true echo hi", &exec, Some(raw_exec_p50));
    row("nimbus: stdio echo over the WebSocket", &echo, None);
    row("nimbus: create + session + first exec output", &first, None);
    println!();
    let (rss, pss) = (per(before.supervised.0, after.supervised.0), per(before.supervised.1, after.supervised.1));
    let (init_rss, init_pss) =
        (per(before.with_inits.0, after.with_inits.0), per(before.with_inits.1, after.with_inits.1));
    println!(
        "{IDLE} idle sandboxes (server alone before: {:.1} MiB RSS), growth per sandbox:",
        before.supervised.0 as f64 / 1024.0
    );
    println!("  server + supervisors:                {rss:.2} MiB RSS, {pss:.2} MiB PSS");
    println!("  server + supervisors + sandbox init: {init_rss:.2} MiB RSS, {init_pss:.2} MiB PSS");
    let ratio = nimbus_p50.as_secs_f64() / raw_p50.as_secs_f64();
    println!(
        "target: create->ready p50 <= 1.5x raw -> {ratio:.2}x {}",
        if ratio <= 1.5 { "(met)" } else { "(NOT met)" }
    );
    let exec_ratio = percentile(&exec, 50.0).as_secs_f64() / raw_exec_p50.as_secs_f64();
    println!(
        "target: exec round trip p50 <= 1.5x raw -> {exec_ratio:.2}x {}",
        if exec_ratio <= 1.5 { "(met)" } else { "(NOT met)" }
    );
    let first_ms = ms(percentile(&first, 50.0));
    println!(
        "target: time to first command p50 <= 50 ms -> {first_ms:.1} ms {}",
        if first_ms <= 50.0 { "(met)" } else { "(NOT met)" }
    );
    println!(
        "target: <= 2 MiB per idle sandbox (server + supervisors, PSS) -> {pss:.2} MiB {}",
        if pss <= 2.0 { "(met)" } else { "(NOT met)" }
    );
    Ok(())
}

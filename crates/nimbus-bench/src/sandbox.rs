//! The sandbox benchmark: raw runtime start vs Nimbus create→ready, and idle memory per sandbox.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::Server;

/// Timed starts per case.
const STARTS: usize = 40;
/// Idle sandboxes held at once for the memory figure.
const IDLE: usize = 100;
/// Busybox applets linked in the benchmark image.
const APPLETS: &[&str] = &["sh", "true", "sleep", "echo"];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((p / 100.0) * (sorted.len().saturating_sub(1)) as f64).round() as usize;
    sorted.get(index.min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

/// A docker-archive tar of a one-layer busybox image (from the host's static busybox).
fn busybox_archive() -> Result<Vec<u8>, String> {
    let busybox = std::fs::read("/usr/bin/busybox").map_err(|e| format!("/usr/bin/busybox (busybox-static): {e}"))?;
    let mut layer = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| -> Result<(), String> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
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
        archive.append_data(&mut header, name, bytes.as_slice()).map_err(|e| e.to_string())?;
    }
    archive.into_inner().map_err(|e| e.to_string())
}

struct Api {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Api {
    fn new(server: &Server) -> Self {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        Self { agent, base: format!("http://{}", server.address), auth: format!("Bearer {}", server.token) }
    }

    fn call(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<(u16, Value), String> {
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

    fn create(&self, argv: &[&str]) -> Result<(String, Duration), String> {
        let body = json!({ "spec": { "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": "bench/busybox:1" } },
                                     "process": { "argv": argv }, "resources": { "memoryLimitBytes": 67108864 } } });
        let started = Instant::now();
        let (status, sandbox) = self.call(
            "POST",
            "/api/tenants/bench/sandboxes",
            Some(("application/json", body.to_string().into_bytes())),
        )?;
        let elapsed = started.elapsed();
        if status != 201 || sandbox["status"]["lifecycleState"] != "ready" {
            return Err(format!("create answered {status}: {sandbox}"));
        }
        Ok((sandbox["metadata"]["id"].as_str().unwrap_or_default().to_owned(), elapsed))
    }

    fn delete(&self, id: &str) -> Result<(), String> {
        match self.call("DELETE", &format!("/api/tenants/bench/sandboxes/{id}"), None)? {
            (204, _) => Ok(()),
            (status, body) => Err(format!("delete answered {status}: {body}")),
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

/// Server plus every supervisor's memory, in KiB (RSS, PSS).
fn total_memory(server: &Server) -> (u64, u64) {
    let mut pids = vec![server.pid()];
    if let Ok(dirs) = std::fs::read_dir(server.data_dir.join("sandboxes")) {
        for dir in dirs.flatten() {
            if let Some(pid) =
                std::fs::read_to_string(dir.path().join("supervisor.pid")).ok().and_then(|p| p.trim().parse().ok())
            {
                pids.push(pid);
            }
        }
    }
    pids.into_iter().map(memory_kib).fold((0, 0), |(r, p), (rss, pss)| (r + rss, p + pss))
}

/// Runs the sandbox benchmark and prints the table.
pub fn run(nimbus: &str, runc: &str) -> Result<(), String> {
    let server = Server::start(nimbus)?;
    let api = Api::new(&server);
    api.call("POST", "/api/tenants", Some(("application/json", br#"{"id":"bench"}"#.to_vec())))?;
    let (status, imported) = api.call("POST", "/api/images/import", Some(("application/x-tar", busybox_archive()?)))?;
    if status != 201 {
        return Err(format!("import answered {status}: {imported}"));
    }
    let digest = imported["images"][0]["digest"].as_str().ok_or("no digest")?.to_owned();
    let rootfs: PathBuf = server.data_dir.join("images/rootfs").join(&digest["sha256:".len()..]);

    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let raw = raw_starts(runc, &rootfs, work.path())?;

    // Create→ready, one at a time; each sandbox is deleted before the next (not timed).
    let mut nimbus_times = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let (id, elapsed) = api.create(&["sleep", "100000"])?;
        nimbus_times.push(elapsed);
        api.delete(&id)?;
    }
    nimbus_times.sort_unstable();

    // Idle memory: server plus supervisors, before and with IDLE sandboxes.
    let (rss_before, pss_before) = total_memory(&server);
    let mut ids = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        ids.push(api.create(&["sleep", "100000"])?.0);
    }
    let (rss_after, pss_after) = total_memory(&server);
    for id in &ids {
        api.delete(id)?;
    }
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
    println!();
    println!(
        "{IDLE} idle sandboxes: server + supervisors grew by {:.2} MiB RSS / {:.2} MiB PSS per sandbox (server alone before: {:.1} MiB RSS)",
        per(rss_before, rss_after),
        per(pss_before, pss_after),
        rss_before as f64 / 1024.0
    );
    let ratio = nimbus_p50.as_secs_f64() / raw_p50.as_secs_f64();
    println!(
        "target: create->ready p50 <= 1.5x raw -> {ratio:.2}x {}",
        if ratio <= 1.5 { "(met)" } else { "(NOT met)" }
    );
    let pss = per(pss_before, pss_after);
    println!(
        "target: <= 2 MiB per idle sandbox -> {pss:.2} MiB PSS {}",
        if pss <= 2.0 { "(met)" } else { "(NOT met)" }
    );
    Ok(())
}

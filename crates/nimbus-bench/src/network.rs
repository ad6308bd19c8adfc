//! `nimbus-bench network <nimbus>`: the ports route (a request into a sandbox's port through the
//! server) against the same request made directly inside the sandbox's network namespace (a
//! client thread that joined it), in one run: latency one request at a time, and throughput with
//! several clients. The sandbox runs busybox `httpd`, serving a 1 KiB file; every request, on
//! either path, is a fresh HTTP/1.1 connection (`Connection: close`), as httpd serves them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::sandbox::{Api, Live, busybox_archive, ms, percentile};
use crate::server::Server;

/// Sequential requests per path (latency).
const SEQUENTIAL: usize = 400;
/// Concurrent clients (throughput) and requests each.
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 200;
/// The port httpd listens on inside the sandbox.
const PORT: u16 = 8000;

/// One `GET` over a fresh connection to `address`; checks a 200 with the 1 KiB body.
fn get(address: &str, path: &str, authorization: Option<&str>) -> Result<(), String> {
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::with_capacity(2048);
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    if !answer.starts_with(b"HTTP/1.1 200") && !answer.starts_with(b"HTTP/1.0 200") {
        return Err(format!("GET {path}: {}", String::from_utf8_lossy(&answer[..answer.len().min(200)])));
    }
    if answer.len() < 1024 {
        return Err(format!("GET {path}: a short answer of {} bytes", answer.len()));
    }
    Ok(())
}

/// Moves the calling thread into the network namespace of process `pid`.
#[allow(unsafe_code)]
fn join_netns(pid: u32) -> Result<(), String> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| e.to_string())?;
    // SAFETY: setns takes a descriptor this thread holds open for the call and a flag; it changes
    // only the calling thread's network namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Latencies of `SEQUENTIAL` requests (sorted), then throughput of `CLIENTS` × `PER_CLIENT`
/// (requests per second); each client thread first runs `enter`.
fn measure(
    address: &str,
    path: &str,
    authorization: Option<&str>,
    enter: &(dyn Fn() -> Result<(), String> + Sync),
) -> Result<(Vec<Duration>, f64), String> {
    let sequential = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<Vec<Duration>, String> {
                enter()?;
                let mut times = Vec::with_capacity(SEQUENTIAL);
                for _ in 0..SEQUENTIAL {
                    let started = Instant::now();
                    get(address, path, authorization)?;
                    times.push(started.elapsed());
                }
                times.sort_unstable();
                Ok(times)
            })
            .join()
            .map_err(|_| "a client thread panicked".to_owned())?
    })?;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    enter()?;
                    (0..PER_CLIENT).try_for_each(|_| get(address, path, authorization))
                })
            })
            .collect();
        clients.into_iter().try_for_each(|c| c.join().map_err(|_| "a client thread panicked".to_owned())?)
    })?;
    let throughput = (CLIENTS * PER_CLIENT) as f64 / started.elapsed().as_secs_f64();
    Ok((sequential, throughput))
}

fn p50(sorted: &[Duration]) -> f64 {
    ms(percentile(sorted, 50.0))
}

/// Runs the benchmark against the `nimbus` binary at `nimbus`.
pub fn run(nimbus: &str) -> Result<(), String> {
    let server = Server::start(nimbus)?;
    let api = Api::new(&server);
    api.call("POST", "/api/tenants", Some(("application/json", json!({ "id": "net" }).to_string().into_bytes())))?;
    let (status, imported) = api.call("POST", "/api/images/import", Some(("application/x-tar", busybox_archive()?)))?;
    if status != 201 {
        return Err(format!("import answered {status}: {imported}"));
    }
    let mut live = Live::new(&api);
    let script = format!(
        "mkdir -p /www && head -c 1024 /dev/zero | tr '\\0' x > /www/file && exec httpd -f -p 127.0.0.1:{PORT} -h /www"
    );
    let (sandbox, _) = live.create("net", &["sh", "-c", &script])?;
    let id = sandbox.rsplit('/').next().unwrap_or_default().to_owned();
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/nimbus/{id}/cgroup.procs"))
        .map_err(|e| format!("the sandbox's processes: {e}"))?;
    let pid: u32 = procs.lines().next().and_then(|l| l.trim().parse().ok()).ok_or("the sandbox has no process")?;

    let route = format!("/api/tenants/{sandbox}/ports/{PORT}/file");
    let authorization = format!("Bearer {}", server.token);
    // httpd may take a moment to listen: the first request through the route waits for it.
    let ready = Instant::now();
    while get(&server.address, &route, Some(&authorization)).is_err() {
        if ready.elapsed() > Duration::from_secs(10) {
            return Err("the sandbox's httpd never answered through the ports route".into());
        }
    }
    let inside = format!("127.0.0.1:{PORT}");
    let (direct, direct_rps) = measure(&inside, "/file", None, &|| join_netns(pid))?;
    let (proxied, proxied_rps) = measure(&server.address, &route, Some(&authorization), &|| Ok(()))?;
    live.delete_all()?;

    println!("network benchmark: GET of 1 KiB from busybox httpd in a sandbox, a fresh connection per request");
    println!("{:<58} {:>9} {:>9} {:>10}", "case", "p50 ms", "p99 ms", "req/s");
    let row = |name: &str, times: &[Duration], rps: f64| {
        println!("{name:<58} {:>9.3} {:>9.3} {rps:>10.0}", p50(times), ms(percentile(times, 99.0)));
    };
    row("direct, from inside the sandbox's network namespace", &direct, direct_rps);
    row("through the ports route (server, supervisor, SCM_RIGHTS)", &proxied, proxied_rps);
    let added = p50(&proxied) - p50(&direct);
    let ratio = proxied_rps / direct_rps;
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!("  target: p50 added <= 0.5 ms -> {added:.3} ms {}", verdict(added <= 0.5));
    println!("  target: throughput >= 0.5x direct -> {ratio:.2}x {}", verdict(ratio >= 0.5));
    Ok(())
}

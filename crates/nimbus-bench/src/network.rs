//! `nimbus-bench network <nimbus>`: both doors of a sandbox's network, each against the same
//! requests made without Nimbus in the way, in one run of one server (started with
//! `--egress-allow-internal`, so the egress half's upstream may be on the host's loopback):
//!
//! - inbound: the ports route (a request into a sandbox's port through the server) against the
//!   same request made directly inside the sandbox's network namespace (a client thread that
//!   joined it). The sandbox runs busybox `httpd`, serving a 1 KiB file; every request, on either
//!   path, is a fresh HTTP/1.1 connection (`Connection: close`), as httpd serves them.
//! - egress (`network/egress.rs`): the egress proxy (a client thread in the sandbox's namespace
//!   sending plain-HTTP proxy requests to its listener on 127.0.0.1:3128) against the same GETs
//!   made directly from the host, to a keep-alive server on the host's 127.0.0.2, and through a
//!   byte relay on the host (the floor of any proxy).
//!
//! Each half measures latency one request at a time, and throughput with several clients.

mod egress;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::sandbox::{Api, Live, busybox_archive, ms, percentile};
use crate::server::Server;

/// The tenant both halves' sandboxes are in.
const TENANT: &str = "net";
/// The inbound half: requests one at a time (latency), concurrent clients and requests each
/// (throughput).
const INBOUND: Load = Load { sequential: 400, clients: 8, per_client: 200 };
/// The port httpd listens on inside the inbound half's sandbox.
const PORT: u16 = 8000;

/// How many requests a path is measured with.
struct Load {
    /// Requests one at a time, on one client thread (latency).
    sequential: usize,
    /// Concurrent client threads (throughput) ...
    clients: usize,
    /// ... and requests each.
    per_client: usize,
}

/// One path's figures.
struct Figures {
    /// Latencies of the sequential requests, sorted.
    times: Vec<Duration>,
    /// Requests per second of the concurrent clients.
    rps: f64,
}

/// What a client thread runs first: nothing, or joining a sandbox's network namespace.
type Enter<'a> = &'a (dyn Fn() -> Result<(), String> + Sync);

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
pub(crate) fn join_netns(pid: u32) -> Result<(), String> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| e.to_string())?;
    // SAFETY: setns takes a descriptor this thread holds open for the call and a flag; it changes
    // only the calling thread's network namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// A process of the sandbox named `<tenant>/sandboxes/<id>` (as `Live::create` returns it), whose
/// network namespace is the sandbox's.
pub(crate) fn sandbox_pid(sandbox: &str) -> Result<u32, String> {
    let id = sandbox.rsplit('/').next().unwrap_or_default();
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/nimbus/{id}/cgroup.procs"))
        .map_err(|e| format!("the sandbox's processes: {e}"))?;
    procs.lines().next().and_then(|l| l.trim().parse().ok()).ok_or_else(|| "the sandbox has no process".to_owned())
}

/// Runs `work` on `threads` client threads at once, each after `enter`; their results in order.
fn on_clients<T: Send, W: Fn() -> Result<T, String> + Sync>(
    threads: usize,
    enter: Enter<'_>,
    work: &W,
) -> Result<Vec<T>, String> {
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    enter()?;
                    work()
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().map_err(|_| "a client thread panicked".to_owned())?).collect()
    })
}

/// Requests per second of `clients` threads making `each` requests; each thread runs `enter`,
/// then `connect` for its way to make requests (a fresh connection per call, or a kept one).
fn throughput<R: FnMut() -> Result<(), String>, C: Fn() -> Result<R, String> + Sync>(
    clients: usize,
    each: usize,
    enter: Enter<'_>,
    connect: &C,
) -> Result<f64, String> {
    let started = Instant::now();
    on_clients(clients, enter, &|| {
        let mut request = connect()?;
        (0..each).try_for_each(|_| request())
    })?;
    Ok((clients * each) as f64 / started.elapsed().as_secs_f64())
}

/// Latencies of `load.sequential` requests one at a time, then the throughput of `load.clients`
/// × `load.per_client`; `enter` and `connect` as for [`throughput`].
fn measure<R: FnMut() -> Result<(), String>, C: Fn() -> Result<R, String> + Sync>(
    load: &Load,
    enter: Enter<'_>,
    connect: &C,
) -> Result<Figures, String> {
    let mut times = on_clients(1, enter, &|| {
        let mut request = connect()?;
        let mut times = Vec::with_capacity(load.sequential);
        for _ in 0..load.sequential {
            let started = Instant::now();
            request()?;
            times.push(started.elapsed());
        }
        times.sort_unstable();
        Ok(times)
    })?;
    let times = times.pop().unwrap_or_default();
    let rps = throughput(load.clients, load.per_client, enter, connect)?;
    Ok(Figures { times, rps })
}

fn p50(figures: &Figures) -> f64 {
    ms(percentile(&figures.times, 50.0))
}

/// Prints `title` and a row (p50, p99, requests per second) per case.
fn print_table(title: &str, rows: &[(&str, &Figures)]) {
    println!("{title}");
    println!("{:<62} {:>9} {:>9} {:>10}", "case", "p50 ms", "p99 ms", "req/s");
    for (name, figures) in rows {
        let p99 = ms(percentile(&figures.times, 99.0));
        println!("{name:<62} {:>9.3} {p99:>9.3} {:>10.0}", p50(figures), figures.rps);
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// Prints the two targets for `measured` against `direct`: p50 added at most 0.5 ms, throughput
/// at least half.
fn print_targets(direct: &Figures, measured: &Figures) {
    let added = p50(measured) - p50(direct);
    let ratio = measured.rps / direct.rps;
    println!("  target: p50 added <= 0.5 ms -> {added:.3} ms {}", verdict(added <= 0.5));
    println!("  target: throughput >= 0.5x direct -> {ratio:.2}x {}", verdict(ratio >= 0.5));
}

/// Which halves a run measures.
pub enum Halves {
    /// Inbound, then egress.
    Both,
    /// The egress half alone (`nimbus-bench network <nimbus> egress`).
    Egress,
}

/// Runs the benchmark against the `nimbus` binary at `nimbus`.
pub fn run(nimbus: &str, halves: Halves) -> Result<(), String> {
    let server = Server::start_with(nimbus, &["--egress-allow-internal"])?;
    let api = Api::new(&server);
    api.call("POST", "/api/tenants", Some(("application/json", json!({ "id": TENANT }).to_string().into_bytes())))?;
    let (status, imported) = api.call("POST", "/api/images/import", Some(("application/x-tar", busybox_archive()?)))?;
    if status != 201 {
        return Err(format!("import answered {status}: {imported}"));
    }
    let mut live = Live::new(&api);
    if let Halves::Both = halves {
        inbound(&server, &mut live)?;
        println!();
    }
    egress::run(&mut live)
}

/// The inbound half: the ports route against requests from inside the sandbox.
fn inbound(server: &Server, live: &mut Live<'_>) -> Result<(), String> {
    let script = format!(
        "mkdir -p /www && head -c 1024 /dev/zero | tr '\\0' x > /www/file && exec httpd -f -p 127.0.0.1:{PORT} -h /www"
    );
    let (sandbox, _) = live.create(TENANT, &["sh", "-c", &script])?;
    let pid = sandbox_pid(&sandbox)?;

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
    // A fresh connection per request: a client's "connection" is only the request to make.
    let direct = measure(&INBOUND, &|| join_netns(pid), &|| Ok(|| get(&inside, "/file", None)))?;
    let proxied = measure(&INBOUND, &|| Ok(()), &|| Ok(|| get(&server.address, &route, Some(&authorization))))?;
    live.delete_all()?;

    print_table(
        "network benchmark, inbound: GET of 1 KiB from busybox httpd in a sandbox, a fresh connection per request",
        &[
            ("direct, from inside the sandbox's network namespace", &direct),
            ("through the ports route (server, supervisor, SCM_RIGHTS)", &proxied),
        ],
    );
    print_targets(&direct, &proxied);
    Ok(())
}

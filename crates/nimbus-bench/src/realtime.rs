//! `nimbus-bench realtime <nimbus binary>`: write→push latency over `/ws` with 1, 100 and 1,000
//! subscribers (one socket each, one subscription each, all on the written table), and the
//! server's RSS with 5,000 idle sockets. HTTP and WebSocket only, like any client.

use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::server::Server;

type Socket = WebSocket<TcpStream>;

fn post(server: &Server, path: &str, body: &Value) -> Result<(), String> {
    ureq::post(&format!("http://{}{path}", server.address))
        .header("authorization", &format!("Bearer {}", server.token))
        .send_json(body)
        .map(|_| ())
        .map_err(|e| format!("POST {path}: {e}"))
}

fn read_json(socket: &mut Socket) -> Result<Value, String> {
    loop {
        match socket.read().map_err(|e| e.to_string())? {
            Message::Text(text) => return serde_json::from_str(text.as_str()).map_err(|e| e.to_string()),
            Message::Close(frame) => return Err(format!("closed: {frame:?}")),
            _ => {}
        }
    }
}

/// Opens a socket past the handshake.
fn connect(server: &Server, tenant: &str) -> Result<Socket, String> {
    let mut request = format!("ws://{}/ws", server.address).into_client_request().map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    headers.insert("authorization", format!("Bearer {}", server.token).parse().map_err(|_| "bad header")?);
    headers.insert("x-tenant-id", tenant.parse().map_err(|_| "bad header")?);
    headers.insert("sec-websocket-protocol", "nimbus.v2".parse().map_err(|_| "bad header")?);
    let stream = TcpStream::connect(&server.address).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let (mut socket, _) = tungstenite::client::client(request, stream).map_err(|e| e.to_string())?;
    read_json(&mut socket)?;
    socket
        .send(Message::text(json!({ "type": "client_hello", "protocol": "nimbus.v2" }).to_string()))
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Write→push latency with `subscribers` sockets: each round inserts one document over HTTP
/// and waits until every subscriber has seen it; a sample is (push received − insert sent).
fn latency(server: &Server, tenant: &str, subscribers: usize, rounds: usize) -> Result<Vec<Duration>, String> {
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let (samples, received) = mpsc::channel::<(usize, Duration)>();
    let query = json!({ "table": "bench", "filters": [{ "field": "seq", "op": "gte", "value": 0 }],
                        "order": { "field": "seq", "direction": "desc" }, "limit": 1 });
    let mut sockets = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let mut socket = connect(server, tenant)?;
        let subscribe = json!({ "type": "subscribe", "request_id": format!("s{i}"), "query": query });
        socket.send(Message::text(subscribe.to_string())).map_err(|e| e.to_string())?;
        read_json(&mut socket)?;
        socket.get_ref().set_nonblocking(true).map_err(|e| e.to_string())?;
        sockets.push(socket);
    }
    // One reader thread polls every socket, so the client's own scheduling (one thread per
    // socket would be 1,000 threads on 2 cores) does not swamp what is measured.
    let readers = {
        let starts = starts.clone();
        std::thread::spawn(move || read_all(sockets, &starts, &samples))
    };
    let mut all = Vec::with_capacity(subscribers * rounds);
    // The table starts empty; seq 0 is a warm-up round, not measured.
    for seq in 0..=rounds {
        starts.lock().map_err(|_| "poisoned")?.push(Instant::now());
        post(
            server,
            &format!("/api/tenants/{tenant}/documents"),
            &json!({ "table": "bench", "fields": { "seq": seq } }),
        )?;
        let mut seen = 0;
        while seen < subscribers {
            let (got, sample) = received.recv_timeout(Duration::from_secs(60)).map_err(|e| e.to_string())?;
            if got == seq {
                seen += 1;
                if seq > 0 {
                    all.push(sample);
                }
            }
        }
    }
    // Readers end when the server goes away; they are detached here.
    drop(readers);
    all.sort();
    Ok(all)
}

/// Reads every socket's frames as they arrive (poll(2) over all of them) and reports, for each
/// `subscription_result`, the time since its write was sent. Ends when every socket has closed
/// or the receiver is gone.
fn read_all(mut sockets: Vec<Socket>, starts: &Mutex<Vec<Instant>>, samples: &mpsc::Sender<(usize, Duration)>) {
    use std::os::fd::AsRawFd;
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|s| libc::pollfd { fd: s.get_ref().as_raw_fd(), events: libc::POLLIN, revents: 0 })
        .collect();
    while fds.iter().any(|fd| fd.fd >= 0) {
        if poll(&mut fds) < 0 {
            return;
        }
        for (fd, socket) in fds.iter_mut().zip(sockets.iter_mut()) {
            if fd.revents == 0 {
                continue;
            }
            loop {
                match socket.read() {
                    Ok(Message::Text(text)) => {
                        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                        let Some(seq) = frame["data"][0]["seq"].as_u64() else { continue };
                        let now = Instant::now();
                        let start = starts.lock().ok().and_then(|s| s.get(seq as usize).copied());
                        if let Some(start) = start
                            && samples.send((seq as usize, now - start)).is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        fd.fd = -1;
                        break;
                    }
                }
            }
        }
    }
}

/// poll(2) with a 1 s timeout; the number of ready descriptors, or -1.
#[allow(unsafe_code)]
fn poll(fds: &mut [libc::pollfd]) -> i32 {
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd for the whole call, and its
    // length is passed alongside.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) }
}

fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_owned())
}

/// Runs the realtime benchmark and prints its figures.
pub fn run(nimbus: &str) -> Result<(), String> {
    let server = Server::start(nimbus)?;
    post(&server, "/api/tenants", &json!({ "id": "rt" }))?;
    println!("realtime: write→push latency (HTTP insert sent → subscription_result received)");
    for (subscribers, rounds) in [(1, 300), (100, 200), (1000, 100)] {
        let tenant = format!("rt{subscribers}");
        post(&server, "/api/tenants", &json!({ "id": tenant }))?;
        let samples = latency(&server, &tenant, subscribers, rounds)?;
        let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
        let target = if subscribers == 1000 {
            format!("  (target p50 ≤ 2 ms: {}, p99 ≤ 10 ms: {})", met(p50 <= 2.0), met(p99 <= 10.0))
        } else {
            String::new()
        };
        println!(
            "  {subscribers:>5} subscribers: p50 {p50:.2} ms  p99 {p99:.2} ms  ({} samples){target}",
            samples.len()
        );
    }
    drop(server);

    let server = Server::start(nimbus)?;
    post(&server, "/api/tenants", &json!({ "id": "idle" }))?;
    let before = rss_kib(server.pid())?;
    let mut sockets = Vec::with_capacity(5000);
    for _ in 0..5000 {
        sockets.push(connect(&server, "idle")?);
    }
    // One ping round trip on the last socket: every earlier handshake was handled before it.
    if let Some(last) = sockets.last_mut() {
        last.send(Message::text(json!({ "type": "ping" }).to_string())).map_err(|e| e.to_string())?;
        read_json(last)?;
    }
    let after = rss_kib(server.pid())?;
    println!(
        "realtime: server RSS {:.1} MiB before, {:.1} MiB with 5000 idle sockets ({:.1} KiB per socket)",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 5000.0
    );
    let (jobs, inserts) = crate::schedule::throughput(nimbus)?;
    println!(
        "scheduling: {jobs:.0} jobs/s (each inserting a document) vs {inserts:.0} plain HTTP inserts/s at concurrency 1: {:.2}x",
        jobs / inserts
    );
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

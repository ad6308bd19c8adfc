//! `nimbus-bench realtime <nimbus binary>`: write→push latency over `/ws` with 1, 100 and 1,000
//! subscribers (one socket each, one subscription each, all on the written table), and the
//! server's RSS with 5,000 idle sockets. HTTP and WebSocket only, like any client.

use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
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
    // A small read buffer: tungstenite zero-fills its whole read buffer on every read, which at
    // the default 128 KiB costs the client more than the frames it reads.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut socket, _) =
        tungstenite::client::client_with_config(request, stream, Some(config)).map_err(|e| e.to_string())?;
    read_json(&mut socket)?;
    socket
        .send(Message::text(json!({ "type": "client_hello", "protocol": "nimbus.v2" }).to_string()))
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Write→push latency with `subscribers` sockets, each subscribed to the live query below.
fn latency(server: &Server, tenant: &str, subscribers: usize, rounds: usize) -> Result<Vec<Duration>, String> {
    let query = json!({ "table": "bench", "filters": [{ "field": "seq", "op": "gte", "value": 0 }],
                        "order": { "field": "seq", "direction": "desc" }, "limit": 1 });
    latency_of(server, tenant, "bench", &json!({ "query": query }), subscribers, rounds)
}

/// Write→push latency with `subscribers` sockets, each with one subscription whose frame is
/// `subscribe` plus a `request_id` (`{"query": …}` or `{"function": …}`; its result must lead
/// with the newest document of `table` by `seq`): each round inserts one document into `table`
/// over HTTP and waits until every subscriber has seen it; a sample is (push received − insert
/// sent). Each round gives up after a minute.
pub(crate) fn latency_of(
    server: &Server,
    tenant: &str,
    table: &str,
    subscribe: &Value,
    subscribers: usize,
    rounds: usize,
) -> Result<Vec<Duration>, String> {
    let mut sockets = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let mut socket = connect(server, tenant)?;
        let mut frame = subscribe.clone();
        frame["type"] = json!("subscribe");
        frame["request_id"] = json!(format!("s{i}"));
        socket.send(Message::text(frame.to_string())).map_err(|e| e.to_string())?;
        let first = read_json(&mut socket)?;
        if first["type"] != "subscription_result" {
            return Err(format!("subscribe {frame} answered {first}"));
        }
        socket.get_ref().set_nonblocking(true).map_err(|e| e.to_string())?;
        sockets.push(socket.into_inner());
    }
    let path = format!("/api/tenants/{tenant}/documents");
    rounds_of(sockets, rounds, |seq| post(server, &path, &json!({ "table": table, "fields": { "seq": seq } })))
}

/// The floor under any server's fan-out on this machine: one thread writing one small
/// WebSocket frame (the size of a one-document `subscription_result`) to each of `subscribers`
/// loopback TCP sockets in turn, read by the same client as [`latency_of`]. Returns, sorted, the
/// time from each round's start to each write's return: what the server's `delivery_latency`
/// measures after its commit and evaluation. A loopback write also runs the receiver's side of
/// TCP and wakes the reader, on the writer's core.
pub(crate) fn fanout_floor(subscribers: usize, rounds: usize) -> Result<Vec<Duration>, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let (mut readers, mut writers) = (Vec::with_capacity(subscribers), Vec::with_capacity(subscribers));
    for _ in 0..subscribers {
        let reader = TcpStream::connect(address).map_err(|e| e.to_string())?;
        let (writer, _) = listener.accept().map_err(|e| e.to_string())?;
        for stream in [&reader, &writer] {
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
        }
        reader.set_nonblocking(true).map_err(|e| e.to_string())?;
        readers.push(reader);
        writers.push(writer);
    }
    let mut written = Vec::with_capacity(subscribers * rounds);
    rounds_of(readers, rounds, |seq| {
        let payload = json!({ "type": "subscription_result", "id": 1, "data": [
            { "_id": "01KBW6B3F1D3M1PZXG1BNS0Z4Y", "_creationTime": 1_765_000_000_000_u64, "seq": seq }] })
        .to_string();
        // An unmasked text frame (a 16-bit length from 126 bytes on).
        let mut frame = vec![0x81];
        match u8::try_from(payload.len()) {
            Ok(short @ ..126) => frame.push(short),
            _ => {
                frame.push(126);
                frame.extend_from_slice(&u16::try_from(payload.len()).map_err(|e| e.to_string())?.to_be_bytes());
            }
        }
        frame.extend_from_slice(payload.as_bytes());
        let started = Instant::now();
        for writer in &mut writers {
            std::io::Write::write_all(writer, &frame).map_err(|e| e.to_string())?;
            if seq > 0 {
                written.push(started.elapsed());
            }
        }
        Ok(())
    })?;
    written.sort();
    Ok(written)
}

/// Runs `rounds` measured rounds (after an unmeasured round 0) over `sockets`, read by
/// [`read_all`]: each round notes its start, calls `trigger` with its number, and waits until
/// every socket has received that round's frame; a sample is (frame received − round start),
/// returned sorted. Each round gives up after a minute.
fn rounds_of(
    sockets: Vec<TcpStream>,
    rounds: usize,
    mut trigger: impl FnMut(usize) -> Result<(), String>,
) -> Result<Vec<Duration>, String> {
    let subscribers = sockets.len();
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let (samples, received) = mpsc::channel::<Vec<(usize, Duration)>>();
    // One reader thread polls every socket, so the client's own scheduling (one thread per
    // socket would be 1,000 threads on 2 cores) does not swamp what is measured.
    let readers = {
        let starts = starts.clone();
        std::thread::spawn(move || read_all(sockets, &starts, &samples))
    };
    let mut all = Vec::with_capacity(subscribers * rounds);
    for seq in 0..=rounds {
        starts.lock().map_err(|_| "poisoned")?.push(Instant::now());
        trigger(seq)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0;
        while seen < subscribers {
            let wait = deadline.saturating_duration_since(Instant::now());
            let batch =
                received.recv_timeout(wait).map_err(|e| format!("round {seq}: {seen} of {subscribers} pushes: {e}"))?;
            for (got, sample) in batch {
                if got == seq {
                    seen += 1;
                    if seq > 0 {
                        all.push(sample);
                    }
                }
            }
        }
    }
    // The reader ends (closing its sockets) within a second of the receiver going away.
    drop(received);
    drop(readers);
    all.sort();
    Ok(all)
}

/// Reads every socket's frames as they arrive (one epoll set over all of them) and reports, for
/// each `subscription_result`, the time since its write was sent, one batch per wake-up (a
/// message per sample would wake the main thread a thousand times a round). Ends when every socket has
/// closed or the receiver is gone. Past the handshake it reads the raw TCP stream and scans the
/// server's unmasked frames itself: a full WebSocket and JSON parse per frame would make the
/// client, which shares the machine's cores with the server, the larger part of what is timed.
fn read_all(sockets: Vec<TcpStream>, starts: &Mutex<Vec<Instant>>, samples: &mpsc::Sender<Vec<(usize, Duration)>>) {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let mut streams: Vec<(TcpStream, Vec<u8>)> = sockets.into_iter().map(|s| (s, Vec::new())).collect();
    let Some(epoll) = Epoll::new(streams.iter().map(|(s, _)| s.as_raw_fd())) else { return };
    let mut open = streams.len();
    let mut ready = vec![0usize; 256];
    let mut chunk = vec![0u8; 64 * 1024];
    while open > 0 {
        let Some(count) = epoll.wait(&mut ready) else { return };
        // A quiet second: check that someone still listens (an empty batch), else stop.
        if count == 0 && samples.send(Vec::new()).is_err() {
            return;
        }
        let mut batch = Vec::new();
        for &index in &ready[..count] {
            let (stream, pending) = &mut streams[index];
            let read = match stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    epoll.remove(stream.as_raw_fd());
                    open -= 1;
                    continue;
                }
                Ok(read) => read,
            };
            pending.extend_from_slice(&chunk[..read]);
            let now = Instant::now();
            let mut consumed = 0;
            while let Some((payload, length)) = next_frame(&pending[consumed..]) {
                if let Some(seq) = seq_of(payload)
                    && let Some(start) = starts.lock().ok().and_then(|s| s.get(seq).copied())
                {
                    batch.push((seq, now - start));
                }
                consumed += length;
            }
            pending.drain(..consumed);
        }
        if !batch.is_empty() && samples.send(batch).is_err() {
            return;
        }
    }
}

/// The payload and total length of the first complete unmasked frame in `bytes`, if any.
fn next_frame(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let short = *bytes.get(1)? & 0x7f;
    let (length, header) = match short {
        126 => (u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    let payload = bytes.get(header..header + length)?;
    Some((payload, header + length))
}

/// The `seq` of the first document in a `subscription_result` frame.
fn seq_of(payload: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"seq\":";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&payload[at..at + digits]).ok()?.parse().ok()
}

/// An epoll set over sockets, each registered (level-triggered, readable) under its index.
struct Epoll(std::os::fd::OwnedFd);

#[allow(unsafe_code)]
impl Epoll {
    fn new(fds: impl Iterator<Item = std::os::fd::RawFd>) -> Option<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscall; a non-negative result is a new descriptor we then own.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a fresh, open descriptor owned by nobody else.
        let epoll = Self(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) });
        for (index, fd) in fds.enumerate() {
            let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: index as u64 };
            // SAFETY: both descriptors are open; `event` is valid for the call.
            if unsafe { libc::epoll_ctl(raw, libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
                return None;
            }
        }
        Some(epoll)
    }

    fn remove(&self, fd: std::os::fd::RawFd) {
        use std::os::fd::AsRawFd;
        // SAFETY: both descriptors are open; a null event is allowed for EPOLL_CTL_DEL.
        unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    /// Waits up to 1 s; fills `ready` with the indexes of readable sockets and returns how many,
    /// or `None` on error.
    fn wait(&self, ready: &mut [usize]) -> Option<usize> {
        use std::os::fd::AsRawFd;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; ready.len()];
        // SAFETY: `events` is a valid buffer of `events.len()` entries for the whole call.
        let count = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, 1000) };
        if count < 0 {
            return (std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted).then_some(0);
        }
        for (slot, event) in ready.iter_mut().zip(&events[..count as usize]) {
            *slot = event.u64 as usize;
        }
        Some(count as usize)
    }
}

fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_owned())
}

/// Measures and prints one latency row: `subscribers` sockets on a fresh tenant, `rounds` writes.
fn latency_row(server: &Server, subscribers: usize, rounds: usize) -> Result<(), String> {
    let tenant = format!("rt{subscribers}");
    post(server, "/api/tenants", &json!({ "id": tenant }))?;
    let samples = latency(server, &tenant, subscribers, rounds)?;
    let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
    let target = if subscribers == 1000 {
        format!("  (target p50 ≤ 2 ms: {}, p99 ≤ 10 ms: {})", met(p50 <= 2.0), met(p99 <= 10.0))
    } else {
        String::new()
    };
    println!("  {subscribers:>5} subscribers: p50 {p50:.2} ms  p99 {p99:.2} ms  ({} samples){target}", samples.len());
    Ok(())
}

/// `realtime-fanout <nimbus> <subscribers>`: only the latency row for one fan-out size (for
/// profiling one case).
pub fn fanout(nimbus: &str, subscribers: &str) -> Result<(), String> {
    let subscribers: usize = subscribers.parse().map_err(|_| format!("not a count: {subscribers}"))?;
    let server = Server::start(nimbus)?;
    latency_row(&server, subscribers, 100)
}

/// Runs the realtime benchmark and prints its figures.
pub fn run(nimbus: &str) -> Result<(), String> {
    let server = Server::start(nimbus)?;
    println!("realtime: write→push latency (HTTP insert sent → subscription_result received)");
    for (subscribers, rounds) in [(1, 300), (100, 200), (1000, 100)] {
        latency_row(&server, subscribers, rounds)?;
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

//! The egress half of `nimbus-bench network`: GETs through a sandbox's egress proxy against the
//! same GETs made directly from the host, to [`upstream`], a keep-alive HTTP/1.1 server on the
//! host's 127.0.0.2 (a loopback address, which the server reaches because it runs with
//! `--egress-allow-internal`; inside the sandbox 127.0.0.2 is its own, empty loopback), and
//! through [`relay`], a byte relay on 127.0.0.3: the floor of any proxy's cost on this machine.
//!
//! The sandbox (busybox, `sleep`) is allowed that one host and port. The proxied client is a
//! thread that joined the sandbox's network namespace and sends absolute-form requests
//! (`GET http://127.0.0.2:PORT/64`) to the proxy listener on 127.0.0.1:3128; the direct and
//! relayed clients send the same requests in origin form. On every path each client keeps one
//! connection for all its requests (the proxy keeps its upstream connection for consecutive
//! requests to the same host), so the figures are the per-request cost, not connection set-up.
//! Measured: a 64-byte body (latency one at a time, requests per second with several clients),
//! then a 1 MiB body on one connection (MiB/s, in rounds alternating the paths).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use serde_json::json;

use super::{Enter, Load, TENANT, join_netns, measure, print_table, print_targets, sandbox_pid, throughput, verdict};
use crate::sandbox::Live;

/// The host address the upstream listens on.
const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The host address the byte relay (the baseline for any proxy) listens on.
const RELAY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// The proxy listener inside every sandbox.
const PROXY: &str = "127.0.0.1:3128";
/// The small body (latency and requests per second).
const SMALL: usize = 64;
/// The large body (MiB/s), fetched on one connection per path in `LARGE_ROUNDS` rounds of
/// `LARGE_PER_ROUND`, the paths alternating (the host is shared: alternating spreads a burst of
/// other work over both paths); each path's median round counts.
const LARGE: usize = 1 << 20;
const LARGE_ROUNDS: usize = 5;
const LARGE_PER_ROUND: usize = 500;
/// Requests per path for the small body: a kept connection answers in tens of microseconds, so
/// more of them than the inbound half's fresh connections.
const EGRESS: Load = Load { sequential: 2000, clients: 8, per_client: 1000 };

/// Runs the egress half in a sandbox of `live`'s, and prints its figures.
pub(super) fn run(live: &mut Live<'_>) -> Result<(), String> {
    let upstream = upstream()?;
    let relay = relay(upstream.address)?;
    let authority = upstream.address.to_string();
    let network =
        json!({ "egress": { "allow": [{ "host": UPSTREAM_IP.to_string(), "ports": [upstream.address.port()] }] } });
    let (sandbox, _) = live.create_networked(TENANT, &["sleep", "100000"], Some(&network))?;
    let pid = sandbox_pid(&sandbox)?;
    let relay_address = relay.address.to_string();
    let (no_entry, into_sandbox) = (|| Ok(()), || join_netns(pid));
    // Where each path's clients connect, whether they send proxy requests, and what they run first.
    let paths: [(&str, bool, Enter<'_>); 3] =
        [(&authority, false, &no_entry), (&relay_address, false, &no_entry), (PROXY, true, &into_sandbox)];

    let mut small = Vec::new();
    for (address, absolute, enter) in paths {
        let target = Target::new(address, &authority, absolute, SMALL);
        small.push(measure(&EGRESS, enter, &|| target.open())?);
    }
    let large: Vec<Target> =
        paths.iter().map(|(address, absolute, _)| Target::new(address, &authority, *absolute, LARGE)).collect();
    let mib_per_s = |rps: f64| rps * LARGE as f64 / f64::from(1 << 20);
    let mut rounds = vec![Vec::new(); paths.len()];
    for _ in 0..LARGE_ROUNDS {
        for ((target, (_, _, enter)), mib) in large.iter().zip(&paths).zip(&mut rounds) {
            mib.push(mib_per_s(throughput(1, LARGE_PER_ROUND, *enter, &|| target.open())?));
        }
    }
    live.delete_all()?;
    drop(relay);
    drop(upstream);

    let [direct, relayed, proxied] = &small[..] else { unreachable!("three paths") };
    print_table(
        &format!(
            "network benchmark, egress: GET of {SMALL} B from a server on the host ({UPSTREAM_IP}), one kept connection per client"
        ),
        &[
            ("direct, from the host", direct),
            ("through a byte relay on the host (no parsing: the floor)", relayed),
            ("through the egress proxy (listener in the sandbox, server)", proxied),
        ],
    );
    print_targets(direct, proxied);
    println!(
        "  the byte relay against direct: {:.2}x; the proxy against the byte relay: {:.2}x",
        relayed.rps / direct.rps,
        proxied.rps / relayed.rps
    );
    let [direct_mib, relayed_mib, proxied_mib] = [0, 1, 2].map(|path| median(&mut rounds[path]));
    println!(
        "  GET of 1 MiB on one connection, median of {LARGE_ROUNDS} rounds of {LARGE_PER_ROUND} (min-max): direct \
         {:.0} MiB/s ({}), through the byte relay {:.0} MiB/s ({}), through the proxy {:.0} MiB/s ({})",
        direct_mib.0, direct_mib.1, relayed_mib.0, relayed_mib.1, proxied_mib.0, proxied_mib.1
    );
    let ratio = proxied_mib.0 / direct_mib.0;
    println!("  target: throughput >= 0.5x direct -> {ratio:.2}x {}", verdict(ratio >= 0.5));
    println!(
        "  the byte relay against direct: {:.2}x; the proxy against the byte relay: {:.2}x",
        relayed_mib.0 / direct_mib.0,
        proxied_mib.0 / relayed_mib.0
    );
    Ok(())
}

/// The median of `rounds` (not empty), and their range as text.
fn median(rounds: &mut [f64]) -> (f64, String) {
    rounds.sort_by(f64::total_cmp);
    let (first, last) = (rounds.first().copied().unwrap_or_default(), rounds.last().copied().unwrap_or_default());
    (rounds.get(rounds.len() / 2).copied().unwrap_or_default(), format!("{first:.0}-{last:.0}"))
}

/// Where a client connects and the request it sends there, again and again.
struct Target {
    /// `host:port` to connect to: the upstream, or the proxy listener.
    address: String,
    /// The request: origin form to the upstream, absolute form to the proxy.
    request: Vec<u8>,
    /// The body length a 200 answer must have.
    length: usize,
}

impl Target {
    /// `GET /<length>` of the upstream at `authority`, sent to `address` (in absolute form when
    /// `absolute`, as to a proxy).
    fn new(address: &str, authority: &str, absolute: bool, length: usize) -> Self {
        let target = if absolute { format!("http://{authority}/{length}") } else { format!("/{length}") };
        let request = format!("GET {target} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes();
        Self { address: address.to_owned(), request, length }
    }

    /// Connects; the answer makes one request per call on the kept connection.
    fn open(&self) -> Result<impl FnMut() -> Result<(), String> + '_, String> {
        let mut client = KeepAlive::open(self)?;
        Ok(move || client.get())
    }
}

/// One kept HTTP/1.1 connection to a [`Target`].
struct KeepAlive<'a> {
    target: &'a Target,
    reader: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl<'a> KeepAlive<'a> {
    fn open(target: &'a Target) -> Result<Self, String> {
        let stream = TcpStream::connect(&target.address).map_err(|e| format!("connect {}: {e}", target.address))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Self { target, reader: BufReader::with_capacity(64 * 1024, stream), line: String::new(), body: Vec::new() })
    }

    /// Sends the request and reads the answer (framed by `Content-Length`) to its end; checks a
    /// 200 with the expected length.
    fn get(&mut self) -> Result<(), String> {
        let target = self.target;
        self.exchange().map_err(|e| {
            format!("{}: {e}", String::from_utf8_lossy(&target.request).lines().next().unwrap_or_default())
        })
    }

    fn exchange(&mut self) -> Result<(), String> {
        self.reader.get_mut().write_all(&self.target.request).map_err(|e| e.to_string())?;
        let status = self.read_line()?;
        let mut length = None;
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.ok_or_else(|| format!("{status}: an answer without Content-Length"))?;
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body).map_err(|e| e.to_string())?;
        if !status.starts_with("HTTP/1.1 200 ") {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&self.body[..length.min(400)])));
        }
        if length != self.target.length {
            return Err(format!("a body of {length} bytes, not {}", self.target.length));
        }
        Ok(())
    }

    /// One line of the answer's head, without its line end; an error at the end of the stream.
    fn read_line(&mut self) -> Result<String, String> {
        self.line.clear();
        match self.reader.read_line(&mut self.line) {
            Ok(0) => Err("the connection closed".to_owned()),
            Ok(_) => Ok(self.line.trim_end_matches(['\r', '\n']).to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A keep-alive HTTP/1.1 server on `UPSTREAM_IP`, a thread per connection, answering
/// `GET /<n>` with `n` bytes (at most `LARGE`).
fn upstream() -> Result<Listening, String> {
    let body: Arc<[u8]> = vec![b'x'; LARGE].into();
    Listening::start(UPSTREAM_IP, move |stream| {
        let _ = serve(stream, &body);
    })
}

/// The floor of any proxy's cost here: a listener on `RELAY_IP` that connects each connection to
/// `upstream` and copies bytes both ways (two threads, 64 KiB buffers), with no parsing, decision
/// or log. A proxy that does nothing still costs the extra hop: two more loopback writes and reads
/// per request, on the same two vCPUs as the client and the upstream.
fn relay(upstream: SocketAddr) -> Result<Listening, String> {
    Listening::start(RELAY_IP, move |client| {
        let _ = relay_connection(client, upstream);
    })
}

fn relay_connection(client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    let outbound = TcpStream::connect(upstream)?;
    for stream in [&client, &outbound] {
        stream.set_nodelay(true)?;
    }
    let (client_back, outbound_back) = (client.try_clone()?, outbound.try_clone()?);
    let back = std::thread::spawn(move || copy(outbound_back, client_back));
    copy(client, outbound);
    let _ = back.join();
    Ok(())
}

/// Copies `from` to `to` until either ends, then shuts both down (which ends the other
/// direction's copy).
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(read @ 1..) = from.read(&mut buffer) {
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// A listener on a host loopback address serving each connection on a thread of its own with
/// `serve`. Stopped, with its threads, when dropped.
struct Listening {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Every connection accepted (a handle to shut it down); a few dozen in a run.
    open: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl Listening {
    fn start(ip: Ipv4Addr, serve: impl Fn(TcpStream) + Clone + Send + 'static) -> Result<Self, String> {
        let listener = TcpListener::bind((ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (stop_flag, registry) = (stop.clone(), open.clone());
        let accept = std::thread::spawn(move || {
            let mut served = Vec::new();
            loop {
                let accepted = listener.accept();
                // Registered under the lock that `drop` stops under: every connection is either
                // shut down by `drop` or never served.
                let mut open = registry.lock().unwrap_or_else(PoisonError::into_inner);
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok((stream, _)) = accepted else { continue };
                let Ok(handle) = stream.try_clone() else { continue };
                open.push(handle);
                drop(open);
                let serve = serve.clone();
                served.push(std::thread::spawn(move || serve(stream)));
            }
            for connection in served {
                let _ = connection.join();
            }
        });
        Ok(Self { address, stop, open, accept: Some(accept) })
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        {
            let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            self.stop.store(true, Ordering::SeqCst);
            for stream in open.iter() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        // Wakes the accept loop, which then sees `stop`.
        let _ = TcpStream::connect(self.address);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Serves one connection until the peer closes it: each `GET /<n>` is answered `200` with the
/// first `n` bytes of `body`; anything else `400`, and the connection ends.
fn serve(stream: TcpStream, body: &[u8]) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let length = line
            .strip_prefix("GET /")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= body.len());
        // The rest of the head (a GET has no body).
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line.trim_end().is_empty() {
                break;
            }
        }
        let Some(length) = length else {
            writer.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        };
        let head =
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n");
        if length <= 16 * 1024 {
            // One write, so a small answer is one segment.
            let mut answer = head.into_bytes();
            answer.extend_from_slice(&body[..length]);
            writer.write_all(&answer)?;
        } else {
            writer.write_all(head.as_bytes())?;
            writer.write_all(&body[..length])?;
        }
    }
}

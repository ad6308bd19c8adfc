//! TCP and HTTP readiness probes. The supervisor lives in the sandbox's network namespace, so
//! `127.0.0.1` here is the sandbox's loopback.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Largest status line read from a probed HTTP server.
const STATUS_LINE_MAX: usize = 1024;

fn connect(port: u16, deadline: Instant) -> Option<TcpStream> {
    let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), left).ok()
}

/// Whether a TCP connect to `127.0.0.1:port` succeeds within `timeout`.
pub fn tcp(port: u16, timeout: Duration) -> bool {
    connect(port, Instant::now() + timeout).is_some()
}

/// Whether `GET http://127.0.0.1:port<path>` answers 2xx or 3xx within `timeout`.
pub fn http(port: u16, path: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let Some(mut stream) = connect(port, deadline) else { return false };
    // HTTP/1.1 with `Connection: close`: some servers (Chromium's DevTools endpoint) refuse 1.0.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: nimbus-probe\r\nConnection: close\r\n\r\n"
    );
    let left = |deadline: Instant| deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
    let Some(t) = left(deadline) else { return false };
    if stream.set_write_timeout(Some(t)).is_err() || stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < STATUS_LINE_MAX {
        let Some(t) = left(deadline) else { return false };
        if stream.set_read_timeout(Some(t)).is_err() {
            return false;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    status_ok(&head)
}

/// Whether an HTTP response head starts with a 2xx or 3xx status line.
fn status_ok(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let version_ok = parts.next().is_some_and(|v| v.starts_with("HTTP/"));
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    version_ok && matches!(status, Some(200..=399))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert!(status_ok(b"HTTP/1.0 200 OK\r\n"));
        assert!(status_ok(b"HTTP/1.1 302 Found\r\n"));
        assert!(!status_ok(b"HTTP/1.1 404 Not Found\r\n"));
        assert!(!status_ok(b"SSH-2.0-x\r\n"));
        assert!(!status_ok(b""));
    }

    #[test]
    fn closed_port_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(tcp(port, Duration::from_secs(1)));
        drop(listener);
        assert!(!tcp(port, Duration::from_secs(1)));
        assert!(!http(port, "/", Duration::from_secs(1)));
    }
}

//! The sandbox's side of egress: the proxy listener the supervisor opens on the sandbox's
//! loopback, which hands each connection, unread, to the server's egress proxy (the descriptor
//! itself over the hand-off socket, with the sandbox's id), and the trust bundle that adds the
//! server's egress CA to the image's.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nimbus_core::limits::{
    EGRESS_PROXY_PORT, EGRESS_UNAVAILABLE_READ_MS, SANDBOX_CA_BUNDLE_MAX_BYTES, SANDBOX_MAX_ENDPOINTS,
};
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr, connect, sendmsg, socket,
};

use super::spec;

/// The hand-off socket, relative to a sandbox's state directory (the supervisor's working
/// directory): it sits beside the state directories, in the backend's state root.
pub const HANDOFF_SOCKET: &str = "../egress.sock";

/// File name of the hand-off socket in the backend's state root.
pub const HANDOFF_SOCKET_NAME: &str = "egress.sock";

/// Where images keep their CA bundle: bound with the bundle that adds the egress CA, the first
/// always (the proxy variables point at it), the others where the image has a regular file.
pub const TRUST_PATHS: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// The proxy URL the sandbox's environment names.
pub fn proxy_url() -> String {
    format!("http://127.0.0.1:{EGRESS_PROXY_PORT}")
}

/// The environment that points a sandbox's clients at the proxy and at the trust bundle.
pub fn environment() -> Vec<(&'static str, String)> {
    let proxy = proxy_url();
    let bundle = TRUST_PATHS[0].to_owned();
    let no_proxy = "localhost,127.0.0.1,::1".to_owned();
    vec![
        ("HTTP_PROXY", proxy.clone()),
        ("HTTPS_PROXY", proxy.clone()),
        ("http_proxy", proxy.clone()),
        ("https_proxy", proxy),
        ("NO_PROXY", no_proxy.clone()),
        ("no_proxy", no_proxy),
        ("SSL_CERT_FILE", bundle.clone()),
        ("CURL_CA_BUNDLE", bundle.clone()),
        ("REQUESTS_CA_BUNDLE", bundle.clone()),
        ("NODE_EXTRA_CA_CERTS", bundle),
    ]
}

/// The TCP ports listened on in the current network namespace (the sandbox's, in its
/// supervisor), from the kernel's socket tables, without the proxy's own port.
pub fn listening_ports() -> Vec<u16> {
    let mut ports = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let mut text = String::new();
        // Written by the kernel, but sized by the sandbox's sockets: read a bounded prefix.
        let read = std::fs::File::open(table).and_then(|f| f.take(1024 * 1024).read_to_string(&mut text));
        if read.is_err() {
            continue;
        }
        ports.extend(text.lines().skip(1).filter_map(listening_port));
    }
    ports.retain(|&port| port != EGRESS_PROXY_PORT);
    ports.sort_unstable();
    ports.dedup();
    ports.truncate(SANDBOX_MAX_ENDPOINTS);
    ports
}

/// The local port of a `/proc/net/tcp` line in state `0A` (LISTEN).
fn listening_port(line: &str) -> Option<u16> {
    let mut fields = line.split_whitespace();
    let local = fields.nth(1)?;
    let state = fields.nth(1)?;
    if state != "0A" {
        return None;
    }
    u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()
}

/// Binds the proxy listener on the current network namespace's loopback: 127.0.0.1, and ::1
/// where IPv6 is up.
pub fn bind() -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = vec![TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, EGRESS_PROXY_PORT)))?];
    if let Ok(v6) = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, EGRESS_PROXY_PORT))) {
        listeners.push(v6);
    }
    Ok(listeners)
}

/// Connections waiting for their 503 while no server takes them (more are closed at once): each
/// waits at most `EGRESS_UNAVAILABLE_READ_MS`.
const REFUSALS_QUEUED: usize = 64;

/// Accepts on `listener` until it is shut down, handing every connection to the server; when no
/// server takes one, a thread of its own reads the request (bounded) and answers 503.
pub fn serve(listener: &TcpListener, sandbox: &str) {
    let (refuse, refusals) = std::sync::mpsc::sync_channel::<TcpStream>(REFUSALS_QUEUED);
    let refuser = std::thread::spawn(move || refusals.into_iter().for_each(answer_unavailable));
    for connection in listener.incoming() {
        match connection {
            Ok(connection) => {
                if let Err(connection) = hand_off(connection, sandbox) {
                    // A full queue closes the connection: the sandbox is flooding a downed proxy.
                    let _ = refuse.try_send(connection);
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break, // shut down
        }
    }
    drop(refuse);
    let _ = refuser.join();
}

/// Wakes `serve` for good: the listener accepts nothing more.
pub fn shut_down(listener: &TcpListener) {
    let _ = nix::sys::socket::shutdown(listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
}

/// Sends `connection` to the server's proxy; gives it back when no server takes it (none runs,
/// or it is not accepting). Never blocks on the server.
fn hand_off(connection: TcpStream, sandbox: &str) -> Result<(), TcpStream> {
    let sent = (|| -> nix::Result<()> {
        let socket =
            socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
        connect(socket.as_raw_fd(), &UnixAddr::new(HANDOFF_SOCKET)?)?;
        let fds = [connection.as_fd().as_raw_fd()];
        let iov = [std::io::IoSlice::new(sandbox.as_bytes())];
        sendmsg::<()>(socket.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)?;
        Ok(())
    })();
    sent.map_err(|_| connection)
}

/// Reads what the client sends first (its request head, bounded in size and time, so that
/// closing does not reset the connection under the answer), then answers 503 and closes.
fn answer_unavailable(connection: TcpStream) {
    let _ = connection.set_read_timeout(Some(std::time::Duration::from_millis(EGRESS_UNAVAILABLE_READ_MS)));
    let _ = connection.set_write_timeout(Some(std::time::Duration::from_millis(EGRESS_UNAVAILABLE_READ_MS)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while head.len() < 64 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match (&connection).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = "the Nimbus egress proxy is not running (the server is down); retry once it is back\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = (&connection).write_all(answer.as_bytes());
    let _ = connection.shutdown(std::net::Shutdown::Write);
}

/// The image's CA bundle (the first of [`TRUST_PATHS`] it has as a regular file, read within
/// `root` and at most `SANDBOX_CA_BUNDLE_MAX_BYTES`) followed by `ca_pem`; and which of the
/// other trust paths the image has as regular files (they are bound too).
pub fn trust_bundle(root: &Path, ca_pem: &str) -> (Vec<u8>, Vec<&'static str>) {
    let mut bundle = Vec::new();
    let mut present = Vec::new();
    for path in TRUST_PATHS {
        let Some(file) = regular_file_in(root, path) else { continue };
        if bundle.is_empty()
            && let Ok(opened) = std::fs::File::open(&file)
        {
            let _ = opened.take(SANDBOX_CA_BUNDLE_MAX_BYTES).read_to_end(&mut bundle);
            if bundle.len() as u64 >= SANDBOX_CA_BUNDLE_MAX_BYTES {
                tracing::warn!(path, "the image's CA bundle is too large; only the Nimbus CA is trusted");
                bundle.clear();
            }
        }
        if path != TRUST_PATHS[0] {
            present.push(path);
        }
    }
    if !bundle.is_empty() && !bundle.ends_with(b"\n") {
        bundle.push(b'\n');
    }
    bundle.extend_from_slice(ca_pem.as_bytes());
    (bundle, present)
}

/// The host path of `path` inside `root` when the image has a regular file there (its parent
/// resolved within the root; the file itself not a symlink).
fn regular_file_in(root: &Path, path: &str) -> Option<PathBuf> {
    let (parent, name) = path.rsplit_once('/')?;
    let parent = spec::resolve_in_root(root, if parent.is_empty() { "/" } else { parent }, None).ok()?;
    let file = parent.join(name);
    std::fs::symlink_metadata(&file).ok().filter(std::fs::Metadata::is_file).map(|_| file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_read_from_the_kernels_table() {
        let listen = "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1";
        let connected =
            "   1: 0100007F:1F40 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1";
        assert_eq!(listening_port(listen), Some(8000));
        assert_eq!(listening_port(connected), None);
        assert_eq!(listening_port("garbage"), None);
    }

    #[test]
    fn the_bundle_adds_the_ca_to_the_images_and_names_the_other_paths() {
        let root = tempfile::tempdir().expect("root");
        let certs = root.path().join("etc/ssl/certs");
        std::fs::create_dir_all(&certs).expect("certs");
        std::fs::write(certs.join("ca-certificates.crt"), "IMAGE ROOTS").expect("bundle");
        std::os::unix::fs::symlink("certs/ca-certificates.crt", root.path().join("etc/ssl/cert.pem")).expect("link");
        let (bundle, present) = trust_bundle(root.path(), "NIMBUS CA\n");
        assert_eq!(bundle, b"IMAGE ROOTS\nNIMBUS CA\n");
        assert!(present.is_empty(), "a symlinked bundle path is not bound: {present:?}");

        let bare = tempfile::tempdir().expect("bare");
        std::fs::create_dir_all(bare.path().join("etc/pki/tls/certs")).expect("pki");
        std::fs::write(bare.path().join("etc/pki/tls/certs/ca-bundle.crt"), "FEDORA").expect("fedora");
        let (bundle, present) = trust_bundle(bare.path(), "NIMBUS CA\n");
        assert_eq!(bundle, b"FEDORA\nNIMBUS CA\n");
        assert_eq!(present, ["/etc/pki/tls/certs/ca-bundle.crt"]);
    }

    #[test]
    fn a_bundle_path_leading_out_of_the_root_reads_nothing_of_the_host() {
        let root = tempfile::tempdir().expect("root");
        std::fs::create_dir_all(root.path().join("etc")).expect("etc");
        // An image whose /etc/ssl points at the host's /etc: resolved within the root instead.
        std::os::unix::fs::symlink("/etc", root.path().join("etc/ssl")).expect("link");
        let (bundle, _) = trust_bundle(root.path(), "NIMBUS CA\n");
        assert_eq!(bundle, b"NIMBUS CA\n", "nothing outside the root was read");
    }
}

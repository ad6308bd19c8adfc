//! Support for the egress-proxy tests (networking.md): an image whose sandboxes run the host's
//! real `curl`, a test CA, and upstream HTTP/HTTPS servers on host loopback addresses that record
//! every request they get.
//!
//! - [`push_curl_image`] builds and pushes the image: `/usr/bin/curl` with every library `ldd`
//!   lists (and the dynamic loader) at their paths, busybox with a few applets, and a CA bundle.
//! - [`TestCa`] issues server certificates and writes its certificate for
//!   `nimbus start --egress-upstream-ca FILE` (or `curl --cacert FILE`).
//! - [`Upstream`] answers every request `200` with `upstream <label>: <METHOD> <path>\n` and keeps
//!   each request (method, target, headers, body, peer, TLS server name) for the test to check.
//!   Its threads end when it is dropped.
//!
//! Needs `/usr/bin/curl` and `/usr/bin/ldd` on the host (`scripts/test` installs curl).

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;

use crate::registry::{LayerFile, Registry, busybox_config, busybox_layer, files_layer, read_busybox};

const CURL_BIN: &str = "/usr/bin/curl";
const LDD_BIN: &str = "/usr/bin/ldd";
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Applets linked to `busybox` in the curl image.
pub const CURL_IMAGE_APPLETS: &[&str] =
    &["sh", "cat", "env", "grep", "find", "ls", "sleep", "wget", "echo", "true", "xargs"];

/// Most bytes of a request line plus headers; past it the answer is 431 and the connection ends.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most bytes of a request body (after de-chunking); past it the answer is 413.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most bytes of one chunk-size or trailer line of a chunked body.
const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// A connection idle this long (or a peer this slow to take an answer) is closed: a safety net so
/// no thread waits forever; [`Upstream`]'s drop closes every connection sooner.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The curl image
// ---------------------------------------------------------------------------------------------

/// Pushes `repo_tag` to `registry`: an image whose sandboxes can run the host's `curl`. Two
/// layers: the busybox layer (`/bin/busybox` with [`CURL_IMAGE_APPLETS`], `/etc/passwd`,
/// `/etc/group`, empty `tmp proc sys dev root`), then `/usr/bin/curl`, every library
/// `ldd /usr/bin/curl` lists (the dynamic loader included) stored as regular files at the paths
/// `ldd` shows, and `/etc/ssl/certs/ca-certificates.crt` (the host's, or empty). Config:
/// `PATH=/usr/bin:/bin`, `Cmd ["sh"]`, `WorkingDir /`. Returns the manifest digest.
pub fn push_curl_image(registry: &Registry, repo_tag: &str) -> String {
    let mut config = busybox_config();
    config["config"]["Env"] = json!(["PATH=/usr/bin:/bin"]);
    let layers = vec![busybox_layer(&read_busybox(), CURL_IMAGE_APPLETS), curl_layer()];
    registry.push_layers(repo_tag, layers, config)
}

/// The curl image's second layer, uncompressed.
pub fn curl_layer() -> Vec<u8> {
    let read = |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let relative = |path: &Path| path.strip_prefix("/").expect("an absolute path").to_string_lossy().into_owned();
    let mut files: Vec<LayerFile> = vec![(relative(Path::new(CURL_BIN)), read(Path::new(CURL_BIN)), 0o755)];
    for library in curl_libraries() {
        // `fs::read` follows symlinks: the layer holds the library itself under the linked name.
        files.push((relative(&library), read(&library), 0o755));
    }
    let bundle = std::fs::read(HOST_CA_BUNDLE).unwrap_or_default();
    files.push((relative(Path::new(HOST_CA_BUNDLE)), bundle, 0o644));
    files_layer(&files)
}

/// The absolute paths `ldd /usr/bin/curl` lists (libraries and the dynamic loader; not the vDSO),
/// sorted, each once. Panics if a library is not found.
fn curl_libraries() -> Vec<PathBuf> {
    let output = Command::new(LDD_BIN)
        .arg(CURL_BIN)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {LDD_BIN} {CURL_BIN} (install curl): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{LDD_BIN} {CURL_BIN} failed ({:?}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut paths = std::collections::BTreeSet::new();
    for line in stdout.lines() {
        // `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)`, `/lib64/ld-linux-x86-64.so.2 (0x…)`,
        // `linux-vdso.so.1 (0x…)` (no file), `libx.so => not found`.
        assert!(!line.contains("not found"), "{CURL_BIN} needs a library the host lacks: {line}");
        let target = line.split_once("=>").map_or(line, |(_, target)| target).trim();
        let path = target.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            paths.insert(PathBuf::from(path));
        }
    }
    assert!(!paths.is_empty(), "{LDD_BIN} listed no library of {CURL_BIN}: {stdout}");
    paths.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// The test CA
// ---------------------------------------------------------------------------------------------

/// A certificate authority made at test time (ECDSA P-256), which issues server certificates.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate issued by a [`TestCa`], with its private key.
pub struct ServerCert {
    /// The leaf certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `Nimbus test CA`.
    pub fn new() -> TestCa {
        TestCa::named("Nimbus test CA")
    }

    /// A new CA with `common_name` as its subject.
    pub fn named(common_name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("generate the CA key");
        TestCa { issuer: CertifiedIssuer::self_signed(params, key).expect("self-sign the CA") }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Writes the CA certificate (PEM) to `path`, for `--egress-upstream-ca` or `curl --cacert`.
    pub fn write_pem(&self, path: &Path) {
        std::fs::write(path, self.cert_pem())
            .unwrap_or_else(|e| panic!("cannot write the test CA to {}: {e}", path.display()));
    }

    /// Issues a server certificate (TLS server auth) for `names`: each a DNS name or an IP
    /// literal (an IP SAN). The first is also the subject's common name.
    pub fn issue(&self, names: &[&str]) -> ServerCert {
        assert!(!names.is_empty(), "a server certificate needs a name");
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("server certificate names");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("generate a server key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign a server certificate");
        ServerCert {
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream servers
// ---------------------------------------------------------------------------------------------

/// One request an [`Upstream`] received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target as sent (`/path?query`; the absolute form if a client sent that).
    pub path: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Every header in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// The address the connection came from.
    pub peer: SocketAddr,
    /// The TLS server name (SNI) the client sent; `None` for plain HTTP or no SNI.
    pub server_name: Option<String>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// An HTTP/1.1 server on a host loopback address (a free port), plain or TLS, answering every
/// request `200 text/plain` with `upstream <label>: <METHOD> <path>\n` (keep-alive honoured).
/// One thread accepts, one serves each connection; dropping it closes the listener and every open
/// connection and joins all its threads.
pub struct Upstream {
    addr: SocketAddr,
    label: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    label: String,
    stop: AtomicBool,
    requests: Mutex<Vec<RecordedRequest>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Upstream {
    /// A plain-HTTP upstream on `ip` (e.g. `127.0.0.2`).
    pub fn http(ip: impl Into<IpAddr>, label: &str) -> Upstream {
        Upstream::start(ip.into(), label, None)
    }

    /// An HTTPS upstream on `ip` with a certificate from `ca` for `names` (DNS names or IP
    /// literals). HTTP/1.1 only (ALPN `http/1.1`).
    pub fn https(ip: impl Into<IpAddr>, label: &str, ca: &TestCa, names: &[&str]) -> Upstream {
        let cert = ca.issue(names);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert_der], key)
            .expect("the server certificate and key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Upstream::start(ip.into(), label, Some(Arc::new(config)))
    }

    fn start(ip: IpAddr, label: &str, tls: Option<Arc<rustls::ServerConfig>>) -> Upstream {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0))
            .unwrap_or_else(|e| panic!("cannot listen on {ip} for upstream {label}: {e}"));
        let addr = listener.local_addr().expect("upstream address");
        let shared = Arc::new(Shared {
            label: label.to_owned(),
            stop: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            tls,
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("upstream-{label}"))
                .spawn(move || accept_loop(listener, shared))
                .expect("spawn the upstream acceptor")
        };
        Upstream { addr, label: label.to_owned(), shared, acceptor: Some(acceptor) }
    }

    /// `IP:PORT` it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The body it answers `method path` with.
    pub fn expected_body(&self, method: &str, path: &str) -> String {
        format!("upstream {}: {method} {path}\n", self.label)
    }

    /// Every request received so far, oldest first (each is recorded before it is answered).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept; the acceptor then sees the flag, closes the listener, shuts
        // every open connection down and joins their threads.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Each connection's thread, with a handle on its socket to shut it down at the end.
    let mut connections: Vec<(JoinHandle<()>, TcpStream)> = Vec::new();
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        connections.retain(|(thread, _)| !thread.is_finished());
        let Ok(handle) = stream.try_clone() else { continue };
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("upstream-{}-conn", shared.label))
            .spawn(move || serve_connection(stream, &shared));
        if let Ok(thread) = spawned {
            connections.push((thread, handle));
        }
    }
    drop(listener);
    for (_, socket) in &connections {
        let _ = socket.shutdown(Shutdown::Both);
    }
    for (thread, _) in connections {
        let _ = thread.join();
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let Ok(peer) = stream.peer_addr() else { return };
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err() || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err() {
        return;
    }
    match &shared.tls {
        None => {
            let (mut tcp, refused) = serve(Conn::new(stream), peer, None, shared);
            if refused {
                linger(&mut tcp);
            }
        }
        Some(config) => {
            let Ok(mut tls) = rustls::ServerConnection::new(config.clone()) else { return };
            let mut tcp = stream;
            while tls.is_handshaking() {
                match tls.complete_io(&mut tcp) {
                    Ok((0, 0)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            let server_name = tls.server_name().map(str::to_owned);
            let mut stream = rustls::StreamOwned::new(tls, tcp);
            let (stream, refused) = serve(Conn::new(&mut stream), peer, server_name, shared);
            stream.conn.send_close_notify();
            let _ = stream.flush();
            if refused {
                linger(&mut stream.sock);
            }
        }
    }
}

/// After refusing a request whose bytes were not all read: ends the sending side and discards
/// what the peer still sends (bounded), so closing does not reset the connection and lose the
/// answer before the peer reads it.
fn linger(tcp: &mut TcpStream) {
    const LINGER_BYTES: u64 = 2 * MAX_BODY_BYTES as u64;
    if tcp.shutdown(Shutdown::Write).is_ok() && tcp.set_read_timeout(Some(Duration::from_secs(2))).is_ok() {
        let _ = io::copy(&mut tcp.take(LINGER_BYTES), &mut io::sink());
    }
}

/// Why reading a request stopped.
enum ReadError {
    /// The peer went away, timed out or broke the connection: nothing to answer.
    Gone,
    /// Over a size cap: answered with this status, then the connection ends.
    TooLarge(&'static str),
    /// Not HTTP/1.x as this server reads it: `400`.
    Malformed,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Gone
    }
}

/// A byte stream with the bytes read past what was consumed.
struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Conn<S> {
    fn new(stream: S) -> Conn<S> {
        Conn { stream, buf: Vec::new() }
    }

    /// Reads more bytes into the buffer; 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The bytes up to and including the first `delim`, if within `cap` bytes; `None` when the
    /// stream ends before any byte.
    fn read_until(&mut self, delim: &[u8], cap: usize, what: &'static str) -> Result<Option<Vec<u8>>, ReadError> {
        let mut searched = 0;
        loop {
            if let Some(at) = self.buf[searched..].windows(delim.len()).position(|w| w == delim) {
                let end = searched + at + delim.len();
                if end > cap {
                    return Err(ReadError::TooLarge(what));
                }
                return Ok(Some(self.buf.drain(..end).collect()));
            }
            if self.buf.len() > cap {
                return Err(ReadError::TooLarge(what));
            }
            searched = self.buf.len().saturating_sub(delim.len() - 1);
            if self.fill()? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(ReadError::Gone) };
            }
        }
    }

    fn read_exact_n(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(ReadError::Gone);
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// A line ending in CRLF, without it.
    fn read_line(&mut self, cap: usize) -> Result<String, ReadError> {
        let line = self.read_until(b"\r\n", cap, "line")?.ok_or(ReadError::Gone)?;
        String::from_utf8(line[..line.len() - 2].to_vec()).map_err(|_| ReadError::Malformed)
    }

    /// A chunked body, de-chunked, trailers dropped.
    fn read_chunked(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(MAX_CHUNK_LINE_BYTES)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| ReadError::Malformed)?;
            if size == 0 {
                while !self.read_line(MAX_CHUNK_LINE_BYTES)?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY_BYTES {
                return Err(ReadError::TooLarge("body"));
            }
            body.extend(self.read_exact_n(size)?);
            if !self.read_exact_n(2)?.eq(b"\r\n") {
                return Err(ReadError::Malformed);
            }
        }
    }
}

/// Serves requests on one connection until it ends; returns the stream, and whether the last
/// request was refused (400, 413, 431) with bytes of it possibly unread.
fn serve<S: Read + Write>(
    mut conn: Conn<S>,
    peer: SocketAddr,
    server_name: Option<String>,
    shared: &Shared,
) -> (S, bool) {
    loop {
        let status = match read_request(&mut conn, peer, &server_name) {
            Ok(None) | Err(ReadError::Gone) => break,
            Err(ReadError::TooLarge("body")) => "413 Content Too Large",
            Err(ReadError::TooLarge(_)) => "431 Request Header Fields Too Large",
            Err(ReadError::Malformed) => "400 Bad Request",
            Ok(Some(request)) => {
                let body = format!("upstream {}: {} {}\n", shared.label, request.method, request.path);
                let keep_alive = request.version == "HTTP/1.1"
                    && !request.header_all("connection").iter().any(|v| v.eq_ignore_ascii_case("close"));
                let head_only = request.method == "HEAD";
                shared.requests.lock().expect("requests lock").push(request);
                if respond(&mut conn.stream, "200 OK", &body, keep_alive, head_only).is_err() || !keep_alive {
                    break;
                }
                continue;
            }
        };
        let _ = respond(&mut conn.stream, status, "", false, false);
        return (conn.stream, true);
    }
    (conn.stream, false)
}

/// Reads one request; `None` when the connection ends between requests.
fn read_request<S: Read + Write>(
    conn: &mut Conn<S>,
    peer: SocketAddr,
    server_name: &Option<String>,
) -> Result<Option<RecordedRequest>, ReadError> {
    let Some(head) = conn.read_until(b"\r\n\r\n", MAX_HEAD_BYTES, "head")? else { return Ok(None) };
    let head = String::from_utf8(head).map_err(|_| ReadError::Malformed)?;
    let mut lines = head.strip_suffix("\r\n\r\n").unwrap_or(&head).split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(path), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed);
    };
    if method.is_empty() || path.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed);
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { return Err(ReadError::Malformed) };
        if name.is_empty() || name.starts_with([' ', '\t']) || name.ends_with([' ', '\t']) {
            return Err(ReadError::Malformed);
        }
        headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    let mut request = RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        version: version.to_owned(),
        headers,
        body: Vec::new(),
        peer,
        server_name: server_name.clone(),
    };
    if request.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        conn.stream.flush()?;
    }
    let chunked = request.header_all("transfer-encoding").iter().any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = conn.read_chunked()?;
    } else if let Some(length) = request.header("content-length") {
        let length: usize = length.parse().map_err(|_| ReadError::Malformed)?;
        if length > MAX_BODY_BYTES {
            return Err(ReadError::TooLarge("body"));
        }
        request.body = conn.read_exact_n(length)?;
    }
    Ok(Some(request))
}

fn respond(stream: &mut impl Write, status: &str, body: &str, keep_alive: bool, head_only: bool) -> io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: \
         {connection}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        answer.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&answer)?;
    stream.flush()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Runs the host's curl with no proxy from the environment; returns (success, stdout, stderr).
fn host_curl(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(CURL_BIN)
        .args(["--silent", "--show-error", "--noproxy", "*", "--max-time", "30"])
        .args(args)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {CURL_BIN} (install curl): {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn upstreams_answer_and_record_what_the_hosts_curl_sends() {
    let a = Ipv4Addr::new(127, 0, 0, 2);
    let dir = tempfile::tempdir().expect("tempdir");

    // Plain HTTP: two requests on one connection (keep-alive), a header, a body.
    let plain = Upstream::http(a, "plain");
    assert_eq!(plain.ip(), IpAddr::from(a));
    let base = format!("http://{}", plain.addr());
    let (ok, stdout, stderr) =
        host_curl(&["-H", "X-Test: 1", &format!("{base}/one?q=1"), "--data", "a=b", &format!("{base}/two")]);
    assert!(ok, "curl failed: {stderr}");
    assert_eq!(stdout, format!("upstream plain: POST /one?q=1\nupstream plain: POST /two\n"));
    let requests = plain.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("POST", "/one?q=1"));
    assert_eq!(requests[0].header("x-test"), Some("1"));
    assert_eq!(requests[0].header("Host"), Some(plain.addr().to_string().as_str()));
    assert_eq!(requests[0].body, b"a=b");
    assert_eq!((requests[0].version.as_str(), requests[0].server_name.as_deref()), ("HTTP/1.1", None));
    assert_eq!(requests[0].peer.port(), requests[1].peer.port(), "one connection for both");
    assert_eq!(requests[1].path, "/two");

    // HTTPS with a certificate for `localhost` from the test CA, reached on 127.0.0.2.
    let ca = TestCa::new();
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file);
    let secure = Upstream::https(a, "secure", &ca, &["localhost"]);
    let url = format!("https://localhost:{}/secret/path", secure.port());
    let resolve = format!("localhost:{}:127.0.0.2", secure.port());
    let ca_arg = ca_file.to_str().expect("utf-8 path");
    let (ok, stdout, stderr) = host_curl(&["--cacert", ca_arg, "--resolve", &resolve, "-H", "X-Test: 1", &url]);
    assert!(ok, "curl over TLS failed: {stderr}");
    assert_eq!(stdout, secure.expected_body("GET", "/secret/path"));
    let requests = secure.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].header("X-Test"), Some("1"));
    assert_eq!(requests[0].server_name.as_deref(), Some("localhost"));
    assert_eq!(requests[0].version, "HTTP/1.1", "HTTP/1.1 only, even though curl offers h2");

    // A certificate for an IP literal (an IP SAN), reached by address: no SNI is sent.
    let by_ip = Upstream::https([127, 0, 0, 3], "by-ip", &ca, &["127.0.0.3"]);
    let (ok, stdout, stderr) = host_curl(&["--cacert", ca_arg, &format!("https://127.0.0.3:{}/ip", by_ip.port())]);
    assert!(ok, "curl to an IP SAN failed: {stderr}");
    assert_eq!(stdout, by_ip.expected_body("GET", "/ip"));
    assert_eq!(by_ip.requests()[0].server_name, None);

    // Without the CA, or under a name the certificate lacks, curl refuses the server.
    let (ok, _, _) = host_curl(&["--resolve", &resolve, &url]);
    assert!(!ok, "the test CA is not in the system's roots");
    let other = format!("other.test:{}:127.0.0.2", secure.port());
    let (ok, _, _) =
        host_curl(&["--cacert", ca_arg, "--resolve", &other, &format!("https://other.test:{}/", secure.port())]);
    assert!(!ok, "the certificate names only localhost");
    assert_eq!(secure.requests().len(), 1, "refused handshakes record nothing");

    // An endless head is cut off at the cap with 431; the connection ends.
    let mut raw = TcpStream::connect(plain.addr()).expect("connect");
    raw.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut head = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    head.resize(MAX_HEAD_BYTES + 1024, b'a');
    let _ = raw.write_all(&head);
    let mut answer = String::new();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_eq!(plain.requests().len(), 2, "nothing recorded");

    // Dropping an upstream ends an idle connection and closes the listener.
    let mut idle = TcpStream::connect(secure.addr()).expect("connect");
    idle.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let addr = secure.addr();
    drop(secure);
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).map(|_| rest.len()).ok(), Some(0), "closed without an answer");
    assert!(TcpStream::connect(addr).is_err(), "nothing listens on {addr} any more");
    drop(plain);
}

#[test]
fn the_curl_image_runs_curl_in_a_sandbox() {
    use crate::sandboxes::{Fixture, id_of};

    let fx = Fixture::start();
    let digest = push_curl_image(&fx.registry, "nimbus-test/curl:1");
    let image = format!("{}/nimbus-test/curl:1", fx.registry.host());
    let applets = CURL_IMAGE_APPLETS.join(" ");
    let script = format!(
        "curl --version && for a in {applets}; do test -x /bin/$a || {{ echo missing $a; exit 9; }}; done && \
         test -f /etc/ssl/certs/ca-certificates.crt && echo \"PATH=$PATH\""
    );
    let created = fx.create_from(&image, &["sh", "-c", &script], json!({}));
    assert_eq!(created["status"]["image"]["digest"], digest.as_str());
    let id = id_of(&created);
    let ended = fx.wait_stopped(&id);
    let stdout = fx.output(&id, "stdout");
    let stderr = fx.output(&id, "stderr");
    assert_eq!(
        (ended["status"]["lifecycleState"].as_str(), ended["status"]["exitCode"].as_i64()),
        (Some("stopped"), Some(0)),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.starts_with("curl ") && stdout.contains("libcurl/"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("Protocols:") && l.contains(" https")), "{stdout}");
    assert!(stdout.ends_with("PATH=/usr/bin:/bin\n"), "{stdout}");
    fx.delete(&id);
}

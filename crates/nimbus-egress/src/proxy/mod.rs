//! [`Proxy`]: the server's egress proxy. Sandboxes' supervisors hand it their connections over a
//! unix socket; each is served as an HTTP/1.1 forward proxy (`connection.rs`): decisions and
//! upstream connections in `upstream.rs`, `CONNECT` tunnels in `tunnel.rs`, TLS termination for
//! credential hosts in `intercept.rs`, plain-HTTP forwarding in `forward.rs`, the proxy's own
//! answers in `answer.rs`.

mod answer;
mod connection;
mod forward;
mod intercept;
mod tunnel;
mod upstream;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nimbus_core::limits::{EGRESS_HANDOFF_TIMEOUT_MS, EGRESS_MAX_CONNECTIONS_PER_SANDBOX};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::Interest;
use tokio::net::{UnixListener, UnixStream};

use crate::ca::EgressCa;
use crate::log::DecisionLogs;
use crate::rules::{Ceiling, EgressRules};

/// Longest message a supervisor sends with a connection: the sandbox's id.
const MAX_HANDOFF_BYTES: usize = 256;

/// What the proxy asks the server about sandboxes and secrets.
pub trait Directory: Send + Sync + 'static {
    /// The tenant and current egress rules of a running sandbox; `None` when the sandbox is
    /// unknown or not running (everything it asks is then refused).
    fn rules(&self, sandbox: &str) -> Option<(String, EgressRules)>;

    /// A tenant secret's value. Never logged, never shown to the sandbox.
    fn secret(&self, tenant: &str, name: &str) -> Option<String>;

    /// A connection to `port` on the sandbox's own loopback, opened inside it (for clients that
    /// send requests for `localhost` to the proxy). Blocking.
    fn connect_inside(&self, tenant: &str, sandbox: &str, port: u16) -> Option<std::net::TcpStream>;
}

/// The operator's settings.
pub struct Settings {
    /// Whether names may resolve to internal addresses (`--egress-allow-internal`).
    pub allow_internal: bool,
    /// The ceiling (`--egress-policy`), if any.
    pub ceiling: Option<Ceiling>,
    /// Roots upstream TLS is verified against ([`crate::upstream_roots`]).
    pub upstream_roots: RootCertStore,
}

/// The egress proxy of one server.
pub struct Proxy {
    settings: Settings,
    ca: EgressCa,
    directory: Arc<dyn Directory>,
    logs: Arc<DecisionLogs>,
    upstream_tls: Arc<ClientConfig>,
    /// Open connections per sandbox.
    open: Mutex<HashMap<String, usize>>,
}

impl Proxy {
    /// A proxy answering through `directory`, issuing certificates from `ca`.
    pub fn new(settings: Settings, ca: EgressCa, directory: Arc<dyn Directory>) -> Result<Arc<Self>, String> {
        let mut upstream_tls = ClientConfig::builder_with_provider(crate::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(settings.upstream_roots.clone())
            .with_no_client_auth();
        upstream_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(Self {
            settings,
            ca,
            directory,
            logs: Arc::new(DecisionLogs::default()),
            upstream_tls: Arc::new(upstream_tls),
            open: Mutex::new(HashMap::new()),
        }))
    }

    /// The decision logs.
    pub fn logs(&self) -> &Arc<DecisionLogs> {
        &self.logs
    }

    /// The CA certificate (PEM) sandboxes trust.
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// Binds the hand-off socket at `path` (a stale one is replaced), private to the server's
    /// user.
    pub fn bind(path: &Path) -> io::Result<UnixListener> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // A socket address holds about 100 bytes: a longer path is reached through the directory's
        // descriptor.
        let listener = if path.as_os_str().len() < 100 {
            UnixListener::bind(path)?
        } else {
            let dir = std::fs::File::open(path.parent().unwrap_or(Path::new("/")))?;
            let name = path.file_name().unwrap_or_default();
            UnixListener::bind(Path::new("/proc/self/fd").join(dir.as_raw_fd().to_string()).join(name))?
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(listener)
    }

    /// Serves connections handed over on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let proxy = self.clone();
                    tokio::spawn(async move { proxy.take_over(stream).await });
                }
                Err(err) => {
                    tracing::warn!(%err, "egress hand-off socket");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Receives one connection from a supervisor and serves it.
    async fn take_over(self: Arc<Self>, handoff: UnixStream) {
        // A supervisor sends its message with the connection; nothing else may hold a task here.
        let received = tokio::time::timeout(Duration::from_millis(EGRESS_HANDOFF_TIMEOUT_MS), receive(&handoff)).await;
        let (sandbox, fd) = match received.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())) {
            Ok(received) => received,
            Err(err) => {
                tracing::warn!(%err, "a supervisor's egress hand-off failed");
                return;
            }
        };
        drop(handoff);
        let std_stream = std::net::TcpStream::from(fd);
        // Answers are written as they arrive: Nagle's algorithm would hold a chunk's tail back
        // until the sandbox acknowledged the previous one.
        let _ = std_stream.set_nodelay(true);
        let stream = match std_stream.set_nonblocking(true).and_then(|()| tokio::net::TcpStream::from_std(std_stream)) {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(%err, "an egress connection could not be adopted");
                return;
            }
        };
        let Some(_slot) = Slot::take(&self, &sandbox) else {
            tracing::warn!(sandbox, "egress connection limit reached; connection closed");
            return;
        };
        connection::serve(self.clone(), sandbox, stream).await;
    }
}

/// One of a sandbox's `EGRESS_MAX_CONNECTIONS_PER_SANDBOX` connection slots, freed on drop.
struct Slot<'a> {
    proxy: &'a Proxy,
    sandbox: String,
}

impl<'a> Slot<'a> {
    fn take(proxy: &'a Proxy, sandbox: &str) -> Option<Self> {
        let mut open = proxy.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(sandbox.to_owned()).or_insert(0);
        if *count >= EGRESS_MAX_CONNECTIONS_PER_SANDBOX {
            return None;
        }
        *count += 1;
        Some(Self { proxy, sandbox: sandbox.to_owned() })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut open = self.proxy.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.sandbox) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.sandbox);
            }
        }
    }
}

/// Reads a supervisor's hand-off: the sandbox's id, with the connection's descriptor.
async fn receive(stream: &UnixStream) -> io::Result<(String, OwnedFd)> {
    loop {
        stream.readable().await?;
        match stream.try_io(Interest::READABLE, || receive_now(stream.as_raw_fd())) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

fn receive_now(socket: RawFd) -> io::Result<(String, OwnedFd)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut bytes = [0u8; MAX_HANDOFF_BYTES];
    let mut iov = [io::IoSliceMut::new(&mut bytes)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(socket, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            fds.extend(received.into_iter().map(owned));
        }
    }
    let length = message.bytes;
    let id = std::str::from_utf8(&bytes[..length]).ok().filter(|id| !id.is_empty()).map(str::to_owned);
    match (id, fds.len(), fds.pop()) {
        (Some(id), 1, Some(fd)) => Ok((id, fd)),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "a hand-off is a sandbox id with one descriptor")),
    }
}

/// Takes ownership of a descriptor the kernel just installed for us.
#[allow(unsafe_code)]
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: SCM_RIGHTS installed `fd` in this process for this message alone; nothing else
    // refers to it, so owning it (and closing it on drop) is sound.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

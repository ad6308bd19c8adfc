//! Intercepted tunnels, for hosts with a credential rule: the proxy completes the sandbox's TLS
//! itself with a certificate for the host from the server's CA, opens verified TLS to the real
//! host, and forwards each request with the credential header added.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use nimbus_core::limits::{EGRESS_CONNECT_TIMEOUT_MS, EGRESS_HEAD_TIMEOUT_MS};
use rustls::pki_types::ServerName;
use rustls::server::Acceptor;
use tokio::sync::Mutex;
use tokio_rustls::{LazyConfigAcceptor, TlsConnector};

use super::Proxy;
use super::answer::ProxyBody;
use super::forward::{self, Exchange};
use super::tunnel::check_server_name;
use super::upstream::{Connected, Credential};
use crate::log::{Entry, Kind, Reason};

/// The tunnel being intercepted.
pub(super) struct Tunnel<'a> {
    /// The asking sandbox.
    pub sandbox: &'a str,
    /// Its tenant.
    pub tenant: &'a str,
    /// The tunnel's log entry (host, port, rule, address); each request gets one of its own.
    pub entry: &'a Entry,
    /// The header to add.
    pub credential: Credential,
}

/// Serves the tunnel's requests until either side ends it. `Err` says why the tunnel failed
/// (the client's TLS, the upstream's TLS).
pub(super) async fn run(
    proxy: &Arc<Proxy>,
    tunnel: Tunnel<'_>,
    client: TokioIo<Upgraded>,
    upstream: Connected,
) -> Result<(), Reason> {
    let host = tunnel.entry.host.clone();
    let head = Duration::from_millis(EGRESS_HEAD_TIMEOUT_MS);
    let start = match tokio::time::timeout(head, LazyConfigAcceptor::new(Acceptor::default(), client)).await {
        Ok(Ok(start)) => start,
        _ => return Err(Reason::NotTls),
    };
    check_server_name(start.client_hello().server_name(), &host)?;
    let config = proxy.ca.server_config(&host).map_err(|err| {
        tracing::error!(%err, host, "cannot issue an egress certificate");
        Reason::ClientTls
    })?;
    let tls = match tokio::time::timeout(head, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        _ => return Err(Reason::ClientTls),
    };
    let sender = open_upstream(proxy, &host, upstream).await;
    let upstream_failed = sender.is_none();
    let sender = Arc::new(Mutex::new(sender));
    let service = service_fn(|request: Request<Incoming>| {
        let (sender, tunnel) = (sender.clone(), &tunnel);
        async move { Ok::<_, Infallible>(forward_inner(proxy, tunnel, &sender, request).await) }
    });
    let _ = server::Builder::new().serve_connection(TokioIo::new(tls), service).await;
    if upstream_failed { Err(Reason::UpstreamTls) } else { Ok(()) }
}

/// Verified TLS to the real host, and an HTTP/1.1 connection over it; `None` when either fails.
async fn open_upstream(
    proxy: &Proxy,
    host: &str,
    upstream: Connected,
) -> Option<(client::SendRequest<ProxyBody>, Arc<crate::stream::Meter>)> {
    let name = ServerName::try_from(host.to_owned()).ok()?;
    let connector = TlsConnector::from(proxy.upstream_tls.clone());
    let connect = Duration::from_millis(EGRESS_CONNECT_TIMEOUT_MS);
    let tls = tokio::time::timeout(connect, connector.connect(name, upstream.stream)).await.ok()?.ok()?;
    let (sender, connection) = client::handshake(TokioIo::new(tls)).await.ok()?;
    tokio::spawn(connection);
    Some((sender, upstream.meter))
}

/// One request inside the tunnel, logged on its own.
async fn forward_inner(
    proxy: &Arc<Proxy>,
    tunnel: &Tunnel<'_>,
    sender: &Mutex<Option<(client::SendRequest<ProxyBody>, Arc<crate::stream::Meter>)>>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let tunnel_entry = tunnel.entry;
    let mut entry = Entry::new(Kind::Request, request.method().as_str(), &tunnel_entry.host, tunnel_entry.port);
    entry.rule = tunnel_entry.rule.clone();
    entry.address = tunnel_entry.address.clone();
    entry.credential = Some(tunnel.credential.secret.clone());
    let mut sender = sender.lock().await;
    let Some((sender, meter)) = sender.as_mut() else {
        return proxy.refuse(tunnel.sandbox, Some(tunnel.tenant), entry, Reason::UpstreamTls);
    };
    let exchange = Exchange {
        sandbox: tunnel.sandbox,
        tenant: tunnel.tenant,
        authority: forward::authority(&tunnel_entry.host, tunnel_entry.port, 443),
        credential: Some(&tunnel.credential),
    };
    forward::send(proxy, &exchange, sender, meter.clone(), request, entry).await
}

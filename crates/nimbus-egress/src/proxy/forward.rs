//! Forwarding HTTP requests upstream: plain-HTTP proxy requests (on an upstream connection kept
//! for the next request to the same host), and the requests inside an intercepted tunnel. The
//! request goes on in origin form with its own `Host`, without hop-by-hop headers, with the
//! credential header when the host has one; the answer streams back and is logged when its body
//! ends.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{EXPECT, HOST, HeaderValue};
use hyper::{Request, Response, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

use super::Proxy;
use super::answer::ProxyBody;
use super::upstream::Credential;
use crate::hop;
use crate::log::{Entry, Kind, Reason};
use crate::stream::{Meter, OnEnd};

/// The upstream connection of a sandbox connection's last plain-HTTP request.
pub(super) struct Kept {
    host: String,
    port: u16,
    address: SocketAddr,
    sender: SendRequest<ProxyBody>,
    meter: Arc<Meter>,
}

/// Where a request goes, and what it carries there.
pub(super) struct Exchange<'a> {
    /// The asking sandbox.
    pub sandbox: &'a str,
    /// Its tenant.
    pub tenant: &'a str,
    /// `Host` of the forwarded request.
    pub authority: String,
    /// The header to add.
    pub credential: Option<&'a Credential>,
}

/// Forwards a plain-HTTP proxy request for `host:port`.
pub(super) async fn plain(
    proxy: Arc<Proxy>,
    sandbox: String,
    kept: Arc<Mutex<Option<Kept>>>,
    request: Request<Incoming>,
    host: String,
    port: u16,
) -> Response<ProxyBody> {
    let mut entry = Entry::new(Kind::Request, request.method().as_str(), &host, port);
    let grant = match proxy.decide(&sandbox, &host, port) {
        Ok(grant) => grant,
        Err((tenant, reason)) => return proxy.refuse(&sandbox, tenant.as_deref(), entry, reason),
    };
    entry.rule.clone_from(&grant.rule);
    entry.credential = grant.credential.as_ref().map(|c| c.secret.clone());
    let mut kept = kept.lock().await;
    let reusable = kept.as_ref().is_some_and(|k| k.host == host && k.port == port && !k.sender.is_closed());
    if !reusable {
        *kept = None;
        let upstream = match proxy.connect(&sandbox, &grant, &host, port).await {
            Ok(upstream) => upstream,
            Err(reason) => return proxy.refuse(&sandbox, Some(&grant.tenant), entry, reason),
        };
        let (sender, connection) = match http1::handshake(TokioIo::new(upstream.stream)).await {
            Ok(handshake) => handshake,
            Err(_) => return proxy.refuse(&sandbox, Some(&grant.tenant), entry, Reason::ConnectFailed),
        };
        tokio::spawn(connection);
        *kept = Some(Kept { host: host.clone(), port, address: upstream.address, sender, meter: upstream.meter });
    }
    let Some(upstream) = kept.as_mut() else {
        return proxy.refuse(&sandbox, Some(&grant.tenant), entry, Reason::ConnectFailed);
    };
    entry.address = Some(upstream.address.to_string());
    let exchange = Exchange {
        sandbox: &sandbox,
        tenant: &grant.tenant,
        authority: authority(&host, port, 80),
        credential: grant.credential.as_ref(),
    };
    send(&proxy, &exchange, &mut upstream.sender, upstream.meter.clone(), request, entry).await
}

/// `Host` for `host:port`: the port only when it is not the scheme's default, IPv6 in brackets.
pub(super) fn authority(host: &str, port: u16, default_port: u16) -> String {
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    if port == default_port { host } else { format!("{host}:{port}") }
}

/// Sends one request on `sender` and passes the answer back; `entry` is logged when the
/// answer's body ends (or at once when there is no answer).
pub(super) async fn send(
    proxy: &Arc<Proxy>,
    exchange: &Exchange<'_>,
    sender: &mut SendRequest<ProxyBody>,
    meter: Arc<Meter>,
    request: Request<Incoming>,
    mut entry: Entry,
) -> Response<ProxyBody> {
    let (out_before, in_before) = meter.totals();
    let outgoing = rewrite(request, &exchange.authority, exchange.credential);
    let answer = match sender.ready().await {
        Ok(()) => sender.send_request(outgoing).await,
        Err(err) => Err(err),
    };
    let response = match answer {
        Ok(response) => response,
        Err(_) => return proxy.refuse(exchange.sandbox, Some(exchange.tenant), entry, Reason::ConnectFailed),
    };
    entry.status = Some(response.status().as_u16());
    let (mut parts, body) = response.into_parts();
    parts.headers = hop::forwarded(&parts.headers, false);
    let logs = proxy.logs.clone();
    let sandbox = exchange.sandbox.to_owned();
    let body = OnEnd::new(body, move || {
        let (out, inbound) = meter.totals();
        entry.bytes_out = out - out_before;
        entry.bytes_in = inbound - in_before;
        logs.record(&sandbox, entry);
    });
    Response::from_parts(parts, body.boxed())
}

/// The request as it goes upstream.
fn rewrite(request: Request<Incoming>, authority: &str, credential: Option<&Credential>) -> Request<ProxyBody> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
    parts.version = Version::HTTP_11;
    let mut headers = hop::forwarded(&parts.headers, false);
    // The proxy answers `100 Continue` itself when it reads the body.
    headers.remove(EXPECT);
    if let Ok(host) = HeaderValue::from_str(authority) {
        headers.insert(HOST, host);
    }
    if let Some(credential) = credential {
        headers.insert(credential.header.clone(), credential.value.clone());
    }
    parts.headers = headers;
    Request::from_parts(parts, body.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_name_the_port_only_when_it_is_not_the_default() {
        assert_eq!(authority("example.com", 80, 80), "example.com");
        assert_eq!(authority("example.com", 8080, 80), "example.com:8080");
        assert_eq!(authority("::1", 443, 443), "[::1]");
        assert_eq!(authority("::1", 8443, 443), "[::1]:8443");
    }
}

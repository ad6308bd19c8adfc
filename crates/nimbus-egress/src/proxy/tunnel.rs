//! `CONNECT` tunnels: decided and connected before the `200`, then either relayed untouched once
//! the client's TLS ClientHello names the `CONNECT` host, or, for a credential host, intercepted
//! (`intercept.rs`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use nimbus_core::limits::{EGRESS_HEAD_TIMEOUT_MS, EGRESS_MAX_HEAD_BYTES, EGRESS_RELAY_BUFFER_BYTES};
use rustls::server::Acceptor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::answer::{self, ProxyBody};
use super::{Proxy, intercept};
use crate::log::{Entry, Kind, Reason};
use crate::rules::normalize_host;

/// Answers a `CONNECT`: a refusal, or `200` and the tunnel in a task of its own.
pub(super) async fn open(proxy: Arc<Proxy>, sandbox: String, request: Request<Incoming>) -> Response<ProxyBody> {
    let target = request.uri().authority().and_then(|a| Some((normalize_host(a.host())?, a.port_u16()?)));
    let Some((host, port)) = target else {
        let entry = Entry::new(Kind::Tunnel, "CONNECT", &request.uri().to_string(), 0);
        proxy.logs.record(&sandbox, entry.with_reason(Reason::BadRequest));
        return answer::bad_request("CONNECT takes host:port");
    };
    let mut entry = Entry::new(Kind::Tunnel, "CONNECT", &host, port);
    let grant = match proxy.decide(&sandbox, &host, port) {
        Ok(grant) => grant,
        Err((tenant, reason)) => return proxy.refuse(&sandbox, tenant.as_deref(), entry, reason),
    };
    entry.rule.clone_from(&grant.rule);
    entry.credential = grant.credential.as_ref().map(|c| c.secret.clone());
    let upstream = match proxy.connect(&sandbox, &grant, &host, port).await {
        Ok(upstream) => upstream,
        Err(reason) => return proxy.refuse(&sandbox, Some(&grant.tenant), entry, reason),
    };
    entry.address = Some(upstream.address.to_string());
    tokio::spawn(async move {
        let meter = upstream.meter.clone();
        let outcome = match hyper::upgrade::on(request).await {
            Err(_) => Ok(()), // the client left before using its tunnel
            Ok(upgraded) => {
                let client = TokioIo::new(upgraded);
                match grant.credential {
                    Some(credential) => {
                        let tunnel =
                            intercept::Tunnel { sandbox: &sandbox, tenant: &grant.tenant, entry: &entry, credential };
                        intercept::run(&proxy, tunnel, client, upstream).await
                    }
                    // The sandbox's own loopback: nothing leaves it, nothing to check.
                    None if grant.inside() => {
                        let (mut client, mut upstream) = (client, upstream.stream);
                        copy_both_ways(&mut client, &mut upstream).await;
                        Ok(())
                    }
                    None => relay(client, upstream.stream, &host).await,
                }
            }
        };
        (entry.bytes_out, entry.bytes_in) = meter.totals();
        if let Err(reason) = outcome {
            entry = entry.with_reason(reason);
        }
        proxy.logs.record(&sandbox, entry);
    });
    answer::empty(StatusCode::OK)
}

/// Checks the tunnel's ClientHello names `host`, then relays both ways untouched.
async fn relay(
    mut client: TokioIo<Upgraded>,
    mut upstream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    host: &str,
) -> Result<(), Reason> {
    let (hello, server_name) = read_client_hello(&mut client).await?;
    check_server_name(server_name.as_deref(), host)?;
    upstream.write_all(&hello).await.map_err(|_| Reason::ConnectFailed)?;
    copy_both_ways(&mut client, &mut upstream).await;
    Ok(())
}

/// Relays a tunnel's bytes both ways until either side ends it, cleanly or not (both are
/// ordinary ends of a tunnel), through buffers of `EGRESS_RELAY_BUFFER_BYTES`.
async fn copy_both_ways(
    client: &mut TokioIo<Upgraded>,
    upstream: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin),
) {
    let size = EGRESS_RELAY_BUFFER_BYTES;
    let _ = tokio::io::copy_bidirectional_with_sizes(client, upstream, size, size).await;
}

/// Reads the client's first bytes until they hold a whole TLS ClientHello (bounded by
/// `EGRESS_MAX_HEAD_BYTES` and `EGRESS_HEAD_TIMEOUT_MS`); returns them and its server name.
async fn read_client_hello(client: &mut TokioIo<Upgraded>) -> Result<(Vec<u8>, Option<String>), Reason> {
    let read = async {
        let mut acceptor = Acceptor::default();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = client.read(&mut buf).await.map_err(|_| Reason::NotTls)?;
            if n == 0 || seen.len() + n > EGRESS_MAX_HEAD_BYTES {
                return Err(Reason::NotTls);
            }
            seen.extend_from_slice(&buf[..n]);
            acceptor.read_tls(&mut &buf[..n]).map_err(|_| Reason::NotTls)?;
            match acceptor.accept() {
                Ok(Some(accepted)) => {
                    let name = accepted.client_hello().server_name().map(str::to_owned);
                    return Ok((seen, name));
                }
                Ok(None) => {}
                Err(_) => return Err(Reason::NotTls),
            }
        }
    };
    tokio::time::timeout(Duration::from_millis(EGRESS_HEAD_TIMEOUT_MS), read).await.unwrap_or(Err(Reason::NotTls))
}

/// A tunnel's TLS must name the host it was opened to (an address target may name none).
pub(super) fn check_server_name(server_name: Option<&str>, host: &str) -> Result<(), Reason> {
    match server_name {
        Some(name) if normalize_host(name).as_deref() == Some(host) => Ok(()),
        None if host.parse::<IpAddr>().is_ok() => Ok(()),
        _ => Err(Reason::SniMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_must_be_the_connect_host() {
        assert_eq!(check_server_name(Some("API.example.com."), "api.example.com"), Ok(()));
        assert_eq!(check_server_name(Some("evil.example"), "api.example.com"), Err(Reason::SniMismatch));
        assert_eq!(check_server_name(None, "api.example.com"), Err(Reason::SniMismatch));
        assert_eq!(check_server_name(None, "127.0.0.2"), Ok(()));
    }
}

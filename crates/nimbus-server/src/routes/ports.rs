//! `ANY /api/tenants/{tenant_id}/sandboxes/{sandbox_id}/ports/{port}/{*path}`: a reverse proxy
//! into a port a sandbox listens on, over a connection its supervisor opens inside the sandbox's
//! network namespace (its own loopback). HTTP is streamed both ways; an `Upgrade` (WebSocket) is
//! relayed byte for byte once the sandbox answers 101. One connection into the sandbox per
//! request. What the sandbox answers is passed on as is (its errors are not Nimbus envelopes);
//! what Nimbus refuses is enveloped.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use nimbus_core::limits::SANDBOX_PORT_HEADERS_MS;
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_egress::hop::forwarded;
use serde_json::json;

use super::sandboxes::target;
use crate::envelope::{ApiResult, keep_foreign_error};
use crate::params::PathParams;
use crate::state::AppState;

/// The proxy route.
pub async fn proxy(State(state): State<AppState>, params: PathParams, request: Request) -> ApiResult<Response> {
    let (tenant, id) = target(&state, &params)?;
    let port = params
        .segment("port")?
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| NimbusError::invalid_input("port", "must be a port number from 1 to 65535"))?;
    let path = params.rest("path").unwrap_or_default().to_owned();
    let prefix = format!("/api/tenants/{tenant}/sandboxes/{id}/ports/{port}");
    let (_, backend) = state.sandboxes.runtime(&tenant, &id)?;
    let connection = nimbus_compute::blocking(move || backend.connect(&id, port)).await??;
    let unreachable = |reason: String| {
        NimbusError::new(
            ErrorCode::SandboxPortUnreachable,
            format!("port {port} of the sandbox: {reason}"),
            Some(json!({ "port": port, "reason": reason })),
        )
    };
    connection.set_nonblocking(true).map_err(|e| unreachable(e.to_string()))?;
    let connection = tokio::net::TcpStream::from_std(connection).map_err(|e| unreachable(e.to_string()))?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(connection))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(err) = driver.with_upgrades().await {
            tracing::debug!(%err, "a connection into a sandbox's port ended with an error");
        }
    });

    let (mut parts, body) = request.into_parts();
    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let upgrading = parts.headers.contains_key(header::UPGRADE);
    let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let uri: Uri =
        format!("/{path}{query}").parse().map_err(|_| NimbusError::invalid_input("path", "is not a valid URI path"))?;
    let mut upstream = hyper::Request::builder().method(parts.method.clone()).uri(uri);
    if let Some(headers) = upstream.headers_mut() {
        *headers = forwarded(&parts.headers, upgrading);
        // The admin token is for Nimbus, never for the sandbox.
        headers.remove(header::AUTHORIZATION);
        let host = parts.headers.get(header::HOST).cloned();
        if let Ok(value) = HeaderValue::from_str(&format!("localhost:{port}")) {
            headers.insert(header::HOST, value);
        }
        if let Ok(value) = HeaderValue::from_str(&prefix) {
            headers.insert(HeaderName::from_static("x-forwarded-prefix"), value);
        }
        if let Some(host) = host {
            headers.insert(HeaderName::from_static("x-forwarded-host"), host);
        }
    }
    let upstream = upstream.body(body).map_err(|e| unreachable(e.to_string()))?;
    let answer = tokio::time::timeout(Duration::from_millis(SANDBOX_PORT_HEADERS_MS), sender.send_request(upstream))
        .await
        .map_err(|_| unreachable(format!("no response within {SANDBOX_PORT_HEADERS_MS} ms")))?
        .map_err(|e| unreachable(format!("not an HTTP response: {e}")))?;

    let (mut answer_parts, answer_body) = answer.into_parts();
    let switching = answer_parts.status == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        let (Some(client), true) = (client_upgrade, upgrading) else {
            return Err(unreachable("it switched protocols without being asked to".into()).into());
        };
        let sandbox = hyper::upgrade::on(hyper::Response::from_parts(answer_parts.clone(), answer_body));
        tokio::spawn(async move {
            match (client.await, sandbox.await) {
                (Ok(client), Ok(sandbox)) => {
                    let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(sandbox)).await;
                }
                (Err(err), _) | (_, Err(err)) => tracing::debug!(%err, "an upgrade into a sandbox's port failed"),
            }
        });
        return Ok(from_sandbox(Response::from_parts(answer_parts, Body::empty())));
    }
    answer_parts.headers = forwarded(&answer_parts.headers, false);
    Ok(from_sandbox(Response::from_parts(answer_parts, Body::new(answer_body))))
}

/// Marks an answer as the sandbox's own: passed on unenveloped, and told apart from Nimbus's
/// answers by `X-Nimbus-Upstream: sandbox`.
fn from_sandbox(mut response: Response) -> Response {
    response.headers_mut().insert(HeaderName::from_static("x-nimbus-upstream"), HeaderValue::from_static("sandbox"));
    keep_foreign_error(&mut response);
    response
}

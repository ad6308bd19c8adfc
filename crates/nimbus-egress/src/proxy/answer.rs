//! The proxy's own answers to a sandbox: refusals (403 `sandbox.egress_refused`), failures to
//! reach the upstream (502 `sandbox.egress_upstream_failed`) and requests that are no proxy
//! requests (400), each an error envelope whose message says what to do.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use nimbus_core::ids::mint_request_id;
use nimbus_core::limits::EGRESS_PROXY_STATUS_NAME;
use nimbus_core::{ErrorCode, NimbusError};
use serde_json::json;

use crate::log::{Decision, Reason};

/// Every body the proxy answers with.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Who asked: the sandbox, and its tenant when known (for the remedies the messages name).
pub struct Asker<'a> {
    /// The sandbox's id.
    pub sandbox: &'a str,
    /// Its tenant.
    pub tenant: Option<&'a str>,
}

/// An empty answer with `status`.
pub fn empty(status: StatusCode) -> Response<ProxyBody> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
}

/// The answer for a refused or failed `host:port`.
pub fn refused(asker: &Asker<'_>, host: &str, port: u16, reason: Reason) -> Response<ProxyBody> {
    let network = match asker.tenant {
        Some(tenant) => format!("PUT /api/tenants/{tenant}/sandboxes/{}/network", asker.sandbox),
        None => "PUT /api/tenants/{tenant}/sandboxes/{id}/network".to_owned(),
    };
    let message = match reason {
        Reason::NotAllowed => format!(
            "egress to {host}:{port} is not allowed: no rule of this sandbox's spec.network.egress.allow covers it; \
             allow it with {{\"host\": \"{host}\", \"ports\": [{port}]}} ({network})"
        ),
        Reason::Ceiling => format!("egress to {host}:{port} is beyond the operator's egress policy (--egress-policy)"),
        Reason::InternalAddress => format!(
            "{host} resolves only to internal addresses (loopback, private, link-local or metadata), which sandboxes \
             may not reach; the operator can allow them with `nimbus start --egress-allow-internal`"
        ),
        Reason::SecretMissing => format!(
            "the credential rule for {host} names a secret this tenant does not have; create it with \
             PUT /api/tenants/{}/secrets/{{name}}",
            asker.tenant.unwrap_or("{tenant}")
        ),
        Reason::Unresolvable => format!("{host} did not resolve"),
        Reason::ConnectFailed => format!("no address of {host} accepted a connection on port {port}"),
        Reason::UpstreamTls => format!("TLS with {host}:{port} failed: its certificate did not verify"),
        Reason::BadRequest | Reason::SniMismatch | Reason::NotTls | Reason::ClientTls => {
            format!("the request for {host}:{port} was refused ({})", reason.as_str())
        }
    };
    let code = match reason.decision() {
        Decision::Failed => ErrorCode::SandboxEgressUpstreamFailed,
        Decision::Refused | Decision::Allowed => ErrorCode::SandboxEgressRefused,
    };
    let mut response = enveloped(&NimbusError::new(
        code,
        message,
        Some(json!({ "host": host, "port": port, "reason": reason.as_str() })),
    ));
    // RFC 9209: says the answer is the proxy's, not the upstream's (a browser then reports a
    // failed navigation rather than a page).
    let status =
        format!("{EGRESS_PROXY_STATUS_NAME}; error={}; details=\"{}\"", proxy_status_error(reason), reason.as_str());
    if let Ok(value) = HeaderValue::from_str(&status) {
        response.headers_mut().insert(HeaderName::from_static("proxy-status"), value);
    }
    response
}

/// The RFC 9209 error type of a refusal or failure.
fn proxy_status_error(reason: Reason) -> &'static str {
    match reason {
        Reason::NotAllowed | Reason::Ceiling | Reason::SecretMissing => "http_request_denied",
        Reason::InternalAddress => "destination_ip_prohibited",
        Reason::Unresolvable => "dns_error",
        Reason::ConnectFailed => "connection_refused",
        Reason::UpstreamTls => "tls_certificate_error",
        Reason::BadRequest | Reason::SniMismatch | Reason::NotTls | Reason::ClientTls => "http_request_error",
    }
}

/// The answer for something that is no proxy request.
pub fn bad_request(reason: &str) -> Response<ProxyBody> {
    enveloped(&NimbusError::invalid_request(format!(
        "this is the sandbox's HTTP proxy: it takes `CONNECT host:port` and absolute `http://` requests ({reason})"
    )))
}

fn enveloped(error: &NimbusError) -> Response<ProxyBody> {
    let body = json!({ "error": error.envelope(&mint_request_id()) }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *response.status_mut() = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

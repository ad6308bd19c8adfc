//! One sandbox connection, served as an HTTP/1.1 forward proxy: `CONNECT` opens a tunnel, an
//! absolute `http://` request is forwarded, anything else is a 400.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use nimbus_core::limits::{EGRESS_HEAD_TIMEOUT_MS, EGRESS_MAX_HEAD_BYTES};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::answer::{self, Asker, ProxyBody};
use super::{Proxy, forward, tunnel};
use crate::log::{Entry, Kind, Reason};
use crate::rules::normalize_host;

/// Serves one connection a sandbox opened to its proxy listener, until either side closes it.
pub(super) async fn serve(proxy: Arc<Proxy>, sandbox: String, stream: TcpStream) {
    let kept = Arc::new(Mutex::new(None));
    let service = {
        let sandbox = sandbox.clone();
        service_fn(move |request: Request<Incoming>| {
            let (proxy, sandbox, kept) = (proxy.clone(), sandbox.clone(), kept.clone());
            async move { Ok::<_, Infallible>(route(proxy, sandbox, kept, request).await) }
        })
    };
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(EGRESS_HEAD_TIMEOUT_MS))
        .max_buf_size(EGRESS_MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(err) = served.await {
        tracing::debug!(%err, sandbox, "an egress connection ended with an error");
    }
}

async fn route(
    proxy: Arc<Proxy>,
    sandbox: String,
    kept: Arc<Mutex<Option<forward::Kept>>>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    if request.method() == Method::CONNECT {
        return tunnel::open(proxy, sandbox, request).await;
    }
    let uri = request.uri();
    let target = match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(authority)) => {
            normalize_host(authority.host()).map(|host| (host, authority.port_u16().unwrap_or(80)))
        }
        _ => None,
    };
    match target {
        Some((host, port)) => forward::plain(proxy, sandbox, kept, request, host, port).await,
        None => {
            let shown = uri.authority().map_or_else(String::new, ToString::to_string);
            let entry = Entry::new(Kind::Request, request.method().as_str(), &shown, 0);
            proxy.logs.record(&sandbox, entry.with_reason(Reason::BadRequest));
            answer::bad_request("an absolute http:// URL was expected; use CONNECT for https")
        }
    }
}

impl Proxy {
    /// Logs a refusal or failure and answers it.
    pub(super) fn refuse(
        &self,
        sandbox: &str,
        tenant: Option<&str>,
        entry: Entry,
        reason: Reason,
    ) -> Response<ProxyBody> {
        let (host, port) = (entry.host.clone(), entry.port);
        self.logs.record(sandbox, entry.with_reason(reason));
        answer::refused(&Asker { sandbox, tenant }, &host, port, reason)
    }
}

//! `/mcp`: the MCP server (`nimbus-mcp`) on streamable HTTP. Its tools are answered in process
//! by this server's own router, so MCP sees exactly the HTTP API (auth, validation, envelopes)
//! without a network hop.
//!
//! The route sits in the route table, behind the auth guard: the admin token and the origin
//! policy apply to `/mcp` as to every API route. rmcp's own `Host` check is off for that reason
//! (a server started with `--host 0.0.0.0` is reached by other names; the token is what keeps a
//! rebinding page out). The transport is stateless with JSON answers: every POST carries one
//! message and gets its answer, no session or stream outlives a request, so nothing holds a
//! graceful shutdown back.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body as HttpBody;
use axum::http::{Request as HttpRequest, header};
use http_body_util::BodyExt;
use nimbus_core::limits::MAX_JSON_BODY_BYTES;
use nimbus_mcp::{Answer, Backend, BackendError, Collector, NimbusMcp, Request};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tower::ServiceExt;

use crate::state::AppState;

/// The `/mcp` service.
pub type McpService = StreamableHttpService<NimbusMcp<InProcess>, NeverSessionManager>;

/// The `/mcp` service of the server whose state is `state`.
pub fn service(state: &AppState) -> McpService {
    let server = NimbusMcp::new(Arc::new(InProcess { state: state.clone(), router: OnceLock::new() }));
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(MAX_JSON_BODY_BYTES)
        .disable_allowed_hosts();
    StreamableHttpService::new(move || Ok(server.clone()), Arc::new(NeverSessionManager::default()), config)
}

/// The MCP tools' backend: requests answered by the server's own router, with its current
/// admin token.
pub struct InProcess {
    state: AppState,
    /// The router, built on first use: `/mcp` is part of it, so it cannot exist yet when this
    /// backend is made. Its own `/mcp` is never called.
    router: OnceLock<Router>,
}

impl Backend for InProcess {
    async fn send(&self, request: Request) -> Result<Answer, BackendError> {
        let router = self.router.get_or_init(|| crate::routes::router(self.state.clone())).clone();
        let mut builder = HttpRequest::builder()
            .method(request.method.as_str())
            .uri(&request.path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.state.auth.current_token()));
        if let Some(content_type) = request.body.content_type() {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let http_request =
            builder.body(HttpBody::from(request.body.into_bytes())).map_err(|e| BackendError(e.to_string()))?;
        let response = router.oneshot(http_request).await.map_err(|e| BackendError(e.to_string()))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut collector = Collector::new(request.answer_limit);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BackendError(e.to_string()))?;
            if let Some(data) = frame.data_ref()
                && !collector.push(data)
            {
                break;
            }
        }
        Ok(collector.finish(status))
    }
}

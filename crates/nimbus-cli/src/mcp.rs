//! `nimbus mcp`: the MCP server (`nimbus-mcp`) on stdio, for MCP clients that start it as a
//! subprocess. Its tools go over HTTP to the running server.
//!
//! The server is found per request, as the SDK finds it: `--endpoint`, else `NIMBUS_ENDPOINT`,
//! else the discovery file; the token likewise: `--token`, else `NIMBUS_TOKEN`, else
//! `NIMBUS_BEARER_TOKEN`, else the token file. So an MCP client may start `nimbus mcp` before the
//! server, and a restart on another port or a token rotation needs no restart of it.
//!
//! stdout carries MCP frames only; logs go to stderr (`NIMBUS_LOG`).

use std::sync::Arc;

use nimbus_mcp::{Answer, Backend, BackendError, Collector, NimbusMcp, Request};
use rmcp::ServiceExt;

use crate::Failure;
use crate::client::{discover, local_token};

/// `nimbus mcp`'s flags.
#[derive(clap::Args)]
pub struct McpArgs {
    /// Server URL (else `NIMBUS_ENDPOINT`, else the running server's discovery file).
    #[arg(long, env = "NIMBUS_ENDPOINT")]
    endpoint: Option<String>,
    /// Admin token (else `NIMBUS_TOKEN`, `NIMBUS_BEARER_TOKEN`, else the local token file).
    #[arg(long, env = "NIMBUS_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Serves MCP on stdin/stdout until the client closes stdin.
pub fn run(args: McpArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))?;
    let token = args
        .token
        .filter(|t| !t.is_empty())
        .or_else(|| std::env::var("NIMBUS_BEARER_TOKEN").ok().filter(|t| !t.is_empty()));
    let backend = Remote { endpoint: args.endpoint.filter(|e| !e.is_empty()), token, http: reqwest::Client::new() };
    runtime.block_on(async {
        let running = NimbusMcp::new(Arc::new(backend))
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Failure::failed(format!("the MCP session did not start: {e}")))?;
        running.waiting().await.map_err(|e| Failure::failed(format!("the MCP session failed: {e}")))?;
        Ok(())
    })
}

/// The tools' backend: HTTP to the running server.
struct Remote {
    /// `--endpoint`/`NIMBUS_ENDPOINT`; `None`: the discovery file, read per request.
    endpoint: Option<String>,
    /// `--token` and its variables; `None`: the token file, read per request.
    token: Option<String>,
    http: reqwest::Client,
}

impl Remote {
    fn endpoint(&self) -> Result<String, BackendError> {
        discover(self.endpoint.clone()).map(|url| url.trim_end_matches('/').to_owned()).ok_or_else(|| {
            BackendError("no running server found: start one with `nimbus start`, or pass --endpoint".into())
        })
    }

    fn token(&self) -> Result<String, BackendError> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        local_token().map_err(|e| BackendError(format!("{e}, or pass --token")))
    }
}

impl Backend for Remote {
    async fn send(&self, request: Request) -> Result<Answer, BackendError> {
        let endpoint = self.endpoint()?;
        let method =
            reqwest::Method::from_bytes(request.method.as_str().as_bytes()).map_err(|e| BackendError(e.to_string()))?;
        let mut builder = self.http.request(method, format!("{endpoint}{}", request.path)).bearer_auth(self.token()?);
        if let Some(content_type) = request.body.content_type() {
            builder = builder.header(reqwest::header::CONTENT_TYPE, content_type).body(request.body.into_bytes());
        }
        let unreachable = |e: reqwest::Error| BackendError(format!("cannot reach the server at {endpoint}: {e}"));
        let mut response = builder.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let mut collector = Collector::new(request.answer_limit);
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if !collector.push(&chunk) {
                break;
            }
        }
        Ok(collector.finish(status))
    }
}

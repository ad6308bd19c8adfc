//! [`NimbusMcp`]: the MCP server handler (initialize, tools, resources) over a [`Backend`].

use std::sync::Arc;

use nimbus_core::NimbusError;
use nimbus_core::limits::{MCP_ANSWER_MAX_BYTES, MCP_OUTPUT_MAX_BYTES};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{IntoCallToolResult, ToolCallContext};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, JsonObject, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::backend::{Answer, Backend, Body, Method, Request};
use crate::error::ToolError;
use crate::resources;

/// What the server tells a client at `initialize`.
const INSTRUCTIONS: &str = "Nimbus: tenants with JSON documents, functions and scheduled jobs, \
and isolated sandboxes (OCI containers) to run commands in. Every tenant-scoped tool takes \
`tenant` (create one with tenants_create). A failed call is a tool error whose text starts with \
`error[<catalog code>]` and gives a remediation. The manual is in the resources: \
nimbus://docs/llms.txt indexes every page.";

/// The MCP server of Nimbus: every tool and resource is a request to the Nimbus HTTP API
/// through `B`. Cheap to clone (one per MCP session).
pub struct NimbusMcp<B: Backend> {
    backend: Arc<B>,
    tool_router: ToolRouter<Self>,
}

impl<B: Backend> Clone for NimbusMcp<B> {
    fn clone(&self) -> Self {
        Self { backend: Arc::clone(&self.backend), tool_router: self.tool_router.clone() }
    }
}

impl<B: Backend> NimbusMcp<B> {
    /// A server whose tools and resources go through `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        let mut tool_router = Self::data_tools() + Self::compute_tools();
        for route in tool_router.map.values_mut() {
            route.attr.input_schema = Arc::new(portable(&route.attr.input_schema));
            route.attr.output_schema = route.attr.output_schema.as_deref().map(|schema| Arc::new(portable(schema)));
        }
        Self { backend, tool_router }
    }

    /// Every tool, as `tools/list` answers them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }

    /// Sends a request; the answer is read up to `limit` bytes. An unreachable server is
    /// `service.unavailable`.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: String,
        body: Body,
        limit: usize,
    ) -> Result<Answer, ToolError> {
        let request = Request { method, path, body, answer_limit: limit };
        self.backend.send(request).await.map_err(|e| {
            let message = format!("cannot reach the Nimbus server: {e}");
            let error = NimbusError::new(nimbus_core::ErrorCode::ServiceUnavailable, message, None);
            ToolError::from(error.remedy(nimbus_core::remediation::mcp_server_unreachable()))
        })
    }

    /// A request whose 2xx answer is JSON (`null` when empty), read whole up to
    /// `MCP_ANSWER_MAX_BYTES`; any other answer is the server's error.
    pub(crate) async fn call(&self, method: Method, path: String, body: Body) -> Result<Value, ToolError> {
        let answer = ok(self.send(method, path, body, MCP_ANSWER_MAX_BYTES).await?)?;
        if answer.cut {
            // The answer is longer than the limit; how much longer was never read.
            let observed = MCP_ANSWER_MAX_BYTES as u64 + 1;
            return Err(NimbusError::cap_exceeded("mcp_answer_bytes", observed, MCP_ANSWER_MAX_BYTES as u64).into());
        }
        if answer.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| ToolError::internal(format!("the server's answer is not JSON: {e}")))
    }

    /// [`Self::call`], its answer read as `T`.
    pub(crate) async fn call_as<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: Body,
    ) -> Result<T, ToolError> {
        let value = self.call(method, path, body).await?;
        serde_json::from_value(value)
            .map_err(|e| ToolError::internal(format!("the server's answer has an unexpected shape: {e}")))
    }

    /// A request whose 2xx answer is bytes (a file, NDJSON records), read up to
    /// `MCP_OUTPUT_MAX_BYTES`.
    pub(crate) async fn output(&self, method: Method, path: String) -> Result<Answer, ToolError> {
        ok(self.send(method, path, Body::Empty, MCP_OUTPUT_MAX_BYTES).await?)
    }
}

/// The answer if 2xx, else the server's error.
fn ok(answer: Answer) -> Result<Answer, ToolError> {
    if (200..=299).contains(&answer.status) {
        Ok(answer)
    } else {
        Err(ToolError::from_answer(answer.status, &answer.body))
    }
}

#[tool_handler(router = self.tool_router)]
impl<B: Backend> ServerHandler for NimbusMcp<B> {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().enable_resources().build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("nimbus", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let response = self.tool_router.call(ToolCallContext::new(self, request, context)).await?;
        Ok(catalogued_argument_error(response))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let index = self.call_text("/llms.txt").await?;
        Ok(ListResourcesResult::with_all_items(resources::list(&index)))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(target) = resources::resolve(&request.uri) else {
            return Err(ErrorData::resource_not_found(
                format!("no Nimbus resource {}", request.uri),
                Some(json!({ "uri": request.uri, "see": resources::INDEX_URI })),
            ));
        };
        let text = self.call_text(&target.path).await?;
        Ok(resources::contents(&request.uri, &target, text).into())
    }
}

impl<B: Backend> NimbusMcp<B> {
    /// The text of an open route (a docs page, the catalog), as a resource read sees it: a
    /// failure is a JSON-RPC error carrying the envelope.
    async fn call_text(&self, path: &str) -> Result<String, ErrorData> {
        let answer = self.send(Method::Get, path.to_owned(), Body::Empty, MCP_ANSWER_MAX_BYTES).await;
        match answer.and_then(ok) {
            Ok(answer) => Ok(String::from_utf8_lossy(&answer.body).into_owned()),
            Err(error) => {
                let data = error.envelope();
                let message = format!("reading {path} failed: {}", error.code());
                if error.code().ends_with("not_found") {
                    Err(ErrorData::resource_not_found(message, Some(data)))
                } else {
                    Err(ErrorData::internal_error(message, Some(data)))
                }
            }
        }
    }
}

/// How rmcp words a tool error for arguments that do not fit the tool's input type.
const ARGUMENT_ERROR_PREFIX: &str = "failed to deserialize parameters:";

/// rmcp answers arguments that do not fit a tool's input with a bare text tool error; this gives
/// it the form of every other failure, `op.invalid_input` with the reason.
fn catalogued_argument_error(response: CallToolResponse) -> CallToolResponse {
    let CallToolResponse::Complete(result) = &response else { return response };
    let reason = result
        .content
        .first()
        .and_then(|block| block.as_text())
        .and_then(|text| text.text.strip_prefix(ARGUMENT_ERROR_PREFIX))
        .map(str::trim);
    match reason {
        Some(reason) if result.is_error == Some(true) => {
            let error = ToolError::from(NimbusError::invalid_input("arguments", reason));
            error.into_call_tool_result().unwrap_or(response)
        }
        _ => response,
    }
}

/// `schema` without the `format`s schemars writes for Rust's integer types (`uint64`, `int32`,
/// …): JSON Schema defines none of them, and clients' validators warn about each one.
fn portable(schema: &JsonObject) -> JsonObject {
    fn strip(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(key, value)| {
                        !(*key == "format"
                            && value.as_str().is_some_and(|f| f.starts_with("int") || f.starts_with("uint")))
                    })
                    .map(|(key, value)| (key.clone(), strip(value)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    schema.iter().map(|(key, value)| (key.clone(), strip(value))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendError;
    use rmcp::model::{CallToolResult, ContentBlock};

    /// A backend no tool reaches in these tests.
    struct Unreachable;

    impl Backend for Unreachable {
        async fn send(&self, _request: Request) -> Result<Answer, BackendError> {
            Err(BackendError("unreachable".into()))
        }
    }

    #[test]
    fn every_tool_has_portable_input_and_output_schemas_and_annotations() {
        let tools = NimbusMcp::new(Arc::new(Unreachable)).tools();
        assert_eq!(tools.len(), 24);
        for tool in tools {
            let output = tool.output_schema.as_deref().unwrap_or_else(|| panic!("{} has no output schema", tool.name));
            assert_eq!(output.get("type"), Some(&json!("object")), "{}", tool.name);
            let text = format!("{} {}", Value::Object((*tool.input_schema).clone()), Value::Object(output.clone()));
            assert!(!text.contains("\"format\":\"uint") && !text.contains("\"format\":\"int"), "{}: {text}", tool.name);
            assert!(
                tool.annotations.and_then(|a| a.read_only_hint).is_some(),
                "{} says whether it is read-only",
                tool.name
            );
        }
    }

    #[test]
    fn an_argument_error_becomes_invalid_input() {
        let rmcp_error =
            CallToolResult::error(vec![ContentBlock::text("failed to deserialize parameters: missing field `table`")]);
        let CallToolResponse::Complete(result) = catalogued_argument_error(rmcp_error.into()) else {
            panic!("complete")
        };
        let text = result.content[0].as_text().map(|t| t.text.clone()).unwrap_or_default();
        assert!(text.starts_with("error[op.invalid_input]: "), "{text}");
        assert!(text.contains("missing field `table`"), "{text}");
        let other = CallToolResult::error(vec![ContentBlock::text("error[op.not_found]: gone")]);
        let CallToolResponse::Complete(kept) = catalogued_argument_error(other.into()) else { panic!("complete") };
        assert_eq!(kept.content[0].as_text().map(|t| t.text.as_str()), Some("error[op.not_found]: gone"));
    }
}

//! A failed tool call: an MCP tool error (`isError: true`) carrying the catalogued error, as the
//! server's envelope has it (code, message, remediation, detail).

use nimbus_core::{ErrorCode, NimbusError};
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use serde_json::{Value, json};

/// A tool's failure: the envelope object (the value under `error`) of the server's answer, or
/// of a catalogued error raised here (an unreachable server, an answer past a limit).
#[derive(Debug, Clone)]
pub struct ToolError(Value);

impl ToolError {
    /// The error of a non-2xx answer: its envelope, or `service.internal` when the body is none.
    pub fn from_answer(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(body) {
            Ok(mut envelope) if envelope["error"]["code"].is_string() => Self(envelope["error"].take()),
            _ => Self::internal(format!("the server answered {status} without an error envelope")),
        }
    }

    /// `service.internal`: an answer this server cannot read.
    pub fn internal(message: String) -> Self {
        Self::from(NimbusError::new(ErrorCode::ServiceInternal, message, None))
    }

    /// The catalog code.
    pub fn code(&self) -> &str {
        self.0["code"].as_str().unwrap_or_default()
    }

    /// `{"error": …}`, the HTTP API's envelope.
    pub fn envelope(&self) -> Value {
        json!({ "error": self.0 })
    }

    /// The first text block: `error[<code>]: <message>`, then the remediation on its own line.
    fn summary(&self) -> String {
        let mut text = format!("error[{}]: {}", self.code(), self.0["message"].as_str().unwrap_or_default());
        let remediation = &self.0["remediation"];
        if let (Some(action), Some(message)) = (remediation["action"].as_str(), remediation["message"].as_str()) {
            text.push_str(&format!("\nremediation ({action}): {message}"));
        }
        text
    }
}

impl From<NimbusError> for ToolError {
    fn from(error: NimbusError) -> Self {
        Self(error.envelope(&nimbus_core::ids::mint_request_id()))
    }
}

impl IntoCallToolResult for ToolError {
    /// Two text blocks: the summary for people and models, then `{"error": …}` exactly as the
    /// HTTP API's envelope, for programs. No `structuredContent`: a tool's output schema
    /// describes its success, and clients validate any structured content against it.
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        let blocks = vec![ContentBlock::text(self.summary()), ContentBlock::text(self.envelope().to_string())];
        Ok(CallToolResult::error(blocks).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_keeps_its_envelope_and_a_bare_one_becomes_internal() {
        let body = br#"{"error":{"code":"op.not_found","message":"no such sandbox","remediation":{"action":"fix_request","message":"List them."}}}"#;
        let error = ToolError::from_answer(404, body);
        assert_eq!(error.code(), "op.not_found");
        assert_eq!(error.summary(), "error[op.not_found]: no such sandbox\nremediation (fix_request): List them.");
        assert_eq!(ToolError::from_answer(502, b"bad gateway").code(), "service.internal");
    }
}

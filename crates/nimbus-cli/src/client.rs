//! Talking to a running server: finding it, its token, and turning its answers into results.

use std::io::Read;

use nimbus_core::catalog::Action;
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_server::auth::token_file;
use nimbus_server::discovery;
use serde_json::Value;

use crate::{EXIT_AUTH, EXIT_FAILED, EXIT_NO_SERVER, Failure};

/// A running server: its base URL and the admin token to send.
pub struct Live {
    url: String,
    token: String,
    agent: ureq::Agent,
}

/// The URL of the running server: `--url`/`NIMBUS_ENDPOINT`, else the discovery file.
pub fn discover(url: Option<String>) -> Option<String> {
    url.or_else(|| discovery::read_live().map(|r| format!("http://{}", r.address)))
}

/// The admin token: `NIMBUS_TOKEN`, else the token file.
fn token() -> Result<String, Failure> {
    if let Ok(token) = std::env::var("NIMBUS_TOKEN")
        && !token.is_empty()
    {
        return Ok(token);
    }
    let path = token_file::default_path().map_err(|e| Failure::failed(e.to_string()))?;
    Ok(token_file::load(&path)
        .map_err(|e| Failure::failed(e.to_string()))?
        .ok_or_else(|| Failure::failed(format!("no token file at {}", path.display())))?
        .token)
}

/// The server's error, rebuilt from its envelope so the CLI reports the same code (and, with
/// `--json`, the same remediation).
fn from_envelope(body: &Value) -> NimbusError {
    let error = &body["error"];
    let code = error["code"].as_str().and_then(ErrorCode::from_code).unwrap_or(ErrorCode::ServiceInternal);
    let message = error["message"].as_str().unwrap_or("request failed");
    let rebuilt = NimbusError::new(code, message, error.get("detail").cloned().filter(|d| !d.is_null()));
    let remediation = &error["remediation"];
    match (remediation["action"].as_str().and_then(Action::parse), remediation["message"].as_str()) {
        (Some(action), Some(text)) => rebuilt.with_remediation(action, text),
        _ => rebuilt,
    }
}

impl Live {
    /// A client for the server at `url`.
    pub fn connect(url: String) -> Result<Self, Failure> {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Ok(Self { url: url.trim_end_matches('/').to_owned(), token: token()?, agent })
    }

    /// Sends a request (with an optional body and its content type) and returns the JSON answer
    /// of a 2xx; any other answer becomes a failure with the server's catalog code.
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, &mut dyn Read)>) -> Result<Value, Failure> {
        let endpoint = format!("{}{path}", self.url);
        let authorization = format!("Bearer {}", self.token);
        let unreachable = |e: ureq::Error| {
            let message = format!("cannot reach the server at {}: {e}", self.url);
            Failure::with(EXIT_NO_SERVER, NimbusError::new(ErrorCode::ServiceUnavailable, message, None))
        };
        let request =
            ureq::http::Request::builder().method(method).uri(&endpoint).header("Authorization", &authorization);
        let sent = match body {
            Some((content_type, reader)) => {
                let request = request.header("Content-Type", content_type).body(ureq::SendBody::from_reader(reader));
                self.agent.run(request.map_err(|e| Failure::failed(e.to_string()))?)
            }
            None => self.agent.run(request.body(()).map_err(|e| Failure::failed(e.to_string()))?),
        };
        let mut response = sent.map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            200..=299 => Ok(json),
            401 | 403 => Err(Failure::with(EXIT_AUTH, from_envelope(&json))),
            _ => Err(Failure::with(EXIT_FAILED, from_envelope(&json))),
        }
    }
}

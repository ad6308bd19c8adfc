//! Talking to a running server: finding it, its token, and turning its answers into results.
//! Also the flags every server-backed command shares (`--url`, `--json`, `--tenant`).

use std::io::{BufRead, BufReader, Read};

use nimbus_core::catalog::Action;
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_server::auth::token_file;
use nimbus_server::discovery;
use serde_json::Value;

use crate::{EXIT_AUTH, EXIT_FAILED, EXIT_NO_SERVER, EXIT_USAGE, Failure};

/// Where the server is and how to print: shared by the `sandbox`, `tenant` and `db` commands
/// (global, so they may follow the subcommand).
#[derive(clap::Args)]
pub struct ServerArgs {
    /// Server URL (else the discovery file).
    #[arg(long, env = "NIMBUS_ENDPOINT", global = true)]
    pub url: Option<String>,
    /// Print the server's JSON answer on stdout, and errors as the JSON envelope on stderr.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The tenant a command is about: `--tenant`, else `NIMBUS_TENANT`.
#[derive(clap::Args)]
pub struct TenantArg {
    /// The tenant (else `NIMBUS_TENANT`).
    #[arg(long, env = "NIMBUS_TENANT", global = true)]
    pub tenant: Option<String>,
}

impl TenantArg {
    /// The tenant, or a usage failure (exit 2) saying how to choose one.
    pub fn get(&self) -> Result<&str, Failure> {
        self.tenant.as_deref().filter(|t| !t.is_empty()).ok_or_else(|| {
            let message = "no tenant given: pass --tenant ID or set NIMBUS_TENANT \
                           (`nimbus tenant ls` lists them, `nimbus tenant create ID` makes one)";
            let detail = serde_json::json!({ "field": "tenant" });
            Failure::with(EXIT_USAGE, NimbusError::new(ErrorCode::OpInvalidInput, message, Some(detail)))
        })
    }
}

/// The running server (`--url`, `NIMBUS_ENDPOINT`, else the discovery file), or exit 3.
pub fn connect(url: Option<String>) -> Result<Live, Failure> {
    let url = discover(url).ok_or_else(|| {
        let message = "no running server found: start one with `nimbus start`, or pass --url";
        Failure::with(EXIT_NO_SERVER, NimbusError::new(ErrorCode::ServiceUnavailable, message, None))
    })?;
    Live::connect(url)
}

pub use nimbus_core::ids::path_segment as segment;

/// A running server: its base URL and the admin token to send. Clones share the connection
/// pool.
#[derive(Clone)]
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
    local_token().map_err(Failure::failed)
}

/// The admin token in this user's token file (where `nimbus start` writes it), or why there is
/// none.
pub fn local_token() -> Result<String, String> {
    let path = token_file::default_path().map_err(|e| e.to_string())?;
    let record = token_file::load(&path).map_err(|e| e.to_string())?;
    record.map(|r| r.token).ok_or_else(|| {
        format!("no admin token file at {}: start the server here, or pass the token (NIMBUS_TOKEN)", path.display())
    })
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

/// A failure rebuilt from an error answer, keeping the server's own envelope for `--json`.
fn answer_failure(status: u16, text: &str) -> Failure {
    let mut failure = envelope_failure(serde_json::from_str(text).unwrap_or(Value::Null));
    if matches!(status, 401 | 403) {
        failure.exit = EXIT_AUTH;
    }
    failure
}

/// The operation failed (exit 1) with the server's envelope `{"error": {...}}`, from an error
/// answer or a stream's error event; kept as is for `--json`.
pub fn envelope_failure(envelope: Value) -> Failure {
    let mut failure = Failure::with(EXIT_FAILED, from_envelope(&envelope));
    if envelope["error"].is_object() {
        failure.envelope = Some(envelope);
    }
    failure
}

impl Live {
    /// A client for the server at `url`.
    pub fn connect(url: String) -> Result<Self, Failure> {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Ok(Self { url: url.trim_end_matches('/').to_owned(), token: token()?, agent })
    }

    /// Sends a request (with an optional body and its content type) and returns the JSON answer
    /// of a 2xx (`null` for an empty one); any other answer becomes a failure with the server's
    /// catalog code.
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, &mut dyn Read)>) -> Result<Value, Failure> {
        let mut response = self.send(method, path, body, None)?;
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// [`Live::call`] with a JSON body.
    pub fn call_json(&self, method: &str, path: &str, body: &Value) -> Result<Value, Failure> {
        let text = body.to_string();
        self.call(method, path, Some(("application/json", &mut text.as_bytes())))
    }

    /// A GET whose 2xx answer is read line by line as it arrives (NDJSON streams); an error
    /// answer becomes a failure as in [`Live::call`].
    pub fn stream(&self, path: &str) -> Result<impl BufRead + use<>, Failure> {
        let response = self.send("GET", path, None, None)?;
        Ok(BufReader::new(response.into_body().into_reader()))
    }

    /// A request with a JSON body that asks for an NDJSON answer (`Accept:
    /// application/x-ndjson`), read line by line as in [`Live::stream`].
    pub fn stream_json(&self, method: &str, path: &str, body: &Value) -> Result<impl BufRead + use<>, Failure> {
        let text = body.to_string();
        let body: Option<(&str, &mut dyn Read)> = Some(("application/json", &mut text.as_bytes()));
        let response = self.send(method, path, body, Some("application/x-ndjson"))?;
        Ok(BufReader::new(response.into_body().into_reader()))
    }

    /// Sends a request (with the media type to `accept`, if any); a 2xx answer is returned
    /// unread, any other becomes a failure.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &mut dyn Read)>,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let endpoint = format!("{}{path}", self.url);
        let authorization = format!("Bearer {}", self.token);
        let unreachable = |e: ureq::Error| {
            let message = format!("cannot reach the server at {}: {e}", self.url);
            Failure::with(EXIT_NO_SERVER, NimbusError::new(ErrorCode::ServiceUnavailable, message, None))
        };
        let mut request =
            ureq::http::Request::builder().method(method).uri(&endpoint).header("Authorization", &authorization);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        let sent = match body {
            Some((content_type, reader)) => {
                let request = request.header("Content-Type", content_type).body(ureq::SendBody::from_reader(reader));
                self.agent.run(request.map_err(|e| Failure::failed(e.to_string()))?)
            }
            None => self.agent.run(request.body(()).map_err(|e| Failure::failed(e.to_string()))?),
        };
        let mut response = sent.map_err(unreachable)?;
        let status = response.status().as_u16();
        if (200..=299).contains(&status) {
            return Ok(response);
        }
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Err(answer_failure(status, &text))
    }
}

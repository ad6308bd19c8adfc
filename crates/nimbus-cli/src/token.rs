//! `nimbus auth token` and `nimbus token rotate`.

use clap::Args;
use nimbus_server::auth::token_file;
use nimbus_server::discovery;
use serde_json::{Value, json};

use nimbus_core::{ErrorCode, NimbusError};

use crate::{EXIT_AUTH, Failure};

/// Exit code: the command needs a running server and none is reachable.
const EXIT_NO_SERVER: u8 = 3;

/// Flags of `nimbus token rotate`.
#[derive(Args)]
pub struct RotateArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Server URL (else the discovery file).
    #[arg(long, env = "NIMBUS_ENDPOINT")]
    url: Option<String>,
}

fn token_path() -> Result<std::path::PathBuf, Failure> {
    token_file::default_path().map_err(|e| Failure::failed(e.to_string()))
}

/// Prints the admin token (or its record as JSON).
pub fn print(json: bool) -> Result<(), Failure> {
    let path = token_path()?;
    let record = token_file::load(&path).map_err(|e| Failure::failed(e.to_string()))?.ok_or_else(|| {
        let message = format!("no token file at {}: run `nimbus start` first", path.display());
        let detail = json!({ "resource": "token_file", "path": path });
        Failure::with(crate::EXIT_FAILED, NimbusError::new(ErrorCode::OpNotFound, message, Some(detail)))
    })?;
    if json {
        let out = json!({ "token": record.token, "generation": record.generation, "issuedAt": record.issued_at, "path": path });
        println!("{out}");
    } else {
        println!("{}", record.token);
    }
    Ok(())
}

/// Rotates through the live server if one is discoverable, else rewrites the file offline.
pub fn rotate(args: RotateArgs) -> Result<(), Failure> {
    let path = token_path()?;
    let url = args.url.or_else(|| discovery::read_live().map(|r| format!("http://{}", r.address)));
    let (generation, mode) = match url {
        Some(url) => (rotate_live(&url, &path)?, "live"),
        None => {
            let record = token_file::rotate(&path).map_err(|e| Failure::failed(e.to_string()))?;
            (record.generation, "offline")
        }
    };
    if args.json {
        println!("{}", json!({ "generation": generation, "mode": mode }));
    } else {
        println!("rotated the admin token ({mode}); generation {generation}");
    }
    Ok(())
}

fn rotate_live(url: &str, path: &std::path::Path) -> Result<u64, Failure> {
    let token = match std::env::var("NIMBUS_TOKEN") {
        Ok(token) if !token.is_empty() => token,
        _ => {
            token_file::load(path)
                .map_err(|e| Failure::failed(e.to_string()))?
                .ok_or_else(|| Failure::failed(format!("no token file at {}", path.display())))?
                .token
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let endpoint = format!("{}/api/system/token/rotate", url.trim_end_matches('/'));
    let mut response =
        agent.post(&endpoint).header("Authorization", &format!("Bearer {token}")).send_empty().map_err(|e| {
            let message = format!("cannot reach the server at {url}: {e}");
            Failure::with(EXIT_NO_SERVER, NimbusError::new(ErrorCode::ServiceUnavailable, message, None))
        })?;
    let status = response.status().as_u16();
    let body: Value = response.body_mut().read_json().unwrap_or(Value::Null);
    match status {
        200 => body["generation"].as_u64().ok_or_else(|| Failure::failed("the server answered without a generation")),
        401 | 403 => Err(Failure::with(EXIT_AUTH, from_envelope(&body))),
        _ => Err(Failure::with(crate::EXIT_FAILED, from_envelope(&body))),
    }
}

/// The server's error, rebuilt from its envelope so the CLI reports the same code.
fn from_envelope(body: &Value) -> NimbusError {
    let error = &body["error"];
    let code = error["code"].as_str().and_then(ErrorCode::from_code).unwrap_or(ErrorCode::ServiceInternal);
    let message = error["message"].as_str().unwrap_or("request failed");
    NimbusError::new(code, message, error.get("detail").cloned().filter(|d| !d.is_null()))
}

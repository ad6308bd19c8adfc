//! `nimbus auth token` and `nimbus token rotate`.

use clap::Args;
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_server::auth::token_file;
use serde_json::json;

use crate::Failure;
use crate::client::{self, Live};

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
    let url = client::discover(args.url);
    let (generation, mode) = match url {
        Some(url) => (rotate_live(&url)?, "live"),
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

fn rotate_live(url: &str) -> Result<u64, Failure> {
    let answer = Live::connect(url.to_owned())?.call("POST", "/api/system/token/rotate", None)?;
    answer["generation"].as_u64().ok_or_else(|| Failure::failed("the server answered without a generation"))
}

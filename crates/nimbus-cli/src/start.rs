//! `nimbus start`.

use std::path::PathBuf;

use clap::Args;
use nimbus_core::limits::{DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT};
use nimbus_server::ServerConfig;
use nimbus_server::auth::token_file;

use crate::Failure;

/// Flags of `nimbus start` (flag > environment > default).
#[derive(Args)]
pub struct StartArgs {
    /// Bind address; a non-loopback address prints a warning.
    #[arg(long, env = "NIMBUS_HOST", default_value = DEFAULT_HOST)]
    host: String,
    /// Listen port (0 picks a free port and prints it).
    #[arg(long, env = "NIMBUS_PORT", default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Data directory: tenant databases and system records.
    #[arg(long, env = "NIMBUS_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Operator service catalog, JSON `{"services": [{"tenantId", "metadata", "spec"}]}`:
    /// read-only service definitions, validated at start (an invalid file fails the start).
    #[arg(long, env = "NIMBUS_SERVICE_CATALOG")]
    service_catalog: Option<PathBuf>,
}

/// Runs the server until it is asked to stop.
pub fn run(args: StartArgs) -> Result<(), Failure> {
    let token_path = token_file::default_path().map_err(|e| Failure::failed(e.to_string()))?;
    let config = ServerConfig {
        host: args.host,
        port: args.port,
        data_dir: args.data_dir,
        token_path,
        service_catalog: args.service_catalog,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(nimbus_server::run(config)).map_err(|e| Failure::failed(e.to_string()))
}

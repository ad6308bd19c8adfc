//! `nimbus start`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use nimbus_core::limits::{
    ACTION_CPU_MS, DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, FUNCTION_CPU_MS, FUNCTION_MAX_NESTED_CALLS,
    FUNCTION_MEMORY_BYTES, FUNCTION_WALL_MS,
};
use nimbus_sandbox::runtime::userns::IdPool;
use nimbus_server::auth::token_file;
use nimbus_server::{EgressOptions, ServerConfig};

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
    /// Memory limit of one function isolate, MiB.
    #[arg(long, env = "NIMBUS_FUNCTION_MEMORY_MB", default_value_t = (FUNCTION_MEMORY_BYTES / (1024 * 1024)) as u64)]
    function_memory_mb: u64,
    /// CPU time of one query or mutation invocation, ms.
    #[arg(long, env = "NIMBUS_FUNCTION_CPU_MS", default_value_t = FUNCTION_CPU_MS)]
    function_cpu_ms: u64,
    /// CPU time of one action invocation, ms.
    #[arg(long, env = "NIMBUS_ACTION_CPU_MS", default_value_t = ACTION_CPU_MS)]
    action_cpu_ms: u64,
    /// Wall-clock limit of any invocation, ms.
    #[arg(long, env = "NIMBUS_FUNCTION_WALL_MS", default_value_t = FUNCTION_WALL_MS)]
    function_wall_ms: u64,
    /// Deepest nested call of ctx.runQuery/runMutation/runAction.
    #[arg(long, env = "NIMBUS_FUNCTION_MAX_NESTED_CALLS", default_value_t = FUNCTION_MAX_NESTED_CALLS)]
    function_max_nested_calls: u32,
    /// Invocations of one tenant running at once (default: the number of CPUs).
    #[arg(long, env = "NIMBUS_FUNCTION_CONCURRENCY")]
    function_concurrency: Option<usize>,
    /// Stop every sandbox when the server shuts down (SIGTERM, then SIGKILL after the default
    /// grace period). By default sandboxes outlive the server and the next start adopts them.
    #[arg(long, env = "NIMBUS_STOP_SANDBOXES_ON_EXIT")]
    stop_sandboxes_on_exit: bool,
    /// Host ids for sandboxes' user namespaces, as FIRST:RANGES: RANGES ranges of 65,536 ids
    /// from host id FIRST, one per sandbox (default 2147483648:4096).
    #[arg(long, env = "NIMBUS_USERNS_POOL", value_parser = IdPool::parse)]
    userns_pool: Option<IdPool>,
    /// Let the names sandboxes may reach resolve to internal addresses (loopback, private,
    /// link-local, metadata), which the egress proxy otherwise refuses: for tests and trusted
    /// networks.
    #[arg(long, env = "NIMBUS_EGRESS_ALLOW_INTERNAL")]
    egress_allow_internal: bool,
    /// The most any sandbox may be allowed to reach, JSON `{"allow": [{"host", "ports"}]}`:
    /// creates and network updates asking for more fail (an invalid file fails the start).
    #[arg(long, env = "NIMBUS_EGRESS_POLICY")]
    egress_policy: Option<PathBuf>,
    /// PEM roots the egress proxy trusts for upstream TLS besides the system's (private or
    /// test CAs).
    #[arg(long, env = "NIMBUS_EGRESS_UPSTREAM_CA")]
    egress_upstream_ca: Option<PathBuf>,
}

/// The function limits the flags set (a zero is raised to the smallest working value).
fn function_limits(args: &StartArgs) -> nimbus_functions::Limits {
    let defaults = nimbus_functions::Limits::default();
    nimbus_functions::Limits {
        memory_bytes: usize::try_from(args.function_memory_mb.max(1).saturating_mul(1024 * 1024)).unwrap_or(usize::MAX),
        cpu: Duration::from_millis(args.function_cpu_ms.max(1)),
        action_cpu: Duration::from_millis(args.action_cpu_ms.max(1)),
        wall: Duration::from_millis(args.function_wall_ms.max(1)),
        max_nested_calls: args.function_max_nested_calls,
        concurrency: args.function_concurrency.unwrap_or(defaults.concurrency).max(1),
        queue: defaults.queue,
    }
}

/// Runs the server until it is asked to stop.
pub fn run(args: StartArgs) -> Result<(), Failure> {
    let token_path = token_file::default_path().map_err(|e| Failure::failed(e.to_string()))?;
    let functions = function_limits(&args);
    let config = ServerConfig {
        host: args.host,
        port: args.port,
        data_dir: args.data_dir,
        token_path,
        service_catalog: args.service_catalog,
        functions,
        stop_sandboxes_on_exit: args.stop_sandboxes_on_exit,
        userns_pool: args.userns_pool.unwrap_or_default(),
        egress: EgressOptions {
            allow_internal: args.egress_allow_internal,
            policy: args.egress_policy,
            upstream_ca: args.egress_upstream_ca,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(nimbus_server::run(config)).map_err(|e| Failure::failed(e.to_string()))
}

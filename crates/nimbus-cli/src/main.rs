//! The `nimbus` binary: `start`, `auth token`, `token rotate`, `image`, `functions`, `sandbox`,
//! `tenant`, `db`, `mcp`, `version`.
//!
//! **API boundary**: the commands, flags, environment variables and exit codes are the CLI
//! contract (`docs/cli.md`).

mod browser_image;
mod client;
mod db;
mod functions;
mod image;
mod mcp;
mod sandbox;
mod start;
mod supervise;
mod tenant;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_server::envelope::envelope_json;

/// mimalloc: the server allocates many small, short-lived buffers per request across threads,
/// where it measurably beats glibc malloc (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code: the operation failed.
const EXIT_FAILED: u8 = 1;
/// Exit code: a usage error (clap's own, and a missing tenant).
const EXIT_USAGE: u8 = 2;
/// Exit code: the command needs a running server and none is reachable.
const EXIT_NO_SERVER: u8 = 3;
/// Exit code: authentication against the live server failed.
const EXIT_AUTH: u8 = 4;

#[derive(Parser)]
#[command(name = "nimbus", about = "Nimbus: the backend AI agents run, inspect, and get isolated compute from")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server in the foreground.
    Start(start::StartArgs),
    /// Admin token commands.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Token maintenance.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Image store commands (through the running server that owns the data directory, else
    /// directly on it).
    Image {
        #[command(subcommand)]
        command: image::ImageCommand,
    },
    /// A tenant's functions (through the running server).
    Functions {
        #[command(subcommand)]
        command: functions::FunctionsCommand,
    },
    /// A tenant's sandboxes (through the running server).
    Sandbox(sandbox::SandboxArgs),
    /// Tenants (through the running server).
    Tenant(tenant::TenantArgs),
    /// A tenant's documents (through the running server).
    Db(db::DbArgs),
    /// Serve MCP (Model Context Protocol) on stdio, over the running server.
    Mcp(mcp::McpArgs),
    /// Internal: a sandbox's supervisor process.
    #[command(name = "__supervise", hide = true)]
    Supervise {
        /// The sandbox's state directory.
        state_dir: std::path::PathBuf,
    },
    /// Print the version.
    Version {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Print the local admin token.
    Token {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Rotate the admin token (through the live server when one runs).
    Rotate(token::RotateArgs),
}

/// A command's failure: the exit code and, unless the exit code is a workload's passed through,
/// the catalogued error.
pub struct Failure {
    exit: u8,
    /// Boxed: an error is rare and large, the `Ok` path should stay small. `None`: nothing to
    /// report (`sandbox run`/`exec` passing the workload's exit code through).
    error: Option<Box<NimbusError>>,
    /// The server's own error answer (`{"error": {...}}`), printed as is with `--json`.
    envelope: Option<serde_json::Value>,
}

impl From<NimbusError> for Failure {
    /// A catalogued error from the store or engine: the operation failed (exit 1).
    fn from(error: NimbusError) -> Self {
        Self::with(EXIT_FAILED, error)
    }
}

impl Failure {
    /// The operation failed (exit 1) for a reason outside the catalog's request errors.
    fn failed(message: impl Into<String>) -> Self {
        Self::with(EXIT_FAILED, NimbusError::new(ErrorCode::ServiceStorageOther, message, None))
    }

    fn with(exit: u8, error: NimbusError) -> Self {
        Self { exit, error: Some(Box::new(error)), envelope: None }
    }

    /// Exit with `code` and print nothing: a workload's exit code passed through.
    fn exit_code(code: u8) -> Self {
        Self { exit: code, error: None, envelope: None }
    }

    /// Prints the failure on stderr: `error[<code>]: <message>` and, when the server answered
    /// with one, its remediation on a second line (`  remediation: …`); with `--json`, the
    /// envelope (the server's own when it answered with one).
    fn report(&self, json: bool) {
        let Some(error) = &self.error else { return };
        if json {
            match &self.envelope {
                Some(envelope) => eprintln!("{envelope}"),
                None => {
                    let envelope = envelope_json(error, &nimbus_core::ids::mint_request_id());
                    eprintln!("{}", serde_json::json!({ "error": envelope }));
                }
            }
        } else {
            eprintln!("error[{}]: {}", error.code.as_str(), error.message);
            // The server's remediation only: a local failure's message already says what to do,
            // and the catalog default of the code it borrows would not fit it.
            if self.envelope.is_some()
                && let Some((_, remediation)) = error.effective_remediation()
            {
                eprintln!("  remediation: {remediation}");
            }
        }
    }
}

fn version(json: bool) {
    let version = env!("CARGO_PKG_VERSION");
    let build = option_env!("NIMBUS_BUILD_ID").unwrap_or("dev");
    if json {
        let out = serde_json::json!({
            "version": version,
            "build": build,
            "protocolVersions": ["nimbus.v2"],
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        });
        println!("{out}");
    } else {
        println!("nimbus {version} (build {build})");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NIMBUS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let (result, json) = match cli.command {
        Command::Supervise { state_dir } => return supervise::run(state_dir),
        Command::Start(args) => (start::run(args), false),
        Command::Auth { command: AuthCommand::Token { json } } => (token::print(json), json),
        Command::Token { command: TokenCommand::Rotate(args) } => {
            let json = args.json;
            (token::rotate(args), json)
        }
        Command::Image { command } => {
            let json = command.json();
            (image::run(command), json)
        }
        Command::Functions { command } => {
            let json = command.json();
            (functions::run(command), json)
        }
        Command::Sandbox(args) => {
            let json = args.server.json;
            (sandbox::run(args), json)
        }
        Command::Tenant(args) => {
            let json = args.server.json;
            (tenant::run(args), json)
        }
        Command::Db(args) => {
            let json = args.server.json;
            (db::run(args), json)
        }
        Command::Mcp(args) => (mcp::run(args), false),
        Command::Version { json } => {
            version(json);
            (Ok(()), json)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report(json);
            ExitCode::from(failure.exit)
        }
    }
}

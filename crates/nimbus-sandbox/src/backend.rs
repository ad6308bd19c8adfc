//! The seam between the sandbox control plane and what actually runs a sandbox.
//!
//! A [`Backend`] starts a sandbox from a fully resolved [`LaunchSpec`] and then answers for it by
//! id: inspect, wait, stop, remove, and the hooks sessions use (exec, stdio, files). Every method
//! blocks; async callers run them on blocking threads.

use std::path::PathBuf;
use std::time::Duration;

use nimbus_core::NimbusError;
use serde::{Deserialize, Serialize};

/// Resource limits of one sandbox, already checked against the operator maxima.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// CPU-time quota in whole CPUs (N × 100 ms per 100 ms period).
    pub cpu_count: u32,
    /// Memory limit in bytes (includes tmpfs and page cache).
    pub memory_limit_bytes: u64,
    /// Maximum number of processes and threads.
    pub pids_limit: u32,
}

/// Everything a backend needs to start one sandbox; the caller has merged the image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchSpec {
    /// The server-issued sandbox id (hostname: its first 63 characters).
    pub id: String,
    /// The image's shared, read-only root (the lower layer of the sandbox's overlay).
    pub image_rootfs: PathBuf,
    /// The exact command line (non-empty).
    pub argv: Vec<String>,
    /// The effective environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Absolute working directory, created if missing.
    pub cwd: String,
    /// `uid`, `uid:gid`, `name` or `name:group`, resolved inside the image.
    pub user: String,
    /// Whether the main process gets a pty (stdout and stderr are then one stream).
    pub terminal: bool,
    /// Limits.
    pub resources: Resources,
}

/// Why a sandbox ended (the contract's `terminationReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminationReason {
    /// The main process exited on its own.
    Exited,
    /// The main process was killed by a signal Nimbus did not send.
    Killed,
    /// The memory limit was reached.
    OomKilled,
    /// Stopped or deleted on request.
    StoppedByRequest,
    /// The sandbox never started.
    StartFailed,
    /// The sandbox's supervisor was gone after a server restart.
    ServerRestartLost,
}

impl TerminationReason {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exited => "exited",
            Self::Killed => "killed",
            Self::OomKilled => "oom_killed",
            Self::StoppedByRequest => "stopped_by_request",
            Self::StartFailed => "start_failed",
            Self::ServerRestartLost => "server_restart_lost",
        }
    }
}

/// How a sandbox ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exit {
    /// Why.
    pub reason: TerminationReason,
    /// The exit code (128 + signal for signals), when one was observed.
    pub exit_code: Option<i32>,
    /// Human text for failures (`status.message`).
    pub message: Option<String>,
    /// When it ended, Unix milliseconds.
    pub finished_at_ms: u64,
}

impl Exit {
    /// Whether this ending counts as `stopped` (else `failed`).
    pub fn is_clean(&self) -> bool {
        match self.reason {
            TerminationReason::Exited => self.exit_code == Some(0),
            TerminationReason::StoppedByRequest => true,
            _ => false,
        }
    }
}

/// What a backend knows of a sandbox right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum RuntimeState {
    /// The main process is running.
    Running {
        /// When it started, Unix milliseconds.
        started_at_ms: u64,
    },
    /// The sandbox has ended.
    Ended(Exit),
}

/// A command run inside a running sandbox (the exec hook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecSpec {
    /// Command line (non-empty).
    pub argv: Vec<String>,
    /// Extra environment laid over the sandbox's, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Working directory (absolute), default the sandbox's.
    pub cwd: Option<String>,
    /// Kill the process after this long.
    pub timeout_ms: u64,
    /// Output beyond this many bytes per stream is dropped and reported as truncated.
    pub max_output_bytes: usize,
}

/// The result of a waited exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecOutput {
    /// Exit code (128 + signal for signals).
    pub exit_code: i32,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// Whether either stream was cut at `max_output_bytes`.
    pub truncated: bool,
}

/// A backend that runs sandboxes. Ids are the server-issued sandbox ids.
pub trait Backend: Send + Sync {
    /// The backend's wire name (`container`, `krun`).
    fn name(&self) -> &'static str;

    /// `Ok` when this backend can start sandboxes on this host, else the reason it cannot
    /// (reported in `/api/system/capabilities` and in `sandbox.backend_unavailable`).
    fn availability(&self) -> Result<(), String>;

    /// Starts a sandbox. Returns once its main process runs (`Running`) or could not start
    /// (`Ended` with `start_failed` and a message). `Err` is for failures of the backend itself
    /// (`sandbox.backend_unavailable`, `service.internal`), after which nothing is left behind.
    fn start(&self, spec: &LaunchSpec) -> Result<RuntimeState, NimbusError>;

    /// Reconnects to a sandbox started by an earlier server process. A sandbox that cannot be
    /// reconnected is cleaned up and reported `Ended` with `server_restart_lost` (or with its real
    /// ending, when that was recorded before the supervisor went away).
    fn adopt(&self, id: &str) -> RuntimeState;

    /// Current state without waiting.
    fn inspect(&self, id: &str) -> RuntimeState;

    /// Blocks until the sandbox ends and returns how. Several callers may wait at once.
    fn wait(&self, id: &str) -> Exit;

    /// SIGTERM to the main process, SIGKILL after `grace`; returns once ended. Stopping an
    /// ended sandbox returns its ending unchanged.
    fn stop(&self, id: &str, grace: Duration) -> Exit;

    /// Frees everything the sandbox held (processes, mounts, cgroups, namespaces, writable
    /// layer, logs). Kills it first if it still runs. Idempotent.
    fn remove(&self, id: &str) -> Result<(), NimbusError>;

    /// Removes leftovers of sandboxes not in `known` (crashed supervisors, half-made state).
    fn sweep(&self, known: &[String]);

    /// The sandbox's output log (NDJSON records of the contract's logs route, oldest first).
    /// The log outlives the sandbox's processes until `remove`.
    fn log_files(&self, id: &str) -> LogFiles;

    /// Writes to the main process's stdin (the stdio channel's input). Fails once it has ended
    /// or closed its stdin.
    fn write_stdin(&self, id: &str, data: &[u8]) -> Result<(), NimbusError>;

    /// Runs a command inside the running sandbox's namespaces and cgroup, and waits for it.
    fn exec(&self, id: &str, exec: &ExecSpec) -> Result<ExecOutput, NimbusError>;

    /// A host path that is the running sandbox's root directory, for confined file access
    /// (`openat2` with `RESOLVE_IN_ROOT`). `None` once the sandbox has ended.
    fn root_dir(&self, id: &str) -> Option<PathBuf>;
}

/// Where a sandbox's output log lives: the current file and the one rotated out before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFiles {
    /// Older records (may not exist).
    pub previous: PathBuf,
    /// Newer records (may not exist yet).
    pub current: PathBuf,
    /// Bytes of output discarded by rotation so far (a decimal number; may not exist).
    pub dropped_bytes: PathBuf,
}

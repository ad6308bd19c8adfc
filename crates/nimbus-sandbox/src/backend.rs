//! The seam between the sandbox control plane and what actually runs a sandbox.
//!
//! A [`Backend`] starts a sandbox from a fully resolved [`LaunchSpec`] and then answers for it by
//! id: inspect, wait, stop, remove, and the hooks sessions use (exec, stdio, files). Every method
//! blocks; async callers run them on blocking threads.

use std::path::PathBuf;

use crate::files::SandboxRoot;
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
    /// Size of the writable root's own file system, bytes (a sparse ext4 image on a loop
    /// device): writes past it get `ENOSPC`. `None` for sandboxes recorded before the limit
    /// existed, whose writable root is an ordinary directory.
    #[serde(default)]
    pub disk_limit_bytes: Option<u64>,
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
    /// The sandbox's way out through the server's egress proxy, filled in by a backend that
    /// offers one (absent: no proxy listener, no added trust).
    #[serde(default)]
    pub egress: Option<EgressLaunch>,
}

/// What a sandbox needs to reach the server's egress proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressLaunch {
    /// The egress CA's certificate (PEM), added to the sandbox's trust.
    pub ca_pem: String,
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

    /// Writes to a process's stdin (`eof` closes it after `data`; on a pty, `eof` sends the
    /// terminal's end-of-input character instead). 409 `op.conflict` with `reason`
    /// `process_exited` or `stdin_closed` when it cannot; 404 for an unknown process. Blocks while
    /// the process does not read (a full pipe).
    fn input(&self, id: &str, target: &ProcessRef, data: &[u8], eof: bool) -> Result<(), NimbusError>;

    /// Starts a process inside the running sandbox (namespaces, cgroup, environment and user of
    /// the main process unless overridden). The supervisor keeps its output (the last 64 KiB for
    /// replay) and its exit status; a command that cannot run still starts and exits 127/126.
    /// 400 for a `cwd` or `user` that does not exist in the sandbox, 429 beyond the per-sandbox
    /// cap of running processes, 409 `target_stopped` when the sandbox does not run.
    fn spawn(&self, id: &str, spec: &ProcessSpec) -> Result<ProcessInfo, NimbusError>;

    /// The processes started with [`Backend::spawn`] that the supervisor still knows (oldest
    /// first; none once the sandbox has ended).
    fn processes(&self, id: &str) -> Result<Vec<ProcessInfo>, NimbusError>;

    /// Attaches to a process's output: first the retained output (`replay: true`, at most the last
    /// 64 KiB), then live output, then an `Exit` frame once it ends. Several attachments may
    /// exist; dropping one detaches without affecting the process. An attachment that stops
    /// reading is cut off by the supervisor (its reader then sees the end) and never slows the
    /// process.
    fn attach(&self, id: &str, target: &ProcessRef) -> Result<Attachment, NimbusError>;

    /// Sends a signal to a process's group (the main process: to the main process). 409
    /// `process_exited` once it ended, 404 for an unknown process.
    fn signal(&self, id: &str, target: &ProcessRef, signal: i32) -> Result<(), NimbusError>;

    /// Resizes a process's pty; 409 `op.conflict` (`not_a_tty`) without one.
    fn resize(&self, id: &str, target: &ProcessRef, cols: u16, rows: u16) -> Result<(), NimbusError>;

    /// SIGKILLs every running process that `owner` started (a session closing).
    fn kill_owned(&self, id: &str, owner: &str) -> Result<(), NimbusError>;

    /// Runs a readiness probe from inside the sandbox's network namespace; `true` on success
    /// within `timeout`.
    fn probe(&self, id: &str, probe: &Probe, timeout: Duration) -> bool;

    /// A TCP connection to `port` on the sandbox's own loopback (made inside its network
    /// namespace), with `TCP_NODELAY` set: 502 `sandbox.port_unreachable` when nothing accepts it.
    fn connect(&self, id: &str, port: u16) -> Result<std::net::TcpStream, NimbusError>;

    /// The TCP ports something in the sandbox listens on, on any of its addresses (the egress
    /// proxy's own port left out), ascending; empty when the sandbox does not run.
    fn listening(&self, id: &str) -> Vec<u16>;

    /// The uid and gid of the main process as the host sees them (after the sandbox's user
    /// namespace maps them): the owner of files written through sessions.
    fn main_user(&self, id: &str) -> Option<(u32, u32)>;

    /// Runs a command inside the running sandbox's namespaces and cgroup, and waits for it.
    fn exec(&self, id: &str, exec: &ExecSpec) -> Result<ExecOutput, NimbusError>;

    /// The running sandbox's root, pinned to its init for one request of confined file access
    /// (`openat2` with `RESOLVE_IN_ROOT` under it). `None` once the sandbox has ended.
    fn pin_root(&self, id: &str) -> Option<SandboxRoot>;
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

/// The process an input, signal, resize or attachment addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "processId")]
pub enum ProcessRef {
    /// The sandbox's main process (the stdio channel).
    Main,
    /// A process started with [`Backend::spawn`], by its `processId`.
    Exec(String),
}

/// A process to start inside a running sandbox (the exec channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessSpec {
    /// Command line (non-empty).
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries laid over the main process's environment.
    pub env: Vec<String>,
    /// Absolute working directory (default: the main process's).
    pub cwd: Option<String>,
    /// User as in a sandbox spec (default: the main process's).
    pub user: Option<String>,
    /// Whether to allocate a pty.
    pub tty: bool,
    /// Pty size.
    pub cols: u16,
    /// Pty size.
    pub rows: u16,
    /// SIGKILL to the process group after this long (`timedOut` in its exit).
    pub timeout_ms: Option<u64>,
    /// Written to stdin, after which stdin is closed.
    pub stdin: Option<Vec<u8>>,
    /// Who started it (a session id): [`Backend::kill_owned`] ends them together.
    pub owner: String,
}

/// A process started with [`Backend::spawn`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessInfo {
    /// `proc-<ULID>`.
    pub process_id: String,
    /// Who started it.
    pub owner: String,
    /// Whether it has a pty.
    pub tty: bool,
    /// Unix ms.
    pub started_at_ms: u64,
    /// Unix ms, once exited.
    pub finished_at_ms: Option<u64>,
    /// Exit code, once exited normally (127/126 when the command could not run).
    pub exit_code: Option<i32>,
    /// Terminating signal number, once killed by one.
    pub signal: Option<i32>,
    /// Whether its timeout killed it.
    pub timed_out: bool,
}

/// One frame read from an [`Attachment`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Frame {
    /// Output bytes.
    Output {
        /// `stdout` or `stderr` (a pty's output is `stdout`).
        stream: OutputStream,
        /// The bytes.
        data: Vec<u8>,
        /// Whether this is retained output sent on attach.
        replay: bool,
        /// On the first frame of a replay: bytes of older output the replay buffer no longer
        /// held, so this attachment never receives them (0 when nothing was lost).
        lost_bytes: u64,
    },
    /// The process ended (the last frame).
    Exit {
        /// Exit code when it exited.
        code: Option<i32>,
        /// Signal number when a signal ended it.
        signal: Option<i32>,
        /// Whether its timeout ended it.
        timed_out: bool,
    },
}

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// Standard output (and a pty's output).
    Stdout,
    /// Standard error.
    Stderr,
}

/// A live attachment to a process's output; blocking reads.
pub struct Attachment {
    frames: Box<dyn Iterator<Item = Frame> + Send>,
}

impl Attachment {
    /// Wraps a frame source.
    pub fn new(frames: Box<dyn Iterator<Item = Frame> + Send>) -> Self {
        Self { frames }
    }

    /// The next frame; `None` when the attachment ended (after `Exit`, or cut off by the
    /// supervisor because this reader fell behind, or the sandbox went away).
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.frames.next()
    }
}

/// A readiness probe (services.md §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Probe {
    /// TCP connect to `127.0.0.1:port` inside the sandbox.
    Tcp {
        /// Port.
        port: u16,
    },
    /// `GET http://127.0.0.1:port/path` inside the sandbox answers 2xx or 3xx.
    Http {
        /// Port.
        port: u16,
        /// Path, starting with `/`.
        path: String,
    },
    /// The command exits 0 (run like an exec, as the main process user).
    Exec {
        /// Command line.
        argv: Vec<String>,
    },
}

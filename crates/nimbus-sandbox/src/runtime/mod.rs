//! The `container` backend: each sandbox is an OCI container made with libcontainer inside its
//! own supervisor process (`nimbus __supervise <state-dir>`), which outlives the server.
//!
//! - [`layout`]: the per-sandbox state directory.
//! - [`supervisor`]: the supervisor's main (namespaces, overlay, container, logs, socket).
//! - [`init`]: the sandbox's PID 1 (libcontainer executor) and the exec helper.
//! - [`spec`]: the OCI runtime spec, user and working-directory resolution inside the image.
//! - [`seccomp`]: the default seccomp profile.
//! - [`protocol`]: the supervisor socket protocol.
//! - [`process`]: the main process's stdin and the exec processes (`spawn`).
//! - [`hub`]: one process's output: the replay ring and the attachments.
//! - [`egress`]: the proxy listener on the sandbox's loopback and the trust bundle.
//! - [`probe`]: readiness probes run by the supervisor in the sandbox's network namespace.
//! - [`logs`]: the output log (records, rotation).
//! - [`cleanup`]: cleanup after a lost supervisor (cgroups, writable layer).
//! - [`userns`]: the sandboxes' host id ranges and the idmapped image mount.
//! - [`net`], [`sys`]: the few raw system calls.
//!
//! The server process never calls libcontainer; it only spawns supervisors, talks to their
//! sockets and cleans up after lost ones.

pub mod cleanup;
pub mod disk;
pub mod egress;
pub mod hub;
pub mod init;
pub mod layout;
pub mod logs;
pub mod net;
pub mod probe;
pub mod process;
pub mod protocol;
pub mod seccomp;
pub mod spec;
pub mod supervisor;
pub mod sys;
pub mod userns;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use nimbus_core::limits::{SANDBOX_PORT_CONNECT_MS, SUPERVISOR_ANSWER_MS, SUPERVISOR_TEARDOWN_MS};
use nimbus_core::{ErrorCode, NimbusError};
use serde_json::json;

use crate::backend::{
    Attachment, Backend, EgressLaunch, ExecOutput, ExecSpec, Exit, LaunchSpec, LogFiles, Probe, ProcessInfo,
    ProcessRef, ProcessSpec, RuntimeState, TerminationReason,
};
use crate::files::SandboxRoot;
use crate::files::sys::{pidfd_exited, pidfd_open};
use layout::{Layout, valid_id, write_atomic};
use protocol::{Request, Response};
use userns::IdPool;

/// The hidden CLI subcommand that runs a supervisor.
pub const SUPERVISE_COMMAND: &str = "__supervise";

/// Prefix of a state directory being removed (sandbox ids never start with a dot).
const REMOVING_PREFIX: &str = ".removing-";

/// The supervisor's log filter (its stderr is `supervisor.log`).
const SUPERVISOR_LOG_FILTER: &str = "warn,libcontainer::process::init=off";

/// The `container` backend.
#[derive(Debug)]
pub struct ContainerBackend {
    state_root: PathBuf,
    supervisor_exe: PathBuf,
    id_pool: IdPool,
    /// Serialises id range allocations.
    allocating: std::sync::Mutex<()>,
    unavailable: Option<String>,
    /// The egress CA (PEM) when the server runs an egress proxy for its sandboxes.
    egress_ca: Option<String>,
}

fn internal(what: &str, err: impl std::fmt::Display) -> NimbusError {
    tracing::error!(%err, "container backend: {what}");
    NimbusError::internal()
}

fn now_ms() -> u64 {
    u64::try_from(nimbus_core::time::now_ms()).unwrap_or(0)
}

/// Why this host cannot run containers, if it cannot.
pub fn host_problem() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("the server does not run as root".into());
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems.lines().any(|l| l.split_whitespace().last() == Some("overlay")) {
        return Some("the kernel has no overlay filesystem".into());
    }
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers");
    if let Ok(controllers) = std::fs::read_to_string(unified) {
        let have: Vec<&str> = controllers.split_whitespace().collect();
        let missing: Vec<&str> = ["memory", "pids", "cpu"].into_iter().filter(|c| !have.contains(c)).collect();
        if missing.is_empty() {
            return None;
        }
        return Some(format!("the cgroup v2 hierarchy lacks the {} controller(s)", missing.join(", ")));
    }
    let missing: Vec<&str> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| !Path::new("/sys/fs/cgroup").join(c).join("cgroup.procs").exists())
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!("no cgroup {} controller is mounted under /sys/fs/cgroup", missing.join(", ")))
    }
}

impl ContainerBackend {
    /// A backend keeping sandbox state under `state_root` (`<data-dir>/sandboxes`), running
    /// supervisors as `<supervisor_exe> __supervise <state-dir>` and giving each sandbox a host
    /// id range from `id_pool`. A host that cannot run containers does not fail construction;
    /// `start` then answers 501.
    pub fn new(state_root: PathBuf, supervisor_exe: PathBuf, id_pool: IdPool) -> Result<Self, NimbusError> {
        std::fs::create_dir_all(&state_root).map_err(|e| internal("create the sandbox state root", e))?;
        let mut unavailable = host_problem();
        if unavailable.is_none() && !supervisor_exe.is_file() {
            unavailable = Some(format!("the supervisor executable {} does not exist", supervisor_exe.display()));
        }
        if let Some(reason) = &unavailable {
            tracing::warn!(reason, "the container sandbox backend is unavailable");
        }
        Ok(Self {
            state_root,
            supervisor_exe,
            id_pool,
            allocating: std::sync::Mutex::new(()),
            unavailable,
            egress_ca: None,
        })
    }

    /// Gives the sandboxes this backend starts a way out: a proxy listener on their loopback
    /// that hands connections to the egress proxy serving [`Self::egress_socket`], the proxy
    /// variables in their environment (under the image's and the caller's), and `ca_pem` in
    /// their trust.
    #[must_use]
    pub fn with_egress(mut self, ca_pem: String) -> Self {
        self.egress_ca = Some(ca_pem);
        self
    }

    /// Where the egress proxy must listen for the connections sandboxes hand over.
    pub fn egress_socket(&self) -> PathBuf {
        self.state_root.join(egress::HANDOFF_SOCKET_NAME)
    }

    fn layout(&self, id: &str) -> Option<Layout> {
        valid_id(id).then(|| Layout::new(self.state_root.join(id)))
    }

    /// Asks the sandbox's supervisor, waiting at most [`answer_deadline`] for its answer.
    fn ask(&self, id: &str, request: &Request) -> Result<Response, Silence> {
        let layout = self.layout(id).ok_or(Silence::Gone)?;
        let deadline = answer_deadline(request);
        protocol::call(&layout.socket(), request, deadline).map_err(|err| silence(id, &err, deadline))
    }

    /// A request answered with `ok`; no answer (the sandbox is gone) is a conflict with `gone`.
    fn ask_ok(&self, id: &str, request: &Request, gone: &str) -> Result<(), NimbusError> {
        match self.ask(id, request) {
            Ok(Response::Ok) => Ok(()),
            other => Err(failure(other, gone)),
        }
    }

    /// The recorded ending, else the sandbox is lost: clean it up and record that.
    fn ended_or_lost(&self, id: &str) -> Exit {
        let lost = |message: &str| Exit {
            reason: TerminationReason::ServerRestartLost,
            exit_code: None,
            message: Some(message.to_owned()),
            finished_at_ms: now_ms(),
        };
        let Some(layout) = self.layout(id) else { return lost("no such sandbox") };
        if let Some(exit) = read_exit(&layout) {
            cleanup_leftovers(id, &layout);
            return exit;
        }
        if !layout.dir.is_dir() {
            cleanup::kill_and_remove_cgroups(id);
            return lost("no such sandbox");
        }
        kill_stale_supervisor(&layout);
        cleanup_leftovers(id, &layout);
        // The supervisor may have recorded the ending just before it went.
        if let Some(exit) = read_exit(&layout) {
            return exit;
        }
        let exit = lost("the sandbox's supervisor was gone; its processes were killed");
        if layout.dir.is_dir()
            && let Err(err) = write_atomic(&layout.exit(), &serde_json::to_vec(&exit).unwrap_or_default())
        {
            tracing::warn!(%err, id, "cannot record a lost sandbox");
        }
        exit
    }

    /// Gives the sandbox of `layout` a free id range of the pool (429 when none is free).
    fn allocate_ids(&self, layout: &Layout) -> Result<(), NimbusError> {
        let _one_at_a_time = self.allocating.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match self.id_pool.allocate(&self.state_root, layout) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let ranges = u64::from(self.id_pool.ranges());
                Err(NimbusError::resource_exhausted("sandbox_id_ranges", ranges, Some(ranges)))
            }
            Err(err) => Err(internal("allocate the sandbox's id range", err)),
        }
    }

    fn spawn_supervisor(&self, layout: &Layout) -> Result<RuntimeState, NimbusError> {
        let log = std::fs::File::create(layout.supervisor_log()).map_err(|e| internal("create supervisor.log", e))?;
        let mut child = Command::new(&self.supervisor_exe);
        child
            .arg(SUPERVISE_COMMAND)
            .arg(&layout.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            // Nothing of the server's environment (tokens, credentials, paths) reaches the
            // supervisor, and through it the sandbox's init.
            .env_clear()
            // Diagnostics of libcontainer's in-container init would land on the sandbox's own
            // stderr (its fd 2 by then); keep host internals out of the sandbox's log.
            .env("NIMBUS_LOG", SUPERVISOR_LOG_FILTER)
            // mimalloc commits its first arena eagerly by default: about 6 MiB resident per
            // supervisor (and again in the sandbox's init, a fork of it). A supervisor allocates
            // little, so commit on demand: 1.5 MiB instead.
            .env("MIMALLOC_ARENA_EAGER_COMMIT", "0");
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let mut child = child.spawn().map_err(|e| internal("spawn the supervisor", e))?;
        let mut ready = String::new();
        let read = match child.stdout.take() {
            Some(mut out) => out.read_to_string(&mut ready),
            None => Ok(0),
        };
        // Reap the supervisor whenever it ends, so the server never keeps a zombie.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        if let Err(err) = read {
            tracing::warn!(%err, "reading the supervisor's start report");
        }
        match serde_json::from_str::<RuntimeState>(ready.trim()) {
            Ok(state) => Ok(state),
            Err(err) => {
                let log = std::fs::read_to_string(layout.supervisor_log()).unwrap_or_default();
                Err(internal("the supervisor did not report a start result", format!("{err}; log: {log}")))
            }
        }
    }
}

/// What a failed exchange with a supervisor means: no answer within `deadline` is a stuck
/// supervisor, anything else a gone one.
fn silence(id: &str, err: &std::io::Error, deadline: Option<Duration>) -> Silence {
    match err.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            tracing::warn!(id, ?deadline, "the sandbox's supervisor did not answer in time");
            Silence::Stuck(deadline.unwrap_or_default())
        }
        _ => Silence::Gone,
    }
}

fn read_exit(layout: &Layout) -> Option<Exit> {
    let bytes = std::fs::read(layout.exit()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn cleanup_leftovers(id: &str, layout: &Layout) {
    cleanup::kill_and_remove_cgroups(id);
    cleanup::remove_writable(layout);
    let _ = std::fs::remove_file(layout.socket());
}

/// SIGKILLs the sandbox's supervisor if its process still exists (an unresponsive one).
fn kill_stale_supervisor(layout: &Layout) {
    let Ok(text) = std::fs::read_to_string(layout.supervisor_pid()) else { return };
    let Ok(pid) = text.trim().parse::<i32>() else { return };
    // Pinned first: the checks, the signal and the wait are all about this one process.
    let Ok(process) = pidfd_open(pid) else { return };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    let ours = cmdline.contains(SUPERVISE_COMMAND) && cmdline.contains(&*layout.dir.to_string_lossy());
    if !ours || pidfd_exited(&process, Duration::ZERO) {
        return;
    }
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    // A stopped process dies as soon as it is scheduled: the caller goes on once it has.
    if !pidfd_exited(&process, Duration::from_millis(SUPERVISOR_TEARDOWN_MS)) {
        tracing::warn!(pid, "a killed supervisor has not exited yet");
    }
}

/// Why a supervisor did not answer.
#[derive(Debug, Clone, Copy)]
enum Silence {
    /// No supervisor listens: the sandbox has ended (or never was).
    Gone,
    /// It took the connection but did not answer within the deadline: it is stuck.
    Stuck(Duration),
}

/// How long the server waits for a supervisor's answer to `request`: a stop its grace period
/// and the teardown after it, an exec or probe its own timeout and the usual margin, a wait
/// (answered when the sandbox ends) without bound, anything else the usual answer time. A
/// supervisor that misses it is treated as stuck: one stuck supervisor never holds a caller.
fn answer_deadline(request: &Request) -> Option<Duration> {
    let answer = Duration::from_millis(SUPERVISOR_ANSWER_MS);
    match request {
        Request::Wait => None,
        Request::Stop { grace_ms } => {
            Some(Duration::from_millis(*grace_ms) + Duration::from_millis(SUPERVISOR_TEARDOWN_MS))
        }
        Request::Probe { timeout_ms, .. } => Some(Duration::from_millis(*timeout_ms) + answer),
        Request::Exec(exec) => Some(Duration::from_millis(exec.timeout_ms) + answer),
        _ => Some(answer),
    }
}

/// The error for an unexpected answer: a carried failure as is, else a conflict with `reason`
/// (no answer: the sandbox is not running).
fn failure(answer: Result<Response, Silence>, reason: &str) -> NimbusError {
    match answer {
        Ok(Response::Failed(failure)) => failure.into_error(),
        Ok(Response::Error(message)) => NimbusError::conflict(reason, message, json!({})),
        Err(Silence::Gone) => NimbusError::conflict(reason, "the sandbox is not running", json!({})),
        Err(Silence::Stuck(waited)) => NimbusError::new(
            ErrorCode::SandboxUnresponsive,
            format!("the sandbox's supervisor did not answer within {} ms", waited.as_millis()),
            Some(json!({ "limitMs": u64::try_from(waited.as_millis()).unwrap_or(u64::MAX) })),
        ),
        Ok(other) => internal("supervisor protocol", format!("unexpected answer {other:?}")),
    }
}

impl Backend for ContainerBackend {
    fn name(&self) -> &'static str {
        "container"
    }

    fn availability(&self) -> Result<(), String> {
        match &self.unavailable {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    fn start(&self, spec: &LaunchSpec) -> Result<RuntimeState, NimbusError> {
        if let Some(reason) = &self.unavailable {
            return Err(NimbusError::backend_unavailable("container", reason.clone()));
        }
        let Some(layout) = self.layout(&spec.id) else {
            return Err(internal("start", format!("invalid sandbox id {:?}", spec.id)));
        };
        if spec.argv.is_empty() {
            return Err(NimbusError::invalid_input("argv", "must not be empty"));
        }
        std::fs::create_dir(&layout.dir).map_err(|e| internal("create the sandbox state directory", e))?;
        let mut spec = spec.clone();
        if let Some(ca_pem) = &self.egress_ca {
            spec.egress = Some(EgressLaunch { ca_pem: ca_pem.clone() });
            for (key, value) in egress::environment() {
                if !spec.env.iter().any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
                    spec.env.push(format!("{key}={value}"));
                }
            }
        }
        let launch = serde_json::to_vec(&spec).map_err(|e| internal("encode launch.json", e))?;
        let prepared = write_atomic(&layout.launch(), &launch)
            .map_err(|e| internal("write launch.json", e))
            .and_then(|()| self.allocate_ids(&layout));
        if let Err(err) = prepared {
            cleanup::remove_all(&layout);
            return Err(err);
        }
        match self.spawn_supervisor(&layout) {
            Ok(state) => Ok(state),
            Err(err) => {
                kill_stale_supervisor(&layout);
                cleanup::kill_and_remove_cgroups(&spec.id);
                cleanup::remove_all(&layout);
                Err(err)
            }
        }
    }

    fn adopt(&self, id: &str) -> RuntimeState {
        match self.ask(id, &Request::Status) {
            Ok(Response::State(state)) => state,
            _ => RuntimeState::Ended(self.ended_or_lost(id)),
        }
    }

    fn inspect(&self, id: &str) -> RuntimeState {
        self.adopt(id)
    }

    fn wait(&self, id: &str) -> Exit {
        match self.ask(id, &Request::Wait) {
            Ok(Response::Exit(exit)) => exit,
            _ => self.ended_or_lost(id),
        }
    }

    fn stop(&self, id: &str, grace: Duration) -> Exit {
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        match self.ask(id, &Request::Stop { grace_ms }) {
            Ok(Response::Exit(exit)) => exit,
            _ => self.ended_or_lost(id),
        }
    }

    fn remove(&self, id: &str) -> Result<(), NimbusError> {
        let Some(layout) = self.layout(id) else { return Ok(()) };
        let _ = self.ask(id, &Request::Stop { grace_ms: 0 });
        kill_stale_supervisor(&layout);
        if !cleanup::kill_and_remove_cgroups(id) {
            return Err(internal("remove", format!("the cgroups of sandbox {id} could not be removed")));
        }
        // Move the directory out of every other path's way before emptying it: a late writer (an
        // exit watcher that finds the supervisor gone records the ending there) then finds no
        // directory and writes nothing, instead of refilling one being removed.
        let doomed = Layout::new(self.state_root.join(format!("{REMOVING_PREFIX}{id}")));
        match std::fs::rename(&layout.dir, &doomed.dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(internal("move the sandbox state aside", err)),
        }
        cleanup::remove_all(&doomed);
        if doomed.dir.exists() {
            return Err(internal("remove", format!("the state of sandbox {id} could not be removed")));
        }
        Ok(())
    }

    fn sweep(&self, known: &[String]) {
        let known_id = |id: &str| known.iter().any(|k| k == id);
        if let Ok(entries) = std::fs::read_dir(&self.state_root) {
            for entry in entries.flatten() {
                if entry.file_name().to_str().is_some_and(|name| name.starts_with(REMOVING_PREFIX)) {
                    // A removal that a crash interrupted.
                    cleanup::remove_all(&Layout::new(entry.path()));
                } else if let Some(id) = entry.file_name().to_str()
                    && !known_id(id)
                    && let Err(err) = self.remove(id)
                {
                    tracing::warn!(%err, id, "sweep: cannot remove leftovers");
                }
            }
        }
        // Cgroups without a state directory here are left alone: an empty one may be a sandbox
        // that another server on this host (another data directory) is creating this instant.
        // A removal here takes a sandbox's cgroups before its state directory, so none of ours
        // is left without one.
    }

    fn log_files(&self, id: &str) -> LogFiles {
        let layout = self.layout(id).unwrap_or_else(|| Layout::new(self.state_root.join(".invalid")));
        LogFiles { previous: layout.log_previous(), current: layout.log(), dropped_bytes: layout.dropped() }
    }

    fn input(&self, id: &str, target: &ProcessRef, data: &[u8], eof: bool) -> Result<(), NimbusError> {
        let request = Request::Input {
            target: target.clone(),
            data: base64::engine::general_purpose::STANDARD.encode(data),
            eof,
        };
        self.ask_ok(id, &request, "process_exited")
    }

    fn spawn(&self, id: &str, spec: &ProcessSpec) -> Result<ProcessInfo, NimbusError> {
        match self.ask(id, &Request::Spawn(spec.clone())) {
            Ok(Response::Process(info)) => Ok(info),
            other => Err(failure(other, "target_stopped")),
        }
    }

    fn processes(&self, id: &str) -> Result<Vec<ProcessInfo>, NimbusError> {
        match self.ask(id, &Request::Processes) {
            Ok(Response::Processes(list)) => Ok(list),
            Err(Silence::Gone) => Ok(Vec::new()),
            other => Err(failure(other, "target_stopped")),
        }
    }

    fn attach(&self, id: &str, target: &ProcessRef) -> Result<Attachment, NimbusError> {
        let Some(layout) = self.layout(id) else { return Err(failure(Err(Silence::Gone), "target_stopped")) };
        let request = Request::Attach { target: target.clone() };
        match protocol::attach(&layout.socket(), &request, answer_deadline(&request)) {
            Ok(Ok(frames)) => Ok(Attachment::new(Box::new(frames))),
            Ok(Err(other)) => Err(failure(Ok(other), "target_stopped")),
            Err(_) => Err(failure(Err(Silence::Gone), "target_stopped")),
        }
    }

    fn signal(&self, id: &str, target: &ProcessRef, signal: i32) -> Result<(), NimbusError> {
        self.ask_ok(id, &Request::Signal { target: target.clone(), signal }, "process_exited")
    }

    fn resize(&self, id: &str, target: &ProcessRef, cols: u16, rows: u16) -> Result<(), NimbusError> {
        self.ask_ok(id, &Request::Resize { target: target.clone(), cols, rows }, "process_exited")
    }

    fn kill_owned(&self, id: &str, owner: &str) -> Result<(), NimbusError> {
        match self.ask(id, &Request::KillOwned { owner: owner.to_owned() }) {
            // A sandbox that is gone has no processes left.
            Ok(Response::Ok) | Err(Silence::Gone) => Ok(()),
            other => Err(failure(other, "target_stopped")),
        }
    }

    fn probe(&self, id: &str, probe: &Probe, timeout: Duration) -> bool {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        matches!(self.ask(id, &Request::Probe { probe: probe.clone(), timeout_ms }), Ok(Response::Probe(true)))
    }

    fn connect(&self, id: &str, port: u16) -> Result<std::net::TcpStream, NimbusError> {
        let layout = self.layout(id).ok_or_else(|| failure(Err(Silence::Gone), "target_stopped"))?;
        let deadline = Duration::from_millis(SANDBOX_PORT_CONNECT_MS + SUPERVISOR_ANSWER_MS);
        match protocol::connect_port(&layout.socket(), port, deadline) {
            Ok(Ok(connection)) => {
                let stream = std::net::TcpStream::from(connection);
                // What Nimbus relays into a sandbox is written as it arrives (a WebSocket frame, a
                // request body's chunk): Nagle's algorithm would hold a write back until the
                // sandbox acknowledged the one before.
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(Response::Error(reason))) => Err(NimbusError::new(
                ErrorCode::SandboxPortUnreachable,
                reason.clone(),
                Some(json!({ "port": port, "reason": reason })),
            )),
            Ok(Err(other)) => Err(failure(Ok(other), "target_stopped")),
            Err(err) => Err(failure(Err(silence(id, &err, Some(deadline))), "target_stopped")),
        }
    }

    fn listening(&self, id: &str) -> Vec<u16> {
        match self.ask(id, &Request::Listening) {
            Ok(Response::Ports(ports)) => ports,
            _ => Vec::new(),
        }
    }

    fn main_user(&self, id: &str) -> Option<(u32, u32)> {
        match self.ask(id, &Request::MainUser) {
            Ok(Response::User(uid, gid)) => Some((uid, gid)),
            _ => None,
        }
    }

    fn exec(&self, id: &str, exec: &ExecSpec) -> Result<ExecOutput, NimbusError> {
        match self.ask(id, &Request::Exec(exec.clone())) {
            Ok(Response::Exec(output)) => Ok(output),
            other => Err(failure(other, "target_stopped")),
        }
    }

    fn pin_root(&self, id: &str) -> Option<SandboxRoot> {
        let Ok(Response::Pid(Some(pid))) = self.ask(id, &Request::Pid) else { return None };
        let root = SandboxRoot::of_process(pid).ok()?;
        // Pinned to the pid as it is now; it is the sandbox's init if that process still runs
        // and is a child of the sandbox's supervisor (a pid reused since the answer is not).
        let supervisor = std::fs::read_to_string(self.layout(id)?.supervisor_pid()).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let parent = status.lines().find_map(|l| l.strip_prefix("PPid:")).map(str::trim);
        (!root.ended() && parent == Some(supervisor.trim())).then_some(root)
    }
}

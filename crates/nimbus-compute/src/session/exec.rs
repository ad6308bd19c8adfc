//! The `exec` channel (ours, sessions.md §7): starting processes, waiting for them, and
//! addressing them (list, get, input, signal, resize). Processes are the backend's; this file
//! checks the session's preconditions and ownership (a process belongs to the session that
//! started it).

use std::time::{Duration, Instant};

use nimbus_core::NimbusError;
use nimbus_core::limits::{
    EXEC_DEFAULT_COLS, EXEC_DEFAULT_ROWS, EXEC_MAX_TIMEOUT_MS, EXEC_WAIT_DEFAULT_TIMEOUT_MS,
    EXEC_WAIT_MAX_OUTPUT_BYTES, EXEC_WAIT_MAX_TIMEOUT_MS, PTY_MAX_DIMENSION, SESSION_MAX_RUNNING_PROCESSES,
};
use nimbus_core::time::now_ms;
use nimbus_sandbox::backend::{Backend, Frame, OutputStream, ProcessInfo, ProcessRef, ProcessSpec};
use serde_json::json;

use super::stdio::check_input;
use super::target::Channel;
use super::{Bound, Sessions};
use crate::blocking;

/// An exec request as asked (sessions.md §7), validated by [`Sessions::exec`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// Command line (required, non-empty).
    pub argv: Vec<String>,
    /// `KEY=VALUE` laid over the main process's environment.
    pub env: Vec<String>,
    /// Absolute working directory.
    pub cwd: Option<String>,
    /// User, as in a sandbox spec.
    pub user: Option<String>,
    /// Allocate a pty.
    pub tty: bool,
    /// Pty columns (default 80).
    pub cols: Option<u64>,
    /// Pty rows (default 24).
    pub rows: Option<u64>,
    /// SIGKILL after this long.
    pub timeout_ms: Option<u64>,
    /// Written to stdin, after which stdin is closed.
    pub stdin: Option<Vec<u8>>,
}

/// The answer of an exec with `wait=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// `proc-<ULID>`.
    pub process_id: String,
    /// Exit code when it exited.
    pub exit_code: Option<i32>,
    /// Signal number when a signal ended it.
    pub signal: Option<i32>,
    /// Whether its timeout ended it.
    pub timed_out: bool,
    /// From start to end.
    pub duration_ms: u64,
    /// The first [`EXEC_WAIT_MAX_OUTPUT_BYTES`] of stdout.
    pub stdout: Vec<u8>,
    /// The first [`EXEC_WAIT_MAX_OUTPUT_BYTES`] of stderr.
    pub stderr: Vec<u8>,
    /// Whether either stream was cut.
    pub truncated: bool,
}

/// Signals a client may send (sessions.md §7), with their Linux numbers.
const SIGNALS: [(&str, i32); 10] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("KILL", 9),
    ("USR1", 10),
    ("USR2", 12),
    ("TERM", 15),
    ("CONT", 18),
    ("STOP", 19),
    ("WINCH", 28),
];

/// Parses an allowed signal name, with or without `SIG` (`INT`, `SIGINT`).
pub fn parse_signal(raw: &str) -> Option<i32> {
    let name = raw.strip_prefix("SIG").unwrap_or(raw);
    SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, number)| *number)
}

/// The name of a signal number (`SIGKILL`), or its number for others.
pub fn signal_name(number: i32) -> String {
    const OTHERS: [(&str, i32); 6] = [("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("BUS", 7), ("FPE", 8), ("SEGV", 11)];
    const MORE: [(&str, i32); 2] = [("PIPE", 13), ("ALRM", 14)];
    SIGNALS
        .iter()
        .chain(OTHERS.iter())
        .chain(MORE.iter())
        .find(|(_, n)| *n == number)
        .map_or_else(|| number.to_string(), |(name, _)| format!("SIG{name}"))
}

fn dimension(field: &str, value: Option<u64>, default: u16) -> Result<u16, NimbusError> {
    match value {
        None => Ok(default),
        Some(v) if (1..=u64::from(PTY_MAX_DIMENSION)).contains(&v) => Ok(u16::try_from(v).unwrap_or(default)),
        Some(_) => Err(NimbusError::invalid_input(field, format!("must be from 1 to {PTY_MAX_DIMENSION}"))),
    }
}

/// Checks a pty size (1..=1000 each).
pub fn pty_size(cols: u64, rows: u64) -> Result<(u16, u16), NimbusError> {
    Ok((dimension("cols", Some(cols), EXEC_DEFAULT_COLS)?, dimension("rows", Some(rows), EXEC_DEFAULT_ROWS)?))
}

impl ExecRequest {
    /// The backend's spec, or 400 naming the bad field. `wait` applies the waited form's
    /// timeout default and maximum, and closes stdin at once when none is given.
    fn into_spec(self, owner: &str, wait: bool) -> Result<ProcessSpec, NimbusError> {
        if self.argv.is_empty() {
            return Err(NimbusError::invalid_input("argv", "must not be empty"));
        }
        for (i, entry) in self.env.iter().enumerate() {
            if entry.split_once('=').is_none_or(|(key, _)| key.is_empty()) {
                return Err(NimbusError::invalid_input(format!("env[{i}]"), "must be KEY=VALUE"));
            }
        }
        if self.cwd.as_deref().is_some_and(|cwd| !cwd.starts_with('/')) {
            return Err(NimbusError::invalid_input("cwd", "must be an absolute path"));
        }
        if self.user.as_deref().is_some_and(str::is_empty) {
            return Err(NimbusError::invalid_input("user", "must not be empty"));
        }
        let max = if wait { EXEC_WAIT_MAX_TIMEOUT_MS } else { EXEC_MAX_TIMEOUT_MS };
        let timeout_ms = match self.timeout_ms {
            Some(ms) if !(1..=max).contains(&ms) => {
                return Err(NimbusError::invalid_input("timeoutMs", format!("must be from 1 to {max}")));
            }
            Some(ms) => Some(ms),
            None if wait => Some(EXEC_WAIT_DEFAULT_TIMEOUT_MS),
            None => None,
        };
        let cols = dimension("cols", self.cols, EXEC_DEFAULT_COLS)?;
        let rows = dimension("rows", self.rows, EXEC_DEFAULT_ROWS)?;
        if let Some(stdin) = &self.stdin {
            check_input(stdin)?;
        }
        Ok(ProcessSpec {
            argv: self.argv,
            env: self.env,
            cwd: self.cwd,
            user: self.user,
            tty: self.tty,
            cols,
            rows,
            timeout_ms,
            stdin: if wait { Some(self.stdin.unwrap_or_default()) } else { self.stdin },
            owner: owner.to_owned(),
        })
    }
}

fn process_not_found(pid: &str) -> NimbusError {
    NimbusError::not_found("process", pid)
}

fn process_exited(pid: &str) -> NimbusError {
    NimbusError::conflict("process_exited", format!("process `{pid}` has exited"), json!({ "processId": pid }))
}

impl Sessions {
    /// The session's processes as the backend knows them.
    async fn owned_processes(&self, bound: &Bound) -> Result<Vec<ProcessInfo>, NimbusError> {
        let (backend, sandbox_id) = (bound.backend.clone(), bound.sandbox.id.clone());
        let all = blocking(move || backend.processes(&sandbox_id)).await??;
        Ok(all.into_iter().filter(|p| p.owner == bound.session.id).collect())
    }

    /// One of the session's processes (404 `resource: "process"` otherwise).
    pub(super) async fn owned_process(&self, bound: &Bound, pid: &str) -> Result<ProcessInfo, NimbusError> {
        self.owned_processes(bound)
            .await?
            .into_iter()
            .find(|p| p.process_id == pid)
            .ok_or_else(|| process_not_found(pid))
    }

    /// Starts a process (201 `{processId}`): at most [`SESSION_MAX_RUNNING_PROCESSES`] run at
    /// once per session (429).
    pub async fn exec(&self, tenant: Option<&str>, id: &str, request: ExecRequest) -> Result<ProcessInfo, NimbusError> {
        let (entry, bound) = self.bind(tenant, id, Channel::Exec).await?;
        let spec = request.into_spec(&bound.session.id, false)?;
        let _admission = entry.exec.lock().await;
        self.spawn(&bound, spec).await
    }

    async fn spawn(&self, bound: &Bound, spec: ProcessSpec) -> Result<ProcessInfo, NimbusError> {
        let running = self.owned_processes(bound).await?.iter().filter(|p| p.finished_at_ms.is_none()).count();
        if running >= SESSION_MAX_RUNNING_PROCESSES {
            return Err(NimbusError::resource_exhausted(
                "processes",
                SESSION_MAX_RUNNING_PROCESSES as u64,
                Some(running as u64),
            ));
        }
        let (backend, sandbox_id) = (bound.backend.clone(), bound.sandbox.id.clone());
        blocking(move || backend.spawn(&sandbox_id, &spec)).await?
    }

    /// Runs a process to completion (`?wait=true`): spawned and attached like any process,
    /// its output collected up to the caps. If the caller goes away the process keeps running
    /// until it exits or times out.
    pub async fn exec_wait(
        &self,
        tenant: Option<&str>,
        id: &str,
        request: ExecRequest,
    ) -> Result<ExecResult, NimbusError> {
        let (entry, bound) = self.bind(tenant, id, Channel::Exec).await?;
        let spec = request.into_spec(&bound.session.id, true)?;
        let timeout = Duration::from_millis(spec.timeout_ms.unwrap_or(EXEC_WAIT_DEFAULT_TIMEOUT_MS));
        let process = {
            let _admission = entry.exec.lock().await;
            self.spawn(&bound, spec).await?
        };
        let (backend, sandbox_id) = (bound.backend.clone(), bound.sandbox.id.clone());
        blocking(move || collect(backend.as_ref(), &sandbox_id, process, timeout)).await?
    }

    /// The session's processes (running, and exited ones the backend still keeps).
    pub async fn processes(&self, tenant: Option<&str>, id: &str) -> Result<Vec<ProcessInfo>, NimbusError> {
        let (_, bound) = self.bind(tenant, id, Channel::Exec).await?;
        self.owned_processes(&bound).await
    }

    /// One of the session's processes.
    pub async fn process(&self, tenant: Option<&str>, id: &str, pid: &str) -> Result<ProcessInfo, NimbusError> {
        let (_, bound) = self.bind(tenant, id, Channel::Exec).await?;
        self.owned_process(&bound, pid).await
    }

    /// Writes to a process's stdin (no attachment needed); 409 when it exited or its stdin is
    /// closed.
    pub async fn process_input(
        &self,
        tenant: Option<&str>,
        id: &str,
        pid: &str,
        data: Vec<u8>,
        eof: bool,
    ) -> Result<(), NimbusError> {
        let (_, bound) = self.bind(tenant, id, Channel::Exec).await?;
        check_input(&data)?;
        let process = self.owned_process(&bound, pid).await?;
        if process.finished_at_ms.is_some() {
            return Err(process_exited(pid));
        }
        let (backend, sandbox_id, target) =
            (bound.backend.clone(), bound.sandbox.id.clone(), ProcessRef::Exec(pid.into()));
        blocking(move || backend.input(&sandbox_id, &target, &data, eof)).await?
    }

    /// Sends a signal to a process's group; 409 when it exited.
    pub async fn process_signal(
        &self,
        tenant: Option<&str>,
        id: &str,
        pid: &str,
        signal: i32,
    ) -> Result<(), NimbusError> {
        let (_, bound) = self.bind(tenant, id, Channel::Exec).await?;
        let process = self.owned_process(&bound, pid).await?;
        if process.finished_at_ms.is_some() {
            return Err(process_exited(pid));
        }
        let (backend, sandbox_id, target) =
            (bound.backend.clone(), bound.sandbox.id.clone(), ProcessRef::Exec(pid.into()));
        blocking(move || backend.signal(&sandbox_id, &target, signal)).await?
    }

    /// Resizes a process's pty; 409 `not_a_tty` without one.
    pub async fn process_resize(
        &self,
        tenant: Option<&str>,
        id: &str,
        pid: &str,
        cols: u16,
        rows: u16,
    ) -> Result<(), NimbusError> {
        let (_, bound) = self.bind(tenant, id, Channel::Exec).await?;
        let process = self.owned_process(&bound, pid).await?;
        if !process.tty {
            return Err(NimbusError::conflict("not_a_tty", format!("process `{pid}` has no pty"), json!({})));
        }
        if process.finished_at_ms.is_some() {
            return Err(process_exited(pid));
        }
        let (backend, sandbox_id, target) =
            (bound.backend.clone(), bound.sandbox.id.clone(), ProcessRef::Exec(pid.into()));
        blocking(move || backend.resize(&sandbox_id, &target, cols, rows)).await?
    }
}

/// Output of one stream, kept up to the cap.
#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Capture {
    fn push(&mut self, data: &[u8]) {
        let room = EXEC_WAIT_MAX_OUTPUT_BYTES.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// Collects a started process's output until it exits. Its own timeout (set at spawn) bounds
/// the wait; if the attachment ends early, the exit status is read from the process list.
fn collect(
    backend: &dyn Backend,
    sandbox_id: &str,
    process: ProcessInfo,
    timeout: Duration,
) -> Result<ExecResult, NimbusError> {
    let started = Instant::now();
    let (mut stdout, mut stderr) = (Capture::default(), Capture::default());
    // Output the process wrote before the attachment, beyond what the replay kept.
    let mut lost_before_attach = false;
    let mut exit = None;
    let mut attachment = backend.attach(sandbox_id, &ProcessRef::Exec(process.process_id.clone()))?;
    while let Some(frame) = attachment.next_frame() {
        if let Frame::Output { lost_bytes, .. } = frame {
            lost_before_attach |= lost_bytes > 0;
        }
        match frame {
            Frame::Output { stream: OutputStream::Stdout, data, .. } => stdout.push(&data),
            Frame::Output { stream: OutputStream::Stderr, data, .. } => stderr.push(&data),
            Frame::Exit { code, signal, timed_out } => {
                exit = Some((code, signal, timed_out));
                break;
            }
        }
    }
    drop(attachment);
    let (exit_code, signal, timed_out, finished_at_ms) = match exit {
        Some((code, signal, timed_out)) => {
            let info = find(backend, sandbox_id, &process.process_id);
            (code, signal, timed_out, info.and_then(|i| i.finished_at_ms))
        }
        None => {
            // Cut off before the exit frame: the supervisor still records the ending.
            let deadline = started + timeout + EXIT_RECORD_GRACE;
            loop {
                match find(backend, sandbox_id, &process.process_id) {
                    Some(info) if info.finished_at_ms.is_some() => {
                        break (info.exit_code, info.signal, info.timed_out, info.finished_at_ms);
                    }
                    None => return Err(NimbusError::internal()),
                    Some(_) if Instant::now() >= deadline => return Err(NimbusError::internal()),
                    Some(_) => std::thread::sleep(EXIT_POLL),
                }
            }
        }
    };
    let finished = finished_at_ms.unwrap_or_else(|| u64::try_from(now_ms()).unwrap_or(0));
    Ok(ExecResult {
        process_id: process.process_id,
        exit_code,
        signal,
        timed_out,
        duration_ms: finished.saturating_sub(process.started_at_ms),
        truncated: stdout.truncated || stderr.truncated || lost_before_attach,
        stdout: stdout.bytes,
        stderr: stderr.bytes,
    })
}

/// How long past its timeout a waited process may take to be reported ended.
const EXIT_RECORD_GRACE: Duration = Duration::from_secs(5);

/// Poll period of the process list when an attachment ended before the exit frame.
const EXIT_POLL: Duration = Duration::from_millis(50);

fn find(backend: &dyn Backend, sandbox_id: &str, pid: &str) -> Option<ProcessInfo> {
    backend.processes(sandbox_id).ok()?.into_iter().find(|p| p.process_id == pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_with_or_without_sig() {
        assert_eq!(parse_signal("SIGINT"), Some(2));
        assert_eq!(parse_signal("TERM"), Some(15));
        assert_eq!(parse_signal("SIGSEGV"), None);
        assert_eq!(parse_signal("sigint"), None);
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(64), "64");
    }

    #[test]
    fn exec_requests_are_validated() {
        let base = ExecRequest { argv: vec!["true".into()], ..ExecRequest::default() };
        let spec = base.clone().into_spec("session-x", true).expect("valid");
        assert_eq!((spec.timeout_ms, spec.stdin, spec.cols, spec.rows), (Some(60_000), Some(vec![]), 80, 24));
        assert_eq!(base.clone().into_spec("s", false).expect("valid").stdin, None);
        let bad = |r: ExecRequest, wait| r.into_spec("s", wait).expect_err("invalid");
        assert!(bad(ExecRequest::default(), false).message.contains("argv"));
        assert!(bad(ExecRequest { env: vec!["NOEQUALS".into()], ..base.clone() }, false).message.contains("env[0]"));
        assert!(bad(ExecRequest { cwd: Some("rel".into()), ..base.clone() }, false).message.contains("cwd"));
        assert!(bad(ExecRequest { timeout_ms: Some(600_001), ..base.clone() }, true).message.contains("timeoutMs"));
        assert!(ExecRequest { timeout_ms: Some(600_001), ..base.clone() }.into_spec("s", false).is_ok());
        assert!(bad(ExecRequest { cols: Some(0), ..base }, false).message.contains("cols"));
    }
}

//! The supervisor's processes: the main process's stdin and pty, and the exec processes started
//! with `spawn` (each with its own output hub, stdin, optional pty, timeout and exit status).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nimbus_core::limits::{PROCESS_EXIT_DRAIN_MS, SANDBOX_MAX_EXITED_PROCESSES, SANDBOX_MAX_RUNNING_PROCESSES};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

use super::hub::{Ending, Hub};
use super::protocol::Failure;
use super::sys;
use crate::backend::{OutputStream, ProcessInfo};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> u64 {
    u64::try_from(nimbus_core::time::now_ms()).unwrap_or(0)
}

/// The control-D a terminal reads as end of input (canonical mode).
const TTY_EOF: u8 = 0x04;

/// A process's stdin: a pipe's write end or a pty master.
pub struct StdinPort {
    state: Mutex<StdinState>,
    tty: bool,
}

enum StdinState {
    Open(File),
    Closed,
    Exited,
}

impl StdinPort {
    /// A port writing to `file` (`tty`: a pty master, whose end of input is a control-D).
    pub fn new(file: Option<File>, tty: bool) -> Self {
        let state = match file {
            Some(file) => StdinState::Open(file),
            None => StdinState::Closed,
        };
        Self { state: Mutex::new(state), tty }
    }

    /// Writes `data`, then closes stdin when `eof`.
    pub fn write(&self, data: &[u8], eof: bool) -> Result<(), Failure> {
        let mut state = lock(&self.state);
        let file = match &mut *state {
            StdinState::Open(file) => file,
            StdinState::Closed => return Err(Failure::conflict("stdin_closed", "the process's stdin is closed")),
            StdinState::Exited => return Err(Failure::conflict("process_exited", "the process has exited")),
        };
        let mut bytes = data.to_vec();
        if eof && self.tty {
            // A pending partial line needs one control-D to be read, and a second to read as EOF.
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                bytes.push(TTY_EOF);
            }
            bytes.push(TTY_EOF);
        }
        if let Err(err) = file.write_all(&bytes) {
            *state = StdinState::Closed;
            return Err(Failure::conflict("stdin_closed", format!("the process's stdin is closed: {err}")));
        }
        if eof {
            *state = StdinState::Closed;
        }
        Ok(())
    }

    /// The process ended: later writes are refused with `process_exited`.
    pub fn exited(&self) {
        *lock(&self.state) = StdinState::Exited;
    }
}

/// One exec process.
pub struct Proc {
    /// `proc-<ulid>`.
    pub id: String,
    /// Who started it.
    pub owner: String,
    /// Whether it has a pty.
    pub tty: bool,
    /// Unix ms.
    pub started_at_ms: u64,
    /// Host pid (also its process group).
    pub pid: Pid,
    /// Its output.
    pub hub: Arc<Hub>,
    /// Its stdin.
    pub stdin: StdinPort,
    /// Its pty master, for resizes.
    pub pty: Option<File>,
    life: Mutex<Life>,
    timed_out: AtomicBool,
}

#[derive(Default)]
struct Life {
    /// Reaped (its pid may be reused: no more signals).
    reaped: bool,
    finished_at_ms: Option<u64>,
}

impl Proc {
    /// A running process.
    pub fn new(id: String, owner: String, tty: bool, pid: Pid, stdin: StdinPort, pty: Option<File>) -> Arc<Self> {
        Arc::new(Self {
            id,
            owner,
            tty,
            started_at_ms: now_ms(),
            pid,
            hub: Hub::new(),
            stdin,
            pty,
            life: Mutex::new(Life::default()),
            timed_out: AtomicBool::new(false),
        })
    }

    /// What `processes` reports.
    pub fn info(&self) -> ProcessInfo {
        let finished_at_ms = lock(&self.life).finished_at_ms;
        let ending = finished_at_ms.and_then(|_| self.hub.ending());
        ProcessInfo {
            process_id: self.id.clone(),
            owner: self.owner.clone(),
            tty: self.tty,
            started_at_ms: self.started_at_ms,
            finished_at_ms,
            exit_code: ending.and_then(|e| e.code),
            signal: ending.and_then(|e| e.signal),
            timed_out: ending.is_some_and(|e| e.timed_out),
        }
    }

    /// Whether it still runs (not yet reported exited).
    pub fn running(&self) -> bool {
        lock(&self.life).finished_at_ms.is_none()
    }

    /// Sends `signal` to its process group; `false` once it has ended.
    pub fn signal(&self, signal: Signal) -> bool {
        let life = lock(&self.life);
        if life.reaped || life.finished_at_ms.is_some() {
            return false;
        }
        // Before the process made itself a group leader, only the process itself exists.
        if kill(Pid::from_raw(-self.pid.as_raw()), signal) == Err(Errno::ESRCH) {
            let _ = kill(self.pid, signal);
        }
        true
    }

    fn kill_for_timeout(&self) {
        let life = lock(&self.life);
        if !life.reaped {
            self.timed_out.store(true, Ordering::SeqCst);
            if kill(Pid::from_raw(-self.pid.as_raw()), Signal::SIGKILL) == Err(Errno::ESRCH) {
                let _ = kill(self.pid, Signal::SIGKILL);
            }
        }
    }

    /// Resizes its pty.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), Failure> {
        let Some(pty) = &self.pty else {
            return Err(Failure::conflict("not_a_tty", "the process has no terminal"));
        };
        if !self.running() {
            return Err(Failure::conflict("process_exited", "the process has exited"));
        }
        sys::set_window_size(pty.as_raw_fd(), cols, rows)
            .map_err(|e| Failure::conflict("process_exited", format!("cannot resize: {e}")))
    }

    /// Starts the threads that drain `outputs` into the hub, kill the process group at
    /// `timeout`, reap the process and publish its ending.
    pub fn watch(self: &Arc<Self>, outputs: Vec<(OwnedFd, OutputStream)>, timeout: Option<Duration>) {
        let drained: Vec<_> = outputs
            .into_iter()
            .map(|(fd, stream)| {
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                let hub = Arc::clone(&self.hub);
                std::thread::spawn(move || {
                    drain(fd, stream, &hub);
                    let _ = tx.send(());
                });
                rx
            })
            .collect();
        let (reaped_tx, reaped_rx) = std::sync::mpsc::channel::<()>();
        if let Some(timeout) = timeout {
            let me = Arc::clone(self);
            std::thread::spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = reaped_rx.recv_timeout(timeout) {
                    me.kill_for_timeout();
                }
            });
        }
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            // Wait without reaping, so no signal can reach a reused pid, then reap.
            let status = loop {
                match waitid(Id::Pid(me.pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::__WALL) {
                    Err(Errno::EINTR) => continue,
                    other => break other,
                }
            };
            let mut ending = match status {
                Ok(WaitStatus::Exited(_, code)) => Ending { code: Some(code), signal: None, timed_out: false },
                Ok(WaitStatus::Signaled(_, signal, _)) => {
                    Ending { code: None, signal: Some(signal as i32), timed_out: false }
                }
                _ => Ending { code: None, signal: None, timed_out: false },
            };
            {
                let mut life = lock(&me.life);
                life.reaped = true;
                let _ = waitpid(me.pid, Some(WaitPidFlag::__WALL));
            }
            let _ = reaped_tx.send(());
            ending.timed_out = me.timed_out.load(Ordering::SeqCst);
            me.stdin.exited();
            // Output first, then the exit; background children holding the pipes open only delay
            // it a little.
            let deadline = Instant::now() + Duration::from_millis(PROCESS_EXIT_DRAIN_MS);
            for rx in drained {
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = rx.recv_timeout(left);
            }
            lock(&me.life).finished_at_ms = Some(now_ms());
            me.hub.finish(ending);
        });
    }
}

/// Reads `fd` into `hub` until end of file (or EIO: a pty whose last slave closed).
pub fn drain(fd: OwnedFd, stream: OutputStream, hub: &Hub) {
    let mut file = File::from(fd);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hub.output(stream, &buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// The exec processes of one sandbox, oldest first.
#[derive(Default)]
pub struct Table {
    procs: Mutex<VecDeque<Arc<Proc>>>,
}

impl Table {
    /// Fails with 429 when the sandbox already runs the most exec processes it may.
    pub fn check_room(&self) -> Result<(), Failure> {
        let running = lock(&self.procs).iter().filter(|p| p.running()).count();
        if running >= SANDBOX_MAX_RUNNING_PROCESSES {
            return Err(Failure::Exhausted {
                resource: "sandbox_processes".into(),
                limit: SANDBOX_MAX_RUNNING_PROCESSES as u64,
                current: running as u64,
            });
        }
        Ok(())
    }

    /// Adds a started process, forgetting the oldest exited ones beyond the retention cap.
    pub fn add(&self, proc: Arc<Proc>) {
        let mut procs = lock(&self.procs);
        procs.push_back(proc);
        let mut exited = procs.iter().filter(|p| !p.running()).count();
        while exited > SANDBOX_MAX_EXITED_PROCESSES {
            let Some(pos) = procs.iter().position(|p| !p.running()) else { break };
            procs.remove(pos);
            exited -= 1;
        }
    }

    /// The process with `id`, else 404.
    pub fn get(&self, id: &str) -> Result<Arc<Proc>, Failure> {
        lock(&self.procs).iter().find(|p| p.id == id).cloned().ok_or_else(|| Failure::NotFound { id: id.to_owned() })
    }

    /// Every known process.
    pub fn list(&self) -> Vec<ProcessInfo> {
        lock(&self.procs).iter().map(|p| p.info()).collect()
    }

    /// SIGKILL to the groups of `owner`'s running processes.
    pub fn kill_owned(&self, owner: &str) {
        let procs: Vec<Arc<Proc>> = lock(&self.procs).iter().filter(|p| p.owner == owner).cloned().collect();
        for proc in procs {
            proc.signal(Signal::SIGKILL);
        }
    }
}

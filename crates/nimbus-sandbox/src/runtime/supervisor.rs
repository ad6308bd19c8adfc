//! The per-sandbox supervisor: `nimbus __supervise <state-dir>`.
//!
//! It lives in the sandbox's own mount and (empty) network namespaces, mounts the overlay root,
//! creates the container with libcontainer (the only process that ever calls libcontainer),
//! drains its output into the log, answers the socket protocol and records how the sandbox
//! ended. It reports the start result on its stdout (a pipe to the server) and then detaches it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};
use seccompiler::BpfProgram;

use super::cleanup;
use super::init::{self, ExecExecutor, InitExecutor};
use super::layout::{Layout, write_atomic};
use super::logs::{self, LogSink};
use super::protocol::{self, Request, Response};
use super::spec::{self, User};
use crate::backend::{ExecOutput, ExecSpec, Exit, LaunchSpec, RuntimeState, TerminationReason};

fn now_ms() -> u64 {
    u64::try_from(nimbus_core::time::now_ms()).unwrap_or(0)
}

/// The supervisor's main: returns the process exit code.
pub fn main(state_dir: &Path) -> i32 {
    let layout = Layout::new(state_dir);
    let _ = std::fs::write(layout.supervisor_pid(), std::process::id().to_string());
    match start(&layout) {
        Ok(running) => {
            report_ready(&RuntimeState::Running { started_at_ms: running.started_at_ms });
            run(running);
            0
        }
        Err(failure) => {
            let exit = Exit {
                reason: TerminationReason::StartFailed,
                exit_code: None,
                message: Some(failure.message.clone()),
                finished_at_ms: now_ms(),
            };
            if let Err(err) = write_atomic(&layout.exit(), &serde_json::to_vec(&exit).unwrap_or_default()) {
                tracing::error!(%err, "cannot record the sandbox's ending");
            }
            failure.cleanup(&layout);
            report_ready(&RuntimeState::Ended(exit));
            0
        }
    }
}

/// Writes the start result on stdout (the server's readiness pipe), then points stdout at
/// /dev/null so the pipe closes.
fn report_ready(state: &RuntimeState) {
    let mut line = serde_json::to_vec(state).unwrap_or_default();
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&line);
    let _ = out.flush();
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
}

/// A start that failed, and what it had set up.
struct StartFailure {
    message: String,
    container: Option<Box<Container>>,
    mounted: bool,
}

impl StartFailure {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), container: None, mounted: false }
    }

    fn cleanup(mut self, layout: &Layout) {
        if let Some(container) = &mut self.container
            && let Err(err) = container.delete(true)
        {
            tracing::warn!(%err, "cannot delete the failed container");
        }
        if self.mounted {
            let _ = nix::mount::umount2(&layout.rootfs(), MntFlags::MNT_DETACH);
        }
        if let Ok(launch) = read_launch(layout) {
            cleanup::kill_and_remove_cgroups(&launch.id);
        }
        cleanup::remove_writable(layout);
    }
}

fn read_launch(layout: &Layout) -> Result<LaunchSpec, String> {
    let bytes = std::fs::read(layout.launch()).map_err(|e| format!("cannot read launch.json: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid launch.json: {e}"))
}

/// A started sandbox.
struct Running {
    layout: Layout,
    launch: LaunchSpec,
    user: User,
    filters: Vec<BpfProgram>,
    started_at_ms: u64,
    container: Container,
    init_pid: Pid,
    report: File,
    listener: UnixListener,
    stdin: File,
    outputs: Vec<(OwnedFd, &'static str)>,
}

/// Sets up the namespaces, the overlay and the container, and waits for the main process's exec.
fn start(layout: &Layout) -> Result<Running, StartFailure> {
    // Keep terminal signals away from the supervisor (threads and children inherit the mask;
    // the sandbox's processes reset theirs).
    let mut quiet = SigSet::empty();
    quiet.add(Signal::SIGINT);
    quiet.add(Signal::SIGHUP);
    let _ = quiet.thread_block();

    let launch = read_launch(layout).map_err(StartFailure::new)?;
    let internal = |what: &str, err: &dyn std::fmt::Display| {
        tracing::error!(%err, "{what}");
        StartFailure::new(format!("sandbox setup failed: {what}: {err}"))
    };

    nix::sys::prctl::set_child_subreaper(true).map_err(|e| internal("set child subreaper", &e))?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET)
        .map_err(|e| internal("unshare mount and network namespaces", &e))?;
    nix::mount::mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
        .map_err(|e| internal("make / a slave mount", &e))?;
    super::net::loopback_up().map_err(|e| internal("bring lo up", &e))?;

    for dir in [layout.upper(), layout.work(), layout.rootfs(), layout.container()] {
        std::fs::create_dir_all(&dir).map_err(|e| internal("create state directories", &e))?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        launch.image_rootfs.display(),
        layout.upper().display(),
        layout.work().display()
    );
    nix::mount::mount(Some("overlay"), &layout.rootfs(), Some("overlay"), MsFlags::empty(), Some(options.as_str()))
        .map_err(|e| internal("mount the overlay root", &e))?;
    let mut failure_mounted = |message: String| StartFailure { message, container: None, mounted: true };

    let rootfs = layout.rootfs();
    let user = spec::resolve_user(&rootfs, &launch.user).map_err(&mut failure_mounted)?;
    spec::resolve_in_root(&rootfs, &launch.cwd, Some((user.uid, user.gid)))
        .map_err(|e| failure_mounted(format!("working directory: {e}")))?;
    let config = spec::runtime_spec(&launch, &rootfs, &user);
    std::fs::write(layout.config(), config.to_string())
        .map_err(|e| failure_mounted(format!("sandbox setup failed: write config.json: {e}")))?;

    // Bind the socket now (relative to the state directory: the absolute path may be longer than
    // a socket address allows); connections queue until the accept loop runs.
    std::env::set_current_dir(&layout.dir).map_err(|e| failure_mounted(format!("sandbox setup failed: {e}")))?;
    let _ = std::fs::remove_file("supervisor.sock");
    let listener = UnixListener::bind("supervisor.sock")
        .map_err(|e| failure_mounted(format!("sandbox setup failed: bind the supervisor socket: {e}")))?;

    let filters = super::seccomp::default_filters().map_err(&mut failure_mounted)?;
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("sandbox setup failed: pipe: {e}"));
    let (report_read, report_write) = pipe().map_err(&mut failure_mounted)?;

    let mut builder = ContainerBuilder::new(launch.id.clone(), SyscallType::Linux)
        .with_root_path(layout.container())
        .map_err(|e| failure_mounted(format!("sandbox setup failed: {e}")))?;
    let stdin: File;
    let mut outputs: Vec<(OwnedFd, &'static str)> = Vec::new();
    let mut pty_socket = None;
    if launch.terminal {
        // The init opens the pty inside the sandbox and sends us its master.
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| failure_mounted(format!("sandbox setup failed: socketpair: {e}")))?;
        pty_socket = Some((ours, theirs));
        let null = |write: bool| {
            File::options()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .map_err(|e| format!("sandbox setup failed: {e}"))
        };
        stdin = null(true).map_err(&mut failure_mounted)?; // replaced by the master below
        builder = builder
            .with_stdin(null(false).map_err(&mut failure_mounted)?)
            .with_stdout(null(true).map_err(&mut failure_mounted)?)
            .with_stderr(null(true).map_err(&mut failure_mounted)?);
    } else {
        let (in_r, in_w) = pipe().map_err(&mut failure_mounted)?;
        let (out_r, out_w) = pipe().map_err(&mut failure_mounted)?;
        let (err_r, err_w) = pipe().map_err(&mut failure_mounted)?;
        stdin = File::from(in_w);
        outputs.push((out_r, "stdout"));
        outputs.push((err_r, "stderr"));
        builder = builder.with_stdin(in_r).with_stdout(out_w).with_stderr(err_w);
    }
    let builder = builder.with_executor(InitExecutor {
        report_fd: report_write.as_raw_fd(),
        terminal: launch.terminal,
        pty_socket: pty_socket.as_ref().map(|(_, theirs)| theirs.as_raw_fd()),
        filters: filters.clone(),
    });

    let mut container = builder
        .as_init(&layout.dir)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| failure_mounted(format!("the sandbox could not be created: {e}")))?;
    drop(report_write);
    let init_pid = match container.pid() {
        Some(pid) => pid,
        None => {
            return Err(StartFailure {
                message: "the sandbox init has no pid".into(),
                container: Some(Box::new(container)),
                mounted: true,
            });
        }
    };
    if let Err(err) = container.start() {
        return Err(StartFailure {
            message: format!("the sandbox could not be started: {err}"),
            container: Some(Box::new(container)),
            mounted: true,
        });
    }
    let mut stdin = stdin;
    if let Some((ours, theirs)) = pty_socket {
        drop(theirs);
        match receive_fd(&ours) {
            Some(master) => match master.try_clone() {
                Ok(copy) => {
                    stdin = File::from(copy);
                    outputs.push((master, "stdout"));
                }
                Err(err) => tracing::error!(%err, "cannot duplicate the pty master"),
            },
            None => tracing::error!("the sandbox init sent no pty"),
        }
    }
    let mut report = File::from(report_read);
    let first = read_report(&mut report);
    let fail = |message: String, container: Container| {
        let _ = kill(init_pid, Signal::SIGKILL);
        let _ = waitpid(init_pid, None);
        Err(StartFailure { message, container: Some(Box::new(container)), mounted: true })
    };
    match first {
        Some((init::REPORT_EXEC_OK, _)) => {}
        Some((init::REPORT_EXEC_FAILED, errno)) => {
            let program = launch.argv.first().cloned().unwrap_or_default();
            return fail(init::exec_error_message(&program, errno), container);
        }
        _ => {
            let detail = std::fs::read_to_string(layout.supervisor_log()).unwrap_or_default();
            let last = detail.lines().rev().find(|l| l.contains("ERROR")).unwrap_or("").trim().to_owned();
            return fail(
                format!("the sandbox init failed before running the main process {last}").trim().to_owned(),
                container,
            );
        }
    }
    let started_at_ms = now_ms();
    let _ = write_atomic(&layout.started(), started_at_ms.to_string().as_bytes());
    Ok(Running {
        layout: layout.clone(),
        launch,
        user,
        filters,
        started_at_ms,
        container,
        init_pid,
        report,
        listener,
        stdin,
        outputs,
    })
}

/// Receives one descriptor sent with SCM_RIGHTS over `socket`.
fn receive_fd(socket: &OwnedFd) -> Option<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let message = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).ok()?;
    for cmsg in message.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            return Some(init::owned(fd));
        }
    }
    None
}

/// Reads one 5-byte report from the init; `None` at end of file.
fn read_report(report: &mut File) -> Option<(u8, i32)> {
    let mut buf = [0u8; 5];
    report.read_exact(&mut buf).ok()?;
    Some((buf[0], i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]])))
}

/// What the socket threads share.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    init_pid: Pid,
    stdin: Mutex<Option<File>>,
    exec_lock: Mutex<()>,
    layout: Layout,
    launch: LaunchSpec,
    user: User,
    filters: Vec<BpfProgram>,
}

struct State {
    started_at_ms: u64,
    exit: Option<Exit>,
    stop_requested: bool,
    init_gone: bool,
    connections: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn signal_init(&self, state: &State, signal: Signal) {
        if !state.init_gone {
            let _ = kill(self.init_pid, signal);
        }
    }

    fn wait_ended(&self) -> Exit {
        let mut state = self.lock();
        loop {
            if let Some(exit) = &state.exit {
                return exit.clone();
            }
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn stop(&self, grace: Duration) -> Exit {
        {
            let mut state = self.lock();
            if let Some(exit) = &state.exit {
                return exit.clone();
            }
            state.stop_requested = true;
            self.signal_init(&state, if grace.is_zero() { Signal::SIGKILL } else { Signal::SIGTERM });
            let (state, _) = self
                .changed
                .wait_timeout_while(state, grace, |s| s.exit.is_none() && !s.init_gone)
                .unwrap_or_else(|p| p.into_inner());
            if state.exit.is_none() && !state.init_gone {
                self.signal_init(&state, Signal::SIGKILL);
            }
        }
        self.wait_ended()
    }
}

/// Runs a started sandbox until it ends and every connection has been answered.
fn run(running: Running) {
    let Running {
        layout,
        launch,
        user,
        filters,
        started_at_ms,
        mut container,
        init_pid,
        mut report,
        listener,
        stdin,
        outputs,
    } = running;
    let shared = Arc::new(Shared {
        state: Mutex::new(State { started_at_ms, exit: None, stop_requested: false, init_gone: false, connections: 0 }),
        changed: Condvar::new(),
        init_pid,
        stdin: Mutex::new(Some(stdin)),
        exec_lock: Mutex::new(()),
        layout: layout.clone(),
        launch: launch.clone(),
        user,
        filters,
    });

    let sink = LogSink::new(layout.clone());
    let readers: Vec<_> = outputs
        .into_iter()
        .map(|(fd, kind)| {
            let sink = Arc::clone(&sink);
            std::thread::spawn(move || logs::drain(fd, kind, sink))
        })
        .collect();

    {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || accept_loop(listener, shared));
    }

    // The init's final report (or its end of file when it died without one).
    let mut last = None;
    while let Some(message) = read_report(&mut report) {
        last = Some(message);
    }
    shared.lock().init_gone = true;
    let init_status = waitpid(init_pid, None).ok();
    let stop_requested = shared.lock().stop_requested;
    *shared.stdin.lock().unwrap_or_else(|p| p.into_inner()) = None;
    for reader in readers {
        let _ = reader.join();
    }

    let oom = oom_kills(&launch.id) > 0;
    let exit = classify(last, init_status, stop_requested, oom);
    if let Err(err) = write_atomic(&layout.exit(), &serde_json::to_vec(&exit).unwrap_or_default()) {
        tracing::error!(%err, "cannot record the sandbox's ending");
    }

    let _guard = shared.exec_lock.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(err) = container.delete(true) {
        tracing::warn!(%err, "libcontainer could not delete the container");
    }
    let _ = nix::mount::umount2(&layout.rootfs(), MntFlags::MNT_DETACH);
    cleanup::kill_and_remove_cgroups(&launch.id);
    cleanup::remove_writable(&layout);

    let mut state = shared.lock();
    state.exit = Some(exit);
    shared.changed.notify_all();
    while state.connections > 0 {
        state = shared.changed.wait(state).unwrap_or_else(|p| p.into_inner());
    }
    let _ = std::fs::remove_file(layout.socket());
}

/// The ending, per the contract's termination table.
fn classify(report: Option<(u8, i32)>, init: Option<WaitStatus>, stop_requested: bool, oom: bool) -> Exit {
    let main = match report {
        Some((init::REPORT_EXITED, code)) => Some(code),
        Some((init::REPORT_SIGNALED, signal)) => Some(128 + signal),
        _ => None,
    };
    let init_code = match init {
        Some(WaitStatus::Exited(_, code)) => Some(code),
        Some(WaitStatus::Signaled(_, signal, _)) => Some(128 + signal as i32),
        _ => None,
    };
    let killed_by_signal = matches!(report, Some((init::REPORT_SIGNALED, _))) || main.is_none();
    let (reason, exit_code) = if stop_requested {
        (TerminationReason::StoppedByRequest, main.or(init_code))
    } else if oom && killed_by_signal {
        (TerminationReason::OomKilled, Some(137))
    } else {
        match report {
            Some((init::REPORT_EXITED, code)) => (TerminationReason::Exited, Some(code)),
            Some((init::REPORT_SIGNALED, signal)) => (TerminationReason::Killed, Some(128 + signal)),
            _ => (TerminationReason::Killed, init_code),
        }
    };
    let message = match reason {
        TerminationReason::OomKilled => Some("the sandbox reached its memory limit".to_owned()),
        TerminationReason::Killed if main.is_none() => Some("the sandbox init ended unexpectedly".to_owned()),
        _ => None,
    };
    Exit { reason, exit_code, message, finished_at_ms: now_ms() }
}

/// OOM kills recorded by the sandbox's memory cgroup.
fn oom_kills(id: &str) -> u64 {
    let cgroup = spec::cgroup_path(id);
    let candidates = [
        (PathBuf::from(format!("/sys/fs/cgroup/memory{cgroup}/memory.oom_control")), "oom_kill "),
        (PathBuf::from(format!("/sys/fs/cgroup{cgroup}/memory.events")), "oom_kill "),
    ];
    for (path, key) in candidates {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        }
    }
    0
}

fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        shared.lock().connections += 1;
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            serve(stream, &shared);
            let mut state = shared.lock();
            state.connections -= 1;
            shared.changed.notify_all();
        });
    }
}

fn serve(stream: UnixStream, shared: &Shared) {
    let mut line = String::new();
    let Ok(read) = stream.try_clone() else { return };
    if BufReader::new(read).read_line(&mut line).is_err() {
        return;
    }
    let response = match serde_json::from_str::<Request>(&line) {
        Err(err) => Response::Error(format!("bad request: {err}")),
        Ok(request) => handle(request, shared),
    };
    let mut stream = stream;
    let _ = protocol::respond(&mut stream, &response);
}

fn handle(request: Request, shared: &Shared) -> Response {
    match request {
        Request::Status => {
            let state = shared.lock();
            Response::State(match &state.exit {
                Some(exit) => RuntimeState::Ended(exit.clone()),
                None => RuntimeState::Running { started_at_ms: state.started_at_ms },
            })
        }
        Request::Wait => Response::Exit(shared.wait_ended()),
        Request::Stop { grace_ms } => Response::Exit(shared.stop(Duration::from_millis(grace_ms))),
        Request::Pid => {
            let state = shared.lock();
            Response::Pid((state.exit.is_none() && !state.init_gone).then_some(shared.init_pid.as_raw()))
        }
        Request::Stdin { data } => {
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) else {
                return Response::Error("stdin data is not base64".into());
            };
            let mut stdin = shared.stdin.lock().unwrap_or_else(|p| p.into_inner());
            match stdin.as_mut() {
                None => Response::Error("the sandbox has ended".into()),
                Some(file) => match file.write_all(&bytes) {
                    Ok(()) => Response::Ok,
                    Err(err) => Response::Error(format!("stdin is closed: {err}")),
                },
            }
        }
        Request::Exec(exec) => match run_exec(shared, &exec) {
            Ok(output) => Response::Exec(output),
            Err(message) => Response::Error(message),
        },
    }
}

/// Runs `exec` inside the sandbox (libcontainer tenant mode) and waits for it.
fn run_exec(shared: &Shared, exec: &ExecSpec) -> Result<ExecOutput, String> {
    let _serial = shared.exec_lock.lock().unwrap_or_else(|p| p.into_inner());
    if shared.lock().exit.is_some() {
        return Err("the sandbox has ended".into());
    }
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let null = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    let env: HashMap<String, String> =
        exec.env.iter().filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))).collect();
    let cwd = exec.cwd.clone().unwrap_or_else(|| shared.launch.cwd.clone());
    let pid = ContainerBuilder::new(shared.launch.id.clone(), SyscallType::Linux)
        .with_root_path(shared.layout.container())
        .map_err(|e| e.to_string())?
        .with_executor(ExecExecutor { filters: shared.filters.clone() })
        .with_stdin(null)
        .with_stdout(out_w)
        .with_stderr(err_w)
        .as_tenant()
        .with_container_args(exec.argv.clone())
        .with_env(env)
        .with_cwd(Some(cwd))
        .with_user(Some(shared.user.uid))
        .with_group(Some(shared.user.gid))
        .with_additional_gids(shared.user.additional_gids.clone())
        .with_detach(true)
        .build();
    let pid = match pid {
        Ok(pid) => pid,
        Err(err) => {
            let text = err.to_string();
            return Ok(ExecOutput { exit_code: 127, stdout: Vec::new(), stderr: text.into_bytes(), truncated: false });
        }
    };
    let max = exec.max_output_bytes;
    let capture = |fd: OwnedFd| {
        std::thread::spawn(move || {
            let mut file = File::from(fd);
            let mut kept = Vec::new();
            let mut truncated = false;
            let mut buf = [0u8; 16 * 1024];
            loop {
                match file.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = max.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                        truncated |= n > room;
                    }
                }
            }
            (kept, truncated)
        })
    };
    let (out_t, err_t) = (capture(out_r), capture(err_r));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let timeout = Duration::from_millis(exec.timeout_ms);
    let killer = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
            let _ = kill(pid, Signal::SIGKILL);
        }
    });
    let status = waitpid(pid, None);
    let _ = done_tx.send(());
    let _ = killer.join();
    let (stdout, t1) = out_t.join().unwrap_or_default();
    let (stderr, t2) = err_t.join().unwrap_or_default();
    let exit_code = match status {
        Ok(WaitStatus::Exited(_, code)) => code,
        Ok(WaitStatus::Signaled(_, signal, _)) => 128 + signal as i32,
        _ => -1,
    };
    Ok(ExecOutput { exit_code, stdout, stderr, truncated: t1 || t2 })
}

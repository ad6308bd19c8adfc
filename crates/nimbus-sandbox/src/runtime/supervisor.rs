//! The per-sandbox supervisor: `nimbus __supervise <state-dir>`.
//!
//! It lives in the sandbox's own mount and (empty) network namespaces, mounts the overlay root,
//! creates the container with libcontainer (the only process that ever calls libcontainer),
//! drains its output into the log, answers the socket protocol and records how the sandbox
//! ended. It reports the start result on its stdout (a pipe to the server) and then detaches it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};
use seccompiler::BpfProgram;

use nimbus_core::limits::{
    EXEC_DEFAULT_COLS, EXEC_DEFAULT_ROWS, PROCESS_EXIT_DRAIN_MS, SANDBOX_CA_BUNDLE_MAX_BYTES, SANDBOX_PORT_CONNECT_MS,
    SANDBOX_SHM_BYTES, SUPERVISOR_ORPHAN_CHECK_MS,
};

use super::cleanup;
use super::egress;
use super::hub::{Ending, Hub};
use super::init::{self, ExecExecutor, InitExecutor, PtyRequest};
use super::layout::{Layout, Staging, write_atomic};
use super::logs::{self, LogSink};
use super::process::{Proc, StdinPort, Table};
use super::protocol::{self, Failure, Request, Response};
use super::spec::{self, User};
use super::sys;
use super::userns::IdMap;
use crate::backend::{
    ExecOutput, ExecSpec, Exit, LaunchSpec, OutputStream, Probe, ProcessInfo, ProcessRef, ProcessSpec, RuntimeState,
    TerminationReason,
};

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
            let _ = nix::mount::umount2(&Staging::default().rootfs(), MntFlags::MNT_DETACH);
        }
        unmount_below_root(layout);
        if let Ok(launch) = read_launch(layout) {
            cleanup::kill_and_remove_cgroups(&launch.id);
        }
        cleanup::remove_writable(layout);
    }
}

/// Mounts the staging tmpfs and, on it, what the container binds rather than mounts: a sysfs of
/// this network namespace (inside its user namespace the container could not mount one), its
/// `/tmp` and `/dev/shm`, owned by the sandbox's root (mounted here, outside the user namespace,
/// they accept files the host makes for the sandbox through the files channel, which a file
/// system mounted inside it refuses to anyone its map does not name), and its `/etc/hosts` and
/// `/etc/hostname`, which the sandbox's root may edit.
fn mount_staging(staging: &Staging, id_map: IdMap, hostname: &str) -> Result<(), String> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let tmpfs = |at: &Path, flags: MsFlags, options: &str| {
        nix::mount::mount(Some("tmpfs"), at, Some("tmpfs"), flags, Some(options))
            .map_err(|e| format!("mount a tmpfs on {}: {e}", at.display()))
    };
    std::fs::create_dir_all(&staging.dir).map_err(|e| format!("create {}: {e}", staging.dir.display()))?;
    // Small files, and the CA bundle.
    let size = 64 * 1024 + SANDBOX_CA_BUNDLE_MAX_BYTES + 64 * 1024;
    tmpfs(&staging.dir, flags, &format!("mode=0755,size={size}"))?;
    for dir in [staging.rootfs(), staging.sysfs(), staging.tmp(), staging.shm()] {
        std::fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    nix::mount::mount(Some("sysfs"), &staging.sysfs(), Some("sysfs"), flags | MsFlags::MS_RDONLY, None::<&str>)
        .map_err(|e| format!("mount the sandbox's sysfs: {e}"))?;
    let owner = format!("uid={0},gid={0}", id_map.host_first);
    tmpfs(&staging.tmp(), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, &format!("mode=1777,{owner}"))?;
    tmpfs(&staging.shm(), flags, &format!("mode=1777,size={SANDBOX_SHM_BYTES},{owner}"))?;
    for (path, content) in
        [(staging.hosts(), spec::hosts_file(hostname)), (staging.hostname(), format!("{hostname}\n"))]
    {
        std::fs::write(&path, content).map_err(|e| format!("write {}: {e}", path.display()))?;
        std::os::unix::fs::chown(&path, Some(id_map.host_first), Some(id_map.host_first))
            .map_err(|e| format!("give the sandbox {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Unmounts what the root was made of (the overlay's layers, the staging tmpfs and what is on
/// it), all in this supervisor's mount namespace.
fn unmount_below_root(layout: &Layout) {
    let staging = Staging::default();
    for mountpoint in [layout.lower(), staging.sysfs(), staging.tmp(), staging.shm(), staging.dir] {
        let _ = nix::mount::umount2(&mountpoint, MntFlags::MNT_DETACH);
    }
    super::disk::unmount(layout);
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
    owner: (u32, u32),
    userns: OwnedFd,
    filters: Vec<BpfProgram>,
    started_at_ms: u64,
    container: Container,
    init_pid: Pid,
    report: File,
    listener: UnixListener,
    stdin: File,
    pty: Option<File>,
    main_ns_pid: i32,
    outputs: Vec<(OwnedFd, &'static str)>,
    /// The egress proxy listener (127.0.0.1 and ::1), empty without egress.
    proxy_listeners: Vec<TcpListener>,
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
    let proxy_listeners = match &launch.egress {
        Some(_) => egress::bind().map_err(|e| internal("listen on the sandbox's proxy port", &e))?,
        None => Vec::new(),
    };

    for dir in [layout.container(), layout.lower()] {
        std::fs::create_dir_all(&dir).map_err(|e| internal("create state directories", &e))?;
    }
    let id_map = IdMap::read(layout).map_err(|e| internal("read the sandbox's id range", &e))?;
    let staging = Staging::default();
    mount_staging(&staging, id_map, &spec::hostname(&launch.id))
        .map_err(|e| internal("prepare the staging mount", &e))?;
    id_map
        .mount_image(&launch.image_rootfs, &layout.lower())
        .map_err(|e| internal("mount the image with the sandbox's ids", &e))?;
    let (upper, work) = match launch.resources.disk_limit_bytes {
        Some(bytes) => super::disk::mount(layout, bytes).map_err(|e| internal("set up the sandbox's disk", &e))?,
        None => {
            for dir in [layout.upper(), layout.work()] {
                std::fs::create_dir_all(&dir).map_err(|e| internal("create state directories", &e))?;
            }
            (layout.upper(), layout.work())
        }
    };
    id_map
        .own_upper(&upper, &launch.image_rootfs)
        .map_err(|e| internal("give the writable layer to the sandbox's ids", &e))?;
    let options =
        format!("lowerdir={},upperdir={},workdir={}", layout.lower().display(), upper.display(), work.display());
    let rootfs = staging.rootfs();
    nix::mount::mount(Some("overlay"), &rootfs, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
        .map_err(|e| internal("mount the overlay root", &e))?;
    let mut failure_mounted = |message: String| StartFailure { message, container: None, mounted: true };

    let user = spec::resolve_user(&rootfs, &launch.user).map_err(&mut failure_mounted)?;
    let owner = id_map.owner_to_host(user.uid, user.gid).map_err(|e| failure_mounted(format!("user: {e}")))?;
    spec::resolve_in_root(&rootfs, &launch.cwd, Some(owner))
        .map_err(|e| failure_mounted(format!("working directory: {e}")))?;
    let mut trust_paths = Vec::new();
    if let Some(egress) = &launch.egress {
        let (bundle, present) = egress::trust_bundle(&rootfs, &egress.ca_pem);
        let path = staging.ca_bundle();
        std::fs::write(&path, bundle)
            .and_then(|()| std::os::unix::fs::chown(&path, Some(id_map.host_first), Some(id_map.host_first)))
            .map_err(|e| failure_mounted(format!("sandbox setup failed: write the CA bundle: {e}")))?;
        trust_paths.push(egress::TRUST_PATHS[0]);
        trust_paths.extend(present);
    }
    let config = spec::runtime_spec(&launch, &staging, &trust_paths, id_map, &user);
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
    let mut pty = None;
    if let Some((ours, theirs)) = pty_socket {
        drop(theirs);
        match receive_fd(&ours) {
            Some(master) => match (master.try_clone(), master.try_clone()) {
                (Ok(copy), Ok(resize)) => {
                    stdin = File::from(copy);
                    pty = Some(File::from(resize));
                    outputs.push((master, "stdout"));
                }
                (Err(err), _) | (_, Err(err)) => tracing::error!(%err, "cannot duplicate the pty master"),
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
    let main_ns_pid = match first {
        Some((init::REPORT_EXEC_OK, pid)) => pid,
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
    };
    let userns = match File::open(format!("/proc/{init_pid}/ns/user")) {
        Ok(file) => OwnedFd::from(file),
        Err(err) => return fail(format!("sandbox setup failed: open the sandbox's user namespace: {err}"), container),
    };
    let started_at_ms = now_ms();
    let _ = write_atomic(&layout.started(), started_at_ms.to_string().as_bytes());
    Ok(Running {
        layout: layout.clone(),
        launch,
        user,
        owner,
        userns,
        filters,
        started_at_ms,
        container,
        init_pid,
        report,
        listener,
        stdin,
        pty,
        main_ns_pid,
        outputs,
        proxy_listeners,
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
    /// The main process's pid in the sandbox's pid namespace (its host pid is found from it).
    main_ns_pid: i32,
    main_stdin: StdinPort,
    main_hub: Arc<Hub>,
    /// The main process's pty master (terminal sandboxes), for resizes.
    main_pty: Option<File>,
    procs: Table,
    /// Serialises libcontainer calls (each forks this multi-threaded process).
    exec_lock: Mutex<()>,
    layout: Layout,
    launch: LaunchSpec,
    user: User,
    /// The main process's uid and gid as the host sees them (files made for it get these).
    owner: (u32, u32),
    /// The sandbox's user namespace, which exec processes join.
    userns: OwnedFd,
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

    fn running(&self) -> bool {
        let state = self.lock();
        state.exit.is_none() && !state.init_gone
    }

    /// The main process's host pid: the child of the init whose innermost pid is `main_ns_pid`.
    fn main_pid(&self) -> Option<Pid> {
        let init = self.init_pid.as_raw();
        let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
        children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()).find_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let ns_pid = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?.split_whitespace().last()?;
            (ns_pid.parse::<i32>().ok()? == self.main_ns_pid).then_some(Pid::from_raw(pid))
        })
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
        owner,
        userns,
        filters,
        started_at_ms,
        mut container,
        init_pid,
        mut report,
        listener,
        stdin,
        pty,
        main_ns_pid,
        outputs,
        proxy_listeners,
    } = running;
    let terminal = launch.terminal;
    let shared = Arc::new(Shared {
        state: Mutex::new(State { started_at_ms, exit: None, stop_requested: false, init_gone: false, connections: 0 }),
        changed: Condvar::new(),
        init_pid,
        main_ns_pid,
        main_stdin: StdinPort::new(Some(stdin), terminal),
        main_hub: Hub::new(),
        main_pty: pty,
        procs: Table::default(),
        exec_lock: Mutex::new(()),
        layout: layout.clone(),
        launch: launch.clone(),
        user,
        owner,
        userns,
        filters,
    });

    let sink = LogSink::new(layout.clone());
    let readers: Vec<_> = outputs
        .into_iter()
        .map(|(fd, kind)| {
            let sink = Arc::clone(&sink);
            let hub = Arc::clone(&shared.main_hub);
            std::thread::spawn(move || logs::drain(fd, kind, sink, hub))
        })
        .collect();

    {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || accept_loop(listener, shared));
    }
    {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || watch_for_orphaning(&shared));
    }
    let proxy_listeners: Vec<Arc<TcpListener>> = proxy_listeners.into_iter().map(Arc::new).collect();
    for listener in &proxy_listeners {
        let (listener, id) = (Arc::clone(listener), launch.id.clone());
        std::thread::spawn(move || egress::serve(&listener, &id));
    }

    // The init's final report (or its end of file when it died without one).
    let mut last = None;
    while let Some(message) = read_report(&mut report) {
        last = Some(message);
    }
    shared.lock().init_gone = true;
    // The sandbox has ended: its way out closes with it.
    for listener in &proxy_listeners {
        egress::shut_down(listener);
    }
    let init_status = waitpid(init_pid, None).ok();
    let stop_requested = shared.lock().stop_requested;
    shared.main_stdin.exited();
    for reader in readers {
        let _ = reader.join();
    }
    shared.main_hub.finish(main_ending(last, init_status));

    let oom = oom_kills(&launch.id) > 0;
    let exit = classify(last, init_status, stop_requested, oom);
    if let Err(err) = write_atomic(&layout.exit(), &serde_json::to_vec(&exit).unwrap_or_default()) {
        tracing::error!(%err, "cannot record the sandbox's ending");
    }

    let _guard = shared.exec_lock.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(err) = container.delete(true) {
        tracing::warn!(%err, "libcontainer could not delete the container");
    }
    let _ = nix::mount::umount2(&Staging::default().rootfs(), MntFlags::MNT_DETACH);
    unmount_below_root(&layout);
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

/// Tears the sandbox down when its socket disappears (its state directory, or the whole data
/// directory, was removed): nothing could reach the sandbox any more, so it must not run on.
/// Checks every `SUPERVISOR_ORPHAN_CHECK_MS` until the sandbox has ended.
fn watch_for_orphaning(shared: &Shared) {
    let socket = shared.layout.socket();
    loop {
        std::thread::sleep(Duration::from_millis(SUPERVISOR_ORPHAN_CHECK_MS));
        if !shared.running() {
            return;
        }
        if std::fs::symlink_metadata(&socket).is_err() {
            tracing::warn!("the sandbox's state directory is gone; tearing the sandbox down");
            shared.stop(Duration::ZERO);
            return;
        }
    }
}

/// How the main process ended, as its attachments report it.
fn main_ending(report: Option<(u8, i32)>, init: Option<WaitStatus>) -> Ending {
    let (code, signal) = match (report, init) {
        (Some((init::REPORT_EXITED, code)), _) => (Some(code), None),
        (Some((init::REPORT_SIGNALED, signal)), _) => (None, Some(signal)),
        (_, Some(WaitStatus::Exited(_, code))) => (Some(code), None),
        (_, Some(WaitStatus::Signaled(_, signal, _))) => (None, Some(signal as i32)),
        _ => (None, None),
    };
    Ending { code, signal, timed_out: false }
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
    let mut stream = stream;
    let response = match serde_json::from_str::<Request>(&line) {
        Err(err) => Response::Error(format!("bad request: {err}")),
        Ok(Request::Attach { target }) => {
            let hub = match &target {
                ProcessRef::Main => Ok(Arc::clone(&shared.main_hub)),
                ProcessRef::Exec(id) => shared.procs.get(id).map(|p| Arc::clone(&p.hub)),
            };
            match hub {
                Ok(hub) => {
                    if protocol::respond(&mut stream, &Response::Ok).is_err() {
                        return;
                    }
                    hub.subscribe(stream).run();
                    return;
                }
                Err(failure) => Response::Failed(failure),
            }
        }
        Ok(Request::Connect { port }) => match connect_inside(port) {
            Ok(connection) => {
                let _ = protocol::respond_with_fd(&stream, connection.as_fd());
                return;
            }
            Err(reason) => Response::Error(reason),
        },
        Ok(request) => handle(request, shared),
    };
    let _ = protocol::respond(&mut stream, &response);
}

/// Connects to `port` on the sandbox's loopback (this process lives in the sandbox's network
/// namespace): 127.0.0.1 first, then ::1.
fn connect_inside(port: u16) -> Result<std::net::TcpStream, String> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    let timeout = Duration::from_millis(SANDBOX_PORT_CONNECT_MS);
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)
        .or_else(|_| TcpStream::connect_timeout(&SocketAddr::from((Ipv6Addr::LOCALHOST, port)), timeout))
        .map_err(|e| format!("nothing accepted a connection on port {port} of the sandbox's loopback ({e})"))
}

fn failed(result: Result<(), Failure>) -> Response {
    match result {
        Ok(()) => Response::Ok,
        Err(failure) => Response::Failed(failure),
    }
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
        Request::Input { target, data, eof } => {
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) else {
                return Response::Error("input data is not base64".into());
            };
            failed(match target {
                ProcessRef::Main => shared.main_stdin.write(&bytes, eof),
                ProcessRef::Exec(id) => shared.procs.get(&id).and_then(|p| p.stdin.write(&bytes, eof)),
            })
        }
        Request::Spawn(spec) => match spawn(shared, &spec) {
            Ok(info) => Response::Process(info),
            Err(failure) => Response::Failed(failure),
        },
        Request::Processes => Response::Processes(shared.procs.list()),
        Request::Attach { .. } | Request::Connect { .. } => {
            Response::Error("attach and connect are served on their own connection".into())
        }
        Request::Signal { target, signal } => failed(send_signal(shared, &target, signal)),
        Request::Resize { target, cols, rows } => failed(match target {
            ProcessRef::Main => match &shared.main_pty {
                None => Err(Failure::conflict("not_a_tty", "the sandbox was not started with a terminal")),
                Some(_) if !shared.running() => Err(Failure::conflict("process_exited", "the process has exited")),
                Some(pty) => sys::set_window_size(pty.as_raw_fd(), cols, rows)
                    .map_err(|e| Failure::conflict("process_exited", format!("cannot resize: {e}"))),
            },
            ProcessRef::Exec(id) => shared.procs.get(&id).and_then(|p| p.resize(cols, rows)),
        }),
        Request::KillOwned { owner } => {
            shared.procs.kill_owned(&owner);
            Response::Ok
        }
        Request::Probe { probe, timeout_ms } => Response::Probe(run_probe(shared, &probe, timeout_ms)),
        Request::MainUser => Response::User(shared.owner.0, shared.owner.1),
        Request::Listening => Response::Ports(egress::listening_ports()),
        Request::Exec(exec) => match run_exec(shared, &exec) {
            Ok(output) => Response::Exec(output),
            Err(message) => Response::Error(message),
        },
    }
}

fn send_signal(shared: &Shared, target: &ProcessRef, signal: i32) -> Result<(), Failure> {
    let signal = Signal::try_from(signal)
        .map_err(|_| Failure::Invalid { field: "signal".into(), reason: format!("{signal} is not a signal number") })?;
    let exited = || Failure::conflict("process_exited", "the process has exited");
    match target {
        ProcessRef::Main => {
            let state = shared.lock();
            let running = state.exit.is_none() && !state.init_gone;
            let pid = if running { shared.main_pid() } else { None };
            match pid {
                Some(pid) => kill(pid, signal).map_err(|_| exited()),
                None => Err(exited()),
            }
        }
        ProcessRef::Exec(id) => {
            let proc = shared.procs.get(id)?;
            if proc.signal(signal) { Ok(()) } else { Err(exited()) }
        }
    }
}

fn run_probe(shared: &Shared, probe: &Probe, timeout_ms: u64) -> bool {
    let timeout = Duration::from_millis(timeout_ms);
    match probe {
        Probe::Tcp { port } => super::probe::tcp(*port, timeout),
        Probe::Http { port, path } => super::probe::http(*port, path, timeout),
        Probe::Exec { argv } => {
            let exec = ExecSpec { argv: argv.clone(), env: Vec::new(), cwd: None, timeout_ms, max_output_bytes: 0 };
            matches!(run_exec(shared, &exec), Ok(ExecOutput { exit_code: 0, .. }))
        }
    }
}

/// The stdio and identity of a process started inside the sandbox.
struct Launch<'a> {
    argv: &'a [String],
    env: &'a [String],
    cwd: String,
    user: &'a User,
    stdio: [OwnedFd; 3],
    pty: Option<PtyRequest>,
}

/// Starts a process inside the running sandbox (libcontainer tenant mode: its namespaces,
/// cgroup, capabilities and seccomp filter) and returns its host pid. The environment is laid
/// over the main process's.
fn launch(shared: &Shared, launch: Launch<'_>) -> Result<Pid, String> {
    let _serial = shared.exec_lock.lock().unwrap_or_else(|p| p.into_inner());
    if !shared.running() {
        return Err("the sandbox is not running".into());
    }
    // The main process's environment is laid under this one: its `HOME` counts as set.
    let inherited_home = shared.launch.env.iter().any(|kv| kv.starts_with("HOME=") && kv.len() > "HOME=".len());
    let env = if inherited_home { launch.env.to_vec() } else { launch.user.with_home(launch.env) };
    let env: HashMap<String, String> =
        env.iter().filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))).collect();
    let [stdin, stdout, stderr] = launch.stdio;
    ContainerBuilder::new(shared.launch.id.clone(), SyscallType::Linux)
        .with_root_path(shared.layout.container())
        .map_err(|e| e.to_string())?
        .with_executor(ExecExecutor {
            userns: shared.userns.as_raw_fd(),
            user: launch.user.clone(),
            filters: shared.filters.clone(),
            pty: launch.pty,
        })
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr)
        .as_tenant()
        .with_container_args(launch.argv.to_vec())
        .with_env(env)
        .with_cwd(Some(launch.cwd))
        // Host root until the executor enters the user namespace and becomes `launch.user`.
        .with_user(Some(0))
        .with_group(Some(0))
        .with_detach(true)
        .build()
        .map_err(|e| e.to_string())
}

fn null_fd(write: bool) -> Result<OwnedFd, String> {
    File::options()
        .read(!write)
        .write(write)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| format!("/dev/null: {e}"))
}

/// Starts an exec process (`spawn`).
fn spawn(shared: &Shared, spec: &ProcessSpec) -> Result<ProcessInfo, Failure> {
    let invalid = |field: &str, reason: String| Failure::Invalid { field: field.into(), reason };
    let internal = |message: String| {
        tracing::error!(message, "spawn");
        Failure::conflict("target_stopped", message)
    };
    if !shared.running() {
        return Err(Failure::conflict("target_stopped", "the sandbox is not running"));
    }
    if spec.argv.is_empty() {
        return Err(invalid("argv", "must not be empty".into()));
    }
    shared.procs.check_room()?;
    // The sandbox's own view of its files (its mounts included).
    let root = PathBuf::from(format!("/proc/{}/root", shared.init_pid));
    let user = match &spec.user {
        Some(user) => spec::resolve_user(&root, user).map_err(|e| invalid("user", e))?,
        None => shared.user.clone(),
    };
    let cwd = spec.cwd.clone().unwrap_or_else(|| shared.launch.cwd.clone());
    match spec::resolve_in_root(&root, &cwd, None) {
        Ok(host) if host.is_dir() => {}
        Ok(_) => return Err(invalid("cwd", format!("`{cwd}` is not a directory in the sandbox"))),
        Err(err) => return Err(invalid("cwd", err.replace("in the image", "in the sandbox"))),
    }
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| internal(format!("pipe: {e}")));
    let (stdin, outputs, pty_socket, stdio, pty) = if spec.tty {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| internal(format!("socketpair: {e}")))?;
        let cols = if spec.cols == 0 { EXEC_DEFAULT_COLS } else { spec.cols };
        let rows = if spec.rows == 0 { EXEC_DEFAULT_ROWS } else { spec.rows };
        let pty = PtyRequest { socket: theirs.as_raw_fd(), cols, rows };
        let stdio =
            [null_fd(false).map_err(internal)?, null_fd(true).map_err(internal)?, null_fd(true).map_err(internal)?];
        (None, Vec::new(), Some((ours, theirs)), stdio, Some(pty))
    } else {
        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let outputs = vec![(out_r, OutputStream::Stdout), (err_r, OutputStream::Stderr)];
        (Some(File::from(in_w)), outputs, None, [in_r, out_w, err_w], None)
    };
    let pid = launch(shared, Launch { argv: &spec.argv, env: &spec.env, cwd, user: &user, stdio, pty })
        .map_err(|e| internal(format!("the process could not be started: {e}")))?;
    let (mut stdin, mut outputs, mut master) = (stdin, outputs, None);
    if let Some((ours, theirs)) = pty_socket {
        drop(theirs);
        // None when the process failed before opening its pty (it then exits 126).
        if let Some(fd) = receive_fd(&ours)
            && let (Ok(input), Ok(resize)) = (fd.try_clone(), fd.try_clone())
        {
            stdin = Some(File::from(input));
            master = Some(File::from(resize));
            outputs.push((fd, OutputStream::Stdout));
        }
    }
    let id = format!("proc-{}", nimbus_core::ids::mint_ulid());
    let proc = Proc::new(id, spec.owner.clone(), spec.tty, pid, StdinPort::new(stdin, spec.tty), master);
    shared.procs.add(Arc::clone(&proc));
    proc.watch(outputs, spec.timeout_ms.map(Duration::from_millis));
    if let Some(bytes) = spec.stdin.clone() {
        let proc = Arc::clone(&proc);
        std::thread::spawn(move || {
            let _ = proc.stdin.write(&bytes, true);
        });
    }
    Ok(proc.info())
}

/// One captured stream of a waited exec: (bytes, truncated), and its end-of-file signal.
type Captured = (Arc<Mutex<(Vec<u8>, bool)>>, std::sync::mpsc::Receiver<()>);

/// Runs `exec` inside the sandbox and waits for it (exec probes; stdin is `/dev/null`).
fn run_exec(shared: &Shared, exec: &ExecSpec) -> Result<ExecOutput, String> {
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let cwd = exec.cwd.clone().unwrap_or_else(|| shared.launch.cwd.clone());
    let stdio = [null_fd(false)?, out_w, err_w];
    let pid = launch(shared, Launch { argv: &exec.argv, env: &exec.env, cwd, user: &shared.user, stdio, pty: None })?;
    let max = exec.max_output_bytes;
    // Each stream is captured into a shared buffer, so a background child that keeps a pipe open
    // delays the answer by at most the drain time.
    let capture = |fd: OwnedFd| {
        let kept = Arc::new(Mutex::new((Vec::new(), false)));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let buffer = Arc::clone(&kept);
        std::thread::spawn(move || {
            let mut file = File::from(fd);
            let mut buf = [0u8; 16 * 1024];
            loop {
                match file.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut kept = buffer.lock().unwrap_or_else(|p| p.into_inner());
                        let room = max.saturating_sub(kept.0.len());
                        kept.0.extend_from_slice(&buf[..n.min(room)]);
                        kept.1 |= n > room;
                    }
                }
            }
            let _ = tx.send(());
        });
        (kept, rx)
    };
    let (out, err) = (capture(out_r), capture(err_r));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let timeout = Duration::from_millis(exec.timeout_ms);
    let killer = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
            let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
            let _ = kill(pid, Signal::SIGKILL);
        }
    });
    // Wait without reaping until the killer stood down, so it never signals a reused pid.
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::__WALL;
    while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitid(nix::sys::wait::Id::Pid(pid), flags) {}
    let _ = done_tx.send(());
    let _ = killer.join();
    let status = waitpid(pid, Some(WaitPidFlag::__WALL));
    let deadline = std::time::Instant::now() + Duration::from_millis(PROCESS_EXIT_DRAIN_MS);
    let take = |(kept, rx): Captured| {
        let _ = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
        std::mem::take(&mut *kept.lock().unwrap_or_else(|p| p.into_inner()))
    };
    let (stdout, t1) = take(out);
    let (stderr, t2) = take(err);
    let exit_code = match status {
        Ok(WaitStatus::Exited(_, code)) => code,
        Ok(WaitStatus::Signaled(_, signal, _)) => 128 + signal as i32,
        _ => -1,
    };
    Ok(ExecOutput { exit_code, stdout, stderr, truncated: t1 || t2 })
}

//! The Nimbus init: PID 1 of the sandbox, run by libcontainer as its `Executor` after
//! pivot_root, capability drop and the user switch.
//!
//! It makes itself non-dumpable, installs the seccomp filters (inherited by everything it
//! forks), forks the main process (which `execvp`s the argv), tells
//! the supervisor whether the exec worked, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2
//! to it, reaps orphans, and when the main process ends reports its wait status and exits (which
//! ends every other process of the sandbox's pid namespace).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};
use seccompiler::BpfProgram;

use super::spec::User;
use super::sys::{self, Forked};

/// Report tag: the main process exec'd; its pid (in the sandbox's pid namespace) follows.
pub const REPORT_EXEC_OK: u8 = b'O';
/// Report tag: the exec failed; an errno follows.
pub const REPORT_EXEC_FAILED: u8 = b'E';
/// Report tag: the main process exited with a code that follows.
pub const REPORT_EXITED: u8 = b'X';
/// Report tag: the main process was killed by the signal that follows.
pub const REPORT_SIGNALED: u8 = b'S';

/// Signals PID 1 forwards to the main process.
const FORWARDED: &[Signal] =
    &[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

/// One 5-byte report: a tag and a native-endian i32.
pub fn encode_report(tag: u8, value: i32) -> [u8; 5] {
    let v = value.to_ne_bytes();
    [tag, v[0], v[1], v[2], v[3]]
}

/// The sandbox's init, as a libcontainer executor.
#[derive(Clone)]
pub struct InitExecutor {
    /// The supervisor's report pipe (write end), inherited across libcontainer's forks.
    pub report_fd: RawFd,
    /// Whether stdio is a pty (the main process then becomes a session leader with it as its
    /// controlling terminal).
    pub terminal: bool,
    /// In terminal mode: a socket to the supervisor over which the init sends the pty master it
    /// opens inside the sandbox (so the pty belongs to the sandbox's own devpts).
    pub pty_socket: Option<RawFd>,
    /// The seccomp filters of the init and, through it, of the main process.
    pub filters: Vec<BpfProgram>,
}

/// The executor of exec processes (libcontainer's tenant mode): the sandbox's user namespace
/// and identity, optional pty, its own process group (or session, with a pty), seccomp, then
/// exec. A command that cannot be executed exits 127 (not found) or 126 with a one-line
/// explanation on stderr, as a shell would.
#[derive(Clone)]
pub struct ExecExecutor {
    /// The sandbox's user namespace (the supervisor's descriptor, inherited through
    /// libcontainer's forks). libcontainer's tenant mode joins every namespace of the sandbox but
    /// this one and starts the process as host root; the executor joins it first thing.
    pub userns: RawFd,
    /// Who the process runs as, in the sandbox's ids.
    pub user: User,
    /// The seccomp filters.
    pub filters: Vec<BpfProgram>,
    /// A pty to open inside the sandbox (its master goes to the supervisor).
    pub pty: Option<PtyRequest>,
}

/// Joins the sandbox's user namespace `userns` and becomes `user` there. Joining grants every
/// capability (bounding set included) within the namespace: the bounding set goes back to the
/// sandbox's before the identity changes, so the process ends with exactly what the sandbox's
/// own processes have.
fn become_sandbox_user(userns: RawFd, user: &User) -> Result<(), String> {
    use nix::unistd::{Gid, Uid};
    nix::sched::setns(borrow_raw_fd(userns), nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("join the sandbox's user namespace: {e}"))?;
    let _ = nix::unistd::close(userns);
    for capability in caps::all().into_iter().filter(|c| !super::spec::CAPABILITIES.contains(c)) {
        caps::drop(None, caps::CapSet::Bounding, capability).map_err(|e| format!("drop {capability}: {e}"))?;
    }
    let groups: Vec<Gid> = user.additional_gids.iter().map(|&g| Gid::from_raw(g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    let (uid, gid) = (Uid::from_raw(user.uid), Gid::from_raw(user.gid));
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid({gid}): {e}"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setresuid({uid}): {e}"))
}

/// A pty for an exec process.
#[derive(Clone, Copy)]
pub struct PtyRequest {
    /// Socket over which the master is sent to the supervisor.
    pub socket: RawFd,
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

fn args_of(spec: &Spec) -> Result<Vec<CString>, ExecutorError> {
    let args = spec.process().as_ref().and_then(|p| p.args().as_ref()).ok_or(ExecutorError::InvalidArg)?;
    let out: Result<Vec<CString>, _> = args.iter().map(|a| CString::new(a.as_bytes())).collect();
    let out = out.map_err(|_| ExecutorError::InvalidArg)?;
    if out.is_empty() {
        return Err(ExecutorError::InvalidArg);
    }
    Ok(out)
}

fn write_all(fd: RawFd, bytes: &[u8]) {
    let borrowed = borrow_raw_fd(fd);
    let mut done = 0;
    while done < bytes.len() {
        match nix::unistd::write(borrowed, &bytes[done..]) {
            Ok(n) => done += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn borrow_raw_fd(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    #[allow(unsafe_code)]
    // SAFETY: the fd is owned by this process for its whole life (the report pipe and stdio are
    // never closed while the init runs).
    unsafe {
        std::os::fd::BorrowedFd::borrow_raw(fd)
    }
}

/// Closes every descriptor above stderr except `keep`: the supervisor's descriptors (log files,
/// its socket) were inherited through libcontainer's forks and must not stay reachable through
/// `/proc/1/fd`.
fn close_stray_fds(keep: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<RawFd> =
        dir.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok())).collect();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Opens a pty in the sandbox's devpts, sends its master to the supervisor over `socket`, and
/// makes its slave this process's stdin, stdout and stderr (the main process inherits them).
fn open_pty_as_stdio(socket: RawFd, size: Option<(u16, u16)>) -> Result<(), String> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("posix_openpt: {e}"))?;
    nix::pty::grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    nix::pty::unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .map_err(|e| format!("open {name}: {e}"))?;
    if let Some((cols, rows)) = size {
        sys::set_window_size(slave.as_raw_fd(), cols, rows).map_err(|e| format!("set the pty size: {e}"))?;
    }
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(socket, &[std::io::IoSlice::new(b"p")], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .map_err(|e| format!("send the pty master: {e}"))?;
    drop(master);
    let _ = nix::unistd::close(socket);
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).map_err(|e| format!("dup2: {e}"))?;
    }
    Ok(())
}

fn blocked_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for &s in FORWARDED {
        set.add(s);
    }
    set
}

/// In a freshly forked child: default signal state, optional controlling terminal (else, with
/// `own_group`, a new process group), seccomp, exec. Only returns the errno of a failed exec.
fn exec_child(args: &[CString], terminal: bool, own_group: bool, filters: &[BpfProgram]) -> i32 {
    sys::reset_signal_dispositions();
    let _ = SigSet::empty().thread_set_mask();
    if terminal {
        let _ = nix::unistd::setsid();
        let _ = sys::set_controlling_terminal(0);
    } else if own_group {
        let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    }
    if seccomp_apply(filters).is_err() {
        return libc::EPERM;
    }
    match nix::unistd::execvp(&args[0], args) {
        Err(errno) => errno as i32,
        Ok(never) => match never {},
    }
}

fn seccomp_apply(filters: &[BpfProgram]) -> Result<(), String> {
    super::seccomp::apply(filters)
}

impl Executor for InitExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = args_of(spec)?;
        let mut keep = vec![self.report_fd];
        keep.extend(self.pty_socket);
        close_stray_fds(&keep);
        if let Some(socket) = self.pty_socket {
            open_pty_as_stdio(socket, None).map_err(ExecutorError::Other)?;
        }
        // Nothing in the sandbox may read the init's memory or environment (`/proc/1/environ`,
        // `/proc/1/mem`), and the init runs under the same filters as everything it starts.
        nix::sys::prctl::set_dumpable(false).map_err(|e| ExecutorError::Other(format!("PR_SET_DUMPABLE: {e}")))?;
        seccomp_apply(&self.filters).map_err(ExecutorError::Other)?;
        let blocked = blocked_set();
        let _ = blocked.thread_block();
        let (exec_read, exec_write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| ExecutorError::Other(e.to_string()))?;
        let child = match sys::fork().map_err(|e| ExecutorError::Other(e.to_string()))? {
            Forked::Child => {
                drop(exec_read);
                // The filters are inherited from the init.
                let errno = exec_child(&args, self.terminal, false, &[]);
                write_all(exec_write.as_raw_fd(), &errno.to_ne_bytes());
                sys::exit_now(127);
            }
            Forked::Parent(pid) => Pid::from_raw(pid),
        };
        drop(exec_write);
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match nix::unistd::read(exec_read.as_raw_fd(), &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        drop(exec_read);
        if got == 4 {
            write_all(self.report_fd, &encode_report(REPORT_EXEC_FAILED, i32::from_ne_bytes(buf)));
        } else {
            write_all(self.report_fd, &encode_report(REPORT_EXEC_OK, child.as_raw()));
        }
        loop {
            let signal = match blocked.wait() {
                Ok(s) => s,
                Err(_) => continue,
            };
            if signal != Signal::SIGCHLD {
                let _ = kill(child, signal);
                continue;
            }
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == child => {
                        write_all(self.report_fd, &encode_report(REPORT_EXITED, code));
                        sys::exit_now(0);
                    }
                    Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                        write_all(self.report_fd, &encode_report(REPORT_SIGNALED, signal as i32));
                        sys::exit_now(0);
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        }
    }

    fn validate(&self, _spec: &Spec) -> Result<(), ExecutorValidationError> {
        Ok(())
    }
}

impl Executor for ExecExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = args_of(spec)?;
        if let Err(message) = become_sandbox_user(self.userns, &self.user) {
            write_all(2, format!("nimbus: cannot enter the sandbox: {message}\n").as_bytes());
            sys::exit_now(126);
        }
        if let Some(pty) = self.pty
            && let Err(message) = open_pty_as_stdio(pty.socket, Some((pty.cols, pty.rows)))
        {
            write_all(2, format!("nimbus: cannot open a terminal: {message}\n").as_bytes());
            sys::exit_now(126);
        }
        let errno = exec_child(&args, self.pty.is_some(), true, &self.filters);
        let message = exec_error_message(&args[0].to_string_lossy(), errno);
        write_all(2, format!("nimbus: {message}\n").as_bytes());
        sys::exit_now(if errno == libc::ENOENT { 127 } else { 126 });
    }

    fn validate(&self, _spec: &Spec) -> Result<(), ExecutorValidationError> {
        Ok(())
    }
}

/// The `status.message` of a failed exec.
pub fn exec_error_message(program: &str, errno: i32) -> String {
    let err = nix::errno::Errno::from_raw(errno);
    match err {
        nix::errno::Errno::ENOENT => format!("executable `{program}` not found in the image (ENOENT)"),
        nix::errno::Errno::EACCES => format!("executable `{program}` is not executable (EACCES)"),
        other => format!("cannot execute `{program}`: {} ({other:?})", other.desc()),
    }
}

/// Takes ownership of a raw descriptor number inherited or created in this process.
pub fn owned(fd: RawFd) -> OwnedFd {
    #[allow(unsafe_code)]
    // SAFETY: callers pass descriptors they own exclusively.
    unsafe {
        OwnedFd::from_raw_fd(fd)
    }
}

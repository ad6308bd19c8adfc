//! The few raw process operations nix cannot offer safely, each in one small function.

use std::os::fd::RawFd;

/// What `fork` returned in this process.
pub enum Forked {
    /// In the parent: the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// `fork(2)`. Only call it where the child runs async-signal-safe-enough code (our init and
/// the exec helper run single-threaded).
#[allow(unsafe_code)]
pub fn fork() -> std::io::Result<Forked> {
    // SAFETY: the callers are single-threaded processes (the sandbox init), so no lock can be
    // held by another thread across the fork.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Makes the terminal on `fd` the controlling terminal of the calling session leader.
#[allow(unsafe_code)]
pub fn set_controlling_terminal(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; no memory is passed.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Resets every catchable signal's disposition to the default (Rust ignores SIGPIPE at start-up,
/// and ignored dispositions survive `exec`).
#[allow(unsafe_code)]
pub fn reset_signal_dispositions() {
    for signal in 1..32 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL involves no handler code; failures (invalid signals) are
        // harmless and ignored.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
}

/// `_exit(2)`: ends the process at once (no atexit handlers, no flushing of shared buffers).
#[allow(unsafe_code)]
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Sets the window size of the terminal on `fd` (a pty master or slave); the kernel then sends
/// SIGWINCH to the terminal's foreground process group.
#[allow(unsafe_code)]
pub fn set_window_size(fd: RawFd, cols: u16, rows: u16) -> std::io::Result<()> {
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one `winsize`, which lives on this stack frame for the call.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

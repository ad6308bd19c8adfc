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

/// `struct loop_info64` of `linux/loop.h`.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    size_limit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` of `linux/loop.h` (`LOOP_CONFIGURE`, Linux 5.8).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// Attaches `file` to a free loop device that clears itself once nothing holds it open; returns
/// the device's path and an open descriptor of it, which keeps it attached until the caller has
/// mounted it (the mount then holds it).
#[allow(unsafe_code)]
pub fn attach_loop(file: &std::fs::File) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::os::fd::AsRawFd;
    let control = std::fs::OpenOptions::new().read(true).write(true).open("/dev/loop-control")?;
    // Another process may take the free device first: ask again.
    for _ in 0..16 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number or -1.
        let number = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if number < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let path = std::path::PathBuf::from(format!("/dev/loop{number}"));
        let device = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
        // SAFETY: all-zero is the documented initial value of `loop_config` (unused fields must
        // be zero).
        let mut config: LoopConfig = unsafe { std::mem::zeroed() };
        config.fd = u32::try_from(file.as_raw_fd()).map_err(|_| std::io::Error::other("bad descriptor"))?;
        config.info.flags = LO_FLAGS_AUTOCLEAR;
        // SAFETY: `config` is a valid `loop_config` that outlives the call; the kernel only
        // reads it.
        if unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE, &config as *const LoopConfig) } == 0 {
            return Ok((path, device));
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EBUSY) {
            return Err(error);
        }
    }
    Err(std::io::Error::other("no free loop device"))
}

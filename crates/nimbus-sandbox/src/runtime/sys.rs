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
/// the exec helper run single-threaded; [`user_namespace`]'s child makes raw calls only).
#[allow(unsafe_code)]
pub fn fork() -> std::io::Result<Forked> {
    // SAFETY: the callers are single-threaded processes (the sandbox init), or children that
    // make raw system calls only, so no lock another thread held across the fork is taken.
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

/// A user namespace with `map` (`/proc/<pid>/uid_map` syntax) as both its uid and gid map, as a
/// descriptor: a child unshares it and parks, we write its maps, open `/proc/<child>/ns/user`
/// and end the child (the descriptor keeps the namespace alive).
#[allow(unsafe_code)]
pub fn user_namespace(map: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsRawFd;
    let (ready_read, ready_write) = nix::unistd::pipe()?;
    match fork()? {
        Forked::Child => {
            // Only async-signal-safe calls here: the supervisor may have other threads.
            // SAFETY: `unshare`, `write` and `pause` take no Rust-owned memory but the one byte
            // on this frame; the child never returns into Rust code.
            unsafe {
                let ok = [u8::from(libc::unshare(libc::CLONE_NEWUSER) == 0)];
                libc::write(ready_write.as_raw_fd(), ok.as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
        }
        Forked::Parent(pid) => {
            drop(ready_write);
            let made = (|| {
                let mut ok = [0u8];
                std::io::Read::read_exact(&mut std::fs::File::from(ready_read), &mut ok)?;
                if ok[0] != 1 {
                    return Err(std::io::Error::other("the child could not create a user namespace"));
                }
                std::fs::write(format!("/proc/{pid}/uid_map"), map)?;
                std::fs::write(format!("/proc/{pid}/gid_map"), map)?;
                Ok(std::os::fd::OwnedFd::from(std::fs::File::open(format!("/proc/{pid}/ns/user"))?))
            })();
            let child = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            made
        }
    }
}

/// Bind-mounts `source` on `target` as an idmapped mount with the maps of the user namespace
/// `userns` (`open_tree` clone, `mount_setattr` with `MOUNT_ATTR_IDMAP`, `move_mount`).
#[allow(unsafe_code)]
pub fn idmapped_bind(
    source: &std::path::Path,
    target: &std::path::Path,
    userns: std::os::fd::BorrowedFd<'_>,
) -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let path = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (source, target) = (path(source)?, path(target)?);
    let check = |result: libc::c_long| if result < 0 { Err(std::io::Error::last_os_error()) } else { Ok(result) };
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC as libc::c_uint;
    // SAFETY: `source` is a NUL-terminated path that outlives the call.
    let tree = check(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, source.as_ptr(), flags) })?;
    // SAFETY: `open_tree` returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as libc::c_int) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: `attr` is a valid `mount_attr` and the empty path a NUL-terminated string, both
    // outliving the call; the kernel only reads them.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    // SAFETY: as above; `target` is a NUL-terminated path outliving the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

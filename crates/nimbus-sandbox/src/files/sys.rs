//! The raw syscalls of the files layer: the two `open`s that must hand back an owned descriptor
//! (nix 0.29 returns bare integers), and `pidfd_open`, which nix 0.29 lacks. Everything else
//! goes through nix's safe wrappers.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// Turns a path into a C string; a NUL inside (only possible in a symlink target read back from
/// disk, never in a validated request path) is refused as `EINVAL`.
fn c_path(path: &[u8]) -> Result<CString, Errno> {
    CString::new(path).map_err(|_| Errno::EINVAL)
}

/// `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: `path` is resolved as if `root`
/// were `/`, so `..` and absolute symlinks cannot leave it, and `/proc` magic links are refused
/// (`ELOOP`). `ENOSYS` means the kernel (or a seccomp filter) lacks `openat2`.
pub fn openat2_in_root(root: BorrowedFd<'_>, path: &[u8], flags: libc::c_int) -> Result<OwnedFd, Errno> {
    let path = c_path(path)?;
    // SAFETY: `open_how` is a plain struct of integers for which all-zero is the documented
    // initial value (unknown fields must be zero).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `path` is a valid NUL-terminated string and `how` a valid `open_how` of the size
    // passed; both outlive the call. The kernel reads them and returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: a non-negative return of openat2 is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat(2)` relative to `dir` (always with `O_CLOEXEC`). Callers pass `O_NOFOLLOW` and a single
/// path component, or `..`/`.`, so no symlink is followed by the kernel.
pub fn openat(dir: BorrowedFd<'_>, path: &[u8], flags: libc::c_int, mode: libc::mode_t) -> Result<OwnedFd, Errno> {
    let path = c_path(path)?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call; the mode argument
    // is read only with O_CREAT and is a plain integer.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), path.as_ptr(), flags | libc::O_CLOEXEC, libc::c_uint::from(mode)) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a non-negative return of openat is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_open(2)`: a descriptor that refers to process `pid` for as long as it is held (it
/// never comes to mean another process that reuses the number) and becomes readable when the
/// process exits.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags (0) and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: a non-negative return of pidfd_open is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether the process of `pidfd` has exited, waiting up to `wait` for it (a pidfd becomes
/// readable when its process ends).
pub fn pidfd_exited(pidfd: &OwnedFd, wait: std::time::Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, timeout), Ok(n) if n > 0)
}

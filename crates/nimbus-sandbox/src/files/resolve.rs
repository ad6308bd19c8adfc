//! Confinement: resolving a path inside a sandbox root as if that root were `/`.
//!
//! Directories are resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on a
//! descriptor of the root (or, where `openat2` is missing, a component-by-component walk that
//! follows symlinks by hand inside the root). The last component is always handled by the
//! caller relative to its parent's descriptor, so every operation is `*at` on a descriptor that
//! lies inside the root; no host path is ever rebuilt from strings.
//!
//! After resolution, the parent (and the entry itself, when it is a directory) is checked
//! against the root's `/proc`, `/sys` and `/dev` by identity (device and inode), walking `..`
//! up to the root, and against procfs and sysfs by filesystem type.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, readlinkat};
use nix::sys::stat::{FileStat, SFlag, fstat, fstatat};
use nix::sys::statfs::{PROC_SUPER_MAGIC, SYSFS_MAGIC, fstatfs};

use super::{FileError, sys};

/// Most symlinks followed while resolving one path (Linux's own limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Deepest directory chain walked up while checking where a directory lies.
const MAX_DEPTH: usize = 4096;

/// Set once `openat2` answered `ENOSYS`: from then on, the manual walk is used.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// Tests force the manual walk on their own thread to cover the fallback.
    pub(super) static FORCE_WALK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A file's identity: device and inode.
type Id = (u64, u64);

fn id_of(stat: &FileStat) -> Id {
    (stat.st_dev, stat.st_ino)
}

/// Whether a stat describes a directory / a symlink.
pub(super) fn is_dir(stat: &FileStat) -> bool {
    stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()
}

/// Whether a stat describes a regular file.
pub(super) fn is_regular(stat: &FileStat) -> bool {
    stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits()
}

/// Why a resolution failed: an errno, or a confinement refusal.
#[derive(Debug)]
pub(super) enum Refusal {
    /// A syscall failed.
    Sys(&'static str, Errno),
    /// The path is, or resolves to, something that is not served.
    Invalid(&'static str),
}

impl Refusal {
    /// The file error for the request path `path`.
    pub fn into_error(self, path: &str) -> FileError {
        match self {
            Refusal::Sys(op, errno) => FileError::from_errno(op, path, errno),
            Refusal::Invalid(reason) => FileError::InvalidPath { path: path.to_owned(), reason: reason.to_owned() },
        }
    }
}

impl From<Errno> for Refusal {
    fn from(errno: Errno) -> Self {
        Refusal::Sys("resolve", errno)
    }
}

/// Where a path led.
pub(super) enum Located {
    /// The path resolved to a directory as a whole (`/`, or a symlink target ending in `..`, `.`
    /// or `/`): a descriptor of it (`O_PATH`).
    Dir(OwnedFd),
    /// An entry `name` (one component, not followed) in the directory `parent` (`O_PATH`), with
    /// its `lstat` if it exists.
    Entry { parent: OwnedFd, name: Vec<u8>, stat: Option<FileStat> },
}

/// An open sandbox root.
pub(super) struct Root {
    fd: OwnedFd,
    id: Id,
    /// Identities of the root's `/proc`, `/sys` and `/dev` directories (those that exist).
    forbidden: Vec<Id>,
    /// A pidfd of the process whose root this is, when pinned to one: readable once it exited.
    process: Option<OwnedFd>,
}

/// Opens `root` as an `O_PATH` directory (following the host path, which may be the magic link
/// `/proc/<pid>/root`).
pub(super) fn open_dir(root: &Path) -> Result<OwnedFd, FileError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)
        .map(OwnedFd::from)
        .map_err(|source| FileError::Io { op: "open sandbox root", path: root.display().to_string(), source })
}

/// Whether the process of a pidfd has exited (a pidfd becomes readable then); `None` never.
pub(super) fn exited(pidfd: Option<&OwnedFd>) -> bool {
    pidfd.is_some_and(|pidfd| super::sys::pidfd_exited(pidfd, std::time::Duration::ZERO))
}

impl Root {
    /// Takes an open root directory (and the pidfd of the process it belongs to, if pinned) and
    /// records what must never be reached inside it.
    pub fn new(fd: OwnedFd, process: Option<OwnedFd>) -> Result<Root, FileError> {
        let id = id_of(&fstat(fd.as_raw_fd()).map_err(|e| FileError::from_errno("stat sandbox root", "/", e))?);
        let forbidden = ["proc", "sys", "dev"]
            .iter()
            .filter_map(|name| fstatat(Some(fd.as_raw_fd()), *name, AtFlags::AT_SYMLINK_NOFOLLOW).ok())
            .filter(is_dir)
            .map(|stat| id_of(&stat))
            .collect();
        Ok(Root { fd, id, forbidden, process })
    }

    /// Whether the process this root is pinned to has exited (never, for an unpinned root).
    pub fn ended(&self) -> bool {
        exited(self.process.as_ref())
    }

    /// The root's own descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether an identity is one of the refused directories.
    pub fn is_forbidden(&self, stat: &FileStat) -> bool {
        self.forbidden.contains(&id_of(stat))
    }

    /// Resolves `path` (bytes, interpreted inside the root; may hold symlinks and `..`) to a
    /// directory descriptor (`O_PATH`).
    pub fn resolve_dir(&self, path: &[u8]) -> Result<OwnedFd, Refusal> {
        let path: &[u8] = if path.is_empty() { b"/" } else { path };
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        #[cfg(test)]
        if FORCE_WALK.with(std::cell::Cell::get) {
            return self.walk_dir(path);
        }
        if !OPENAT2_MISSING.load(Ordering::Relaxed) {
            for _ in 0..16 {
                match sys::openat2_in_root(self.fd(), path, flags) {
                    // A concurrent rename or mount raced the resolution: try again.
                    Err(Errno::EAGAIN) => continue,
                    Err(Errno::ENOSYS) => {
                        OPENAT2_MISSING.store(true, Ordering::Relaxed);
                        break;
                    }
                    // Too many symlinks, or a magic link.
                    Err(Errno::ELOOP) => return Err(Refusal::Invalid("has too many levels of symbolic links")),
                    Err(Errno::EXDEV) => return Err(Refusal::Invalid("resolves outside the sandbox root")),
                    other => return other.map_err(|e| Refusal::Sys("resolve", e)),
                }
            }
            if !OPENAT2_MISSING.load(Ordering::Relaxed) {
                return Err(Refusal::Sys("resolve", Errno::EAGAIN));
            }
        }
        self.walk_dir(path)
    }

    /// The fallback of [`Root::resolve_dir`]: walks one component at a time with `O_NOFOLLOW`,
    /// reading each symlink and splicing its target into the remaining path (absolute targets
    /// restart at the root, `..` pops the walked chain and stays at the root).
    fn walk_dir(&self, path: &[u8]) -> Result<OwnedFd, Refusal> {
        let mut chain: Vec<OwnedFd> = Vec::new();
        let mut pending: VecDeque<Vec<u8>> = components(path).collect();
        let mut hops = 0;
        while let Some(comp) = pending.pop_front() {
            if comp == b".." {
                chain.pop();
                continue;
            }
            let current = chain.last().map_or(self.fd(), AsFd::as_fd);
            let opened = sys::openat(current, &comp, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0);
            match opened {
                Ok(fd) => {
                    let stat = fstat(fd.as_raw_fd())?;
                    if is_dir(&stat) {
                        chain.push(fd);
                        continue;
                    }
                }
                Err(Errno::ENOTDIR | Errno::ELOOP) => {}
                Err(e) => return Err(Refusal::Sys("resolve", e)),
            }
            // Not a directory: a symlink to follow, or a dead end.
            let target = match readlinkat(Some(current.as_raw_fd()), comp.as_slice()) {
                Ok(target) => target,
                Err(Errno::EINVAL) => return Err(Refusal::Sys("resolve", Errno::ENOTDIR)),
                Err(e) => return Err(Refusal::Sys("resolve", e)),
            };
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(Refusal::Invalid("has too many levels of symbolic links"));
            }
            let target = target.as_bytes();
            if target.first() == Some(&b'/') {
                chain.clear();
            }
            for comp in components(target).collect::<Vec<_>>().into_iter().rev() {
                pending.push_front(comp);
            }
        }
        match chain.pop() {
            Some(fd) => Ok(fd),
            None => Ok(sys::openat(self.fd(), b".", libc::O_PATH | libc::O_DIRECTORY, 0)?),
        }
    }

    /// Checks that a directory lies inside the root and not in its `/proc`, `/sys` or `/dev`:
    /// walks `..` from it up to the root, comparing identities, and refuses procfs and sysfs.
    pub fn check_dir(&self, dir: BorrowedFd<'_>) -> Result<(), Refusal> {
        let fs_type = fstatfs(dir).map_err(|e| Refusal::Sys("statfs", e))?.filesystem_type();
        if fs_type == PROC_SUPER_MAGIC || fs_type == SYSFS_MAGIC {
            return Err(Refusal::Invalid("resolves into /proc or /sys"));
        }
        let mut current: Option<OwnedFd> = None;
        let mut id = id_of(&fstat(dir.as_raw_fd()).map_err(|e| Refusal::Sys("stat", e))?);
        for _ in 0..MAX_DEPTH {
            if self.forbidden.contains(&id) {
                return Err(Refusal::Invalid("resolves into /proc, /sys or /dev"));
            }
            if id == self.id {
                return Ok(());
            }
            let here = current.as_ref().map_or(dir, AsFd::as_fd);
            let up =
                sys::openat(here, b"..", libc::O_PATH | libc::O_DIRECTORY, 0).map_err(|e| Refusal::Sys("stat", e))?;
            let up_id = id_of(&fstat(up.as_raw_fd()).map_err(|e| Refusal::Sys("stat", e))?);
            if up_id == id {
                // A filesystem root that is not the sandbox root: the path left the sandbox.
                return Err(Refusal::Invalid("resolves outside the sandbox root"));
            }
            id = up_id;
            current = Some(up);
        }
        Err(Refusal::Invalid("is nested too deeply"))
    }

    /// Finds what `path` (a normalized absolute path) names. With `follow`, a final symlink is
    /// followed (repeatedly, inside the root); without, the entry itself is located. The parent
    /// is checked with [`Root::check_dir`], and an entry that is itself `/proc`, `/sys` or `/dev`
    /// is refused.
    pub fn locate(&self, path: &str, follow: bool) -> Result<Located, Refusal> {
        let mut path: Vec<u8> = path.as_bytes().to_vec();
        let mut hops = 0;
        loop {
            let split = path.iter().rposition(|b| *b == b'/').map_or(0, |i| i + 1);
            let (dir, last) = path.split_at(split);
            if matches!(last, b"" | b"." | b"..") {
                let fd = self.resolve_dir(&path)?;
                self.check_dir(fd.as_fd())?;
                return Ok(Located::Dir(fd));
            }
            let parent = self.resolve_dir(dir)?;
            if follow {
                match readlinkat(Some(parent.as_raw_fd()), last) {
                    Ok(target) => {
                        hops += 1;
                        if hops > MAX_SYMLINK_HOPS {
                            return Err(Refusal::Invalid("has too many levels of symbolic links"));
                        }
                        let target = target.as_bytes();
                        path = if target.first() == Some(&b'/') {
                            target.to_vec()
                        } else {
                            let mut joined = dir.to_vec();
                            joined.extend_from_slice(target);
                            joined
                        };
                        continue;
                    }
                    // Not a symlink, or nothing there yet.
                    Err(Errno::EINVAL | Errno::ENOENT) => {}
                    Err(e) => return Err(Refusal::Sys("readlink", e)),
                }
            }
            self.check_dir(parent.as_fd())?;
            let stat = match fstatat(Some(parent.as_raw_fd()), last, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => Some(stat),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(Refusal::Sys("stat", e)),
            };
            if stat.as_ref().is_some_and(|stat| self.is_forbidden(stat)) {
                return Err(Refusal::Invalid("resolves into /proc, /sys or /dev"));
            }
            let name = last.to_vec();
            return Ok(Located::Entry { parent, name, stat });
        }
    }
}

/// The non-empty, non-`.` components of a path.
fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".").map(<[u8]>::to_vec)
}

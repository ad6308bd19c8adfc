//! Confined file access inside a sandbox root (the session `files` channel, sessions.md §8).
//!
//! Every function takes `root`, the host path of the sandbox's root directory (in production
//! `/proc/<pid>/root` of the sandbox's main process), and a request `path` as the sandbox sees
//! it. The path is validated and normalized lexically ([`path`]), then resolved with every
//! symlink interpreted as if `root` were `/` ([`resolve`]): `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`, or a manual walk where the kernel lacks it. All work is done with
//! `*at` syscalls on descriptors obtained that way. `/proc`, `/sys` and `/dev`, named or reached
//! through symlinks, are refused.
//!
//! The functions block (they do file I/O); async callers run them on a blocking thread.

mod error;
mod path;
mod resolve;
pub(crate) mod sys;
#[cfg(test)]
mod tests;

use std::collections::BinaryHeap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nimbus_core::limits::{SESSION_FILE_LIST_MAX_ENTRIES, SESSION_FILE_MAX_BYTES};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, readlinkat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};

pub use error::FileError;
use path::{NormPath, normalize};
use resolve::{Located, Root, is_dir, is_regular};

/// The per-request size limit as a `u64`.
const MAX_BYTES: u64 = SESSION_FILE_MAX_BYTES as u64;

/// Mode of files created without an explicit mode.
const DEFAULT_FILE_MODE: u32 = 0o644;

/// Mode of parent directories created by [`write`].
const PARENT_DIR_MODE: u32 = 0o755;

/// A running sandbox's root pinned to its init process: a pidfd taken first, then the root
/// directory opened through `/proc/<pid>/root`. The directory descriptor keeps naming that
/// sandbox's root even if the pid is reused later, and the pidfd tells when the sandbox ended:
/// a write checks it before its final rename, so an upload into a sandbox that ends meanwhile
/// fails instead of completing, and no byte can land in another process's root.
pub struct SandboxRoot {
    dir: OwnedFd,
    /// The pidfd of the process whose root this is; `None` for a plain directory.
    process: Option<OwnedFd>,
}

impl SandboxRoot {
    /// A plain directory as a root (tools and tests): never ends.
    pub fn open(dir: &Path) -> Result<SandboxRoot, FileError> {
        Ok(SandboxRoot { dir: resolve::open_dir(dir)?, process: None })
    }

    /// Pins the root of process `pid`. The caller checks afterwards that `pid` is still the
    /// sandbox's init ([`SandboxRoot::ended`] false and the process's parent the supervisor),
    /// which makes the pin the sandbox's: a pidfd cannot come to mean another process.
    pub fn of_process(pid: i32) -> Result<SandboxRoot, FileError> {
        let process = sys::pidfd_open(pid).map_err(|e| FileError::from_errno("pidfd_open", "/", e))?;
        let dir = resolve::open_dir(Path::new(&format!("/proc/{pid}/root")))?;
        Ok(SandboxRoot { dir, process: Some(process) })
    }

    /// Whether the pinned process has exited (never, for a plain directory).
    pub fn ended(&self) -> bool {
        resolve::exited(self.process.as_ref())
    }

    /// Opens the root for one operation.
    fn open_root(&self) -> Result<Root, FileError> {
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| FileError::from_errno("dup", "/", io_errno(&e)));
        Root::new(dup(&self.dir)?, self.process.as_ref().map(dup).transpose()?)
    }
}

impl std::fmt::Debug for SandboxRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxRoot").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else: sockets, FIFOs, devices.
    Other,
}

impl FileKind {
    /// The wire form: `file`, `dir`, `symlink` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Other => "other",
        }
    }

    fn of(stat: &FileStat) -> FileKind {
        let fmt = stat.st_mode & SFlag::S_IFMT.bits();
        if fmt == SFlag::S_IFREG.bits() {
            FileKind::File
        } else if fmt == SFlag::S_IFDIR.bits() {
            FileKind::Dir
        } else if fmt == SFlag::S_IFLNK.bits() {
            FileKind::Symlink
        } else {
            FileKind::Other
        }
    }
}

/// What `stat`, `read`, `write` and `list` report about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The normalized absolute path inside the sandbox (for list entries: the listed
    /// directory's path joined with `name`).
    pub path: String,
    /// The last component (`/` for the root). Names that are not UTF-8 are shown lossily.
    pub name: String,
    /// What the path names.
    pub kind: FileKind,
    /// Size in bytes (for a symlink: the length of its target).
    pub size: u64,
    /// Permission bits including setuid, setgid and sticky (`0o7777` at most); rendered as a
    /// 4-digit octal string on the wire.
    pub mode: u32,
    /// Last modification, in ms since the Unix epoch.
    pub modified_at_ms: i64,
    /// The target of a symlink, as stored (not resolved).
    pub target: Option<String>,
}

impl FileInfo {
    fn from_stat(path: String, name: String, stat: &FileStat, target: Option<String>) -> FileInfo {
        FileInfo {
            path,
            name,
            kind: FileKind::of(stat),
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mode: stat.st_mode & 0o7777,
            modified_at_ms: stat.st_mtime.saturating_mul(1000).saturating_add(stat.st_mtime_nsec / 1_000_000),
            target,
        }
    }
}

/// Describes `path` without following a final symlink (a symlink reports its `target`).
pub fn stat(root: &SandboxRoot, path: &str) -> Result<FileInfo, FileError> {
    let norm = normalize(path)?;
    let text = norm.text();
    let root = root.open_root()?;
    match root.locate(&text, false).map_err(|r| r.into_error(&text))? {
        Located::Dir(fd) => {
            let stat = fstat(fd.as_raw_fd()).map_err(|e| FileError::from_errno("stat", &text, e))?;
            Ok(FileInfo::from_stat(text, norm.name(), &stat, None))
        }
        Located::Entry { stat: None, .. } => Err(FileError::NotFound { path: text }),
        Located::Entry { parent, name, stat: Some(stat) } => {
            let target = link_target(&parent, &name, &stat);
            Ok(FileInfo::from_stat(text, norm.name(), &stat, target))
        }
    }
}

/// Reads a regular file, following symlinks: `length` bytes (or to the end) from `offset`.
/// An offset past the end reads nothing. Without `length`, a file whose remainder from `offset`
/// exceeds the per-request limit is refused with [`FileError::TooLarge`] (`size` = the file's
/// size); with a `length` above the limit, likewise (`size` = the range that would be read).
pub fn read(
    root: &SandboxRoot,
    path: &str,
    offset: u64,
    length: Option<u64>,
) -> Result<(FileInfo, Vec<u8>), FileError> {
    let norm = normalize(path)?;
    let text = norm.text();
    let root = root.open_root()?;
    let (parent, name, stat) = match root.locate(&text, true).map_err(|r| r.into_error(&text))? {
        Located::Dir(_) => return Err(FileError::IsDirectory { path: text }),
        Located::Entry { stat: None, .. } => return Err(FileError::NotFound { path: text }),
        Located::Entry { parent, name, stat: Some(stat) } => (parent, name, stat),
    };
    check_readable(&text, &stat)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    let fd = sys::openat(parent.as_fd(), &name, flags, 0).map_err(|e| FileError::from_errno("open", &text, e))?;
    let stat = fstat(fd.as_raw_fd()).map_err(|e| FileError::from_errno("stat", &text, e))?;
    check_readable(&text, &stat)?;
    let info = FileInfo::from_stat(text.clone(), norm.name(), &stat, None);
    let available = info.size.saturating_sub(offset);
    let wanted = match length {
        None if available > MAX_BYTES => return Err(FileError::TooLarge { size: info.size, limit: MAX_BYTES }),
        None => available,
        Some(length) => {
            let wanted = length.min(available);
            if wanted > MAX_BYTES {
                return Err(FileError::TooLarge { size: wanted, limit: MAX_BYTES });
            }
            wanted
        }
    };
    let file = std::fs::File::from(fd);
    let mut bytes = vec![0u8; usize::try_from(wanted).unwrap_or(SESSION_FILE_MAX_BYTES)];
    let mut filled = 0;
    while filled < bytes.len() {
        match file.read_at(&mut bytes[filled..], offset + filled as u64) {
            // The file shrank meanwhile.
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(FileError::Io { op: "read", path: text, source }),
        }
    }
    bytes.truncate(filled);
    Ok((info, bytes))
}

/// Refuses what `read` must not open: directories, and anything that is not a regular file
/// (FIFOs would block, devices could do anything).
fn check_readable(path: &str, stat: &FileStat) -> Result<(), FileError> {
    if is_dir(stat) {
        return Err(FileError::IsDirectory { path: path.to_owned() });
    }
    if !is_regular(stat) {
        return Err(FileError::InvalidPath { path: path.to_owned(), reason: "is not a regular file".into() });
    }
    Ok(())
}

/// Writes a whole file, following symlinks (a symlink's target is replaced, inside the root).
/// Missing parent directories are created (`0755`, owned by `owner`). The content goes to a
/// temporary file in the same directory that is renamed over the path, so readers see the old
/// or the new content, never a mix. The mode is `mode` if given, else the replaced file's, else
/// `0644`; the owner is `owner` (host-side ids) if given, else the replaced file's.
pub fn write(
    root: &SandboxRoot,
    path: &str,
    bytes: &[u8],
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
) -> Result<FileInfo, FileError> {
    let norm = normalize(path)?;
    let text = norm.text();
    if bytes.len() > SESSION_FILE_MAX_BYTES {
        return Err(FileError::TooLarge { size: bytes.len() as u64, limit: MAX_BYTES });
    }
    if norm.is_root() {
        return Err(FileError::IsDirectory { path: text });
    }
    let root = root.open_root()?;
    // A sandbox that ended mid-request may fail any step (its root is being torn down): that
    // is reported as its end, not as the step's error.
    write_in(&root, &norm, bytes, mode, owner).map_err(|err| match err {
        _ if root.ended() => FileError::SandboxEnded { path: norm.text() },
        err => err,
    })
}

/// [`write`] in an open root.
fn write_in(
    root: &Root,
    norm: &NormPath,
    bytes: &[u8],
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
) -> Result<FileInfo, FileError> {
    let text = norm.text();
    create_parents(root, norm, owner)?;
    let (parent, name, existing) = match root.locate(&text, true).map_err(|r| r.into_error(&text))? {
        Located::Dir(_) => return Err(FileError::IsDirectory { path: text }),
        Located::Entry { parent, name, stat } => (parent, name, stat),
    };
    if existing.as_ref().is_some_and(is_dir) {
        return Err(FileError::IsDirectory { path: text });
    }
    let existing = existing.filter(is_regular);
    let mode = mode.or(existing.as_ref().map(|stat| stat.st_mode)).unwrap_or(DEFAULT_FILE_MODE) & 0o7777;
    let owner = owner.or(existing.as_ref().map(|stat| (stat.st_uid, stat.st_gid)));

    let temp = temp_name();
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let fd = sys::openat(parent.as_fd(), &temp, flags, 0o600).map_err(|e| FileError::from_errno("create", &text, e))?;
    let result =
        fill_temp(fd, bytes, mode, owner).map_err(|(op, e)| FileError::from_errno(op, &text, e)).and_then(|stat| {
            // Only into a sandbox that still runs: one that ended meanwhile gets nothing.
            if root.ended() {
                return Err(FileError::SandboxEnded { path: text.clone() });
            }
            renameat(Some(parent.as_raw_fd()), temp.as_slice(), Some(parent.as_raw_fd()), name.as_slice())
                .map(|()| stat)
                .map_err(|e| FileError::from_errno("rename", &text, e))
        });
    match result {
        Ok(stat) => Ok(FileInfo::from_stat(text, norm.name(), &stat, None)),
        Err(err) => {
            let _ = unlinkat(Some(parent.as_raw_fd()), temp.as_slice(), UnlinkatFlags::NoRemoveDir);
            Err(err)
        }
    }
}

/// Writes the content, owner and mode of a fresh temporary file (mode last: `chown` clears the
/// setuid and setgid bits).
fn fill_temp(
    fd: OwnedFd,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<FileStat, (&'static str, Errno)> {
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).map_err(|e| ("write", io_errno(&e)))?;
    if let Some((uid, gid)) = owner {
        let stat = fstat(file.as_raw_fd()).map_err(|e| ("stat", e))?;
        if (stat.st_uid, stat.st_gid) != (uid, gid) {
            fchown(file.as_raw_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(|e| ("chown", e))?;
        }
    }
    fchmod(file.as_raw_fd(), Mode::from_bits_truncate(mode)).map_err(|e| ("chmod", e))?;
    fstat(file.as_raw_fd()).map_err(|e| ("stat", e))
}

fn io_errno(err: &std::io::Error) -> Errno {
    err.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// A fresh name for a temporary file (unique per process and call).
fn temp_name() -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".nimbus-write-{}-{nanos}-{n}.tmp", std::process::id()).into_bytes()
}

/// Creates the missing parent directories of `path` (`mkdir -p` of its lexical parent), each
/// `0755` and owned by `owner`. Each one is made in the resolved, checked directory above it.
fn create_parents(root: &Root, path: &NormPath, owner: Option<(u32, u32)>) -> Result<(), FileError> {
    let depth = path.comps.len() - 1;
    let dir_text = path.prefix(depth).text();
    match root.resolve_dir(dir_text.as_bytes()) {
        Ok(_) => return Ok(()),
        Err(resolve::Refusal::Sys(_, Errno::ENOENT)) => {}
        Err(refusal) => return Err(refusal.into_error(&dir_text)),
    }
    let mut above = root.resolve_dir(b"/").map_err(|r| r.into_error("/"))?;
    for n in 1..=depth {
        let here = path.prefix(n).text();
        match root.resolve_dir(here.as_bytes()) {
            Ok(fd) => {
                above = fd;
                continue;
            }
            Err(resolve::Refusal::Sys(_, Errno::ENOENT)) => {}
            Err(refusal) => return Err(refusal.into_error(&here)),
        }
        root.check_dir(above.as_fd()).map_err(|r| r.into_error(&here))?;
        let name = path.comps[n - 1].as_str();
        match mkdirat(Some(above.as_raw_fd()), name, Mode::from_bits_truncate(PARENT_DIR_MODE)) {
            // Made by someone else meanwhile (or a dangling symlink, which resolving reports).
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(FileError::from_errno("mkdir", &here, e)),
        }
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        if let Ok(made) = sys::openat(above.as_fd(), name.as_bytes(), flags, 0) {
            if let Some((uid, gid)) = owner {
                fchown(made.as_raw_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                    .map_err(|e| FileError::from_errno("chown", &here, e))?;
            }
            fchmod(made.as_raw_fd(), Mode::from_bits_truncate(PARENT_DIR_MODE))
                .map_err(|e| FileError::from_errno("chmod", &here, e))?;
        }
        above = root.resolve_dir(here.as_bytes()).map_err(|r| r.into_error(&here))?;
    }
    Ok(())
}

/// Deletes what `path` names without following a final symlink (a symlink itself is removed).
/// A non-empty directory needs `recursive`. `/` cannot be deleted.
pub fn delete(root: &SandboxRoot, path: &str, recursive: bool) -> Result<(), FileError> {
    let norm = normalize(path)?;
    let text = norm.text();
    if norm.is_root() {
        return Err(FileError::InvalidPath { path: text, reason: "the root directory cannot be deleted".into() });
    }
    let root = root.open_root()?;
    let (parent, name, stat) = match root.locate(&text, false).map_err(|r| r.into_error(&text))? {
        Located::Dir(_) => {
            return Err(FileError::InvalidPath { path: text, reason: "does not name a directory entry".into() });
        }
        Located::Entry { stat: None, .. } => return Err(FileError::NotFound { path: text }),
        Located::Entry { parent, name, stat: Some(stat) } => (parent, name, stat),
    };
    if !is_dir(&stat) {
        return unlinkat(Some(parent.as_raw_fd()), name.as_slice(), UnlinkatFlags::NoRemoveDir)
            .map_err(|e| FileError::from_errno("unlink", &text, e));
    }
    if recursive {
        remove_tree(&root, &parent, &name).map_err(|r| r.into_error(&text))
    } else {
        match unlinkat(Some(parent.as_raw_fd()), name.as_slice(), UnlinkatFlags::RemoveDir) {
            Err(Errno::ENOTEMPTY | Errno::EEXIST) => Err(FileError::DirectoryNotEmpty { path: text }),
            other => other.map_err(|e| FileError::from_errno("rmdir", &text, e)),
        }
    }
}

/// Removes the directory `name` in `parent` and everything below it, by descriptor (symlinks
/// inside are removed, never followed).
fn remove_tree(root: &Root, parent: &OwnedFd, name: &[u8]) -> Result<(), resolve::Refusal> {
    use resolve::Refusal;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let fd = sys::openat(parent.as_fd(), name, flags, 0).map_err(|e| Refusal::Sys("open", e))?;
    let stat = fstat(fd.as_raw_fd()).map_err(|e| Refusal::Sys("stat", e))?;
    if root.is_forbidden(&stat) {
        return Err(Refusal::Invalid("contains /proc, /sys or /dev"));
    }
    // A few passes, in case entries are created while the tree is removed.
    for _ in 0..3 {
        let dup = sys::openat(fd.as_fd(), b".", flags, 0).map_err(|e| Refusal::Sys("open", e))?;
        let mut dir = Dir::from(dup).map_err(|e| Refusal::Sys("opendir", e))?;
        let names: Vec<Vec<u8>> = dir
            .iter()
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_bytes().to_vec())
            .filter(|n| n != b"." && n != b"..")
            .collect();
        drop(dir);
        if names.is_empty() {
            break;
        }
        for child in names {
            let stat = match fstatat(Some(fd.as_raw_fd()), child.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(Refusal::Sys("stat", e)),
            };
            if is_dir(&stat) {
                remove_tree(root, &fd, &child)?;
            } else {
                match unlinkat(Some(fd.as_raw_fd()), child.as_slice(), UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(e) => return Err(Refusal::Sys("unlink", e)),
                }
            }
        }
    }
    drop(fd);
    unlinkat(Some(parent.as_raw_fd()), name, UnlinkatFlags::RemoveDir).map_err(|e| Refusal::Sys("rmdir", e))
}

/// Lists a directory (following symlinks to it): entries sorted by name (bytewise), at most
/// the list limit; `truncated` says whether more exist. Entries are not followed (a symlink
/// entry reports its `target`).
pub fn list(root: &SandboxRoot, path: &str) -> Result<(Vec<FileInfo>, bool), FileError> {
    let norm = normalize(path)?;
    let text = norm.text();
    let root = root.open_root()?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY;
    let fd = match root.locate(&text, true).map_err(|r| r.into_error(&text))? {
        Located::Dir(fd) => sys::openat(fd.as_fd(), b".", flags, 0),
        Located::Entry { stat: None, .. } => return Err(FileError::NotFound { path: text }),
        Located::Entry { stat: Some(stat), .. } if !is_dir(&stat) => {
            return Err(FileError::NotADirectory { path: text });
        }
        Located::Entry { parent, name, .. } => sys::openat(parent.as_fd(), &name, flags | libc::O_NOFOLLOW, 0),
    };
    let fd = fd.map_err(|e| match e {
        Errno::ELOOP => FileError::NotADirectory { path: text.clone() },
        e => FileError::from_errno("open", &text, e),
    })?;
    root.check_dir(fd.as_fd()).map_err(|r| r.into_error(&text))?;

    // Keep the smallest names only: a max-heap bounded to the limit.
    let listed = sys::openat(fd.as_fd(), b".", flags, 0).map_err(|e| FileError::from_errno("open", &text, e))?;
    let mut dir = Dir::from(listed).map_err(|e| FileError::from_errno("opendir", &text, e))?;
    let mut names: BinaryHeap<Vec<u8>> = BinaryHeap::new();
    let mut truncated = false;
    for entry in dir.iter() {
        let entry = entry.map_err(|e| FileError::from_errno("readdir", &text, e))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(name.to_vec());
        if names.len() > SESSION_FILE_LIST_MAX_ENTRIES {
            names.pop();
            truncated = true;
        }
    }
    drop(dir);

    let mut entries = Vec::with_capacity(names.len());
    for name in names.into_sorted_vec() {
        let stat = match fstatat(Some(fd.as_raw_fd()), name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Removed since it was read.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(FileError::from_errno("stat", &text, e)),
        };
        let target = link_target(&fd, &name, &stat);
        let shown = String::from_utf8_lossy(&name).into_owned();
        entries.push(FileInfo::from_stat(norm.child(&shown), shown, &stat, target));
    }
    Ok((entries, truncated))
}

/// The target of a symlink entry (`None` for anything else, or if it cannot be read).
fn link_target(dir: &OwnedFd, name: &[u8], stat: &FileStat) -> Option<String> {
    if FileKind::of(stat) != FileKind::Symlink {
        return None;
    }
    readlinkat(Some(dir.as_raw_fd()), name).ok().map(|target| String::from_utf8_lossy(target.as_bytes()).into_owned())
}

//! A sandbox's writable root on a file system of its own: a sparse ext4 image of
//! `diskLimitBytes` in the state directory (copied from a formatted template of that size, made
//! once), mounted through a loop device inside the supervisor's mount namespace, holding the
//! overlay's upper and work directories. The kernel
//! enforces the size: past it the sandbox gets `ENOSPC`, and the host spends at most the image's
//! size. The mount dies with the supervisor's namespace, and the loop device (set up with
//! autoclear) detaches with it, so a killed supervisor leaves only the image file, which the
//! state's removal deletes.

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::MsFlags;

use super::layout::Layout;

/// Where the tools are looked up: the supervisor runs with a cleared environment.
const TOOL_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Where formatted empty images are kept, one per size, next to the sandboxes' state
/// directories (a dot name is never a sandbox id).
const TEMPLATES: &str = ".disk-templates";

/// Creates the image (a sparse copy of a formatted template of its size), attaches it to a
/// loop device and mounts it; returns the overlay's upper and work directories on it.
pub fn mount(layout: &Layout, bytes: u64) -> Result<(PathBuf, PathBuf), String> {
    let image = layout.disk_image();
    let templates = layout.dir.parent().map(|root| root.join(TEMPLATES)).ok_or("the state directory has no parent")?;
    let template = template(&templates, bytes)?;
    copy_sparse(&template, &image).map_err(|e| format!("create the disk image: {e}"))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .map_err(|e| format!("open the disk image: {e}"))?;
    let (device, attached) = super::sys::attach_loop(&file).map_err(|e| format!("attach a loop device: {e}"))?;
    let mountpoint = layout.disk();
    std::fs::create_dir_all(&mountpoint).map_err(|e| format!("create the disk mount point: {e}"))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOATIME;
    nix::mount::mount(Some(&device), &mountpoint, Some("ext4"), flags, None::<&str>)
        .map_err(|e| format!("mount the disk: {e}"))?;
    // The mount holds the device now; it clears itself when the mount goes.
    drop(attached);
    let (upper, work) = (mountpoint.join("upper"), mountpoint.join("work"));
    for dir in [&upper, &work] {
        std::fs::create_dir(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    Ok((upper, work))
}

/// The formatted empty image of `bytes`, made once per size. No journal (a sandbox's disk does
/// not outlive it), no reserved blocks, inode tables initialised lazily: a few MiB of metadata.
fn template(dir: &Path, bytes: u64) -> Result<PathBuf, String> {
    let path = dir.join(format!("{bytes}.img"));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    // Made aside and renamed into place: a concurrent start never sees half an image.
    let partial = dir.join(format!(".{bytes}.{}.img", std::process::id()));
    let file = std::fs::File::create(&partial).map_err(|e| format!("create a disk template: {e}"))?;
    file.set_len(bytes).map_err(|e| format!("size a disk template: {e}"))?;
    drop(file);
    let made = run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1,nodiscard"])
        .arg(&partial))
    .and_then(|()| std::fs::rename(&partial, &path).map_err(|e| format!("store a disk template: {e}")));
    if made.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    made.map(|()| path)
}

/// Copies the data of a sparse file, keeping its holes (`SEEK_DATA`/`SEEK_HOLE`, then
/// `copy_file_range` per extent), into a new file of the same length.
fn copy_sparse(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;

    use nix::unistd::{Whence, lseek};
    let source = std::fs::File::open(from)?;
    let target = std::fs::File::create_new(to)?;
    let length = i64::try_from(source.metadata()?.len()).map_err(std::io::Error::other)?;
    let mut at = 0i64;
    while at < length {
        let start = match lseek(source.as_raw_fd(), at, Whence::SeekData) {
            Ok(start) => start,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let end = lseek(source.as_raw_fd(), start, Whence::SeekHole)?;
        let (mut from_at, mut to_at) = (start, start);
        while from_at < end {
            let left = usize::try_from(end - from_at).map_err(std::io::Error::other)?;
            if nix::fcntl::copy_file_range(&source, Some(&mut from_at), &target, Some(&mut to_at), left)? == 0 {
                return Err(std::io::Error::other("the template ended early"));
            }
        }
        at = end;
    }
    target.set_len(u64::try_from(length).map_err(std::io::Error::other)?)
}

/// Unmounts the disk (lazily: the sandbox's last references may still be going away); the loop
/// device detaches when the file system is released.
pub fn unmount(layout: &Layout) {
    let _ = nix::mount::umount2(&layout.disk(), nix::mount::MntFlags::MNT_DETACH);
}

/// Bytes an unprivileged writer may still use on the file system holding `path`; `None` when
/// it cannot be asked.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    Some(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

/// Runs a tool to completion; its stderr is the error.
fn run(command: &mut Command) -> Result<(), String> {
    let program = Path::new(command.get_program()).display().to_string();
    let output = command
        .env_clear()
        .env("PATH", TOOL_PATH)
        .output()
        .map_err(|e| format!("run {program} (e2fsprogs and util-linux must be installed): {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!("{program} failed: {}", String::from_utf8_lossy(&output.stderr).trim()))
}

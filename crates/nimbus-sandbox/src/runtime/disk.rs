//! A sandbox's writable root on a file system of its own: a sparse ext4 image of
//! `diskLimitBytes` in the state directory, mounted through a loop device inside the
//! supervisor's mount namespace, holding the overlay's upper and work directories. The kernel
//! enforces the size: past it the sandbox gets `ENOSPC`, and the host spends at most the image's
//! size. The mount dies with the supervisor's namespace, and the loop device (set up with
//! autoclear) detaches with it, so a killed supervisor leaves only the image file, which the
//! state's removal deletes.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::layout::Layout;

/// Where the tools are looked up: the supervisor runs with a cleared environment.
const TOOL_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Creates the image, makes its file system and mounts it; returns the overlay's upper and work
/// directories on it.
pub fn mount(layout: &Layout, bytes: u64) -> Result<(PathBuf, PathBuf), String> {
    let image = layout.disk_image();
    let file = std::fs::File::create_new(&image).map_err(|e| format!("create the disk image: {e}"))?;
    file.set_len(bytes).map_err(|e| format!("size the disk image: {e}"))?;
    drop(file);
    // No journal (the sandbox's disk does not outlive it), no reserved blocks, inode tables
    // initialised lazily: a few MiB of metadata, written in milliseconds.
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1,nodiscard"])
        .arg(&image))?;
    let mountpoint = layout.disk();
    std::fs::create_dir_all(&mountpoint).map_err(|e| format!("create the disk mount point: {e}"))?;
    // mount(8) finds a free loop device and sets it to detach when unmounted.
    run(Command::new("mount").args(["-t", "ext4", "-o", "loop,nosuid,nodev,noatime"]).arg(&image).arg(&mountpoint))?;
    let (upper, work) = (mountpoint.join("upper"), mountpoint.join("work"));
    for dir in [&upper, &work] {
        std::fs::create_dir(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    Ok((upper, work))
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

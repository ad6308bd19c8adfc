//! Cleanup of a sandbox whose supervisor is gone: kill what is left in its cgroup, remove the
//! cgroup directories and the writable layer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nimbus_core::limits::SANDBOX_CGROUP_DRAIN_MS;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::layout::Layout;

/// The cgroup filesystem root.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Every existing cgroup directory of sandbox `id` (one per v1 controller, plus unified).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = Path::new(CGROUP_ROOT);
    let direct = root.join("nimbus").join(id);
    if direct.is_dir() {
        out.push(direct);
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let dir = entry.path().join("nimbus").join(id);
            if dir.is_dir() && !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

/// Pids in the sandbox's cgroups.
fn cgroup_pids(id: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for dir in cgroup_dirs(id) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
    }
    pids
}

/// SIGKILLs every process of the sandbox's cgroups until none is left (bounded), then removes
/// the cgroup directories. Returns whether everything went.
pub fn kill_and_remove_cgroups(id: &str) -> bool {
    let deadline = Instant::now() + Duration::from_millis(SANDBOX_CGROUP_DRAIN_MS);
    loop {
        let pids = cgroup_pids(id);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if Instant::now() > deadline {
            tracing::warn!(id, "processes of a sandbox's cgroup did not go away");
            return false;
        }
        // Killed processes leave the cgroup once their parent reaps them; there is no event to
        // wait on across the cgroup hierarchy here, so re-check shortly.
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut all = true;
    for dir in cgroup_dirs(id) {
        if let Err(err) = remove_cgroup_tree(&dir) {
            tracing::warn!(%err, dir = %dir.display(), "cannot remove a sandbox cgroup");
            all = false;
        }
    }
    all
}

fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&entry.path())?;
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

fn remove_dir_all_quiet(path: &Path) {
    match std::fs::remove_dir_all(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(%err, path = %path.display(), "cannot remove sandbox state");
        }
        _ => {}
    }
}

/// Removes the writable layer, the mount point and libcontainer's state (keeps logs, exit and
/// the socket).
pub fn remove_writable(layout: &Layout) {
    // In the host's mount namespace nothing here was ever mounted; a stale mount would only
    // exist in a namespace that died with its processes.
    remove_dir_all_quiet(&layout.upper());
    remove_dir_all_quiet(&layout.work());
    remove_dir_all_quiet(&layout.container());
    remove_dir_all_quiet(&layout.disk());
    // The image's mount point in the supervisor's namespace: never emptied recursively (from
    // inside that namespace it is the shared image), only removed once empty and unmounted.
    let _ = std::fs::remove_dir(layout.lower());
    let _ = std::fs::remove_file(layout.disk_image());
    let _ = std::fs::remove_file(layout.config());
}

/// Removes the whole state directory.
pub fn remove_all(layout: &Layout) {
    remove_writable(layout);
    remove_dir_all_quiet(&layout.dir);
}

//! Where one sandbox's state lives on the host: `<state_root>/<id>/…`.

use std::path::{Path, PathBuf};

/// The files and directories of one sandbox's state directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<state_root>/<id>`.
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The launch spec (`launch.json`).
    pub fn launch(&self) -> PathBuf {
        self.join("launch.json")
    }
    /// The supervisor's unix socket.
    pub fn socket(&self) -> PathBuf {
        self.join("supervisor.sock")
    }
    /// The supervisor's pid.
    pub fn supervisor_pid(&self) -> PathBuf {
        self.join("supervisor.pid")
    }
    /// The supervisor's own diagnostics.
    pub fn supervisor_log(&self) -> PathBuf {
        self.join("supervisor.log")
    }
    /// How the sandbox ended (written atomically, once).
    pub fn exit(&self) -> PathBuf {
        self.join("exit.json")
    }
    /// `started_at_ms` once the main process runs.
    pub fn started(&self) -> PathBuf {
        self.join("started.json")
    }
    /// The current output log.
    pub fn log(&self) -> PathBuf {
        self.join("log.ndjson")
    }
    /// The output log rotated out before the current one.
    pub fn log_previous(&self) -> PathBuf {
        self.join("log.1.ndjson")
    }
    /// Output bytes discarded by rotation (decimal).
    pub fn dropped(&self) -> PathBuf {
        self.join("dropped")
    }
    /// The overlay's writable layer.
    pub fn upper(&self) -> PathBuf {
        self.join("upper")
    }
    /// The overlay's work directory.
    pub fn work(&self) -> PathBuf {
        self.join("work")
    }
    /// The sparse image of the writable root's file system (`diskLimitBytes`).
    pub fn disk_image(&self) -> PathBuf {
        self.join("disk.img")
    }
    /// Where that file system is mounted (in the supervisor's mount namespace).
    pub fn disk(&self) -> PathBuf {
        self.join("disk")
    }
    /// The sandbox's host id range (`idmap.json`, written once when the state is made).
    pub fn id_map(&self) -> PathBuf {
        self.join("idmap.json")
    }
    /// The image root mounted with the sandbox's id map (the overlay's lower layer).
    pub fn lower(&self) -> PathBuf {
        self.join("lower")
    }
    /// libcontainer's root directory.
    pub fn container(&self) -> PathBuf {
        self.join("container")
    }
    /// The OCI bundle's `config.json` (the bundle is the state directory).
    pub fn config(&self) -> PathBuf {
        self.join("config.json")
    }
}

/// Where a supervisor assembles its container's root and what the container binds rather than
/// mounts (`/sys`, `/tmp`, `/dev/shm`, `/etc/hosts`, `/etc/hostname`): a tmpfs each supervisor
/// mounts, in its own mount namespace, on a world-traversable host directory that stays empty
/// on the host. The container's init, root of a user namespace but an unprivileged id on the
/// host, could not reach them under the data directory, which only host root may traverse.
#[derive(Debug, Clone)]
pub struct Staging {
    /// The mount point of the staging tmpfs.
    pub dir: PathBuf,
}

impl Default for Staging {
    fn default() -> Self {
        Self { dir: PathBuf::from("/run/nimbus-sandbox") }
    }
}

impl Staging {
    /// The overlay root's mount point.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    /// Where a sysfs of the sandbox's network namespace is mounted (bound as `/sys`).
    pub fn sysfs(&self) -> PathBuf {
        self.dir.join("sys")
    }
    /// The tmpfs bound as `/tmp`.
    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }
    /// The tmpfs bound as `/dev/shm`.
    pub fn shm(&self) -> PathBuf {
        self.dir.join("shm")
    }
    /// The file bound as `/etc/hosts`.
    pub fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    /// The file bound as `/etc/hostname`.
    pub fn hostname(&self) -> PathBuf {
        self.dir.join("hostname")
    }
    /// The CA bundle (the image's and the egress CA) bound over the image's bundle paths.
    pub fn ca_bundle(&self) -> PathBuf {
        self.dir.join("ca-certificates.crt")
    }
}

/// Whether `id` is usable as one path component (and so as a sandbox's directory name).
pub fn valid_id(id: &str) -> bool {
    id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

//! The container's OCI runtime spec (`config.json`), and what it needs from the image: the user
//! resolved against the image's `/etc/passwd` and `/etc/group`, and the working directory.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use nimbus_core::limits::SANDBOX_ACCOUNT_FILE_MAX_BYTES;
use nix::errno::Errno;

use caps::Capability;
use serde_json::{Value, json};

use super::layout::Staging;
use super::userns::IdMap;
use crate::backend::LaunchSpec;
use crate::files::sys;

/// Capabilities the sandbox keeps (bounding, effective and permitted sets).
pub const CAPABILITIES: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    // RAPL energy counters: a power side channel on the host's CPUs (CVE-2020-8694).
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] =
    &["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// CPU quota period, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// The resolved identity of the main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids (from `/etc/group` membership).
    pub additional_gids: Vec<u32>,
    /// `HOME` for a process that does not set it: the passwd entry's directory, `/` without
    /// one. Always given, because libcontainer would otherwise look it up itself, from inside
    /// the sandbox, in an `/etc/passwd` a sandbox can forge (a FIFO blocks it for good).
    pub home: String,
}

impl User {
    /// `env` (`KEY=value` entries) with `HOME` added when it has none, or an empty one.
    pub fn with_home(&self, env: &[String]) -> Vec<String> {
        let mut env: Vec<String> = env.iter().filter(|kv| kv.as_str() != "HOME=").cloned().collect();
        if !env.iter().any(|kv| kv.starts_with("HOME=")) {
            env.push(format!("HOME={}", self.home));
        }
        env
    }
}

/// The cgroup path of sandbox `id` (cgroupfs, relative to each controller's root).
pub fn cgroup_path(id: &str) -> String {
    format!("/nimbus/{id}")
}

/// The hostname of sandbox `id`: its first 63 characters.
pub fn hostname(id: &str) -> String {
    id.chars().take(63).collect()
}

/// The sandbox's `/etc/hosts`: `localhost` on both loopback addresses, and the sandbox's own
/// `hostname` on 127.0.0.1 (its only interface is loopback; a server bound there answers to it).
pub fn hosts_file(hostname: &str) -> String {
    format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{hostname}\n")
}

/// The runtime spec for `launch`: the root and the bound files prepared in `staging` (the CA
/// bundle bound at each of `trust_paths`), the user namespace mapping the sandbox's ids onto
/// `id_map`, and `user` as the identity.
pub fn runtime_spec(launch: &LaunchSpec, staging: &Staging, trust_paths: &[&str], id_map: IdMap, user: &User) -> Value {
    let caps: Vec<String> = CAPABILITIES.iter().map(Capability::to_string).collect();
    let memory = launch.resources.memory_limit_bytes;
    let quota = u64::from(launch.resources.cpu_count.max(1)) * CPU_PERIOD_US;
    let id_mapping = json!({ "containerID": 0, "hostID": id_map.host_first, "size": id_map.count });
    let device = |major: i64, minor: Option<i64>| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"});
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "root": { "path": staging.rootfs(), "readonly": false },
        "hostname": hostname(&launch.id),
        "process": {
            "terminal": false,
            "user": { "uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids },
            "args": launch.argv,
            "env": user.with_home(&launch.env),
            "cwd": launch.cwd,
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
                "inheritable": [], "ambient": []
            }
        },
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
            { "destination": "/dev/shm", "type": "bind", "source": staging.shm(), "options": ["bind", "nosuid", "noexec", "nodev"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "bind", "source": staging.sysfs(), "options": ["bind", "nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/tmp", "type": "bind", "source": staging.tmp(), "options": ["bind", "nosuid", "nodev"] },
            { "destination": "/etc/hosts", "type": "bind", "source": staging.hosts(), "options": ["bind", "nosuid", "noexec", "nodev"] },
            { "destination": "/etc/hostname", "type": "bind", "source": staging.hostname(),
              "options": ["bind", "nosuid", "noexec", "nodev"] }
        ],
        "linux": {
            "namespaces": [
                { "type": "user" }, { "type": "pid" }, { "type": "mount" }, { "type": "uts" }, { "type": "ipc" },
                { "type": "cgroup" }
            ],
            "uidMappings": [id_mapping],
            "gidMappings": [id_mapping],
            "cgroupsPath": cgroup_path(&launch.id),
            "resources": {
                "memory": { "limit": memory, "swap": memory },
                "pids": { "limit": launch.resources.pids_limit },
                "cpu": { "quota": quota, "period": CPU_PERIOD_US },
                "devices": [
                    { "allow": false, "access": "rwm" },
                    device(1, Some(3)), device(1, Some(5)), device(1, Some(7)),
                    device(1, Some(8)), device(1, Some(9)), device(5, Some(0)),
                    device(5, Some(2)), device(136, None)
                ]
            },
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS
        }
    });
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for path in trust_paths {
            mounts.push(json!({ "destination": path, "type": "bind", "source": staging.ca_bundle(),
                                "options": ["bind", "nosuid", "noexec", "nodev"] }));
        }
    }
    spec
}

/// Most symlinks followed while resolving one path inside the root.
const MAX_SYMLINKS: usize = 40;

/// Resolves `path` (absolute, as seen inside the container) to a host path under `root`,
/// following symlinks as if `root` were `/` (no escape). With `create`, missing directories are
/// made (mode 0755, owned by `owner`). Returns the host path.
pub fn resolve_in_root(root: &Path, path: &str, create: Option<(u32, u32)>) -> Result<PathBuf, String> {
    let mut todo: Vec<String> = components(path);
    todo.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let host = host_path(root, &resolved).join(&part);
        match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(format!("too many symlinks resolving `{path}`"));
                }
                let target = std::fs::read_link(&host).map_err(|e| format!("cannot read link `{path}`: {e}"))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                todo.extend(more);
            }
            Ok(_) => resolved.push(part),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => match create {
                Some((uid, gid)) => {
                    std::fs::create_dir(&host).map_err(|e| format!("cannot create `{path}`: {e}"))?;
                    let _ = std::os::unix::fs::chown(&host, Some(uid), Some(gid));
                    resolved.push(part);
                }
                None => return Err(format!("`{path}` does not exist in the image")),
            },
            Err(err) => return Err(format!("cannot look up `{path}`: {err}")),
        }
    }
    Ok(host_path(root, &resolved))
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

fn host_path(root: &Path, parts: &[String]) -> PathBuf {
    let mut out = root.to_path_buf();
    out.extend(parts);
    out
}

/// Reads an account file (`/etc/passwd`, `/etc/group`) of a sandbox's root, which the sandbox
/// may have forged: resolved inside the root (no symlink leaves it), opened without blocking,
/// and read only when it is a regular file of at most [`SANDBOX_ACCOUNT_FILE_MAX_BYTES`]. A
/// missing file reads as empty (numeric users still resolve).
fn read_account_file(root: std::os::fd::BorrowedFd<'_>, path: &str) -> Result<String, String> {
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    let fd = match sys::openat2_in_root(root, path.trim_start_matches('/').as_bytes(), flags) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(String::new()),
        Err(e) => return Err(format!("cannot open the image's {path}: {e}")),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| format!("cannot stat the image's {path}: {e}"))?;
    let too_big = || format!("the image's {path} is larger than {SANDBOX_ACCOUNT_FILE_MAX_BYTES} bytes");
    if !meta.file_type().is_file() {
        return Err(format!("the image's {path} is not a regular file"));
    }
    if meta.len() > SANDBOX_ACCOUNT_FILE_MAX_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(SANDBOX_ACCOUNT_FILE_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the image's {path}: {e}"))?;
    if bytes.len() as u64 > SANDBOX_ACCOUNT_FILE_MAX_BYTES {
        return Err(too_big());
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Resolves `spec` (`uid`, `uid:gid`, `name`, `name:group`; empty = root) inside the image.
pub fn resolve_user(root: &Path, spec: &str) -> Result<User, String> {
    let spec = if spec.is_empty() { "0" } else { spec };
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)
        .map_err(|e| format!("cannot open the sandbox's root: {e}"))?;
    let passwd = read_account_file(root.as_fd(), "/etc/passwd")?;
    let group = read_account_file(root.as_fd(), "/etc/group")?;
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // passwd: name:x:uid:gid:...
    let entries: Vec<Vec<&str>> =
        passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 4).collect();
    let (uid, name, passwd_gid) = match user_part.parse::<u32>() {
        Ok(uid) => {
            let entry = entries.iter().find(|f| f[2].parse::<u32>().ok() == Some(uid));
            (uid, entry.map(|f| f[0].to_owned()), entry.and_then(|f| f[3].parse::<u32>().ok()))
        }
        Err(_) => {
            let entry = entries
                .iter()
                .find(|f| f[0] == user_part)
                .ok_or_else(|| format!("user `{user_part}` does not exist in the image's /etc/passwd"))?;
            let uid =
                entry[2].parse::<u32>().map_err(|_| format!("user `{user_part}` has an invalid uid in /etc/passwd"))?;
            (uid, Some(user_part.to_owned()), entry[3].parse::<u32>().ok())
        }
    };
    let home = entries
        .iter()
        .find(|f| f[2].parse::<u32>().ok() == Some(uid))
        .and_then(|f| f.get(5))
        .filter(|dir| dir.starts_with('/'))
        .map_or_else(|| "/".to_owned(), |dir| (*dir).to_owned());
    // group: name:x:gid:members
    let groups: Vec<Vec<&str>> =
        group.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 3).collect();
    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse::<u32>().ok())
                .ok_or_else(|| format!("group `{g}` does not exist in the image's /etc/group"))?,
        },
        None => passwd_gid.unwrap_or(0),
    };
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (&name, group_part) {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name)
                && let Ok(g) = f[2].parse::<u32>()
                && g != gid
                && !additional_gids.contains(&g)
            {
                additional_gids.push(g);
            }
        }
    }
    Ok(User { uid, gid, additional_gids, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_name_localhost_on_both_loopbacks_and_the_sandbox_on_its_own() {
        let hosts = hosts_file("sandbox-01abc");
        let lines: Vec<Vec<&str>> = hosts.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0], ["127.0.0.1", "localhost"]);
        assert_eq!(lines[1][..2], ["::1", "localhost"]);
        assert_eq!(lines[2], ["127.0.0.1", "sandbox-01abc"]);
    }

    #[test]
    fn users_resolve() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("etc");
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\napp:x:1000:\nwheel:x:10:app\n").expect("group");
        let app = resolve_user(dir.path(), "app").expect("app");
        assert_eq!(app, User { uid: 1000, gid: 1000, additional_gids: vec![10], home: "/home/app".into() });
        assert_eq!(resolve_user(dir.path(), "4242").expect("unlisted uid").home, "/");
        assert_eq!(app.with_home(&["HOME=".into(), "A=1".into()]), ["A=1", "HOME=/home/app"]);
        assert_eq!(app.with_home(&["HOME=/x".into()]), ["HOME=/x"]);
        assert_eq!(resolve_user(dir.path(), "123:45").expect("numeric").gid, 45);
        assert_eq!(resolve_user(dir.path(), "app:wheel").expect("group").gid, 10);
        assert!(resolve_user(dir.path(), "nobody").is_err());
    }

    #[test]
    fn forged_account_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("etc");
        let passwd = dir.path().join("etc/passwd");
        // A FIFO nobody writes to: reading it would block forever.
        nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
        let error = resolve_user(dir.path(), "app").expect_err("a FIFO is refused");
        assert!(error.contains("not a regular file"), "{error}");
        // A sparse terabyte: refused by its size, not read.
        std::fs::remove_file(&passwd).expect("remove");
        std::fs::File::create(&passwd).and_then(|f| f.set_len(1 << 40)).expect("sparse file");
        let error = resolve_user(dir.path(), "app").expect_err("a huge file is refused");
        assert!(error.contains("larger than 1048576 bytes"), "{error}");
        // A symlink out of the root resolves inside it (to nothing here), never to the host's.
        std::fs::remove_file(&passwd).expect("remove");
        std::os::unix::fs::symlink("/../../../../etc/shadow", &passwd).expect("symlink");
        assert!(resolve_user(dir.path(), "root").is_err(), "the host's /etc/shadow was read");
        assert_eq!(resolve_user(dir.path(), "0").expect("numeric users need no file").uid, 0);
    }

    #[test]
    fn resolution_stays_in_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/../../etc", dir.path().join("escape")).expect("symlink");
        let got = resolve_in_root(dir.path(), "/escape/x/y", Some((0, 0))).expect("resolve");
        assert_eq!(got, dir.path().join("etc/x/y"));
        assert!(got.is_dir());
    }
}

//! Host file permissions: only the server's own user can reach what it writes. The data
//! directory is 0700; databases with their WAL and shared-memory files, the token file and the
//! discovery file are 0600; another host user (`nobody`) is refused each of them, both through
//! the data directory and through a path to the file itself. Runs as root.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::json;

use crate::harness::Dirs;

/// `nobody`: an unprivileged host user that owns none of the server's files.
const NOBODY: u32 = 65534;
const TENANT: &str = "perm";

fn mode(path: &Path) -> u32 {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    meta.permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Fresh directories whose temporary root is open to other users (its mode otherwise depends on
/// tempfile and the umask), so that what stops `nobody` below is the server's own modes, not
/// the root's; [`Problems::reachable`] checks that this holds.
fn open_dirs() -> Arc<Dirs> {
    let dirs = Dirs::new();
    chmod(&dirs.root(), 0o755);
    dirs
}

/// Every database, WAL and shared-memory file under `dir`.
fn database_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if meta.is_dir() {
            database_files(&path, found);
        } else if [".sqlite3", ".sqlite3-wal", ".sqlite3-shm"].iter().any(|s| name.ends_with(s)) {
            found.push(path);
        }
    }
}

/// Runs `program path` as `nobody` (std drops root's supplementary groups with the uid); returns
/// whether it succeeded, and its stderr.
fn as_nobody(program: &str, flag: Option<&str>, path: &Path) -> (bool, String) {
    let output = Command::new(program)
        .args(flag)
        .arg(path)
        .uid(NOBODY)
        .gid(NOBODY)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LC_ALL", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program} as nobody (this suite runs as root): {e}"));
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Problems found, reported together so one failure does not hide the others.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn mode(&mut self, path: &Path, want: u32) {
        let got = mode(path);
        if got != want {
            self.0.push(format!("{}: mode {got:04o}, want {want:04o}", path.display()));
        }
    }

    /// `nobody` can stat `path`: every directory above it lets others through, so a refusal
    /// further down comes from `path`'s own mode.
    fn reachable(&mut self, path: &Path) {
        let (ok, stderr) = as_nobody("ls", Some("-d"), path);
        if !ok {
            self.0.push(format!(
                "nobody cannot even stat {} ({}): a refusal below would not be the mode under test",
                path.display(),
                stderr.trim()
            ));
        }
    }

    /// `nobody` running `program [flag] path` is refused with EACCES.
    fn denied(&mut self, program: &str, flag: Option<&str>, path: &Path) {
        let (ok, stderr) = as_nobody(program, flag, path);
        if ok || !stderr.contains("Permission denied") {
            self.0.push(format!(
                "nobody ran `{program} {}` with success={ok}, stderr {:?}; want permission denied",
                path.display(),
                stderr.trim()
            ));
        }
    }

    /// `nobody` cannot read `file` even given a path that reaches it: a hard link in a directory
    /// open to everyone (same inode, same mode).
    fn unreadable_by_inode(&mut self, file: &Path, exposed: &Path) {
        let link = exposed.join(file.file_name().expect("file name"));
        std::fs::hard_link(file, &link).unwrap_or_else(|e| panic!("link {}: {e}", file.display()));
        self.reachable(&link);
        self.denied("cat", None, &link);
        std::fs::remove_file(&link).expect("remove link");
    }

    fn assert_none(self) {
        assert!(self.0.is_empty(), "permission problems:\n{}", self.0.join("\n"));
    }
}

/// Checks every mode and every refusal; the tenant has been written, so its WAL exists.
fn check_private(dirs: &Dirs) -> Problems {
    let mut problems = Problems::default();
    let data = dirs.data();
    let token = dirs.token_path();
    let token_dir = token.parent().expect("token dir").to_owned();

    problems.mode(&data, 0o700);
    let mut databases = Vec::new();
    database_files(&data, &mut databases);
    for name in ["system.sqlite3", "tenants/perm.sqlite3"] {
        for suffix in ["", "-wal", "-shm"] {
            let expected = data.join(format!("{name}{suffix}"));
            if !databases.contains(&expected) {
                problems.0.push(format!("{} does not exist; found {databases:?}", expected.display()));
            }
        }
    }
    let mut private_files = databases.clone();
    private_files.extend([data.join(".lock"), token.clone(), token_dir.join(".token.lock"), dirs.discovery_path()]);
    for file in &private_files {
        problems.mode(file, 0o600);
    }
    problems.mode(&token_dir, 0o700);
    problems.mode(dirs.discovery_path().parent().expect("discovery dir"), 0o700);

    // Another host user: denied at the data directory (whose parent it can pass) and at the
    // token's directories; then denied by each file's own mode.
    problems.reachable(&data);
    problems.denied("ls", None, &data);
    problems.denied("cat", None, &data.join("tenants/perm.sqlite3"));
    let token_top = dirs.xdg_data().join("nimbus");
    problems.reachable(&token_top);
    problems.denied("ls", None, &token_top);
    problems.denied("cat", None, &token);
    let exposed = dirs.root().join("exposed");
    std::fs::create_dir(&exposed).expect("exposed dir");
    chmod(&exposed, 0o755);
    for file in &private_files {
        problems.unreadable_by_inode(file, &exposed);
    }
    std::fs::remove_dir(&exposed).expect("remove exposed dir");
    problems
}

#[test]
fn data_dir_databases_and_token_are_private() {
    let dirs = open_dirs();
    let server = dirs.start();
    server.create_tenant(TENANT);
    server.insert(TENANT, "notes", &json!({ "text": "secret" }));
    check_private(&dirs).assert_none();
}

#[test]
fn looser_modes_of_an_older_version_are_tightened_at_start() {
    let dirs = open_dirs();
    let mut server = dirs.start();
    server.create_tenant(TENANT);
    let id = server.insert(TENANT, "notes", &json!({ "text": "secret" }));
    // SIGKILL leaves the WAL and shared-memory files behind, as a crash of an older version would.
    server.kill9();
    let data = dirs.data();
    chmod(&data, 0o755);
    let mut databases = Vec::new();
    database_files(&data, &mut databases);
    assert_eq!(databases.len(), 6, "{databases:?}");
    for file in databases.iter().chain([&data.join(".lock"), &dirs.token_path()]) {
        chmod(file, 0o644);
    }
    chmod(dirs.token_path().parent().expect("token dir"), 0o755);

    let server = dirs.start_with_env(&[("NIMBUS_LOG", "info")]);
    // Tenant databases open on first use.
    server.get(&format!("/api/tenants/{TENANT}/documents/notes/{id}")).expect_status(200);
    check_private(&dirs).assert_none();
    let stderr = server.stderr();
    assert_eq!(stderr.matches("tightened the data directory").count(), 1, "{stderr}");
}

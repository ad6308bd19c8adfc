//! Confinement and behaviour of the files layer, on real files in a temporary root.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nimbus_core::{ErrorCode, NimbusError};

use super::resolve::FORCE_WALK;
use super::*;

const SANDBOX_PASSWD: &[u8] = b"root:x:0:0:sandbox passwd:/root:/bin/sh\n";
const SANDBOX_HOSTNAME: &[u8] = b"sandbox-hostname-7f3a\n";
const HOST_SECRET: &[u8] = b"HOST SECRET, never served\n";

/// A temporary directory holding `root/` (the sandbox root, with `/etc/passwd` and
/// `/etc/hostname`) and, beside it, `outside/secret` (a host file that must stay unreachable).
struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), SANDBOX_PASSWD).unwrap();
        fs::write(root.join("etc/hostname"), SANDBOX_HOSTNAME).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), HOST_SECRET).unwrap();
        Sandbox { _dir: dir, root, outside }
    }

    /// The root as the files functions take it.
    fn pin(&self) -> SandboxRoot {
        SandboxRoot::open(&self.root).unwrap()
    }

    fn host(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn link(&self, at: &str, target: impl AsRef<Path>) {
        let at = self.host(at);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        symlink(target, at).unwrap();
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, FileError> {
        read(&self.pin(), path, 0, None).map(|(_, bytes)| bytes)
    }
}

/// Runs a test body with `openat2`, then again with the manual walk (the `ENOSYS` fallback).
fn both(body: impl Fn(&Sandbox)) {
    body(&Sandbox::new());
    FORCE_WALK.with(|walk| walk.set(true));
    body(&Sandbox::new());
    FORCE_WALK.with(|walk| walk.set(false));
}

fn is_invalid_path<T: std::fmt::Debug>(result: Result<T, FileError>) -> bool {
    matches!(result, Err(FileError::InvalidPath { .. }))
}

fn is_not_found<T: std::fmt::Debug>(result: Result<T, FileError>) -> bool {
    matches!(result, Err(FileError::NotFound { .. }))
}

// ---- the attack list ----

#[test]
fn dotdot_climbing_stays_inside_the_root() {
    both(|sb| {
        assert_eq!(sb.read("/../../etc/passwd").unwrap(), SANDBOX_PASSWD);
        assert_eq!(sb.read("/etc/../../../../../etc/passwd").unwrap(), SANDBOX_PASSWD);
        assert!(is_not_found(sb.read("/../outside/secret")));
        let (info, _) = read(&sb.pin(), "/../../etc/./passwd", 0, None).unwrap();
        assert_eq!(info.path, "/etc/passwd");
    });
}

#[test]
fn absolute_symlink_lands_inside_the_root() {
    both(|sb| {
        sb.link("/link", "/etc");
        assert_eq!(sb.read("/link/passwd").unwrap(), SANDBOX_PASSWD);
        assert_eq!(sb.read("/link/hostname").unwrap(), SANDBOX_HOSTNAME);
        // An absolute host path names the same path inside the root, where nothing is.
        sb.link("/abs", &sb.outside);
        assert!(is_not_found(sb.read("/abs/secret")));
        sb.link("/abs-file", sb.outside.join("secret"));
        assert!(is_not_found(sb.read("/abs-file")));
        let names: Vec<String> = list(&sb.pin(), "/link").unwrap().0.into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["hostname", "passwd"]);
    });
}

#[test]
fn relative_symlink_with_many_dotdots_stays_inside() {
    both(|sb| {
        sb.link("/a/b/rel", "../../../../../../../../../../etc/passwd");
        assert_eq!(sb.read("/a/b/rel").unwrap(), SANDBOX_PASSWD);
        // On the host, `root/../outside/secret` is the secret; inside, `..` stops at the root.
        sb.link("/esc", "../outside/secret");
        assert!(is_not_found(sb.read("/esc")));
        sb.link("/a/b/esc", "../../../../../../../../outside/secret");
        assert!(is_not_found(sb.read("/a/b/esc")));
    });
}

#[test]
fn symlink_loops_are_invalid_paths_not_hangs() {
    both(|sb| {
        sb.link("/loop-a", "/loop-b");
        sb.link("/loop-b", "loop-a");
        sb.link("/self", "self");
        sb.link("/deep", "/deep/x");
        for path in ["/loop-a", "/loop-b/x", "/self", "/deep", "/deep/y"] {
            assert!(is_invalid_path(sb.read(path)), "read {path}");
            assert!(is_invalid_path(list(&sb.pin(), path)), "list {path}");
        }
        assert!(is_invalid_path(write(&sb.pin(), "/self", b"x", None, None)));
        // The link itself can be described and removed.
        assert_eq!(stat(&sb.pin(), "/self").unwrap().kind, FileKind::Symlink);
        delete(&sb.pin(), "/self", false).unwrap();
    });
}

#[test]
fn proc_self_root_symlink_never_reaches_the_host_root() {
    both(|sb| {
        sb.link("/pr", "/proc/self/root");
        // No /proc in this root: the link leads nowhere.
        assert!(is_not_found(sb.read("/pr/etc/hostname")));
        // With a /proc directory in the root, reaching it through a link is refused.
        fs::create_dir_all(sb.host("/proc/self/root/etc")).unwrap();
        fs::write(sb.host("/proc/self/root/etc/hostname"), b"fake").unwrap();
        assert!(is_invalid_path(sb.read("/pr/etc/hostname")));
        assert!(is_invalid_path(list(&sb.pin(), "/pr")));
        assert!(is_invalid_path(stat(&sb.pin(), "/pr/etc")));
        sb.link("/pm", "/proc");
        assert!(is_invalid_path(list(&sb.pin(), "/pm")));
        assert!(is_invalid_path(sb.read("/pm/self/root/etc/hostname")));
        assert!(is_invalid_path(write(&sb.pin(), "/pm/new", b"x", None, None)));
        assert!(!sb.host("/proc/new").exists());
    });
}

#[test]
fn symlinked_directory_pointing_outside_stays_inside() {
    both(|sb| {
        sb.link("/d", "/../../..");
        assert_eq!(sb.read("/d/etc/hostname").unwrap(), SANDBOX_HOSTNAME);
        sb.link("/r", "../../..");
        assert_eq!(sb.read("/r/etc/hostname").unwrap(), SANDBOX_HOSTNAME);
        sb.link("/a/b/up", "../../../../..");
        assert_eq!(sb.read("/a/b/up/etc/passwd").unwrap(), SANDBOX_PASSWD);
        let names = |path| list(&sb.pin(), path).unwrap().0.into_iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(names("/d"), names("/"));
        assert!(is_not_found(sb.read("/d/outside/secret")));
    });
}

#[test]
fn write_through_absolute_symlink_creates_inside_the_root() {
    both(|sb| {
        let name = "nimbus-files-test-created-7f3a.txt";
        sb.link("/w", format!("/etc/{name}"));
        write(&sb.pin(), "/w", b"inside", None, None).unwrap();
        assert_eq!(fs::read(sb.host(&format!("/etc/{name}"))).unwrap(), b"inside");
        assert!(!Path::new("/etc").join(name).exists());
        assert!(fs::symlink_metadata(sb.host("/w")).unwrap().file_type().is_symlink());
        // An existing target is replaced, the link stays.
        sb.link("/pw", "/etc/passwd");
        write(&sb.pin(), "/pw", b"replaced", None, None).unwrap();
        assert_eq!(fs::read(sb.host("/etc/passwd")).unwrap(), b"replaced");
        assert!(fs::symlink_metadata(sb.host("/pw")).unwrap().file_type().is_symlink());
        // A host path as target names a missing directory inside the root.
        sb.link("/w2", sb.outside.join("new.txt"));
        assert!(is_not_found(write(&sb.pin(), "/w2", b"x", None, None)));
        assert!(!sb.outside.join("new.txt").exists());
        // Parents are created through a symlinked directory, inside the root.
        sb.link("/ld", "/etc");
        write(&sb.pin(), "/ld/sub/f", b"x", None, None).unwrap();
        assert!(sb.host("/etc/sub/f").exists());
        assert_eq!(fs::read(sb.outside.join("secret")).unwrap(), HOST_SECRET);
    });
}

#[test]
fn delete_of_a_symlink_removes_the_link_only() {
    both(|sb| {
        sb.link("/lf", "/etc/passwd");
        delete(&sb.pin(), "/lf", false).unwrap();
        assert!(fs::symlink_metadata(sb.host("/lf")).is_err());
        assert_eq!(fs::read(sb.host("/etc/passwd")).unwrap(), SANDBOX_PASSWD);
        sb.link("/ld", "/etc");
        delete(&sb.pin(), "/ld", true).unwrap();
        assert!(fs::symlink_metadata(sb.host("/ld")).is_err());
        assert!(sb.host("/etc/hostname").exists());
        // A recursive delete removes links inside, never their targets.
        sb.link("/tree/to-etc", "/etc");
        sb.link("/tree/to-outside", &sb.outside);
        delete(&sb.pin(), "/tree", true).unwrap();
        assert!(!sb.host("/tree").exists());
        assert!(sb.host("/etc/passwd").exists());
        assert_eq!(fs::read(sb.outside.join("secret")).unwrap(), HOST_SECRET);
    });
}

#[test]
fn proc_sys_and_dev_are_refused() {
    both(|sb| {
        for dir in ["proc/1", "sys/kernel", "dev"] {
            fs::create_dir_all(sb.host(dir)).unwrap();
        }
        fs::write(sb.host("/dev/null"), b"").unwrap();
        for path in ["/proc", "/proc/1", "/sys", "/sys/kernel", "/dev", "/dev/null", "/x/../proc/1", "//dev/"] {
            assert!(is_invalid_path(stat(&sb.pin(), path)), "stat {path}");
            assert!(is_invalid_path(sb.read(path)), "read {path}");
            assert!(is_invalid_path(list(&sb.pin(), path)), "list {path}");
            assert!(is_invalid_path(write(&sb.pin(), path, b"x", None, None)), "write {path}");
            assert!(is_invalid_path(delete(&sb.pin(), path, true)), "delete {path}");
        }
        // Reached through a symlink: by identity.
        sb.link("/l", "/");
        assert!(is_invalid_path(stat(&sb.pin(), "/l/dev")));
        assert!(is_invalid_path(list(&sb.pin(), "/l/sys")));
        assert!(is_invalid_path(sb.read("/l/dev/null")));
        assert!(is_invalid_path(write(&sb.pin(), "/l/dev/new", b"x", None, None)));
        assert!(is_invalid_path(write(&sb.pin(), "/l/proc/made/new", b"x", None, None)));
        assert!(is_invalid_path(delete(&sb.pin(), "/l/proc", true)));
        sb.link("/sysl", "sys/kernel");
        assert!(is_invalid_path(list(&sb.pin(), "/sysl")));
        assert!(!sb.host("/dev/new").exists());
        assert!(!sb.host("/proc/made").exists());
        assert!(sb.host("/proc/1").exists());
    });
}

#[test]
fn malformed_paths_are_refused() {
    let sb = Sandbox::new();
    let overlong = format!("/{}", "a/".repeat(2100));
    for path in ["", "relative", "etc/passwd", "./etc", "/etc\0/passwd", overlong.as_str()] {
        assert!(is_invalid_path(stat(&sb.pin(), path)), "stat {path:?}");
        assert!(is_invalid_path(sb.read(path)), "read {path:?}");
        assert!(is_invalid_path(write(&sb.pin(), path, b"x", None, None)), "write {path:?}");
    }
    assert!(is_invalid_path(delete(&sb.pin(), "/", true)));
    assert!(is_invalid_path(delete(&sb.pin(), "/..", true)));
    let long_name = format!("/{}", "n".repeat(300));
    assert!(is_invalid_path(write(&sb.pin(), &long_name, b"x", None, None)));
}

// ---- behaviour ----

#[test]
fn write_read_round_trip_is_binary_safe() {
    let sb = Sandbox::new();
    let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let info = write(&sb.pin(), "/data/all-bytes.bin", &bytes, None, None).unwrap();
    assert_eq!((info.path.as_str(), info.name.as_str()), ("/data/all-bytes.bin", "all-bytes.bin"));
    assert_eq!((info.kind, info.size, info.mode), (FileKind::File, 512, 0o644));
    let (read_info, read_bytes) = read(&sb.pin(), "/data/all-bytes.bin", 0, None).unwrap();
    assert_eq!(read_bytes, bytes);
    assert_eq!(read_info, info);
    assert!(info.modified_at_ms > 1_600_000_000_000);
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(sb.host("/data")).unwrap().count(), 1);
    // Empty content is a file too.
    write(&sb.pin(), "/empty", b"", None, None).unwrap();
    assert_eq!(sb.read("/empty").unwrap(), b"");
}

#[test]
fn read_ranges() {
    let sb = Sandbox::new();
    write(&sb.pin(), "/digits", b"0123456789", None, None).unwrap();
    let range = |offset, length| read(&sb.pin(), "/digits", offset, length).unwrap().1;
    assert_eq!(range(2, Some(3)), b"234");
    assert_eq!(range(8, None), b"89");
    assert_eq!(range(0, Some(0)), b"");
    assert_eq!(range(5, Some(100)), b"56789");
    assert_eq!(range(10, None), b"");
    assert_eq!(range(1000, Some(5)), b"");
    assert_eq!(read(&sb.pin(), "/digits", 3, Some(2)).unwrap().0.size, 10);
}

#[test]
fn write_mode_is_kept_unless_given() {
    let sb = Sandbox::new();
    let mode = |path: &str| fs::metadata(sb.host(path)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(write(&sb.pin(), "/f", b"1", None, None).unwrap().mode, 0o644);
    assert_eq!(write(&sb.pin(), "/f", b"2", Some(0o600), None).unwrap().mode, 0o600);
    assert_eq!(write(&sb.pin(), "/f", b"3", None, None).unwrap().mode, 0o600);
    assert_eq!(mode("/f"), 0o600);
    assert_eq!(write(&sb.pin(), "/f", b"4", Some(0o4755), None).unwrap().mode, 0o4755);
    assert_eq!(mode("/f"), 0o4755);
    fs::set_permissions(sb.host("/etc/hostname"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(write(&sb.pin(), "/etc/hostname", b"x", None, None).unwrap().mode, 0o640);
    assert_eq!(stat(&sb.pin(), "/f").unwrap().mode, 0o4755);
}

#[test]
fn write_creates_parents_and_assigns_the_owner() {
    let sb = Sandbox::new();
    let root_user = nix::unistd::geteuid().is_root();
    let owner = root_user.then_some((1234, 5678));
    write(&sb.pin(), "/a/b/c/file.txt", b"x", None, owner).unwrap();
    for dir in ["/a", "/a/b", "/a/b/c"] {
        let meta = fs::metadata(sb.host(dir)).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{dir}");
        if root_user {
            assert_eq!((meta.uid(), meta.gid()), (1234, 5678), "{dir}");
        }
    }
    if root_user {
        let meta = fs::metadata(sb.host("/a/b/c/file.txt")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
        // A replaced file keeps its owner when none is given.
        write(&sb.pin(), "/a/b/c/file.txt", b"y", None, None).unwrap();
        let meta = fs::metadata(sb.host("/a/b/c/file.txt")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    }
    // A file on the way is not a directory.
    assert!(matches!(write(&sb.pin(), "/a/b/c/file.txt/x", b"x", None, None), Err(FileError::NotADirectory { .. })));
}

#[test]
fn list_is_sorted_with_kinds() {
    let sb = Sandbox::new();
    write(&sb.pin(), "/dir/b.txt", b"hello", None, None).unwrap();
    fs::create_dir(sb.host("/dir/a")).unwrap();
    sb.link("/dir/c", "b.txt");
    nix::unistd::mkfifo(&sb.host("/dir/_fifo"), Mode::from_bits_truncate(0o600)).unwrap();
    let (entries, truncated) = list(&sb.pin(), "/dir").unwrap();
    assert!(!truncated);
    let seen: Vec<(&str, &str, FileKind)> =
        entries.iter().map(|e| (e.path.as_str(), e.name.as_str(), e.kind)).collect();
    assert_eq!(
        seen,
        [
            ("/dir/_fifo", "_fifo", FileKind::Other),
            ("/dir/a", "a", FileKind::Dir),
            ("/dir/b.txt", "b.txt", FileKind::File),
            ("/dir/c", "c", FileKind::Symlink),
        ]
    );
    assert_eq!(entries[2].size, 5);
    assert_eq!(entries[3].target.as_deref(), Some("b.txt"));
    assert_eq!(entries[0].mode, 0o600);
    assert_eq!(FileKind::Other.as_str(), "other");
    // The root lists too, and an empty directory is empty.
    assert!(list(&sb.pin(), "/").unwrap().0.iter().any(|e| e.path == "/dir" && e.kind == FileKind::Dir));
    assert!(list(&sb.pin(), "/dir/a").unwrap().0.is_empty());
    // Reading a FIFO is refused at once rather than blocking.
    assert!(is_invalid_path(sb.read("/dir/_fifo")));
}

#[test]
fn list_truncates_at_the_limit() {
    let sb = Sandbox::new();
    let dir = sb.host("/many");
    fs::create_dir(&dir).unwrap();
    for i in 0..=SESSION_FILE_LIST_MAX_ENTRIES {
        fs::File::create(dir.join(format!("f{i:05}"))).unwrap();
    }
    let (entries, truncated) = list(&sb.pin(), "/many").unwrap();
    assert!(truncated);
    assert_eq!(entries.len(), SESSION_FILE_LIST_MAX_ENTRIES);
    assert_eq!(entries.first().unwrap().name, "f00000");
    assert_eq!(entries.last().unwrap().name, format!("f{:05}", SESSION_FILE_LIST_MAX_ENTRIES - 1));
}

#[test]
fn stat_does_not_follow_a_final_symlink() {
    let sb = Sandbox::new();
    sb.link("/etc/link", "passwd");
    let info = stat(&sb.pin(), "/etc/link").unwrap();
    assert_eq!((info.kind, info.target.as_deref(), info.size), (FileKind::Symlink, Some("passwd"), 6));
    assert_eq!(info.path, "/etc/link");
    sb.link("/dangling", "/nowhere/at/all");
    assert_eq!(stat(&sb.pin(), "/dangling").unwrap().target.as_deref(), Some("/nowhere/at/all"));
    // A symlink on the way is followed.
    sb.link("/e", "/etc");
    let info = stat(&sb.pin(), "/e/passwd").unwrap();
    assert_eq!((info.kind, info.path.as_str(), info.size), (FileKind::File, "/e/passwd", SANDBOX_PASSWD.len() as u64));
    let root = stat(&sb.pin(), "/").unwrap();
    assert_eq!((root.kind, root.name.as_str(), root.path.as_str()), (FileKind::Dir, "/", "/"));
    assert!(is_not_found(stat(&sb.pin(), "/missing")));
    assert!(is_not_found(sb.read("/dangling")));
}

#[test]
fn delete_of_a_non_empty_directory_needs_recursive() {
    let sb = Sandbox::new();
    write(&sb.pin(), "/tree/a/b/file", b"x", None, None).unwrap();
    write(&sb.pin(), "/tree/top", b"x", None, None).unwrap();
    assert!(matches!(delete(&sb.pin(), "/tree", false), Err(FileError::DirectoryNotEmpty { .. })));
    assert!(sb.host("/tree/a/b/file").exists());
    delete(&sb.pin(), "/tree", true).unwrap();
    assert!(!sb.host("/tree").exists());
    assert!(is_not_found(delete(&sb.pin(), "/tree", true)));
    fs::create_dir(sb.host("/empty")).unwrap();
    delete(&sb.pin(), "/empty", false).unwrap();
    delete(&sb.pin(), "/etc/passwd", false).unwrap();
    assert!(!sb.host("/etc/passwd").exists());
}

#[test]
fn directories_and_files_are_not_confused() {
    let sb = Sandbox::new();
    assert!(matches!(sb.read("/etc"), Err(FileError::IsDirectory { .. })));
    assert!(matches!(sb.read("/"), Err(FileError::IsDirectory { .. })));
    assert!(matches!(write(&sb.pin(), "/etc", b"x", None, None), Err(FileError::IsDirectory { .. })));
    assert!(matches!(write(&sb.pin(), "/", b"x", None, None), Err(FileError::IsDirectory { .. })));
    assert!(matches!(list(&sb.pin(), "/etc/passwd"), Err(FileError::NotADirectory { .. })));
    assert!(matches!(sb.read("/etc/passwd/x"), Err(FileError::NotADirectory { .. })));
    sb.link("/to-dir", "/etc/");
    assert!(matches!(sb.read("/to-dir"), Err(FileError::IsDirectory { .. })));
    assert!(is_not_found(list(&sb.pin(), "/missing")));
}

#[test]
fn too_large_files_are_read_in_ranges() {
    let sb = Sandbox::new();
    let big = fs::File::create(sb.host("/big")).unwrap();
    big.set_len(MAX_BYTES + 1).unwrap();
    match read(&sb.pin(), "/big", 0, None) {
        Err(FileError::TooLarge { size, limit }) => assert_eq!((size, limit), (MAX_BYTES + 1, MAX_BYTES)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(read(&sb.pin(), "/big", MAX_BYTES - 4, Some(10)).unwrap().1, [0; 5]);
    assert_eq!(read(&sb.pin(), "/big", 1, None).unwrap().1.len() as u64, MAX_BYTES);
    assert!(matches!(read(&sb.pin(), "/big", 0, Some(MAX_BYTES + 1)), Err(FileError::TooLarge { .. })));
    let body = vec![0u8; SESSION_FILE_MAX_BYTES + 1];
    assert!(matches!(write(&sb.pin(), "/body", &body, None, None), Err(FileError::TooLarge { .. })));
    assert!(!sb.host("/body").exists());
}

#[test]
fn errors_map_to_the_catalog() {
    let detail = |err: &NimbusError, key: &str| err.detail.as_ref().and_then(|d| d.get(key)).cloned();
    let err = NimbusError::from(FileError::NotFound { path: "/a".into() });
    assert_eq!((err.code, err.http_status()), (ErrorCode::OpNotFound, 404));
    assert_eq!(detail(&err, "resource"), Some("file".into()));
    assert_eq!(detail(&err, "path"), Some("/a".into()));
    for (error, reason) in [
        (FileError::InvalidPath { path: "x".into(), reason: "must be absolute".into() }, "invalid_path"),
        (FileError::IsDirectory { path: "/etc".into() }, "is_directory"),
        (FileError::NotADirectory { path: "/f".into() }, "not_a_directory"),
    ] {
        let err = NimbusError::from(error);
        assert_eq!((err.code, err.http_status()), (ErrorCode::OpInvalidInput, 400));
        assert_eq!(detail(&err, "reason"), Some(reason.into()));
        assert_eq!(detail(&err, "field"), Some("path".into()));
    }
    let err = NimbusError::from(FileError::DirectoryNotEmpty { path: "/d".into() });
    assert_eq!((err.code, err.http_status()), (ErrorCode::OpConflict, 409));
    assert_eq!(detail(&err, "reason"), Some("directory_not_empty".into()));
    let err = NimbusError::from(FileError::TooLarge { size: 100, limit: 10 });
    assert_eq!((err.code, err.http_status()), (ErrorCode::OpPayloadTooLarge, 413));
    assert_eq!((detail(&err, "sizeBytes"), detail(&err, "limitBytes")), (Some(100.into()), Some(10.into())));
    let io = FileError::Io { op: "read", path: "/x".into(), source: std::io::Error::other("boom") };
    let err = NimbusError::from(io);
    assert_eq!((err.code, err.http_status()), (ErrorCode::ServiceInternal, 500));
}

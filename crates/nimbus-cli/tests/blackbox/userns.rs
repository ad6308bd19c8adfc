//! User namespaces, tried from inside real sandboxes: a sandbox's ids map onto a host range of
//! its own from the operator's pool (`--userns-pool`), so its root is an unprivileged host id;
//! the image's files keep their owners inside; files made in the sandbox, by its processes or
//! through the files channel, belong to the range on the host; a planted setuid-root binary
//! yields nothing; a full pool refuses new sandboxes and a deleted sandbox's range is reused.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::Dirs;
use crate::sandboxes::{Fixture, id_of};
use crate::syscalls::exec;

/// The test pool: two ranges from host id 1,000,000,000 (the default pool starts at 2^31).
const POOL_FIRST: u32 = 1_000_000_000;
const RANGE: u32 = 65_536;

/// Prints the effective uid: planted setuid-root, it shows whether the bit elevates anything.
const EUID: &str =
    "#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf(\"%d\\n\", (int)geteuid()); return 0; }\n";

fn build_euid(dir: &Path) -> Vec<u8> {
    let (source, binary) = (dir.join("euid.c"), dir.join("euid"));
    std::fs::write(&source, EUID).expect("write euid.c");
    let out = Command::new("cc").args(["-static", "-O1", "-o"]).arg(&binary).arg(&source).output().expect("run cc");
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&binary).expect("read euid")
}

/// Opens a session with the exec and files channels on `sandbox`; returns its id.
fn session(fx: &Fixture, sandbox: &str) -> String {
    fx.server().get(&fx.path(&format!("/{sandbox}?waitFor=ready"))).expect_status(200);
    let body = json!({ "tenantId": crate::sandboxes::TENANT, "target": { "sandbox": { "id": sandbox } },
                       "channels": ["exec", "files"] });
    let opened = fx.server().post_json("/api/sessions", &body);
    opened.expect_status(201);
    opened.json["metadata"]["id"].as_str().expect("metadata.id").to_owned()
}

fn stdout(result: &Value) -> String {
    assert_eq!(result["exitCode"], 0, "{result}");
    result["stdout"].as_str().expect("stdout").to_owned()
}

/// The host pids of the sandbox's processes (its pids cgroup).
fn host_pids(sandbox: &str) -> Vec<u32> {
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/nimbus/{sandbox}/cgroup.procs"))
        .expect("the sandbox's pids cgroup");
    procs.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// A file of the sandbox as the host sees it (through one of its processes' root).
fn host_owner(sandbox: &str, path: &str) -> (u32, u32) {
    let pid = host_pids(sandbox)[0];
    let meta = std::fs::metadata(format!("/proc/{pid}/root{path}")).expect("the file, seen from the host");
    (meta.uid(), meta.gid())
}

#[test]
fn a_sandbox_root_is_an_unprivileged_host_id_of_its_own_range() {
    let work = tempfile::tempdir().expect("tempdir");
    let euid = build_euid(work.path());
    let pool = format!("{POOL_FIRST}:2");
    let fx = Fixture::on(Dirs::new(), |dirs| {
        dirs.try_start_with_args(&["--userns-pool", &pool]).expect("start with --userns-pool")
    });
    let root_box = id_of(&fx.create(&["sleep", "100000"], json!({})));
    let app_box = id_of(&fx.create(&["sleep", "100000"], json!({ "spec": { "process": { "user": "1000:1000" } } })));

    // Two ranges, both held: a third sandbox is refused, naming the resource and the limit.
    let body = json!({ "spec": { "root": fx.root(), "process": { "argv": ["true"] } } });
    let refused = fx.server().post_json(&fx.path(""), &body);
    refused.expect_status(429);
    assert_eq!(refused.code(), "rate.resource_exhausted", "{refused}");
    assert_eq!(refused.detail()["resource"], "sandbox_id_ranges", "{refused}");
    assert_eq!(refused.detail()["limit"], 2, "{refused}");

    // Root in the sandbox: the map is not the identity but the first range of the pool.
    let as_root = session(&fx, &root_box);
    let maps = stdout(&exec(&fx, &as_root, &["cat", "/proc/self/uid_map", "/proc/self/gid_map"]));
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields, ["0", &POOL_FIRST.to_string(), &RANGE.to_string()], "{maps}");
    }
    // The image's files keep their own owners inside (not the overflow id).
    let owners = stdout(&exec(&fx, &as_root, &["stat", "-c", "%u:%g", "/bin/busybox", "/etc", "/"]));
    assert_eq!(owners.lines().collect::<Vec<_>>(), ["0:0", "0:0", "0:0"], "{owners}");
    // Every process of the sandbox, and every file its root makes, is a non-zero host id.
    for pid in host_pids(&root_box) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let uids = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid line").to_owned();
        assert!(uids.split_whitespace().skip(1).all(|uid| uid == POOL_FIRST.to_string()), "{uids}");
    }
    stdout(&exec(&fx, &as_root, &["sh", "-c", "echo mine > /made-by-root && mkdir /dir-by-root"]));
    assert_eq!(host_owner(&root_box, "/made-by-root"), (POOL_FIRST, POOL_FIRST));
    assert_eq!(host_owner(&root_box, "/dir-by-root"), (POOL_FIRST, POOL_FIRST));

    // A setuid-root binary planted by the sandbox's root elevates nobody: run by uid 1000 it
    // runs as 1000 (and were it to run as the sandbox's root, that is the host id above).
    fx.server()
        .authed("PUT", &format!("/api/sessions/{as_root}/files?path=/tmp/euid&mode=0755"), &[], Some(&euid))
        .expect_status(200);
    stdout(&exec(
        &fx,
        &as_root,
        &["sh", "-c", "cp /tmp/euid /suid-euid && chmod 4755 /suid-euid && ls -ln /suid-euid"],
    ));
    let body = json!({ "argv": ["/suid-euid"], "user": "1000:1000" });
    let ran = fx.server().post_json(&format!("/api/sessions/{as_root}/exec?wait=true"), &body);
    ran.expect_status(200);
    assert_eq!(stdout(&ran.json).trim(), "1000", "the setuid bit must not elevate: {}", ran.json);

    // The files channel writes as the main user, shifted onto the sandbox's range.
    let as_app = session(&fx, &app_box);
    let second = POOL_FIRST + RANGE;
    fx.server()
        .authed("PUT", &format!("/api/sessions/{as_app}/files?path=/tmp/up/note.txt"), &[], Some(b"hello"))
        .expect_status(200);
    let inside = stdout(&exec(&fx, &as_app, &["stat", "-c", "%u:%g", "/tmp/up/note.txt", "/tmp/up"]));
    assert_eq!(inside.lines().collect::<Vec<_>>(), ["1000:1000", "1000:1000"], "{inside}");
    assert_eq!(host_owner(&app_box, "/tmp/up/note.txt"), (second + 1000, second + 1000));
    let who = stdout(&exec(&fx, &as_app, &["id", "-u"]));
    assert_eq!(who.trim(), "1000");

    // A deleted sandbox's range is free again: the next sandbox gets it. A user past the
    // range's 65,536 ids cannot be mapped: its start fails with the reason.
    fx.delete(&root_box);
    let outside = id_of(&fx.create(&["true"], json!({ "spec": { "process": { "user": "70000" } } })));
    let failed = fx.wait_stopped(&outside);
    assert_eq!(failed["status"]["lifecycleState"], "failed", "{failed}");
    let message = failed["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("uid 70000 is outside the sandbox's 65536 ids"), "{failed}");
    fx.delete(&outside);
    let next = id_of(&fx.create(&["sleep", "100000"], json!({})));
    let next_session = session(&fx, &next);
    let map = stdout(&exec(&fx, &next_session, &["cat", "/proc/self/uid_map"]));
    assert_eq!(map.split_whitespace().nth(1), Some(POOL_FIRST.to_string().as_str()), "{map}");
    fx.delete(&next);
    fx.delete(&app_box);
}

#[test]
fn a_pool_that_overlaps_host_users_or_overflows_is_refused_at_start() {
    for pool in ["1000:4", "4294901760:2", "65536", "x:1"] {
        let Err(failure) = Dirs::new().try_start_with_args(&["--userns-pool", pool]) else {
            panic!("the pool {pool} was accepted");
        };
        assert!(failure.stderr.contains("userns-pool"), "{pool}: {}", failure.stderr);
    }
}

//! The seccomp filters hold for every process of a real sandbox: a static test binary, built
//! here from C and run inside, tries each denied syscall (their x32 twins and the i386 ABI
//! included); `/proc/*/status` shows the filter on PID 1, the main process and exec'd ones;
//! PID 1 is not dumpable; the supervisor carries none of the server's environment.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::sandboxes::{Fixture, TENANT, id_of};

/// Tries each syscall the sandbox profile denies and prints `name EPERM` when it was refused
/// with EPERM, else `name allowed (…)`. Several would fail differently without the filter
/// (`unshare(0)` and `ptrace(TRACEME)` succeed, `io_uring_setup(0, NULL)` is EINVAL, the x32
/// numbers ENOSYS). The i386 ABI runs in a child, which the filter kills.
const PROBER: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define X32 0x40000000L

static void try(const char *name, long nr, long a0) {
    errno = 0;
    long r = syscall(nr, a0, 0L, 0L, 0L, 0L, 0L);
    if (r == 0 && (nr == SYS_clone)) _exit(0); /* a clone that got through: the child leaves */
    if (r == -1 && errno == EPERM) printf("%s EPERM\n", name);
    else printf("%s allowed (%ld, %s)\n", name, r, strerror(errno));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    try("mount", SYS_mount, 0);
    try("umount2", SYS_umount2, 0);
    try("pivot_root", SYS_pivot_root, 0);
    try("unshare", SYS_unshare, 0);
    try("setns", SYS_setns, -1);
    try("clone-newuser", SYS_clone, CLONE_NEWUSER | SIGCHLD);
    try("clone-newns", SYS_clone, CLONE_NEWNS | SIGCHLD);
    try("init_module", SYS_init_module, 0);
    try("finit_module", SYS_finit_module, -1);
    try("delete_module", SYS_delete_module, 0);
    try("kexec_load", SYS_kexec_load, 0);
    try("kexec_file_load", SYS_kexec_file_load, -1);
    try("bpf", SYS_bpf, -1);
    try("perf_event_open", SYS_perf_event_open, 0);
    try("keyctl", SYS_keyctl, 0);
    try("add_key", SYS_add_key, 0);
    try("request_key", SYS_request_key, 0);
    try("userfaultfd", SYS_userfaultfd, 0);
    try("open_by_handle_at", SYS_open_by_handle_at, -1);
    try("io_uring_setup", SYS_io_uring_setup, 0);
    try("io_uring_enter", SYS_io_uring_enter, -1);
    try("io_uring_register", SYS_io_uring_register, -1);
    try("fsopen", SYS_fsopen, 0);
    try("open_tree", SYS_open_tree, -1);
    try("move_mount", SYS_move_mount, -1);
    try("mount_setattr", SYS_mount_setattr, -1);
    try("ptrace", SYS_ptrace, 0);
    try("process_vm_readv", SYS_process_vm_readv, getpid());
    try("pidfd_getfd", SYS_pidfd_getfd, -1);
    try("x32-getpid", X32 | 39, 0);
    try("x32-mount", X32 | SYS_mount, 0);
    try("x32-unshare", X32 | SYS_unshare, 0);
    pid_t child = fork();
    if (child == 0) {
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory"); /* i386 getpid */
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFSIGNALED(status)) printf("i386 killed %d\n", WTERMSIG(status));
    else printf("i386 allowed\n");
    printf("getpid %s\n", syscall(SYS_getpid) > 0 ? "works" : "fails");
    return 0;
}
"#;

/// The prober compiled as a static binary (no loader or libc needed in the busybox image).
fn build_prober(dir: &Path) -> Vec<u8> {
    let source = dir.join("prober.c");
    let binary = dir.join("prober");
    std::fs::write(&source, PROBER).expect("write prober.c");
    let out = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("run cc (the host's C compiler builds the syscall prober)");
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&binary).expect("read prober")
}

/// Runs `argv` through a session's `exec?wait=true` (asserts 200) and returns the result.
pub fn exec(fx: &Fixture, session: &str, argv: &[&str]) -> Value {
    let resp = fx.server().post_json(&format!("/api/sessions/{session}/exec?wait=true"), &json!({ "argv": argv }));
    resp.expect_status(200);
    resp.json.clone()
}

#[test]
fn every_process_of_a_sandbox_is_filtered_and_pid_1_is_sealed() {
    let work = tempfile::tempdir().expect("tempdir");
    let prober = build_prober(work.path());
    let fx = Fixture::start();
    let sandbox = id_of(&fx.create(&["sleep", "100000"], json!({})));
    fx.server().get(&fx.path(&format!("/{sandbox}?waitFor=ready"))).expect_status(200);
    let body = json!({ "tenantId": TENANT, "target": { "sandbox": { "id": sandbox } }, "channels": ["exec", "files"] });
    let opened = fx.server().post_json("/api/sessions", &body);
    opened.expect_status(201);
    let session = opened.json["metadata"]["id"].as_str().expect("metadata.id").to_owned();
    fx.server()
        .authed("PUT", &format!("/api/sessions/{session}/files?path=/tmp/prober&mode=0755"), &[], Some(&prober))
        .expect_status(200);

    // An exec'd process: every denied syscall answers EPERM, the i386 ABI is killed (SIGSYS),
    // and an ordinary syscall still works.
    let probed = exec(&fx, &session, &["/tmp/prober"]);
    assert_eq!(probed["exitCode"], 0, "{probed}");
    let stdout = probed["stdout"].as_str().expect("stdout").to_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 34, "one line per probe: {stdout}");
    for line in &lines[..32] {
        assert!(line.ends_with(" EPERM"), "denied with EPERM: {line}\n{stdout}");
    }
    assert_eq!(lines[32], format!("i386 killed {}", libc::SIGSYS), "{stdout}");
    assert_eq!(lines[33], "getpid works", "{stdout}");

    // Every process of the sandbox (PID 1, the main process, this exec) runs filtered.
    let listing = exec(
        &fx,
        &session,
        &[
            "sh",
            "-c",
            "for s in /proc/[0-9]*/status; do echo \"$(grep -E '^(Name|Seccomp):' $s | cut -f2 | tr '\\n' ' ')\"; done",
        ],
    );
    let listing = listing["stdout"].as_str().expect("stdout").to_owned();
    let processes: Vec<&str> = listing.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(processes.iter().any(|l| l.starts_with("sleep ")), "the main process is listed: {listing}");
    assert!(processes.len() >= 3, "PID 1, the main process and the exec: {listing}");
    for process in &processes {
        assert!(process.trim_end().ends_with(" 2"), "seccomp mode 2: {process}\n{listing}");
    }
    let pid1 = exec(&fx, &session, &["sh", "-c", "grep Seccomp: /proc/1/status; cat /proc/1/environ"]);
    assert!(pid1["stdout"].as_str().is_some_and(|s| s.contains("Seccomp:\t2")), "{pid1}");
    assert_ne!(pid1["exitCode"], 0, "PID 1 is not dumpable: its environment is unreadable: {pid1}");
    assert!(pid1["stderr"].as_str().is_some_and(|s| s.contains("ermission denied")), "{pid1}");

    // The supervisor starts with a cleared environment: only what the server sets for it.
    let pid_file = fx.dirs.data().join("sandboxes").join(&sandbox).join("supervisor.pid");
    let supervisor = std::fs::read_to_string(&pid_file).expect("supervisor.pid").trim().to_owned();
    let environ = std::fs::read(format!("/proc/{supervisor}/environ")).expect("supervisor environ");
    let mut keys: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .map(|kv| String::from_utf8_lossy(kv).split('=').next().unwrap_or_default().to_owned())
        .collect();
    keys.sort();
    assert_eq!(keys, ["MIMALLOC_ARENA_EAGER_COMMIT", "NIMBUS_LOG"], "no HOME, PATH or XDG_* of the server");
    fx.delete(&sandbox);
}

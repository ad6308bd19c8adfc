//! The `container` sandbox backend against real containers (needs root, cgroups, overlayfs).
//! Each test builds a busybox root, uses its own temporary state root and unique ids, and checks
//! after every removal that nothing is left: no mount, no cgroup, no process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nimbus_sandbox::backend::{Backend, ExecSpec, Exit, LaunchSpec, Resources, RuntimeState, TerminationReason};
use nimbus_sandbox::runtime::{ContainerBackend, host_problem};

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "ip", "nc", "ls", "id", "head", "yes", "dd", "hostname", "seq", "true", "kill",
    "unshare", "tty", "touch", "mkdir", "test", "[", "pwd", "env",
];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique_id(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

struct Fixture {
    _tmp: tempfile::TempDir,
    rootfs: PathBuf,
    state_root: PathBuf,
    backend: ContainerBackend,
}

/// `None` (test skipped) on a host that cannot run containers.
fn fixture() -> Option<Fixture> {
    if let Some(problem) = host_problem() {
        eprintln!("skipping: {problem}");
        return None;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let rootfs = tmp.path().join("image");
    std::fs::create_dir_all(rootfs.join("bin")).expect("bin");
    std::fs::create_dir_all(rootfs.join("etc")).expect("etc");
    std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).expect("busybox");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
        .expect("passwd");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\napp:x:1000:\n").expect("group");
    std::fs::write(rootfs.join("etc/marker"), "lower\n").expect("marker");
    let state_root = tmp.path().join("sandboxes");
    let backend =
        ContainerBackend::new(state_root.clone(), PathBuf::from(env!("CARGO_BIN_EXE_nimbus"))).expect("backend");
    Some(Fixture { _tmp: tmp, rootfs, state_root, backend })
}

impl Fixture {
    fn spec(&self, id: &str, argv: &[&str]) -> LaunchSpec {
        LaunchSpec {
            id: id.to_owned(),
            image_rootfs: self.rootfs.clone(),
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            env: vec!["PATH=/bin".into(), "HOME=/root".into()],
            cwd: "/".into(),
            user: String::new(),
            terminal: false,
            resources: Resources { cpu_count: 1, memory_limit_bytes: 256 * 1024 * 1024, pids_limit: 64 },
        }
    }

    /// Starts `spec` and returns a guard that removes it (and checks cleanliness) on drop.
    fn start(&self, spec: &LaunchSpec) -> (Guard<'_>, RuntimeState) {
        let began = Instant::now();
        let state = self.backend.start(spec).expect("start");
        eprintln!("start of {} took {:?}", spec.id, began.elapsed());
        (Guard { fixture: self, id: spec.id.clone() }, state)
    }

    fn run(&self, spec: &LaunchSpec) -> (Guard<'_>, Exit) {
        let (guard, state) = self.start(spec);
        assert!(matches!(state, RuntimeState::Running { .. }), "{state:?}");
        let exit = self.backend.wait(&spec.id);
        (guard, exit)
    }

    fn output(&self, id: &str) -> String {
        let files = self.backend.log_files(id);
        let mut out = String::new();
        for path in [files.previous, files.current] {
            let Ok(text) = std::fs::read_to_string(path) else { continue };
            for line in text.lines() {
                let record: serde_json::Value = serde_json::from_str(line).expect("log line is JSON");
                assert!(record["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{record}");
                out.push_str(record["data"].as_str().unwrap_or(""));
            }
        }
        out
    }

    /// Waits (bounded) until the log contains `needle`: the sandbox announces its readiness there.
    fn wait_for_output(&self, id: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.output(id).contains(needle) {
            assert!(Instant::now() < deadline, "`{needle}` never appeared in the log of {id}");
            std::thread::yield_now();
        }
    }
}

struct Guard<'a> {
    fixture: &'a Fixture,
    id: String,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let result = self.fixture.backend.remove(&self.id);
        if std::thread::panicking() {
            return;
        }
        result.expect("remove");
        assert_clean(&self.fixture.state_root, &self.id);
    }
}

fn assert_clean(state_root: &Path, id: &str) {
    let dir = state_root.join(id);
    assert!(!dir.exists(), "state dir left behind");
    let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
    assert!(!mounts.contains(&*state_root.to_string_lossy()), "a mount mentions the state root");
    let cgroup_root = Path::new("/sys/fs/cgroup");
    for entry in std::fs::read_dir(cgroup_root).expect("cgroup root").flatten() {
        assert!(!entry.path().join("nimbus").join(id).exists(), "cgroup left in {}", entry.path().display());
    }
    for proc_entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        if let Ok(text) = std::fs::read_to_string(proc_entry.path().join("cgroup")) {
            assert!(
                !text.contains(&format!("/nimbus/{id}\n")),
                "process {:?} is still in the sandbox cgroup",
                proc_entry.file_name()
            );
        }
    }
}

fn exited(exit: &Exit, reason: TerminationReason, code: Option<i32>) {
    assert_eq!((exit.reason, exit.exit_code), (reason, code), "{exit:?}");
}

#[test]
fn exit_codes_and_signals() {
    let Some(f) = fixture() else { return };
    let id = unique_id("exit0");
    let (_g0, exit) = f.run(&f.spec(&id, &["sh", "-c", "echo hello"]));
    exited(&exit, TerminationReason::Exited, Some(0));
    assert_eq!(f.output(&id), "hello\n");
    assert_eq!(f.backend.inspect(&id), RuntimeState::Ended(exit.clone()));
    assert_eq!(f.backend.stop(&id, Duration::from_secs(1)), exit, "stop of an ended sandbox returns its ending");

    let id = unique_id("exit3");
    let (_g3, exit) = f.run(&f.spec(&id, &["sh", "-c", "echo oops >&2; exit 3"]));
    exited(&exit, TerminationReason::Exited, Some(3));
    let log = std::fs::read_to_string(f.backend.log_files(&id).current).expect("log");
    assert!(log.contains("\"kind\":\"stderr\""), "{log}");

    let id = unique_id("kill9");
    let (_g9, exit) = f.run(&f.spec(&id, &["sh", "-c", "kill -9 $$"]));
    exited(&exit, TerminationReason::Killed, Some(137));
}

#[test]
fn missing_executable_is_start_failed() {
    let Some(f) = fixture() else { return };
    let id = unique_id("noexe");
    let (_g, state) = f.start(&f.spec(&id, &["does-not-exist"]));
    let RuntimeState::Ended(exit) = state else { panic!("started: {state:?}") };
    exited(&exit, TerminationReason::StartFailed, None);
    let message = exit.message.unwrap_or_default();
    assert!(message.contains("does-not-exist") && message.contains("ENOENT"), "{message}");

    let id = unique_id("nouser");
    let mut spec = f.spec(&id, &["true"]);
    spec.user = "nobody-here".into();
    let (_g2, state) = f.start(&spec);
    let RuntimeState::Ended(exit) = state else { panic!("started: {state:?}") };
    exited(&exit, TerminationReason::StartFailed, None);
    assert!(exit.message.unwrap_or_default().contains("nobody-here"));
}

#[test]
fn network_is_loopback_only() {
    let Some(f) = fixture() else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let id = unique_id("net");
    let script = format!(
        "ip -o link; echo ROUTES; ip route; echo ROUTES-END; nc -w 2 127.0.0.1 {port} </dev/null 2>/dev/null && echo REACHED || echo BLOCKED"
    );
    let (_g, exit) = f.run(&f.spec(&id, &["sh", "-c", &script]));
    exited(&exit, TerminationReason::Exited, Some(0));
    let out = f.output(&id);
    let (links, rest) = out.split_once("ROUTES\n").expect("ROUTES marker");
    let links: Vec<&str> = links.lines().collect();
    assert_eq!(links.len(), 1, "{out}");
    assert!(links[0].contains(": lo:"), "{out}");
    let (routes, rest) = rest.split_once("ROUTES-END\n").expect("ROUTES-END marker");
    assert!(routes.trim().is_empty(), "routes: {routes}");
    assert!(rest.contains("BLOCKED"), "{out}");
    match listener.accept() {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host listener saw a connection: {other:?}"),
    }
}

#[test]
fn memory_limit_is_oom_killed() {
    let Some(f) = fixture() else { return };
    let id = unique_id("oom");
    let mut spec = f.spec(&id, &["sh", "-c", "head -c 200000000 /dev/zero > /tmp/fill; echo survived"]);
    spec.resources.memory_limit_bytes = 32 * 1024 * 1024;
    let (_g, exit) = f.run(&spec);
    exited(&exit, TerminationReason::OomKilled, Some(137));
    assert!(!f.output(&id).contains("survived"));
}

#[test]
fn pids_limit_contains_fork_bomb() {
    let Some(f) = fixture() else { return };
    let id = unique_id("pids");
    let mut spec =
        f.spec(&id, &["sh", "-c", "(for i in $(seq 1 100); do sleep 30 & done) 2>&1; echo LOOP-DONE; read x"]);
    spec.resources.pids_limit = 16;
    let (_g, state) = f.start(&spec);
    assert!(matches!(state, RuntimeState::Running { .. }));
    f.wait_for_output(&id, "LOOP-DONE");
    assert!(f.output(&id).contains("can't fork"), "{}", f.output(&id));
    let events = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/nimbus/{id}/pids.events")).expect("pids.events");
    let max: u64 = events.lines().find_map(|l| l.strip_prefix("max ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    assert!(max > 0, "pids.max was never hit: {events}");
    let current: u64 = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/nimbus/{id}/pids.current"))
        .expect("pids.current")
        .trim()
        .parse()
        .expect("number");
    assert!(current <= 16);
    let exit = f.backend.stop(&id, Duration::ZERO);
    assert_eq!(exit.reason, TerminationReason::StoppedByRequest, "{exit:?}");
}

#[test]
fn overlay_roots_are_private() {
    let Some(f) = fixture() else { return };
    let (a, b) = (unique_id("ova"), unique_id("ovb"));
    let script = |me: &str| format!("echo {me} > /etc/marker; mkdir -p /data; echo {me} > /data/{me}; ls /data");
    let (_ga, exit) = f.run(&f.spec(&a, &["sh", "-c", &script("A")]));
    exited(&exit, TerminationReason::Exited, Some(0));
    let (_gb, exit) = f.run(&f.spec(&b, &["sh", "-c", &format!("cat /etc/marker; {}", script("B"))]));
    exited(&exit, TerminationReason::Exited, Some(0));
    assert_eq!(f.output(&a), "A\n");
    assert_eq!(f.output(&b), "lower\nB\n", "b saw a's writes");
    assert_eq!(std::fs::read_to_string(f.rootfs.join("etc/marker")).expect("marker"), "lower\n");
    assert!(!f.rootfs.join("data").exists(), "the lower layer was written");
}

#[test]
fn stop_with_grace_delivers_sigterm() {
    let Some(f) = fixture() else { return };
    let id = unique_id("stop");
    let script = "trap 'echo GOT-TERM; exit 7' TERM; echo READY; sleep 100 & wait $!";
    let (_g, state) = f.start(&f.spec(&id, &["sh", "-c", script]));
    assert!(matches!(state, RuntimeState::Running { .. }));
    f.wait_for_output(&id, "READY");
    let exit = f.backend.stop(&id, Duration::from_secs(10));
    exited(&exit, TerminationReason::StoppedByRequest, Some(7));
    assert!(f.output(&id).contains("GOT-TERM"));
    assert_eq!(f.backend.wait(&id), exit);
    assert!(exit.is_clean());
}

#[test]
fn identity_hostname_user_and_cwd() {
    let Some(f) = fixture() else { return };
    let id = unique_id("ident");
    let mut spec = f.spec(&id, &["sh", "-c", "hostname; id -u; id -g; pwd"]);
    spec.user = "app".into();
    spec.cwd = "/home/app/work".into();
    let (_g, exit) = f.run(&spec);
    exited(&exit, TerminationReason::Exited, Some(0));
    assert_eq!(f.output(&id), format!("{id}\n1000\n1000\n/home/app/work\n"));
}

#[test]
fn seccomp_denies_namespaces() {
    let Some(f) = fixture() else { return };
    let id = unique_id("seccomp");
    let (_g, exit) = f.run(&f.spec(&id, &["sh", "-c", "unshare -U true && echo ESCAPED || echo DENIED"]));
    exited(&exit, TerminationReason::Exited, Some(0));
    assert!(f.output(&id).contains("DENIED"), "{}", f.output(&id));
}

#[test]
fn stdin_exec_and_root_dir() {
    let Some(f) = fixture() else { return };
    let id = unique_id("stdin");
    let (_g, state) = f.start(&f.spec(&id, &["sh", "-c", "read line; echo got $line; sleep 100"]));
    assert!(matches!(state, RuntimeState::Running { .. }));
    let root = f.backend.root_dir(&id).expect("root dir while running");
    assert!(root.join("bin/busybox").exists());
    f.backend.write_stdin(&id, b"hello\n").expect("stdin");
    f.wait_for_output(&id, "got hello");
    let out = f
        .backend
        .exec(
            &id,
            &ExecSpec {
                argv: vec!["sh".into(), "-c".into(), "echo out; echo err >&2; hostname; exit 4".into()],
                env: vec![],
                cwd: None,
                timeout_ms: 10_000,
                max_output_bytes: 1024,
            },
        )
        .expect("exec");
    assert_eq!(out.exit_code, 4, "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("out\n{id}\n"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let exit = f.backend.stop(&id, Duration::ZERO);
    assert_eq!(exit.reason, TerminationReason::StoppedByRequest);
    assert!(f.backend.root_dir(&id).is_none());
}

#[test]
fn terminal_mode_uses_a_pty() {
    let Some(f) = fixture() else { return };
    let id = unique_id("tty");
    let mut spec = f.spec(&id, &["sh", "-c", "tty; echo err >&2"]);
    spec.terminal = true;
    let (_g, exit) = f.run(&spec);
    exited(&exit, TerminationReason::Exited, Some(0));
    let out = f.output(&id);
    assert!(out.contains("/dev/pts/"), "{out}");
    let log = std::fs::read_to_string(f.backend.log_files(&id).current).expect("log");
    assert!(!log.contains("\"stderr\""), "{log}");
}

#[test]
fn adoption_after_server_restart() {
    let Some(f) = fixture() else { return };
    let id = unique_id("adopt");
    let (guard, state) = f.start(&f.spec(&id, &["sleep", "100"]));
    assert!(matches!(state, RuntimeState::Running { .. }));
    let second =
        ContainerBackend::new(f.state_root.clone(), PathBuf::from(env!("CARGO_BIN_EXE_nimbus"))).expect("backend");
    assert_eq!(second.adopt(&id), state);
    let exit = second.stop(&id, Duration::ZERO);
    exited(&exit, TerminationReason::StoppedByRequest, Some(137));
    assert_eq!(second.adopt(&id), RuntimeState::Ended(exit));
    drop(guard);
}

#[test]
fn killed_supervisor_is_lost_and_cleaned() {
    let Some(f) = fixture() else { return };
    let id = unique_id("lost");
    let (_g, state) = f.start(&f.spec(&id, &["sleep", "100"]));
    assert!(matches!(state, RuntimeState::Running { .. }));
    let pid: i32 = std::fs::read_to_string(f.state_root.join(&id).join("supervisor.pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("number");
    // The test crate denies unsafe code, so SIGKILL goes through kill(1).
    let status = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(Instant::now() < deadline, "supervisor did not die");
        std::thread::yield_now();
    }
    let state = f.backend.adopt(&id);
    let RuntimeState::Ended(exit) = state else { panic!("adopted: {state:?}") };
    exited(&exit, TerminationReason::ServerRestartLost, None);
    assert!(!f.state_root.join(&id).join("upper").exists());
    assert!(
        std::fs::read_dir("/sys/fs/cgroup").expect("cgroups").flatten().all(|e| !e
            .path()
            .join("nimbus")
            .join(&id)
            .exists())
    );
}

//! The `container` sandbox backend against real containers (needs root, cgroups, overlayfs).
//! Each test builds a busybox root, uses its own temporary state root and unique ids, and checks
//! after every removal that nothing is left: no mount, no cgroup, no process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nimbus_sandbox::backend::{
    Attachment, Backend, ExecSpec, Exit, Frame, LaunchSpec, OutputStream, Probe, ProcessRef, ProcessSpec, Resources,
    RuntimeState, TerminationReason,
};
use nimbus_sandbox::runtime::layout::Layout;
use nimbus_sandbox::runtime::userns::{IdMap, IdPool};
use nimbus_sandbox::runtime::{ContainerBackend, host_problem};

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "ip", "nc", "ls", "id", "head", "yes", "dd", "hostname", "seq", "true", "kill",
    "unshare", "tty", "touch", "mkdir", "test", "[", "pwd", "env", "stty", "httpd", "tr",
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

/// `None` (test skipped) on a host that cannot run containers, unless the run requires them
/// (`NIMBUS_REQUIRE_CONTAINERS`, which the README's test command and so CI set): then the test
/// fails, so isolation tests never pass by not running.
fn fixture() -> Option<Fixture> {
    if let Some(problem) = host_problem() {
        if std::env::var_os("NIMBUS_REQUIRE_CONTAINERS").is_some() {
            panic!("this host cannot run containers ({problem}), and NIMBUS_REQUIRE_CONTAINERS is set");
        }
        eprintln!("SKIPPED: this host cannot run containers ({problem}); the isolation tests did not run");
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
        ContainerBackend::new(state_root.clone(), PathBuf::from(env!("CARGO_BIN_EXE_nimbus")), IdPool::default())
            .expect("backend");
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
            resources: Resources {
                cpu_count: 1,
                memory_limit_bytes: 256 * 1024 * 1024,
                pids_limit: 64,
                disk_limit_bytes: Some(256 * 1024 * 1024),
            },
            egress: None,
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
    let root = f.backend.pin_root(&id).expect("root pinned while running");
    assert!(nimbus_sandbox::files::stat(&root, "/bin/busybox").is_ok());
    f.backend.input(&id, &ProcessRef::Main, b"hello\n", false).expect("stdin");
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
    assert!(root.ended(), "the pinned root tells that its sandbox ended");
    assert!(f.backend.pin_root(&id).is_none());
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
        ContainerBackend::new(f.state_root.clone(), PathBuf::from(env!("CARGO_BIN_EXE_nimbus")), IdPool::default())
            .expect("backend");
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

/// How long a test waits for a frame or a condition before failing.
const PATIENCE: Duration = Duration::from_secs(20);

/// An attachment read on its own thread, so a test never blocks forever on it.
struct Frames {
    rx: std::sync::mpsc::Receiver<Frame>,
    ended: bool,
}

impl Frames {
    fn new(mut attachment: Attachment) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            while let Some(frame) = attachment.next_frame() {
                if tx.send(frame).is_err() {
                    return;
                }
            }
        });
        Self { rx, ended: false }
    }

    /// The next frame; `None` when the attachment ended.
    fn next(&mut self) -> Option<Frame> {
        if self.ended {
            return None;
        }
        match self.rx.recv_timeout(PATIENCE) {
            Ok(frame) => Some(frame),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                self.ended = true;
                None
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("no frame within {PATIENCE:?}"),
        }
    }

    /// Reads until the concatenated output of `stream` contains `needle`; returns that output.
    fn until(&mut self, stream: OutputStream, needle: &str) -> String {
        let mut text = String::new();
        while !text.contains(needle) {
            match self.next() {
                Some(Frame::Output { stream: s, data, .. }) if s == stream => {
                    text.push_str(&String::from_utf8_lossy(&data))
                }
                Some(Frame::Output { .. }) => {}
                other => panic!("`{needle}` never came on {stream:?} (got {text:?}, then {other:?})"),
            }
        }
        text
    }

    /// Reads to the end: (stdout, stderr, exit frame).
    fn finish(&mut self) -> (String, String, Option<Frame>) {
        let (mut out, mut err, mut exit) = (String::new(), String::new(), None);
        while let Some(frame) = self.next() {
            match frame {
                Frame::Output { stream: OutputStream::Stdout, data, .. } => {
                    out.push_str(&String::from_utf8_lossy(&data))
                }
                Frame::Output { stream: OutputStream::Stderr, data, .. } => {
                    err.push_str(&String::from_utf8_lossy(&data))
                }
                frame @ Frame::Exit { .. } => {
                    assert!(exit.is_none(), "two exit frames");
                    exit = Some(frame);
                }
            }
        }
        (out, err, exit)
    }
}

fn exit_frame(code: Option<i32>, signal: Option<i32>, timed_out: bool) -> Option<Frame> {
    Some(Frame::Exit { code, signal, timed_out })
}

fn process(argv: &[&str], owner: &str) -> ProcessSpec {
    ProcessSpec {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: vec![],
        cwd: None,
        user: None,
        tty: false,
        cols: 0,
        rows: 0,
        timeout_ms: None,
        stdin: None,
        owner: owner.to_owned(),
    }
}

impl Fixture {
    fn attach(&self, id: &str, target: &ProcessRef) -> Frames {
        Frames::new(self.backend.attach(id, target).expect("attach"))
    }

    /// Starts `spec` inside sandbox `id`, attaches, and returns its id and frames.
    fn spawn(&self, id: &str, spec: &ProcessSpec) -> (String, Frames) {
        let info = self.backend.spawn(id, spec).expect("spawn");
        assert!(info.process_id.starts_with("proc-") && info.process_id[5..].bytes().all(|b| !b.is_ascii_uppercase()));
        // (A process that fails at once may already have exited.)
        assert_eq!((info.owner.as_str(), info.tty), (spec.owner.as_str(), spec.tty));
        let frames = self.attach(id, &ProcessRef::Exec(info.process_id.clone()));
        (info.process_id, frames)
    }

    fn start_running(&self, spec: &LaunchSpec) -> Guard<'_> {
        let (guard, state) = self.start(spec);
        assert!(matches!(state, RuntimeState::Running { .. }), "{state:?}");
        guard
    }
}

fn conflict_reason(err: &nimbus_core::NimbusError) -> String {
    assert_eq!(err.http_status(), 409, "{err:?}");
    err.detail.as_ref().and_then(|d| d["reason"].as_str()).unwrap_or_default().to_owned()
}

#[test]
fn attach_to_main_replays_then_streams_then_exits() {
    let Some(f) = fixture() else { return };
    let id = unique_id("attach");
    let script = "echo first; echo warn >&2; read x; echo second $x; read y; echo after-eof; exit 5";
    let _g = f.start_running(&f.spec(&id, &["sh", "-c", script]));
    // Two pipes, two draining threads: wait until both lines are in.
    f.wait_for_output(&id, "first");
    f.wait_for_output(&id, "warn");
    let mut frames = f.attach(&id, &ProcessRef::Main);
    let mut replayed = (String::new(), String::new());
    while replayed.0 != "first\n" || replayed.1 != "warn\n" {
        match frames.next() {
            Some(Frame::Output { stream, data, replay: true, .. }) => match stream {
                OutputStream::Stdout => replayed.0.push_str(&String::from_utf8_lossy(&data)),
                OutputStream::Stderr => replayed.1.push_str(&String::from_utf8_lossy(&data)),
            },
            other => panic!("expected replay, got {other:?} after {replayed:?}"),
        }
    }
    let err = f.backend.resize(&id, &ProcessRef::Main, 80, 24).expect_err("not a tty");
    assert_eq!(conflict_reason(&err), "not_a_tty");
    f.backend.input(&id, &ProcessRef::Main, b"go\n", false).expect("input");
    match frames.next() {
        Some(Frame::Output { stream: OutputStream::Stdout, data, replay: false, .. }) => {
            assert_eq!(data, b"second go\n")
        }
        other => panic!("expected live output, got {other:?}"),
    }
    // A second attachment replays everything so far, and sees the same live output.
    let mut second = f.attach(&id, &ProcessRef::Main);
    second.until(OutputStream::Stdout, "second go");
    f.backend.input(&id, &ProcessRef::Main, b"", true).expect("eof");
    let err = f.backend.input(&id, &ProcessRef::Main, b"late", false).expect_err("stdin closed");
    assert!(["stdin_closed", "process_exited"].contains(&conflict_reason(&err).as_str()), "{err:?}");
    let (out, _, exit) = frames.finish();
    assert_eq!(out, "after-eof\n");
    assert_eq!(exit, exit_frame(Some(5), None, false));
    assert_eq!(second.finish().2, exit_frame(Some(5), None, false));
    exited(&f.backend.wait(&id), TerminationReason::Exited, Some(5));
}

#[test]
fn input_and_eof_reach_a_cat_main_process() {
    let Some(f) = fixture() else { return };
    let id = unique_id("cat");
    let _g = f.start_running(&f.spec(&id, &["cat"]));
    let mut frames = f.attach(&id, &ProcessRef::Main);
    f.backend.input(&id, &ProcessRef::Main, b"hello ", false).expect("input");
    f.backend.input(&id, &ProcessRef::Main, b"cat\n", true).expect("input and eof");
    let (out, err, exit) = frames.finish();
    assert_eq!((out.as_str(), err.as_str()), ("hello cat\n", ""));
    assert_eq!(exit, exit_frame(Some(0), None, false));
    exited(&f.backend.wait(&id), TerminationReason::Exited, Some(0));
    let err = f.backend.input(&id, &ProcessRef::Main, b"x", false).expect_err("ended");
    assert_eq!(conflict_reason(&err), "process_exited");
}

#[test]
fn spawn_with_pipes_tty_and_missing_commands() {
    let Some(f) = fixture() else { return };
    let id = unique_id("spawn");
    let mut spec = f.spec(&id, &["sleep", "1000"]);
    spec.user = "app".into();
    spec.cwd = "/home/app".into();
    spec.env.push("FROM_MAIN=main".into());
    let _g = f.start_running(&spec);
    // As the host sees it: the sandbox's uid 1000 in its id range.
    let range = IdMap::read(&Layout::new(f.state_root.join(&id))).expect("the sandbox's id range");
    assert_eq!(f.backend.main_user(&id), Some((range.host_first + 1000, range.host_first + 1000)));

    let began = Instant::now();
    let (hi, mut frames) = f.spawn(&id, &process(&["echo", "hi"], "s1"));
    assert_eq!(frames.finish(), ("hi\n".into(), String::new(), exit_frame(Some(0), None, false)));
    eprintln!("spawn → exit of `echo hi` took {:?}", began.elapsed());

    let mut p = process(&["sh", "-c", "echo out $FROM_MAIN $EXTRA; id -u; pwd; echo err >&2; exit 3"], "s1");
    p.env = vec!["EXTRA=extra".into()];
    let (pipes, mut frames) = f.spawn(&id, &p);
    let (out, err, exit) = frames.finish();
    assert_eq!((out.as_str(), err.as_str()), ("out main extra\n1000\n/home/app\n", "err\n"));
    assert_eq!(exit, exit_frame(Some(3), None, false));

    let mut p = process(&["id", "-u"], "s1");
    (p.user, p.cwd) = (Some("root".into()), Some("/etc".into()));
    assert_eq!(f.spawn(&id, &p).1.finish().0, "0\n");
    p.cwd = Some("/no/such/dir".into());
    assert_eq!(f.backend.spawn(&id, &p).expect_err("bad cwd").http_status(), 400);

    let (missing, mut frames) = f.spawn(&id, &process(&["no-such-command", "x"], "s1"));
    let (out, err, exit) = frames.finish();
    assert_eq!(out, "");
    assert!(err.contains("no-such-command") && err.ends_with('\n') && err.lines().count() == 1, "{err:?}");
    assert_eq!(exit, exit_frame(Some(127), None, false));
    let (_, mut frames) = f.spawn(&id, &process(&["/etc/passwd"], "s1"));
    assert_eq!(frames.finish().2, exit_frame(Some(126), None, false));

    let mut p = process(&["sh", "-c", "tty; stty size; read x; stty size"], "s1");
    (p.tty, p.cols, p.rows) = (true, 100, 30);
    let (tty, mut frames) = f.spawn(&id, &p);
    let out = frames.until(OutputStream::Stdout, "30 100");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    f.backend.resize(&id, &ProcessRef::Exec(tty.clone()), 120, 40).expect("resize");
    f.backend.input(&id, &ProcessRef::Exec(tty.clone()), b"\n", false).expect("input");
    frames.until(OutputStream::Stdout, "40 120");
    let (_, err, exit) = frames.finish();
    assert_eq!((err.as_str(), exit), ("", exit_frame(Some(0), None, false)));

    let err = f.backend.resize(&id, &ProcessRef::Exec(pipes.clone()), 80, 24).expect_err("not a tty");
    assert_eq!(conflict_reason(&err), "not_a_tty");
    let err = f.backend.input(&id, &ProcessRef::Exec(pipes.clone()), b"x", false).expect_err("exited");
    assert_eq!(conflict_reason(&err), "process_exited");
    let err = f.backend.signal(&id, &ProcessRef::Exec(pipes.clone()), 15).expect_err("exited");
    assert_eq!(conflict_reason(&err), "process_exited");
    let err = f.backend.signal(&id, &ProcessRef::Exec("proc-nope".into()), 15).expect_err("unknown");
    assert_eq!(err.http_status(), 404);
    assert!(f.backend.attach(&id, &ProcessRef::Exec("proc-nope".into())).is_err());

    // A late attachment replays the output, then the exit.
    let mut late = f.attach(&id, &ProcessRef::Exec(pipes.clone()));
    assert_eq!(
        late.finish(),
        ("out main extra\n1000\n/home/app\n".into(), "err\n".into(), exit_frame(Some(3), None, false))
    );

    let list = f.backend.processes(&id).expect("processes");
    let code_of =
        |pid: &str| list.iter().find(|p| p.process_id == pid).map(|p| (p.exit_code, p.finished_at_ms.is_some()));
    assert_eq!(code_of(&hi), Some((Some(0), true)));
    assert_eq!(code_of(&pipes), Some((Some(3), true)));
    assert_eq!(code_of(&missing), Some((Some(127), true)));
    assert!(list.iter().find(|p| p.process_id == tty).is_some_and(|p| p.tty));
    assert_no_zombies(&f.state_root, &id);
}

/// The supervisor has reaped every child that ended (it waits for each process it starts).
fn assert_no_zombies(state_root: &Path, id: &str) {
    let pid = std::fs::read_to_string(state_root.join(id).join("supervisor.pid")).expect("supervisor.pid");
    let pid = pid.trim();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks").flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace() {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            assert!(!stat.contains(") Z "), "zombie child of the supervisor: {stat}");
        }
    }
}

#[test]
fn signals_timeouts_stdin_and_owners() {
    let Some(f) = fixture() else { return };
    let id = unique_id("signals");
    let _g = f.start_running(&f.spec(&id, &["sleep", "1000"]));

    let (sleeper, mut frames) = f.spawn(&id, &process(&["sleep", "100"], "a"));
    f.backend.signal(&id, &ProcessRef::Exec(sleeper.clone()), 15).expect("signal");
    assert_eq!(frames.finish().2, exit_frame(None, Some(15), false));

    let mut p = process(&["sh", "-c", "echo started; sleep 100"], "a");
    p.timeout_ms = Some(300);
    let (timed, mut frames) = f.spawn(&id, &p);
    assert_eq!(frames.finish(), ("started\n".into(), String::new(), exit_frame(None, Some(9), true)));
    let info = f.backend.processes(&id).expect("processes").into_iter().find(|p| p.process_id == timed).expect("known");
    assert!(info.timed_out && info.signal == Some(9) && info.exit_code.is_none(), "{info:?}");

    let mut p = process(&["cat"], "a");
    p.stdin = Some(b"fed through stdin".to_vec());
    assert_eq!(
        f.spawn(&id, &p).1.finish(),
        ("fed through stdin".into(), String::new(), exit_frame(Some(0), None, false))
    );

    let (_, mut a1) = f.spawn(&id, &process(&["sleep", "100"], "a"));
    let (_, mut a2) = f.spawn(&id, &process(&["sh", "-c", "sleep 100; sleep 100"], "a"));
    let (b, _b_frames) = f.spawn(&id, &process(&["sleep", "100"], "b"));
    f.backend.kill_owned(&id, "a").expect("kill owned");
    assert_eq!(a1.finish().2, exit_frame(None, Some(9), false));
    assert_eq!(a2.finish().2, exit_frame(None, Some(9), false));
    let running: Vec<String> = f
        .backend
        .processes(&id)
        .expect("processes")
        .into_iter()
        .filter(|p| p.finished_at_ms.is_none())
        .map(|p| p.process_id)
        .collect();
    assert_eq!(running, vec![b.clone()]);

    // The main process is signalled directly.
    let mut main = f.attach(&id, &ProcessRef::Main);
    f.backend.signal(&id, &ProcessRef::Main, 15).expect("signal main");
    assert_eq!(main.finish().2, exit_frame(None, Some(15), false));
    exited(&f.backend.wait(&id), TerminationReason::Killed, Some(143));
    assert!(f.backend.spawn(&id, &process(&["true"], "a")).is_err());
}

#[test]
fn probes_run_inside_the_sandbox() {
    let Some(f) = fixture() else { return };
    let id = unique_id("probe");
    let script = "mkdir -p /www; echo ok > /www/index.html; echo READY; exec httpd -f -p 8080 -h /www";
    let _g = f.start_running(&f.spec(&id, &["sh", "-c", script]));
    let timeout = Duration::from_millis(500);
    let deadline = Instant::now() + PATIENCE;
    while !f.backend.probe(&id, &Probe::Tcp { port: 8080 }, timeout) {
        assert!(Instant::now() < deadline, "httpd never listened");
    }
    assert!(f.backend.probe(&id, &Probe::Http { port: 8080, path: "/index.html".into() }, timeout));
    assert!(!f.backend.probe(&id, &Probe::Http { port: 8080, path: "/missing".into() }, timeout));
    assert!(!f.backend.probe(&id, &Probe::Tcp { port: 8081 }, timeout));
    assert!(!f.backend.probe(&id, &Probe::Http { port: 8081, path: "/".into() }, timeout));
    assert!(f.backend.probe(
        &id,
        &Probe::Exec { argv: vec!["test".into(), "-f".into(), "/www/index.html".into()] },
        timeout
    ));
    assert!(!f.backend.probe(&id, &Probe::Exec { argv: vec!["sh".into(), "-c".into(), "exit 1".into()] }, timeout));
    let began = Instant::now();
    assert!(!f.backend.probe(&id, &Probe::Exec { argv: vec!["sleep".into(), "100".into()] }, timeout));
    // A background child that keeps the probe's output open does not hold the answer.
    let daemon = vec!["sh".into(), "-c".into(), "sleep 100 & exit 0".into()];
    assert!(f.backend.probe(&id, &Probe::Exec { argv: daemon }, timeout));
    assert!(began.elapsed() < PATIENCE, "the exec probe outlived its timeout");
    assert!(!f.backend.probe(&unique_id("nosuch"), &Probe::Tcp { port: 8080 }, timeout));
}

#[test]
fn a_stalled_attachment_never_blocks_the_process() {
    let Some(f) = fixture() else { return };
    let id = unique_id("stall");
    let _g = f.start_running(&f.spec(&id, &["sleep", "1000"]));
    let info = f
        .backend
        .spawn(&id, &process(&["sh", "-c", "head -c 4000000 /dev/zero | tr '\\0' x; echo END"], "s1"))
        .expect("spawn");
    let target = ProcessRef::Exec(info.process_id.clone());
    let stalled = f.backend.attach(&id, &target).expect("attach");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list = f.backend.processes(&id).expect("processes");
        let me = list.iter().find(|p| p.process_id == info.process_id).expect("known");
        if me.finished_at_ms.is_some() {
            assert_eq!(me.exit_code, Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "the process was blocked by an unread attachment");
        std::thread::yield_now();
    }
    // The stalled attachment was cut off: it ends without the whole output or an exit frame.
    let (out, _, exit) = Frames::new(stalled).finish();
    assert!(out.len() < 4_000_000 && exit.is_none(), "{} bytes, {exit:?}", out.len());
    // A fresh attachment gets the last 64 KiB, then the exit.
    let (out, _, exit) = f.attach(&id, &target).finish();
    assert!(out.ends_with("xxEND\n") && out.len() <= 64 * 1024, "{}", out.len());
    assert_eq!(exit, exit_frame(Some(0), None, false));
}

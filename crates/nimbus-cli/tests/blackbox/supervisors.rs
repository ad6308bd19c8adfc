//! A sandbox's supervisor as the server depends on it: a stuck one (SIGSTOPped) never holds a
//! call, a stop or a delete; one whose state directory disappears tears its sandbox down and
//! exits; `--stop-sandboxes-on-exit` stops every sandbox at shutdown. Each test counts what is
//! left on the host: processes, mounts, cgroups, directories.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::harness::{Dirs, Server};
use crate::sandboxes::{Fixture, TENANT, assert_nothing_left, id_of};

/// The supervisor pid of a sandbox, from its state directory.
fn supervisor_pid(fx: &Fixture, id: &str) -> i32 {
    let pid_file = fx.dirs.data().join("sandboxes").join(id).join("supervisor.pid");
    std::fs::read_to_string(&pid_file).expect("supervisor.pid").trim().parse().expect("pid")
}

#[allow(unsafe_code)]
fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is a supervisor this test's
    // server started, read from its own pid file.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "signal {signal} to {pid}");
}

/// Waits (on a pidfd, no polling) until process `pid` has exited; false if it still runs after
/// `timeout`. A process already gone counts as exited.
#[allow(unsafe_code)]
fn exited_within(pid: i32, timeout: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return true;
    }
    let mut poll = libc::pollfd { fd: fd as i32, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd; the descriptor is ours and closed right after.
    let ready = unsafe { libc::poll(&mut poll, 1, i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX)) };
    // SAFETY: closing the descriptor pidfd_open gave us.
    unsafe { libc::close(fd as i32) };
    ready == 1
}

/// Whether the host still runs `pid` (a zombie waiting for its parent does not count).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// SIGKILLs a supervisor this test's server started if it still runs when the test ends, so a
/// failing test leaves none behind (the fixture then sweeps the sandbox's cgroups and mounts).
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Only while the pid is still a supervisor: never a reused pid.
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if running(self.0) && String::from_utf8_lossy(&cmdline).contains("__supervise") {
            signal(self.0, libc::SIGKILL);
        }
    }
}

fn sleeper(fx: &Fixture) -> String {
    let id = id_of(&fx.create(&["sleep", "100000"], json!({})));
    fx.server().get(&fx.path(&format!("/{id}?waitFor=ready&timeoutMs=60000"))).expect_status(200);
    id
}

#[test]
fn a_stuck_supervisor_never_holds_a_call_a_stop_or_a_delete() {
    let fx = Fixture::start();
    let stopped = sleeper(&fx);
    let deleted = sleeper(&fx);
    let session = {
        let body = json!({ "tenantId": TENANT, "target": { "sandbox": { "id": stopped } }, "channels": ["exec"] });
        let opened = fx.server().post_json("/api/sessions", &body);
        opened.expect_status(201);
        opened.json["metadata"]["id"].as_str().expect("session id").to_owned()
    };
    let (stuck_a, stuck_b) = (supervisor_pid(&fx, &stopped), supervisor_pid(&fx, &deleted));
    let _guards = (KillOnDrop(stuck_a), KillOnDrop(stuck_b));
    signal(stuck_a, libc::SIGSTOP);
    signal(stuck_b, libc::SIGSTOP);

    // A control call answers 503 once the supervisor's answer time has passed.
    let exec = fx.server().post_json(&format!("/api/sessions/{session}/exec"), &json!({ "argv": ["true"] }));
    exec.expect_error(503, "sandbox.unresponsive");
    assert_eq!(exec.detail()["limitMs"], 10_000, "{exec}");

    // Stop ends the sandbox anyway: the server kills the stuck supervisor and cleans up.
    let stop = fx.server().post_json(&fx.path(&format!("/{stopped}/stop")), &json!({ "gracePeriodMs": 1000 }));
    stop.expect_status(200);
    assert!(
        ["stopped", "failed"].contains(&stop.json["status"]["lifecycleState"].as_str().unwrap_or_default()),
        "{stop}"
    );
    assert!(!running(stuck_a), "the stuck supervisor was killed");
    // Delete too, from a running sandbox.
    fx.delete(&stopped);
    fx.delete(&deleted);
    assert!(!running(stuck_b), "the stuck supervisor was killed");
    for id in [&stopped, &deleted] {
        assert!(!fx.dirs.data().join("sandboxes").join(id).exists(), "no state directory of {id} is left");
    }
}

#[test]
fn a_supervisor_whose_state_directory_disappears_tears_its_sandbox_down() {
    let mut fx = Fixture::start();
    let id = sleeper(&fx);
    let supervisor = supervisor_pid(&fx, &id);
    let _guard = KillOnDrop(supervisor);
    // Nothing that knows of the sandbox is left: the server stops, its state directory goes.
    fx.server.as_mut().expect("server").stop();
    assert!(running(supervisor), "sandboxes outlive their server");
    let dir = fx.dirs.data().join("sandboxes").join(&id);
    // The mounted root cannot be removed while the sandbox runs; everything else goes.
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!dir.join("supervisor.sock").exists());
    assert!(exited_within(supervisor, Duration::from_secs(30)), "the orphaned supervisor exits");
    assert_nothing_left(&id);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stop_sandboxes_on_exit_stops_every_sandbox_at_shutdown() {
    let mut fx = Fixture::on(Dirs::new(), |dirs| {
        dirs.try_start_with_args(&["--stop-sandboxes-on-exit"]).expect("start with --stop-sandboxes-on-exit")
    });
    let ids = [sleeper(&fx), sleeper(&fx)];
    let supervisors: Vec<i32> = ids.iter().map(|id| supervisor_pid(&fx, id)).collect();
    let _guards: Vec<KillOnDrop> = supervisors.iter().map(|pid| KillOnDrop(*pid)).collect();
    fx.server.as_mut().expect("server").stop();
    for (id, pid) in ids.iter().zip(supervisors) {
        assert!(exited_within(pid, Duration::from_secs(30)), "the supervisor of {id} exits with the server");
        assert_nothing_left(id);
        assert!(
            Path::new(&fx.dirs.data().join("sandboxes").join(id).join("exit.json")).exists(),
            "its end is recorded"
        );
    }
    // The next server finds them stopped, not lost.
    fx.server = Some(Server::start_in(&fx.dirs));
    for id in &ids {
        let got = fx.server().get(&fx.path(&format!("/{id}")));
        assert_eq!(got.json["status"]["terminationReason"], "stopped_by_request", "{got}");
        fx.delete(id);
    }
}

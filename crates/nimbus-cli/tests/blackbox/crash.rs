//! Durability: every acknowledged (2xx) write survives `kill -9` (data §2 "Durability").
//!
//! [`Writers`] and [`verify`] are shared with `powercut.rs`, which adds a simulated power cut
//! between the kill and the restart.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};

use crate::harness::{Dirs, Server};

/// Rounds in the suite; `scripts/soak/crash` raises it through `NIMBUS_CRASH_ROUNDS`.
const DEFAULT_ROUNDS: u64 = 20;
const WRITERS: u64 = 8;
/// The table every writer inserts into.
pub(crate) const TABLE: &str = "log";

/// The current round's shared state, with a condition the main thread waits on.
#[derive(Default)]
struct Round {
    state: Mutex<RoundState>,
    changed: Condvar,
}

#[derive(Default)]
struct RoundState {
    /// Acknowledged inserts: id and fields.
    acks: Vec<(String, Value)>,
    /// Writers still running.
    running: u64,
    /// An unexpected answer ends the round.
    failure: Option<String>,
}

impl Round {
    fn update(&self, f: impl FnOnce(&mut RoundState)) {
        f(&mut self.state.lock().unwrap());
        self.changed.notify_all();
    }
}

/// `WRITERS` threads inserting documents into one tenant's [`TABLE`] as fast as the server
/// answers, until it is killed; each remembers the inserts the server acknowledged (201).
pub(crate) struct Writers {
    server: Arc<Server>,
    shared: Arc<Round>,
    threads: Vec<JoinHandle<()>>,
    round: u64,
}

impl Writers {
    /// Starts the writers; a document's fields name its round, writer and sequence number.
    pub(crate) fn start(server: Server, tenant: &str, round: u64) -> Writers {
        let server = Arc::new(server);
        let shared = Arc::new(Round::default());
        shared.update(|s| s.running = WRITERS);
        let path = format!("/api/tenants/{tenant}/documents");
        let threads = (0..WRITERS)
            .map(|w| {
                let (server, shared, path) = (server.clone(), shared.clone(), path.clone());
                std::thread::spawn(move || {
                    for n in 0u64.. {
                        let payload = format!("r{round}-w{w}-n{n}-{}", "p".repeat((n % 50) as usize));
                        let fields = json!({ "round": round, "writer": w, "n": n, "payload": payload });
                        let body = serde_json::to_vec(&json!({ "table": TABLE, "fields": fields })).unwrap();
                        match server.try_authed("POST", &path, &[("Content-Type", "application/json")], Some(&body)) {
                            Err(_) => break, // the server is gone
                            Ok(resp) if resp.status == 201 => {
                                let id = resp.json["id"].as_str().expect("id").to_owned();
                                shared.update(|s| s.acks.push((id, fields)));
                            }
                            Ok(resp) if resp.json["error"]["retryable"] == true => continue,
                            Ok(resp) => {
                                shared.update(|s| s.failure = Some(format!("unexpected answer to an insert: {resp}")));
                                break;
                            }
                        }
                    }
                    shared.update(|s| s.running -= 1);
                })
            })
            .collect();
        Writers { server, shared, threads, round }
    }

    /// Waits (on a condition, not a clock) until `target` inserts are acknowledged, or the
    /// writers stopped.
    pub(crate) fn wait_for_acks(&self, target: usize) {
        let mut state = self.shared.state.lock().unwrap();
        while state.acks.len() < target && state.running > 0 && state.failure.is_none() {
            state = self.shared.changed.wait(state).unwrap();
        }
    }

    /// Whether every writer has stopped (an unexpected answer, or the server is gone).
    pub(crate) fn stopped(&self) -> bool {
        let state = self.shared.state.lock().unwrap();
        state.running == 0 || state.failure.is_some()
    }

    /// SIGKILLs the server while the writers are still writing, reaps it, and returns the
    /// acknowledged inserts (id and fields). Panics on an unexpected answer to an insert, or
    /// when the server went away before the kill.
    pub(crate) fn kill9(self) -> Vec<(String, Value)> {
        let round = self.round;
        if self.stopped() && self.shared.state.lock().unwrap().failure.is_none() {
            panic!("round {round}: the writers lost the server before the kill; stderr:\n{}", self.server.stderr());
        }
        self.server.sigkill();
        for thread in self.threads {
            thread.join().expect("writer thread panicked");
        }
        let state = std::mem::take(&mut *self.shared.state.lock().unwrap());
        if let Some(failure) = state.failure {
            panic!("round {round}: {failure}; stderr:\n{}", self.server.stderr());
        }
        let mut server = Arc::try_unwrap(self.server).unwrap_or_else(|_| panic!("writers still hold the server"));
        let status = server.wait_exit();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "server exit status {status:?}");
        state.acks
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let rounds: u64 = std::env::var("NIMBUS_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(DEFAULT_ROUNDS);
    let dirs = Dirs::new();
    {
        let server = dirs.start();
        server.create_tenant("crash");
    }
    let mut acknowledged: HashMap<String, Value> = HashMap::new();

    for round in 0..rounds {
        let server = Server::start_in(&dirs);
        // Everything acknowledged in earlier rounds is there, exactly.
        verify(&server, "crash", &acknowledged, &format!("round {round}, after kill -9"));

        // Enough acknowledged writes, then SIGKILL while the writers are still writing.
        let target = (30 + 10 * round) as usize;
        let writers = Writers::start(server, "crash", round);
        writers.wait_for_acks(target);
        let round_acks = writers.kill9();
        assert!(round_acks.len() >= target, "round {round}: writers stopped after {} acks", round_acks.len());
        for (id, fields) in round_acks {
            assert!(acknowledged.insert(id.clone(), fields).is_none(), "id {id} acknowledged twice");
        }
    }
    let server = Server::start_in(&dirs);
    verify(&server, "crash", &acknowledged, &format!("round {rounds}, after kill -9"));
    // Sanity: the test really wrote what it meant to.
    let minimum: u64 = (0..rounds).map(|r| 30 + 10 * r).sum();
    assert!(acknowledged.len() as u64 >= minimum);
}

/// Asserts that every acknowledged insert is in `tenant`'s [`TABLE`] with exactly its fields;
/// `when` names the moment for the failure message.
pub(crate) fn verify(server: &Server, tenant: &str, acknowledged: &HashMap<String, Value>, when: &str) {
    let stored: HashMap<String, Value> =
        server.list_all(tenant, TABLE).into_iter().map(|d| (d["_id"].as_str().unwrap().to_owned(), d)).collect();
    for (id, fields) in acknowledged {
        let doc = stored.get(id).unwrap_or_else(|| panic!("{when}: acknowledged document {id} lost"));
        for (key, value) in fields.as_object().unwrap() {
            assert_eq!(&doc[key], value, "{when}: document {id} field {key} differs");
        }
        let user_keys = doc.as_object().unwrap().keys().filter(|k| !k.starts_with('_')).count();
        assert_eq!(user_keys, fields.as_object().unwrap().len(), "{when}: document {id} has extra fields: {doc}");
    }
}

//! Durability: every acknowledged (2xx) write survives `kill -9` (data §2 "Durability").

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Condvar, Mutex};

use serde_json::{Value, json};

use crate::harness::{Dirs, Server};

/// Rounds in the suite; `scripts/soak/crash` raises it through `NIMBUS_CRASH_ROUNDS`.
const DEFAULT_ROUNDS: u64 = 20;
const WRITERS: u64 = 8;

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
        verify(&server, &acknowledged, round);

        let server = Arc::new(server);
        let shared = Arc::new(Round::default());
        shared.update(|s| s.running = WRITERS);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (server, shared) = (server.clone(), shared.clone());
                std::thread::spawn(move || {
                    for n in 0u64.. {
                        let payload = format!("r{round}-w{w}-n{n}-{}", "p".repeat((n % 50) as usize));
                        let fields = json!({ "round": round, "writer": w, "n": n, "payload": payload });
                        let body = serde_json::to_vec(&json!({ "table": "log", "fields": fields })).unwrap();
                        let path = "/api/tenants/crash/documents";
                        match server.try_authed("POST", path, &[("Content-Type", "application/json")], Some(&body)) {
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

        // Wait (on a condition, not a clock) for enough acknowledged writes, then SIGKILL.
        let target = (30 + 10 * round) as usize;
        {
            let mut state = shared.state.lock().unwrap();
            while state.acks.len() < target && state.running > 0 && state.failure.is_none() {
                state = shared.changed.wait(state).unwrap();
            }
        }
        server.sigkill();
        for writer in writers {
            writer.join().expect("writer thread panicked");
        }
        let state = std::mem::take(&mut *shared.state.lock().unwrap());
        if let Some(failure) = state.failure {
            panic!("round {round}: {failure}");
        }
        let round_acks = state.acks;
        assert!(
            round_acks.len() >= target,
            "round {round}: writers stopped after {} acks; stderr:\n{}",
            round_acks.len(),
            server.stderr()
        );
        let mut server = Arc::try_unwrap(server).unwrap_or_else(|_| panic!("writers still hold the server"));
        let status = server.wait_exit();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "server exit status {status:?}");
        for (id, fields) in round_acks {
            assert!(acknowledged.insert(id.clone(), fields).is_none(), "id {id} acknowledged twice");
        }
    }
    let server = Server::start_in(&dirs);
    verify(&server, &acknowledged, rounds);
    // Sanity: the test really wrote what it meant to.
    let minimum: u64 = (0..rounds).map(|r| 30 + 10 * r).sum();
    assert!(acknowledged.len() as u64 >= minimum);
}

fn verify(server: &Server, acknowledged: &HashMap<String, Value>, round: u64) {
    let stored: HashMap<String, Value> =
        server.list_all("crash", "log").into_iter().map(|d| (d["_id"].as_str().unwrap().to_owned(), d)).collect();
    for (id, fields) in acknowledged {
        let doc =
            stored.get(id).unwrap_or_else(|| panic!("round {round}: acknowledged document {id} lost after kill -9"));
        for (key, value) in fields.as_object().unwrap() {
            assert_eq!(&doc[key], value, "round {round}: document {id} field {key} differs");
        }
        let user_keys = doc.as_object().unwrap().keys().filter(|k| !k.starts_with('_')).count();
        assert_eq!(
            user_keys,
            fields.as_object().unwrap().len(),
            "round {round}: document {id} has extra fields: {doc}"
        );
    }
}

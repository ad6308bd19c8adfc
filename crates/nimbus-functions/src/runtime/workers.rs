//! [`Workers`]: the dedicated threads isolates run on. Threads are started on demand, reused
//! while work keeps coming, and exit after a while idle. A job never runs on a request (async)
//! thread. How many run at once is bounded by the callers' per-tenant slots, not here: a pool
//! cap could deadlock an action waiting on its own nested call.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nimbus_core::limits::FUNCTION_WORKER_IDLE_MS;

/// A unit of work for a worker thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Stack of a worker thread: room for QuickJS's own 1 MiB JavaScript stack and the host's
/// frames beneath it.
const WORKER_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Idle workers: each one's id and job queue.
type Idle = Arc<Mutex<Vec<(u64, Sender<Job>)>>>;

/// The pool of worker threads.
#[derive(Default)]
pub(crate) struct Workers {
    /// Idle workers, each with its id and job queue. A std mutex: held only to push or pop.
    idle: Idle,
    next_id: Mutex<u64>,
}

impl Workers {
    /// Runs `job` on an idle worker, or on a new one.
    pub(crate) fn run(&self, mut job: Job) {
        loop {
            let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some((_, worker)) = idle else { break };
            match worker.send(job) {
                Ok(()) => return,
                // That worker exited meanwhile; try the next.
                Err(mpsc::SendError(returned)) => job = returned,
            }
        }
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        let (queue, jobs) = mpsc::channel::<Job>();
        let idle = self.idle.clone();
        let own = queue.clone();
        let spawned = std::thread::Builder::new().name(format!("fn-worker-{id}")).stack_size(WORKER_STACK_BYTES).spawn(
            move || {
                loop {
                    match jobs.recv_timeout(Duration::from_millis(FUNCTION_WORKER_IDLE_MS)) {
                        Ok(job) => {
                            job();
                            idle.lock().unwrap_or_else(PoisonError::into_inner).push((id, own.clone()));
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
                            if let Some(at) = idle.iter().position(|(worker, _)| *worker == id) {
                                idle.remove(at);
                                return;
                            }
                            // Someone took this worker off the idle list: a job is on its way.
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            },
        );
        match spawned {
            // The new worker holds the receiver until it exits, so the send cannot fail.
            Ok(_) => {
                let _ = queue.send(job);
            }
            // Dropping the job drops its reply channel: its caller gets `service.internal`.
            Err(e) => tracing::error!(error = %e, "cannot start a function worker thread"),
        }
    }
}

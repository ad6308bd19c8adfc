//! [`Slots`]: one tenant's invocation slots (functions.md §7). At most `concurrency`
//! invocations run at once and up to `queue` more wait, in arrival order. A worker that ends
//! an invocation takes the next waiting one itself, so under load invocations run back to back
//! on warm threads instead of each waiting for a slot on the async side and then for a worker
//! thread to wake.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_core::NimbusError;

use super::workers::{Job, Workers};

/// One tenant's slots and its queue.
pub(crate) struct Slots {
    concurrency: usize,
    queue: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Invocations running (each on its worker thread).
    running: usize,
    /// Invocations waiting for a slot.
    waiting: VecDeque<Job>,
}

impl Slots {
    /// Slots for `concurrency` invocations at once (at least one) and `queue` waiting.
    pub(crate) fn new(concurrency: usize, queue: usize) -> Arc<Self> {
        Arc::new(Self { concurrency: concurrency.max(1), queue, state: Mutex::default() })
    }

    /// Runs `job` in a slot on a worker thread: at once when one is free, otherwise after the
    /// jobs queued before it. A full queue is 429 `rate.resource_exhausted`
    /// (`function_slots`) and `job` is dropped.
    pub(crate) fn run(self: &Arc<Self>, workers: &Workers, job: Job) -> Result<(), NimbusError> {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.running >= self.concurrency {
                if state.waiting.len() >= self.queue {
                    return Err(NimbusError::resource_exhausted(
                        "function_slots",
                        self.queue as u64,
                        Some(state.waiting.len() as u64),
                    ));
                }
                state.waiting.push_back(job);
                return Ok(());
            }
            state.running += 1;
        }
        let slots = self.clone();
        workers.run(Box::new(move || slots.drain(job)));
        Ok(())
    }

    /// Runs `first`, then every job that queued meanwhile, and frees the slot when none is
    /// left. A job that panics is dropped (its caller sees its reply channel close); the slot
    /// goes on.
    fn drain(&self, first: Job) {
        let mut job = first;
        loop {
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!("a function invocation panicked");
            }
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match state.waiting.pop_front() {
                Some(next) => job = next,
                None => {
                    state.running -= 1;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn at_most_concurrency_run_and_a_full_queue_is_refused() {
        let workers = Workers::default();
        let slots = Slots::new(1, 2);
        let (release, hold) = mpsc::channel::<()>();
        let (started, starts) = mpsc::channel::<u32>();
        let blocking = started.clone();
        slots
            .run(
                &workers,
                Box::new(move || {
                    blocking.send(0).unwrap();
                    hold.recv().unwrap();
                }),
            )
            .unwrap();
        assert_eq!(starts.recv().unwrap(), 0);
        for n in 1..=2 {
            let started = started.clone();
            slots.run(&workers, Box::new(move || started.send(n).unwrap())).unwrap();
        }
        let refused = slots.run(&workers, Box::new(|| {})).unwrap_err();
        assert_eq!(refused.code, nimbus_core::ErrorCode::RateResourceExhausted);
        assert_eq!(refused.detail.as_ref().unwrap()["limit"], 2);
        // Nothing queued ran while the slot was taken.
        assert!(starts.try_recv().is_err());
        release.send(()).unwrap();
        assert_eq!((starts.recv().unwrap(), starts.recv().unwrap()), (1, 2));
    }

    #[test]
    fn a_panicking_job_frees_its_slot_for_the_next() {
        let workers = Workers::default();
        let slots = Slots::new(1, 4);
        let (done, finished) = mpsc::channel();
        slots.run(&workers, Box::new(|| panic!("tenant code broke the host"))).unwrap();
        slots.run(&workers, Box::new(move || done.send(()).unwrap())).unwrap();
        finished.recv().unwrap();
    }
}

//! [`Budget`]: an invocation's CPU and wall-clock limits, checked by the isolate's interrupt
//! handler. CPU time is the worker thread's, minus the time spent in host operations, so it
//! counts only JavaScript execution.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};

/// Which limit ended an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tripped {
    /// CPU time.
    Cpu,
    /// Wall clock.
    Wall,
}

const NOT_TRIPPED: u8 = 0;
const TRIPPED_CPU: u8 = 1;
const TRIPPED_WALL: u8 = 2;

/// The running invocation's limits; shared with the interrupt handler.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Thread CPU time (ns) when the invocation started; 0 while disarmed.
    cpu_start_ns: AtomicU64,
    /// CPU budget, ns.
    cpu_limit_ns: AtomicU64,
    /// CPU time spent in host operations, ns (not JavaScript's).
    host_ns: AtomicU64,
    wall_deadline: Mutex<Option<Instant>>,
    tripped: AtomicU8,
}

/// The calling thread's CPU time, ns.
pub(crate) fn thread_cpu_ns() -> u64 {
    match clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID) {
        Ok(t) => (t.tv_sec() as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec() as u64),
        Err(_) => 0,
    }
}

impl Budget {
    /// Arms the budget for an invocation starting now on this thread.
    pub(crate) fn arm(&self, cpu: Duration, deadline: Instant) {
        self.cpu_limit_ns.store(u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX), Ordering::SeqCst);
        self.host_ns.store(0, Ordering::SeqCst);
        self.tripped.store(NOT_TRIPPED, Ordering::SeqCst);
        *self.wall_deadline.lock().unwrap_or_else(PoisonError::into_inner) = Some(deadline);
        self.cpu_start_ns.store(thread_cpu_ns().max(1), Ordering::SeqCst);
    }

    /// Disarms it (between invocations nothing is interrupted).
    pub(crate) fn disarm(&self) {
        self.cpu_start_ns.store(0, Ordering::SeqCst);
        *self.wall_deadline.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Adds time spent outside JavaScript (a host operation) that must not count as CPU.
    pub(crate) fn exclude(&self, ns: u64) {
        self.host_ns.fetch_add(ns, Ordering::SeqCst);
    }

    /// The wall-clock deadline, if armed.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        *self.wall_deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The interrupt handler's check: `true` (and the limit recorded) once a limit is spent.
    pub(crate) fn check(&self) -> bool {
        let start = self.cpu_start_ns.load(Ordering::SeqCst);
        if start == 0 {
            return false;
        }
        if self.tripped.load(Ordering::SeqCst) != NOT_TRIPPED {
            return true;
        }
        let used = thread_cpu_ns().saturating_sub(start).saturating_sub(self.host_ns.load(Ordering::SeqCst));
        if used > self.cpu_limit_ns.load(Ordering::SeqCst) {
            self.tripped.store(TRIPPED_CPU, Ordering::SeqCst);
            return true;
        }
        if self.deadline().is_some_and(|d| Instant::now() >= d) {
            self.tripped.store(TRIPPED_WALL, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// Records that the wall clock ran out while waiting outside JavaScript.
    pub(crate) fn trip_wall(&self) {
        let _ = self.tripped.compare_exchange(NOT_TRIPPED, TRIPPED_WALL, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The limit that ended the invocation, if any.
    pub(crate) fn tripped(&self) -> Option<Tripped> {
        match self.tripped.load(Ordering::SeqCst) {
            TRIPPED_CPU => Some(Tripped::Cpu),
            TRIPPED_WALL => Some(Tripped::Wall),
            _ => None,
        }
    }
}

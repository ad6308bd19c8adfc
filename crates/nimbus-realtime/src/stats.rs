//! Invalidation counters, per tenant: what the commit feed made the registry consider, skip,
//! evaluate and push. They exist so tests (and operators) can check that invalidation is
//! precise, not merely that results arrive.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Delivery latencies kept for the percentiles: enough for a 1,000-subscriber benchmark round
/// many times over, small enough (256 KiB) to keep per tenant.
const LATENCY_SAMPLES: usize = 65_536;

/// The server's own commit-to-socket-write latency of each delivered result: from the moment
/// the commit that made a result stale became durable to the moment its frame was written to the
/// socket. It measures fan-out without a client in the loop.
#[derive(Debug, Default)]
pub struct Latency {
    /// The newest samples, in microseconds. A std mutex: held to push one number.
    samples: Mutex<VecDeque<u32>>,
}

impl Latency {
    /// Records one delivery.
    pub fn record(&self, latency: Duration) {
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == LATENCY_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(micros);
    }

    /// `(samples, p50 µs, p99 µs)` over the kept samples.
    fn percentiles(&self) -> (u64, Option<u64>, Option<u64>) {
        let mut sorted: Vec<u32> =
            self.samples.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect();
        if sorted.is_empty() {
            return (0, None, None);
        }
        sorted.sort_unstable();
        let at = |q: f64| u64::from(sorted[((sorted.len() - 1) as f64 * q).round() as usize]);
        (sorted.len() as u64, Some(at(0.50)), Some(at(0.99)))
    }
}

/// Live counters of one tenant's registry. Relaxed atomics: each counter is monotonic on its
/// own; no reader needs them mutually consistent.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) commits_seen: AtomicU64,
    pub(crate) candidates_considered: AtomicU64,
    pub(crate) evaluations: AtomicU64,
    pub(crate) pushes: AtomicU64,
    pub(crate) skipped_by_filter: AtomicU64,
    pub(crate) skipped_other_table: AtomicU64,
    pub(crate) skipped_duplicate: AtomicU64,
    pub(crate) function_evaluations: AtomicU64,
    pub(crate) function_invalidations: AtomicU64,
    pub(crate) function_skipped: AtomicU64,
    pub(crate) latency: std::sync::Arc<Latency>,
}

/// A copy of a tenant's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Commits received from the tenant's commit feed.
    pub commits_seen: u64,
    /// (write, subscription) pairs where the subscription is on the write's table.
    pub candidates_considered: u64,
    /// Query evaluations run (one per shared query, not per subscription).
    pub evaluations: u64,
    /// Results handed to a subscriber (first results included).
    pub pushes: u64,
    /// Candidate pairs skipped because neither the before nor the after image matched the filter.
    pub skipped_by_filter: u64,
    /// (write, subscription) pairs skipped because the subscription is on another table.
    pub skipped_other_table: u64,
    /// Results not pushed because they equalled the last one sent on that subscription.
    pub skipped_duplicate: u64,
    /// Subscriptions registered now (a gauge, not a counter).
    pub subscriptions: u64,
    /// Function subscription runs (one per shared function call, first runs included).
    pub function_evaluations: u64,
    /// (commit, function call) pairs where the commit touched the last run's read set, or
    /// redeployed the functions: each marks the call for a re-run.
    pub function_invalidations: u64,
    /// (commit, function call) pairs skipped because the commit touched nothing the last run read.
    pub function_skipped: u64,
    /// Deliveries whose commit-to-socket-write latency is in the percentiles below.
    pub delivery_samples: u64,
    /// Median commit-to-socket-write latency of the kept deliveries, µs.
    pub delivery_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub delivery_p99_us: Option<u64>,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The counters now (the `subscriptions` gauge is the hub's to fill in).
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (samples, p50, p99) = self.latency.percentiles();
        StatsSnapshot {
            commits_seen: get(&self.commits_seen),
            candidates_considered: get(&self.candidates_considered),
            evaluations: get(&self.evaluations),
            pushes: get(&self.pushes),
            skipped_by_filter: get(&self.skipped_by_filter),
            skipped_other_table: get(&self.skipped_other_table),
            skipped_duplicate: get(&self.skipped_duplicate),
            subscriptions: 0,
            function_evaluations: get(&self.function_evaluations),
            function_invalidations: get(&self.function_invalidations),
            function_skipped: get(&self.function_skipped),
            delivery_samples: samples,
            delivery_p50_us: p50,
            delivery_p99_us: p99,
        }
    }
}

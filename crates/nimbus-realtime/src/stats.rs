//! Invalidation counters, per tenant: what the commit feed made the registry consider, skip,
//! evaluate and push. They exist so tests (and operators) can check that invalidation is
//! precise, not merely that results arrive.

use std::sync::atomic::{AtomicU64, Ordering};

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
}

/// A copy of a tenant's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
        StatsSnapshot {
            commits_seen: get(&self.commits_seen),
            candidates_considered: get(&self.candidates_considered),
            evaluations: get(&self.evaluations),
            pushes: get(&self.pushes),
            skipped_by_filter: get(&self.skipped_by_filter),
            skipped_other_table: get(&self.skipped_other_table),
            skipped_duplicate: get(&self.skipped_duplicate),
            subscriptions: 0,
        }
    }
}

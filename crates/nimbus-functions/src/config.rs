//! [`Limits`]: the operator-set limits of the runtime (functions.md §7–§8), defaulting to the
//! limits module's values.

use std::time::Duration;

use nimbus_core::limits::{
    ACTION_CPU_MS, FUNCTION_CPU_MS, FUNCTION_MAX_NESTED_CALLS, FUNCTION_MEMORY_BYTES, FUNCTION_QUEUE_PER_TENANT,
    FUNCTION_WALL_MS,
};

use crate::deployment::Kind;

/// Limits of every invocation.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory of one isolate, bytes.
    pub memory_bytes: usize,
    /// CPU time of a query or mutation.
    pub cpu: Duration,
    /// CPU time of an action.
    pub action_cpu: Duration,
    /// Wall clock of any invocation.
    pub wall: Duration,
    /// Deepest nested call.
    pub max_nested_calls: u32,
    /// Invocations of one tenant running at once.
    pub concurrency: usize,
    /// Invocations of one tenant waiting beyond those.
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: FUNCTION_MEMORY_BYTES,
            cpu: Duration::from_millis(FUNCTION_CPU_MS),
            action_cpu: Duration::from_millis(ACTION_CPU_MS),
            wall: Duration::from_millis(FUNCTION_WALL_MS),
            max_nested_calls: FUNCTION_MAX_NESTED_CALLS,
            concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            queue: FUNCTION_QUEUE_PER_TENANT,
        }
    }
}

impl Limits {
    /// The CPU budget of an invocation of `kind`.
    pub fn cpu_for(&self, kind: Kind) -> Duration {
        match kind {
            Kind::Action => self.action_cpu,
            Kind::Query | Kind::Mutation => self.cpu,
        }
    }
}

//! [`Deadline`]: the time a page operation has left, and the `browser.timeout` it ends with.

use std::time::Duration;

use nimbus_core::{ErrorCode, NimbusError};
use serde_json::json;
use tokio::time::Instant;

/// When a page operation must have answered.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    at: Instant,
    timeout_ms: u64,
    operation: &'static str,
}

impl Deadline {
    /// A deadline `timeout_ms` from now for `operation` (named in its timeout error).
    pub(crate) fn after(operation: &'static str, timeout_ms: u64) -> Self {
        Self { at: Instant::now() + Duration::from_millis(timeout_ms), timeout_ms, operation }
    }

    /// Time left (zero once passed).
    pub(crate) fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The instant itself, for `tokio::time::timeout_at`.
    pub(crate) fn instant(&self) -> Instant {
        self.at
    }

    /// Whole milliseconds left, at least 1 (for DevTools' own `timeout` parameters).
    pub(crate) fn remaining_ms(&self) -> u64 {
        u64::try_from(self.remaining().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// 504 `browser.timeout` naming the operation and its `timeoutMs`.
    pub(crate) fn expired(&self) -> NimbusError {
        NimbusError::new(
            ErrorCode::BrowserTimeout,
            format!("page/{} did not finish within {} ms", self.operation, self.timeout_ms),
            Some(json!({ "operation": self.operation, "timeoutMs": self.timeout_ms })),
        )
    }
}

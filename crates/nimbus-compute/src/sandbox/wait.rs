//! `?waitFor=ready|stopped` long-polls (conventions §9).

use std::sync::Arc;
use std::time::Duration;

use nimbus_core::NimbusError;
use serde_json::{Value, json};

use super::Sandboxes;
use super::record::{LifecycleState, SandboxRecord};

/// A condition a caller can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// `lifecycleState == ready`.
    Ready,
    /// `stopped` or `failed`.
    Stopped,
}

impl WaitFor {
    /// Parses the query value.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ready" => Some(Self::Ready),
            "stopped" => Some(Self::Stopped),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Stopped => "stopped",
        }
    }

    /// `Some(true)` holds, `Some(false)` can never hold, `None` may still come.
    fn check(self, state: LifecycleState) -> Option<bool> {
        match (self, state) {
            (Self::Ready, LifecycleState::Ready) => Some(true),
            (Self::Ready, LifecycleState::Stopping | LifecycleState::Stopped | LifecycleState::Failed) => Some(false),
            (Self::Stopped, s) if s.is_terminal() => Some(true),
            _ => None,
        }
    }
}

fn observed(record: &SandboxRecord) -> Value {
    json!({
        "lifecycleState": record.state.as_str(),
        "readiness": record.state.readiness(),
        "health": record.state.health(),
        "terminationReason": record.termination_reason.map(|r| r.as_str()),
    })
}

impl Sandboxes {
    /// Waits, without a deadline, until the sandbox is terminal and returns its record; `None`
    /// once it is deleted. For services watching their sandbox.
    pub async fn until_terminal(&self, tenant: &str, id: &str) -> Option<SandboxRecord> {
        let entry = self.entry(tenant, id).ok()?;
        let mut changes = entry.changed.subscribe();
        loop {
            if entry.removed.load(std::sync::atomic::Ordering::Acquire) {
                return None;
            }
            let record = entry.snapshot();
            if record.state.is_terminal() {
                return Some(record);
            }
            changes.changed().await.ok()?;
        }
    }

    /// Holds until the condition holds (200), can no longer hold (409
    /// `op.wait_unsatisfiable`) or `timeout` passes (408 `op.wait_timeout`).
    pub async fn wait_for(
        self: &Arc<Self>,
        tenant: &str,
        id: &str,
        condition: WaitFor,
        timeout: Duration,
    ) -> Result<SandboxRecord, NimbusError> {
        let entry = self.entry(tenant, id)?;
        let mut changes = entry.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let record = self.entry(tenant, id)?.snapshot();
            match condition.check(record.state) {
                Some(true) => return Ok(record),
                Some(false) => return Err(NimbusError::wait_unsatisfiable(condition.as_str(), observed(&record))),
                None => {}
            }
            let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The entry is gone (deleted): the next lookup answers 404.
                Ok(Err(_)) => return Err(NimbusError::not_found("sandbox", id)),
                Err(_) => return Err(NimbusError::wait_timeout(condition.as_str(), timeout_ms, observed(&record))),
            }
        }
    }
}

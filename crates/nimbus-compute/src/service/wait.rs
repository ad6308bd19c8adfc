//! `?waitFor=ready|healthy|stopped` long-polls on the runtime view (services.md §5,
//! conventions §9).

use std::time::Duration;

use nimbus_core::NimbusError;
use serde_json::{Value, json};

use super::Services;
use super::runtime::{Phase, ServiceView};

/// A condition a caller can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceWaitFor {
    /// `readiness == ready`.
    Ready,
    /// `health == healthy`.
    Healthy,
    /// `stopped`, or `failed` with no restart pending.
    Stopped,
}

impl ServiceWaitFor {
    /// Parses the query value.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ready" => Some(Self::Ready),
            "healthy" => Some(Self::Healthy),
            "stopped" => Some(Self::Stopped),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Healthy => "healthy",
            Self::Stopped => "stopped",
        }
    }

    /// `Some(true)` holds, `Some(false)` can never hold, `None` may still come. A service
    /// waiting to restart is `starting`, so `failed` always means no restart is pending.
    fn check(self, phase: Phase) -> Option<bool> {
        match (self, phase) {
            (Self::Ready, Phase::Ready) | (Self::Healthy, Phase::Ready) => Some(true),
            (Self::Ready | Self::Healthy, p) if p.is_terminal() => Some(false),
            (Self::Stopped, p) if p.is_terminal() => Some(true),
            _ => None,
        }
    }
}

fn observed(view: &ServiceView) -> Value {
    json!({
        "lifecycleState": view.phase.as_str(),
        "readiness": view.phase.readiness(),
        "health": view.phase.health(),
    })
}

impl Services {
    /// Holds until the condition holds (200), can no longer hold (409
    /// `op.wait_unsatisfiable`) or `timeout` passes (408 `op.wait_timeout`).
    pub async fn wait_for(
        &self,
        tenant: &str,
        name: &str,
        condition: ServiceWaitFor,
        timeout: Duration,
    ) -> Result<ServiceView, NimbusError> {
        let entry = self.entry(tenant, name)?;
        let mut changes = entry.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            let view = self.get(tenant, name)?;
            match condition.check(view.phase) {
                Some(true) => return Ok(view),
                Some(false) => return Err(NimbusError::wait_unsatisfiable(condition.as_str(), observed(&view))),
                None => {}
            }
            let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(NimbusError::not_found_named("service", name)),
                Err(_) => return Err(NimbusError::wait_timeout(condition.as_str(), timeout_ms, observed(&view))),
            }
        }
    }
}

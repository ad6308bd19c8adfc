//! What runs now: a service's [`Phase`] state machine, the runtime record that survives server
//! restarts ([`RuntimeRecord`], kind `service_runtime`), and the runtime view ([`ServiceView`]).

use nimbus_sandbox::backend::TerminationReason;
use serde::{Deserialize, Serialize};

use crate::sandbox::{BackendKind, LifecycleState, SandboxRecord};

/// A service's `lifecycleState` (services.md §5, sandboxes.md §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not running: never started, stopped on request, or its last run ended cleanly.
    #[default]
    Stopped,
    /// Launching, waiting for the first passing probe, or waiting to restart after a failure.
    Starting,
    /// Running; its probe (if any) passes.
    Ready,
    /// Running, but `failureThreshold` consecutive probes failed.
    NotReady,
    /// A stop is in progress.
    Stopping,
    /// The last run ended `failed` and no restart is pending.
    Failed,
}

impl Phase {
    /// The wire spelling (`state`, `lifecycleState`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::NotReady => "not_ready",
            Self::Stopping => "stopping",
            Self::Failed => "failed",
        }
    }

    /// `readiness`.
    pub fn readiness(self) -> &'static str {
        match self {
            Self::Starting | Self::NotReady | Self::Stopping => "not_ready",
            Self::Ready => "ready",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    /// `health`.
    pub fn health(self) -> &'static str {
        match self {
            Self::Ready => "healthy",
            Self::NotReady | Self::Failed => "unhealthy",
            Self::Starting | Self::Stopping | Self::Stopped => "unknown",
        }
    }

    /// Stopped or failed: nothing runs and nothing will until a start.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped | Self::Failed)
    }
}

/// `lastTermination`: how the previous sandbox of a service ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Termination {
    /// The sandbox (absent when a restart could not even create one).
    pub sandbox_id: Option<String>,
    /// Its exit code, when one was observed.
    pub exit_code: Option<i32>,
    /// Why it ended.
    pub termination_reason: TerminationReason,
    /// Unix ms.
    pub finished_at_ms: i64,
    /// Whether the run counts as failed (restart policy `on_failure`).
    pub failed: bool,
}

impl Termination {
    /// The ending of a terminal sandbox.
    pub fn of(record: &SandboxRecord) -> Self {
        Self {
            sandbox_id: Some(record.id.clone()),
            exit_code: record.exit_code,
            termination_reason: record.termination_reason.unwrap_or(TerminationReason::ServerRestartLost),
            finished_at_ms: record.finished_at_ms.unwrap_or_else(nimbus_core::time::now_ms),
            failed: record.state == LifecycleState::Failed,
        }
    }
}

/// A fenced restart's receipt, kept for replay by `requestId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The caller's idempotency key.
    pub request_id: String,
    /// `restart-<ULID>`.
    pub workload_restart_request_id: String,
    /// The generation the restart was fenced on.
    pub source_generation: u64,
    /// The service's restart counter after this restart.
    pub restart_epoch: u64,
    /// Unix ms (receipts are dropped after the retention).
    pub created_at_ms: i64,
}

/// Whether a fenced restart ran now or was answered from an earlier receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// This request started the restart.
    Applied,
    /// A restart with this `requestId` was already accepted; nothing new ran.
    Replayed,
}

impl Disposition {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Replayed => "replayed",
        }
    }
}

/// A service's runtime state, persisted on every change so a restarted server resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuntimeRecord {
    /// Started and not since stopped or ended for good: a restarted server resumes it.
    pub enabled: bool,
    /// Lifecycle state.
    pub phase: Phase,
    /// The current sandbox (starting … stopping), if any.
    pub sandbox_id: Option<String>,
    /// Its backend.
    pub sandbox_backend: Option<BackendKind>,
    /// The generation the current run started from.
    pub definition_generation: Option<u64>,
    /// Consecutive policy restarts.
    pub restart_count: u32,
    /// How the previous sandbox ended.
    pub last_termination: Option<Termination>,
    /// Restarts requested through the API so far.
    pub restart_epoch: u64,
    /// Fenced restarts' receipts (kept for the retention period).
    pub receipts: Vec<Receipt>,
    /// Bumped on every change.
    pub version: u64,
}

/// The runtime view (`GET /services/{name}`): what runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// Tenant.
    pub tenant_id: String,
    /// Name.
    pub name: String,
    /// `sandbox`, `builtIn` or `external`.
    pub kind: &'static str,
    /// Lifecycle state.
    pub phase: Phase,
    /// The live sandbox (present only from `starting` to `stopping`).
    pub sandbox_id: Option<String>,
    /// Its backend.
    pub sandbox_backend: Option<BackendKind>,
    /// The generation the current run started from.
    pub definition_generation: Option<u64>,
    /// Consecutive policy restarts.
    pub restart_count: u32,
    /// How the previous sandbox ended.
    pub last_termination: Option<Termination>,
}

/// What a session opening on a service needs to know of it (sessions.md §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    /// The service's name.
    pub name: String,
    /// The definition's current generation.
    pub generation: u64,
    /// `sandbox`, `builtIn` or `external`.
    pub backend: &'static str,
    /// The provider of a `builtIn` service.
    pub provider: Option<String>,
    /// The live sandbox of a sandbox-backed service.
    pub sandbox_id: Option<String>,
    /// Whether the service is `ready`.
    pub ready: bool,
    /// Whether a lifecycle operation (start, stop, restart) is in progress.
    pub operation_in_progress: bool,
}

//! [`SandboxRecord`]: what Nimbus remembers of one sandbox, persisted as JSON in the system
//! database, and [`LifecycleState`], its state machine.

use nimbus_egress::rules::NetworkSpec;
use nimbus_sandbox::backend::{Exit, Resources, TerminationReason};
use serde::{Deserialize, Serialize};

use super::request::{BackendKind, Owner, Profile};
use crate::labels::Labels;

/// `status.lifecycleState` (sandboxes.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    /// Being set up (image resolution, process spawn).
    Starting,
    /// Main process running.
    Ready,
    /// Stop in progress.
    Stopping,
    /// Ended normally or on request (terminal).
    Stopped,
    /// Ended abnormally or never started (terminal).
    Failed,
}

impl LifecycleState {
    /// Every state, for parsing filters.
    pub const ALL: [Self; 5] = [Self::Starting, Self::Ready, Self::Stopping, Self::Stopped, Self::Failed];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// `stopped` or `failed`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped | Self::Failed)
    }

    /// `readiness` for this state.
    pub fn readiness(self) -> &'static str {
        match self {
            Self::Starting | Self::Stopping => "not_ready",
            Self::Ready => "ready",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    /// `health` for this state.
    pub fn health(self) -> &'static str {
        match self {
            Self::Ready => "healthy",
            Self::Failed => "unhealthy",
            Self::Starting | Self::Stopping | Self::Stopped => "unknown",
        }
    }
}

/// The echo of `spec.process` (argv, entrypoint, command and environment are counted, never
/// shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessEcho {
    /// Length of the effective command line.
    pub argv_count: usize,
    /// Length of the requested entrypoint, if one was given.
    pub entrypoint_count: Option<usize>,
    /// Length of the requested command, if one was given.
    pub command_count: Option<usize>,
    /// Entries of the effective environment (or the requested one until the image resolves).
    pub env_count: usize,
    /// Effective working directory (requested until the image resolves).
    pub cwd: Option<String>,
    /// Effective user (requested until the image resolves).
    pub user: Option<String>,
    /// Pty or pipes.
    pub terminal: bool,
}

/// The resolved image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    /// Normalized reference.
    pub reference: String,
    /// Manifest digest.
    pub digest: String,
}

/// One sandbox, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxRecord {
    /// Owning tenant.
    pub tenant_id: String,
    /// Server-issued id.
    pub id: String,
    /// Bumped on every change (`resourceVersion`).
    pub version: u64,
    /// Bumped on every change of the spec (`metadata.generation`): network updates.
    #[serde(default = "first_generation")]
    pub generation: u64,
    /// Creation time, Unix ms.
    pub created_at_ms: i64,
    /// Last change, Unix ms.
    pub updated_at_ms: i64,
    /// Last lifecycle transition, Unix ms.
    pub transition_at_ms: i64,
    /// Labels.
    pub labels: Labels,
    /// Profile.
    pub profile: Profile,
    /// `spec.owner` (records written before owners existed were standalone).
    #[serde(default)]
    pub owner: Owner,
    /// Backend.
    pub backend: BackendKind,
    /// The reference as requested.
    pub requested_reference: String,
    /// Process echo.
    pub process: ProcessEcho,
    /// Effective resources.
    pub resources: Resources,
    /// `spec.network`, normalized (records from before egress rules: deny-all).
    #[serde(default)]
    pub network: NetworkSpec,
    /// Ports of its own loopback the egress proxy never connects it to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_ports: Vec<u16>,
    /// Lifecycle state.
    pub state: LifecycleState,
    /// The image, once resolved.
    pub image: Option<ImageRef>,
    /// When the main process started, Unix ms.
    pub started_at_ms: Option<i64>,
    /// When it ended, Unix ms.
    pub finished_at_ms: Option<i64>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Why it ended.
    pub termination_reason: Option<TerminationReason>,
    /// Human text for failures.
    pub message: Option<String>,
    /// When the record and logs disappear, Unix ms.
    pub retained_until_ms: Option<i64>,
}

fn first_generation() -> u64 {
    1
}

impl SandboxRecord {
    /// Applies an ending: the terminal state, exit fields and retention deadline.
    pub fn end(&mut self, exit: &Exit, retention_ms: i64) {
        let finished = i64::try_from(exit.finished_at_ms).unwrap_or(i64::MAX);
        self.state = if exit.is_clean() { LifecycleState::Stopped } else { LifecycleState::Failed };
        self.finished_at_ms = Some(finished);
        self.exit_code = exit.exit_code;
        self.termination_reason = Some(exit.reason);
        self.message = exit.message.clone();
        self.retained_until_ms = Some(finished.saturating_add(retention_ms));
    }

    /// Whether the sandbox counts against the tenant's quotas.
    pub fn is_active(&self) -> bool {
        !self.state.is_terminal()
    }
}

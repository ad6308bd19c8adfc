//! [`SessionRecord`]: what Nimbus remembers of one session, persisted as JSON in the system
//! database, with its state machine ([`SessionState`]) and how it ended ([`Ending`]).

use serde::{Deserialize, Serialize};

use super::target::{Channel, ServiceBackend};

/// `status.lifecycleState` (sessions.md §4): `open → closed` or `open → expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// The lease is active.
    Open,
    /// Ended by a close (caller, target, service, tenant); terminal.
    Closed,
    /// Ended because `expiresAt` passed; terminal.
    Expired,
}

impl SessionState {
    /// Every state, for parsing filters.
    pub const ALL: [Self; 3] = [Self::Open, Self::Closed, Self::Expired];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Expired => "expired",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Why a session is no longer open (the `closeReason` table of sessions.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "text")]
pub enum Ending {
    /// `POST …/close`: the caller's text (trimmed; `client_close` when absent or blank).
    ClientClosed(String),
    /// `expiresAt` was reached.
    Expired,
    /// The target sandbox stopped, failed or was deleted.
    TargetStopped,
    /// The target service was force-deleted.
    ServiceForceDeleted,
    /// Channels could not be set up after creation.
    ChannelOpenFailed,
    /// The tenant was deleted.
    TenantDeleted,
}

impl Ending {
    /// `status.closeReason`.
    pub fn close_reason(&self) -> &str {
        match self {
            Self::ClientClosed(text) => text,
            Self::Expired => "expired",
            Self::TargetStopped => "target_stopped",
            Self::ServiceForceDeleted => "service_force_deleted",
            Self::ChannelOpenFailed => "channel_open_failed",
            Self::TenantDeleted => "tenant_deleted",
        }
    }

    /// The `Open` condition's `reason` once ended.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            Self::ClientClosed(_) => "ClientClosed",
            Self::Expired => "LeaseExpired",
            Self::TargetStopped => "TargetStopped",
            Self::ServiceForceDeleted => "ServiceForceDeleted",
            Self::ChannelOpenFailed => "ChannelOpenFailed",
            Self::TenantDeleted => "TenantDeleted",
        }
    }

    /// The terminal state this ending leads to.
    pub fn state(&self) -> SessionState {
        match self {
            Self::Expired => SessionState::Expired,
            _ => SessionState::Closed,
        }
    }
}

/// `spec.target` as asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetRef {
    /// `{"sandbox": {"id"}}`.
    Sandbox {
        /// Sandbox id.
        id: String,
    },
    /// `{"service": {"name"}}`.
    Service {
        /// Service name.
        name: String,
    },
}

/// `spec.targetSnapshot`: what the session bound to at the open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetSnapshot {
    /// A sandbox.
    #[serde(rename_all = "camelCase")]
    Sandbox {
        /// Sandbox id.
        id: String,
        /// Its generation (sandboxes run once: always 1).
        generation: u64,
        /// `worker` or `desktop`.
        profile: String,
        /// `container` or `krun`.
        backend: String,
    },
    /// A service.
    #[serde(rename_all = "camelCase")]
    Service {
        /// Service name.
        name: String,
        /// The service's generation at the open.
        generation: u64,
        /// How it runs.
        backend: ServiceBackend,
        /// Built-in provider.
        provider: Option<String>,
        /// The sandbox running it (sandbox-backed services).
        sandbox_id: Option<String>,
    },
}

impl TargetSnapshot {
    /// The pinned execution generation (`targetGeneration` of `opened` frames).
    pub fn generation(&self) -> u64 {
        match self {
            Self::Sandbox { generation, .. } | Self::Service { generation, .. } => *generation,
        }
    }

    /// The sandbox whose processes and files the session's channels reach, if any.
    pub fn sandbox_id(&self) -> Option<&str> {
        match self {
            Self::Sandbox { id, .. } => Some(id),
            Self::Service { sandbox_id, .. } => sandbox_id.as_deref(),
        }
    }
}

/// One session, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// Owning tenant.
    pub tenant_id: String,
    /// `session-<ULID>`.
    pub id: String,
    /// Starts at 1; bumped on every state change and every renew (also the `resourceVersion`,
    /// since nothing else changes a session).
    pub generation: u64,
    /// Creation time, Unix ms.
    pub created_at_ms: i64,
    /// Last change, Unix ms.
    pub updated_at_ms: i64,
    /// Last lifecycle transition, Unix ms (`lastTransitionTime`).
    pub transition_at_ms: i64,
    /// `spec.target`.
    pub target: TargetRef,
    /// `spec.targetSnapshot`.
    pub snapshot: TargetSnapshot,
    /// `spec.channels`, in the order asked.
    pub channels: Vec<Channel>,
    /// `expiresAt`, Unix ms.
    pub expires_at_ms: i64,
    /// Lifecycle state.
    pub state: SessionState,
    /// When it stopped being open, Unix ms.
    pub closed_at_ms: Option<i64>,
    /// Why it stopped being open.
    pub ending: Option<Ending>,
    /// The browser context a session on a browser service owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserBinding>,
}

/// A browser session's own context in its service's Chromium (ids are Chromium's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowserBinding {
    /// The browser context (`browserContextId`).
    pub context_id: String,
    /// The session's first page (a target id).
    pub first_page: String,
}

impl SessionRecord {
    /// Whether the lease is active.
    pub fn is_open(&self) -> bool {
        self.state == SessionState::Open
    }

    /// The service this session targets, if any.
    pub fn service_name(&self) -> Option<&str> {
        match &self.target {
            TargetRef::Service { name } => Some(name),
            TargetRef::Sandbox { .. } => None,
        }
    }
}

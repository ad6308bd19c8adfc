//! What a session binds to ([`SessionTarget`]) and the [`Channel`]s it may carry.

use nimbus_core::NimbusError;
use serde::{Deserialize, Serialize};

/// A channel a session is opened with (sessions.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The target's main process: output stream, input, resize.
    Stdio,
    /// Commands run inside the target (`/exec`, `/processes`).
    Exec,
    /// Confined file access (`/files`).
    Files,
    /// Chrome DevTools protocol of a browser service, confined to the session's context.
    Cdp,
    /// Page operations of a browser service, on the session's pages.
    Page,
}

impl Channel {
    /// Every channel, in wire order.
    pub const ALL: [Self; 5] = [Self::Stdio, Self::Exec, Self::Files, Self::Cdp, Self::Page];

    /// The channels a sandbox (or a sandbox-backed service) carries.
    pub const SANDBOX: [Self; 3] = [Self::Stdio, Self::Exec, Self::Files];

    /// The channels a browser service carries (`files` reaches its sandbox's filesystem).
    pub const BROWSER: [Self; 3] = [Self::Cdp, Self::Page, Self::Files];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Exec => "exec",
            Self::Files => "files",
            Self::Cdp => "cdp",
            Self::Page => "page",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    /// Validates a requested channel list: 1–8 entries, known names, no duplicates.
    pub fn parse_list(raw: &[String]) -> Result<Vec<Self>, NimbusError> {
        if raw.is_empty() || raw.len() > MAX_CHANNELS {
            return Err(NimbusError::invalid_input("channels", format!("must hold 1 to {MAX_CHANNELS} entries")));
        }
        let mut channels = Vec::with_capacity(raw.len());
        for (i, name) in raw.iter().enumerate() {
            let channel = Self::parse(name).ok_or_else(|| {
                NimbusError::invalid_input(format!("channels[{i}]"), "must be one of stdio, exec, files, cdp, page")
            })?;
            if channels.contains(&channel) {
                return Err(NimbusError::invalid_input(format!("channels[{i}]"), format!("`{name}` is listed twice")));
            }
            channels.push(channel);
        }
        Ok(channels)
    }
}

/// Most channels in one open request (the contract's list has 1–8 entries).
const MAX_CHANNELS: usize = 8;

/// How a service runs (`targetSnapshot.service.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceBackend {
    /// The service runs in a sandbox.
    #[serde(rename = "sandbox")]
    Sandbox,
    /// A built-in provider (`browser`, ...).
    #[serde(rename = "builtIn")]
    BuiltIn,
    /// An external endpoint.
    #[serde(rename = "external")]
    External,
}

impl ServiceBackend {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::BuiltIn => "builtIn",
            Self::External => "external",
        }
    }
}

/// The target of an open request, already resolved by the caller. A sandbox is named by id and
/// looked up here; a service is resolved by the services registry (which knows its current
/// definition and sandbox) and passed in as it was at the open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionTarget {
    /// A standalone sandbox.
    Sandbox {
        /// Its id.
        id: String,
    },
    /// A service, as resolved at the open.
    Service {
        /// Its name.
        name: String,
        /// The sandbox currently running it (sandbox-backed services only).
        sandbox_id: Option<String>,
        /// The service's generation at the open (pinned in `targetSnapshot`).
        generation: u64,
        /// How it runs.
        backend: ServiceBackend,
        /// The provider of a built-in service.
        provider: Option<String>,
    },
}

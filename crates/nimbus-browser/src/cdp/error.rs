//! Why a DevTools call failed, and its catalogued form where the failure says nothing more
//! specific (the page operations map the page-related cases themselves).

use std::time::Duration;

use nimbus_core::{ErrorCode, NimbusError};
use serde_json::json;

/// DevTools' error code for a command on a session that no longer exists.
const SESSION_NOT_FOUND: i64 = -32001;

/// A DevTools call that did not answer with a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CdpError {
    /// The connection to Chromium is gone (or never answered): every pending call fails with
    /// this at once.
    #[error("the DevTools connection closed: {reason}")]
    Closed {
        /// What ended it (a socket error, Chromium closing it, a message over the size bound).
        reason: String,
    },
    /// No answer within the call's deadline.
    #[error("{method} did not answer within {} ms", after.as_millis())]
    Timeout {
        /// The command.
        method: String,
        /// The deadline it was given.
        after: Duration,
    },
    /// The target's renderer died while the call was pending (a crashed renderer never answers).
    #[error("the page crashed")]
    Crashed,
    /// The DevTools session the call was sent on detached (its target closed).
    #[error("the page's DevTools session ended")]
    Detached,
    /// Chromium answered with a DevTools error.
    #[error("{message} ({code})")]
    Protocol {
        /// DevTools' error code (`-32000` for most command failures).
        code: i64,
        /// Chromium's message, e.g. `No node with given id found`.
        message: String,
    },
    /// Chromium's answer was not the JSON the command documents.
    #[error("unexpected answer to {method}: {what}")]
    Malformed {
        /// The command.
        method: String,
        /// What was wrong with it.
        what: String,
    },
}

impl CdpError {
    /// A DevTools error answer; a missing session is [`CdpError::Detached`].
    pub(crate) fn protocol(code: i64, message: String) -> Self {
        if code == SESSION_NOT_FOUND { Self::Detached } else { Self::Protocol { code, message } }
    }

    /// Whether Chromium answered a DevTools error whose message contains `text`.
    pub fn is_protocol(&self, text: &str) -> bool {
        matches!(self, Self::Protocol { message, .. } if message.contains(text))
    }

    /// The catalogued error when nothing more specific applies: a closed connection or a call
    /// Chromium never answered is `browser.unavailable`; anything else is `service.internal`
    /// (logged here, since its text is not for clients).
    pub fn into_nimbus(self) -> NimbusError {
        match self {
            Self::Closed { reason } => unavailable(reason),
            Self::Timeout { .. } => unavailable(self.to_string()),
            other => {
                tracing::warn!(error = %other, "unexpected DevTools failure");
                NimbusError::internal()
            }
        }
    }
}

impl From<CdpError> for NimbusError {
    fn from(error: CdpError) -> Self {
        error.into_nimbus()
    }
}

/// 503 `browser.unavailable` with `detail.reason`; the caller adds `detail.service` when it
/// knows the service's name.
pub fn unavailable(reason: impl Into<String>) -> NimbusError {
    let reason = reason.into();
    NimbusError::new(
        ErrorCode::BrowserUnavailable,
        format!("Chromium did not answer: {reason}"),
        Some(json!({ "reason": reason })),
    )
}

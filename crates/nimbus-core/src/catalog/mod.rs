//! The error catalog: one enum, [`ErrorCode`], is the only place where a code, its HTTP status,
//! severity, retryability, remediation, detail shape and meaning are written down.
//!
//! `GET /errors` serves [`catalog_json`], `docs/errors.md` is [`render_markdown`] and the SDK's
//! error classes (`packages/nimbus/src/errors.generated.ts`) are [`render_typescript`]; a test
//! keeps the committed files equal to the generated ones.

mod render;
mod table;
mod typescript;

pub use render::{catalog_json, render_markdown};
pub use table::ErrorCode;
pub use typescript::{render_typescript, typescript_class_name};

use serde::Serialize;

/// The catalog's version, published in `GET /errors`.
pub const CATALOG_VERSION: &str = "1.0.0";

/// How bad an error is for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The operation or connection cannot continue.
    Fatal,
    /// The operation failed.
    Error,
    /// Something needs attention but the operation went through.
    Warning,
}

/// Where an error can be observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// HTTP responses only.
    Http,
    /// WebSocket frames only (no HTTP status).
    Ws,
    /// Both HTTP responses and WebSocket frames.
    Both,
}

/// What a client should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Retry the same request (with backoff).
    Retry,
    /// Wait (`Retry-After` when present), then retry.
    WaitAndRetry,
    /// Change the request.
    FixRequest,
    /// Send less.
    ReduceRequest,
    /// Obtain a valid admin token.
    Reauthenticate,
    /// Re-read the resource, then retry.
    RefreshResource,
    /// Add an index.
    CreateIndex,
    /// Start the operation over from a fresh read.
    RestartTransaction,
    /// Change the function code.
    FixFunction,
    /// Use a compatible client version.
    UpgradeClient,
    /// Use a compatible server version.
    UpgradeServer,
    /// Ask the operator; the caller cannot fix it.
    ContactOperator,
}

impl Action {
    /// Every action, in the order `docs/errors.md` lists them.
    pub const ALL: [Action; 12] = [
        Action::Retry,
        Action::WaitAndRetry,
        Action::FixRequest,
        Action::ReduceRequest,
        Action::Reauthenticate,
        Action::RefreshResource,
        Action::CreateIndex,
        Action::RestartTransaction,
        Action::FixFunction,
        Action::UpgradeClient,
        Action::UpgradeServer,
        Action::ContactOperator,
    ];

    /// The wire spelling (`fix_request`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::WaitAndRetry => "wait_and_retry",
            Action::FixRequest => "fix_request",
            Action::ReduceRequest => "reduce_request",
            Action::Reauthenticate => "reauthenticate",
            Action::RefreshResource => "refresh_resource",
            Action::CreateIndex => "create_index",
            Action::RestartTransaction => "restart_transaction",
            Action::FixFunction => "fix_function",
            Action::UpgradeClient => "upgrade_client",
            Action::UpgradeServer => "upgrade_server",
            Action::ContactOperator => "contact_operator",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// The default message shown with this action.
    pub fn message(self) -> &'static str {
        match self {
            Action::Retry => "Retry the request with backoff.",
            Action::WaitAndRetry => "Wait for the advised delay, then retry.",
            Action::FixRequest => "Correct the request payload before retrying.",
            Action::ReduceRequest => "Send a smaller request.",
            Action::Reauthenticate => "Send a valid admin token (`nimbus auth token`).",
            Action::RefreshResource => "Re-read the resource to get its current generation, then retry.",
            Action::CreateIndex => "Add an index that serves this query.",
            Action::RestartTransaction => "Start the operation over from a fresh read.",
            Action::FixFunction => "Change the function code.",
            Action::UpgradeClient => "Use a client that speaks a protocol this server supports.",
            Action::UpgradeServer => "Use a server version that supports this feature.",
            Action::ContactOperator => "Ask the operator of this server; the request cannot fix it.",
        }
    }
}

/// Everything the catalog says about one code.
#[derive(Debug, Clone, Copy)]
pub struct CodeSpec {
    /// The stable code string, `area.name`.
    pub code: &'static str,
    /// HTTP status, or `None` for WebSocket-only codes.
    pub http_status: Option<u16>,
    /// Default severity.
    pub severity: Severity,
    /// Default retryability (an instance may override it where the catalog says "per instance").
    pub retryable: bool,
    /// Remediation action, if the catalog defines one.
    pub action: Option<Action>,
    /// The detail shape: `(key, JSON type)` pairs; an optional key's type ends in `?`.
    /// Empty means the code carries no detail (`null`).
    pub detail: &'static [(&'static str, &'static str)],
    /// What the code means.
    pub meaning: &'static str,
    /// Where it is observed.
    pub surface: Surface,
    /// Catalogued for compatibility but never emitted by this version.
    pub reserved: bool,
    /// Whether Nimbus added this code beyond the public product.
    pub ours: bool,
    /// The catalog version that introduced the code.
    pub since: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_well_formed_and_consistent_with_their_surface() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let spec = code.spec();
            assert!(seen.insert(spec.code), "duplicate code {}", spec.code);
            let (area, name) = spec.code.split_once('.').expect("code has a dot");
            assert!(!area.is_empty() && area.bytes().all(|b| b.is_ascii_lowercase()), "{}", spec.code);
            assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", spec.code);
            match spec.surface {
                Surface::Ws => assert!(spec.http_status.is_none(), "{} is WS-only", spec.code),
                Surface::Http | Surface::Both => {
                    let status = spec.http_status.expect("HTTP codes have a status");
                    assert!((400..600).contains(&status), "{}", spec.code);
                }
            }
            assert_eq!(ErrorCode::from_code(spec.code), Some(*code));
        }
    }

    #[test]
    fn action_spellings_match_their_serialization() {
        for action in Action::ALL {
            assert_eq!(serde_json::to_value(action).ok(), Some(serde_json::Value::from(action.as_str())));
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("fix"), None);
    }
}

//! Chromium → client events: only what concerns owned targets and sessions reaches the client.
//! A foreign target this connection was auto-attached to is released by the proxy itself, or
//! another session's page would stay paused waiting for this client.

use serde_json::{Value, json};

use super::message::{context_of, is_browser_target, own_command};
use super::owned::ownable_type;
use super::pending::Waiter;
use super::{Action, Confinement, MAX_PENDING};

/// Browser-session events that carry nothing of other sessions: download events come only for
/// contexts this connection set a download behaviour on (owned ones), `Inspector` ones concern
/// the connection itself.
const BROWSER_EVENTS: [&str; 5] = [
    "Browser.downloadWillBegin",
    "Browser.downloadProgress",
    "Inspector.detached",
    "Inspector.targetCrashed",
    "Inspector.targetReloadedAfterCrash",
];

impl Confinement {
    /// An event (a message with a method and no id), on `session` (`None`: the browser's).
    pub(super) fn on_event(&mut self, method: &str, session: Option<&str>, text: &str, actions: &mut Vec<Action>) {
        if let Some(session) = session
            && !self.owned.owns_session(session)
        {
            return;
        }
        if method.starts_with("Target.") {
            self.on_target_event(method, session, text, actions);
            return;
        }
        if session.is_none() && !BROWSER_EVENTS.contains(&method) {
            return;
        }
        actions.push(Action::ToClient(text.to_owned()));
    }

    fn on_target_event(&mut self, method: &str, session: Option<&str>, text: &str, actions: &mut Vec<Action>) {
        let Ok(message) = serde_json::from_str::<Value>(text) else { return };
        let params = message.get("params").unwrap_or(&Value::Null);
        let pass = match method {
            "Target.targetCreated" | "Target.targetInfoChanged" => {
                let info = params.get("targetInfo").unwrap_or(&Value::Null);
                self.owned.note_target(info) || is_browser_target(info)
            }
            "Target.targetDestroyed" | "Target.targetCrashed" => match params.get("targetId").and_then(Value::as_str) {
                Some(target) if self.owned.owns_target(target) => {
                    if method == "Target.targetDestroyed" {
                        self.owned.forget_target(target);
                    }
                    true
                }
                _ => false,
            },
            "Target.attachedToTarget" => self.on_attached(params, session, actions),
            "Target.detachedFromTarget" => match params.get("sessionId").and_then(Value::as_str) {
                Some(detached) if self.owned.owns_session(detached) => {
                    self.owned.forget_session(detached);
                    true
                }
                _ => false,
            },
            // `receivedMessageFromTarget` belongs to non-flat sessions, which are refused;
            // anything newer is unknown.
            _ => false,
        };
        if pass {
            actions.push(Action::ToClient(text.to_owned()));
        }
    }

    /// A new attachment (`session` is the parent it arrived on): owned when its target is an
    /// ownable type in an owned context, or has no context and arrived on an owned session (a
    /// child of an owned target); any other is released and not shown. Answers whether to pass.
    fn on_attached(&mut self, params: &Value, session: Option<&str>, actions: &mut Vec<Action>) -> bool {
        let Some(attached) = params.get("sessionId").and_then(Value::as_str) else { return false };
        let info = params.get("targetInfo").unwrap_or(&Value::Null);
        let in_owned_context = match context_of(info) {
            Some(context) => self.owned.owns_context(context),
            None => session.is_some(),
        };
        if in_owned_context && ownable_type(info) && self.owned.add_session(attached, session) {
            self.owned.note_target(info);
            return true;
        }
        let waiting = params.get("waitingForDebugger") == Some(&Value::Bool(true));
        self.release(attached, session, waiting, actions);
        false
    }

    /// Lets a foreign target go: resumes it when it waits for this connection, then detaches
    /// from it on the session that attached it. The replies are dropped.
    fn release(&mut self, attached: &str, parent: Option<&str>, waiting: bool, actions: &mut Vec<Action>) {
        // Releases are not the client's doing and must not be refused for the client's
        // backlog; this bound only stops a misbehaving Chromium that never answers.
        if self.pending.len() >= 2 * MAX_PENDING {
            tracing::warn!(session = attached, "cdp: too many unanswered commands to release a foreign target");
            return;
        }
        if waiting {
            let id = self.pending.add(Waiter::Own);
            actions.push(Action::ToChromium(own_command(
                id,
                "Runtime.runIfWaitingForDebugger",
                json!({}),
                Some(attached),
            )));
        }
        let id = self.pending.add(Waiter::Own);
        actions.push(Action::ToChromium(own_command(
            id,
            "Target.detachFromTarget",
            json!({ "sessionId": attached }),
            parent,
        )));
    }
}

//! Scripted message sequences for every rule: what the client sends, what Chromium answers, and
//! exactly what the proxy passes on, each way.

mod commands;
mod events;
mod ids;
mod lifecycle;
mod targets;

use serde_json::{Value, json};

use super::{Action, Confinement, Scope};

/// The session's context.
const OWN: &str = "CTX-OWN";
/// Another session's context.
const FOREIGN: &str = "CTX-FOREIGN";

/// A confinement under test, with helpers to script both sides.
struct Rig {
    confinement: Confinement,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_max_pages(3)
    }

    fn with_max_pages(max_pages: usize) -> Rig {
        Rig { confinement: Confinement::new(Scope { context_id: OWN.into(), max_pages }) }
    }

    fn client(&mut self, message: Value) -> Vec<Action> {
        self.confinement.from_client(&message.to_string())
    }

    fn chromium(&mut self, message: Value) -> Vec<Action> {
        self.confinement.from_chromium(&message.to_string())
    }

    /// Sends a client command that must go to Chromium unchanged but for its id, and answers
    /// the proxy id it went under.
    fn passes(&mut self, command: Value) -> u64 {
        let sent = only_chromium(&self.client(command.clone()));
        let id = sent["id"].as_u64().expect("a proxy id");
        let mut expected = command;
        expected["id"] = json!(id);
        if expected.get("params").is_none() {
            expected["params"] = json!({});
        }
        assert_eq!(sent, expected);
        id
    }

    /// Sends a client command that must be refused, with nothing sent to Chromium.
    fn refuses(&mut self, command: Value) {
        let id = command["id"].clone();
        let actions = self.client(command.clone());
        let reply = only_client(&actions);
        assert_eq!(reply["id"], id, "{command}");
        assert_eq!(reply["error"]["code"], json!(-32000), "{command}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("Not allowed: "), "{command}: {message}");
    }

    /// Chromium reports an attachment of an owned page on the browser session; it must reach
    /// the client as it is.
    fn attach_page(&mut self, session: &str, target: &str) {
        let event = attached(session, target, OWN, "page", false, None);
        let actions = self.chromium(event.clone());
        assert_eq!(only_client(&actions), event);
    }

    /// Chromium announces an owned page (with `Target.setDiscoverTargets`).
    fn discover_page(&mut self, target: &str, context: &str) {
        let event = json!({"method": "Target.targetCreated", "params": {"targetInfo": info(target, context, "page")}});
        let actions = self.chromium(event.clone());
        assert_eq!(only_client(&actions), event);
    }
}

/// A `TargetInfo`.
fn info(target: &str, context: &str, kind: &str) -> Value {
    json!({"targetId": target, "type": kind, "title": "", "url": "about:blank", "attached": false,
           "canAccessOpener": false, "browserContextId": context})
}

/// A `Target.attachedToTarget` event, on `parent` (`None`: the browser session).
fn attached(session: &str, target: &str, context: &str, kind: &str, waiting: bool, parent: Option<&str>) -> Value {
    let mut event = json!({"method": "Target.attachedToTarget", "params": {
        "sessionId": session, "targetInfo": info(target, context, kind), "waitingForDebugger": waiting}});
    if let Some(parent) = parent {
        event["sessionId"] = json!(parent);
    }
    event
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("the proxy writes JSON")
}

/// The messages to Chromium, parsed.
fn to_chromium(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::ToChromium(text) => Some(parse(text)),
            _ => None,
        })
        .collect()
}

/// The messages to the client, parsed.
fn to_client(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::ToClient(text) => Some(parse(text)),
            _ => None,
        })
        .collect()
}

/// The one action, a message to Chromium.
fn only_chromium(actions: &[Action]) -> Value {
    match actions {
        [Action::ToChromium(text)] => parse(text),
        other => panic!("expected one message to Chromium, got {other:?}"),
    }
}

/// The one action, a message to the client.
fn only_client(actions: &[Action]) -> Value {
    match actions {
        [Action::ToClient(text)] => parse(text),
        other => panic!("expected one message to the client, got {other:?}"),
    }
}

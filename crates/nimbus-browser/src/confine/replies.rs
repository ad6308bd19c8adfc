//! Chromium → client replies: mapped back to the client's id, filtered where the command lists
//! the browser's targets or contexts, and read for what the socket now owns. The answers to the
//! proxy's own checks decide on the held command here too.

use serde_json::{Map, Number, Value, json};

use super::message::{is_browser_target, not_allowed, own_command, target_id_of, type_of};
use super::pending::Waiter;
use super::rules::{Check, Checked, Hook};
use super::{Action, Confinement, Phase};

impl Confinement {
    /// A reply (a message with an id).
    pub(super) fn on_reply(&mut self, id: &Value, text: &str, actions: &mut Vec<Action>) {
        let Some(id) = id.as_u64().and_then(|id| u32::try_from(id).ok()) else { return };
        let Some(waiter) = self.pending.take(id) else { return };
        let reply = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(reply)) => reply,
            _ => Map::new(),
        };
        match waiter {
            Waiter::Own => {}
            Waiter::Teardown => self.teardown_left = self.teardown_left.saturating_sub(1),
            Waiter::Client { id, hook } => self.answer_client(id, hook, reply, actions),
            Waiter::Check { check, held } => {
                self.checking = false;
                let verdict = match check {
                    Check::Target(target) => self.target_checked(&target, &reply),
                    Check::PageCount => self.pages_counted(&reply),
                };
                match verdict {
                    Ok(checked) => self.decide_and_act(held, checked, actions),
                    Err(why) => actions.push(Action::ToClient(not_allowed(&held.id, &why))),
                }
                self.drain(actions);
            }
        }
    }

    fn answer_client(&mut self, id: Number, hook: Hook, mut reply: Map<String, Value>, actions: &mut Vec<Action>) {
        if !reply.contains_key("result") && !reply.contains_key("error") {
            // Unreadable: the client must not wait forever for it.
            reply.insert("error".into(), json!({ "code": -32603, "message": "Unreadable reply from the browser" }));
        }
        self.learn(hook, reply.get_mut("result"), actions);
        reply.insert("id".into(), Value::Number(id));
        actions.push(Action::ToClient(Value::Object(reply).to_string()));
    }

    /// Applies a command's hook to its result (`None` when the command failed).
    fn learn(&mut self, hook: Hook, result: Option<&mut Value>, actions: &mut Vec<Action>) {
        let str_field = |result: &Option<&mut Value>, name: &str| -> Option<String> {
            result.as_ref().and_then(|r| r.get(name)).and_then(Value::as_str).map(str::to_owned)
        };
        match hook {
            Hook::None => {}
            Hook::FilterTargets => {
                if let Some(Value::Array(infos)) = result.and_then(|r| r.get_mut("targetInfos")) {
                    infos.retain(|info| self.owned.note_target(info) || is_browser_target(info));
                }
            }
            Hook::FilterContexts => {
                if let Some(Value::Object(result)) = result {
                    // The session's context plays the default one, which Chromium lists apart.
                    if let Some(Value::Array(contexts)) = result.get_mut("browserContextIds") {
                        contexts.retain(|context| context.as_str().is_some_and(|id| self.owned.created_context(id)));
                    }
                    if result.contains_key("defaultBrowserContextId") {
                        let own = Value::String(self.owned.session_context().to_owned());
                        result.insert("defaultBrowserContextId".into(), own);
                    }
                }
            }
            Hook::ContextCreated => {
                let created = str_field(&result, "browserContextId");
                self.owned.creating_finished(created.as_deref());
                if self.phase == Phase::Closed
                    && let Some(context) = created
                {
                    // The socket ended while the context was being made: dispose of it now.
                    self.owned.context_disposed(&context);
                    actions.push(Action::ToChromium(self.dispose_command(&context)));
                }
            }
            Hook::ContextDisposed(context) => {
                if result.is_some() {
                    self.owned.context_disposed(&context);
                }
            }
            Hook::TargetCreated(context) => {
                if let Some(target) = str_field(&result, "targetId") {
                    self.owned.add_target(&target, &context);
                }
            }
            Hook::Attached { parent } => {
                if let Some(session) = str_field(&result, "sessionId") {
                    self.owned.add_session(&session, parent.as_deref());
                }
            }
            Hook::WindowOf => {
                if let Some(window) = result.and_then(|r| r.get("windowId")).and_then(Value::as_i64) {
                    self.owned.add_window(window);
                }
            }
        }
    }

    /// `Target.disposeBrowserContext` on the proxy's account, counted until answered.
    pub(super) fn dispose_command(&mut self, context: &str) -> String {
        self.teardown_left += 1;
        let id = self.pending.add(Waiter::Teardown);
        own_command(id, "Target.disposeBrowserContext", json!({ "browserContextId": context }), None)
    }

    /// Chromium's `Target.getTargetInfo` for a target a held command names.
    fn target_checked(&mut self, target: &str, reply: &Map<String, Value>) -> Result<Checked, String> {
        let info = reply.get("result").and_then(|r| r.get("targetInfo")).unwrap_or(&Value::Null);
        if target_id_of(info) == Some(target) && self.owned.note_target(info) {
            Ok(Checked { target: Some(target.to_owned()), page_count: false })
        } else {
            Err(format!("target {target} is not this session's"))
        }
    }

    /// Chromium's `Target.getTargets` before a held `Target.createTarget`.
    fn pages_counted(&mut self, reply: &Map<String, Value>) -> Result<Checked, String> {
        let Some(infos) = reply.get("result").and_then(|r| r.get("targetInfos")).and_then(Value::as_array) else {
            return Err("the session's pages could not be counted".into());
        };
        let mut pages = 0;
        for info in infos {
            if self.owned.note_target(info) && type_of(info) == Some("page") {
                pages += 1;
            }
        }
        if pages >= self.max_pages {
            return Err(format!("the session has {pages} pages open, the most it may have"));
        }
        Ok(Checked { target: None, page_count: true })
    }
}

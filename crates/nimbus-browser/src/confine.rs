//! The `cdp` channel's confinement (docs/browser.md, "The `cdp` channel"): a pure state machine
//! between a client's DevTools socket and the proxy's own DevTools connection to Chromium's
//! browser endpoint, which Chromium shares with every other session. For the client, the
//! session's browser context is the whole browser: it sees and drives only the targets,
//! sessions and contexts this socket owns, and its session's context plays the browser's default
//! context (commands that would act on the default context act on it).
//!
//! No I/O: [`Confinement::from_client`] and [`Confinement::from_chromium`] take one text message
//! each and answer the [`Action`]s to take, in order. Everything either side sends is untrusted:
//! a bad message is answered with a DevTools error or dropped, never a panic.
//!
//! # Layout
//! - `message.rs`: parsing a client's command strictly and re-serialising it (Chromium only
//!   reads what the rules checked), a cheap look at Chromium's messages, the proxy's replies.
//! - `rules.rs`: the client → Chromium allow-list and rewrites.
//! - `events.rs`: Chromium → client events, and the release of foreign auto-attached targets.
//! - `replies.rs`: Chromium → client replies, their filtering, and the proxy's own checks.
//! - `owned.rs`: what the socket owns, bounded.
//! - `pending.rs`: the proxy's command ids.
//! - `url.rs`: the URLs a client may navigate to.

mod events;
mod message;
mod owned;
mod pending;
mod replies;
mod rules;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use serde_json::json;

use self::message::{Command, Peek, not_allowed, result_reply};
use self::owned::Owned;
use self::pending::{Pending, Waiter};
use self::rules::{Check, Checked, Hook, Verdict};

/// Client commands one socket may have in flight.
pub use nimbus_core::limits::BROWSER_CDP_MAX_PENDING as MAX_PENDING;
/// Targets, sessions and windows one socket tracks at most.
pub use nimbus_core::limits::BROWSER_CDP_MAX_TRACKED as MAX_TRACKED;

/// What one socket is confined to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Chromium's id of the session's browser context.
    pub context_id: String,
    /// Pages the owned contexts may hold at once (`Target.createTarget` is refused at this
    /// count); also the most browser contexts the socket may create.
    pub max_pages: usize,
}

/// Something the relay must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this text message to Chromium.
    ToChromium(String),
    /// Send this text message to the client.
    ToClient(String),
    /// Close the client's socket (after the messages before this action).
    CloseClient,
}

/// Whether the client is still served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// `Browser.close` was answered or the socket is ending: nothing more goes to the client.
    Closed,
}

/// One client socket's confinement. See the module documentation.
#[derive(Debug)]
pub struct Confinement {
    max_pages: usize,
    owned: Owned,
    pending: Pending,
    /// Whether a check (a question the proxy asked Chromium about a held command) is in flight:
    /// until it is answered, the client's later commands wait in `queue`, so Chromium receives
    /// them in the order the client sent them.
    checking: bool,
    queue: VecDeque<Command>,
    phase: Phase,
    /// `Target.disposeBrowserContext` commands of the teardown not yet answered.
    teardown_left: usize,
}

impl Confinement {
    /// A confinement for a new socket.
    pub fn new(scope: Scope) -> Confinement {
        Confinement {
            max_pages: scope.max_pages,
            owned: Owned::new(scope.context_id),
            pending: Pending::new(),
            checking: false,
            queue: VecDeque::new(),
            phase: Phase::Open,
            teardown_left: 0,
        }
    }

    /// One text message from the client.
    pub fn from_client(&mut self, text: &str) -> Vec<Action> {
        if self.phase != Phase::Open {
            return Vec::new();
        }
        let command = match Command::parse(text) {
            Ok(command) => command,
            Err(malformed) => return vec![Action::ToClient(malformed.reply())],
        };
        if self.pending.len() + self.queue.len() >= MAX_PENDING {
            let why = format!("more than {MAX_PENDING} commands in flight");
            return vec![Action::ToClient(not_allowed(&command.id, &why))];
        }
        if self.checking {
            self.queue.push_back(command);
            return Vec::new();
        }
        let mut actions = Vec::new();
        self.decide_and_act(command, Checked::default(), &mut actions);
        actions
    }

    /// One text message from Chromium.
    pub fn from_chromium(&mut self, text: &str) -> Vec<Action> {
        let Some(peek) = Peek::read(text) else {
            tracing::debug!("cdp: unreadable message from the browser dropped");
            return Vec::new();
        };
        let mut actions = Vec::new();
        match (&peek.id, &peek.method) {
            (Some(id), _) => self.on_reply(id, text, &mut actions),
            (None, Some(method)) => self.on_event(method, peek.session_id.as_deref(), text, &mut actions),
            (None, None) => {}
        }
        if self.phase != Phase::Open {
            actions.retain(|action| matches!(action, Action::ToChromium(_)));
        }
        actions
    }

    /// Ends the client's side: from now on nothing goes to the client, and the answer is the
    /// messages that dispose of the contexts this socket created (Chromium would also dispose
    /// of them when the connection closes: they are created with `disposeOnDetach`).
    pub fn teardown(&mut self) -> Vec<String> {
        self.phase = Phase::Closed;
        self.queue.clear();
        let created = self.owned.take_created();
        created.iter().map(|context| self.dispose_command(context)).collect()
    }

    /// Whether every context the socket created has been disposed, or is being created no
    /// more (after [`Confinement::teardown`], feed Chromium's messages until this holds).
    pub fn teardown_finished(&self) -> bool {
        self.teardown_left == 0 && self.owned.created_or_creating() == 0
    }

    /// Decides on a command and acts on the verdict (nothing once the client is gone: a command
    /// held behind a check is dropped then).
    fn decide_and_act(&mut self, mut command: Command, checked: Checked, actions: &mut Vec<Action>) {
        if self.phase != Phase::Open {
            return;
        }
        match rules::decide(&self.owned, self.max_pages, &mut command, &checked) {
            Verdict::Forward(hook) => {
                if hook == Hook::ContextCreated {
                    self.owned.creating_started();
                }
                let id = self.pending.add(Waiter::Client { id: command.id.clone(), hook });
                actions.push(Action::ToChromium(command.to_chromium(id)));
            }
            Verdict::Refuse(why) => actions.push(Action::ToClient(not_allowed(&command.id, &why))),
            Verdict::CloseBrowser => {
                self.phase = Phase::Closed;
                self.queue.clear();
                actions.push(Action::ToClient(result_reply(&command.id, json!({}))));
                actions.push(Action::CloseClient);
            }
            Verdict::Check(check) => {
                let (method, params) = match &check {
                    Check::Target(target) => ("Target.getTargetInfo", json!({ "targetId": target })),
                    Check::PageCount => ("Target.getTargets", json!({})),
                };
                let id = self.pending.add(Waiter::Check { check, held: command });
                self.checking = true;
                actions.push(Action::ToChromium(message::own_command(id, method, params, None)));
            }
        }
    }

    /// Decides on the queued commands, in order, until one needs a check.
    fn drain(&mut self, actions: &mut Vec<Action>) {
        while !self.checking && self.phase == Phase::Open {
            let Some(command) = self.queue.pop_front() else { break };
            self.decide_and_act(command, Checked::default(), actions);
        }
    }
}

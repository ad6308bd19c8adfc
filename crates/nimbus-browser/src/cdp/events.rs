//! Event subscriptions: which events a subscriber wants ([`EventScope`]), and their delivery
//! through a bounded queue per subscriber (one that falls behind is told it lagged; the reader
//! never waits on it).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use serde_json::Value;
use tokio::sync::mpsc;

use super::connection::Shared;

/// Events queued per subscription before it is marked lagged: a page's navigation sends a few
/// dozen; a subscriber reads them as they come.
const EVENT_QUEUE: usize = 512;

/// One DevTools event: its method, its parameters and the session it came from (`None` for
/// the browser's own events).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The DevTools session (flat mode) the event belongs to.
    pub session_id: Option<String>,
    /// `Domain.event`.
    pub method: String,
    /// The event's parameters, as Chromium sent them (untrusted).
    pub params: Value,
}

/// Which events a subscription receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventScope {
    /// The browser's own events (those without a session): target lifecycle among others.
    Browser,
    /// One attached page: the events of its DevTools session, and the browser's events about
    /// its target or that session (`Target.targetCrashed`, `Target.targetDestroyed`,
    /// `Target.targetInfoChanged`, `Target.detachedFromTarget`).
    Page {
        /// The page's target id.
        target_id: String,
        /// The DevTools session attached to it.
        session_id: String,
    },
}

impl EventScope {
    fn matches(&self, event: &Event) -> bool {
        match self {
            Self::Browser => event.session_id.is_none(),
            Self::Page { target_id, session_id } => match &event.session_id {
                Some(session) => session == session_id,
                None => {
                    let params = &event.params;
                    let target = params
                        .get("targetId")
                        .or_else(|| params.get("targetInfo").and_then(|info| info.get("targetId")))
                        .and_then(Value::as_str);
                    target == Some(target_id.as_str())
                        || params.get("sessionId").and_then(Value::as_str) == Some(session_id.as_str())
                }
            },
        }
    }
}

/// What [`Events::recv`] gives.
#[derive(Debug, Clone)]
pub enum Received {
    /// The next event.
    Event(Arc<Event>),
    /// Events were dropped because the subscription fell behind: whatever it waits for may
    /// have happened unseen, so the subscriber should look at the current state.
    Lagged,
    /// The connection closed: no more events will come.
    Closed,
}

/// A subscription to a connection's events; dropping it unsubscribes.
pub struct Events {
    id: u64,
    queue: mpsc::Receiver<Arc<Event>>,
    lagged: Arc<AtomicBool>,
    shared: Weak<Shared>,
}

impl Events {
    /// The next event of the subscription's scope, in the order Chromium sent them.
    pub async fn recv(&mut self) -> Received {
        if let Some(received) = self.try_recv() {
            return received;
        }
        match self.queue.recv().await {
            Some(event) => Received::Event(event),
            None => Received::Closed,
        }
    }

    /// The next event if one is already queued (or the news that some were dropped, or that
    /// the connection closed); `None` when nothing is waiting.
    pub fn try_recv(&mut self) -> Option<Received> {
        match self.queue.try_recv() {
            Ok(event) => Some(Received::Event(event)),
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Received::Closed),
            Err(mpsc::error::TryRecvError::Empty) => {
                self.lagged.swap(false, Ordering::AcqRel).then_some(Received::Lagged)
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.unsubscribe(self.id);
        }
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The reader's side of a subscription.
pub(super) struct Subscriber {
    scope: EventScope,
    queue: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicBool>,
}

/// A new subscription `id` to `scope`: the reader's side and the subscriber's.
pub(super) fn subscription(id: u64, scope: EventScope, shared: Weak<Shared>) -> (Subscriber, Events) {
    let (queue, receiver) = mpsc::channel(EVENT_QUEUE);
    let lagged = Arc::new(AtomicBool::new(false));
    let subscriber = Subscriber { scope, queue, lagged: Arc::clone(&lagged) };
    (subscriber, Events { id, queue: receiver, lagged, shared })
}

/// Hands `event` to every subscriber whose scope takes it; drops subscribers that are gone.
pub(super) fn deliver(subscribers: &mut HashMap<u64, Subscriber>, event: Event) {
    let event = Arc::new(event);
    subscribers.retain(|_, subscriber| {
        if !subscriber.scope.matches(&event) {
            return true;
        }
        match subscriber.queue.try_send(Arc::clone(&event)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                subscriber.lagged.store(true, Ordering::Release);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(session: Option<&str>, method: &str, params: Value) -> Event {
        Event { session_id: session.map(str::to_owned), method: method.to_owned(), params }
    }

    #[test]
    fn a_page_scope_takes_its_session_and_the_browser_events_about_it() {
        let scope = EventScope::Page { target_id: "T".into(), session_id: "S".into() };
        assert!(scope.matches(&event(Some("S"), "Page.loadEventFired", json!({}))));
        assert!(!scope.matches(&event(Some("S2"), "Page.loadEventFired", json!({}))));
        assert!(scope.matches(&event(None, "Target.targetCrashed", json!({ "targetId": "T" }))));
        assert!(scope.matches(&event(None, "Target.targetInfoChanged", json!({ "targetInfo": { "targetId": "T" } }))));
        assert!(scope.matches(&event(None, "Target.detachedFromTarget", json!({ "sessionId": "S" }))));
        assert!(!scope.matches(&event(None, "Target.targetCrashed", json!({ "targetId": "U" }))));
        assert!(!scope.matches(&event(None, "Target.targetCrashed", json!("T"))));
        assert!(EventScope::Browser.matches(&event(None, "Target.targetCreated", json!({}))));
        assert!(!EventScope::Browser.matches(&event(Some("S"), "Page.loadEventFired", json!({}))));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_so_after_what_it_kept() {
        let mut subscribers = HashMap::new();
        let (subscriber, mut events) = subscription(1, EventScope::Browser, Weak::new());
        subscribers.insert(1, subscriber);
        for n in 0..EVENT_QUEUE + 5 {
            deliver(&mut subscribers, event(None, "Target.targetCreated", json!({ "n": n })));
        }
        deliver(&mut subscribers, event(Some("S"), "Page.loadEventFired", json!({})));
        for n in 0..EVENT_QUEUE {
            match events.recv().await {
                Received::Event(event) => assert_eq!(event.params["n"], n),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(events.recv().await, Received::Lagged));
        assert!(events.try_recv().is_none());
        drop(events);
        deliver(&mut subscribers, event(None, "Target.targetCreated", json!({})));
        assert!(subscribers.is_empty(), "a dropped subscription is forgotten");
    }
}

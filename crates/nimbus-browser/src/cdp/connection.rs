//! [`Connection`]: one DevTools WebSocket to Chromium's browser endpoint, shared by every caller.
//!
//! Calls are matched to answers by id (a map of one-shot senders the reader task completes);
//! events go to subscriptions (`events.rs`). On the way the reader remembers which DevTools
//! session belongs to which target and which targets' renderers crashed, so a call that a dead
//! renderer would never answer fails at once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use nimbus_core::NimbusError;
use nimbus_core::limits::BROWSER_CDP_MAX_MESSAGE_BYTES;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::error::{CdpError, unavailable};
use super::events::{Event, EventScope, Events, Subscriber, deliver, subscription};
use super::socket::open_socket;
use crate::Dial;

/// How long [`Connection::call`] waits for an answer: far longer than any command Chromium
/// answers from its own state, short enough that a wedged browser frees its callers. Calls that
/// wait on a page (navigation, evaluation) pass their own deadline.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Sessions and crashed targets the reader remembers at most. Chromium reports far fewer
/// (sessions of this connection, targets alive in the browser: a service's sessions hold at most
/// `BROWSER_MAX_PAGES_PER_SESSION` pages each); the bound is only against a misbehaving peer.
const MAX_TRACKED: usize = 65_536;

/// Source of [`Connection::id`]s.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// A DevTools connection to Chromium's browser endpoint. Cheap to clone (one shared socket);
/// the socket closes when the last clone is dropped.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    shared: Arc<Shared>,
    /// A tokio mutex: a send may wait on the socket, and one message is written whole before
    /// the next.
    sink: tokio::sync::Mutex<SplitSink<WebSocketStream<TcpStream>, Message>>,
    reader: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// What the reader task and the callers share.
pub(super) struct Shared {
    next_call: AtomicU64,
    next_subscriber: AtomicU64,
    /// A std mutex: held only for map updates, never across an await.
    state: Mutex<State>,
    closed: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// Why the connection closed, once it has.
    closed: Option<String>,
    pending: HashMap<u64, Pending>,
    subscribers: HashMap<u64, Subscriber>,
    /// DevTools session → its target, from `Target.attachedToTarget`.
    sessions: HashMap<String, String>,
    /// Targets whose renderer crashed and was not reloaded since.
    crashed: HashSet<String>,
}

struct Pending {
    session: Option<String>,
    answer: oneshot::Sender<Result<Value, CdpError>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the connection closed: every pending call fails with `reason`, every
    /// subscription ends.
    fn close(&self, reason: String) {
        let (pending, subscribers) = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            state.closed = Some(reason.clone());
            (std::mem::take(&mut state.pending), std::mem::take(&mut state.subscribers))
        };
        for (_, call) in pending {
            let _ = call.answer.send(Err(CdpError::Closed { reason: reason.clone() }));
        }
        drop(subscribers);
        self.closed.send_replace(true);
    }

    /// Handles one text message from Chromium.
    fn receive(&self, text: &str) {
        let message = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(message)) => message,
            Ok(_) => return,
            Err(error) => {
                // Too deep or not JSON: if it is an answer, its caller learns so now rather
                // than at its deadline.
                if let Some(id) = leading_id(text) {
                    self.answer(id, Err(CdpError::Malformed { method: "?".into(), what: error.to_string() }));
                }
                return;
            }
        };
        if let Some(id) = message.get("id").and_then(Value::as_u64) {
            self.answer(id, answer_of(message));
            return;
        }
        let Some(event) = event_of(message) else { return };
        self.track(&event);
        self.dispatch(event);
    }

    fn answer(&self, id: u64, result: Result<Value, CdpError>) {
        let call = self.lock().pending.remove(&id);
        if let Some(call) = call {
            let _ = call.answer.send(result);
        }
    }

    /// Updates what the reader knows of sessions and crashes from one event, and fails the
    /// calls a dead renderer or a detached session will never answer.
    fn track(&self, event: &Event) {
        let param = |name: &str| event.params.get(name).and_then(Value::as_str).map(str::to_owned);
        let mut state = self.lock();
        match (event.method.as_str(), &event.session_id) {
            ("Target.attachedToTarget", None) => {
                let target = event.params.get("targetInfo").and_then(|info| info.get("targetId"));
                if let (Some(session), Some(target)) = (param("sessionId"), target.and_then(Value::as_str))
                    && state.sessions.len() < MAX_TRACKED
                {
                    state.sessions.insert(session, target.to_owned());
                }
            }
            ("Target.detachedFromTarget", None) => {
                if let Some(session) = param("sessionId") {
                    state.sessions.remove(&session);
                    fail_pending(&mut state, |s| s == session, || CdpError::Detached);
                }
            }
            ("Target.targetCrashed", None) => {
                if let Some(target) = param("targetId") {
                    crashed(&mut state, &target);
                }
            }
            ("Inspector.targetCrashed", Some(session)) => {
                let target = state.sessions.get(session).cloned();
                match target {
                    Some(target) => crashed(&mut state, &target),
                    None => fail_pending(&mut state, |s| s == session, || CdpError::Crashed),
                }
            }
            ("Inspector.targetReloadedAfterCrash", Some(session)) => {
                if let Some(target) = state.sessions.get(session).cloned() {
                    state.crashed.remove(&target);
                }
            }
            ("Target.targetDestroyed", None) => {
                if let Some(target) = param("targetId") {
                    state.crashed.remove(&target);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&self, event: Event) {
        deliver(&mut self.lock().subscribers, event);
    }

    /// Removes a subscription (its [`Events`] was dropped).
    pub(super) fn unsubscribe(&self, id: u64) {
        self.lock().subscribers.remove(&id);
    }
}

/// Records `target` as crashed and fails the calls pending on its sessions.
fn crashed(state: &mut State, target: &str) {
    if state.crashed.len() < MAX_TRACKED {
        state.crashed.insert(target.to_owned());
    }
    let sessions: HashSet<String> =
        state.sessions.iter().filter(|(_, t)| t.as_str() == target).map(|(s, _)| s.clone()).collect();
    fail_pending(state, |s| sessions.contains(s), || CdpError::Crashed);
}

fn fail_pending(state: &mut State, on_session: impl Fn(&str) -> bool, error: impl Fn() -> CdpError) {
    let ids: Vec<u64> = state
        .pending
        .iter()
        .filter(|(_, call)| call.session.as_deref().is_some_and(&on_session))
        .map(|(id, _)| *id)
        .collect();
    for id in ids {
        if let Some(call) = state.pending.remove(&id) {
            let _ = call.answer.send(Err(error()));
        }
    }
}

/// An answer's result, or its DevTools error.
fn answer_of(mut message: Map<String, Value>) -> Result<Value, CdpError> {
    if let Some(error) = message.get("error") {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        let text = error.get("message").and_then(Value::as_str).unwrap_or("unknown DevTools error");
        return Err(CdpError::protocol(code, text.to_owned()));
    }
    Ok(message.remove("result").unwrap_or_else(|| json!({})))
}

fn event_of(mut message: Map<String, Value>) -> Option<Event> {
    let method = match message.remove("method") {
        Some(Value::String(method)) => method,
        _ => return None,
    };
    let session_id = match message.remove("sessionId") {
        Some(Value::String(session)) => Some(session),
        _ => None,
    };
    Some(Event { session_id, method, params: message.remove("params").unwrap_or(Value::Null) })
}

/// The id of an answer that did not parse: Chromium writes `{"id":N,` first.
fn leading_id(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("{\"id\":")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).map_or(rest, |end| &rest[..end]);
    digits.parse().ok()
}

/// Removes a call from the pending map when its caller stops waiting (answered, timed out or
/// cancelled).
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().pending.remove(&self.id);
    }
}

impl Connection {
    /// Opens a connection to Chromium's browser endpoint through `dial` (see
    /// [`open_socket`](super::open_socket)) and subscribes it to target discovery, which the
    /// crash tracking reads. Failures are `browser.unavailable`.
    pub async fn connect(dial: &Dial) -> Result<Connection, NimbusError> {
        let connection = Self::from_socket(open_socket(dial).await?);
        connection
            .call(None, "Target.setDiscoverTargets", json!({ "discover": true }))
            .await
            .map_err(|error| unavailable(format!("Chromium refused Target.setDiscoverTargets: {error}")))?;
        Ok(connection)
    }

    /// A connection over an open browser-endpoint socket; starts its reader task (on the
    /// current tokio runtime).
    pub fn from_socket(socket: WebSocketStream<TcpStream>) -> Connection {
        let (sink, stream) = socket.split();
        let shared = Arc::new(Shared {
            next_call: AtomicU64::new(1),
            next_subscriber: AtomicU64::new(1),
            state: Mutex::new(State::default()),
            closed: watch::channel(false).0,
        });
        let reader = tokio::spawn(read(Arc::clone(&shared), stream));
        let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        Connection { inner: Arc::new(Inner { id, shared, sink: tokio::sync::Mutex::new(sink), reader }) }
    }

    /// This connection's id, unique in the process: DevTools session ids are valid only on the
    /// connection that attached them.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Sends `method` (on the flat session `session_id`, or to the browser) and waits for its
    /// answer at most [`DEFAULT_CALL_TIMEOUT`]. A call on a session of a target whose renderer
    /// crashed fails with [`CdpError::Crashed`] (at once, or as soon as the crash is reported).
    pub async fn call(&self, session_id: Option<&str>, method: &str, params: Value) -> Result<Value, CdpError> {
        self.call_with_timeout(session_id, method, params, DEFAULT_CALL_TIMEOUT).await
    }

    /// [`call`](Self::call) with its own deadline. Cancel-safe: a caller that stops waiting
    /// leaves nothing behind (Chromium's late answer is dropped).
    pub async fn call_with_timeout(
        &self,
        session_id: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, CdpError> {
        let shared = &*self.inner.shared;
        let id = shared.next_call.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session_id {
            message["sessionId"] = Value::from(session);
        }
        let text = message.to_string();
        if text.len() > BROWSER_CDP_MAX_MESSAGE_BYTES {
            return Err(CdpError::Malformed {
                method: method.to_owned(),
                what: format!("the command is {} bytes, over the message limit", text.len()),
            });
        }
        let (answer, receiver) = oneshot::channel();
        {
            let mut state = shared.lock();
            if let Some(reason) = &state.closed {
                return Err(CdpError::Closed { reason: reason.clone() });
            }
            // A crashed renderer answers nothing: a call on its sessions fails now rather than at
            // its deadline (the crash may have been reported since the caller last looked).
            let target = session_id.and_then(|session| state.sessions.get(session));
            if target.is_some_and(|target| state.crashed.contains(target)) {
                return Err(CdpError::Crashed);
            }
            state.pending.insert(id, Pending { session: session_id.map(str::to_owned), answer });
        }
        let _guard = PendingGuard { shared, id };
        let exchange = async {
            {
                let mut sink = self.inner.sink.lock().await;
                if let Err(error) = sink.send(Message::text(text)).await {
                    let reason = format!("cannot send to Chromium: {error}");
                    shared.close(reason.clone());
                    return Err(CdpError::Closed { reason });
                }
            }
            receiver.await.unwrap_or_else(|_| Err(CdpError::Closed { reason: "the reader stopped".into() }))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(CdpError::Timeout { method: method.to_owned(), after: timeout }),
        }
    }

    /// Attaches a flat DevTools session to `target_id` (`Target.attachToTarget`) and answers its
    /// session id.
    pub async fn attach(&self, target_id: &str) -> Result<String, CdpError> {
        let answer =
            self.call(None, "Target.attachToTarget", json!({ "targetId": target_id, "flatten": true })).await?;
        let session = answer.get("sessionId").and_then(Value::as_str).ok_or_else(|| CdpError::Malformed {
            method: "Target.attachToTarget".into(),
            what: "no sessionId".into(),
        })?;
        let mut state = self.inner.shared.lock();
        if state.sessions.len() < MAX_TRACKED {
            state.sessions.insert(session.to_owned(), target_id.to_owned());
        }
        Ok(session.to_owned())
    }

    /// Whether `session_id` is still attached, as far as this connection has heard.
    pub fn is_attached(&self, session_id: &str) -> bool {
        self.inner.shared.lock().sessions.contains_key(session_id)
    }

    /// Subscribes to the events of `scope` from now on.
    pub fn subscribe(&self, scope: EventScope) -> Events {
        let shared = &self.inner.shared;
        let id = shared.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let (subscriber, events) = subscription(id, scope, Arc::downgrade(shared));
        let mut state = shared.lock();
        // A closed connection keeps no subscribers: the subscription ends at once.
        if state.closed.is_none() {
            state.subscribers.insert(id, subscriber);
        }
        events
    }

    /// Whether `target_id`'s renderer crashed (and was not reloaded since): calls to it would
    /// never be answered.
    pub fn is_crashed(&self, target_id: &str) -> bool {
        self.inner.shared.lock().crashed.contains(target_id)
    }

    /// Whether the connection has closed (every call now fails with [`CdpError::Closed`]).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.lock().closed.is_some()
    }

    /// Resolves once the connection has closed.
    pub async fn closed(&self) {
        let mut closed = self.inner.shared.closed.subscribe();
        let _ = closed.wait_for(|closed| *closed).await;
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("id", &self.inner.id).field("closed", &self.is_closed()).finish()
    }
}

/// The reader task: every message from Chromium until the socket ends.
async fn read(shared: Arc<Shared>, mut stream: SplitStream<WebSocketStream<TcpStream>>) {
    let reason = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => shared.receive(text.as_str()),
            Some(Ok(Message::Close(_))) | None => break "Chromium closed the DevTools connection".to_owned(),
            Some(Ok(_)) => {}
            Some(Err(error)) => break format!("the DevTools connection failed: {error}"),
        }
    };
    tracing::debug!(%reason, "DevTools connection closed");
    shared.close(reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            next_call: AtomicU64::new(1),
            next_subscriber: AtomicU64::new(1),
            state: Mutex::new(State::default()),
            closed: watch::channel(false).0,
        }
    }

    fn pending(shared: &Shared, id: u64, session: &str) -> oneshot::Receiver<Result<Value, CdpError>> {
        let (answer, receiver) = oneshot::channel();
        shared.lock().pending.insert(id, Pending { session: Some(session.into()), answer });
        receiver
    }

    #[test]
    fn answers_reach_their_callers_and_garbage_is_dropped() {
        let shared = shared();
        let mut ok = pending(&shared, 1, "S");
        let mut failed = pending(&shared, 2, "S");
        let mut deep = pending(&shared, 3, "S");
        shared.receive(r#"{"id":1,"result":{"x":1},"sessionId":"S"}"#);
        shared.receive(r#"{"id":2,"error":{"code":-32000,"message":"No node with given id found"}}"#);
        shared.receive(&format!("{{\"id\":3,\"result\":{}{}}}", "[".repeat(1000), "]".repeat(1000)));
        for garbage in ["", "[]", "{", "{\"id\":\"x\"}", "{\"method\":3}", "{\"id\":99,\"result\":{}}"] {
            shared.receive(garbage);
        }
        assert_eq!(ok.try_recv().expect("answered").expect("a result"), json!({ "x": 1 }));
        assert!(failed.try_recv().expect("answered").expect_err("an error").is_protocol("No node"));
        assert!(matches!(deep.try_recv().expect("answered"), Err(CdpError::Malformed { .. })));
        assert!(shared.lock().pending.is_empty());
    }

    #[test]
    fn a_crash_or_detach_fails_the_calls_on_that_target_at_once() {
        let shared = shared();
        shared.receive(
            r#"{"method":"Target.attachedToTarget","params":{"sessionId":"S","targetInfo":{"targetId":"T"}}}"#,
        );
        shared.receive(
            r#"{"method":"Target.attachedToTarget","params":{"sessionId":"S2","targetInfo":{"targetId":"U"}}}"#,
        );
        let mut on_crashed = pending(&shared, 1, "S");
        let mut elsewhere = pending(&shared, 2, "S2");
        shared.receive(r#"{"method":"Inspector.targetCrashed","params":{},"sessionId":"S"}"#);
        assert!(matches!(on_crashed.try_recv(), Ok(Err(CdpError::Crashed))));
        assert!(elsewhere.try_recv().is_err(), "another target's call still waits");
        assert!(shared.lock().crashed.contains("T"));
        shared.receive(r#"{"method":"Inspector.targetReloadedAfterCrash","params":{},"sessionId":"S"}"#);
        assert!(!shared.lock().crashed.contains("T"));
        shared.receive(r#"{"method":"Target.detachedFromTarget","params":{"sessionId":"S2","targetId":"U"}}"#);
        assert!(matches!(elsewhere.try_recv(), Ok(Err(CdpError::Detached))));
        assert!(!shared.lock().sessions.contains_key("S2"));
    }

    #[test]
    fn closing_fails_every_pending_call() {
        let shared = shared();
        let mut call = pending(&shared, 1, "S");
        shared.close("gone".into());
        assert!(matches!(call.try_recv(), Ok(Err(CdpError::Closed { .. }))));
        assert!(*shared.closed.borrow());
    }

    #[test]
    fn leading_ids() {
        assert_eq!(leading_id(r#"{"id":42,"result":"#), Some(42));
        assert_eq!(leading_id(r#"{"method":"x"}"#), None);
        assert_eq!(leading_id(r#"{"id":x"#), None);
    }
}

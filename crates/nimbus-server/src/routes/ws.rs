//! `GET /ws`: the `nimbus.v2` realtime socket (realtime.md; also served for one tenant at
//! `GET /convex/{t}/ws`, see [`accept`]), and `GET /api/tenants/{t}/realtime/stats` **(ours)**.
//!
//! A socket upgraded without a credential (which browsers and built-in WebSocket clients cannot
//! set; the auth guard lets only `/ws` through so) is told nothing until its first frame, an
//! `Authenticate` carrying the admin token, passes: see [`authenticate`].
//!
//! One socket runs two tasks. The reader owns the inbound half: handshake, client frames,
//! heartbeats, the backpressure deadline. The writer drains an [`Outbox`]: control frames in
//! order, then subscription results from per-subscription slots, where a newer result replaces
//! an unsent older one. Nothing upstream ever waits for a socket: a client that stops reading
//! only makes its own slots coalesce.
//!
//! Fast path: a result delivered to an idle socket (nothing queued, nobody writing) is written
//! by the delivering task itself with one non-blocking attempt, so a fan-out to many sockets
//! costs one write each instead of a task wake-up each. Whoever writes holds the outbox's
//! `writing` token, so frames leave in order; a write that cannot complete at once leaves its
//! frame to the writer task.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, StreamExt};
use nimbus_core::ids::TenantId;
use nimbus_core::limits::{
    WS_AUTH_TIMEOUT_MS, WS_BACKPRESSURE_GRACE_MS, WS_DEAD_PEER_MS, WS_HELLO_TIMEOUT_MS, WS_MAX_INBOUND_BYTES,
    WS_MAX_RESULT_BYTES, WS_MAX_SUBSCRIPTIONS, WS_OUTBOUND_HIGH_WATER_BYTES, WS_PING_INTERVAL_MS, WS_READ_BUFFER_BYTES,
};
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_realtime::hub::Source;
use nimbus_realtime::{Latency, Subscriber, Subscription, TenantSession, Update};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::query::to_query;
use crate::body::parse;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::realtime_wire::{self as wire, ClientFrame, Dialect, PROTOCOL, SubscribeTarget};
use crate::state::AppState;

/// Close code after a handshake violation.
const CLOSE_POLICY: u16 = 1008;
/// Close code for an inbound frame over the limit.
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;
/// Close code when even a drop notice cannot be queued (after `rate.resource_exhausted`).
const CLOSE_OVERLOADED: u16 = 1013;
/// Close code when the tenant was deleted **(ours)**.
const CLOSE_TENANT_GONE: u16 = 4404;
/// Close code of a dead peer **(ours)**.
const CLOSE_HEARTBEAT: u16 = 4408;
/// Close code when the server shuts down.
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code when an authenticated socket's tenant cannot be opened for another reason than
/// not existing.
const CLOSE_INTERNAL: u16 = 1011;
/// How long the reader waits for the writer to flush a final close frame to a client that may
/// not be reading; past it the connection is dropped.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// Socket timings: the limits, unless overridden by the **test-only** environment variables
/// `NIMBUS_TEST_HELLO_TIMEOUT_MS`, `NIMBUS_TEST_WS_AUTH_TIMEOUT_MS`, `NIMBUS_TEST_WS_PING_MS`,
/// `NIMBUS_TEST_WS_DEAD_PEER_MS` and `NIMBUS_TEST_WS_BACKPRESSURE_GRACE_MS` (read once; they
/// exist so the black-box suite can exercise timeouts quickly and are not part of the product's
/// interface).
struct Timings {
    hello_ms: u64,
    auth: Duration,
    ping: Duration,
    dead_peer: Duration,
    backpressure_grace: Duration,
}

static TIMINGS: LazyLock<Timings> = LazyLock::new(|| {
    let env = |name: &str, default: u64| {
        std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok()).filter(|v| *v > 0).unwrap_or(default)
    };
    Timings {
        hello_ms: env("NIMBUS_TEST_HELLO_TIMEOUT_MS", WS_HELLO_TIMEOUT_MS),
        auth: Duration::from_millis(env("NIMBUS_TEST_WS_AUTH_TIMEOUT_MS", WS_AUTH_TIMEOUT_MS)),
        ping: Duration::from_millis(env("NIMBUS_TEST_WS_PING_MS", WS_PING_INTERVAL_MS)),
        dead_peer: Duration::from_millis(env("NIMBUS_TEST_WS_DEAD_PEER_MS", WS_DEAD_PEER_MS)),
        backpressure_grace: Duration::from_millis(env(
            "NIMBUS_TEST_WS_BACKPRESSURE_GRACE_MS",
            WS_BACKPRESSURE_GRACE_MS,
        )),
    }
});

/// Numbers `hello.session.id`.
static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// `GET /api/tenants/{t}/realtime/stats` **(ours)**: the tenant's invalidation counters.
pub async fn stats(State(state): State<AppState>, params: PathParams) -> ApiResult<Json<Value>> {
    let tenant = params.tenant()?;
    let stats = state.realtime.stats(&tenant)?;
    Ok(Json(json!({
        "commits_seen": stats.commits_seen,
        "candidates_considered": stats.candidates_considered,
        "evaluations": stats.evaluations,
        "pushes": stats.pushes,
        "skipped_by_filter": stats.skipped_by_filter,
        "skipped_other_table": stats.skipped_other_table,
        "skipped_duplicate": stats.skipped_duplicate,
        "function_evaluations": stats.function_evaluations,
        "function_invalidations": stats.function_invalidations,
        "function_skipped": stats.function_skipped,
        "delivery_latency": {
            "samples": stats.delivery_samples,
            "p50_us": stats.delivery_p50_us,
            "p99_us": stats.delivery_p99_us,
        },
        "subscriptions": stats.subscriptions,
    })))
}

/// `GET /ws`. Origin and credential are checked by the auth guard (which lets an upgrade
/// without any credential through, see [`accept`]); then, in the contract's order: the tenant's
/// syntax (400), a `nimbus.v2` offer (400 `protocol.no_overlap`), the tenant's existence (404;
/// without a credential, only once the socket has authenticated), and only then the upgrade. The
/// tenant is the `X-Tenant-Id` header, else `?tenant_id=`, else `?tenant=` (the short form for
/// clients that cannot set headers).
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryParams,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let raw_tenant = match headers.get("x-tenant-id").and_then(|v| v.to_str().ok()) {
        Some(header) => Some((header, "tenant_id")),
        None => query.get("tenant_id").map(|v| (v, "tenant_id")).or_else(|| query.get("tenant").map(|v| (v, "tenant"))),
    };
    accept(state, &headers, raw_tenant, Dialect::Native, ws)
}

/// The upgrade's checks and the upgrade, for the tenant named by `raw_tenant` (its value and the
/// field a bad one is reported as: from `/ws`'s header or query string, or `/convex/{t}/ws`'s
/// path), speaking `dialect`.
///
/// A request without any credential got here only as an upgrade the guard let through (`/ws`,
/// `/convex/{t}/ws`: the routes marked `token_in_first_frame`): its
/// socket must authenticate with its first frame. Whether the tenant exists is then checked
/// only after that, so that no unauthenticated caller learns which tenants exist.
pub(super) fn accept(
    state: AppState,
    headers: &HeaderMap,
    raw_tenant: Option<(&str, &str)>,
    dialect: Dialect,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let Some((raw_tenant, field)) = raw_tenant else {
        return Err(
            NimbusError::invalid_input("tenant_id", "set the X-Tenant-Id header, ?tenant_id= or ?tenant=").into()
        );
    };
    let tenant_id = TenantId::parse(raw_tenant, field)?;
    let offered: Vec<String> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if !offered.iter().any(|p| p == PROTOCOL) {
        return Err(NimbusError::new(
            ErrorCode::ProtocolNoOverlap,
            format!("the server speaks only {PROTOCOL}"),
            Some(json!({ "serverSupports": [PROTOCOL], "clientOffered": offered })),
        )
        .into());
    }
    let session =
        if crate::auth::carries_credential(headers) { Some(state.realtime.session(&tenant_id)?) } else { None };
    let ws = ws.map_err(|e| NimbusError::invalid_request(format!("a WebSocket upgrade is required: {e}")))?;
    // Outbound frames are written at once (no write buffering: each send is flushed anyway).
    let ws = ws
        .protocols([PROTOCOL])
        .max_message_size(WS_MAX_INBOUND_BYTES)
        .max_frame_size(WS_MAX_INBOUND_BYTES)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(0);
    Ok(ws.on_upgrade(move |socket| run(socket, state, tenant_id, session, dialect)))
}

/// An outbound control frame.
enum Control {
    Text(String),
    Ping,
    Close(u16, String),
}

/// A subscription as the socket sees it.
struct Live {
    /// The client's `request_id`, until the first result or failure has been sent.
    request_id: Option<String>,
    handle: Option<Subscription>,
}

#[derive(Default)]
struct OutboxState {
    control: VecDeque<Control>,
    /// Pending update per subscription; a newer one replaces an unsent older one.
    slots: HashMap<u64, Update>,
    /// Subscriptions with a pending slot, oldest first.
    order: VecDeque<u64>,
    /// Bytes queued (control texts and pending results).
    bytes: usize,
    /// Since when `bytes` has been above the high-water mark.
    over_since: Option<Instant>,
    /// The socket's live subscriptions by id.
    live: HashMap<u64, Live>,
    /// No more frames are queued once a close is.
    closing: bool,
    /// The reader has ended: the writer finishes what is queued and stops.
    finished: bool,
    /// The token for writing to the socket: held by the writer task while it sends, or by a
    /// delivering task during a fast-path write. Nothing else touches the sink meanwhile.
    writing: bool,
    /// A fast-path write left a frame in the sink's buffer: the writer task must flush it.
    flush: bool,
    /// When the commit behind that frame became durable: its latency is recorded once the
    /// flush has put it on the socket.
    flush_since: Option<std::time::Instant>,
}

/// What the writer sends next.
enum Next {
    Control(Control),
    Update(u64, Update, Option<String>),
    /// Finish a fast-path write (of a result whose commit became durable at this instant).
    Flush(Option<std::time::Instant>),
}

type WsSink = SplitSink<WebSocket, Message>;

/// One socket's outbound queue, shared by the reader, the writer and the realtime registry.
struct Outbox {
    /// A std mutex: held only to queue or take a frame, never across an await.
    state: Mutex<OutboxState>,
    /// Wakes the writer.
    ready: Notify,
    /// Wakes the reader when the queue crosses the high-water mark.
    pressure: Notify,
    /// The outbound half. Only the holder of `OutboxState::writing` locks it, so locking never
    /// waits; an async mutex because the writer task holds it across its sends.
    sink: tokio::sync::Mutex<WsSink>,
    /// Where each written result's commit-to-write latency goes (the tenant's realtime stats).
    latency: Arc<Latency>,
}

/// When the commit behind an update became durable, if it is a result that has one.
fn since(update: &Update) -> Option<std::time::Instant> {
    match update {
        Update::Result { since, .. } => *since,
        Update::Failed(_) | Update::Dropped(_) => None,
    }
}

fn update_bytes(update: &Update) -> usize {
    match update {
        Update::Result { data, .. } => data.len(),
        Update::Failed(_) | Update::Dropped(_) => 256,
    }
}

impl Outbox {
    fn new(sink: WsSink, latency: Arc<Latency>) -> Self {
        Self {
            state: Mutex::new(OutboxState::default()),
            ready: Notify::new(),
            pressure: Notify::new(),
            sink: tokio::sync::Mutex::new(sink),
            latency,
        }
    }

    /// Records a written result's latency.
    fn written(&self, since: Option<std::time::Instant>) {
        if let Some(since) = since {
            self.latency.record(since.elapsed());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn account(&self, state: &mut OutboxState) {
        let over = state.bytes > WS_OUTBOUND_HIGH_WATER_BYTES;
        match (over, state.over_since) {
            (true, None) => {
                state.over_since = Some(Instant::now());
                self.pressure.notify_one();
            }
            (false, Some(_)) => state.over_since = None,
            _ => {}
        }
    }

    fn push(&self, control: Control) {
        let mut state = self.lock();
        if state.closing {
            return;
        }
        if let Control::Text(text) = &control {
            state.bytes += text.len();
        }
        state.closing = matches!(control, Control::Close(..));
        state.control.push_back(control);
        self.account(&mut state);
        drop(state);
        self.ready.notify_one();
    }

    fn text(&self, text: String) {
        self.push(Control::Text(text));
    }

    /// Queues a fatal error then the close.
    fn fatal(&self, error: &NimbusError, close: u16) {
        self.text(wire::fatal_error(error));
        self.push(Control::Close(close, error.code.as_str().to_owned()));
    }

    /// The writer task's next frame, taking the writing token with it; `None` (token released
    /// if `held`) when nothing is queued or a fast-path write holds the token.
    fn take(&self, held: bool) -> Option<Next> {
        let mut state = self.lock();
        if held {
            state.writing = false;
        }
        if state.writing {
            return None;
        }
        let next = Self::next(&mut state);
        if next.is_some() {
            state.writing = true;
            self.account(&mut state);
        }
        next
    }

    /// Pops the next queued frame, oldest control first, then pending results in order.
    fn next(state: &mut OutboxState) -> Option<Next> {
        if std::mem::take(&mut state.flush) {
            return Some(Next::Flush(state.flush_since.take()));
        }
        if let Some(control) = state.control.pop_front() {
            if let Control::Text(text) = &control {
                state.bytes -= text.len();
            }
            return Some(Next::Control(control));
        }
        while let Some(id) = state.order.pop_front() {
            let Some(update) = state.slots.remove(&id) else { continue };
            state.bytes -= update_bytes(&update);
            let request_id = state.live.get_mut(&id).and_then(|live| live.request_id.take());
            return Some(Next::Update(id, update, request_id));
        }
        None
    }

    /// Ends a subscription: its pending slot goes, and its handle (if registered yet) is
    /// returned to be dropped outside the lock, since dropping it takes the registry's locks.
    /// `None` when the socket has no such subscription.
    fn end(&self, id: u64) -> Option<Option<Subscription>> {
        let mut state = self.lock();
        let live = state.live.remove(&id)?;
        if let Some(update) = state.slots.remove(&id) {
            state.bytes -= update_bytes(&update);
            self.account(&mut state);
        }
        Some(live.handle)
    }
}

impl Subscriber for Outbox {
    fn deliver(&self, subscription_id: u64, update: Update) {
        let mut state = self.lock();
        let Some(live) = state.live.get(&subscription_id) else { return };
        if state.closing {
            return;
        }
        let idle = !state.writing && state.control.is_empty() && state.order.is_empty() && !state.flush;
        if idle
            && live.request_id.is_none()
            && let Update::Result { data, .. } = &update
            && data.len() <= WS_MAX_RESULT_BYTES
        {
            state.writing = true;
            drop(state);
            let frame = wire::subscription_result(subscription_id, None, data);
            self.write_now(subscription_id, update, frame);
            return;
        }
        state.bytes += update_bytes(&update);
        if let Some(old) = state.slots.insert(subscription_id, update) {
            state.bytes -= update_bytes(&old);
        } else {
            state.order.push_back(subscription_id);
        }
        self.account(&mut state);
        drop(state);
        self.ready.notify_one();
    }
}

impl Outbox {
    /// One non-blocking attempt to write `frame` (subscription `id`'s `update`, rendered), by a
    /// delivering task holding the writing token; releases the token and leaves whatever is
    /// unfinished to the writer task: a flush if it was not done, or, if the sink was not ready,
    /// the update back in its subscription's slot (unless a newer one is already there), where it
    /// coalesces and ends with the subscription like any pending result.
    fn write_now(&self, id: u64, update: Update, frame: String) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut unsent = None;
        let mut flush = false;
        let started = since(&update);
        match self.sink.try_lock() {
            Err(_) => unsent = Some(update),
            Ok(mut sink) => match Pin::new(&mut *sink).poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => {
                    if Pin::new(&mut *sink).start_send(Message::Text(frame.into())).is_ok() {
                        flush = !matches!(Pin::new(&mut *sink).poll_flush(&mut cx), Poll::Ready(_));
                        if !flush {
                            self.written(started);
                        }
                    }
                }
                // Not ready: the writer task retries and notices a broken socket.
                Poll::Pending | Poll::Ready(Err(_)) => unsent = Some(update),
            },
        }
        let mut state = self.lock();
        state.writing = false;
        if flush {
            state.flush = true;
            state.flush_since = started;
        }
        if let Some(update) = unsent
            && state.live.contains_key(&id)
            && !state.slots.contains_key(&id)
        {
            state.bytes += update_bytes(&update);
            state.slots.insert(id, update);
            state.order.push_back(id);
            self.account(&mut state);
        }
        let wake = state.flush || !state.control.is_empty() || !state.order.is_empty() || state.finished;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }
}

/// Serves one upgraded socket until either side ends it; `session` is `None` until the socket
/// has authenticated.
async fn run(
    mut socket: WebSocket,
    state: AppState,
    tenant_id: TenantId,
    session: Option<TenantSession>,
    dialect: Dialect,
) {
    let session = match session {
        Some(session) => session,
        None => match authenticate(&mut socket, &state, &tenant_id).await {
            Some(session) => session,
            None => return,
        },
    };
    let (sink, mut stream) = socket.split();
    let outbox = Arc::new(Outbox::new(sink, session.latency()));
    let writer = tokio::spawn(write_loop(outbox.clone()));
    let abort = writer.abort_handle();
    outbox.text(wire::hello(SESSIONS.fetch_add(1, Ordering::Relaxed)));
    if handshake(&mut stream, &outbox).await {
        let mut socket = Socket { outbox: outbox.clone(), session, next_id: 1, dialect };
        socket.serve(&mut stream, &state, &tenant_id).await;
    }
    let handles: Vec<Option<Subscription>> = {
        let mut state = outbox.lock();
        state.finished = true;
        state.live.drain().map(|(_, live)| live.handle).collect()
    };
    drop(handles);
    outbox.ready.notify_one();
    if tokio::time::timeout(CLOSE_FLUSH, writer).await.is_err() {
        abort.abort();
    }
}

/// The first steps of a socket upgraded without a credential, before anything is sent to it: its
/// first frame must be `Authenticate` with the admin token (realtime_wire::parse_authenticate),
/// within `WS_AUTH_TIMEOUT_MS`; then the tenant must exist. A failure sends one `fatal_error` and
/// closes: `auth.unauthorized` with 1008 (as every handshake violation), a missing tenant with
/// 4404 (as a deleted one). Returns the tenant's session when the socket may go on to `hello`.
async fn authenticate(socket: &mut WebSocket, state: &AppState, tenant_id: &TenantId) -> Option<TenantSession> {
    let deadline = Instant::now() + TIMINGS.auth;
    let outcome = loop {
        match tokio::time::timeout_at(deadline, socket.recv()).await {
            Err(_) => break Err(wire::authenticate_timeout()),
            Ok(None | Some(Ok(Message::Close(_)))) => return None,
            Ok(Some(Err(e))) => {
                if too_big(&e) {
                    refuse(socket, None, CLOSE_TOO_BIG, "message_too_big").await;
                }
                return None;
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(Some(Ok(Message::Text(text)))) => {
                break wire::parse_authenticate(text.as_str()).and_then(|token| state.auth.check_token(&token));
            }
            Ok(Some(Ok(Message::Binary(_)))) => break Err(NimbusError::unauthorized("missing_credential")),
        }
    };
    let (error, close) = match outcome.and_then(|()| state.realtime.session(tenant_id)) {
        Ok(session) => return Some(session),
        Err(error) if error.code == ErrorCode::AuthUnauthorized => (error, CLOSE_POLICY),
        Err(error) if error.code == ErrorCode::SessionTenantNotFound => (error, CLOSE_TENANT_GONE),
        Err(error) => (error, CLOSE_INTERNAL),
    };
    let reason = error.code.as_str().to_owned();
    refuse(socket, Some(&error), close, &reason).await;
    None
}

/// Ends a socket that has no writer task yet: an optional `fatal_error`, the close frame, then
/// whatever the client still sends until its own close, so that unread input does not reset
/// the connection under the frames; all within `CLOSE_FLUSH`.
async fn refuse(socket: &mut WebSocket, error: Option<&NimbusError>, code: u16, reason: &str) {
    let close = async {
        if let Some(error) = error {
            socket.send(Message::Text(wire::fatal_error(error).into())).await?;
        }
        socket.send(Message::Close(Some(CloseFrame { code, reason: reason.to_owned().into() }))).await?;
        while let Some(Ok(_)) = socket.recv().await {}
        Ok::<(), axum::Error>(())
    };
    let _ = tokio::time::timeout(CLOSE_FLUSH, close).await;
}

/// Whether an inbound read failed because the frame was over the limit.
pub(crate) fn too_big(error: &axum::Error) -> bool {
    let text = error.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big")
}

/// Waits for `client_hello`; every violation queues one `fatal_error` and Close 1008. Returns
/// whether the handshake completed.
async fn handshake(stream: &mut SplitStream<WebSocket>, outbox: &Outbox) -> bool {
    let timings = &*TIMINGS;
    let deadline = Instant::now() + Duration::from_millis(timings.hello_ms);
    loop {
        let message = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                outbox.fatal(&wire::hello_timeout(timings.hello_ms), CLOSE_POLICY);
                return false;
            }
            Ok(None) => return false,
            Ok(Some(Err(e))) => {
                if too_big(&e) {
                    outbox.push(Control::Close(CLOSE_TOO_BIG, "message_too_big".into()));
                }
                return false;
            }
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Text(text) => {
                return match wire::check_client_hello(text.as_str()) {
                    Ok(()) => true,
                    Err(error) => {
                        outbox.fatal(&error, CLOSE_POLICY);
                        false
                    }
                };
            }
            Message::Binary(_) => {
                outbox.fatal(&wire::unsupported_binary(), CLOSE_POLICY);
                return false;
            }
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return false,
        }
    }
}

/// The reader's side of an established socket.
struct Socket {
    outbox: Arc<Outbox>,
    session: TenantSession,
    next_id: u64,
    dialect: Dialect,
}

impl Socket {
    async fn serve(&mut self, stream: &mut SplitStream<WebSocket>, state: &AppState, tenant_id: &TenantId) {
        let timings = &*TIMINGS;
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval_at(Instant::now() + timings.ping, timings.ping);
        loop {
            let deadline = self.outbox.lock().over_since.map(|t| t + timings.backpressure_grace);
            tokio::select! {
                message = stream.next() => {
                    last_heard = Instant::now();
                    match message {
                        None | Some(Ok(Message::Close(_))) => return,
                        Some(Err(e)) => {
                            if too_big(&e) {
                                self.outbox.push(Control::Close(CLOSE_TOO_BIG, "message_too_big".into()));
                            }
                            return;
                        }
                        Some(Ok(Message::Text(text))) => {
                            if text.len() > WS_MAX_INBOUND_BYTES {
                                self.outbox.push(Control::Close(CLOSE_TOO_BIG, "message_too_big".into()));
                                return;
                            }
                            self.handle(text.as_str());
                        }
                        // Binary frames after the handshake are ignored (realtime.md §3).
                        Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= timings.dead_peer {
                        self.outbox.push(Control::Close(CLOSE_HEARTBEAT, "heartbeat_timeout".into()));
                        return;
                    }
                    self.outbox.push(Control::Ping);
                }
                _ = self.session.closed() => {
                    if state.engine.tenant(tenant_id).is_err() {
                        self.outbox.fatal(&NimbusError::tenant_not_found(tenant_id.as_str()), CLOSE_TENANT_GONE);
                    } else {
                        self.outbox.push(Control::Close(CLOSE_GOING_AWAY, "server_shutting_down".into()));
                    }
                    return;
                }
                _ = self.outbox.pressure.notified() => {}
                _ = sleep_until_some(deadline) => {
                    if self.drop_for_backpressure() {
                        return;
                    }
                }
            }
        }
    }

    /// The queue stayed above the high-water mark for the grace period: every subscription is
    /// removed, each with a `session.subscription_error` naming it. If what remains queued
    /// without them (frames that are never coalesced) is still above the mark, even those
    /// notices cannot be queued: the socket ends with `rate.resource_exhausted` and Close 1013.
    /// Returns whether the socket must close.
    fn drop_for_backpressure(&self) -> bool {
        let ids: Vec<u64> = {
            let state = self.outbox.lock();
            match state.over_since {
                Some(since) if since.elapsed() >= TIMINGS.backpressure_grace => {
                    let mut ids: Vec<u64> = state.live.keys().copied().collect();
                    ids.sort_unstable();
                    ids
                }
                _ => return false,
            }
        };
        for &id in &ids {
            drop(self.outbox.end(id));
        }
        if self.outbox.lock().bytes > WS_OUTBOUND_HIGH_WATER_BYTES {
            let limit = WS_OUTBOUND_HIGH_WATER_BYTES as u64;
            self.outbox.fatal(&NimbusError::resource_exhausted("ws_outbound_bytes", limit, None), CLOSE_OVERLOADED);
            return true;
        }
        for id in ids {
            self.outbox.text(wire::session_error(&wire::subscription_error(id, true, "backpressure", None)));
        }
        false
    }

    /// Applies one client frame after the handshake.
    fn handle(&mut self, text: &str) {
        match wire::parse_client_frame(text, self.dialect) {
            Err(error) => self.outbox.text(wire::session_error(&error)),
            Ok(ClientFrame::Subscribe { request_id, target }) => {
                if let Err(error) = self.subscribe(&request_id, target) {
                    self.outbox.text(wire::op_error(&request_id, &error));
                }
            }
            Ok(ClientFrame::Unsubscribe { subscription_id }) => match self.outbox.end(subscription_id) {
                Some(handle) => drop(handle),
                None => self.outbox.text(wire::session_error(&wire::unsubscribe_failed(subscription_id))),
            },
            Ok(ClientFrame::Authenticate) => self.outbox.text(wire::session_error(&wire::authenticate_unsupported())),
            Ok(ClientFrame::ClearAuth) => self.outbox.text(wire::authenticated_false()),
            Ok(ClientFrame::Ping) => self.outbox.text(wire::pong()),
        }
    }

    fn subscribe(&mut self, request_id: &str, target: Result<SubscribeTarget, NimbusError>) -> Result<(), NimbusError> {
        let source = match target? {
            SubscribeTarget::Function(name, args) => Source::Function { name, args },
            SubscribeTarget::Query(value) => {
                let bytes = serde_json::to_vec(&value).map_err(|_| NimbusError::internal())?;
                Source::Query(to_query(parse(&bytes).map_err(|e| e.within("query"))?, "query")?)
            }
        };
        let id = {
            let mut state = self.outbox.lock();
            let live = state.live.len();
            if live >= WS_MAX_SUBSCRIPTIONS {
                return Err(NimbusError::resource_exhausted(
                    "ws_subscriptions",
                    WS_MAX_SUBSCRIPTIONS as u64,
                    Some(live as u64),
                ));
            }
            let id = self.next_id;
            self.next_id += 1;
            state.live.insert(id, Live { request_id: Some(request_id.to_owned()), handle: None });
            id
        };
        let subscriber: Arc<dyn Subscriber> = self.outbox.clone();
        let handle = match source {
            Source::Query(query) => self.session.subscribe(query, id, subscriber),
            Source::Function { name, args } => self.session.subscribe_function(name, args, id, subscriber),
        };
        let mut state = self.outbox.lock();
        match state.live.get_mut(&id) {
            Some(live) => live.handle = Some(handle),
            // Already ended (its first evaluation failed): drop the handle outside the lock.
            None => {
                drop(state);
                drop(handle);
            }
        }
        Ok(())
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Drains the outbox onto the socket until a close is sent, the reader finishes or the client
/// goes away.
async fn write_loop(outbox: Arc<Outbox>) {
    let mut held = false;
    loop {
        let Some(next) = outbox.take(held) else {
            held = false;
            {
                let state = outbox.lock();
                if state.finished && !state.writing {
                    break;
                }
            }
            outbox.ready.notified().await;
            continue;
        };
        held = true;
        let mut sink = outbox.sink.lock().await;
        let mut started = None;
        let message = match next {
            Next::Flush(since) => {
                if sink.flush().await.is_err() {
                    break;
                }
                outbox.written(since);
                continue;
            }
            Next::Control(Control::Text(text)) => Message::Text(text.into()),
            Next::Control(Control::Ping) => Message::Ping(Bytes::new()),
            Next::Control(Control::Close(code, reason)) => {
                let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                break;
            }
            Next::Update(id, update, request_id) => {
                started = since(&update);
                match render(&outbox, id, update, request_id) {
                    Some(text) => Message::Text(text.into()),
                    None => continue,
                }
            }
        };
        if sink.send(message).await.is_err() {
            break;
        }
        outbox.written(started);
    }
    let mut state = outbox.lock();
    state.closing = true;
    state.finished = true;
    state.writing = false;
}

/// The frame for a subscription's update; ends the subscription when the update does.
fn render(outbox: &Outbox, id: u64, update: Update, request_id: Option<String>) -> Option<String> {
    match (update, request_id) {
        (Update::Result { data, .. }, _) if data.len() > WS_MAX_RESULT_BYTES => {
            drop(outbox.end(id)?);
            Some(wire::session_error(&wire::subscription_error(id, true, "result_too_large", None)))
        }
        (Update::Result { data, .. }, request_id) => Some(wire::subscription_result(id, request_id.as_deref(), &data)),
        // The first evaluation failed: the subscribe request failed.
        (Update::Failed(error), Some(request_id)) => {
            drop(outbox.end(id)?);
            Some(wire::op_error(&request_id, &error))
        }
        (Update::Failed(error), None) => {
            Some(wire::session_error(&wire::subscription_error(id, false, "evaluation_failed", Some(&error))))
        }
        (Update::Dropped(reason), _) => {
            drop(outbox.end(id)?);
            Some(wire::session_error(&wire::subscription_error(id, true, reason.as_str(), None)))
        }
    }
}

//! Channel and process streams (NDJSON, sessions.md §5) and WebSocket attachments (§9), with
//! the `stdio` channel's input and resize.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use nimbus_compute::session::{AttachKey, Attached, Channel, Opened, Sessions, StreamItem, pty_size};
use nimbus_core::NimbusError;
use nimbus_core::limits::{SESSION_HEARTBEAT_MS, WS_MAX_INBOUND_BYTES};
use serde_json::{Value, json};
use std::sync::Arc;

use super::SessionPath;
use crate::body::{RawBody, parse};
use crate::envelope::{ApiResult, envelope_json};
use crate::params::{PathParams, QueryParams};
use crate::request_id;
use crate::routes::ndjson::{self, line};
use crate::session_wire::{ClientMessage, InputBody, ResizeBody, channel, heartbeat_json, item_json, opened_json};
use crate::state::AppState;

/// Interval of WebSocket pings (realtime.md §7).
const WS_PING: Duration = Duration::from_secs(15);
/// Silence from a WebSocket client after which it is presumed gone (realtime.md §7).
const WS_DEAD_PEER: Duration = Duration::from_secs(45);
/// Close code of a dead peer (realtime.md §8).
const WS_CLOSE_HEARTBEAT: u16 = 4408;

/// An attachment as an NDJSON response: `opened`, the frames, `closed`; a heartbeat after
/// [`SESSION_HEARTBEAT_MS`] of silence.
fn ndjson(opened: &Opened, attached: Attached) -> Response {
    struct Follow {
        first: Option<Bytes>,
        attached: Attached,
        process: bool,
        done: bool,
    }
    let start =
        Follow { first: Some(line(&opened_json(opened))), process: opened.process_id.is_some(), attached, done: false };
    let stream = futures_util::stream::unfold(start, |mut follow| async move {
        if let Some(first) = follow.first.take() {
            return Some((Ok::<_, std::io::Error>(first), follow));
        }
        if follow.done {
            return None;
        }
        let silence = Duration::from_millis(SESSION_HEARTBEAT_MS);
        match tokio::time::timeout(silence, follow.attached.next()).await {
            Ok(Some(item)) => {
                follow.done = matches!(item, StreamItem::Closed(_));
                let frame = line(&item_json(&item, follow.process));
                Some((Ok(frame), follow))
            }
            Ok(None) => None,
            Err(_) => Some((Ok(line(&heartbeat_json())), follow)),
        }
    });
    ndjson::response(Body::from_stream(stream))
}

/// `GET /api/sessions/{id}/channels/{channel}/stream` and `GET …/processes/{pid}/stream`.
pub async fn stream(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Response> {
    let path = SessionPath::parse(&state, &params, &query)?;
    let (key, _) = attach_target(&params)?;
    let (opened, attached) = state.sessions.attach(path.tenant(), &path.id, key).await?;
    Ok(ndjson(&opened, attached))
}

/// What a stream or WebSocket route attaches to and where its input goes: `{channel}` routes
/// name a channel, `{process_id}` routes a process started by exec.
fn attach_target(params: &PathParams) -> Result<(AttachKey, InputTarget), NimbusError> {
    if params.has("process_id") {
        let pid = params.segment("process_id")?.to_owned();
        return Ok((AttachKey::Process(pid.clone()), InputTarget::Process(pid)));
    }
    // `…/channels/stdio/resize` names its channel in the route itself.
    let channel = if params.has("channel") { channel(params.segment("channel")?)? } else { Channel::Stdio };
    Ok((AttachKey::Channel(channel), InputTarget::Channel(channel)))
}

/// `POST …/channels/{channel}/input` (needs a live attachment) and `POST …/processes/{pid}/input`:
/// 202.
pub async fn input(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<StatusCode> {
    let inputs = Inputs::of(&state, &params, &query)?;
    let (data, eof) = body.json::<InputBody>()?.decode()?;
    inputs.input(data, eof).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST …/channels/stdio/resize` and `POST …/processes/{pid}/resize`: 202; 409 `not_a_tty`.
pub async fn resize(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    body: RawBody,
) -> ApiResult<StatusCode> {
    let inputs = Inputs::of(&state, &params, &query)?;
    let body = body.json::<ResizeBody>()?;
    inputs.resize(body.cols, body.rows).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Where a client's input goes.
#[derive(Clone)]
enum InputTarget {
    Channel(Channel),
    Process(String),
}

/// Accepts the upgrade with an inbound cap of `max_bytes`: a larger client message closes with
/// 1009.
pub(super) fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    max_bytes: usize,
) -> Result<WebSocketUpgrade, NimbusError> {
    let ws = ws.map_err(|e| NimbusError::invalid_request(format!("a WebSocket upgrade is required: {e}")))?;
    Ok(ws.max_message_size(max_bytes).max_frame_size(max_bytes))
}

/// `GET /api/sessions/{id}/channels/{channel}/ws` and `GET …/processes/{pid}/ws`.
pub async fn ws(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let path = SessionPath::parse(&state, &params, &query)?;
    let (key, target) = attach_target(&params)?;
    // `/ws`'s inbound cap.
    let ws = upgrade(ws, WS_MAX_INBOUND_BYTES)?;
    let (opened, attached) = state.sessions.attach(path.tenant(), &path.id, key).await?;
    Ok(serve_ws(ws, state.sessions.clone(), path, target, opened, attached))
}

fn serve_ws(
    ws: WebSocketUpgrade,
    sessions: Arc<Sessions>,
    path: SessionPath,
    target: InputTarget,
    opened: Opened,
    attached: Attached,
) -> Response {
    let request_id = request_id::current();
    ws.on_upgrade(move |socket| async move {
        let inputs = Inputs { sessions, path, target };
        let mut attachment = WsAttachment { socket, inputs, request_id };
        if let Err(e) = attachment.run(opened, attached).await {
            tracing::debug!(error = %e, "a session WebSocket ended with an error");
        }
    })
}

/// One WebSocket attachment: frames out as JSON text, client messages in.
struct WsAttachment {
    socket: WebSocket,
    inputs: Inputs,
    /// The upgrade request's id, for the envelopes of `error` messages.
    request_id: String,
}

/// Where a WebSocket attachment's client messages go.
struct Inputs {
    sessions: Arc<Sessions>,
    path: SessionPath,
    target: InputTarget,
}

impl WsAttachment {
    async fn send(&mut self, value: &Value) -> Result<(), axum::Error> {
        self.socket.send(Message::Text(value.to_string().into())).await
    }

    async fn close(&mut self, code: u16, reason: &'static str) -> Result<(), axum::Error> {
        self.socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await
    }

    async fn run(&mut self, opened: Opened, mut attached: Attached) -> Result<(), axum::Error> {
        let process = opened.process_id.is_some();
        self.send(&opened_json(&opened)).await?;
        let silence = Duration::from_millis(SESSION_HEARTBEAT_MS);
        let mut last_sent = tokio::time::Instant::now();
        let mut last_heard = tokio::time::Instant::now();
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + WS_PING, WS_PING);
        loop {
            tokio::select! {
                item = attached.next() => {
                    let Some(item) = item else { return Ok(()) };
                    self.send(&item_json(&item, process)).await?;
                    last_sent = tokio::time::Instant::now();
                    if matches!(item, StreamItem::Closed(_)) {
                        return self.close(1000, "").await;
                    }
                }
                message = self.socket.recv() => {
                    last_heard = tokio::time::Instant::now();
                    match message {
                        Some(Ok(Message::Text(text))) => self.handle(text.as_bytes()).await?,
                        Some(Ok(Message::Binary(_))) => {
                            let error = NimbusError::invalid_request("client messages are JSON text");
                            self.reply_error(&error).await?;
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Err(e)) if crate::routes::ws::too_big(&e) => {
                            return self.close(crate::routes::ws::CLOSE_TOO_BIG, "message_too_big").await;
                        }
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(()),
                    }
                }
                _ = tokio::time::sleep_until(last_sent + silence) => {
                    self.send(&heartbeat_json()).await?;
                    last_sent = tokio::time::Instant::now();
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= WS_DEAD_PEER {
                        return self.close(WS_CLOSE_HEARTBEAT, "heartbeat_timeout").await;
                    }
                    self.socket.send(Message::Ping(Bytes::new())).await?;
                }
            }
        }
    }

    async fn reply_error(&mut self, error: &NimbusError) -> Result<(), axum::Error> {
        let message = json!({ "kind": "error", "error": envelope_json(error, &self.request_id) });
        self.send(&message).await
    }

    /// Applies one client message; a failure is answered with an `error` message and the socket
    /// stays open.
    async fn handle(&mut self, text: &[u8]) -> Result<(), axum::Error> {
        if let Err(error) = self.inputs.apply(text).await {
            self.reply_error(&error).await?;
        }
        Ok(())
    }
}

impl Inputs {
    /// The session and input target of an input or resize route.
    fn of(state: &AppState, params: &PathParams, query: &QueryParams) -> Result<Self, NimbusError> {
        let path = SessionPath::parse(state, params, query)?;
        let (_, target) = attach_target(params)?;
        Ok(Self { sessions: state.sessions.clone(), path, target })
    }

    async fn input(&self, data: Vec<u8>, eof: bool) -> Result<(), NimbusError> {
        let (tenant, id) = (self.path.tenant(), self.path.id.as_str());
        match &self.target {
            InputTarget::Channel(channel) => self.sessions.channel_input(tenant, id, *channel, data, eof).await,
            InputTarget::Process(pid) => self.sessions.process_input(tenant, id, pid, data, eof).await,
        }
    }

    async fn resize(&self, cols: u64, rows: u64) -> Result<(), NimbusError> {
        let (cols, rows) = pty_size(cols, rows)?;
        let (tenant, id) = (self.path.tenant(), self.path.id.as_str());
        match &self.target {
            InputTarget::Channel(_) => self.sessions.stdio_resize(tenant, id, cols, rows).await,
            InputTarget::Process(pid) => self.sessions.process_resize(tenant, id, pid, cols, rows).await,
        }
    }

    async fn apply(&self, text: &[u8]) -> Result<(), NimbusError> {
        match parse::<ClientMessage>(text)? {
            ClientMessage::Input { data, encoding } => {
                self.input(ClientMessage::input_bytes(data, encoding.as_deref())?, false).await
            }
            ClientMessage::Eof => self.input(Vec::new(), true).await,
            ClientMessage::Resize { cols, rows } => self.resize(cols, rows).await,
        }
    }
}

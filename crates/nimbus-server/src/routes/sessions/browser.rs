//! The browser channels of a session on a browser service (docs/browser.md): `POST
//! …/page/{operation}` runs one page operation; `GET …/channels/cdp/ws` relays the DevTools
//! protocol between the client and a DevTools connection of its own, confined to the session's
//! browser context.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use nimbus_browser::page::PageAnswer;
use nimbus_core::limits::BROWSER_CDP_MAX_MESSAGE_BYTES;
use serde_json::Value;

use super::SessionPath;
use super::stream::upgrade;
use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::state::AppState;

/// `POST /api/sessions/{id}/page/{operation}`: the body is the operation's JSON (empty means
/// `{}`); the answer is JSON, or the PNG or PDF bytes of `screenshot` and `pdf`.
pub async fn page(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    uri: Uri,
    body: RawBody,
) -> ApiResult<Response> {
    let path = SessionPath::parse(&state, &params, &query)?;
    // One route per operation: the operation is the path's last segment.
    let operation = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    let body: Value = body.optional_json()?.unwrap_or_else(|| Value::Object(Default::default()));
    let answer = state.sessions.page_operation(path.tenant(), &path.id, &operation, body).await?;
    Ok(match answer {
        PageAnswer::Json(value) => Json(value).into_response(),
        PageAnswer::Binary { content_type, bytes } => {
            let mut response = Body::from(bytes).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    })
}

/// `GET /api/sessions/{id}/channels/cdp/ws`: the session and its socket count are checked, and
/// the upstream DevTools connection made, before the upgrade is answered.
pub async fn cdp_ws(
    State(state): State<AppState>,
    params: PathParams,
    query: QueryParams,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let path = SessionPath::parse(&state, &params, &query)?;
    let ws = upgrade(ws, BROWSER_CDP_MAX_MESSAGE_BYTES)?;
    let cdp = state.sessions.cdp(path.tenant(), &path.id).await?;
    Ok(ws.on_upgrade(move |socket| relay(socket, cdp)))
}

/// Runs the confinement relay until either side closes or the session ends.
async fn relay(socket: WebSocket, cdp: nimbus_compute::session::CdpUpstream) {
    let nimbus_compute::session::CdpUpstream { upstream, scope, mut ended, slot } = cdp;
    let (sink, stream) = socket.split();
    // The client as text messages: binary frames are not DevTools messages and end the socket.
    let client_in = stream.filter_map(|message| async move {
        match message {
            Ok(Message::Text(text)) => Some(Ok(text.to_string())),
            Ok(Message::Binary(_)) => Some(Err(axum::Error::new("binary frames are not DevTools messages"))),
            Ok(Message::Ping(_) | Message::Pong(_)) => None,
            Ok(Message::Close(_)) => Some(Err(axum::Error::new("closed"))),
            Err(e) => Some(Err(e)),
        }
    });
    let client_out = sink.with(|text: String| async move { Ok::<_, axum::Error>(Message::Text(text.into())) });
    tokio::select! {
        () = nimbus_browser::relay::relay(client_in, client_out, upstream, scope) => {}
        _ = ended.wait_for(|ended| *ended) => {}
    }
    drop(slot);
}

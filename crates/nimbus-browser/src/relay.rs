//! The `cdp` channel's relay: one client socket and the proxy's own DevTools connection to
//! Chromium's browser endpoint, with the [`Confinement`] between them (docs/browser.md, "The
//! `cdp` channel").
//!
//! The client side is generic: text messages in (the server's adapter turns a binary frame or
//! the client's close into an error or the end of the stream) and text messages out. The
//! upstream is a `tokio-tungstenite` client connection opened with the message limit
//! ([`crate::cdp::open_socket`] does). Messages over `BROWSER_CDP_MAX_MESSAGE_BYTES` either way
//! end the relay; when it ends, the client's sink is closed and the contexts the socket created
//! are disposed of (best effort, bounded in time) before the upstream closes. Dropping the
//! relay's future instead (the session ended) drops the upstream connection, and Chromium
//! disposes of those contexts itself (they are created with `disposeOnDetach`).

use std::fmt;
use std::pin::pin;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use nimbus_core::limits::BROWSER_CDP_MAX_MESSAGE_BYTES;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::confine::{Action, Confinement, Scope};

/// How long the relay waits, when the socket ends, for Chromium to confirm the disposal of the
/// contexts the socket created, and then for the upstream's close.
pub const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long either peer may take to accept one message before the relay gives up on it: a
/// client that stops reading must not make Chromium buffer its events without end.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Relays one client socket to Chromium, confined to `scope`, until either side ends; then
/// closes `client_out` (after `Browser.close`'s answer, when that ended it), disposes of the
/// contexts the socket created and closes the upstream. `client_in` yields the client's text
/// messages; an error or its end ends the relay. Why it ended is logged (debug).
pub async fn relay<I, O, E, S>(client_in: I, client_out: O, upstream: WebSocketStream<S>, scope: Scope)
where
    I: Stream<Item = Result<String, E>>,
    O: Sink<String>,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = Limits {
        max_message_bytes: BROWSER_CDP_MAX_MESSAGE_BYTES,
        send_timeout: SEND_TIMEOUT,
        teardown_timeout: TEARDOWN_TIMEOUT,
    };
    let end = relay_with(client_in, client_out, upstream, scope, limits).await;
    tracing::debug!(%end, "cdp: relay ended");
}

/// The relay's bounds (tests use small ones).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_message_bytes: usize,
    send_timeout: Duration,
    teardown_timeout: Duration,
}

/// Why a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client's stream ended or failed (it closed its socket, or sent a binary frame).
    ClientLeft,
    /// The client sent `Browser.close`.
    BrowserClose,
    /// The client sent a message over the limit.
    ClientTooLarge,
    /// The client did not take a message in time, or its sink failed.
    ClientStalled,
    /// Chromium's connection closed.
    UpstreamClosed,
    /// Chromium sent a message over the limit.
    UpstreamTooLarge,
    /// Chromium's connection failed, or it did not take a message in time.
    UpstreamFailed,
}

impl End {
    /// Whether the upstream can still carry the teardown.
    fn upstream_alive(self) -> bool {
        !matches!(self, End::UpstreamClosed | End::UpstreamTooLarge | End::UpstreamFailed)
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::ClientLeft => "the client closed the socket",
            End::BrowserClose => "the client sent Browser.close",
            End::ClientTooLarge => "the client sent a message over the limit",
            End::ClientStalled => "the client's socket failed or stalled",
            End::UpstreamClosed => "the browser closed the connection",
            End::UpstreamTooLarge => "the browser sent a message over the limit",
            End::UpstreamFailed => "the browser connection failed or stalled",
        })
    }
}

async fn relay_with<I, O, E, S>(
    client_in: I,
    client_out: O,
    mut upstream: WebSocketStream<S>,
    scope: Scope,
    limits: Limits,
) -> End
where
    I: Stream<Item = Result<String, E>>,
    O: Sink<String>,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut client_in = pin!(client_in);
    let mut client_out = pin!(client_out);
    let mut confinement = Confinement::new(scope);
    let end = pump(&mut client_in, &mut client_out, &mut upstream, &mut confinement, limits).await;
    if end != End::ClientStalled {
        let _ = tokio::time::timeout(limits.send_timeout, client_out.close()).await;
    }
    if end.upstream_alive() {
        teardown(&mut upstream, &mut confinement, limits).await;
    }
    end
}

/// Moves messages both ways until one side ends.
async fn pump<I, O, E, S>(
    client_in: &mut I,
    client_out: &mut O,
    upstream: &mut WebSocketStream<S>,
    confinement: &mut Confinement,
    limits: Limits,
) -> End
where
    I: Stream<Item = Result<String, E>> + Unpin,
    O: Sink<String> + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let actions = tokio::select! {
            inbound = client_in.next() => match inbound {
                None | Some(Err(_)) => return End::ClientLeft,
                Some(Ok(text)) => {
                    if text.len() > limits.max_message_bytes {
                        return End::ClientTooLarge;
                    }
                    confinement.from_client(&text)
                }
            },
            message = upstream.next() => match message {
                None | Some(Ok(Message::Close(_))) => return End::UpstreamClosed,
                Some(Err(tungstenite::Error::Capacity(_))) => return End::UpstreamTooLarge,
                Some(Err(_)) => return End::UpstreamFailed,
                Some(Ok(Message::Text(text))) => {
                    if text.len() > limits.max_message_bytes {
                        return End::UpstreamTooLarge;
                    }
                    confinement.from_chromium(&text)
                }
                // Chromium sends text only; pings are answered by tungstenite.
                Some(Ok(_)) => continue,
            },
        };
        for action in actions {
            match action {
                Action::ToChromium(text) => {
                    let sent = tokio::time::timeout(limits.send_timeout, upstream.send(Message::text(text))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return End::UpstreamFailed;
                    }
                }
                Action::ToClient(text) => {
                    let sent = tokio::time::timeout(limits.send_timeout, client_out.send(text)).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return End::ClientStalled;
                    }
                }
                Action::CloseClient => return End::BrowserClose,
            }
        }
    }
}

/// Disposes of the contexts the socket created and closes the upstream, within the teardown
/// timeout. Foreign targets auto-attached meanwhile are still released.
async fn teardown<S>(upstream: &mut WebSocketStream<S>, confinement: &mut Confinement, limits: Limits)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let disposals = confinement.teardown();
    let settle = async {
        for text in disposals {
            if upstream.send(Message::text(text)).await.is_err() {
                return;
            }
        }
        while !confinement.teardown_finished() {
            let text = match upstream.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => continue,
            };
            for action in confinement.from_chromium(&text) {
                if let Action::ToChromium(text) = action
                    && upstream.send(Message::text(text)).await.is_err()
                {
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(limits.teardown_timeout, settle).await.is_err() {
        tracing::debug!("cdp: the browser did not confirm the disposal of this socket's contexts in time");
    }
    let _ = tokio::time::timeout(limits.teardown_timeout, upstream.close(None)).await;
}

#[cfg(test)]
mod tests {
    //! The relay against a scripted fake Chromium on an in-memory duplex stream and a
    //! channel-backed client.

    use std::pin::Pin;
    use std::task::{Context, Poll};

    use serde_json::{Value, json};
    use tokio::io::DuplexStream;
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

    use super::*;

    /// What the client's socket was given.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Text(String),
        Closed,
    }

    /// The client's sending half: records what it is given, or never takes anything.
    struct FakeSink {
        seen: mpsc::UnboundedSender<Seen>,
        stalled: bool,
    }

    impl Sink<String> for FakeSink {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            if self.stalled { Poll::Pending } else { Poll::Ready(Ok(())) }
        }
        fn start_send(self: Pin<&mut Self>, text: String) -> Result<(), ()> {
            self.seen.send(Seen::Text(text)).map_err(|_| ())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            let _ = self.seen.send(Seen::Closed);
            Poll::Ready(Ok(()))
        }
    }

    /// The test's ends: the client's keyboard and screen, and Chromium.
    struct Rig {
        /// `None` once the client has left.
        keyboard: Option<mpsc::UnboundedSender<Result<String, ()>>>,
        screen: mpsc::UnboundedReceiver<Seen>,
        chromium: WebSocketStream<DuplexStream>,
        relay: JoinHandle<End>,
    }

    const SMALL: usize = 1024;

    fn limits(teardown_timeout: Duration) -> Limits {
        Limits { max_message_bytes: SMALL, send_timeout: Duration::from_millis(300), teardown_timeout }
    }

    async fn rig_with(upstream_limit: Option<usize>, stalled: bool, limits: Limits) -> Rig {
        let (near, far) = tokio::io::duplex(64 * 1024);
        let config = WebSocketConfig::default().max_message_size(upstream_limit).max_frame_size(upstream_limit);
        let upstream = WebSocketStream::from_raw_socket(near, Role::Client, Some(config)).await;
        let chromium = WebSocketStream::from_raw_socket(far, Role::Server, None).await;
        let (keyboard, mut typed) = mpsc::unbounded_channel();
        let client_in = futures_util::stream::poll_fn(move |cx| typed.poll_recv(cx));
        let (seen, screen) = mpsc::unbounded_channel();
        let client_out = FakeSink { seen, stalled };
        let scope = Scope { context_id: "CTX-OWN".into(), max_pages: 4 };
        let relay = tokio::spawn(relay_with(client_in, client_out, upstream, scope, limits));
        Rig { keyboard: Some(keyboard), screen, chromium, relay }
    }

    async fn rig() -> Rig {
        rig_with(Some(SMALL), false, limits(Duration::from_secs(10))).await
    }

    impl Rig {
        fn send(&self, message: Result<String, ()>) {
            self.keyboard.as_ref().expect("the client is here").send(message).expect("the relay reads");
        }

        fn type_text(&self, message: Value) {
            self.send(Ok(message.to_string()));
        }

        /// The client closes its socket.
        fn leave(&mut self) {
            self.keyboard = None;
        }

        async fn client_sees(&mut self) -> Seen {
            self.screen.recv().await.expect("the relay writes to the client")
        }

        async fn client_sees_json(&mut self) -> Value {
            match self.client_sees().await {
                Seen::Text(text) => serde_json::from_str(&text).expect("JSON"),
                other => panic!("expected a text message, got {other:?}"),
            }
        }

        async fn chromium_gets(&mut self) -> Value {
            loop {
                match self.chromium.next().await {
                    Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("JSON"),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("expected a text message, got {other:?}"),
                }
            }
        }

        async fn chromium_says(&mut self, message: Value) {
            self.chromium.send(Message::text(message.to_string())).await.expect("the relay reads Chromium");
        }

        /// Chromium sees the upstream close (a close frame or the end of the stream).
        async fn chromium_sees_close(&mut self) {
            loop {
                match self.chromium.next().await {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(Message::Text(text))) => panic!("unexpected message {text}"),
                    Some(Ok(_)) => continue,
                }
            }
        }

        /// The client creates a context, which Chromium answers with `context`.
        async fn create_context(&mut self, context: &str) {
            self.type_text(json!({"id": 100, "method": "Target.createBrowserContext"}));
            let sent = self.chromium_gets().await;
            assert_eq!(sent["method"], json!("Target.createBrowserContext"));
            self.chromium_says(json!({"id": sent["id"], "result": {"browserContextId": context}})).await;
            assert_eq!(self.client_sees_json().await, json!({"id": 100, "result": {"browserContextId": context}}));
        }

        async fn ends(self) -> End {
            self.relay.await.expect("the relay does not panic")
        }
    }

    #[tokio::test]
    async fn relays_both_ways_through_the_confinement() {
        let mut rig = rig().await;
        rig.type_text(json!({"id": 77, "method": "Browser.getVersion"}));
        let sent = rig.chromium_gets().await;
        assert_eq!(sent, json!({"id": 1, "method": "Browser.getVersion", "params": {}}));
        rig.chromium_says(json!({"id": 1, "result": {"product": "Chrome/156"}})).await;
        assert_eq!(rig.client_sees_json().await, json!({"id": 77, "result": {"product": "Chrome/156"}}));

        // A refused command is answered by the relay, and never reaches Chromium.
        rig.type_text(json!({"id": 78, "method": "Browser.crash"}));
        assert_eq!(rig.client_sees_json().await["error"]["code"], json!(-32000));

        // Another session's paused page: released by the relay, never shown to the client.
        rig.chromium_says(
            json!({"method": "Target.attachedToTarget", "params": {"sessionId": "SF", "waitingForDebugger": true,
            "targetInfo": {"targetId": "TF", "type": "page", "browserContextId": "CTX-OTHER"}}}),
        )
        .await;
        assert_eq!(rig.chromium_gets().await["method"], json!("Runtime.runIfWaitingForDebugger"));
        assert_eq!(rig.chromium_gets().await["method"], json!("Target.detachFromTarget"));
        let own = json!({"method": "Target.attachedToTarget", "params": {"sessionId": "S1", "waitingForDebugger": true,
            "targetInfo": {"targetId": "T1", "type": "page", "browserContextId": "CTX-OWN"}}});
        rig.chromium_says(own.clone()).await;
        assert_eq!(rig.client_sees_json().await, own);

        rig.leave();
        rig.chromium_sees_close().await;
        assert_eq!(rig.client_sees().await, Seen::Closed);
        assert_eq!(rig.ends().await, End::ClientLeft);
    }

    #[tokio::test]
    async fn a_client_leaving_disposes_of_its_contexts() {
        let mut rig = rig().await;
        rig.create_context("CTX-NEW").await;
        rig.leave();
        let sent = rig.chromium_gets().await;
        assert_eq!(sent["method"], json!("Target.disposeBrowserContext"));
        assert_eq!(sent["params"], json!({"browserContextId": "CTX-NEW"}));
        rig.chromium_says(json!({"id": sent["id"], "result": {}})).await;
        rig.chromium_sees_close().await;
        assert_eq!(rig.ends().await, End::ClientLeft);
    }

    #[tokio::test]
    async fn a_client_error_ends_the_relay() {
        // The server's adapter turns a binary frame into an error.
        let mut rig = rig().await;
        rig.send(Err(()));
        assert_eq!(rig.client_sees().await, Seen::Closed);
        rig.chromium_sees_close().await;
        assert_eq!(rig.ends().await, End::ClientLeft);
    }

    #[tokio::test]
    async fn browser_close_closes_the_client_and_keeps_chromium() {
        let mut rig = rig().await;
        rig.create_context("CTX-NEW").await;
        rig.type_text(json!({"id": 5, "method": "Browser.close"}));
        assert_eq!(rig.client_sees_json().await, json!({"id": 5, "result": {}}));
        assert_eq!(rig.client_sees().await, Seen::Closed);
        // Chromium never sees Browser.close: only the disposal, then the upstream's close.
        let sent = rig.chromium_gets().await;
        assert_eq!(sent["method"], json!("Target.disposeBrowserContext"));
        rig.chromium_says(json!({"id": sent["id"], "result": {}})).await;
        rig.chromium_sees_close().await;
        assert_eq!(rig.ends().await, End::BrowserClose);
    }

    #[tokio::test]
    async fn an_oversized_client_message_ends_the_relay() {
        let mut rig = rig().await;
        let big = json!({"id": 1, "method": "Runtime.evaluate", "params": {"expression": "x".repeat(SMALL)}});
        rig.type_text(big);
        assert_eq!(rig.client_sees().await, Seen::Closed);
        rig.chromium_sees_close().await;
        assert_eq!(rig.ends().await, End::ClientTooLarge);
    }

    #[tokio::test]
    async fn an_oversized_chromium_message_ends_the_relay() {
        // Refused by tungstenite's limit (as `cdp::open_socket` configures it), and by the
        // relay's own check when the upstream was opened without one.
        for upstream_limit in [Some(SMALL), None] {
            let mut rig = rig_with(upstream_limit, false, limits(Duration::from_secs(10))).await;
            let big = json!({"method": "Page.loadEventFired", "params": {"pad": "x".repeat(SMALL)}});
            rig.chromium_says(big).await;
            assert_eq!(rig.client_sees().await, Seen::Closed);
            assert_eq!(rig.ends().await, End::UpstreamTooLarge);
        }
    }

    #[tokio::test]
    async fn chromium_going_away_closes_the_client() {
        let mut rig = rig().await;
        rig.chromium.close(None).await.expect("close");
        assert_eq!(rig.client_sees().await, Seen::Closed);
        assert_eq!(rig.ends().await, End::UpstreamClosed);
    }

    #[tokio::test]
    async fn teardown_is_bounded_when_chromium_does_not_answer() {
        let mut rig = rig_with(Some(SMALL), false, limits(Duration::from_millis(200))).await;
        rig.create_context("CTX-NEW").await;
        rig.leave();
        assert_eq!(rig.chromium_gets().await["method"], json!("Target.disposeBrowserContext"));
        // No answer: the relay still ends (after the teardown timeout), closing the upstream.
        rig.chromium_sees_close().await;
        assert_eq!(rig.ends().await, End::ClientLeft);
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_let_go() {
        let mut rig = rig_with(Some(SMALL), true, limits(Duration::from_secs(10))).await;
        rig.chromium_says(json!({"method": "Inspector.detached", "params": {"reason": "x"}})).await;
        rig.chromium_sees_close().await;
        assert_eq!(rig.ends().await, End::ClientStalled);
    }
}

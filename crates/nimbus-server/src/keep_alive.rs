//! Keep-alive after an early answer: a request answered before its body was read to the end (a
//! 405, a 415, a missing parameter or token) must leave the connection usable, or closed with
//! notice, on every route.
//!
//! hyper (1.x, HTTP/1) writes a response head as soon as the service returns it, and only then
//! notices that the request body was dropped unread: it reads once more from the socket and, if
//! the body is still incomplete, closes the connection after the answer. The head has already
//! gone out without `Connection: close`, so a keep-alive client sends its next request into a
//! closing socket. And a close with unread input makes the kernel reset the connection, which
//! fails the client's upload and can destroy the answer before the client reads it.
//!
//! [`finish_request_body`] wraps each request body to learn whether it was read to its end.
//! When the answer is ready and it was not:
//! - a rest up to [`HTTP_DRAIN_MAX_BYTES`] is read and discarded before answering (within
//!   [`HTTP_DRAIN_TIMEOUT_MS`]), so the connection stays open for the next request;
//! - a larger rest, or one that does not arrive in time, gets `Connection: close` on the answer
//!   and is read and discarded in the background while hyper sends the answer (up to
//!   [`HTTP_LINGER_MAX_BYTES`], within [`HTTP_LINGER_TIMEOUT_MS`]), so the client can finish
//!   sending and the connection then ends with a clean close (RFC 9112 §9.6);
//! - a body offered with `Expect: 100-continue` that nobody asked for is not solicited (reading
//!   it would send `100 Continue`): `Connection: close`, and hyper closes without it.
//!
//! A body the handler still holds when it answers (a streaming route) is the handler's: this
//! middleware never buffers a body and never reads one the handler has not let go of.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use nimbus_core::limits::{HTTP_DRAIN_MAX_BYTES, HTTP_DRAIN_TIMEOUT_MS, HTTP_LINGER_MAX_BYTES, HTTP_LINGER_TIMEOUT_MS};

/// The outermost middleware: after the answer, reads the rest of a request body the handler
/// dropped unread, or announces `Connection: close` (see the module docs).
pub async fn finish_request_body(request: Request, next: Next) -> Response {
    // Nothing to leave unread; HTTP/2 (not served today) would frame bodies per stream.
    if request.body().is_end_stream() || request.version() > Version::HTTP_11 {
        return next.run(request).await;
    }
    let expects_continue = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let left = Arc::new(Mutex::new(None));
    let tracked = Arc::clone(&left);
    let request = request.map(|body| Body::new(Tracked { body: Some(body), polled: false, left: tracked }));
    let mut response = next.run(request).await;
    let unread = left.lock().unwrap_or_else(PoisonError::into_inner).take();
    let Some(Unread { mut body, polled }) = unread else {
        // Read to its end, or still held by the handler.
        return response;
    };
    if expects_continue && !polled {
        // Reading it would send `100 Continue` for a body nobody wants; dropped, hyper closes.
        announce_close(&mut response);
        return response;
    }
    let rest = if body.size_hint().lower() > HTTP_DRAIN_MAX_BYTES {
        Discarded::Cut
    } else {
        discard(&mut body, HTTP_DRAIN_MAX_BYTES, HTTP_DRAIN_TIMEOUT_MS).await
    };
    match rest {
        Discarded::End => {}
        // The client broke the body off: the connection is unusable anyway.
        Discarded::Failed => announce_close(&mut response),
        Discarded::Cut => {
            announce_close(&mut response);
            // hyper keeps reading the body for this task after the answer, and closes the
            // connection once it ends or is dropped.
            tokio::spawn(async move {
                discard(&mut body, HTTP_LINGER_MAX_BYTES, HTTP_LINGER_TIMEOUT_MS).await;
            });
        }
    }
    response
}

fn announce_close(response: &mut Response) {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// How reading the rest of a body ended.
enum Discarded {
    /// At its end: the connection can carry the next request.
    End,
    /// With an error from the connection.
    Failed,
    /// Past the byte or time bound, with the rest still unread.
    Cut,
}

/// Reads and discards `body` to its end, giving up past `max_bytes` or after `timeout_ms`.
async fn discard(body: &mut Body, max_bytes: u64, timeout_ms: u64) -> Discarded {
    let read = async {
        let mut seen = 0u64;
        loop {
            match body.frame().await {
                None => return Discarded::End,
                Some(Err(_)) => return Discarded::Failed,
                Some(Ok(frame)) => {
                    let len = frame.data_ref().map_or(0, Bytes::len);
                    seen = seen.saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
                    if seen > max_bytes {
                        return Discarded::Cut;
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_millis(timeout_ms), read).await.unwrap_or(Discarded::Cut)
}

/// A request body that, dropped before its end, leaves itself in `left` for
/// [`finish_request_body`] instead of being discarded (hyper would then close the connection).
struct Tracked {
    /// `None` once the end, or an error, was reached.
    body: Option<Body>,
    /// Whether anyone asked for data: the first ask is what sends `100 Continue`.
    polled: bool,
    left: Arc<Mutex<Option<Unread>>>,
}

/// A request body dropped before its end.
struct Unread {
    body: Body,
    polled: bool,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        this.polled = true;
        let frame = ready!(Pin::new(body).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            this.body = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body.as_ref().map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(body) = self.body.take().filter(|body| !body.is_end_stream()) {
            *self.left.lock().unwrap_or_else(PoisonError::into_inner) = Some(Unread { body, polled: self.polled });
        }
    }
}

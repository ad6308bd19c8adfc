//! Byte counting for the decision log: a stream that counts what passes each way, and a body
//! that runs a closure once it has ended or been dropped.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes written to and read from an upstream connection, shared with whoever logs it.
#[derive(Debug, Default)]
pub struct Meter {
    /// Written (to the upstream).
    pub out: AtomicU64,
    /// Read (from the upstream).
    pub inbound: AtomicU64,
}

impl Meter {
    /// (out, in) so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.out.load(Ordering::Relaxed), self.inbound.load(Ordering::Relaxed))
    }
}

/// A stream whose traffic is counted on a [`Meter`].
pub struct Metered<S> {
    inner: S,
    meter: Arc<Meter>,
}

impl<S> Metered<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, meter: Arc<Meter>) -> Self {
        Self { inner, meter }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.meter.inbound.fetch_add(read as u64, Ordering::Relaxed);
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result {
            self.meter.out.fetch_add(written as u64, Ordering::Relaxed);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A body that calls `on_end` once: when its last frame has been read, or when it is dropped
/// before (the client left).
pub struct OnEnd<B> {
    inner: B,
    on_end: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl<B> OnEnd<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, on_end: impl FnOnce() + Send + Sync + 'static) -> Self {
        Self { inner, on_end: Some(Box::new(on_end)) }
    }

    fn end(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end();
        }
    }
}

impl<B> Drop for OnEnd<B> {
    fn drop(&mut self) {
        self.end();
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for OnEnd<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.end();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::sync::atomic::AtomicBool;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn meters_count_both_ways_and_bodies_report_their_end() {
        let (a, mut b) = tokio::io::duplex(64);
        let meter = Arc::new(Meter::default());
        let mut metered = Metered::new(a, meter.clone());
        metered.write_all(b"hello").await.expect("write");
        b.write_all(b"hi").await.expect("write back");
        let mut got = [0u8; 2];
        metered.read_exact(&mut got).await.expect("read");
        assert_eq!(meter.totals(), (5, 2));

        let ended = Arc::new(AtomicBool::new(false));
        let flag = ended.clone();
        let body = OnEnd::new(Full::new(Bytes::from_static(b"x")), move || flag.store(true, Ordering::SeqCst));
        assert_eq!(body.collect().await.expect("collect").to_bytes(), Bytes::from_static(b"x"));
        assert!(ended.load(Ordering::SeqCst));
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        drop(OnEnd::new(Full::new(Bytes::new()), move || flag.store(true, Ordering::SeqCst)));
        assert!(dropped.load(Ordering::SeqCst), "a body dropped unread still ends");
    }
}

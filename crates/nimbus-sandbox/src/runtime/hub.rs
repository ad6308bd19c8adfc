//! One process's output as the supervisor keeps it: a replay ring of the most recent bytes
//! (tagged by stream), the live attachments and, once known, the exit.
//!
//! Output is pushed by the thread draining the process's pipes and never waits for a reader:
//! each attachment has a bounded queue, and an attachment whose queue would overflow is cut off
//! (its connection shut down) instead.

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use nimbus_core::limits::{ATTACH_LIVENESS_POLL_MS, ATTACH_QUEUE_BYTES, LOG_RECORD_MAX_BYTES, SESSION_REPLAY_BYTES};

use super::protocol::WireFrame;
use crate::backend::OutputStream;

/// How a process ended, as attachments report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// Exit code when it exited.
    pub code: Option<i32>,
    /// Signal number when a signal ended it.
    pub signal: Option<i32>,
    /// Whether its timeout ended it.
    pub timed_out: bool,
}

/// The output of one process.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    ring: VecDeque<(OutputStream, Vec<u8>)>,
    ring_bytes: usize,
    /// Bytes of output the ring no longer holds (a replay cannot carry them).
    lost_bytes: u64,
    subscribers: Vec<Arc<Subscriber>>,
    ending: Option<Ending>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    /// A hub with no output yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Records output and passes it to every attachment (cutting off those that fell behind).
    /// Output after the ending is dropped.
    pub fn output(&self, stream: OutputStream, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut inner = lock(&self.inner);
        if inner.ending.is_some() {
            return;
        }
        let kept = &data[data.len().saturating_sub(SESSION_REPLAY_BYTES)..];
        inner.lost_bytes += (data.len() - kept.len()) as u64;
        match inner.ring.back_mut() {
            Some((last, bytes)) if *last == stream && bytes.len() + kept.len() <= LOG_RECORD_MAX_BYTES => {
                bytes.extend_from_slice(kept)
            }
            _ => inner.ring.push_back((stream, kept.to_vec())),
        }
        inner.ring_bytes += kept.len();
        while inner.ring_bytes > SESSION_REPLAY_BYTES {
            let excess = inner.ring_bytes - SESSION_REPLAY_BYTES;
            // Retained chunks are merged up to a log record's size, so trimming copies little.
            let Some((_, front)) = inner.ring.front_mut() else { break };
            let dropped = front.len().min(excess);
            if front.len() <= excess {
                inner.ring.pop_front();
            } else {
                front.drain(..excess);
            }
            inner.ring_bytes -= dropped;
            inner.lost_bytes += dropped as u64;
        }
        inner.subscribers.retain(|sub| sub.push(WireFrame::output(stream, data, false)));
    }

    /// Records the ending and ends every attachment with it. Only the first ending counts.
    pub fn finish(&self, ending: Ending) {
        let mut inner = lock(&self.inner);
        if inner.ending.is_some() {
            return;
        }
        inner.ending = Some(ending);
        for sub in inner.subscribers.drain(..) {
            sub.push_last(WireFrame::exit(ending));
        }
    }

    /// The ending, once known.
    pub fn ending(&self) -> Option<Ending> {
        lock(&self.inner).ending
    }

    /// A new attachment writing to `stream`: the retained output first, then live output.
    pub fn subscribe(&self, stream: UnixStream) -> Arc<Subscriber> {
        let mut inner = lock(&self.inner);
        let sub = Arc::new(Subscriber { queue: Mutex::new(Queue::default()), ready: Condvar::new(), stream });
        for (i, (kind, bytes)) in inner.ring.iter().enumerate() {
            let lost = if i == 0 { inner.lost_bytes } else { 0 };
            sub.push(WireFrame::replayed(*kind, bytes, lost));
        }
        match inner.ending {
            Some(ending) => sub.push_last(WireFrame::exit(ending)),
            None => inner.subscribers.push(Arc::clone(&sub)),
        }
        sub
    }
}

/// One attachment: a bounded queue of frames, written to its connection by its own thread.
pub struct Subscriber {
    queue: Mutex<Queue>,
    ready: Condvar,
    stream: UnixStream,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<WireFrame>,
    bytes: usize,
    /// The exit frame is queued: nothing follows.
    last: bool,
    /// Cut off (fell behind) or detached: the writer stops.
    gone: bool,
}

impl Subscriber {
    /// Queues a frame; `false` (and the attachment is cut off) when that would exceed the bound.
    fn push(&self, frame: WireFrame) -> bool {
        let mut queue = lock(&self.queue);
        if queue.gone {
            return false;
        }
        let size = frame.size();
        if queue.bytes + size > ATTACH_QUEUE_BYTES {
            queue.gone = true;
            queue.frames.clear();
            queue.bytes = 0;
            // Unblocks a writer stuck in `write` to a client that does not read.
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
            self.ready.notify_all();
            return false;
        }
        queue.bytes += size;
        queue.frames.push_back(frame);
        self.ready.notify_all();
        true
    }

    fn push_last(&self, frame: WireFrame) {
        if self.push(frame) {
            lock(&self.queue).last = true;
        }
    }

    /// Writes queued frames to the connection until the exit frame was written, the attachment
    /// was cut off, or the client went away. Runs on the connection's own thread.
    pub fn run(&self) {
        let mut out = match self.stream.try_clone() {
            Ok(out) => out,
            Err(_) => return,
        };
        loop {
            let (frame, done) = {
                let mut queue = lock(&self.queue);
                loop {
                    if queue.gone {
                        return;
                    }
                    if let Some(frame) = queue.frames.pop_front() {
                        queue.bytes -= frame.size();
                        let done = queue.last && queue.frames.is_empty();
                        break (frame, done);
                    }
                    let (q, timeout) = self
                        .ready
                        .wait_timeout(queue, Duration::from_millis(ATTACH_LIVENESS_POLL_MS))
                        .unwrap_or_else(|p| p.into_inner());
                    queue = q;
                    if timeout.timed_out() && queue.frames.is_empty() && !queue.gone && client_gone(&self.stream) {
                        queue.gone = true;
                        return;
                    }
                }
            };
            let mut line = serde_json::to_vec(&frame).unwrap_or_default();
            line.push(b'\n');
            if out.write_all(&line).is_err() {
                lock(&self.queue).gone = true;
                return;
            }
            if done {
                let _ = self.stream.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

/// Whether the attachment's client closed its end (it never sends anything after its request).
fn client_gone(stream: &UnixStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) => {
            fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};

    use super::*;

    fn replay_of(hub: &Hub) -> (Vec<u8>, u64, Option<WireFrame>) {
        let (ours, theirs) = UnixStream::pair().expect("pair");
        let sub = hub.subscribe(ours);
        hub.finish(Ending { code: Some(0), signal: None, timed_out: false });
        std::thread::spawn(move || sub.run());
        let mut bytes = Vec::new();
        let (mut lost, mut last) = (0, None);
        for line in BufReader::new(theirs).lines() {
            match serde_json::from_str::<WireFrame>(&line.expect("line")).expect("frame") {
                WireFrame::Output { data, replay, lost_bytes, .. } => {
                    assert!(replay);
                    assert!(lost_bytes == 0 || bytes.is_empty(), "only the first replayed frame counts the loss");
                    lost += lost_bytes;
                    bytes
                        .extend(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).expect("b64"));
                }
                exit => last = Some(exit),
            }
        }
        (bytes, lost, last)
    }

    #[test]
    fn ring_keeps_the_last_bytes_and_slow_attachments_are_cut() {
        let hub = Hub::new();
        let (ours, _unread) = UnixStream::pair().expect("pair");
        let stalled = hub.subscribe(ours);
        let mut all = Vec::new();
        for i in 0..(ATTACH_QUEUE_BYTES / 1000 + 10) {
            let chunk = vec![b'a' + (i % 26) as u8; 1000];
            hub.output(OutputStream::Stdout, &chunk);
            all.extend_from_slice(&chunk);
        }
        assert!(lock(&stalled.queue).gone, "an attachment that never drains is cut off");
        assert!(lock(&hub.inner).subscribers.is_empty());
        let (replayed, lost, exit) = replay_of(&hub);
        assert_eq!(replayed, all[all.len() - SESSION_REPLAY_BYTES..]);
        assert_eq!(lost, (all.len() - SESSION_REPLAY_BYTES) as u64, "the replay says how much it lost");
        assert!(matches!(exit, Some(WireFrame::Exit { code: Some(0), .. })));
    }

    #[test]
    fn a_replay_counts_what_it_lost() {
        let hub = Hub::new();
        hub.output(OutputStream::Stdout, b"kept whole");
        assert_eq!(replay_of(&hub).1, 0, "nothing lost while the ring holds everything");
        let hub = Hub::new();
        let big = vec![b'x'; SESSION_REPLAY_BYTES + 100];
        hub.output(OutputStream::Stderr, &big);
        hub.output(OutputStream::Stdout, b"tail");
        let (replayed, lost, _) = replay_of(&hub);
        assert_eq!(replayed.len(), SESSION_REPLAY_BYTES);
        assert_eq!(lost, 104, "one chunk larger than the ring, then trimming for the next");
    }
}

//! Live attachments: one per (session, channel) or (session, process), each a bounded queue
//! between a thread reading the backend's [`Attachment`] and the client's stream.
//!
//! The reading thread never waits for the client: when more than
//! [`SESSION_PENDING_BYTES`] of live output is queued, the attachment ends with `backpressure`
//! (the process keeps running; its output still reaches the logs and the replay buffer). A new
//! attachment to the same slot ends the previous one with `replaced`; a session that ends ends
//! all of its attachments with the matching reason.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nimbus_core::limits::SESSION_PENDING_BYTES;
use nimbus_sandbox::backend::{Attachment, Frame};

use super::target::Channel;

/// Why an attachment ended: the `reason` of its last (`closed`) frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The process exited (after its `exit` frame) or its output ended.
    SourceClosed,
    /// The client did not read and too much output was pending.
    Backpressure,
    /// A newer attachment took over.
    Replaced,
    /// The session was closed.
    SessionClosed,
    /// The session expired.
    SessionExpired,
    /// The target stopped.
    TargetStopped,
}

impl EndReason {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SourceClosed => "source_closed",
            Self::Backpressure => "backpressure",
            Self::Replaced => "replaced",
            Self::SessionClosed => "session_closed",
            Self::SessionExpired => "session_expired",
            Self::TargetStopped => "target_stopped",
        }
    }
}

/// What an attachment is attached to within its session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttachKey {
    /// A channel (`stdio`).
    Channel(Channel),
    /// An exec process, by id.
    Process(String),
}

/// One item of an attachment's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A frame from the process.
    Frame(Frame),
    /// The last item.
    Closed(EndReason),
}

/// How long an attachment whose target stopped waits for the process's own ending (its `exit`
/// frame) before it ends with `target_stopped`.
const TARGET_STOPPED_GRACE: Duration = Duration::from_secs(2);

/// Stack of an attachment's reading thread: it only moves frames.
const READER_STACK_BYTES: usize = 128 * 1024;

#[derive(Default)]
struct Queue {
    frames: VecDeque<Frame>,
    /// Live (not replayed) output bytes queued.
    pending: usize,
    end: Option<EndReason>,
    /// An ending that applies unless the source ends by itself first.
    soft_end: Option<(EndReason, tokio::time::Instant)>,
    /// The reason the source's own ending reports from now on (a session ending: its processes
    /// are being killed, and their exit is part of that ending).
    ending_as: Option<EndReason>,
    consumer_gone: bool,
}

/// The queue shared by the reading thread and the client's stream.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// One consumer: `notify_one` keeps a permit, so no wake-up is lost.
    wake: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the attachment (the first ending wins).
    fn end(&self, reason: EndReason) {
        let mut queue = self.lock();
        if queue.end.is_none() {
            queue.end = Some(reason);
        }
        drop(queue);
        self.wake.notify_one();
    }

    /// Ends the attachment after `grace` unless its source ends first.
    fn end_soon(&self, reason: EndReason, grace: Duration) {
        let mut queue = self.lock();
        if queue.end.is_none() && queue.soft_end.is_none() {
            queue.soft_end = Some((reason, tokio::time::Instant::now() + grace));
        }
        drop(queue);
        self.wake.notify_one();
    }

    /// Queues a frame from the reading thread; `false` when reading should stop.
    fn push(&self, frame: Frame) -> bool {
        let mut queue = self.lock();
        if queue.consumer_gone || queue.end.is_some() {
            return false;
        }
        let mut more = true;
        match &frame {
            Frame::Output { data, replay: false, .. } => {
                if queue.pending + data.len() > SESSION_PENDING_BYTES {
                    queue.end = Some(EndReason::Backpressure);
                    drop(queue);
                    self.wake.notify_one();
                    return false;
                }
                queue.pending += data.len();
            }
            Frame::Output { replay: true, .. } => {}
            Frame::Exit { .. } => more = false,
        }
        queue.frames.push_back(frame);
        if !more {
            queue.end = Some(queue.ending_as.unwrap_or(EndReason::SourceClosed));
        }
        drop(queue);
        self.wake.notify_one();
        more
    }

    /// The source ended without an exit frame: the pending soft ending applies, if any.
    fn source_ended(&self) {
        let queue = self.lock();
        let reason = queue.ending_as.or(queue.soft_end.map(|(reason, _)| reason)).unwrap_or(EndReason::SourceClosed);
        drop(queue);
        self.end(reason);
    }
}

/// A slot's current holder.
struct Slot {
    token: u64,
    shared: Arc<Shared>,
}

/// The live attachments of every session.
#[derive(Default)]
pub(super) struct Live {
    slots: Mutex<HashMap<(String, AttachKey), Slot>>,
    next_token: AtomicU64,
}

impl Live {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<(String, AttachKey), Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a client holds the slot with an attachment that has not ended. An ended one
    /// (backpressure, say) keeps its slot until its client reads the `closed` frame, but it is
    /// no longer live: input has nowhere to go.
    pub(super) fn has(&self, session: &str, key: &AttachKey) -> bool {
        self.slots().get(&(session.to_owned(), key.clone())).is_some_and(|slot| slot.shared.lock().end.is_none())
    }

    /// Starts an attachment: a thread moves `source`'s frames into a fresh queue, which takes
    /// the slot (the previous holder ends with `replaced`).
    pub(super) fn start(self: &Arc<Self>, session: &str, key: AttachKey, source: Attachment) -> Attached {
        let shared = Arc::new(Shared::default());
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let previous = self.slots().insert((session.to_owned(), key.clone()), Slot { token, shared: shared.clone() });
        if let Some(previous) = previous {
            previous.shared.end(EndReason::Replaced);
        }
        let reader = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("attach-{session}"))
            .stack_size(READER_STACK_BYTES)
            .spawn(move || read_frames(source, &reader));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start an attachment reader");
            shared.end(EndReason::SourceClosed);
        }
        Attached { live: self.clone(), session: session.to_owned(), key, token, shared, closed_sent: false }
    }

    /// Announces a session's ending before its processes are killed: an attachment whose
    /// process dies of it then ends with `reason`, not `source_closed`.
    pub(super) fn ending(&self, session: &str, reason: EndReason) {
        for ((s, _), slot) in self.slots().iter() {
            if s == session {
                slot.shared.lock().ending_as = Some(reason);
            }
        }
    }

    /// Ends every attachment of a session.
    pub(super) fn end_session(&self, session: &str, reason: EndReason) {
        let ended: Vec<Slot> = {
            let mut slots = self.slots();
            let keys: Vec<(String, AttachKey)> = slots.keys().filter(|(s, _)| s == session).cloned().collect();
            keys.into_iter().filter_map(|k| slots.remove(&k)).collect()
        };
        for slot in ended {
            if reason == EndReason::TargetStopped {
                // The process's own ending (`exit`, then `source_closed`) is on its way.
                slot.shared.end_soon(reason, TARGET_STOPPED_GRACE);
            } else {
                slot.shared.end(reason);
            }
        }
    }

    fn release(&self, session: &str, key: &AttachKey, token: u64) {
        let mut slots = self.slots();
        let slot_key = (session.to_owned(), key.clone());
        if slots.get(&slot_key).is_some_and(|slot| slot.token == token) {
            slots.remove(&slot_key);
        }
    }
}

fn read_frames(mut source: Attachment, shared: &Shared) {
    loop {
        match source.next_frame() {
            Some(frame) => {
                if !shared.push(frame) {
                    return;
                }
            }
            None => return shared.source_ended(),
        }
    }
}

/// A client's attachment: frames in order, then one [`StreamItem::Closed`]. Dropping it
/// detaches (the session and the process are unaffected).
pub struct Attached {
    live: Arc<Live>,
    session: String,
    key: AttachKey,
    token: u64,
    shared: Arc<Shared>,
    closed_sent: bool,
}

impl Attached {
    /// The next item; `None` after the `Closed` item. Cancel-safe.
    pub async fn next(&mut self) -> Option<StreamItem> {
        loop {
            let deadline = {
                let mut queue = self.shared.lock();
                if let Some(frame) = queue.frames.pop_front() {
                    if let Frame::Output { data, replay: false, .. } = &frame {
                        queue.pending = queue.pending.saturating_sub(data.len());
                    }
                    return Some(StreamItem::Frame(frame));
                }
                if let Some(reason) = queue.end {
                    if self.closed_sent {
                        return None;
                    }
                    self.closed_sent = true;
                    drop(queue);
                    // Ended: the slot is free for the next client.
                    self.live.release(&self.session, &self.key, self.token);
                    return Some(StreamItem::Closed(reason));
                }
                match queue.soft_end {
                    Some((reason, at)) if at <= tokio::time::Instant::now() => {
                        queue.end = Some(reason);
                        continue;
                    }
                    Some((_, at)) => Some(at),
                    None => None,
                }
            };
            match deadline {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at, self.shared.wake.notified()).await;
                }
                None => self.shared.wake.notified().await,
            }
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.shared.lock().consumer_gone = true;
        self.live.release(&self.session, &self.key, self.token);
    }
}

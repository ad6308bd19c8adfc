//! [`Sessions`]: expiring leases on a running sandbox or service that carry channels
//! (sessions.md).
//!
//! Every session has an [`Entry`] in memory and a row in the system database (kind `session`),
//! rewritten on every change. One verb per file: `open.rs`, `get.rs` (get and list),
//! `close.rs` (close, and the closes driven by services and tenants), `renew.rs`, `expire.rs`
//! (lazy expiry on reads, the sweeper, recovery at start-up), `stdio.rs` (attach, input,
//! resize), `exec.rs` (processes), `files.rs` (the files channel's preconditions).
//! `attach.rs` holds the live attachments and their flow control.
//!
//! A session never changes its TTL on use: only renew moves `expiresAt`.

mod attach;
mod browser;
mod close;
mod exec;
mod expire;
mod files;
mod get;
mod open;
pub mod record;
mod renew;
mod stdio;
pub mod target;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use nimbus_core::NimbusError;
use nimbus_core::time::now_ms;
use nimbus_sandbox::backend::Backend;
use nimbus_store::connection::open_system;
use nimbus_store::records;
use rusqlite::Connection;
use serde_json::json;

use crate::sandbox::{LifecycleState, SandboxRecord, Sandboxes};

pub use attach::{AttachKey, Attached, EndReason, StreamItem};
pub use browser::{BrowserOptions, CdpUpstream, SocketSlot};
pub use exec::{ExecRequest, ExecResult, parse_signal, pty_size, signal_name};
pub use files::FilesAccess;
pub use get::SessionPage;
pub use open::OpenSession;
pub use record::{BrowserBinding, Ending, SessionRecord, SessionState, TargetRef, TargetSnapshot};
pub use stdio::Opened;
pub use target::{Channel, ServiceBackend, SessionTarget};

/// The record kind in the system database.
const KIND: &str = "session";

/// One session in memory.
struct Entry {
    record: Mutex<SessionRecord>,
    /// Serializes the running-process count with the spawn it admits.
    exec: tokio::sync::Mutex<()>,
}

impl Entry {
    fn new(record: SessionRecord) -> Arc<Self> {
        Arc::new(Self { record: Mutex::new(record), exec: tokio::sync::Mutex::new(()) })
    }

    fn snapshot(&self) -> SessionRecord {
        self.record.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The session registry of one server.
pub struct Sessions {
    db: Mutex<Connection>,
    sandboxes: Arc<Sandboxes>,
    /// Keyed by session id (ids are unique across tenants).
    entries: RwLock<BTreeMap<String, Arc<Entry>>>,
    /// Serializes the per-tenant open-session count with the insertion it admits.
    admission: tokio::sync::Mutex<()>,
    live: Arc<attach::Live>,
    /// Browser sessions' contexts, connections and sockets.
    browsers: browser::Browsers,
    /// Itself, for teardowns started from synchronous hooks.
    me: Weak<Sessions>,
}

/// A session bound to its running target, for channel operations.
pub struct Bound {
    /// The session (open).
    pub session: SessionRecord,
    /// The target sandbox (`ready`).
    pub sandbox: SandboxRecord,
    /// The backend running it.
    pub backend: Arc<dyn Backend>,
}

impl Sessions {
    /// Opens the registry on the data directory's system database and reloads the stored
    /// sessions; an open session whose target is no longer ready closes with `target_stopped`.
    /// Blocking: call it after the sandbox registry has re-adopted its sandboxes, before serving.
    pub fn open(data_dir: &Path, sandboxes: Arc<Sandboxes>) -> Result<Arc<Self>, NimbusError> {
        let db = open_system(&data_dir.join("system.sqlite3"))?;
        let rows = records::list(&db, KIND)?;
        let sessions = Arc::new_cyclic(|me| Self {
            db: Mutex::new(db),
            sandboxes,
            entries: RwLock::new(BTreeMap::new()),
            admission: tokio::sync::Mutex::new(()),
            live: Arc::new(attach::Live::default()),
            browsers: browser::Browsers::default(),
            me: me.clone(),
        });
        sessions.recover(rows);
        Ok(sessions)
    }

    /// The entry of a session; with `tenant`, it must own it (else 404 like an unknown id).
    fn entry(&self, tenant: Option<&str>, id: &str) -> Result<Arc<Entry>, NimbusError> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        match entries.get(id) {
            Some(entry) if tenant.is_none_or(|t| entry.snapshot().tenant_id == t) => Ok(entry.clone()),
            _ => Err(NimbusError::not_found("session", id)),
        }
    }

    fn all_entries(&self) -> Vec<Arc<Entry>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// Writes a record to the system database.
    fn persist(&self, record: &SessionRecord) -> Result<(), NimbusError> {
        crate::record_rows::put(&self.db, KIND, (&record.tenant_id, &record.id), record)
    }

    /// [`Sessions::persist`] after a change no caller waits on: a failure is logged.
    fn persist_logged(&self, record: &SessionRecord) {
        crate::record_rows::put_logged(&self.db, KIND, (&record.tenant_id, &record.id), record);
    }

    fn forget(&self, tenant: &str, id: &str) {
        self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(id);
        crate::record_rows::delete_logged(&self.db, KIND, (tenant, id));
    }

    /// Changes a session that is still open (renew), bumping its generation; persisted before
    /// returning. `None` when it is no longer open.
    fn update_open(&self, entry: &Entry, change: impl FnOnce(&mut SessionRecord)) -> Option<SessionRecord> {
        let mut record = entry.record.lock().unwrap_or_else(PoisonError::into_inner);
        if !record.is_open() {
            return None;
        }
        change(&mut record);
        record.generation += 1;
        record.updated_at_ms = now_ms();
        self.persist_logged(&record);
        Some(record.clone())
    }

    /// Moves an open session to its terminal state. `None` when it was no longer open (someone
    /// else ended it first: only one ending is ever recorded and torn down).
    fn transition(&self, entry: &Entry, ending: Ending) -> Option<SessionRecord> {
        let mut record = entry.record.lock().unwrap_or_else(PoisonError::into_inner);
        if !record.is_open() {
            return None;
        }
        let now = now_ms();
        record.state = ending.state();
        record.ending = Some(ending);
        record.closed_at_ms = Some(now);
        record.transition_at_ms = now;
        record.generation += 1;
        record.updated_at_ms = now;
        self.persist_logged(&record);
        Some(record.clone())
    }

    /// Ends a session: records the ending, ends its attachments with a final `closed` frame and
    /// kills the processes it started. Returns the record as it now is.
    async fn end(&self, entry: &Entry, ending: Ending) -> SessionRecord {
        match self.transition(entry, ending) {
            Some(record) => {
                self.teardown(&record).await;
                record
            }
            None => entry.snapshot(),
        }
    }

    /// Ends the attachments of an ended session and SIGKILLs its processes.
    async fn teardown(&self, record: &SessionRecord) {
        let reason = match record.ending {
            Some(Ending::Expired) => EndReason::SessionExpired,
            Some(Ending::TargetStopped) => EndReason::TargetStopped,
            _ => EndReason::SessionClosed,
        };
        if reason != EndReason::TargetStopped {
            // A stopped target ends its processes itself; their `exit` then reads as such.
            self.live.ending(&record.id, reason);
        }
        self.kill_owned(record).await;
        self.teardown_browser(record).await;
        // After the kill: a client that saw `closed` finds the session's processes gone.
        self.live.end_session(&record.id, reason);
    }

    async fn kill_owned(&self, record: &SessionRecord) {
        let Some(sandbox_id) = record.snapshot.sandbox_id() else { return };
        let Ok((_, backend)) = self.sandboxes.runtime(&record.tenant_id, sandbox_id) else { return };
        let (sandbox_id, owner) = (sandbox_id.to_owned(), record.id.clone());
        let killed = tokio::task::spawn_blocking(move || backend.kill_owned(&sandbox_id, &owner)).await;
        match killed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, session = %record.id, "cannot kill a session's processes"),
            Err(e) => tracing::error!(error = %e, "a blocking session task failed"),
        }
    }

    /// The session as it is now: expiry and the target's state are applied first (and the
    /// session torn down if either ended it).
    async fn current(&self, entry: &Entry) -> SessionRecord {
        let record = entry.snapshot();
        match self.due(&record) {
            Some(ending) => self.end(entry, ending).await,
            None => record,
        }
    }

    /// Resolves a session for a channel operation: the channel was opened (400), the session is
    /// open (409 `session_not_open`), and its target sandbox is running (409, after which the
    /// session is closed with `target_stopped`).
    async fn bind(&self, tenant: Option<&str>, id: &str, channel: Channel) -> Result<(Arc<Entry>, Bound), NimbusError> {
        let entry = self.entry(tenant, id)?;
        let session = self.current(&entry).await;
        if !session.channels.contains(&channel) {
            return Err(NimbusError::invalid_input(
                "channel",
                format!("the session was not opened with the `{}` channel", channel.as_str()),
            ));
        }
        require_open(&session)?;
        let sandbox_id = session.snapshot.sandbox_id().ok_or_else(|| {
            NimbusError::invalid_input("channel", format!("the target carries no `{}` channel", channel.as_str()))
        })?;
        let (sandbox, backend) = match self.sandboxes.runtime(&session.tenant_id, sandbox_id) {
            Ok((sandbox, backend)) if sandbox.state == LifecycleState::Ready => (sandbox, backend),
            _ => {
                let session = self.end(&entry, Ending::TargetStopped).await;
                return Err(not_open(&session));
            }
        };
        Ok((entry, Bound { session, sandbox, backend }))
    }
}

/// 409 `session_not_open` unless the session is open.
fn require_open(record: &SessionRecord) -> Result<(), NimbusError> {
    if record.is_open() { Ok(()) } else { Err(not_open(record)) }
}

/// Its remediation says why the session ended (`status.closeReason`) and how to open another.
fn not_open(record: &SessionRecord) -> NimbusError {
    let close_reason = record.ending.as_ref().map(Ending::close_reason);
    NimbusError::conflict(
        "session_not_open",
        format!("session `{}` is {}", record.id, record.state.as_str()),
        json!({ "lifecycleState": record.state.as_str() }),
    )
    .remedy(nimbus_core::remediation::session_not_open(close_reason))
}

//! [`Tenant`]: one open tenant database with its writer thread and read pool. The data
//! operations live in the sibling files, one concern each.

mod documents;
mod functions;
mod journal;
mod lend;
mod queries;
mod read_pool;
mod schedule;
mod schemas;
mod snapshot;

pub use journal::JournalPage;
pub use lend::LentTransaction;
pub use schedule::{
    Cron, CronRun, Firing, Job, JobState, RunOutcome, Target, cron_execution_id, is_transient, job_execution_id,
    job_not_found,
};
pub use snapshot::Snapshot;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use nimbus_core::NimbusError;
use nimbus_core::ids::TenantId;
use nimbus_core::limits::{REALTIME_COMMIT_BUFFER, WRITE_QUEUE_PER_TENANT};
use nimbus_store::connection::{Access, open_tenant};
use rusqlite::Connection;
use tokio::sync::{RwLock, broadcast, mpsc};

use crate::document::Document;
use crate::transaction::Transaction;
use crate::writer::{self, Commit, CommitFeed, Then, TypedWork, WorkQueue};
use read_pool::ReadPool;

/// One page of documents: a table listing or a paginated query.
#[derive(Debug, Clone)]
pub struct DocumentPage {
    /// The page's documents, in the listing's or query's order.
    pub documents: Vec<Document>,
    /// Opaque cursor for the next page, present exactly when `has_more`.
    pub next_cursor: Option<String>,
    /// Whether more documents follow.
    pub has_more: bool,
}

/// An open tenant. Operations hold a read guard of `gate` while they run, so closing the
/// tenant (delete or shutdown) waits for in-flight work and refuses new work.
pub struct Tenant {
    id: TenantId,
    /// `true` once the tenant is closed; held shared by every operation in flight.
    gate: RwLock<bool>,
    /// The writer's queue; taken (dropped) on close so the writer drains and exits.
    queue: Mutex<Option<WorkQueue>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: ReadPool,
    /// The writer's commit feed, for [`Tenant::commits`]; taken on close so that, once the
    /// writer has exited too, observers see the feed end.
    feed: Mutex<Option<CommitFeed>>,
}

impl Tenant {
    /// Opens (creating if needed) a tenant database and starts its writer.
    pub(crate) fn open(id: TenantId, path: &Path) -> Result<Self, NimbusError> {
        let conn = open_tenant(path, Access::Write)?;
        let (queue, receiver) = mpsc::channel(WRITE_QUEUE_PER_TENANT);
        let (feed, _) = broadcast::channel(REALTIME_COMMIT_BUFFER);
        let handle = writer::spawn(id.as_str(), conn, receiver, feed.clone()).map_err(|e| {
            tracing::error!(error = %e, "cannot start a writer thread");
            NimbusError::internal()
        })?;
        Ok(Self {
            id,
            gate: RwLock::new(false),
            queue: Mutex::new(Some(queue)),
            writer: Mutex::new(Some(handle)),
            readers: ReadPool::new(path.to_owned()),
            feed: Mutex::new(Some(feed)),
        })
    }

    /// Observes the tenant's durable commits that wrote documents, in commit order, each
    /// published right after its batch's fsync. Never blocks the writer: a receiver that falls
    /// more than [`REALTIME_COMMIT_BUFFER`] commits behind gets `Lagged` and must assume
    /// anything changed. The feed ends (`Closed`) once the tenant is closed; `None` if it
    /// already is.
    pub fn commits(&self) -> Option<broadcast::Receiver<Arc<Commit>>> {
        self.feed.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(broadcast::Sender::subscribe)
    }

    /// The tenant's id.
    pub fn id(&self) -> &TenantId {
        &self.id
    }

    /// Runs `body` as one transaction through the tenant's writer and returns once it is
    /// durable. A full write queue is 429 `rate.resource_exhausted`.
    pub async fn transact<T, F>(&self, body: F) -> Result<(T, Commit), NimbusError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Transaction<'_>) -> Result<T, NimbusError> + Send + 'static,
    {
        let closed = self.gate.read().await;
        if *closed {
            return Err(NimbusError::tenant_not_found(self.id.as_str()));
        }
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let queue = queue.ok_or_else(|| NimbusError::tenant_not_found(self.id.as_str()))?;
        writer::submit(&queue, body).await
    }

    /// Queues `body` as one transaction on the tenant's writer and returns at once; `then`
    /// takes the outcome on the writer thread once the transaction is durable (or failed), or
    /// at once when it cannot be queued. For callers on threads that must not wait for an
    /// fsync; `then` must not block.
    pub fn transact_then<T, F>(&self, body: F, then: Then<T>)
    where
        T: Send + 'static,
        F: FnOnce(&mut Transaction<'_>) -> Result<T, NimbusError> + Send + 'static,
    {
        // A closing tenant holds the gate for writing: nothing new may start.
        let open = self.gate.try_read().is_ok_and(|closed| !*closed);
        let queue = if open { self.queue.lock().unwrap_or_else(PoisonError::into_inner).clone() } else { None };
        match queue {
            Some(queue) => writer::enqueue(&queue, Box::new(TypedWork::then(body, then))),
            None => then(Err(NimbusError::tenant_not_found(self.id.as_str()))),
        }
    }

    /// Runs `read` on a pooled read-only connection (a consistent snapshot per statement, or
    /// per transaction if `read` opens one).
    pub(crate) async fn read<T, F>(&self, read: F) -> Result<T, NimbusError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, NimbusError> + Send + 'static,
    {
        let closed = self.gate.read().await;
        if *closed {
            return Err(NimbusError::tenant_not_found(self.id.as_str()));
        }
        self.readers.run(read).await
    }

    /// Closes the tenant: waits for in-flight operations, refuses new ones, lets the writer
    /// drain its queue and joins it.
    pub(crate) async fn close(&self) {
        let mut closed = self.gate.write().await;
        *closed = true;
        drop(self.queue.lock().unwrap_or_else(PoisonError::into_inner).take());
        drop(self.feed.lock().unwrap_or_else(PoisonError::into_inner).take());
        let handle = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            let joined = tokio::task::spawn_blocking(move || handle.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!(tenant = %self.id, "writer thread ended abnormally");
            }
        }
        self.readers.clear();
    }
}

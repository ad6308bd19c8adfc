//! The per-tenant single writer with group commit.
//!
//! One OS thread owns the tenant's only write connection. It takes the queued transactions,
//! runs each inside a savepoint of one SQLite transaction (a failing one rolls back alone), then
//! commits the batch with a single fsync and only then answers each caller. A write is therefore
//! acknowledged only once durable, and a write that reached the writer completes whether or not
//! its client is still waiting; one whose client left before it ran is skipped (cancelled
//! before its commit point).

use std::thread::JoinHandle;

use nimbus_core::ids::TableName;
use nimbus_core::limits::GROUP_COMMIT_MAX_BATCH;
use nimbus_core::time::now_ms;
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_store::{StoreError, journal as journal_rows};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::journal::build_record;
use crate::transaction::{Transaction, WriteRecord};

/// What a committed transaction left behind.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Journal sequence of the transaction, `None` when it wrote no document.
    pub sequence: Option<u64>,
    /// Commit timestamp, epoch ms.
    pub timestamp: i64,
    /// The touched set: every document write, with before and after images.
    pub writes: Vec<WriteRecord>,
    /// Tables whose access policy changed (live queries on them must be dropped).
    pub policy_changes: Vec<TableName>,
    /// When the batch holding it became durable (observers measure delivery latency from it).
    pub durable_at: std::time::Instant,
}

/// A queued transaction, with its typed result erased so one queue carries every kind.
pub(crate) trait Work: Send {
    /// Whether the caller stopped waiting before the work ran.
    fn abandoned(&self) -> bool;
    /// Runs the transaction body.
    fn run(&mut self, tx: &mut Transaction<'_>) -> Result<(), NimbusError>;
    /// Delivers the outcome once the batch is durable (or failed).
    fn complete(self: Box<Self>, outcome: Result<Commit, NimbusError>);
}

/// Where a transaction's durable outcome is delivered.
type Reply<T> = oneshot::Receiver<Result<(T, Commit), NimbusError>>;

/// A callback that takes a transaction's durable outcome on the writer thread.
pub type Then<T> = Box<dyn FnOnce(Result<(T, Commit), NimbusError>) + Send>;

/// Who takes a transaction's outcome.
enum Taker<T> {
    /// A caller awaiting it; the work is skipped if the caller left before it ran.
    Waiting(oneshot::Sender<Result<(T, Commit), NimbusError>>),
    /// A callback (it must not block: it runs on the writer thread).
    Then(Then<T>),
}

/// The typed form of [`Work`].
pub(crate) struct TypedWork<T, F> {
    body: Option<F>,
    output: Option<T>,
    taker: Taker<T>,
}

impl<T, F> TypedWork<T, F> {
    pub(crate) fn new(body: F) -> (Self, Reply<T>) {
        let (reply, receiver) = oneshot::channel();
        (Self { body: Some(body), output: None, taker: Taker::Waiting(reply) }, receiver)
    }

    /// Work whose outcome goes to `then`.
    pub(crate) fn then(body: F, then: Then<T>) -> Self {
        Self { body: Some(body), output: None, taker: Taker::Then(then) }
    }
}

impl<T, F> Work for TypedWork<T, F>
where
    T: Send,
    F: FnOnce(&mut Transaction<'_>) -> Result<T, NimbusError> + Send,
{
    fn abandoned(&self) -> bool {
        matches!(&self.taker, Taker::Waiting(reply) if reply.is_closed())
    }

    fn run(&mut self, tx: &mut Transaction<'_>) -> Result<(), NimbusError> {
        let body = self.body.take().ok_or_else(NimbusError::internal)?;
        self.output = Some(body(tx)?);
        Ok(())
    }

    fn complete(self: Box<Self>, outcome: Result<Commit, NimbusError>) {
        let this = *self;
        let output = this.output;
        let result = outcome.and_then(|commit| output.map(|out| (out, commit)).ok_or_else(NimbusError::internal));
        match this.taker {
            // The caller may have gone away; the write is durable either way.
            Taker::Waiting(reply) => {
                let _ = reply.send(result);
            }
            Taker::Then(then) => then(result),
        }
    }
}

/// Queue of transactions for one tenant's writer.
pub(crate) type WorkQueue = mpsc::Sender<Box<dyn Work>>;

/// Where the writer publishes each durable commit that wrote documents or changed an access
/// policy, for realtime observers.
/// A broadcast send never waits: an observer that falls behind sees `Lagged`, not a stalled
/// writer.
pub(crate) type CommitFeed = broadcast::Sender<Arc<Commit>>;

/// Starts the writer thread for a tenant database. It runs until every sender is dropped and
/// the queue is drained.
pub(crate) fn spawn(
    tenant: &str,
    conn: Connection,
    queue: mpsc::Receiver<Box<dyn Work>>,
    feed: CommitFeed,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(format!("writer-{tenant}")).spawn(move || run(conn, queue, feed))
}

fn run(mut conn: Connection, mut queue: mpsc::Receiver<Box<dyn Work>>, feed: CommitFeed) {
    let mut head = match journal_rows::latest_sequence(&conn) {
        Ok(head) => head,
        Err(e) => {
            let error = NimbusError::from(e);
            tracing::error!("writer cannot read the journal head; refusing writes");
            while let Some(work) = queue.blocking_recv() {
                work.complete(Err(error.clone()));
            }
            return;
        }
    };
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_MAX_BATCH {
            match queue.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &mut head, batch, Some(&feed));
    }
}

/// Runs a batch and commits it with one fsync. `head` is the journal's last sequence.
/// Once durable, each commit that wrote documents or changed an access policy is published on
/// `feed` (before its caller is
/// answered, so an observer never learns of a write later than its writer does).
///
/// A batch fails as a whole when SQLite rolls its transaction back (a full disk, an I/O error):
/// every transaction in it, the ones already run included, gets the storage error, nothing of
/// it is acknowledged, and `head` stays where it was.
fn commit_batch(conn: &mut Connection, head: &mut u64, batch: Vec<Box<dyn Work>>, feed: Option<&CommitFeed>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let error = NimbusError::from(StoreError::new("starting a write transaction", e));
            for work in batch {
                work.complete(Err(error.clone()));
            }
            return;
        }
    };
    let now = now_ms();
    let mut next = *head;
    let mut applied: Vec<(Box<dyn Work>, Commit)> = Vec::with_capacity(batch.len());
    let mut tx = tx;
    let mut works = batch.into_iter();
    while let Some(mut work) = works.next() {
        if work.abandoned() {
            work.complete(Err(NimbusError::new(ErrorCode::OpCancelled, "request cancelled before commit", None)));
            continue;
        }
        match run_one(&mut tx, work.as_mut(), now, next + 1) {
            Ok(commit) => {
                if let Some(sequence) = commit.sequence {
                    next = sequence;
                }
                applied.push((work, commit));
            }
            Err(Failure::Transaction(error)) => work.complete(Err(error)),
            Err(Failure::Batch(error)) => {
                tracing::error!(error = %error.message, "SQLite rolled back a write batch; failing all of it");
                let failed = applied.into_iter().map(|(work, _)| work).chain(std::iter::once(work)).chain(works);
                for work in failed {
                    work.complete(Err(error.clone()));
                }
                return;
            }
        }
    }
    match tx.commit() {
        Ok(()) => {
            *head = next;
            let durable_at = std::time::Instant::now();
            for (work, mut commit) in applied {
                commit.durable_at = durable_at;
                if let Some(feed) = feed.filter(|f| f.receiver_count() > 0)
                    && (commit.sequence.is_some() || !commit.policy_changes.is_empty())
                {
                    // No receiver is not an error: nobody is watching this tenant.
                    let _ = feed.send(Arc::new(commit.clone()));
                }
                work.complete(Ok(commit));
            }
        }
        Err(e) => {
            let error = NimbusError::from(StoreError::new("committing a write batch", e));
            for (work, _) in applied {
                work.complete(Err(error.clone()));
            }
        }
    }
}

/// Why one transaction of a batch did not apply.
enum Failure {
    /// It alone failed; its savepoint rolled back and the batch goes on.
    Transaction(NimbusError),
    /// SQLite rolled back the batch's whole transaction: nothing of the batch may commit.
    Batch(NimbusError),
}

/// The error of a batch SQLite rolled back: the transaction's own storage error when it has
/// one, else a generic storage failure.
fn batch_failure(error: Option<NimbusError>) -> Failure {
    let storage = |e: &NimbusError| {
        matches!(
            e.code,
            ErrorCode::ServiceStorageIo
                | ErrorCode::ServiceStorageBusy
                | ErrorCode::ServiceStorageTransient
                | ErrorCode::ServiceStorageCorruption
                | ErrorCode::ServiceStorageOther
                | ErrorCode::ServiceUnavailable
        )
    };
    Failure::Batch(error.filter(storage).unwrap_or_else(rolled_back))
}

/// The storage error of a write batch SQLite rolled back.
pub(crate) fn rolled_back() -> NimbusError {
    NimbusError::new(
        ErrorCode::ServiceStorageIo,
        "storage failure (io) while writing: SQLite rolled the write batch back",
        Some(serde_json::json!({ "storageKind": "io" })),
    )
}

/// Runs one transaction inside a savepoint and journals its writes under `sequence`. Checks
/// after the body that SQLite did not roll back the enclosing transaction: had it, releasing the
/// savepoint would start and commit a transaction of its own.
fn run_one(
    tx: &mut rusqlite::Transaction<'_>,
    work: &mut dyn Work,
    now: i64,
    sequence: u64,
) -> Result<Commit, Failure> {
    if tx.is_autocommit() {
        return Err(batch_failure(None));
    }
    let savepoint = tx
        .savepoint()
        .map_err(|e| Failure::Transaction(NimbusError::from(StoreError::new("opening a savepoint", e))))?;
    let mut txn = Transaction::new(&savepoint, now);
    let ran = work.run(&mut txn);
    if txn.rolled_back() {
        return Err(batch_failure(ran.err()));
    }
    ran.map_err(Failure::Transaction)?;
    let parts = txn.into_parts();
    let sequence = if parts.writes.is_empty() {
        None
    } else {
        let record =
            build_record(sequence, now, &parts.writes, parts.execution_id.as_deref()).map_err(Failure::Transaction)?;
        journal_rows::append(&savepoint, sequence, &record).map_err(|e| {
            let error = NimbusError::from(e);
            if savepoint.is_autocommit() { batch_failure(Some(error)) } else { Failure::Transaction(error) }
        })?;
        Some(sequence)
    };
    if savepoint.is_autocommit() {
        return Err(batch_failure(None));
    }
    savepoint
        .commit()
        .map_err(|e| Failure::Transaction(NimbusError::from(StoreError::new("releasing a savepoint", e))))?;
    Ok(Commit {
        sequence,
        timestamp: now,
        writes: parts.writes,
        policy_changes: parts.policy_changes,
        durable_at: std::time::Instant::now(),
    })
}

/// Queues `body` on a tenant's writer and waits for its durable outcome. A full queue is 429.
pub(crate) async fn submit<T, F>(queue: &WorkQueue, body: F) -> Result<(T, Commit), NimbusError>
where
    T: Send + 'static,
    F: FnOnce(&mut Transaction<'_>) -> Result<T, NimbusError> + Send + 'static,
{
    let (work, receiver) = TypedWork::new(body);
    enqueue(queue, Box::new(work));
    receiver.await.map_err(|_| NimbusError::internal())?
}

/// Queues work on a tenant's writer without waiting. Work that cannot be queued is completed
/// at once with the error: a full queue is 429.
pub(crate) fn enqueue(queue: &WorkQueue, work: Box<dyn Work>) {
    let (error, work) = match queue.try_send(work) {
        Ok(()) => return,
        Err(mpsc::error::TrySendError::Full(work)) => (
            NimbusError::resource_exhausted(
                "tenant_write_queue",
                nimbus_core::limits::WRITE_QUEUE_PER_TENANT as u64,
                Some(nimbus_core::limits::WRITE_QUEUE_PER_TENANT as u64),
            )
            .with_retry_after_ms(nimbus_core::limits::WRITE_QUEUE_RETRY_AFTER_MS),
            work,
        ),
        Err(mpsc::error::TrySendError::Closed(work)) => (NimbusError::internal(), work),
    };
    work.complete(Err(error));
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_core::ErrorCode;
    use nimbus_core::limits::WRITE_QUEUE_PER_TENANT;

    #[tokio::test]
    async fn a_full_queue_answers_429_with_the_limit() {
        // A queue nobody drains: the writer is "busy" for the whole test.
        let (queue, _receiver) = mpsc::channel::<Box<dyn Work>>(WRITE_QUEUE_PER_TENANT);
        for _ in 0..WRITE_QUEUE_PER_TENANT {
            let (work, _reply) = TypedWork::new(|_: &mut Transaction<'_>| Ok(()));
            assert!(queue.try_send(Box::new(work)).is_ok());
        }
        let error = submit(&queue, |_| Ok(())).await.expect_err("the queue is full");
        assert_eq!(error.code, ErrorCode::RateResourceExhausted);
        assert!(error.is_retryable());
        assert_eq!(error.retry_after_ms, Some(50));
        let detail = error.detail.expect("detail");
        assert_eq!(detail["limit"], WRITE_QUEUE_PER_TENANT);
        assert_eq!(detail["resource"], "tenant_write_queue");
    }

    #[tokio::test]
    async fn work_whose_caller_left_is_skipped_and_the_rest_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sqlite3");
        let conn = nimbus_store::connection::open_tenant(&path, nimbus_store::connection::Access::Write).expect("open");
        let table = nimbus_core::ids::TableName::parse("t", "table").expect("valid");
        let (abandoned, reply) = TypedWork::new({
            let table = table.clone();
            move |tx: &mut Transaction<'_>| tx.insert(&table, serde_json::Map::new())
        });
        drop(reply);
        let (kept, kept_reply) = TypedWork::new({
            let table = table.clone();
            move |tx: &mut Transaction<'_>| tx.insert(&table, serde_json::Map::new())
        });
        let mut conn = conn;
        let mut head = 0;
        commit_batch(&mut conn, &mut head, vec![Box::new(abandoned), Box::new(kept)], None);
        let (id, commit) = kept_reply.await.expect("answered").expect("committed");
        assert_eq!(commit.sequence, Some(1), "only the kept transaction was journaled");
        assert_eq!(head, 1);
        let rows = nimbus_store::documents::list(&conn, "t", None, None).expect("list");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, id.as_str());
    }

    #[tokio::test]
    async fn a_batch_sqlite_rolls_back_fails_as_a_whole_and_the_writer_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sqlite3");
        let mut conn =
            nimbus_store::connection::open_tenant(&path, nimbus_store::connection::Access::Write).expect("open");
        let table = nimbus_core::ids::TableName::parse("t", "table").expect("valid");
        let insert = |table: &TableName| {
            let table = table.clone();
            TypedWork::new(move |tx: &mut Transaction<'_>| tx.insert(&table, serde_json::Map::new()))
        };
        let (before, before_reply) = insert(&table);
        // What SQLite does to the enclosing transaction on SQLITE_FULL or an I/O error.
        let (failing, failing_reply) = TypedWork::new({
            let table = table.clone();
            move |tx: &mut Transaction<'_>| {
                tx.insert(&table, serde_json::Map::new())?;
                tx.conn().execute_batch("ROLLBACK").expect("rollback");
                Err::<(), _>(NimbusError::from(StoreError::new(
                    "inserting a document",
                    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None),
                )))
            }
        });
        let (after, after_reply) = insert(&table);
        let mut head = 0;
        commit_batch(&mut conn, &mut head, vec![Box::new(before), Box::new(failing), Box::new(after)], None);
        for reply in [
            before_reply.await.map(|r| r.map(|_| ())),
            failing_reply.await.map(|r| r.map(|_| ())),
            after_reply.await.map(|r| r.map(|_| ())),
        ] {
            let error = reply.expect("answered").expect_err("nothing of the batch is acknowledged");
            assert_eq!(error.code, ErrorCode::ServiceStorageIo, "{error:?}");
        }
        assert_eq!(head, 0, "the journal head did not move");
        assert!(conn.is_autocommit(), "no transaction is left open");
        assert!(nimbus_store::documents::list(&conn, "t", None, None).expect("list").is_empty(), "nothing committed");
        assert_eq!(journal_rows::latest_sequence(&conn).expect("head"), 0, "nothing was journaled");

        // Space is back: the next batch commits under the next sequence.
        let (next, next_reply) = insert(&table);
        commit_batch(&mut conn, &mut head, vec![Box::new(next)], None);
        let (id, commit) = next_reply.await.expect("answered").expect("committed");
        assert_eq!((commit.sequence, head), (Some(1), 1));
        let rows = nimbus_store::documents::list(&conn, "t", None, None).expect("list");
        assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    }
}

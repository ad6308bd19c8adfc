//! [`LentTransaction`]: a transaction on the tenant's writer driven step by step from another
//! thread (a mutation function's isolate). The writer runs each step as it arrives and commits
//! when told to, so a mutation is serializable with every other write of the tenant and never
//! conflicts; the price is that the tenant's other writes wait while the mutation runs.

use std::any::Any;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Instant;

use tokio::sync::oneshot;

use nimbus_core::{ErrorCode, NimbusError};

use super::Tenant;
use crate::transaction::Transaction;
use crate::writer::Commit;

/// One step's typed body, erased so one channel carries every kind.
type StepBody = Box<dyn FnOnce(&mut Transaction<'_>) -> Box<dyn Any + Send> + Send>;

enum Step {
    Run(StepBody),
    Commit,
}

enum Response {
    Ran(Box<dyn Any + Send>),
    /// The transaction ended; its outcome is on the `done` channel.
    Done,
}

/// A transaction lent to the caller's thread. Dropping it without [`LentTransaction::commit`]
/// rolls it back.
pub struct LentTransaction {
    steps: Option<Sender<Step>>,
    responses: Receiver<Response>,
    /// The transaction's outcome, sent before [`Response::Done`]. A tokio channel, so a commit
    /// can be awaited off the caller's thread.
    done: Option<oneshot::Receiver<Result<Commit, NimbusError>>>,
    deadline: Instant,
    /// The outcome, once the writer reported it (the transaction ended early).
    ended: Option<Result<Commit, NimbusError>>,
}

impl Tenant {
    /// Queues a transaction on the writer whose body the caller drives with
    /// [`LentTransaction::run`] until [`LentTransaction::commit`]. The writer gives up waiting
    /// for the next step at `deadline` and rolls back. `runtime` runs the queued submission.
    pub fn lend_transaction(self: &Arc<Self>, runtime: &tokio::runtime::Handle, deadline: Instant) -> LentTransaction {
        let (steps, step_queue) = mpsc::channel::<Step>();
        let (respond, responses) = mpsc::channel::<Response>();
        let (finished, done) = oneshot::channel();
        let tenant = self.clone();
        let ran = respond.clone();
        runtime.spawn(async move {
            let outcome = tenant
                .transact(move |tx| {
                    loop {
                        let wait = deadline.saturating_duration_since(Instant::now());
                        match step_queue.recv_timeout(wait) {
                            Ok(Step::Run(body)) => {
                                let out = body(tx);
                                // SQLite rolled the batch back: no later step may run (each
                                // statement would commit on its own); the writer fails it all.
                                if tx.rolled_back() {
                                    return Err(crate::writer::rolled_back());
                                }
                                if ran.send(Response::Ran(out)).is_err() {
                                    return Err(abandoned());
                                }
                            }
                            Ok(Step::Commit) => return Ok(()),
                            Err(RecvTimeoutError::Timeout) => return Err(timed_out()),
                            Err(RecvTimeoutError::Disconnected) => return Err(abandoned()),
                        }
                    }
                })
                .await;
            let _ = finished.send(outcome.map(|((), commit)| commit));
            let _ = respond.send(Response::Done);
        });
        LentTransaction { steps: Some(steps), responses, done: Some(done), deadline, ended: None }
    }
}

impl LentTransaction {
    /// Runs `body` in the transaction on the writer thread and returns its result. Blocks
    /// until the writer has run it. If the transaction already ended (the write queue was
    /// full, the deadline passed), returns that error.
    pub fn run<T, F>(&mut self, body: F) -> Result<T, NimbusError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Transaction<'_>) -> Result<T, NimbusError> + Send + 'static,
    {
        if let Some(outcome) = &self.ended {
            return Err(ended_error(outcome));
        }
        let erased: StepBody = Box::new(move |tx| Box::new(body(tx)));
        if let Some(steps) = &self.steps {
            let _ = steps.send(Step::Run(erased));
        }
        // Unsent, the writer dropped the steps: only its end can come.
        let ended = match self.next_response() {
            Some(Response::Ran(out)) => {
                return match out.downcast::<Result<T, NimbusError>>() {
                    Ok(result) => *result,
                    Err(_) => Err(NimbusError::internal()),
                };
            }
            // Sent before `Done`, so this does not wait.
            Some(Response::Done) => self.done.take().and_then(|done| done.blocking_recv().ok()),
            None => None,
        };
        let ended = self.ended.insert(ended.unwrap_or_else(|| Err(timed_out())));
        Err(ended_error(ended))
    }

    /// Commits. The returned future resolves once the transaction is durable, with what it
    /// wrote; it needs no thread of the caller's while the writer commits.
    pub fn commit(mut self) -> impl Future<Output = Result<Commit, NimbusError>> + Send + 'static {
        let ended = self.ended.take();
        if ended.is_none()
            && let Some(steps) = self.steps.take()
        {
            let _ = steps.send(Step::Commit);
        }
        let done = self.done.take();
        let wait = self.deadline.saturating_duration_since(Instant::now()) + COMMIT_GRACE;
        async move {
            if let Some(outcome) = ended {
                return outcome.and_then(|_| Err(NimbusError::internal()));
            }
            match tokio::time::timeout(wait, done.ok_or_else(NimbusError::internal)?).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(NimbusError::internal()),
                Err(_) => Err(timed_out()),
            }
        }
    }

    /// Waits for the writer's next response; `None` when it never came (the writer gives up
    /// at the deadline itself, so only a lost writer gets here).
    fn next_response(&mut self) -> Option<Response> {
        // The grace covers the commit's fsync.
        let wait = self.deadline.saturating_duration_since(Instant::now()) + COMMIT_GRACE;
        self.responses.recv_timeout(wait).ok()
    }
}

/// How long past the deadline a caller waits for the writer's last word.
const COMMIT_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// The error a step gets once its transaction has ended.
fn ended_error(outcome: &Result<Commit, NimbusError>) -> NimbusError {
    match outcome {
        Err(error) => error.clone(),
        Ok(_) => NimbusError::internal(),
    }
}

fn abandoned() -> NimbusError {
    NimbusError::new(ErrorCode::OpCancelled, "the transaction was abandoned before it committed", None)
}

fn timed_out() -> NimbusError {
    NimbusError::new(ErrorCode::OpCancelled, "the transaction's caller did not finish before its deadline", None)
}

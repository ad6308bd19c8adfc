//! The seam between the runtime and the data it serves: [`Host`] opens a [`Session`] per
//! invocation, and the isolate's `ctx` operations go through it. The server implements both on
//! the engine and the scheduler; this crate knows neither.

use std::time::Instant;

use nimbus_core::NimbusError;
use serde_json::Value;

use crate::deployment::{Kind, StoredDeployment};

/// One invocation as the host sees it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The tenant.
    pub tenant: String,
    /// The function (`module:export`).
    pub name: String,
    /// Its kind, which decides what its session may do.
    pub kind: Kind,
    /// How deep in a call tree this invocation is (0 for a call from outside).
    pub depth: u32,
    /// The names of the calls above this one and this one, outermost first.
    pub call_path: Vec<String>,
    /// The request that started the call tree, for logs.
    pub request_id: String,
    /// For a scheduled mutation: the execution id its transaction records (a re-run finds it
    /// and skips the handler).
    pub execution_id: Option<String>,
    /// When the invocation's wall-clock limit ends (the same for every attempt).
    pub deadline: Instant,
    /// Which attempt at the invocation this is, from 0. A session may run its first attempt
    /// optimistically and end it with [`Ending::Retry`]; a later attempt must not need to.
    pub attempt: u32,
}

/// How a session ended.
#[derive(Debug)]
pub enum Ending<T> {
    /// Its effects committed, or it had none to commit; `T` is what it leaves its caller.
    Finished(T),
    /// This attempt's effects were discarded and its outcome is void: the invocation must run
    /// again (the runtime makes at most `FUNCTION_MAX_ATTEMPTS` attempts).
    Retry,
}

/// Takes an attempt's end: on the worker thread when there is nothing to wait for, otherwise
/// on the thread that made its commit durable. It must not block. Worker threads therefore
/// never wait for an fsync and go on to the next invocation, and the writer can fold many
/// mutations into one commit.
pub type Finish<T> = Box<dyn FnOnce(Result<Ending<T>, NimbusError>) + Send>;

/// Delivers the outcome of an asynchronous operation to its invocation's event loop.
pub type Completion = Box<dyn FnOnce(Result<Value, NimbusError>) + Send>;

/// The data side of one invocation.
pub trait Session: Send + 'static {
    /// What a successful invocation leaves behind for its caller (a query's read set).
    type Trace: Send + 'static;

    /// Whether the handler must not run: a scheduled mutation whose execution id its
    /// transaction finds already recorded (the work committed before a crash).
    fn already_executed(&mut self) -> Result<bool, NimbusError>;

    /// A synchronous operation (`db.*`, `scheduler.*` from a mutation). Only operations the
    /// invocation's kind allows reach it.
    fn op(&mut self, name: &str, payload: Value) -> Result<Value, NimbusError>;

    /// Starts an asynchronous operation of an action (`run.*`, `scheduler.*`); `done` must be
    /// called exactly once, from any thread.
    fn start(&mut self, name: &str, payload: Value, done: Completion);

    /// Ends the attempt: with `success`, commits what it did (a mutation's transaction) and
    /// hands `then` the trace once that is durable; otherwise rolls back. [`Ending::Retry`]
    /// voids the attempt whatever JavaScript made of it. Called on the worker thread, which it
    /// must not keep waiting for a commit.
    fn finish(self, success: bool, then: Finish<Self::Trace>);
}

/// What the runtime needs from its embedder.
pub trait Host: Send + Sync + 'static {
    /// The per-invocation session type.
    type Session: Session;

    /// Opens the data side of an invocation. Runs on a function worker thread and may block.
    fn open(&self, call: &Call) -> Result<Self::Session, NimbusError>;

    /// Loads a tenant's stored deployment, `None` before its first deploy. Runs on a function
    /// worker thread and may block.
    fn load(&self, tenant: &str) -> Result<Option<StoredDeployment>, NimbusError>;
}

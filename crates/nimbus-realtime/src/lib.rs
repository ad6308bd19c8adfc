//! `nimbus-realtime`: live queries.
//!
//! A client subscribes a validated [`Query`] on a tenant; the registry re-runs it whenever a
//! committed transaction could change its result and hands each new complete result to the
//! subscriber. It knows no HTTP, WebSocket or frame shapes: results are rendered by a function
//! the caller supplies, and delivered through the [`Subscriber`] trait, which must not block.
//!
//! # Layout
//! - this file: [`Realtime`] (the registry of tenants' hubs), [`TenantSession`], the
//!   [`Subscription`] handle, [`Subscriber`], [`Update`] and [`DropReason`].
//! - [`hub`]: one tenant's hub: subscriptions indexed by table, shared per identical query or
//!   function call, the commit loop (precise invalidation: by filters for queries, by the last
//!   run's read set for functions) and evaluation (coalesced, monotonic, deduplicated).
//! - [`stats`]: the invalidation counters.

pub mod hub;
pub mod stats;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_core::NimbusError;
use nimbus_core::ids::TenantId;
use nimbus_engine::document::Document;
use nimbus_engine::query::Query;
use nimbus_engine::read_set::ReadSet;
use nimbus_engine::{Engine, Tenant};
use serde_json::Value;
use tokio::sync::watch;

use hub::{Hub, MemberKey, Source};
pub use stats::{Latency, StatsSnapshot};

/// Renders a result set once per evaluation (the wire form is the caller's business); the
/// rendered text is what subscribers receive and what duplicate suppression compares.
pub type Render = Arc<dyn Fn(&[Document]) -> String + Send + Sync>;

/// What a subscription learns.
#[derive(Debug, Clone)]
pub enum Update {
    /// A new complete result, different from the last one delivered to this subscription.
    Result {
        /// The rendered result set.
        data: Arc<str>,
        /// The journal sequence of the snapshot it was read from.
        sequence: u64,
        /// When the oldest commit this result reflects became durable (`None` for a first
        /// result): the start of its delivery latency.
        since: Option<std::time::Instant>,
    },
    /// An evaluation failed; the subscription stays registered and the next successful one
    /// resumes results.
    Failed(NimbusError),
    /// The registry removed the subscription; nothing more will be delivered for it.
    Dropped(DropReason),
}

/// Why the registry removed a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The access policy of the subscription's table changed: results computed under the old
    /// policy may no longer be readable, so the client must subscribe again.
    PolicyChanged,
    /// A redeploy removed the subscribed function.
    FunctionRemoved,
}

impl DropReason {
    /// The wire name (`session.subscription_error` `detail.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PolicyChanged => "policy_changed",
            Self::FunctionRemoved => "function_removed",
        }
    }
}

/// One run of a subscribed query function.
#[derive(Debug)]
pub struct Evaluated {
    /// The rendered return value.
    pub data: String,
    /// The journal sequence of the snapshot the function read.
    pub sequence: u64,
    /// What it read: a later commit re-runs it only when it touches this.
    pub reads: ReadSet,
}

/// The future of one function run.
pub type Evaluation = Pin<Box<dyn Future<Output = Result<Evaluated, NimbusError>> + Send>>;

/// Runs subscribed query functions (the server implements it over the functions runtime; this
/// crate knows no functions). A `function.not_found` from a run after a redeploy drops the
/// subscription with [`DropReason::FunctionRemoved`].
pub trait FunctionEvaluator: Send + Sync {
    /// Runs query function `name` of `tenant` with `args`.
    fn evaluate(&self, tenant: Arc<Tenant>, name: String, args: Value) -> Evaluation;
}

/// Receives a subscription's updates. Called from the registry's tasks: it must not block
/// (queue and return); a slow consumer is the receiver's problem, never the registry's. A fan-out
/// calls it for every member from one task that runs outside tokio's cooperative budget, so a
/// non-blocking write attempted here is not refused for the budget's sake.
pub trait Subscriber: Send + Sync {
    /// Delivers one update for the subscription the caller numbered `subscription_id`.
    fn deliver(&self, subscription_id: u64, update: Update);
}

/// The registry of every tenant's live queries.
pub struct Realtime {
    engine: Arc<Engine>,
    render: Render,
    functions: Arc<dyn FunctionEvaluator>,
    /// One hub per open tenant. A std mutex: held only to look up or insert, never across an
    /// await. Shared with each hub's commit loop, which removes its hub when the tenant closes.
    hubs: Arc<Mutex<HashMap<String, Arc<Hub>>>>,
}

impl Realtime {
    /// A registry over `engine` whose query results are rendered by `render` and whose
    /// function subscriptions run through `functions`.
    pub fn new(engine: Arc<Engine>, render: Render, functions: Arc<dyn FunctionEvaluator>) -> Arc<Self> {
        Arc::new(Self { engine, render, functions, hubs: Arc::new(Mutex::new(HashMap::new())) })
    }

    fn hub(&self, tenant_id: &TenantId) -> Result<Arc<Hub>, NimbusError> {
        let tenant = self.engine.tenant(tenant_id)?;
        let mut hubs = self.hubs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hub) = hubs.get(tenant_id.as_str())
            && hub.serves(&tenant)
        {
            return Ok(hub.clone());
        }
        let hub = Hub::start(tenant, self.render.clone(), self.functions.clone(), self.hubs.clone())?;
        hubs.insert(tenant_id.as_str().to_owned(), hub.clone());
        Ok(hub)
    }

    /// Opens a session on a tenant (404 `session.tenant_not_found` when it does not exist):
    /// the handle one client subscribes through.
    pub fn session(&self, tenant_id: &TenantId) -> Result<TenantSession, NimbusError> {
        let hub = self.hub(tenant_id)?;
        let gone = hub.gone();
        Ok(TenantSession { hub, gone })
    }

    /// Re-runs the tenant's function subscriptions after a redeploy (once the new deployment is
    /// active). A tenant without a hub has none.
    pub fn redeployed(&self, tenant_id: &TenantId) {
        let hub = self.hubs.lock().unwrap_or_else(PoisonError::into_inner).get(tenant_id.as_str()).cloned();
        if let Some(hub) = hub {
            hub.redeployed();
        }
    }

    /// The tenant's invalidation counters (404 when the tenant does not exist).
    pub fn stats(&self, tenant_id: &TenantId) -> Result<StatsSnapshot, NimbusError> {
        Ok(self.hub(tenant_id)?.stats())
    }
}

/// One client's attachment to one tenant's hub.
pub struct TenantSession {
    hub: Arc<Hub>,
    gone: watch::Receiver<bool>,
}

impl TenantSession {
    /// Registers a live query. The first result (or failure) is delivered asynchronously to
    /// `subscriber` under `subscription_id`; dropping the returned handle ends the subscription.
    pub fn subscribe(&self, query: Query, subscription_id: u64, subscriber: Arc<dyn Subscriber>) -> Subscription {
        let key = self.hub.add(Source::Query(query), subscription_id, subscriber);
        Subscription { hub: self.hub.clone(), key: Some(key) }
    }

    /// Registers a query function subscription, like [`TenantSession::subscribe`]. Checks of
    /// the function itself (exists, public, a query, args valid) happen in its first run, whose
    /// failure is delivered as [`Update::Failed`].
    pub fn subscribe_function(
        &self,
        name: String,
        args: Value,
        subscription_id: u64,
        subscriber: Arc<dyn Subscriber>,
    ) -> Subscription {
        let key = self.hub.add(Source::Function { name, args }, subscription_id, subscriber);
        Subscription { hub: self.hub.clone(), key: Some(key) }
    }

    /// Where the socket records the commit-to-write latency of each result it writes.
    pub fn latency(&self) -> Arc<Latency> {
        self.hub.latency()
    }

    /// Resolves once the tenant is closed (deleted, or the server is shutting down).
    pub async fn closed(&mut self) {
        // An error means the hub is gone, which is also closed.
        let _ = self.gone.wait_for(|gone| *gone).await;
    }
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    hub: Arc<Hub>,
    key: Option<MemberKey>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.hub.remove(key);
        }
    }
}

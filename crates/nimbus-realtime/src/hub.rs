//! One tenant's hub: its subscriptions, indexed by table and shared per identical query, the
//! loop that reads the tenant's commit feed, and evaluation.
//!
//! Invalidation is precise per write: only queries on the write's table are considered, and one
//! is re-evaluated only if the write's before or after image passes its filters (a document
//! outside the filters that stays outside cannot change the result, whatever the order or
//! limit). Evaluation is coalesced per query (one in flight; commits arriving meanwhile mark it
//! dirty for one more run), runs on the tenant's read pool, records the journal sequence its
//! snapshot saw and never delivers one older than the last delivered. A commit that changes a
//! table's access policy drops every subscription on that table (the client resubscribes).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_core::{ErrorCode, NimbusError};
use nimbus_engine::Tenant;
use nimbus_engine::query::Query;
use nimbus_engine::read_set::ReadSet;
use nimbus_engine::writer::Commit;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::stats::{Stats, StatsSnapshot};
use crate::{DropReason, FunctionEvaluator, Render, Subscriber, Update};

/// What a subscription evaluates.
#[derive(Debug, Clone)]
pub enum Source {
    /// A query, invalidated by its filters.
    Query(Query),
    /// A query function with its args, invalidated by the read set of its last run.
    Function {
        /// The function's name.
        name: String,
        /// Its args.
        args: Value,
    },
}

impl Source {
    /// Identifies the source up to result equality.
    fn key(&self) -> String {
        match self {
            Source::Query(query) => format!("{}:{:?}", query.fingerprint(), query.limit),
            Source::Function { name, args } => format!("fn:{name}:{}", nimbus_engine::value::canonical_text(args)),
        }
    }

    /// The table whose index holds the source (queries only).
    fn table(&self) -> Option<&str> {
        match self {
            Source::Query(query) => Some(query.table.as_str()),
            Source::Function { .. } => None,
        }
    }
}

/// Identifies a query up to result equality: its fingerprint (table, filters, order) and limit.
type QueryKey = String;

/// Identifies one subscription inside a hub.
#[derive(Debug, Clone)]
pub struct MemberKey {
    query: QueryKey,
    member: u64,
}

/// One subscriber of a shared query.
struct Member {
    subscription_id: u64,
    subscriber: Arc<dyn Subscriber>,
    /// The last result delivered, for duplicate suppression (shared with the group's result).
    last: Option<Arc<str>>,
}

/// The evaluation state of a shared query.
#[derive(Default)]
struct Eval {
    running: bool,
    dirty: bool,
    /// The newest result and the sequence its snapshot saw.
    last: Option<(u64, Arc<str>)>,
    /// When the oldest commit not yet reflected in a delivered result became durable.
    since: Option<std::time::Instant>,
}

/// Subscriptions sharing one query: evaluated once, fanned out to each member.
struct Group {
    source: Source,
    /// What the last run of a function read (empty for queries and before the first run).
    reads: Mutex<ReadSet>,
    /// Members by hub-wide member number. Std mutexes here and below: held briefly, never across
    /// an await, and `Subscriber::deliver` does not block.
    members: Mutex<HashMap<u64, Member>>,
    eval: Mutex<Eval>,
}

#[derive(Default)]
struct Registry {
    groups: HashMap<QueryKey, Arc<Group>>,
    /// The function groups (also in `groups`), checked against every commit.
    functions: HashSet<QueryKey>,
    by_table: HashMap<String, HashSet<QueryKey>>,
    /// Live subscriptions per table, and in all, for the `skipped_other_table` count.
    members_by_table: HashMap<String, u64>,
    members_total: u64,
}

/// One tenant's live queries.
pub struct Hub {
    tenant: Arc<Tenant>,
    render: Render,
    functions: Arc<dyn FunctionEvaluator>,
    registry: Mutex<Registry>,
    stats: Stats,
    next_member: AtomicU64,
    gone: watch::Sender<bool>,
}

impl Hub {
    /// Creates the hub of an open tenant and starts its commit loop, which removes the hub from
    /// `hubs` when the tenant closes.
    pub(crate) fn start(
        tenant: Arc<Tenant>,
        render: Render,
        functions: Arc<dyn FunctionEvaluator>,
        hubs: Arc<Mutex<HashMap<String, Arc<Hub>>>>,
    ) -> Result<Arc<Self>, NimbusError> {
        let feed = tenant.commits().ok_or_else(|| NimbusError::tenant_not_found(tenant.id().as_str()))?;
        let hub = Arc::new(Self {
            tenant,
            render,
            functions,
            registry: Mutex::new(Registry::default()),
            stats: Stats::default(),
            next_member: AtomicU64::new(1),
            gone: watch::channel(false).0,
        });
        tokio::spawn(commit_loop(hub.clone(), feed, hubs));
        Ok(hub)
    }

    /// Whether this hub belongs to this open tenant (a tenant deleted and created again is a new
    /// tenant with a new hub).
    pub(crate) fn serves(&self, tenant: &Arc<Tenant>) -> bool {
        Arc::ptr_eq(&self.tenant, tenant)
    }

    pub(crate) fn gone(&self) -> watch::Receiver<bool> {
        self.gone.subscribe()
    }

    pub(crate) fn latency(&self) -> Arc<crate::stats::Latency> {
        self.stats.latency.clone()
    }

    pub(crate) fn stats(&self) -> StatsSnapshot {
        let subscriptions = self.registry.lock().unwrap_or_else(PoisonError::into_inner).members_total;
        StatsSnapshot { subscriptions, ..self.stats.snapshot() }
    }

    /// Registers a subscription and arranges its first result: the group's current result when
    /// one is known and no evaluation is in flight, else an evaluation.
    pub(crate) fn add(
        self: &Arc<Self>,
        source: Source,
        subscription_id: u64,
        subscriber: Arc<dyn Subscriber>,
    ) -> MemberKey {
        let key = source.key();
        let table = source.table().map(str::to_owned);
        let member = self.next_member.fetch_add(1, Ordering::Relaxed);
        let group = {
            let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            let group = registry
                .groups
                .entry(key.clone())
                .or_insert_with(|| {
                    Arc::new(Group {
                        source,
                        reads: Mutex::new(ReadSet::default()),
                        members: Mutex::new(HashMap::new()),
                        eval: Mutex::new(Eval::default()),
                    })
                })
                .clone();
            match table {
                Some(table) => {
                    registry.by_table.entry(table.clone()).or_default().insert(key.clone());
                    *registry.members_by_table.entry(table).or_default() += 1;
                }
                None => {
                    registry.functions.insert(key.clone());
                }
            }
            registry.members_total += 1;
            group
        };
        let eval = group.eval.lock().unwrap_or_else(PoisonError::into_inner);
        let mut entry = Member { subscription_id, subscriber, last: None };
        if !eval.running
            && let Some((sequence, data)) = eval.last.clone()
        {
            entry.last = Some(data.clone());
            Stats::add(&self.stats.pushes, 1);
            entry.subscriber.deliver(subscription_id, Update::Result { data, sequence, since: None });
            group.members.lock().unwrap_or_else(PoisonError::into_inner).insert(member, entry);
            return MemberKey { query: key, member };
        }
        group.members.lock().unwrap_or_else(PoisonError::into_inner).insert(member, entry);
        drop(eval);
        self.schedule(&group, None);
        MemberKey { query: key, member }
    }

    /// Ends a subscription; the last one of a query removes the query.
    pub(crate) fn remove(&self, key: MemberKey) {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(group) = registry.groups.get(&key.query).cloned() else { return };
        let (removed, empty) = {
            let mut members = group.members.lock().unwrap_or_else(PoisonError::into_inner);
            (members.remove(&key.member).is_some(), members.is_empty())
        };
        if !removed {
            return;
        }
        registry.members_total -= 1;
        let Some(table) = group.source.table() else {
            if empty {
                registry.groups.remove(&key.query);
                registry.functions.remove(&key.query);
            }
            return;
        };
        if let Some(count) = registry.members_by_table.get_mut(table) {
            *count -= 1;
        }
        if empty {
            registry.groups.remove(&key.query);
            if let Some(keys) = registry.by_table.get_mut(table) {
                keys.remove(&key.query);
                if keys.is_empty() {
                    registry.by_table.remove(table);
                    registry.members_by_table.remove(table);
                }
            }
        }
    }

    /// Marks the queries a commit could affect and schedules their evaluation.
    fn on_commit(self: &Arc<Self>, commit: &Commit) {
        Stats::add(&self.stats.commits_seen, 1);
        for table in &commit.policy_changes {
            self.drop_table(table.as_str(), DropReason::PolicyChanged);
        }
        let mut dirty: HashMap<*const Group, Arc<Group>> = HashMap::new();
        {
            let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            for write in &commit.writes {
                let table = write.table.as_str();
                let on_table = registry.members_by_table.get(table).copied().unwrap_or(0);
                Stats::add(&self.stats.skipped_other_table, registry.members_total - on_table);
                let Some(keys) = registry.by_table.get(table) else { continue };
                for key in keys {
                    let Some(group) = registry.groups.get(key) else { continue };
                    let members = group.members.lock().unwrap_or_else(PoisonError::into_inner).len() as u64;
                    Stats::add(&self.stats.candidates_considered, members);
                    let Source::Query(query) = &group.source else { continue };
                    let touches = [&write.previous, &write.current].into_iter().flatten().any(|doc| query.matches(doc));
                    if touches {
                        dirty.insert(Arc::as_ptr(group), group.clone());
                    } else {
                        Stats::add(&self.stats.skipped_by_filter, members);
                    }
                }
            }
            // Function subscriptions re-run only when the commit touched something their last
            // run read (or a table whose policy changed).
            for key in &registry.functions {
                let Some(group) = registry.groups.get(key) else { continue };
                let touched = {
                    let reads = group.reads.lock().unwrap_or_else(PoisonError::into_inner);
                    commit.writes.iter().any(|w| reads.touched_by(w))
                        || commit.policy_changes.iter().any(|t| reads.reads_table(t))
                };
                if touched {
                    Stats::add(&self.stats.function_invalidations, 1);
                    dirty.insert(Arc::as_ptr(group), group.clone());
                } else {
                    Stats::add(&self.stats.function_skipped, 1);
                }
            }
        }
        for group in dirty.values() {
            self.schedule(group, Some(commit.durable_at));
        }
    }

    /// Removes every subscription on `table`, telling each member why.
    fn drop_table(&self, table: &str, reason: DropReason) {
        let groups: Vec<Arc<Group>> = {
            let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            let keys = registry.by_table.remove(table).unwrap_or_default();
            let removed = registry.members_by_table.remove(table).unwrap_or(0);
            registry.members_total -= removed;
            keys.iter().filter_map(|key| registry.groups.remove(key)).collect()
        };
        for group in groups {
            let members = std::mem::take(&mut *group.members.lock().unwrap_or_else(PoisonError::into_inner));
            for member in members.into_values() {
                member.subscriber.deliver(member.subscription_id, Update::Dropped(reason));
            }
        }
    }

    /// Re-runs every function subscription: the tenant's functions were redeployed (called
    /// after the new deployment is active, so the runs see it).
    pub(crate) fn redeployed(self: &Arc<Self>) {
        let groups: Vec<Arc<Group>> = {
            let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            registry.functions.iter().filter_map(|key| registry.groups.get(key).cloned()).collect()
        };
        for group in &groups {
            Stats::add(&self.stats.function_invalidations, 1);
            self.schedule(group, None);
        }
    }

    /// Removes a function group and tells each member why.
    fn drop_group(&self, group: &Arc<Group>, reason: DropReason) {
        let key = group.source.key();
        let members = {
            let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            if registry.groups.get(&key).is_some_and(|g| Arc::ptr_eq(g, group)) {
                registry.groups.remove(&key);
                registry.functions.remove(&key);
            }
            let members = std::mem::take(&mut *group.members.lock().unwrap_or_else(PoisonError::into_inner));
            registry.members_total -= members.len() as u64;
            members
        };
        for member in members.into_values() {
            member.subscriber.deliver(member.subscription_id, Update::Dropped(reason));
        }
    }

    /// The feed lagged: any query may be stale.
    fn on_lag(self: &Arc<Self>) {
        let groups: Vec<Arc<Group>> =
            self.registry.lock().unwrap_or_else(PoisonError::into_inner).groups.values().cloned().collect();
        for group in &groups {
            self.schedule(group, None);
        }
    }

    /// Starts an evaluation of `group`, or marks it dirty if one is in flight. `since` is when
    /// the commit that made it stale became durable.
    fn schedule(self: &Arc<Self>, group: &Arc<Group>, since: Option<std::time::Instant>) {
        {
            let mut eval = group.eval.lock().unwrap_or_else(PoisonError::into_inner);
            eval.dirty = true;
            if eval.since.is_none() {
                eval.since = since;
            }
            if eval.running {
                return;
            }
            eval.running = true;
        }
        // Outside tokio's cooperative budget: the fan-out hands every member its frame from this
        // one task, and subscribers write non-blocking (`Subscriber::deliver`). Under the budget,
        // every socket operation after the first 128 of a poll reports "not ready", which would
        // push most of a large fan-out's writes onto the subscribers' own writer tasks, later.
        tokio::spawn(tokio::task::unconstrained(evaluate(self.clone(), group.clone())));
    }
}

/// Evaluates a group until no commit marked it dirty during the last run.
async fn evaluate(hub: Arc<Hub>, group: Arc<Group>) {
    loop {
        let since = {
            let mut eval = group.eval.lock().unwrap_or_else(PoisonError::into_inner);
            eval.dirty = false;
            eval.since.take()
        };
        let outcome = match &group.source {
            Source::Query(query) => {
                Stats::add(&hub.stats.evaluations, 1);
                hub.tenant
                    .query_with_sequence(query.clone())
                    .await
                    .map(|(sequence, documents)| (sequence, (hub.render)(&documents)))
            }
            Source::Function { name, args } => {
                Stats::add(&hub.stats.function_evaluations, 1);
                let run = hub.functions.evaluate(hub.tenant.clone(), name.clone(), args.clone()).await;
                run.map(|evaluated| {
                    *group.reads.lock().unwrap_or_else(PoisonError::into_inner) = evaluated.reads;
                    (evaluated.sequence, evaluated.data)
                })
            }
        };
        match outcome {
            Ok((sequence, rendered)) => {
                let fresh = {
                    let mut eval = group.eval.lock().unwrap_or_else(PoisonError::into_inner);
                    match &eval.last {
                        Some((seen, _)) if *seen > sequence => None,
                        _ => {
                            let data: Arc<str> = rendered.into();
                            eval.last = Some((sequence, data.clone()));
                            Some(data)
                        }
                    }
                };
                if let Some(data) = fresh {
                    fan_out(&hub, &group, &data, sequence, since);
                }
            }
            // A function a redeploy removed: its subscriptions end with notice (a first run
            // that finds no function is a failed subscribe instead).
            Err(error)
                if error.code == ErrorCode::FunctionNotFound
                    && group.eval.lock().unwrap_or_else(PoisonError::into_inner).last.is_some() =>
            {
                hub.drop_group(&group, DropReason::FunctionRemoved);
                let mut eval = group.eval.lock().unwrap_or_else(PoisonError::into_inner);
                eval.running = false;
                return;
            }
            Err(error) => {
                if !*hub.gone.borrow() {
                    let members = group.members.lock().unwrap_or_else(PoisonError::into_inner);
                    for member in members.values() {
                        member.subscriber.deliver(member.subscription_id, Update::Failed(error.clone()));
                    }
                }
            }
        }
        let mut eval = group.eval.lock().unwrap_or_else(PoisonError::into_inner);
        if !eval.dirty {
            eval.running = false;
            return;
        }
    }
}

/// Hands a result to every member whose last delivered result differs.
fn fan_out(hub: &Hub, group: &Group, data: &Arc<str>, sequence: u64, since: Option<std::time::Instant>) {
    let mut members = group.members.lock().unwrap_or_else(PoisonError::into_inner);
    for member in members.values_mut() {
        if member.last.as_ref().is_some_and(|last| Arc::ptr_eq(last, data) || **last == **data) {
            Stats::add(&hub.stats.skipped_duplicate, 1);
            continue;
        }
        member.last = Some(data.clone());
        Stats::add(&hub.stats.pushes, 1);
        member.subscriber.deliver(member.subscription_id, Update::Result { data: data.clone(), sequence, since });
    }
}

/// Reads the tenant's commit feed until the tenant closes, then announces it and unregisters.
async fn commit_loop(
    hub: Arc<Hub>,
    mut feed: tokio::sync::broadcast::Receiver<Arc<Commit>>,
    hubs: Arc<Mutex<HashMap<String, Arc<Hub>>>>,
) {
    loop {
        match feed.recv().await {
            Ok(commit) => hub.on_commit(&commit),
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(tenant = %hub.tenant.id(), missed, "realtime lagged behind the commit feed");
                hub.on_lag();
            }
            Err(RecvError::Closed) => break,
        }
    }
    hub.gone.send_replace(true);
    let mut hubs = hubs.lock().unwrap_or_else(PoisonError::into_inner);
    if hubs.get(hub.tenant.id().as_str()).is_some_and(|h| Arc::ptr_eq(h, &hub)) {
        hubs.remove(hub.tenant.id().as_str());
    }
}

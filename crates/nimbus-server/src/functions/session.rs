//! [`DataSession`]: one invocation's data access. A query reads one engine [`Snapshot`] and
//! records its read set. A mutation's first attempt buffers its leading inserts (ids minted at
//! once) and commits them as one ordinary write of the tenant's writer, which folds it into a
//! group commit; its first other operation moves it onto a transaction lent by the writer
//! (the buffered inserts replayed first), where its reads, writes and jobs commit together.
//! An insert that cannot be replayed voids the attempt, and the next one starts on the writer.
//! An action has no data access of its own and reaches other functions and the scheduler
//! asynchronously.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nimbus_core::NimbusError;
use nimbus_core::limits::{FUNCTION_MAX_DOCUMENTS_READ, FUNCTION_MAX_DOCUMENTS_WRITTEN, FUNCTION_MAX_SCHEDULED_JOBS};
use nimbus_engine::Tenant;
use nimbus_engine::tenant::{LentTransaction, Snapshot, Target};
use nimbus_functions::{Call, CallRequest, Caller, Completion, Ending, Finish, Functions, Kind, Session};
use nimbus_scheduler::Scheduler;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ops::{self, Done, NewDocument};
use super::{NimbusFunctions, NimbusHost, Trace};

/// How an invocation reaches the tenant's data.
enum Access {
    /// A query's snapshot.
    Snapshot(Snapshot),
    /// A mutation's writes.
    Mutation(Writes),
    /// An action: none.
    None,
}

/// Where a mutation's writes are.
enum Writes {
    /// Nothing reached the writer yet. On an optimistic attempt, inserts are buffered here;
    /// otherwise the first operation opens the transaction.
    Pending { inserts: Vec<NewDocument>, optimistic: bool },
    /// On a transaction lent by the writer.
    Lent(LentTransaction),
    /// The buffered inserts could not be replayed: every operation fails and the attempt ends
    /// with [`Ending::Retry`].
    Void,
}

/// One invocation's data side.
pub struct DataSession {
    tenant: Arc<Tenant>,
    call: Call,
    access: Access,
    scheduler: Arc<Scheduler>,
    functions: Arc<NimbusFunctions>,
    runtime: tokio::runtime::Handle,
    read: usize,
    written: usize,
    jobs: usize,
    /// Whether the transaction created jobs (the scheduler is woken after it commits).
    scheduled: bool,
}

impl DataSession {
    pub(super) fn open(
        tenant: Arc<Tenant>,
        call: Call,
        scheduler: Arc<Scheduler>,
        functions: Arc<NimbusFunctions>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, NimbusError> {
        let access = match call.kind {
            Kind::Query => Access::Snapshot(runtime.block_on(tenant.snapshot())?),
            // A scheduled mutation checks its execution id first: it starts on the writer.
            Kind::Mutation => Access::Mutation(Writes::Pending {
                inserts: Vec::new(),
                optimistic: call.attempt == 0 && call.execution_id.is_none(),
            }),
            Kind::Action => Access::None,
        };
        Ok(Self { tenant, call, access, scheduler, functions, runtime, read: 0, written: 0, jobs: 0, scheduled: false })
    }

    /// The mutation's transaction, opened on first use with the buffered inserts replayed
    /// in it. When one of them fails, the attempt is void (JavaScript saw it succeed).
    fn transaction(&mut self) -> Result<&mut LentTransaction, NimbusError> {
        let Access::Mutation(writes) = &mut self.access else {
            return Err(NimbusError::invalid_request("this function kind has no transaction"));
        };
        if let Writes::Pending { inserts, .. } = writes {
            let inserts = std::mem::take(inserts);
            let mut lent = self.tenant.lend_transaction(&self.runtime, self.call.deadline);
            let replayed = inserts.is_empty() || lent.run(move |tx| insert_all(tx, inserts)).is_ok();
            *writes = if replayed { Writes::Lent(lent) } else { Writes::Void };
        }
        match writes {
            Writes::Lent(lent) => Ok(lent),
            _ => Err(voided()),
        }
    }

    /// Counts what an operation read and wrote against the invocation's caps.
    fn count(&mut self, done: Done) -> Result<Value, NimbusError> {
        self.read += done.read;
        self.written += done.written;
        if self.read > FUNCTION_MAX_DOCUMENTS_READ {
            return Err(NimbusError::cap_exceeded(
                "documents_read",
                self.read as u64,
                FUNCTION_MAX_DOCUMENTS_READ as u64,
            ));
        }
        if self.written > FUNCTION_MAX_DOCUMENTS_WRITTEN {
            return Err(NimbusError::cap_exceeded(
                "documents_written",
                self.written as u64,
                FUNCTION_MAX_DOCUMENTS_WRITTEN as u64,
            ));
        }
        Ok(done.value)
    }

    /// Validates a scheduled function target and returns its job target and due time.
    fn job(&mut self, name: &str, body: Value) -> Result<(Target, i64), NimbusError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Schedule {
            #[serde(default)]
            ms: Option<f64>,
            #[serde(default)]
            at: Option<f64>,
            name: String,
            #[serde(default)]
            args: Option<Value>,
        }
        let Schedule { ms, at, name: function, args } =
            serde_json::from_value(body).map_err(|e| NimbusError::invalid_input(name, format!("bad payload: {e}")))?;
        self.jobs += 1;
        if self.jobs > FUNCTION_MAX_SCHEDULED_JOBS {
            return Err(NimbusError::cap_exceeded(
                "scheduled_jobs",
                self.jobs as u64,
                FUNCTION_MAX_SCHEDULED_JOBS as u64,
            ));
        }
        let args = args.unwrap_or_else(|| json!({}));
        let deployment = self.runtime.block_on(self.functions.deployment(&self.call.tenant))?;
        let info = deployment.function(&function)?;
        Functions::<NimbusHost>::expect_kind(info, &[Kind::Mutation, Kind::Action])?;
        self.functions.check_args(info, &args)?;
        let now = self.scheduler.now_ms();
        let run_at = match (ms, at) {
            (Some(ms), None) => now.saturating_add(ms.max(0.0) as i64),
            (None, Some(at)) => at as i64,
            _ => return Err(NimbusError::invalid_input(name, "give exactly one of ms and at")),
        };
        Ok((Target::Function { name: function, args }, run_at))
    }
}

impl Session for DataSession {
    type Trace = Trace;

    fn already_executed(&mut self) -> Result<bool, NimbusError> {
        let Some(execution) = self.call.execution_id.clone() else { return Ok(false) };
        if !matches!(self.access, Access::Mutation(_)) {
            return Ok(false);
        }
        self.transaction()?.run(move |tx| tx.record_execution(&execution))
    }

    fn op(&mut self, name: &str, payload: Value) -> Result<Value, NimbusError> {
        match &mut self.access {
            Access::Snapshot(snapshot) => {
                let done = ops::read(snapshot, name, payload)?;
                self.count(done)
            }
            Access::Mutation(Writes::Void) => Err(voided()),
            Access::Mutation(Writes::Pending { inserts, optimistic: true }) if name == "db.insert" => {
                let insert = NewDocument::parse(payload)?;
                let id = Value::from(insert.id().as_str());
                inserts.push(insert);
                self.count(Done::wrote(id))
            }
            Access::Mutation(_) => match name {
                "scheduler.runAfter" | "scheduler.runAt" => {
                    let (target, run_at) = self.job(name, payload)?;
                    self.scheduler.prepare_jobs(&self.tenant)?;
                    self.scheduled = true;
                    let now = self.scheduler.now_ms();
                    let id = self.transaction()?.run(move |tx| tx.schedule_job(target, run_at, now))?;
                    Ok(Value::from(id))
                }
                "scheduler.cancel" => {
                    let job_id = job_id(&payload)?;
                    let now = self.scheduler.now_ms();
                    self.transaction()?.run(move |tx| tx.cancel_job(&job_id, now))?;
                    Ok(Value::Null)
                }
                _ => {
                    let name = name.to_owned();
                    let done = self.transaction()?.run(move |tx| ops::apply(tx, &name, payload))?;
                    self.count(done)
                }
            },
            Access::None => Err(NimbusError::invalid_request(format!("{name} is not available in an action"))),
        }
    }

    fn start(&mut self, name: &str, payload: Value, done: Completion) {
        let functions = self.functions.clone();
        let scheduler = self.scheduler.clone();
        let tenant = self.tenant.clone();
        let parent = self.call.clone();
        let job = match name {
            "scheduler.runAfter" | "scheduler.runAt" => Some(self.job(name, payload.clone())),
            _ => None,
        };
        let name = name.to_owned();
        self.runtime.spawn(async move {
            let outcome = match (name.as_str(), job) {
                (_, Some(Err(error))) => Err(error),
                (_, Some(Ok((target, run_at)))) => {
                    let after = u64::try_from(run_at.saturating_sub(scheduler.now_ms())).unwrap_or(0);
                    scheduler.schedule_job(&tenant, target, after).await.map(Value::from)
                }
                ("scheduler.cancel", None) => match job_id(&payload) {
                    Ok(id) => scheduler.cancel_job(&tenant, &id).await.map(|()| Value::Null),
                    Err(e) => Err(e),
                },
                (run, None) => nested(&functions, &parent, run, payload).await,
            };
            done(outcome);
        });
    }

    fn finish(self, success: bool, then: Finish<Trace>) {
        match self.access {
            Access::Snapshot(snapshot) => {
                then(Ok(Ending::Finished(success.then(|| (snapshot.sequence(), snapshot.into_reads())))));
            }
            Access::Mutation(Writes::Void) => then(Ok(Ending::Retry)),
            Access::Mutation(Writes::Pending { inserts, .. }) if success && !inserts.is_empty() => {
                commit_buffered(&self.tenant, inserts, then);
            }
            Access::Mutation(Writes::Lent(lent)) if success => {
                let (committed, scheduled, scheduler, tenant) =
                    (lent.commit(), self.scheduled, self.scheduler, self.tenant);
                self.runtime.spawn(async move {
                    let outcome = committed.await;
                    if outcome.is_ok() && scheduled {
                        scheduler.jobs_committed(&tenant);
                    }
                    then(outcome.map(|_| Ending::Finished(None)));
                });
            }
            // Dropping a lent transaction rolls it back; buffered inserts are dropped.
            Access::Mutation(_) | Access::None => then(Ok(Ending::Finished(None))),
        }
    }
}

/// Commits a first attempt's buffered inserts as one write of the tenant's writer, which
/// hands `then` the outcome once durable. `Retry` when one of them fails (the next attempt
/// meets its error where JavaScript can see it).
fn commit_buffered(tenant: &Tenant, inserts: Vec<NewDocument>, then: Finish<Trace>) {
    let failed = Arc::new(AtomicBool::new(false));
    let noted = failed.clone();
    tenant.transact_then(
        move |tx| insert_all(tx, inserts).inspect_err(|_| noted.store(true, Ordering::Relaxed)),
        Box::new(move |committed| {
            then(match committed {
                Ok(_) => Ok(Ending::Finished(None)),
                Err(_) if failed.load(Ordering::Relaxed) => Ok(Ending::Retry),
                Err(error) => Err(error),
            });
        }),
    );
}

/// Applies buffered inserts in order.
fn insert_all(
    tx: &mut nimbus_engine::transaction::Transaction<'_>,
    inserts: Vec<NewDocument>,
) -> Result<(), NimbusError> {
    inserts.into_iter().try_for_each(|insert| insert.insert(tx).map(|_| ()))
}

/// What every operation of a voided attempt answers (JavaScript may catch it; the attempt's
/// outcome is discarded anyway).
fn voided() -> NimbusError {
    NimbusError::conflict("transaction_conflict", "this attempt at the mutation was voided; it runs again", Value::Null)
}

fn job_id(payload: &Value) -> Result<String, NimbusError> {
    payload
        .get("jobId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| NimbusError::invalid_input("jobId", "is required"))
}

/// `ctx.runQuery/runMutation/runAction`: a separate invocation one level deeper.
async fn nested(functions: &NimbusFunctions, parent: &Call, op: &str, payload: Value) -> Result<Value, NimbusError> {
    let expected = match op {
        "run.query" => Kind::Query,
        "run.mutation" => Kind::Mutation,
        "run.action" => Kind::Action,
        _ => return Err(NimbusError::invalid_input(op, "unknown operation")),
    };
    let name = payload.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let args = payload.get("args").cloned().unwrap_or_else(|| json!({}));
    let info = functions.deployment(&parent.tenant).await?.function(&name)?.clone();
    Functions::<NimbusHost>::expect_kind(&info, &[expected])?;
    let request = CallRequest {
        tenant: parent.tenant.clone(),
        name,
        args,
        caller: Caller::Function { depth: parent.depth + 1, call_path: parent.call_path.clone() },
        request_id: parent.request_id.clone(),
    };
    functions.call(request).await.map(|called| called.value)
}

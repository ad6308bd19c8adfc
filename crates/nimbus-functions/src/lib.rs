//! Nimbus functions: tenants' JavaScript and TypeScript modules, deployed per tenant and run in
//! QuickJS isolates on dedicated worker threads.
//!
//! # Layout
//! - [`Functions`] (this file): the per-server registry: each tenant's active deployment, its
//!   invocation slots and its pool of idle isolates; [`Functions::call`] runs one invocation.
//! - `deploy`: compiling a deploy (through `nimbus-modules`) and discovering its functions.
//! - `runtime/`: isolates, the host object, budgets, module loading, worker threads.
//! - [`host`]: [`Host`] and [`Session`], the seam to the data the functions read and write
//!   (implemented by the server on the engine and the scheduler).
//! - [`deployment`]: a deployment and its stored form. [`validator`]: `v.*` descriptors.
//! - `outcome`: JavaScript's result or failure as the call's answer or catalogued error.
//! - `prelude/`: the JavaScript every isolate evaluates (the authoring API); `prelude/ABI.md`
//!   is the contract between it and the runtime.
//!
//! This crate depends on no Nimbus crate but `nimbus-core` (vocabulary) and `nimbus-modules`
//! (compilation): it knows neither the engine nor HTTP.

pub mod config;
pub mod deploy;
pub mod deployment;
pub mod host;
mod outcome;
mod runtime;
pub mod validator;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use nimbus_core::limits::FUNCTION_MAX_ATTEMPTS;
use nimbus_core::{ErrorCode, NimbusError};
use serde_json::Value;
use tokio::sync::oneshot;

pub use config::Limits;
pub use deployment::{Deployment, FunctionInfo, Kind, StoredDeployment, Visibility};
pub use host::{Call, Completion, Ending, Finish, Host, Session};

use outcome::Failing;
use runtime::isolate::Isolate;
use runtime::slots::Slots;
use runtime::workers::{Job, Workers};

/// Who is calling, which decides visibility checks, slots and call-tree depth.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A client over HTTP or WebSocket: public functions only.
    Client,
    /// Another function (`ctx.run*`), at `depth` with the names above it.
    Function {
        /// Depth of the new invocation.
        depth: u32,
        /// Names of the calls above it, outermost first.
        call_path: Vec<String>,
    },
    /// The scheduler running a job or cron with this execution id.
    Scheduler {
        /// The execution id its transaction records (mutations).
        execution_id: String,
    },
}

/// One call request.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The tenant.
    pub tenant: String,
    /// The function.
    pub name: String,
    /// Its arguments (must be an object).
    pub args: Value,
    /// Who calls.
    pub caller: Caller,
    /// For log lines.
    pub request_id: String,
}

/// A finished call.
#[derive(Debug)]
pub struct Called<T> {
    /// The return value.
    pub value: Value,
    /// The deployment version that ran it.
    pub version: i64,
    /// What the invocation left behind (a query's read set).
    pub trace: T,
}

/// One tenant's functions: the active deployment, slots, idle isolates.
struct TenantFunctions<S: Session> {
    /// The active deployment; `None` until loaded from the host.
    deployment: Mutex<Option<Arc<Deployment>>>,
    slots: Arc<Slots>,
    /// Idle isolates of the active deployment (version, isolate).
    idle: Mutex<Vec<(i64, Isolate<S>)>>,
}

/// The per-server functions registry.
pub struct Functions<H: Host> {
    host: Arc<H>,
    limits: Limits,
    workers: Workers,
    tenants: Mutex<HashMap<String, Arc<TenantFunctions<H::Session>>>>,
}

impl<H: Host> Functions<H> {
    /// A registry serving `host`'s data under `limits`.
    pub fn new(host: Arc<H>, limits: Limits) -> Arc<Self> {
        Arc::new(Self { host, limits, workers: Workers::default(), tenants: Mutex::new(HashMap::new()) })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn tenant(&self, tenant: &str) -> Arc<TenantFunctions<H::Session>> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        tenants
            .entry(tenant.to_owned())
            .or_insert_with(|| {
                Arc::new(TenantFunctions {
                    deployment: Mutex::new(None),
                    slots: Slots::new(self.limits.concurrency, self.limits.queue),
                    idle: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    /// Runs blocking `work` on a function worker thread and awaits its result.
    pub(crate) async fn on_worker<T, F>(&self, work: F) -> Result<T, NimbusError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, NimbusError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.workers.run(Box::new(move || {
            let _ = reply.send(work());
        }));
        answered(answer).await
    }

    /// The tenant's active deployment (the empty one before its first deploy).
    pub async fn deployment(&self, tenant: &str) -> Result<Arc<Deployment>, NimbusError> {
        let state = self.tenant(tenant);
        if let Some(deployment) = state.deployment.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(deployment);
        }
        let host = self.host.clone();
        let id = tenant.to_owned();
        let loaded = self
            .on_worker(move || match host.load(&id)? {
                Some(stored) => Deployment::from_stored(&stored),
                None => Ok(Deployment::empty()),
            })
            .await?;
        let mut slot = state.deployment.lock().unwrap_or_else(PoisonError::into_inner);
        // A deploy that activated meanwhile is newer than what was read.
        match slot.as_ref() {
            Some(current) if current.version >= loaded.version => Ok(current.clone()),
            _ => {
                let loaded = Arc::new(loaded);
                *slot = Some(loaded.clone());
                Ok(loaded)
            }
        }
    }

    /// Makes `deployment` the tenant's active one (after its deploy committed). In-flight
    /// invocations finish on the code they started with; idle isolates of older versions are
    /// dropped.
    pub fn activate(&self, tenant: &str, deployment: Arc<Deployment>) {
        let state = self.tenant(tenant);
        {
            let mut slot = state.deployment.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.as_ref().is_some_and(|current| current.version >= deployment.version) {
                return;
            }
            *slot = Some(deployment.clone());
        }
        state.idle.lock().unwrap_or_else(PoisonError::into_inner).retain(|(v, _)| *v == deployment.version);
    }

    /// Forgets a tenant (deleted): its deployment cache and idle isolates.
    pub fn forget(&self, tenant: &str) {
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner).remove(tenant);
    }

    /// Looks up a function a client may call or subscribe to: 404 when absent, 403 when
    /// internal.
    pub async fn public_function(&self, tenant: &str, name: &str) -> Result<FunctionInfo, NimbusError> {
        let deployment = self.deployment(tenant).await?;
        let info = deployment.function(name)?;
        if info.visibility == Visibility::Internal {
            return Err(outcome::internal_forbidden(name));
        }
        Ok(info.clone())
    }

    /// Checks `args` against a function's validator (400 `function.invalid_args`).
    pub fn check_args(&self, info: &FunctionInfo, args: &Value) -> Result<(), NimbusError> {
        outcome::check_args(info, args)
    }

    /// 400 `op.invalid_input` naming the function's kind, when it is not `expected`.
    pub fn expect_kind(info: &FunctionInfo, expected: &[Kind]) -> Result<(), NimbusError> {
        if expected.contains(&info.kind) {
            return Ok(());
        }
        let names: Vec<&str> = expected.iter().map(|k| k.with_article()).collect();
        Err(outcome::wrong_kind(&info.name, info.kind, &names.join(" or ")))
    }

    /// Runs one invocation to completion.
    pub async fn call(&self, request: CallRequest) -> Result<Called<<H::Session as Session>::Trace>, NimbusError> {
        let deployment = self.deployment(&request.tenant).await?;
        let info = deployment.function(&request.name)?.clone();
        let (depth, call_path, execution_id) = match &request.caller {
            Caller::Client => {
                if info.visibility == Visibility::Internal {
                    return Err(outcome::internal_forbidden(&info.name));
                }
                (0, vec![info.name.clone()], None)
            }
            Caller::Function { depth, call_path } => {
                let mut path = call_path.clone();
                path.push(info.name.clone());
                (*depth, path, None)
            }
            Caller::Scheduler { execution_id } => (0, vec![info.name.clone()], Some(execution_id.clone())),
        };
        if depth > self.limits.max_nested_calls {
            return Err(NimbusError::cap_exceeded(
                "nested_calls",
                u64::from(depth),
                u64::from(self.limits.max_nested_calls),
            ));
        }
        outcome::check_args(&info, &request.args)?;
        let state = self.tenant(&request.tenant);
        let deadline = Instant::now() + self.limits.wall;
        let args = Arc::new(request.args.to_string());
        for attempt in 0..FUNCTION_MAX_ATTEMPTS {
            let call = Call {
                tenant: request.tenant.clone(),
                name: info.name.clone(),
                kind: info.kind,
                depth,
                call_path: call_path.clone(),
                request_id: request.request_id.clone(),
                execution_id: execution_id.clone(),
                deadline,
                attempt,
            };
            let (host, limits, tenant, deployment, function, args) =
                (self.host.clone(), self.limits.clone(), state.clone(), deployment.clone(), info.clone(), args.clone());
            let (reply, answer) = oneshot::channel();
            let job: Job =
                Box::new(move || run_attempt(&host, &tenant, (&deployment, &function), &call, &args, &limits, reply));
            // Nested calls run inside their root's slot: taking another could deadlock the tree.
            if depth == 0 {
                state.slots.run(&self.workers, job)?;
            } else {
                self.workers.run(job);
            }
            match answered(answer).await? {
                Ending::Finished(called) => return Ok(called),
                Ending::Retry => {
                    tracing::debug!(function = %info.name, attempt, "invocation attempt voided; running it again");
                }
            }
        }
        Err(NimbusError::conflict(
            "transaction_conflict",
            format!("{} did not commit in {FUNCTION_MAX_ATTEMPTS} attempts", info.name),
            serde_json::json!({ "attempts": FUNCTION_MAX_ATTEMPTS }),
        ))
    }
}

/// A worker job's result; `service.internal` when the job was dropped.
async fn answered<T>(answer: oneshot::Receiver<Result<T, NimbusError>>) -> Result<T, NimbusError> {
    answer.await.map_err(|_| {
        tracing::error!("a function worker dropped its job");
        NimbusError::internal()
    })?
}

/// What an attempt's outcome is sent on: the invocation, or a voided attempt.
type AttemptReply<T> = oneshot::Sender<Result<Ending<Called<T>>, NimbusError>>;

/// One attempt at an invocation, on a worker thread in the tenant's slot (its root's, when
/// nested). The outcome goes to `reply` once the session ended, which for a mutation is when
/// its commit is durable: the writer's thread sends it, and the worker has gone on. An attempt
/// whose caller left while it waited for a slot is skipped.
fn run_attempt<H: Host>(
    host: &Arc<H>,
    state: &TenantFunctions<H::Session>,
    (deployment, info): (&Arc<Deployment>, &FunctionInfo),
    call: &Call,
    args: &str,
    limits: &Limits,
    reply: AttemptReply<<H::Session as Session>::Trace>,
) {
    if reply.is_closed() {
        return;
    }
    let (result, session) = match invoke(host, state, (deployment, info), call, args, limits) {
        Ok(ran) => ran,
        Err(error) => {
            let _ = reply.send(Err(error));
            return;
        }
    };
    let version = deployment.version;
    let succeeded = result.is_ok();
    session.finish(
        succeeded,
        Box::new(move |ending| {
            // A voided attempt's outcome is not the invocation's; otherwise JavaScript's error
            // comes before the commit's.
            let outcome = match ending {
                Ok(Ending::Finished(trace)) => result.map(|value| Ending::Finished(Called { value, version, trace })),
                Ok(Ending::Retry) => Ok(Ending::Retry),
                Err(error) => result.and(Err(error)),
            };
            let _ = reply.send(outcome);
        }),
    );
}

/// Runs JavaScript for one attempt and returns its outcome with the session, still to be
/// finished. The tenant's slot is held meanwhile; waiting for a mutation's commit to become
/// durable executes nothing and holds none.
fn invoke<H: Host>(
    host: &Arc<H>,
    state: &TenantFunctions<H::Session>,
    (deployment, info): (&Arc<Deployment>, &FunctionInfo),
    call: &Call,
    args: &str,
    limits: &Limits,
) -> Result<(Result<Value, NimbusError>, H::Session), NimbusError> {
    let mut session = host.open(call)?;
    if call.execution_id.is_some() && session.already_executed()? {
        return Ok((Ok(Value::Null), session));
    }
    let mut isolate = match take_idle(state, deployment.version) {
        Some(isolate) => isolate,
        None => Isolate::new(Arc::new(deployment.modules.clone()), limits.memory_bytes).map_err(|failure| {
            tracing::error!(?failure, "cannot create a function isolate");
            NimbusError::new(ErrorCode::ServiceInternal, "could not start a function isolate", None)
        })?,
    };
    isolate.budget().arm(limits.cpu_for(info.kind), call.deadline);
    let tags = [call.tenant.clone(), call.name.clone(), call.request_id.clone()];
    let (raw, active) = isolate.invoke((&info.module, &info.export), info.kind, args, (session, tags));
    isolate.budget().disarm();
    if isolate.reusable() {
        let mut idle = state.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < nimbus_core::limits::FUNCTION_IDLE_ISOLATES_PER_TENANT {
            idle.push((deployment.version, isolate));
        }
    }
    let logs: Vec<String> = active.logs.iter().cloned().collect();
    let result = outcome::settle(raw, Failing { info, logs, call_path: &call.call_path, limits });
    Ok((result, active.session))
}

/// An idle isolate of this deployment version, if one is pooled.
fn take_idle<S: Session>(state: &TenantFunctions<S>, version: i64) -> Option<Isolate<S>> {
    let mut idle = state.idle.lock().unwrap_or_else(PoisonError::into_inner);
    let at = idle.iter().position(|(v, _)| *v == version)?;
    Some(idle.swap_remove(at).1)
}

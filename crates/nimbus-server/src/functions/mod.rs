//! Functions in the server: [`NimbusHost`], the [`Host`] the functions runtime runs on (each
//! invocation's data access through the engine and the scheduler, in `session.rs`; the
//! operations' payloads in `ops.rs`), the scheduler's [`FunctionRunner`], and deploys
//! (`deploy.rs`: schema.ts, warnings, the transaction that stores a deployment).

mod deploy;
mod ops;
mod session;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};

use nimbus_core::NimbusError;
use nimbus_core::ids::TenantId;
use nimbus_engine::read_set::ReadSet;
use nimbus_engine::tenant::Target;
use nimbus_engine::{Engine, Tenant};
use nimbus_functions::{CallRequest, Caller, Functions, Host, Kind, StoredDeployment};
use nimbus_realtime::{Evaluated, Evaluation, FunctionEvaluator};
use nimbus_scheduler::Scheduler;
use nimbus_scheduler::scheduler::FunctionRunner;
use serde_json::Value;

pub use deploy::{DeployOutcome, deploy};
pub use session::DataSession;

/// The functions registry of this server.
pub type NimbusFunctions = Functions<NimbusHost>;

/// The host of this server's functions: the engine, the scheduler, and the runtime handle
/// blocking worker threads use to reach async code.
pub struct NimbusHost {
    engine: Arc<Engine>,
    scheduler: Arc<Scheduler>,
    runtime: tokio::runtime::Handle,
    /// The registry, for nested calls (set right after it is built).
    functions: OnceLock<Weak<NimbusFunctions>>,
}

impl NimbusHost {
    /// Builds the registry over `engine` and `scheduler` and installs it as the scheduler's
    /// runner of function targets.
    pub fn start(
        engine: Arc<Engine>,
        scheduler: Arc<Scheduler>,
        limits: nimbus_functions::Limits,
    ) -> Arc<NimbusFunctions> {
        let host = Arc::new(NimbusHost {
            engine,
            scheduler: scheduler.clone(),
            runtime: tokio::runtime::Handle::current(),
            functions: OnceLock::new(),
        });
        let functions = Functions::new(host.clone(), limits);
        let _ = host.functions.set(Arc::downgrade(&functions));
        scheduler.set_function_runner(Arc::new(Runner(Arc::downgrade(&functions))));
        functions
    }

    fn tenant(&self, id: &str) -> Result<Arc<Tenant>, NimbusError> {
        self.engine.tenant(&TenantId::parse(id, "tenant_id")?)
    }
}

impl Host for NimbusHost {
    type Session = DataSession;

    fn open(&self, call: &nimbus_functions::Call) -> Result<DataSession, NimbusError> {
        let tenant = self.tenant(&call.tenant)?;
        let functions = self.functions.get().and_then(Weak::upgrade).ok_or_else(NimbusError::internal)?;
        DataSession::open(tenant, call.clone(), self.scheduler.clone(), functions, self.runtime.clone())
    }

    fn load(&self, tenant: &str) -> Result<Option<StoredDeployment>, NimbusError> {
        let tenant = self.tenant(tenant)?;
        let stored = self.runtime.block_on(tenant.function_set())?;
        Ok(stored.map(|s| StoredDeployment { version: s.version, deployed_at: s.deployed_at, body: s.body }))
    }
}

/// Runs the scheduler's function targets: mutations and actions, internal ones included.
struct Runner(Weak<NimbusFunctions>);

impl FunctionRunner for Runner {
    fn run(
        &self,
        tenant: Arc<Tenant>,
        name: String,
        args: Value,
        execution_id: String,
    ) -> Pin<Box<dyn Future<Output = Result<Value, NimbusError>> + Send + '_>> {
        Box::pin(async move {
            let functions = self.0.upgrade().ok_or_else(NimbusError::internal)?;
            let info = functions.deployment(tenant.id().as_str()).await?.function(&name)?.clone();
            Functions::<NimbusHost>::expect_kind(&info, &[Kind::Mutation, Kind::Action])?;
            let request = CallRequest {
                tenant: tenant.id().as_str().to_owned(),
                name,
                args,
                caller: Caller::Scheduler { execution_id },
                request_id: format!("scheduler-{}", nimbus_core::ids::mint_ulid()),
            };
            Ok(functions.call(request).await?.value)
        })
    }

    fn is_action(&self, tenant: Arc<Tenant>, name: String) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            let Some(functions) = self.0.upgrade() else { return false };
            match functions.deployment(tenant.id().as_str()).await {
                Ok(deployment) => deployment.functions.get(&name).is_some_and(|f| f.kind == Kind::Action),
                Err(_) => false,
            }
        })
    }
}

/// Checks a job or cron target against the tenant's deployment: a function target must name a
/// mutation or action (404 `function.not_found`, 400 for a query) whose validator takes its
/// args (400 `function.invalid_args`). Data targets pass.
pub async fn check_target(functions: &NimbusFunctions, tenant: &Tenant, target: &Target) -> Result<(), NimbusError> {
    let Target::Function { name, args } = target else { return Ok(()) };
    let deployment = functions.deployment(tenant.id().as_str()).await?;
    let info = deployment.function(name)?;
    Functions::<NimbusHost>::expect_kind(info, &[Kind::Mutation, Kind::Action])?;
    functions.check_args(info, args)
}

/// What a finished invocation hands its caller: a query's snapshot sequence and read set.
pub type Trace = Option<(u64, ReadSet)>;

/// Runs function subscriptions for the realtime hubs: the subscriber's checks (public, a
/// query, valid args), then one invocation whose read set decides later re-runs.
pub struct SubscriptionRunner(pub Weak<NimbusFunctions>);

impl FunctionEvaluator for SubscriptionRunner {
    fn evaluate(&self, tenant: Arc<Tenant>, name: String, args: Value) -> Evaluation {
        let functions = self.0.clone();
        Box::pin(async move {
            let functions = functions.upgrade().ok_or_else(NimbusError::internal)?;
            let info = functions.public_function(tenant.id().as_str(), &name).await?;
            Functions::<NimbusHost>::expect_kind(&info, &[Kind::Query])?;
            let request = CallRequest {
                tenant: tenant.id().as_str().to_owned(),
                name,
                args,
                caller: Caller::Client,
                request_id: format!("subscription-{}", nimbus_core::ids::mint_ulid()),
            };
            let called = functions.call(request).await?;
            let (sequence, reads) = called.trace.unwrap_or_default();
            Ok(Evaluated { data: called.value.to_string(), sequence, reads })
        })
    }
}

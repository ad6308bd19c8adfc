//! [`Scheduler`]: the per-server loop that runs due jobs and fires crons, and the verbs that
//! create and change them (so every change wakes the loop).
//!
//! Which tenants have work is kept in memory: at start-up [`Scheduler::recover`] opens every
//! registered tenant once (moving interrupted jobs back to `pending`) and remembers those with
//! pending jobs or enabled crons; afterwards a tenant joins the set when a job or cron is
//! created or changed, and leaves it when a pass finds nothing left to do.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use nimbus_core::NimbusError;
use nimbus_core::ids::TenantId;
use nimbus_core::limits::{
    FINISHED_JOB_RETENTION_MS, SCHEDULER_JOBS_PER_PASS, SCHEDULER_MAX_INFRA_ATTEMPTS, SCHEDULER_MAX_SLEEP_MS,
};
use nimbus_engine::tenant::{Cron, Firing, Target, cron_execution_id, is_transient, job_execution_id};
use nimbus_engine::{Engine, Tenant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::schedule::Schedule;

/// How long a tenant whose pass failed (storage trouble) waits before the next try.
const RETRY_AFTER_ERROR_MS: i64 = 1_000;
/// How often finished jobs are purged.
const PURGE_EVERY_MS: i64 = 60 * 60 * 1000;

/// Test-only crash points, from `NIMBUS_TEST_FAULT`: the process aborts there (once, since it
/// ends). Used by the black-box suite to prove exactly-once effects across `kill -9`-like ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// After a job's claim committed, before its target runs.
    CrashAfterClaim,
    /// After a job's target committed, before the job is marked completed.
    CrashAfterCommit,
}

impl Fault {
    fn from_env() -> Self {
        match std::env::var("NIMBUS_TEST_FAULT").as_deref() {
            Ok("crash_after_claim") => Fault::CrashAfterClaim,
            Ok("crash_after_commit") => Fault::CrashAfterCommit,
            _ => Fault::None,
        }
    }

    fn hit(self, point: Fault) {
        if self == point && point != Fault::None {
            eprintln!("test fault: aborting at {point:?}");
            std::process::abort();
        }
    }
}

/// Runs function targets. The scheduler stores and times them; the functions runtime (which
/// this crate does not know) runs them. A mutation runs with `execution_id` recorded in its own
/// transaction, so a re-run after a crash finds it and writes nothing twice; an action simply
/// runs again (at least once).
pub trait FunctionRunner: Send + Sync {
    /// Runs function `name` of `tenant` with `args`; resolves to its return value.
    fn run(
        &self,
        tenant: Arc<Tenant>,
        name: String,
        args: serde_json::Value,
        execution_id: String,
    ) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, NimbusError>> + Send + '_>>;

    /// Whether `name` is an action of `tenant` (actions run beside later jobs instead of
    /// before them; a lookup failure answers `false`, and the run reports it).
    fn is_action(&self, tenant: Arc<Tenant>, name: String) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// A partial change to a cron (PATCH); `None` leaves a part as it is.
#[derive(Debug, Default)]
pub struct CronChange {
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// A new schedule (recomputes `next_run` from now).
    pub schedule: Option<Schedule>,
    /// A new target.
    pub target: Option<Target>,
}

/// The per-server scheduler.
pub struct Scheduler {
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    /// Tenants with pending jobs or enabled crons. A std mutex: held briefly, never across await.
    active: Mutex<BTreeSet<String>>,
    /// Tenants that had scheduling rows since start-up (retention runs over them).
    known: Mutex<BTreeSet<String>>,
    /// Tenants marked in the engine's scheduling index (so creating work marks once).
    marked: Mutex<BTreeSet<String>>,
    wake: Notify,
    stopping: AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
    fault: Fault,
    /// Runs function targets; set once at start-up (functions are built after the scheduler).
    functions: OnceLock<Arc<dyn FunctionRunner>>,
}

impl Scheduler {
    /// A scheduler over `engine`, reading time from `clock`. Call [`Scheduler::recover`], then
    /// [`Scheduler::start`].
    pub fn new(engine: Arc<Engine>, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            engine,
            clock,
            active: Mutex::new(BTreeSet::new()),
            known: Mutex::new(BTreeSet::new()),
            marked: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            task: Mutex::new(None),
            fault: Fault::from_env(),
            functions: OnceLock::new(),
        })
    }

    /// Installs the runner of function targets (once; later calls are ignored).
    pub fn set_function_runner(&self, runner: Arc<dyn FunctionRunner>) {
        let _ = self.functions.set(runner);
    }

    /// Marks `tenant` as one that may hold jobs, before a job is written inside a transaction
    /// the caller runs itself (a mutation function's `ctx.scheduler`); after that transaction
    /// commits, call [`Scheduler::jobs_committed`].
    pub fn prepare_jobs(&self, tenant: &Tenant) -> Result<(), NimbusError> {
        self.mark(tenant)
    }

    /// Wakes the loop for jobs a caller's own transaction just committed.
    pub fn jobs_committed(&self, tenant: &Tenant) {
        self.touch(tenant);
    }

    /// The scheduler's now, epoch ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Recovery, before serving, over the tenants the engine's scheduling index names (not
    /// every tenant: start-up stays flat in the number of tenants without scheduled work): their
    /// `running` jobs go back to `pending` with `run_at = now`, finished jobs past retention are
    /// purged, tenants with pending jobs or enabled crons are remembered, and a tenant found
    /// with no job and no cron leaves the index. A tenant that cannot be opened is logged and
    /// skipped.
    pub async fn recover(&self) {
        let now = self.now_ms();
        let candidates = tokio::task::block_in_place(|| self.engine.scheduling_tenants()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the scheduling index; looking at every tenant");
            self.engine.tenant_ids()
        });
        for id in candidates {
            let Some(tenant) = self.open(&id) else { continue };
            let recovered = async {
                let moved = tenant.recover_jobs(now).await?;
                if moved > 0 {
                    tracing::info!(tenant = %id, jobs = moved, "interrupted scheduled jobs will run again");
                }
                tenant.purge_finished_jobs(now - FINISHED_JOB_RETENTION_MS).await?;
                Ok::<_, NimbusError>((tenant.next_due().await?, tenant.has_scheduling_rows().await?))
            };
            match recovered.await {
                Ok((due, has_rows)) => {
                    if due.is_some() {
                        self.lock(&self.active).insert(id.clone());
                    }
                    if has_rows {
                        self.lock(&self.known).insert(id.clone());
                        self.lock(&self.marked).insert(id);
                    } else if let Err(e) = tokio::task::block_in_place(|| self.engine.clear_scheduling(&id)) {
                        tracing::warn!(tenant = %id, error = %e, "cannot clear the scheduling mark");
                    }
                }
                Err(e) => tracing::error!(tenant = %id, error = %e, "cannot recover scheduled work"),
            }
        }
    }

    /// Starts the loop (a tokio task).
    pub fn start(self: &Arc<Self>) {
        let this = self.clone();
        *self.lock(&self.task) = Some(tokio::spawn(this.run()));
    }

    /// Stops the loop and waits for it: the job or firing in progress finishes first.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let task = self.lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Creates a job due `run_after_ms` from now and wakes the loop.
    pub async fn schedule_job(
        &self,
        tenant: &Tenant,
        target: Target,
        run_after_ms: u64,
    ) -> Result<String, NimbusError> {
        let now = self.now_ms();
        let run_at = now.saturating_add(i64::try_from(run_after_ms).unwrap_or(i64::MAX));
        self.mark(tenant)?;
        let id = tenant.schedule_job(target, run_at, now).await?;
        self.touch(tenant);
        Ok(id)
    }

    /// Cancels a pending job.
    pub async fn cancel_job(&self, tenant: &Tenant, job_id: &str) -> Result<(), NimbusError> {
        tenant.cancel_job(job_id, self.now_ms()).await
    }

    /// Creates a cron; its first run is the schedule's next time after now.
    pub async fn create_cron(
        &self,
        tenant: &Tenant,
        name: String,
        schedule: Schedule,
        target: Target,
    ) -> Result<(), NimbusError> {
        let now = self.now_ms();
        let cron = Cron {
            name,
            next_run: schedule.next_after(now),
            schedule: schedule.to_json(),
            target,
            enabled: true,
            last_run: None,
            created_at: now,
        };
        self.mark(tenant)?;
        tenant.create_cron(cron).await?;
        self.touch(tenant);
        Ok(())
    }

    /// Changes a cron. Re-enabling it or changing its schedule recomputes `next_run` from now.
    pub async fn update_cron(&self, tenant: &Tenant, name: &str, change: CronChange) -> Result<Cron, NimbusError> {
        let now = self.now_ms();
        self.mark(tenant)?;
        let cron = tenant
            .update_cron(name, move |cron| {
                let re_enabled = change.enabled == Some(true) && !cron.enabled;
                if let Some(enabled) = change.enabled {
                    cron.enabled = enabled;
                }
                if let Some(target) = change.target {
                    cron.target = target;
                }
                let schedule = match change.schedule {
                    Some(schedule) => {
                        cron.schedule = schedule.to_json();
                        Some(schedule)
                    }
                    None if re_enabled => Some(Schedule::from_stored(&cron.schedule)?),
                    None => None,
                };
                if let Some(schedule) = schedule {
                    cron.next_run = schedule.next_after(now);
                }
                Ok(())
            })
            .await?;
        self.touch(tenant);
        Ok(cron)
    }

    /// Forgets a deleted tenant (the engine dropped its scheduling mark with it), so a tenant
    /// created again under the same id is marked again by its first job or cron.
    pub fn forget_tenant(&self, id: &str) {
        self.lock(&self.marked).remove(id);
        self.lock(&self.active).remove(id);
        self.lock(&self.known).remove(id);
    }

    /// Marks the tenant in the engine's scheduling index before its first job or cron is
    /// written (once per tenant and server run).
    fn mark(&self, tenant: &Tenant) -> Result<(), NimbusError> {
        let id = tenant.id().as_str();
        if self.lock(&self.marked).contains(id) {
            return Ok(());
        }
        self.engine.mark_scheduling(tenant.id())?;
        self.lock(&self.marked).insert(id.to_owned());
        Ok(())
    }

    fn touch(&self, tenant: &Tenant) {
        let id = tenant.id().as_str().to_owned();
        self.lock(&self.active).insert(id.clone());
        self.lock(&self.known).insert(id);
        self.wake.notify_one();
    }

    fn lock<'a, T>(&self, mutex: &'a Mutex<T>) -> std::sync::MutexGuard<'a, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self, id: &str) -> Option<Arc<Tenant>> {
        let tenant_id = TenantId::parse(id, "tenant_id").ok()?;
        match self.engine.tenant(&tenant_id) {
            Ok(tenant) => Some(tenant),
            Err(e) => {
                tracing::warn!(tenant = id, error = %e, "scheduler cannot open a tenant");
                None
            }
        }
    }

    async fn run(self: Arc<Self>) {
        let mut last_purge = self.now_ms();
        while !self.stopping.load(Ordering::SeqCst) {
            let now = self.now_ms();
            let tenants: Vec<String> = self.lock(&self.active).iter().cloned().collect();
            let mut earliest: Option<i64> = None;
            for id in tenants {
                if self.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let next = match self.open(&id) {
                    None => {
                        self.lock(&self.active).remove(&id);
                        self.lock(&self.known).remove(&id);
                        continue;
                    }
                    Some(tenant) => match self.pass(&tenant, now).await {
                        Ok(next) => next,
                        Err(e) => {
                            tracing::error!(tenant = %id, error = %e, "scheduler pass failed");
                            Some(now + RETRY_AFTER_ERROR_MS)
                        }
                    },
                };
                match next {
                    Some(t) => earliest = Some(earliest.map_or(t, |e| e.min(t))),
                    // Nothing left; a create racing this removal re-inserts and wakes us.
                    None => {
                        self.lock(&self.active).remove(&id);
                    }
                }
            }
            if now - last_purge >= PURGE_EVERY_MS {
                last_purge = now;
                self.purge(now).await;
            }
            let sleep_ms = earliest.map_or(SCHEDULER_MAX_SLEEP_MS as i64, |t| t - self.now_ms());
            let sleep_ms = sleep_ms.clamp(0, SCHEDULER_MAX_SLEEP_MS as i64) as u64;
            if sleep_ms > 0 {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {}
                }
            }
        }
    }

    /// Whether a function target names an action (through the installed runner).
    async fn is_action(&self, tenant: &Arc<Tenant>, name: &str) -> bool {
        match self.functions.get() {
            Some(runner) => runner.is_action(tenant.clone(), name.to_owned()).await,
            None => false,
        }
    }

    /// Runs a function target through the installed runner (500 when none is installed).
    async fn run_function(
        &self,
        tenant: &Arc<Tenant>,
        name: &str,
        args: &serde_json::Value,
        execution_id: String,
    ) -> Result<serde_json::Value, NimbusError> {
        let runner = self.functions.get().ok_or_else(|| {
            tracing::error!(function = name, "a function target is due but no function runner is installed");
            NimbusError::internal()
        })?;
        runner.run(tenant.clone(), name.to_owned(), args.clone(), execution_id).await
    }

    async fn purge(&self, now: i64) {
        let tenants: Vec<String> = self.lock(&self.known).iter().cloned().collect();
        for id in tenants {
            if let Some(tenant) = self.open(&id)
                && let Err(e) = tenant.purge_finished_jobs(now - FINISHED_JOB_RETENTION_MS).await
            {
                tracing::warn!(tenant = %id, error = %e, "cannot purge finished jobs");
            }
        }
    }

    /// One tenant's pass: due jobs in `(run_at, id)` order (at most a batch), then due crons.
    /// Returns the tenant's next due time.
    async fn pass(self: &Arc<Self>, tenant: &Arc<Tenant>, now: i64) -> Result<Option<i64>, NimbusError> {
        for _ in 0..SCHEDULER_JOBS_PER_PASS {
            let Some(job) = tenant.claim_due_job(now).await? else { break };
            self.fault.hit(Fault::CrashAfterClaim);
            // An action may take long: it runs beside later jobs (at least once: a crash leaves
            // it `running`, and recovery runs it again).
            if let Target::Function { name, args } = &job.target
                && self.is_action(tenant, name).await
            {
                let (scheduler, tenant, job) = (self.clone(), tenant.clone(), job.clone());
                let (name, args) = (name.clone(), args.clone());
                tokio::spawn(async move {
                    let outcome = scheduler.run_function(&tenant, &name, &args, job_execution_id(&job.id)).await;
                    if let Err(e) = tenant.finish_job(&job.id, outcome, scheduler.now_ms()).await {
                        tracing::error!(tenant = %tenant.id(), job = %job.id, error = %e, "cannot record an action job's outcome");
                    }
                });
                continue;
            }
            let outcome = match &job.target {
                Target::Function { name, args } => {
                    self.run_function(tenant, name, args, job_execution_id(&job.id)).await
                }
                _ => tenant.run_job_target(&job).await,
            };
            match outcome {
                Ok(value) => {
                    self.fault.hit(Fault::CrashAfterCommit);
                    tenant.finish_job(&job.id, Ok(value), self.now_ms()).await?;
                }
                Err(e) if is_transient(&e) && job.attempts < SCHEDULER_MAX_INFRA_ATTEMPTS => {
                    tenant.release_job(&job.id).await?;
                    return Err(e);
                }
                Err(e) => {
                    tracing::info!(tenant = %tenant.id(), job = %job.id, error = %e, "scheduled job failed");
                    tenant.finish_job(&job.id, Err(e), self.now_ms()).await?;
                }
            }
        }
        for cron in tenant.due_crons(now).await? {
            let Some(scheduled_at) = cron.next_run else { continue };
            let next_run = match Schedule::from_stored(&cron.schedule) {
                Ok(schedule) => schedule.next_after(now),
                Err(e) => {
                    tracing::error!(tenant = %tenant.id(), cron = %cron.name, error = %e, "stored schedule is invalid");
                    None
                }
            };
            // No pile-up: however many due times were missed, one firing, then the next time
            // after now. Data targets run synchronously here, so a cron is never still running
            // when its next firing comes due (`skipped` arises only with long-running targets).
            let firing = Firing { scheduled_at, started_at: now, next_run };
            if let Target::Function { name, args } = &cron.target {
                let execution = cron_execution_id(&cron.name, scheduled_at);
                let outcome = self.run_function(tenant, name, args, execution).await.map(|_| ());
                if let Err(error) = &outcome {
                    if is_transient(error) {
                        return Err(error.clone());
                    }
                    tracing::warn!(tenant = %tenant.id(), cron = %cron.name, error = %error, "cron run failed");
                }
                tenant.record_cron_firing(&cron.name, firing, outcome).await?;
                continue;
            }
            if let Some((outcome, Some(error))) = tenant.fire_cron(&cron.name, firing).await? {
                tracing::warn!(tenant = %tenant.id(), cron = %cron.name, outcome = outcome.as_str(), error = %error, "cron run failed");
            }
        }
        tenant.next_due().await
    }
}

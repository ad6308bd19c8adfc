//! Scheduling rows of one tenant: one-shot jobs (create, list, look up, cancel, claim, run,
//! finish, recover, purge) and crons (create, list, update, delete, fire, run history).
//!
//! The engine stores and runs; it does not decide *when*. Due times come from the caller (the
//! scheduler and its clock), and a cron's schedule is stored as opaque JSON the scheduler owns.
//! A data target and its execution id commit in one transaction, so a re-run after a crash
//! finds the id and writes nothing twice.

use nimbus_core::NimbusError;
use nimbus_core::ids::{DocumentId, TableName, mint_ulid};
use nimbus_core::limits::{CRON_RUNS_KEPT, MAX_CRONS_PER_TENANT, MAX_PENDING_JOBS_PER_TENANT};
use nimbus_store::schedule::{self as rows, CronRow, CronRunRow, JobRow};
use serde_json::{Value, json};

use super::Tenant;
use crate::document::Fields;
use crate::reads::serialization_error;
use crate::transaction::Transaction;

/// What a job or cron runs: a data target or a function, in its contract (and storage) form.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Insert a document, with a fresh id or the chosen one.
    Insert {
        /// Table.
        table: TableName,
        /// User fields.
        fields: Fields,
        /// The chosen id; an existing id fails with `op.already_exists`.
        id: Option<DocumentId>,
    },
    /// Shallow-merge a patch into a document.
    Update {
        /// Table.
        table: TableName,
        /// Document.
        id: DocumentId,
        /// Top-level keys to replace.
        patch: Fields,
    },
    /// Delete a document.
    Delete {
        /// Table.
        table: TableName,
        /// Document.
        id: DocumentId,
    },
    /// Call a mutation or action function. The engine stores it; the scheduler runs it through
    /// the functions runtime, never through [`Target::apply`].
    Function {
        /// Function name (`module:export`).
        name: String,
        /// Arguments (a JSON object).
        args: Value,
    },
}

impl Target {
    /// The contract form: `{"type": "insert", "table", "fields", "id"}` and so on.
    pub fn to_json(&self) -> Value {
        match self {
            Target::Insert { table, fields, id } => json!({
                "type": "insert", "table": table.as_str(), "fields": fields,
                "id": id.as_ref().map(DocumentId::as_str),
            }),
            Target::Update { table, id, patch } => {
                json!({ "type": "update", "table": table.as_str(), "id": id.as_str(), "patch": patch })
            }
            Target::Delete { table, id } => json!({ "type": "delete", "table": table.as_str(), "id": id.as_str() }),
            Target::Function { name, args } => json!({ "type": "function", "name": name, "args": args }),
        }
    }

    /// Reads a stored target (validated when it was written).
    fn from_stored(text: &str) -> Result<Self, NimbusError> {
        let value: Value = serde_json::from_str(text).map_err(|e| serialization_error("scheduled target", e))?;
        let str_of = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let map_of = |key: &str| value.get(key).and_then(Value::as_object).cloned().unwrap_or_default();
        let bad = || {
            tracing::error!("a stored scheduled target is malformed");
            NimbusError::internal()
        };
        if value.get("type").and_then(Value::as_str) == Some("function") {
            let name = str_of("name").ok_or_else(bad)?;
            return Ok(Target::Function { name, args: value.get("args").cloned().unwrap_or_else(|| json!({})) });
        }
        let table = str_of("table").and_then(|t| TableName::parse(&t, "table").ok()).ok_or_else(bad)?;
        let id = str_of("id").map(DocumentId::from_stored);
        match value.get("type").and_then(Value::as_str) {
            Some("insert") => Ok(Target::Insert { table, fields: map_of("fields"), id }),
            Some("update") => Ok(Target::Update { table, id: id.ok_or_else(bad)?, patch: map_of("patch") }),
            Some("delete") => Ok(Target::Delete { table, id: id.ok_or_else(bad)? }),
            _ => Err(bad()),
        }
    }

    /// Applies a data target inside a transaction, exactly as the HTTP document routes do, and
    /// returns its result value: the new id for an insert, `null` otherwise. A function target
    /// is not applied here (500 if it is).
    pub fn apply(&self, tx: &mut Transaction<'_>) -> Result<Value, NimbusError> {
        match self.clone() {
            Target::Insert { table, fields, id: Some(id) } => {
                tx.insert_with_id(&table, id, fields).map(|id| Value::from(id.as_str()))
            }
            Target::Insert { table, fields, id: None } => tx.insert(&table, fields).map(|id| Value::from(id.as_str())),
            Target::Update { table, id, patch } => tx.patch(&table, id.as_str(), patch).map(|_| Value::Null),
            Target::Delete { table, id } => tx.delete(&table, id.as_str()).map(|()| Value::Null),
            Target::Function { name, .. } => {
                tracing::error!(function = %name, "a function target reached the data-target path");
                Err(NimbusError::internal())
            }
        }
    }
}

/// A job's lifecycle: `Pending → Running → Completed | Failed`, or `Pending → Cancelled`.
/// Recovery moves `Running` back to `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for `run_at`.
    Pending,
    /// Claimed by the scheduler (committed before the target runs).
    Running,
    /// The target committed.
    Completed,
    /// The target failed; terminal.
    Failed,
    /// Cancelled while pending.
    Cancelled,
}

impl JobState {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(raw: &str) -> Result<Self, NimbusError> {
        Ok(match raw {
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => {
                tracing::error!(state = raw, "a stored job state is unknown");
                return Err(NimbusError::internal());
            }
        })
    }

    /// Whether the job has finished (with a result).
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed)
    }
}

/// A one-shot job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Job id (a lowercase ULID).
    pub id: String,
    /// Earliest start, epoch ms.
    pub run_at: i64,
    /// Lifecycle state.
    pub state: JobState,
    /// What it runs.
    pub target: Target,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Start of the last attempt.
    pub started_at: Option<i64>,
    /// End or cancellation time.
    pub finished_at: Option<i64>,
    /// Executions started.
    pub attempts: u32,
    /// Failure message.
    pub error: Option<String>,
    /// Failure catalog code.
    pub error_code: Option<String>,
    /// Result value: a function's return value, an insert's new id, `null` for other data
    /// targets; `None` until the job completes.
    pub value: Option<Value>,
}

impl Job {
    fn from_row(row: JobRow) -> Result<Self, NimbusError> {
        Ok(Self {
            target: Target::from_stored(&row.mutation)?,
            state: JobState::parse(&row.state)?,
            value: row.value.as_deref().and_then(|v| serde_json::from_str(v).ok()),
            id: row.id,
            run_at: row.run_at,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            error: row.error,
            error_code: row.error_code,
        })
    }

    fn to_row(&self) -> JobRow {
        JobRow {
            id: self.id.clone(),
            run_at: self.run_at,
            state: self.state.as_str().to_owned(),
            mutation: self.target.to_json().to_string(),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            attempts: i64::from(self.attempts),
            error: self.error.clone(),
            error_code: self.error_code.clone(),
            value: self.value.as_ref().map(Value::to_string),
        }
    }
}

/// A cron definition. `schedule` is the scheduler's stored form, opaque to the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    /// Name (unique per tenant).
    pub name: String,
    /// The schedule's stored form.
    pub schedule: Value,
    /// What each firing runs.
    pub target: Target,
    /// Whether it fires.
    pub enabled: bool,
    /// Start of the last firing.
    pub last_run: Option<i64>,
    /// Next due time (`None` while disabled).
    pub next_run: Option<i64>,
    /// Creation time.
    pub created_at: i64,
}

impl Cron {
    fn from_row(row: CronRow) -> Result<Self, NimbusError> {
        Ok(Self {
            schedule: serde_json::from_str(&row.schedule).map_err(|e| serialization_error("cron schedule", e))?,
            target: Target::from_stored(&row.mutation)?,
            name: row.name,
            enabled: row.enabled,
            last_run: row.last_run,
            next_run: row.next_run,
            created_at: row.created_at,
        })
    }

    fn to_row(&self) -> CronRow {
        CronRow {
            name: self.name.clone(),
            schedule: self.schedule.to_string(),
            mutation: self.target.to_json().to_string(),
            enabled: self.enabled,
            last_run: self.last_run,
            next_run: if self.enabled { self.next_run } else { None },
            created_at: self.created_at,
        }
    }
}

/// How a cron firing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The target committed.
    Completed,
    /// The target failed.
    Failed,
    /// The firing came due while the previous run was still running.
    Skipped,
}

impl RunOutcome {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Completed => "completed",
            RunOutcome::Failed => "failed",
            RunOutcome::Skipped => "skipped",
        }
    }
}

/// One recorded cron firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronRun {
    /// Run id (a lowercase ULID).
    pub run_id: String,
    /// The instant the firing was due.
    pub scheduled_at: i64,
    /// Start.
    pub started_at: i64,
    /// End.
    pub finished_at: i64,
    /// `completed`, `failed` or `skipped`.
    pub outcome: String,
    /// Failure message.
    pub error: Option<String>,
    /// Failure catalog code.
    pub error_code: Option<String>,
}

/// One firing of a cron, as decided by the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    /// The due time being fired (the cron's `next_run` when it was read).
    pub scheduled_at: i64,
    /// When the firing starts (the scheduler's now).
    pub started_at: i64,
    /// The cron's next due time after this firing (computed from now: no pile-up).
    pub next_run: Option<i64>,
}

/// 404 `op.scheduled_job_not_found`, with the state when the job exists but is not eligible.
pub fn job_not_found(job_id: &str, state: Option<JobState>) -> NimbusError {
    NimbusError::scheduled_job_not_found(job_id, state.map(JobState::as_str))
}

/// Whether an error comes from the infrastructure (storage, a full write queue) rather than
/// from the target itself: such a run is retried, not recorded as a failure.
pub fn is_transient(error: &NimbusError) -> bool {
    let code = error.code.as_str();
    code.starts_with("service.") || code.starts_with("rate.")
}

fn cron_not_found(name: &str) -> NimbusError {
    NimbusError::not_found_named("cron", name)
}

fn error_parts(error: &NimbusError) -> (Option<String>, Option<String>) {
    (Some(error.message.clone()), Some(error.code.as_str().to_owned()))
}

impl Tenant {
    /// Creates a pending job; 429 `rate.resource_exhausted` past the pending-jobs limit.
    pub async fn schedule_job(&self, target: Target, run_at: i64, created_at: i64) -> Result<String, NimbusError> {
        let (id, _) = self.transact(move |tx| tx.schedule_job(target, run_at, created_at)).await?;
        Ok(id)
    }

    /// Pending jobs by `run_at` then id.
    pub async fn pending_jobs(&self) -> Result<Vec<Job>, NimbusError> {
        self.read(|conn| {
            rows::jobs_in_state(conn, JobState::Pending.as_str(), i64::MAX, None)?
                .into_iter()
                .map(Job::from_row)
                .collect()
        })
        .await
    }

    /// A job in any state (404 `op.scheduled_job_not_found`).
    pub async fn job(&self, job_id: &str) -> Result<Job, NimbusError> {
        let id = job_id.to_owned();
        self.read(move |conn| match rows::get_job(conn, &id)? {
            Some(row) => Job::from_row(row),
            None => Err(job_not_found(&id, None)),
        })
        .await
    }

    /// Cancels a pending job; any other state answers 404 with `detail.state`.
    pub async fn cancel_job(&self, job_id: &str, now: i64) -> Result<(), NimbusError> {
        let id = job_id.to_owned();
        self.transact(move |tx| tx.cancel_job(&id, now)).await.map(|_| ())
    }

    /// Claims the first due job (`run_at <= now`, by `run_at` then id): `pending → running`,
    /// `attempts + 1`, committed before the target runs.
    pub async fn claim_due_job(&self, now: i64) -> Result<Option<Job>, NimbusError> {
        let (job, _) = self
            .transact(move |tx| {
                let Some(row) = rows::jobs_in_state(tx.conn(), JobState::Pending.as_str(), now, Some(1))?.pop() else {
                    return Ok(None);
                };
                let mut job = Job::from_row(row)?;
                job.state = JobState::Running;
                job.attempts = job.attempts.saturating_add(1);
                job.started_at = Some(now);
                rows::update_job(tx.conn(), &job.to_row())?;
                Ok(Some(job))
            })
            .await?;
        Ok(job)
    }

    /// Runs a claimed job's target in the same transaction as its execution id
    /// `scheduled:<job_id>`. When the id is already recorded (a re-run after a crash), nothing
    /// is written again. Returns the target's result value (`null` on such a re-run).
    pub async fn run_job_target(&self, job: &Job) -> Result<Value, NimbusError> {
        let (execution, target) = (job_execution_id(&job.id), job.target.clone());
        let (value, _) = self
            .transact(move |tx| {
                if tx.record_execution(&execution)? {
                    return Ok(Value::Null);
                }
                target.apply(tx)
            })
            .await?;
        Ok(value)
    }

    /// Records a running job's outcome: `completed`, or `failed` with the error.
    pub async fn finish_job(
        &self,
        job_id: &str,
        outcome: Result<Value, NimbusError>,
        now: i64,
    ) -> Result<(), NimbusError> {
        let id = job_id.to_owned();
        self.transact(move |tx| {
            let Some(row) = rows::get_job(tx.conn(), &id)? else { return Ok(()) };
            let mut job = Job::from_row(row)?;
            job.finished_at = Some(now);
            match outcome {
                Ok(value) => {
                    job.state = JobState::Completed;
                    job.value = Some(value);
                }
                Err(error) => {
                    job.state = JobState::Failed;
                    (job.error, job.error_code) = error_parts(&error);
                }
            }
            Ok(rows::update_job(tx.conn(), &job.to_row())?)
        })
        .await
        .map(|_| ())
    }

    /// Puts a running job back to `pending` (its run was interrupted by a transient failure).
    pub async fn release_job(&self, job_id: &str) -> Result<(), NimbusError> {
        let id = job_id.to_owned();
        self.transact(move |tx| {
            let Some(row) = rows::get_job(tx.conn(), &id)? else { return Ok(()) };
            let mut job = Job::from_row(row)?;
            if job.state == JobState::Running {
                job.state = JobState::Pending;
                rows::update_job(tx.conn(), &job.to_row())?;
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Recovery at start-up: every `running` job (interrupted by a crash) goes back to
    /// `pending` with `run_at = now`. Returns how many moved.
    pub async fn recover_jobs(&self, now: i64) -> Result<usize, NimbusError> {
        let (moved, _) = self
            .transact(move |tx| {
                Ok(rows::reset_jobs(tx.conn(), JobState::Running.as_str(), JobState::Pending.as_str(), now)?)
            })
            .await?;
        Ok(moved)
    }

    /// Retention: removes jobs finished or cancelled before `before`, with their execution ids,
    /// and cron execution ids recorded before then.
    pub async fn purge_finished_jobs(&self, before: i64) -> Result<usize, NimbusError> {
        let (removed, _) = self
            .transact(move |tx| {
                let states = [JobState::Completed.as_str(), JobState::Failed.as_str(), JobState::Cancelled.as_str()];
                let removed = rows::purge_jobs(tx.conn(), &states, before)?;
                rows::purge_cron_executions(tx.conn(), before)?;
                Ok(removed)
            })
            .await?;
        Ok(removed)
    }

    /// Whether the tenant holds any job (finished ones included) or cron.
    pub async fn has_scheduling_rows(&self) -> Result<bool, NimbusError> {
        self.read(|conn| Ok(rows::has_any(conn)?)).await
    }

    /// The earliest due time of any pending job or enabled cron.
    pub async fn next_due(&self) -> Result<Option<i64>, NimbusError> {
        self.read(|conn| Ok(rows::next_due(conn)?)).await
    }

    /// Creates a cron (409 `op.already_exists`; 400 `op.cap_exceeded` past the per-tenant cap).
    pub async fn create_cron(&self, cron: Cron) -> Result<(), NimbusError> {
        self.transact(move |tx| {
            if rows::get_cron(tx.conn(), &cron.name)?.is_some() {
                return Err(NimbusError::already_exists_named("cron", &cron.name));
            }
            let count = rows::count_crons(tx.conn())?;
            if count >= MAX_CRONS_PER_TENANT {
                return Err(NimbusError::cap_exceeded("crons per tenant", count + 1, MAX_CRONS_PER_TENANT));
            }
            Ok(rows::put_cron(tx.conn(), &cron.to_row())?)
        })
        .await
        .map(|_| ())
    }

    /// One cron (404 `op.not_found`).
    pub async fn cron(&self, name: &str) -> Result<Cron, NimbusError> {
        let name = name.to_owned();
        self.read(move |conn| match rows::get_cron(conn, &name)? {
            Some(row) => Cron::from_row(row),
            None => Err(cron_not_found(&name)),
        })
        .await
    }

    /// Every cron, by name.
    pub async fn crons(&self) -> Result<Vec<Cron>, NimbusError> {
        self.read(|conn| rows::list_crons(conn)?.into_iter().map(Cron::from_row).collect()).await
    }

    /// Updates a cron with `change` in one transaction (404 `op.not_found`).
    pub async fn update_cron<F>(&self, name: &str, change: F) -> Result<Cron, NimbusError>
    where
        F: FnOnce(&mut Cron) -> Result<(), NimbusError> + Send + 'static,
    {
        let name = name.to_owned();
        let (cron, _) = self
            .transact(move |tx| {
                let mut cron = match rows::get_cron(tx.conn(), &name)? {
                    Some(row) => Cron::from_row(row)?,
                    None => return Err(cron_not_found(&name)),
                };
                change(&mut cron)?;
                if !cron.enabled {
                    cron.next_run = None;
                }
                rows::put_cron(tx.conn(), &cron.to_row())?;
                Ok(cron)
            })
            .await?;
        Ok(cron)
    }

    /// Deletes a cron and its run history (absent is fine).
    pub async fn delete_cron(&self, name: &str) -> Result<(), NimbusError> {
        let name = name.to_owned();
        self.transact(move |tx| Ok(rows::delete_cron(tx.conn(), &name)?)).await.map(|_| ())
    }

    /// A cron's newest runs first (404 `op.not_found` when the cron does not exist).
    pub async fn cron_runs(&self, name: &str, limit: usize) -> Result<Vec<CronRun>, NimbusError> {
        let name = name.to_owned();
        self.read(move |conn| {
            if rows::get_cron(conn, &name)?.is_none() {
                return Err(cron_not_found(&name));
            }
            Ok(rows::cron_runs(conn, &name, limit)?
                .into_iter()
                .map(|r| CronRun {
                    run_id: r.run_id,
                    scheduled_at: r.scheduled_at,
                    started_at: r.started_at,
                    finished_at: r.finished_at,
                    outcome: r.outcome,
                    error: r.error,
                    error_code: r.error_code,
                })
                .collect())
        })
        .await
    }

    /// Enabled crons due at `now`, by next due time then name.
    pub async fn due_crons(&self, now: i64) -> Result<Vec<Cron>, NimbusError> {
        let mut due: Vec<Cron> =
            self.crons().await?.into_iter().filter(|c| c.enabled && c.next_run.is_some_and(|t| t <= now)).collect();
        due.sort_by(|a, b| (a.next_run, &a.name).cmp(&(b.next_run, &b.name)));
        Ok(due)
    }

    /// Fires a cron once: in one transaction, records the execution id
    /// `cron:<name>:<scheduled_at>`, runs the target unless that id was already recorded,
    /// advances `last_run`/`next_run` and records the run. A firing whose cron changed since it
    /// was read (deleted, disabled, rescheduled) does nothing. A failing target is recorded as
    /// a `failed` run in a second transaction; the cron keeps its schedule. Returns the outcome,
    /// `None` when nothing fired.
    pub async fn fire_cron(
        &self,
        name: &str,
        firing: Firing,
    ) -> Result<Option<(RunOutcome, Option<NimbusError>)>, NimbusError> {
        let first = {
            let name = name.to_owned();
            self.transact(move |tx| {
                let Some(cron) = current_firing(tx, &name, firing)? else { return Ok(false) };
                if !tx.record_execution(&cron_execution_id(&name, firing.scheduled_at))? {
                    cron.target.apply(tx)?;
                }
                advance(tx, cron, firing, RunOutcome::Completed, None)?;
                Ok(true)
            })
            .await
        };
        match first {
            Ok((true, _)) => Ok(Some((RunOutcome::Completed, None))),
            Ok((false, _)) => Ok(None),
            Err(error) if is_transient(&error) => Err(error),
            Err(error) => {
                let (name, recorded) = (name.to_owned(), error.clone());
                let (fired, _) = self
                    .transact(move |tx| {
                        let Some(cron) = current_firing(tx, &name, firing)? else { return Ok(false) };
                        advance(tx, cron, firing, RunOutcome::Failed, Some(&recorded))?;
                        Ok(true)
                    })
                    .await?;
                Ok(fired.then_some((RunOutcome::Failed, Some(error))))
            }
        }
    }

    /// Records the outcome of a firing whose target already ran outside this transaction (a
    /// function target, run with the execution id [`cron_execution_id`]) and advances the cron.
    /// A firing whose cron changed since it was read records nothing. Returns whether it
    /// recorded.
    pub async fn record_cron_firing(
        &self,
        name: &str,
        firing: Firing,
        outcome: Result<(), NimbusError>,
    ) -> Result<bool, NimbusError> {
        let name = name.to_owned();
        let (fired, _) = self
            .transact(move |tx| {
                let Some(cron) = current_firing(tx, &name, firing)? else { return Ok(false) };
                match &outcome {
                    Ok(()) => advance(tx, cron, firing, RunOutcome::Completed, None)?,
                    Err(error) => advance(tx, cron, firing, RunOutcome::Failed, Some(error))?,
                }
                Ok(true)
            })
            .await?;
        Ok(fired)
    }

    /// Records a `skipped` firing (the previous run still running) and advances the cron.
    pub async fn skip_cron(&self, name: &str, firing: Firing) -> Result<bool, NimbusError> {
        let name = name.to_owned();
        let (fired, _) = self
            .transact(move |tx| {
                let Some(cron) = current_firing(tx, &name, firing)? else { return Ok(false) };
                advance(tx, cron, firing, RunOutcome::Skipped, None)?;
                Ok(true)
            })
            .await?;
        Ok(fired)
    }
}

impl Transaction<'_> {
    /// Creates a pending job in this transaction (it exists only if the transaction commits);
    /// 429 `rate.resource_exhausted` past the pending-jobs limit.
    pub fn schedule_job(&mut self, target: Target, run_at: i64, created_at: i64) -> Result<String, NimbusError> {
        let pending = rows::count_jobs(self.conn(), JobState::Pending.as_str())?;
        if pending >= MAX_PENDING_JOBS_PER_TENANT {
            return Err(NimbusError::resource_exhausted(
                "pending scheduled jobs",
                MAX_PENDING_JOBS_PER_TENANT,
                Some(pending),
            ));
        }
        let job = Job {
            id: mint_ulid(),
            run_at,
            state: JobState::Pending,
            target,
            created_at,
            started_at: None,
            finished_at: None,
            attempts: 0,
            error: None,
            error_code: None,
            value: None,
        };
        rows::insert_job(self.conn(), &job.to_row())?;
        Ok(job.id)
    }

    /// Cancels a pending job in this transaction; any other state answers 404 with
    /// `detail.state`.
    pub fn cancel_job(&mut self, job_id: &str, now: i64) -> Result<(), NimbusError> {
        let mut job = match rows::get_job(self.conn(), job_id)? {
            Some(row) => Job::from_row(row)?,
            None => return Err(job_not_found(job_id, None)),
        };
        if job.state != JobState::Pending {
            return Err(job_not_found(job_id, Some(job.state)));
        }
        job.state = JobState::Cancelled;
        job.finished_at = Some(now);
        Ok(rows::update_job(self.conn(), &job.to_row())?)
    }
}

/// The execution id of a job's run: its target commits together with it.
pub fn job_execution_id(job_id: &str) -> String {
    format!("scheduled:{job_id}")
}

/// The execution id of a cron's firing due at `scheduled_at`.
pub fn cron_execution_id(name: &str, scheduled_at: i64) -> String {
    format!("cron:{name}:{scheduled_at}")
}

/// The cron if it is still enabled and still due at `firing.scheduled_at`.
fn current_firing(tx: &Transaction<'_>, name: &str, firing: Firing) -> Result<Option<Cron>, NimbusError> {
    let Some(row) = rows::get_cron(tx.conn(), name)? else { return Ok(None) };
    let cron = Cron::from_row(row)?;
    Ok((cron.enabled && cron.next_run == Some(firing.scheduled_at)).then_some(cron))
}

fn advance(
    tx: &Transaction<'_>,
    mut cron: Cron,
    firing: Firing,
    outcome: RunOutcome,
    error: Option<&NimbusError>,
) -> Result<(), NimbusError> {
    if outcome != RunOutcome::Skipped {
        cron.last_run = Some(firing.started_at);
    }
    cron.next_run = firing.next_run;
    rows::put_cron(tx.conn(), &cron.to_row())?;
    let (error, error_code) = error.map(error_parts).unwrap_or((None, None));
    let run = CronRunRow {
        cron: cron.name,
        run_id: mint_ulid(),
        scheduled_at: firing.scheduled_at,
        started_at: firing.started_at,
        finished_at: tx.now().max(firing.started_at),
        outcome: outcome.as_str().to_owned(),
        error,
        error_code,
    };
    Ok(rows::insert_cron_run(tx.conn(), &run, CRON_RUNS_KEPT)?)
}

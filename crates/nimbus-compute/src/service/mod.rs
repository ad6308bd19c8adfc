//! [`Services`]: named workloads with generation-checked definitions, readiness probes, restart
//! policies and health loops (services.md).
//!
//! Every service has an [`Entry`] in memory: its definition and runtime record under one lock,
//! a change signal for long-polls, the lock that keeps lifecycle operations from overlapping,
//! and the task that runs it (a sandbox supervisor or an external health loop). Definitions are
//! rows of kind `service_definition` and runtime records rows of kind `service_runtime` in the
//! system database; operator-declared (static) definitions live in memory only. One verb per
//! file: `create.rs`, `update.rs`, `delete.rs`, `start.rs`, `stop.rs`, `restart.rs`, `wait.rs`,
//! `list.rs`; `supervise.rs` runs a sandbox-backed service (probes, restarts), `external.rs` an
//! external one's health loop, `recover.rs` resumes services after a server restart.
//!
//! **Invariant:** only a service's run task starts or stops its sandboxes after the first
//! launch; lifecycle verbs cancel that task and wait for it, so a sandbox never has two owners.

mod create;
pub mod definition;
mod delete;
mod external;
mod list;
mod recover;
mod restart;
pub mod runtime;
mod start;
mod stop;
mod supervise;
mod update;
mod wait;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use nimbus_core::NimbusError;
use nimbus_store::connection::open_system;
use nimbus_store::records;
use rusqlite::Connection;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::sandbox::Sandboxes;
pub use definition::{
    BackendRequest, BrowserRequest, DefinitionRequest, ExternalService, ProbeRequest, Provider, Readiness,
    ReadinessRequest, RestartPolicy, SandboxService, ServiceBackend, ServiceDefinition, Source,
};
pub use list::ServicePage;
pub use runtime::{Disposition, Phase, Receipt, ServiceTarget, ServiceView, Termination};
pub use wait::ServiceWaitFor;

/// Record kind of definitions in the system database.
const DEFINITION_KIND: &str = "service_definition";
/// Record kind of runtime records.
const RUNTIME_KIND: &str = "service_runtime";

/// Checks an external service's health endpoint. Implemented by the server (this crate speaks
/// no HTTP): `true` when `GET url` answers 2xx or 3xx within `timeout`.
pub trait HealthCheck: Send + Sync {
    /// One check.
    fn check<'a>(&'a self, url: &'a str, timeout: Duration) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// What services need from the session registry, without depending on it: the server wires an
/// implementation in with [`Services::set_sessions`]. Until then no session is ever open.
pub trait ServiceSessions: Send + Sync {
    /// Open sessions on the service (a delete without `force` is refused while any exist).
    fn open_count(&self, tenant: &str, name: &str) -> usize;
    /// Closes every session on the service with `service_force_deleted` (a forced delete).
    fn close_for_force_delete(&self, tenant: &str, name: &str);
}

/// One service in memory.
struct Entry {
    tenant: String,
    name: String,
    state: Mutex<State>,
    /// Held by a lifecycle operation (start, stop, restart, forced delete) while it runs.
    op: Arc<tokio::sync::Mutex<()>>,
    /// The task that runs the service, if any.
    run: Mutex<Option<Run>>,
    /// Set once the service is deleted: late changes are dropped, nothing is persisted again.
    removed: AtomicBool,
    /// Bumped after every change; long-polls wait on it.
    changed: watch::Sender<u64>,
}

/// A service's definition and runtime record, changed together under one lock.
#[derive(Debug, Clone)]
struct State {
    def: ServiceDefinition,
    rt: runtime::RuntimeRecord,
}

/// A running service's task and the switch that asks it to stop (and says why).
struct Run {
    cancel: watch::Sender<Option<Halt>>,
    task: JoinHandle<()>,
}

/// Why a service's run is being ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    /// A stop (or delete): the service ends `stopped`.
    Stop,
    /// A restart: the service stays `starting` until the new run begins, so waiters for
    /// `ready` keep waiting.
    Restart,
}

impl Entry {
    fn new(def: ServiceDefinition, rt: runtime::RuntimeRecord) -> Arc<Self> {
        Arc::new(Self {
            tenant: def.tenant_id.clone(),
            name: def.name.clone(),
            state: Mutex::new(State { def, rt }),
            op: Arc::new(tokio::sync::Mutex::new(())),
            run: Mutex::new(None),
            removed: AtomicBool::new(false),
            changed: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> State {
        self.lock().clone()
    }

    /// Takes the lifecycle lock, or 409 `operation_in_progress`.
    fn try_op(&self) -> Result<tokio::sync::OwnedMutexGuard<()>, NimbusError> {
        self.op.clone().try_lock_owned().map_err(|_| operation_in_progress(&self.name))
    }

    fn take_run(&self) -> Option<Run> {
        self.run.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// 409 `op.conflict` (`operation_in_progress`).
fn operation_in_progress(name: &str) -> NimbusError {
    NimbusError::conflict(
        "operation_in_progress",
        format!("a lifecycle operation on service `{name}` is in progress"),
        json!({}),
    )
}

/// 409 `op.conflict` (`static_definition`).
fn static_definition(name: &str) -> NimbusError {
    NimbusError::conflict(
        "static_definition",
        format!("service `{name}` is declared by the operator's service catalog and is read-only"),
        json!({}),
    )
}

/// 501 `service.capability_unavailable` for a `builtIn` provider.
fn built_in_unavailable(provider: Provider) -> NimbusError {
    NimbusError::capability_unavailable(
        &format!("builtIn.{}", provider.as_str()),
        "this builtIn provider is declared only in this version (only `browser` runs); it cannot run yet",
    )
}

/// The service registry of one server. Database work is short and runs inline; sandboxes and
/// probes run through the sandbox registry and blocking threads.
pub struct Services {
    db: Mutex<Connection>,
    sandboxes: Arc<Sandboxes>,
    health: Arc<dyn HealthCheck>,
    sessions: OnceLock<Arc<dyn ServiceSessions>>,
    /// Keyed by (tenant, name).
    entries: RwLock<BTreeMap<(String, String), Arc<Entry>>>,
    /// Services whose runtime record outlived their definition; `resume` deletes their
    /// sandboxes.
    orphans: Mutex<Vec<(String, String)>>,
}

impl Services {
    /// Opens the registry: loads stored definitions and runtime records and adds the operator's
    /// static definitions (`(tenant, request)` pairs, validated here: an invalid one is an
    /// error). Blocking; call before serving, then [`Services::resume`] from the runtime.
    pub fn open(
        data_dir: &Path,
        sandboxes: Arc<Sandboxes>,
        health: Arc<dyn HealthCheck>,
        statics: Vec<(String, DefinitionRequest)>,
    ) -> Result<Arc<Self>, NimbusError> {
        let db = open_system(&data_dir.join("system.sqlite3"))?;
        let definitions = records::list(&db, DEFINITION_KIND)?;
        let runtimes = records::list(&db, RUNTIME_KIND)?;
        let services = Arc::new(Self {
            db: Mutex::new(db),
            sandboxes,
            health,
            sessions: OnceLock::new(),
            entries: RwLock::new(BTreeMap::new()),
            orphans: Mutex::new(Vec::new()),
        });
        services.load(definitions, runtimes, statics)?;
        Ok(services)
    }

    /// Checks a sandbox-backed definition's egress rules against the operator's ceiling and the
    /// tenant's secrets, as a sandbox create would (field errors inside `spec.backend.sandbox`).
    fn check_network(&self, tenant: &str, valid: &definition::ValidDefinition) -> Result<(), NimbusError> {
        match &valid.backend {
            ServiceBackend::Sandbox(service) => self
                .sandboxes
                .check_egress(tenant, &service.sandbox.network.egress, "spec.network.egress")
                .map_err(definition::within_sandbox),
            ServiceBackend::BuiltIn { runtime: Some(service), .. } => self.sandboxes.check_egress(
                tenant,
                &service.sandbox.network.egress,
                "spec.backend.browser.network.egress",
            ),
            _ => Ok(()),
        }
    }

    /// Wires in the session registry (once; later calls are ignored).
    pub fn set_sessions(&self, sessions: Arc<dyn ServiceSessions>) {
        if self.sessions.set(sessions).is_err() {
            tracing::warn!("the service registry's session hooks were already set");
        }
    }

    fn open_sessions(&self, tenant: &str, name: &str) -> usize {
        self.sessions.get().map_or(0, |s| s.open_count(tenant, name))
    }

    fn entry(&self, tenant: &str, name: &str) -> Result<Arc<Entry>, NimbusError> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&(tenant.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| NimbusError::not_found_named("service", name))
    }

    /// The definition of one service (404 `op.not_found`).
    pub fn definition(&self, tenant: &str, name: &str) -> Result<ServiceDefinition, NimbusError> {
        Ok(self.entry(tenant, name)?.snapshot().def)
    }

    /// The runtime view of one service (404 `op.not_found`).
    pub fn get(&self, tenant: &str, name: &str) -> Result<ServiceView, NimbusError> {
        Ok(view(&self.entry(tenant, name)?.snapshot()))
    }

    /// What a session opening on the service needs: its generation, backend, live sandbox and
    /// readiness (404 `op.not_found`).
    pub fn session_target(&self, tenant: &str, name: &str) -> Result<ServiceTarget, NimbusError> {
        let entry = self.entry(tenant, name)?;
        let state = entry.snapshot();
        let view = view(&state);
        Ok(ServiceTarget {
            name: state.def.name.clone(),
            generation: state.def.generation,
            backend: state.def.backend.kind(),
            provider: match &state.def.backend {
                ServiceBackend::BuiltIn { provider, .. } => Some(provider.as_str().to_owned()),
                _ => None,
            },
            sandbox_id: view.sandbox_id,
            ready: view.phase == Phase::Ready,
            operation_in_progress: entry.op.try_lock().is_err(),
        })
    }

    /// Changes a service's runtime record, persists it and wakes its waiters.
    fn change(&self, entry: &Entry, change: impl FnOnce(&mut runtime::RuntimeRecord)) -> State {
        let state = {
            let mut state = entry.lock();
            if entry.removed.load(Ordering::Acquire) {
                return state.clone();
            }
            change(&mut state.rt);
            state.rt.version += 1;
            self.persist_runtime(&state);
            state.clone()
        };
        entry.changed.send_modify(|v| *v += 1);
        state
    }

    /// Writes a runtime record. A failure is logged: memory stays authoritative for this
    /// process and the next change rewrites the row.
    fn persist_runtime(&self, state: &State) {
        self.put(RUNTIME_KIND, &state.def.tenant_id, &state.def.name, &state.rt);
    }

    /// Writes a dynamic definition (static ones are never stored).
    fn persist_definition(&self, def: &ServiceDefinition) -> Result<(), NimbusError> {
        let json = serde_json::to_string(def).map_err(|e| {
            tracing::error!(error = %e, "cannot encode a service definition");
            NimbusError::internal()
        })?;
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        records::put(&db, DEFINITION_KIND, &def.tenant_id, &def.name, &json)?;
        Ok(())
    }

    fn put(&self, kind: &str, tenant: &str, name: &str, value: &impl serde::Serialize) {
        crate::record_rows::put_logged(&self.db, kind, (tenant, name), value);
    }

    /// Removes a service: from memory, then its rows (both kinds). Its run must be over.
    fn forget(&self, entry: &Entry) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(entry.tenant.clone(), entry.name.clone()));
        {
            // Ordered after any update in progress.
            let _state = entry.lock();
            entry.removed.store(true, Ordering::Release);
        }
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        for kind in [DEFINITION_KIND, RUNTIME_KIND] {
            if let Err(e) = records::delete(&db, kind, &entry.tenant, &entry.name) {
                tracing::error!(error = %e, service = %entry.name, "cannot remove a service record");
            }
        }
        drop(db);
        entry.changed.send_modify(|v| *v += 1);
    }

    /// Stops every service's task (graceful server shutdown). Sandboxes keep running under their
    /// supervisors; the next server resumes their services.
    pub fn shutdown(&self) {
        let entries: Vec<Arc<Entry>> =
            self.entries.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for entry in entries {
            if let Some(run) = entry.take_run() {
                run.task.abort();
            }
        }
    }

    /// The tenants that own a service definition of their own (catalog services belong to
    /// the operator and are left out).
    pub fn tenant_ids(&self) -> std::collections::BTreeSet<String> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .filter(|(_, entry)| entry.snapshot().def.source != Source::StaticCatalog)
            .map(|((tenant, _), _)| tenant.clone())
            .collect()
    }

    /// Stops and forgets every service of a deleted tenant, with their sandboxes. Static
    /// definitions stay declared (their runtime starts over if the tenant is created again).
    pub async fn delete_tenant(self: &Arc<Self>, tenant: &str) {
        let entries: Vec<Arc<Entry>> = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            entries.iter().filter(|((t, _), _)| t == tenant).map(|(_, e)| e.clone()).collect()
        };
        for entry in entries {
            let _op = entry.op.clone().lock_owned().await;
            self.halt(&entry, Halt::Stop).await;
            if entry.snapshot().def.source == Source::StaticCatalog {
                self.change(&entry, |rt| *rt = runtime::RuntimeRecord::default());
            } else {
                self.forget(&entry);
            }
            self.sandboxes.delete_service_sandboxes(tenant, &entry.name).await;
        }
    }
}

/// The runtime view of a state.
fn view(state: &State) -> ServiceView {
    let rt = &state.rt;
    let live = !rt.phase.is_terminal() && rt.sandbox_id.is_some();
    ServiceView {
        tenant_id: state.def.tenant_id.clone(),
        name: state.def.name.clone(),
        kind: state.def.backend.kind(),
        phase: rt.phase,
        sandbox_id: rt.sandbox_id.clone().filter(|_| live),
        sandbox_backend: rt.sandbox_backend.filter(|_| live),
        definition_generation: rt.definition_generation,
        restart_count: rt.restart_count,
        last_termination: rt.last_termination.clone(),
    }
}

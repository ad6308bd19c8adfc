//! [`Sandboxes`]: the sandbox registry of one server.
//!
//! Every sandbox has an [`Entry`] in memory (its [`SandboxRecord`] and a change signal for
//! long-polls) and a row in the system database, rewritten on every change. One verb per file:
//! `create.rs`, `stop.rs` (stop and delete), `wait.rs`, `list.rs`, `logs.rs`, `recover.rs`
//! (re-adoption at start-up and retention).

mod create;
mod list;
mod logs;
mod network;
pub mod record;
mod recover;
pub mod request;
mod stop;
mod wait;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use nimbus_core::NimbusError;
use nimbus_core::time::now_ms;
use nimbus_sandbox::backend::{Backend, Exit};
use nimbus_sandbox::image::ImageStore;
use nimbus_store::connection::open_system;
use nimbus_store::records;
use rusqlite::Connection;
use tokio::sync::watch;

pub use list::{ListFilter, SandboxPage};
pub use logs::{LogCursor, LogRead};
pub use network::NetworkPolicy;
pub use record::{LifecycleState, SandboxRecord};
pub use request::{BackendKind, CreateSandbox, Profile};
pub use wait::WaitFor;

/// The record kind in the system database.
const KIND: &str = "sandbox";

/// One sandbox in memory.
struct Entry {
    record: Mutex<SandboxRecord>,
    /// Set once the sandbox is deleted: late reports (its exit watcher) change nothing then.
    removed: AtomicBool,
    /// Bumped after every change of `record`; long-polls wait on it.
    changed: watch::Sender<u64>,
}

impl Entry {
    fn new(record: SandboxRecord) -> Arc<Self> {
        let version = record.version;
        Arc::new(Self {
            record: Mutex::new(record),
            removed: AtomicBool::new(false),
            changed: watch::Sender::new(version),
        })
    }

    fn snapshot(&self) -> SandboxRecord {
        self.record.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The backends a server offers, by kind.
pub struct Backends {
    /// `container`.
    pub container: Arc<dyn Backend>,
    /// `krun`.
    pub krun: Arc<dyn Backend>,
}

impl Backends {
    fn get(&self, kind: BackendKind) -> &Arc<dyn Backend> {
        match kind {
            BackendKind::Container => &self.container,
            BackendKind::Krun => &self.krun,
        }
    }
}

/// The sandbox registry. Blocking work (backends, the database) runs on blocking threads.
pub struct Sandboxes {
    db: Mutex<Connection>,
    images: Arc<ImageStore>,
    backends: Backends,
    /// Keyed by (tenant, id).
    entries: RwLock<BTreeMap<(String, String), Arc<Entry>>>,
    /// Serializes quota checks with the insertion of the new record.
    admission: tokio::sync::Mutex<()>,
    retention_ms: i64,
    /// The data directory, whose file system keeps `SANDBOX_DISK_RESERVE_BYTES` free.
    data_dir: PathBuf,
    /// What egress rules are checked against.
    network: NetworkPolicy,
}

impl Sandboxes {
    /// Opens the registry on the data directory's system database and re-adopts every sandbox
    /// that was running when the last server stopped (sandboxes.md §8). Blocking: call it before
    /// serving, off the async threads.
    pub fn open(
        data_dir: &Path,
        images: Arc<ImageStore>,
        backends: Backends,
        network: NetworkPolicy,
    ) -> Result<Arc<Self>, NimbusError> {
        let db = open_system(&data_dir.join("system.sqlite3"))?;
        let rows = records::list(&db, KIND)?;
        let retention_ms = i64::try_from(nimbus_core::limits::SANDBOX_RETENTION_MS).unwrap_or(i64::MAX);
        let sandboxes = Arc::new(Self {
            db: Mutex::new(db),
            images,
            backends,
            entries: RwLock::new(BTreeMap::new()),
            admission: tokio::sync::Mutex::new(()),
            retention_ms,
            data_dir: data_dir.to_owned(),
            network,
        });
        sandboxes.recover(rows);
        Ok(sandboxes)
    }

    fn entry(&self, tenant: &str, id: &str) -> Result<Arc<Entry>, NimbusError> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&(tenant.to_owned(), id.to_owned())) {
            Some(entry) if !self.expired(&entry.snapshot()) => Ok(entry.clone()),
            _ => Err(NimbusError::not_found("sandbox", id)),
        }
    }

    /// Whether a terminal record is past its retention (hidden from reads at once).
    fn expired(&self, record: &SandboxRecord) -> bool {
        record.retained_until_ms.is_some_and(|until| until <= now_ms())
    }

    /// The record of one sandbox of `tenant` (404 `op.not_found` for unknown ids and other
    /// tenants' ids alike).
    pub fn get(&self, tenant: &str, id: &str) -> Result<SandboxRecord, NimbusError> {
        Ok(self.entry(tenant, id)?.snapshot())
    }

    /// Whether each backend can start sandboxes here, by wire name (else the reason).
    pub fn backend_availability(&self) -> [(&'static str, Result<(), String>); 2] {
        [self.backends.container.as_ref(), self.backends.krun.as_ref()].map(|b| (b.name(), b.availability()))
    }

    /// A sandbox's record with the backend that runs it, for the session channels (stdio, exec,
    /// files) that talk to the running sandbox.
    pub fn runtime(&self, tenant: &str, id: &str) -> Result<(SandboxRecord, Arc<dyn Backend>), NimbusError> {
        let record = self.get(tenant, id)?;
        let backend = self.backends.get(record.backend).clone();
        Ok((record, backend))
    }

    /// Checks that the browser image a browser service runs is in the local store: it is built
    /// with `nimbus image build-browser`, never pulled (its name is no registry's).
    pub fn require_browser_image(&self, reference: &str) -> Result<(), NimbusError> {
        match self.images.resolve(reference) {
            Ok(_) => Ok(()),
            Err(e) => Err(NimbusError::from(e).remedy(nimbus_core::remediation::browser_image_missing(reference))),
        }
    }

    /// How many sandboxes not yet removed run an image (an image in use cannot be removed).
    pub fn image_users(&self, digest: &str) -> usize {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.values().filter(|e| e.snapshot().image.is_some_and(|i| i.digest == digest)).count()
    }

    /// Changes a record, persists it and wakes its waiters. Returns the new record.
    fn update(&self, entry: &Entry, change: impl FnOnce(&mut SandboxRecord)) -> SandboxRecord {
        let record = {
            let mut record = entry.record.lock().unwrap_or_else(PoisonError::into_inner);
            if entry.removed.load(Ordering::Acquire) {
                return record.clone();
            }
            change(&mut record);
            record.version += 1;
            record.updated_at_ms = now_ms();
            // Persisted under the record's lock, so a concurrent delete cannot interleave and a
            // deleted sandbox's row is never written again. No caller waits on a transition.
            crate::record_rows::put_logged(&self.db, KIND, (&record.tenant_id, &record.id), &*record);
            record.clone()
        };
        entry.changed.send_replace(record.version);
        record
    }

    /// Moves a sandbox to its terminal state unless it is already there (the backend's waiter
    /// and a stop may both report the same ending).
    fn finish(&self, entry: &Entry, exit: &Exit) -> SandboxRecord {
        if entry.snapshot().state.is_terminal() {
            return entry.snapshot();
        }
        let retention = self.retention_ms;
        self.update(entry, |record| {
            record.end(exit, retention);
            record.transition_at_ms = now_ms();
        })
    }

    /// Writes a record to the system database.
    fn persist(&self, record: &SandboxRecord) -> Result<(), NimbusError> {
        crate::record_rows::put(&self.db, KIND, (&record.tenant_id, &record.id), record)
    }

    fn forget(&self, tenant: &str, id: &str) {
        let entry =
            self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(&(tenant.to_owned(), id.to_owned()));
        // Taking the record's lock orders this after any update in progress.
        let _record = entry.as_ref().map(|e| {
            e.removed.store(true, Ordering::Release);
            e.record.lock().unwrap_or_else(PoisonError::into_inner)
        });
        crate::record_rows::delete_logged(&self.db, KIND, (tenant, id));
    }

    /// Watches a running sandbox from a small thread: when the backend reports its ending, the
    /// record becomes terminal. The thread lives as long as the sandbox's main process.
    fn watch_exit(self: &Arc<Self>, entry: Arc<Entry>) {
        let this = self.clone();
        let record = entry.snapshot();
        let spawned = std::thread::Builder::new()
            .name(format!("sandbox-wait-{}", record.id))
            .stack_size(WATCH_STACK_BYTES)
            .spawn(move || {
                let exit = this.backends.get(record.backend).wait(&record.id);
                this.finish(&entry, &exit);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a sandbox exit watcher");
        }
    }
}

/// Stack of an exit-watcher thread: it only blocks on a socket read.
const WATCH_STACK_BYTES: usize = 64 * 1024;

/// Counts, from the stored records alone, the sandboxes not yet removed that use each image
/// digest. For offline tools: sandboxes keep running under their supervisors without a server.
pub fn stored_image_users(data_dir: &Path) -> Result<BTreeMap<String, usize>, NimbusError> {
    let db = open_system(&data_dir.join("system.sqlite3"))?;
    let mut users = BTreeMap::new();
    for row in records::list(&db, KIND)? {
        if let Ok(record) = serde_json::from_str::<SandboxRecord>(&row.record)
            && let Some(image) = record.image
        {
            *users.entry(image.digest).or_insert(0) += 1;
        }
    }
    Ok(users)
}

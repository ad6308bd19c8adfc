//! Start-up re-adoption (sandboxes.md §8) and retention of terminal sandboxes.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use nimbus_core::limits::SANDBOX_RETENTION_SWEEP_MS;
use nimbus_core::time::now_ms;
use nimbus_sandbox::backend::RuntimeState;
use nimbus_store::records::Row;

use super::create::lost;
use super::record::{LifecycleState, SandboxRecord};
use super::{BackendKind, Entry, Sandboxes};

impl Sandboxes {
    /// Loads the stored records: reconnects to the supervisor of every sandbox that was not
    /// terminal, records the ending of those that ended meanwhile or cannot be reached, and
    /// sweeps leftovers no record references.
    pub(super) fn recover(self: &Arc<Self>, rows: Vec<Row>) {
        let mut known = Vec::new();
        for row in rows {
            let record: SandboxRecord = match serde_json::from_str(&row.record) {
                Ok(record) => record,
                Err(e) => {
                    tracing::error!(error = %e, sandbox = %row.key, "unreadable sandbox record; dropping it");
                    self.forget(&row.tenant_id, &row.key);
                    continue;
                }
            };
            known.push(record.id.clone());
            let entry = Entry::new(record.clone());
            self.entries
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert((record.tenant_id.clone(), record.id.clone()), entry.clone());
            if record.state.is_terminal() {
                continue;
            }
            let backend = self.backends.get(record.backend);
            let state = if record.state == LifecycleState::Starting {
                // The server stopped mid-create: nothing is known to have started.
                backend.remove(&record.id).ok();
                RuntimeState::Ended(lost("the server stopped while the sandbox was starting"))
            } else {
                backend.adopt(&record.id)
            };
            match state {
                RuntimeState::Running { .. } => {
                    if record.state == LifecycleState::Stopping {
                        // A stop was in progress: finish it.
                        let exit = backend.stop(&record.id, Duration::ZERO);
                        self.finish(&entry, &exit);
                    } else {
                        self.watch_exit(entry);
                    }
                }
                RuntimeState::Ended(exit) => {
                    self.finish(&entry, &exit);
                }
            }
        }
        self.backends.get(BackendKind::Container).sweep(&known);
    }

    /// Removes terminal sandboxes past `retainedUntil` (files and record), every
    /// [`SANDBOX_RETENTION_SWEEP_MS`]. Runs until its task is aborted (the server does so on
    /// shutdown); it holds nothing that an abort between two awaits could leave half-done.
    pub async fn retain(self: Arc<Self>) {
        let period = Duration::from_millis(SANDBOX_RETENTION_SWEEP_MS);
        loop {
            tokio::time::sleep(period).await;
            let expired: Vec<SandboxRecord> = {
                let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
                entries
                    .values()
                    .map(|e| e.snapshot())
                    .filter(|r| r.retained_until_ms.is_some_and(|t| t <= now_ms()))
                    .collect()
            };
            for record in expired {
                self.forget(&record.tenant_id, &record.id);
                let backend = self.backends.get(record.backend).clone();
                let removed = tokio::task::spawn_blocking(move || backend.remove(&record.id)).await;
                if let Ok(Err(e)) = removed {
                    tracing::warn!(error = %e, "cannot remove an expired sandbox's files");
                }
            }
        }
    }

    /// The tenants that own a sandbox record.
    pub fn tenant_ids(&self) -> std::collections::BTreeSet<String> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).keys().map(|(tenant, _)| tenant.clone()).collect()
    }

    /// Deletes every sandbox of a tenant (the tenant is being deleted).
    pub async fn delete_tenant(self: &Arc<Self>, tenant: &str) {
        let ids: Vec<String> = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            entries.keys().filter(|(t, _)| t == tenant).map(|(_, id)| id.clone()).collect()
        };
        for id in ids {
            if let Err(e) = self.delete_owned(tenant, &id, Duration::ZERO).await {
                tracing::warn!(error = %e, sandbox = %id, "cannot delete a sandbox of a deleted tenant");
            }
        }
    }
}

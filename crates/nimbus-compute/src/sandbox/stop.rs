//! Stop (SIGTERM, then SIGKILL after the grace period) and delete (from any state).

use std::sync::Arc;
use std::time::Duration;

use nimbus_core::NimbusError;
use nimbus_core::time::now_ms;

use super::record::{LifecycleState, SandboxRecord};
use super::{Entry, Sandboxes, blocking};

impl Sandboxes {
    /// Stops a sandbox and returns it once `stopped`. A terminal sandbox is returned unchanged.
    pub async fn stop(self: &Arc<Self>, tenant: &str, id: &str, grace: Duration) -> Result<SandboxRecord, NimbusError> {
        let entry = self.entry(tenant, id)?;
        self.settle(&entry).await;
        let record = entry.snapshot();
        if record.state.is_terminal() {
            return Ok(record);
        }
        self.update(&entry, |record| {
            record.state = LifecycleState::Stopping;
            record.transition_at_ms = now_ms();
        });
        let backend = self.backends.get(record.backend).clone();
        let exit = blocking(move || backend.stop(&record.id, grace)).await?;
        Ok(self.finish(&entry, &exit))
    }

    /// Deletes a sandbox from any state: kills it (after `grace`), frees everything it held and
    /// removes its record. A second delete is 404.
    pub async fn delete(self: &Arc<Self>, tenant: &str, id: &str, grace: Duration) -> Result<(), NimbusError> {
        let entry = self.entry(tenant, id)?;
        let record = entry.snapshot();
        // Gone for readers at once; a create still starting sees this and frees what it made.
        self.forget(tenant, id);
        entry.changed.send_replace(u64::MAX);
        if record.state == LifecycleState::Starting {
            return Ok(());
        }
        let backend = self.backends.get(record.backend).clone();
        let id = record.id.clone();
        let running = !record.state.is_terminal();
        blocking(move || {
            if running && !grace.is_zero() {
                backend.stop(&id, grace);
            }
            backend.remove(&id)
        })
        .await??;
        Ok(())
    }

    /// Waits until a create in progress has left `starting` (or was deleted).
    async fn settle(&self, entry: &Arc<Entry>) {
        let mut changes = entry.changed.subscribe();
        while entry.snapshot().state == LifecycleState::Starting {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

//! Delete: generation-checked; refused while the service is busy, unless forced (services.md
//! §4).

use std::sync::Arc;
use std::time::Duration;

use nimbus_core::NimbusError;
use nimbus_core::limits::SERVICE_FORCE_DELETE_WAIT_MS;
use serde_json::json;

use super::definition::Source;
use super::update::service_active;
use super::{Entry, Halt, Services, static_definition};

impl Services {
    /// Deletes a dynamic definition whose generation is `if_match_generation`, with its
    /// runtime record and every sandbox the service owns. Without `force`, a lifecycle
    /// operation in progress, open sessions or a running service are 409. With `force`, waits
    /// up to [`SERVICE_FORCE_DELETE_WAIT_MS`] for an operation in progress (then 429), closes
    /// its sessions (`service_force_deleted`) and stops the service.
    pub async fn delete(
        self: &Arc<Self>,
        tenant: &str,
        name: &str,
        if_match_generation: u64,
        force: bool,
    ) -> Result<(), NimbusError> {
        let entry = self.entry(tenant, name)?;
        check_deletable(&entry, if_match_generation)?;
        let _op = if force {
            let wait = Duration::from_millis(SERVICE_FORCE_DELETE_WAIT_MS);
            tokio::time::timeout(wait, entry.op.clone().lock_owned()).await.map_err(|_| {
                NimbusError::resource_exhausted("serviceLifecycleOperation", 1, Some(1))
                    .with_retry_after_ms(SERVICE_FORCE_DELETE_WAIT_MS)
            })?
        } else {
            entry.try_op()?
        };
        // Re-checked under the lock: a concurrent update or delete still yields 412 or 404.
        let current = self.entry(tenant, name)?;
        if !Arc::ptr_eq(&current, &entry) {
            // Deleted and created again meanwhile: not the service the caller read.
            let generation = current.snapshot().def.generation;
            return Err(NimbusError::precondition_failed(if_match_generation, generation));
        }
        check_deletable(&entry, if_match_generation)?;
        if force {
            // Sessions first: once the sandbox stops, the session sweeper would close them as
            // `target_stopped` instead of saying why.
            if let Some(sessions) = self.sessions.get() {
                sessions.close_for_force_delete(tenant, name);
            }
            self.halt(&entry, Halt::Stop).await;
        } else {
            let open = self.open_sessions(tenant, name);
            if open > 0 {
                return Err(NimbusError::conflict(
                    "open_sessions",
                    format!("service `{name}` has {open} open sessions; close them or delete with force=true"),
                    json!({ "count": open }),
                ));
            }
            if !entry.snapshot().rt.phase.is_terminal() {
                return Err(service_active(name));
            }
        }
        self.forget(&entry);
        self.sandboxes.delete_service_sandboxes(tenant, name).await;
        Ok(())
    }
}

/// Static (409) and generation (412) checks of a delete.
fn check_deletable(entry: &Entry, if_match_generation: u64) -> Result<(), NimbusError> {
    let state = entry.lock();
    if state.def.source == Source::StaticCatalog {
        return Err(static_definition(&entry.name));
    }
    if state.def.generation != if_match_generation {
        return Err(NimbusError::precondition_failed(if_match_generation, state.def.generation));
    }
    Ok(())
}

//! Stop (SIGTERM, then SIGKILL after the grace period) and delete (from any state).
//!
//! Callers stop and delete standalone sandboxes only ([`Sandboxes::stop`], [`Sandboxes::delete`]);
//! a service-owned sandbox is 409 `owned_by_service` to them, and its service uses
//! [`Sandboxes::stop_owned`] and [`Sandboxes::delete_owned`].

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use nimbus_core::NimbusError;
use nimbus_core::time::now_ms;
use serde_json::json;

use super::record::{LifecycleState, SandboxRecord};
use super::{Entry, Sandboxes};
use crate::blocking;

/// 409 `op.conflict` (`owned_by_service`) for a sandbox a service runs.
fn refuse_service_owned(record: &SandboxRecord) -> Result<(), NimbusError> {
    match record.owner.service_name() {
        Some(service) => Err(NimbusError::conflict(
            "owned_by_service",
            format!("sandbox `{}` is run by service `{service}`; use the service's routes", record.id),
            json!({ "serviceName": service }),
        )),
        None => Ok(()),
    }
}

impl Sandboxes {
    /// Stops a standalone sandbox and returns it once `stopped`. A terminal sandbox is returned
    /// unchanged; a service-owned one is 409 `owned_by_service`.
    pub async fn stop(self: &Arc<Self>, tenant: &str, id: &str, grace: Duration) -> Result<SandboxRecord, NimbusError> {
        refuse_service_owned(&self.get(tenant, id)?)?;
        self.stop_owned(tenant, id, grace).await
    }

    /// Deletes a standalone sandbox from any state (see [`Sandboxes::delete_owned`]); a
    /// service-owned one is 409 `owned_by_service`.
    pub async fn delete(self: &Arc<Self>, tenant: &str, id: &str, grace: Duration) -> Result<(), NimbusError> {
        refuse_service_owned(&self.get(tenant, id)?)?;
        self.delete_owned(tenant, id, grace).await
    }

    /// Stops any sandbox, service-owned ones included (for their service), and returns it once
    /// `stopped`. A terminal sandbox is returned unchanged.
    pub async fn stop_owned(
        self: &Arc<Self>,
        tenant: &str,
        id: &str,
        grace: Duration,
    ) -> Result<SandboxRecord, NimbusError> {
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

    /// Stops every sandbox that has not ended, service-owned ones included, all at once, each
    /// with `grace` (`nimbus start --stop-sandboxes-on-exit`). Failures are logged: the server
    /// is on its way out.
    pub async fn stop_all(self: &Arc<Self>, grace: Duration) {
        let running: Vec<(String, String)> = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            entries.iter().filter(|(_, e)| !e.snapshot().state.is_terminal()).map(|(key, _)| key.clone()).collect()
        };
        let stops = running.into_iter().map(|(tenant, id)| {
            let sandboxes = self.clone();
            tokio::spawn(async move {
                if let Err(err) = sandboxes.stop_owned(&tenant, &id, grace).await {
                    tracing::warn!(%err, id, "stopping the sandbox at shutdown");
                }
            })
        });
        for stop in stops.collect::<Vec<_>>() {
            let _ = stop.await;
        }
    }

    /// Deletes any sandbox from any state, service-owned ones included (for their service):
    /// kills it (after `grace`), frees everything it held and removes its record. A second
    /// delete is 404.
    pub async fn delete_owned(self: &Arc<Self>, tenant: &str, id: &str, grace: Duration) -> Result<(), NimbusError> {
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

    /// Deletes every sandbox a service owns, retained ones included (the service is being
    /// deleted).
    pub async fn delete_service_sandboxes(self: &Arc<Self>, tenant: &str, service: &str) {
        let ids: Vec<String> = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            entries
                .iter()
                .filter(|((t, _), e)| t == tenant && e.snapshot().owner.service_name() == Some(service))
                .map(|((_, id), _)| id.clone())
                .collect()
        };
        for id in ids {
            if let Err(e) = self.delete_owned(tenant, &id, Duration::ZERO).await {
                tracing::warn!(error = %e, sandbox = %id, "cannot delete a sandbox of a deleted service");
            }
        }
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

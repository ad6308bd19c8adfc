//! Start: launch a fresh sandbox (or enable an external service's health loop) unless the
//! service already runs (services.md §6).

use std::sync::{Arc, PoisonError};

use nimbus_core::NimbusError;

use super::definition::ServiceBackend;
use super::runtime::{Phase, ServiceView};
use super::supervise::Begin;
use super::{Entry, Services, built_in_unavailable, view};

impl Services {
    /// Starts a service; returns once its sandbox exists (`starting` or `ready`). A running
    /// service is left as it is. `builtIn` services are 501 `service.capability_unavailable`;
    /// the sandbox create errors (image, quota, backend) pass through and leave it stopped.
    pub async fn start(self: &Arc<Self>, tenant: &str, name: &str) -> Result<ServiceView, NimbusError> {
        let entry = self.entry(tenant, name)?;
        let _op = entry.try_op()?;
        self.start_locked(&entry).await?;
        Ok(view(&entry.snapshot()))
    }

    /// Start, for a caller holding the lifecycle lock.
    pub(super) async fn start_locked(self: &Arc<Self>, entry: &Arc<Entry>) -> Result<(), NimbusError> {
        let state = entry.snapshot();
        if let Some(provider) = state.def.backend.declared_only() {
            return Err(built_in_unavailable(provider));
        }
        {
            let run = entry.run.lock().unwrap_or_else(PoisonError::into_inner);
            if run.as_ref().is_some_and(|r| !r.task.is_finished()) && !state.rt.phase.is_terminal() {
                // Running (or waiting to restart): nothing to do.
                return Ok(());
            }
        }
        // A task that just ended the service for good may still be finishing.
        if let Some(run) = entry.take_run() {
            let _ = run.task.await;
        }
        let previous = state.rt.phase;
        let generation = state.def.generation;
        self.change(entry, |rt| {
            rt.enabled = true;
            rt.phase = Phase::Starting;
            rt.restart_count = 0;
            rt.definition_generation = Some(generation);
            rt.sandbox_id = None;
        });
        if let ServiceBackend::External(external) = state.def.backend {
            self.spawn_health_loop(entry, external);
            return Ok(());
        }
        match state.def.backend.sandboxed().cloned() {
            // Refused above, before anything changed.
            None => Err(NimbusError::internal()),
            Some(spec) => match self.launch(entry, &spec).await {
                Ok(sandbox) => {
                    self.spawn_run(entry, spec, Begin::Watch { sandbox: Box::new(sandbox), probe_passed: false });
                    Ok(())
                }
                Err(e) => {
                    self.change(entry, |rt| {
                        rt.enabled = false;
                        // A restart's stop left it `starting`; nothing runs now.
                        rt.phase = if previous.is_terminal() { previous } else { Phase::Stopped };
                    });
                    Err(e)
                }
            },
        }
    }
}

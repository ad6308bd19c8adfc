//! Stop: end the service's run (its sandbox gets SIGTERM, then SIGKILL after the grace period;
//! an external service's health loop ends). No restart follows (services.md §6).

use std::sync::Arc;

use nimbus_core::NimbusError;

use super::runtime::{Phase, ServiceView};
use super::{Entry, Halt, Services, view};

impl Services {
    /// Stops a service and returns its view once stopped. No-op when it is not running and for
    /// `builtIn` services.
    pub async fn stop(self: &Arc<Self>, tenant: &str, name: &str) -> Result<ServiceView, NimbusError> {
        let entry = self.entry(tenant, name)?;
        let _op = entry.try_op()?;
        self.halt(&entry, Halt::Stop).await;
        Ok(view(&entry.snapshot()))
    }

    /// Ends the service's run, if any: asks its task to stop (the task stops the sandbox and
    /// records the ending) and waits for it. The caller holds the lifecycle lock. After a
    /// [`Halt::Restart`] the service is `starting` with no run, ready for a start.
    pub(super) async fn halt(&self, entry: &Arc<Entry>, how: Halt) {
        let run = entry.take_run();
        let state = entry.snapshot();
        if state.def.backend.declared_only().is_some() {
            return;
        }
        if !state.rt.phase.is_terminal() {
            self.change(entry, |rt| {
                rt.enabled = how == Halt::Restart;
                rt.phase = Phase::Stopping;
            });
        }
        let mut ended_by_task = false;
        if let Some(run) = run {
            run.cancel.send_replace(Some(how));
            match run.task.await {
                Ok(()) => ended_by_task = true,
                Err(e) if e.is_panic() => tracing::error!(service = %entry.name, "a service task panicked"),
                Err(_) => {}
            }
        }
        // Without a task (or if it died), stop what is left.
        if !ended_by_task && !entry.snapshot().rt.phase.is_terminal() {
            self.halted(entry, how).await;
        }
    }
}

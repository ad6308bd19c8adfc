//! The health loop of an external service: while the service is started, the server requests
//! `GET <url><health.path>` every `intervalMs` (services.md §7).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::definition::ExternalService;
use super::runtime::Phase;
use super::{Entry, Halt, Run, Services};

impl Services {
    /// Starts the health loop of an external service (its state is `starting` until the first
    /// result).
    pub(super) fn spawn_health_loop(self: &Arc<Self>, entry: &Arc<Entry>, external: ExternalService) {
        let (cancel, cancelled) = watch::channel(None);
        let task = tokio::spawn(self.clone().health_loop(entry.clone(), external, cancelled));
        *entry.run.lock().unwrap_or_else(PoisonError::into_inner) = Some(Run { cancel, task });
    }

    async fn health_loop(
        self: Arc<Self>,
        entry: Arc<Entry>,
        external: ExternalService,
        mut cancel: watch::Receiver<Option<Halt>>,
    ) {
        let url = external.health_url();
        let timeout = Duration::from_millis(external.timeout_ms);
        let mut failures = 0u32;
        let mut next = Instant::now();
        loop {
            if cancel.borrow().is_some() {
                break;
            }
            tokio::select! {
                biased;
                _ = cancel.changed() => break,
                () = tokio::time::sleep_until(next) => {}
            }
            // Bounded twice: the checker is asked to keep to the timeout, and is cut off if not.
            let passed = tokio::time::timeout(timeout + Duration::from_secs(1), self.health.check(&url, timeout))
                .await
                .unwrap_or(false);
            next = Instant::now() + Duration::from_millis(external.interval_ms);
            let phase = entry.snapshot().rt.phase;
            if passed {
                failures = 0;
                if matches!(phase, Phase::Starting | Phase::NotReady) {
                    self.change(&entry, |rt| rt.phase = Phase::Ready);
                }
            } else {
                failures = failures.saturating_add(1);
                if failures >= external.failure_threshold && matches!(phase, Phase::Starting | Phase::Ready) {
                    self.change(&entry, |rt| rt.phase = Phase::NotReady);
                }
            }
        }
        let how = cancel.borrow().unwrap_or(Halt::Stop);
        self.change(&entry, |rt| match how {
            Halt::Stop => {
                rt.enabled = false;
                rt.phase = Phase::Stopped;
            }
            Halt::Restart => rt.phase = Phase::Starting,
        });
    }
}

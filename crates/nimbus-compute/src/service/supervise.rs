//! The run of a sandbox-backed service: one task per started service that watches its sandbox,
//! runs the readiness probe, ends a run that is not ready in time, and applies the restart
//! policy with backoff, launching a fresh sandbox each time (services.md §7).

use nimbus_core::limits::BROWSER_IMAGE_REFERENCE;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use nimbus_core::NimbusError;
use nimbus_core::limits::{
    SANDBOX_STOP_GRACE_MS, SERVICE_MAX_RESTART_BACKOFF_MS, SERVICE_RESTART_BACKOFF_MS, SERVICE_RESTART_RESET_MS,
};
use nimbus_core::time::now_ms;
use nimbus_sandbox::backend::TerminationReason;
use tokio::sync::watch;
use tokio::time::Instant;

use super::definition::{Readiness, SandboxService};
use super::runtime::{Phase, Termination};
use super::{Entry, Halt, Run, Services};
use crate::sandbox::{LifecycleState, SandboxRecord};

/// Where a run task begins.
pub(super) enum Begin {
    /// Watch a sandbox that exists (just launched, or re-adopted after a server restart);
    /// `probe_passed` when its probe already passed (a re-adopted `ready` service).
    Watch { sandbox: Box<SandboxRecord>, probe_passed: bool },
    /// Launch a sandbox now (a restart was pending when the last server stopped).
    Launch,
    /// The previous sandbox ended (or vanished) while no server watched it: apply the policy.
    Ended(Termination),
}

/// How watching one sandbox ended.
enum Ending {
    /// A stop was requested.
    Cancelled,
    /// The sandbox ended on its own (or vanished).
    Ended(Termination),
}

/// The delay before the restart that follows `restarts` consecutive restarts: 1 s, doubling,
/// capped at 30 s.
pub(super) fn backoff(restarts: u32) -> Duration {
    let factor = 1u64.checked_shl(restarts.min(32)).unwrap_or(u64::MAX);
    Duration::from_millis(SERVICE_RESTART_BACKOFF_MS.saturating_mul(factor).min(SERVICE_MAX_RESTART_BACKOFF_MS))
}

impl Services {
    /// Launches a fresh sandbox for the service and records it as current. `Err`: nothing
    /// was started.
    pub(super) async fn launch(&self, entry: &Entry, spec: &SandboxService) -> Result<SandboxRecord, NimbusError> {
        if spec.sandbox.reference == BROWSER_IMAGE_REFERENCE {
            self.sandboxes.require_browser_image(BROWSER_IMAGE_REFERENCE)?;
        }
        let record = self.sandboxes.create(&entry.tenant, spec.sandbox.clone()).await?;
        let running_unprobed = spec.readiness.is_none() && record.state == LifecycleState::Ready;
        self.change(entry, |rt| {
            rt.sandbox_id = Some(record.id.clone());
            rt.sandbox_backend = Some(record.backend);
            rt.phase = if running_unprobed { Phase::Ready } else { Phase::Starting };
        });
        Ok(record)
    }

    /// Starts the service's run task.
    pub(super) fn spawn_run(self: &Arc<Self>, entry: &Arc<Entry>, spec: SandboxService, begin: Begin) {
        let (cancel, cancelled) = watch::channel(None);
        let task = tokio::spawn(self.clone().supervise(entry.clone(), spec, begin, cancelled));
        *entry.run.lock().unwrap_or_else(PoisonError::into_inner) = Some(Run { cancel, task });
    }

    /// The run task: watch, and on each ending apply the restart policy, until the service
    /// ends for good or a stop is requested.
    async fn supervise(
        self: Arc<Self>,
        entry: Arc<Entry>,
        spec: SandboxService,
        begin: Begin,
        mut cancel: watch::Receiver<Option<Halt>>,
    ) {
        let mut ending = match begin {
            Begin::Watch { sandbox, probe_passed } => {
                self.watch(&entry, &spec, &sandbox, probe_passed, &mut cancel).await
            }
            Begin::Ended(termination) => Ending::Ended(termination),
            Begin::Launch => match self.relaunch(&entry, &spec, &mut cancel).await {
                Some(ending) => ending,
                None => return,
            },
        };
        loop {
            let termination = match ending {
                Ending::Cancelled => return self.halted(&entry, halt_of(&cancel)).await,
                Ending::Ended(termination) => termination,
            };
            let failed = termination.failed;
            let state = self.change(&entry, |rt| {
                rt.last_termination = Some(termination);
                rt.sandbox_id = None;
            });
            let restarts = state.rt.restart_count;
            if !spec.restart_policy.restarts_after(failed) || restarts >= spec.max_restarts {
                self.change(&entry, |rt| {
                    rt.enabled = false;
                    rt.phase = if failed { Phase::Failed } else { Phase::Stopped };
                });
                return;
            }
            self.change(&entry, |rt| {
                rt.restart_count += 1;
                rt.phase = Phase::Starting;
            });
            tokio::select! {
                biased;
                _ = cancel.changed() => return self.halted(&entry, halt_of(&cancel)).await,
                () = tokio::time::sleep(backoff(restarts)) => {}
            }
            ending = match self.relaunch(&entry, &spec, &mut cancel).await {
                Some(ending) => ending,
                None => return,
            };
        }
    }

    /// Launches the next sandbox and watches it. A launch that fails is an ending of its own
    /// (`start_failed`, counted by the policy). `None`: a stop was requested meanwhile.
    async fn relaunch(
        &self,
        entry: &Arc<Entry>,
        spec: &SandboxService,
        cancel: &mut watch::Receiver<Option<Halt>>,
    ) -> Option<Ending> {
        let ending = match self.launch(entry, spec).await {
            Ok(sandbox) => self.watch(entry, spec, &sandbox, false, cancel).await,
            Err(e) => {
                tracing::warn!(service = %entry.name, error = %e, "a service restart could not launch a sandbox");
                Ending::Ended(Termination {
                    sandbox_id: None,
                    exit_code: None,
                    termination_reason: TerminationReason::StartFailed,
                    finished_at_ms: now_ms(),
                    failed: true,
                })
            }
        };
        if matches!(ending, Ending::Cancelled) {
            self.halted(entry, halt_of(cancel)).await;
            return None;
        }
        Some(ending)
    }

    /// Watches one sandbox: its ending, the probe loop, the start timeout and the restart
    /// counter's reset, until it ends or a stop is requested.
    async fn watch(
        &self,
        entry: &Entry,
        spec: &SandboxService,
        sandbox: &SandboxRecord,
        mut probe_passed: bool,
        cancel: &mut watch::Receiver<Option<Halt>>,
    ) -> Ending {
        if cancel.borrow().is_some() {
            return Ending::Cancelled;
        }
        let id = sandbox.id.clone();
        let ended = self.sandboxes.until_terminal(&entry.tenant, &id);
        tokio::pin!(ended);
        let start_deadline = Instant::now() + Duration::from_millis(spec.start_timeout_ms);
        let mut next_probe = Instant::now();
        let mut failures = 0u32;
        let mut ready_since = (entry.snapshot().rt.phase == Phase::Ready).then(Instant::now);
        let reset = Duration::from_millis(SERVICE_RESTART_RESET_MS);
        loop {
            let reset_due = ready_since.filter(|_| entry.snapshot().rt.restart_count > 0).map(|since| since + reset);
            let waiting_first = spec.readiness.is_some() && !probe_passed;
            tokio::select! {
                biased;
                _ = cancel.changed() => return Ending::Cancelled,
                record = &mut ended => {
                    return Ending::Ended(match record {
                        Some(record) => Termination::of(&record),
                        None => lost(&id, "the sandbox was removed"),
                    });
                }
                () = tokio::time::sleep_until(start_deadline), if waiting_first => {
                    return Ending::Ended(self.not_ready_in_time(entry, &id, spec.start_timeout_ms).await);
                }
                () = sleep_until_some(reset_due), if reset_due.is_some() => {
                    self.change(entry, |rt| rt.restart_count = 0);
                }
                () = tokio::time::sleep_until(next_probe), if spec.readiness.is_some() => {
                    let Some(readiness) = &spec.readiness else { continue };
                    let passed = self.probe(entry, &id, readiness).await;
                    next_probe = Instant::now() + Duration::from_millis(readiness.interval_ms);
                    if passed {
                        failures = 0;
                        probe_passed = true;
                        ready_since.get_or_insert_with(Instant::now);
                        if matches!(entry.snapshot().rt.phase, Phase::Starting | Phase::NotReady) {
                            self.change(entry, |rt| rt.phase = Phase::Ready);
                        }
                    } else {
                        failures = failures.saturating_add(1);
                        if probe_passed && failures >= readiness.failure_threshold
                            && entry.snapshot().rt.phase == Phase::Ready
                        {
                            ready_since = None;
                            self.change(entry, |rt| rt.phase = Phase::NotReady);
                        }
                    }
                }
            }
        }
    }

    /// One probe, on a blocking thread, bounded by its timeout (plus a second of slack for a
    /// backend that overruns it).
    async fn probe(&self, entry: &Entry, id: &str, readiness: &Readiness) -> bool {
        let Ok((_, backend)) = self.sandboxes.runtime(&entry.tenant, id) else { return false };
        let (id, probe) = (id.to_owned(), readiness.probe.clone());
        let timeout = Duration::from_millis(readiness.timeout_ms);
        let check = tokio::task::spawn_blocking(move || backend.probe(&id, &probe, timeout));
        matches!(tokio::time::timeout(timeout + Duration::from_secs(1), check).await, Ok(Ok(true)))
    }

    /// Ends a run whose probe never passed within `startTimeoutMs`: the sandbox is stopped and
    /// the run counts as failed with `start_failed`.
    async fn not_ready_in_time(&self, entry: &Entry, id: &str, timeout_ms: u64) -> Termination {
        tracing::warn!(service = %entry.name, sandbox = %id, "not ready within {timeout_ms} ms; stopping the sandbox");
        let grace = Duration::from_millis(SANDBOX_STOP_GRACE_MS);
        let stopped = self.sandboxes.stop_owned(&entry.tenant, id, grace).await.ok();
        Termination {
            sandbox_id: Some(id.to_owned()),
            exit_code: stopped.and_then(|r| r.exit_code),
            termination_reason: TerminationReason::StartFailed,
            finished_at_ms: now_ms(),
            failed: true,
        }
    }

    /// A stop was requested: stop the current sandbox (if any), record its ending, and leave
    /// the service `stopped` (or `starting`, for a restart).
    pub(super) async fn halted(&self, entry: &Entry, how: Halt) {
        let current = entry.snapshot().rt.sandbox_id;
        let mut termination = None;
        if let Some(id) = current {
            let grace = Duration::from_millis(SANDBOX_STOP_GRACE_MS);
            match self.sandboxes.stop_owned(&entry.tenant, &id, grace).await {
                Ok(record) => termination = Some(Termination::of(&record)),
                Err(e) => {
                    tracing::warn!(service = %entry.name, sandbox = %id, error = %e, "cannot stop a service's sandbox")
                }
            }
        }
        self.change(entry, |rt| {
            if termination.is_some() {
                rt.last_termination = termination;
            }
            rt.sandbox_id = None;
            match how {
                Halt::Stop => {
                    rt.enabled = false;
                    rt.phase = Phase::Stopped;
                }
                Halt::Restart => rt.phase = Phase::Starting,
            }
        });
    }
}

/// Why the run is asked to end (a closed channel counts as a stop).
fn halt_of(cancel: &watch::Receiver<Option<Halt>>) -> Halt {
    cancel.borrow().unwrap_or(Halt::Stop)
}

/// The ending recorded for a sandbox that vanished.
pub(super) fn lost(id: &str, why: &str) -> Termination {
    tracing::warn!(sandbox = %id, "{why}");
    Termination {
        sandbox_id: Some(id.to_owned()),
        exit_code: None,
        termination_reason: TerminationReason::ServerRestartLost,
        finished_at_ms: now_ms(),
        failed: true,
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_thirty() {
        let delays: Vec<u64> = (0..8).map(|n| u64::try_from(backoff(n).as_millis()).unwrap_or(0)).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(backoff(u32::MAX), Duration::from_millis(30_000));
    }
}

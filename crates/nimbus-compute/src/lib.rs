//! `nimbus-compute`: the control plane of Nimbus's isolated compute.
//!
//! # Layout
//! - [`labels`]: label validation shared by every agents resource.
//! - [`sandbox`]: [`Sandboxes`](sandbox::Sandboxes), the sandbox registry: validated create
//!   requests, admission (operator maxima, tenant quotas), records in the system database, the
//!   lifecycle state machine, long-poll waiting, logs, retention, and re-adoption of running
//!   sandboxes after a server restart.
//! - [`service`]: [`Services`](service::Services), the service registry: generation-checked
//!   definitions (dynamic and the operator's static catalog), runs with readiness probes and
//!   restart policies, external health loops, and resumption after a server restart.
//! - [`session`]: [`Sessions`](session::Sessions), the session registry: expiring leases on a
//!   running sandbox or service, their records, expiry (lazy and swept), and the channels they
//!   carry (stdio attachments with flow control, exec processes, the files channel's checks).
//! - [`secrets`]: [`Secrets`](secrets::Secrets), tenants' write-only secrets for the egress
//!   proxy: validated, capped per tenant, persisted, and read from memory.
//!
//! It drives a [`Backend`](nimbus_sandbox::backend::Backend) and never runs a process itself;
//! it knows nothing of HTTP or JSON wire shapes (the records it stores are its own).

pub mod labels;
mod record_rows;
pub mod sandbox;
pub mod secrets;
pub mod service;
pub mod session;

/// Runs blocking work (a backend call, a database write, file I/O) off the async threads. A task
/// that panicked or was cancelled becomes `service.internal`, with the cause logged.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, nimbus_core::NimbusError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "a blocking task failed");
        nimbus_core::NimbusError::internal()
    })
}

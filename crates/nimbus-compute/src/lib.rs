//! `nimbus-compute`: the control plane of Nimbus's isolated compute.
//!
//! # Layout
//! - [`labels`]: label validation shared by every agents resource.
//! - [`sandbox`]: [`Sandboxes`](sandbox::Sandboxes), the sandbox registry: validated create
//!   requests, admission (operator maxima, tenant quotas), records in the system database, the
//!   lifecycle state machine, long-poll waiting, logs, retention, and re-adoption of running
//!   sandboxes after a server restart.
//!
//! It drives a [`Backend`](nimbus_sandbox::backend::Backend) and never runs a process itself;
//! it knows nothing of HTTP or JSON wire shapes (the records it stores are its own).

pub mod labels;
pub mod sandbox;

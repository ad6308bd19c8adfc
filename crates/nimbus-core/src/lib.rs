//! `nimbus-core`: the vocabulary every other Nimbus crate shares.
//!
//! # Layout
//! - [`catalog`]: the error catalog ([`ErrorCode`]), the single source of truth for every error
//!   code, HTTP status, severity, retryability and remediation, plus its generated forms.
//! - [`error`]: [`NimbusError`], one catalogued error instance with its message and detail.
//! - [`remediation`]: the reason-specific remediations an error instance carries in place of
//!   its catalog's default.
//! - [`ids`]: validated identifier newtypes (tenant, table, index, document, request ids).
//! - [`limits`]: every limit and default, each with the reason for its value.
//! - [`time`]: wall-clock milliseconds and the fixed-width RFC 3339 rendering.
//!
//! This crate does no I/O: it only defines types and pure functions.

pub mod catalog;
pub mod error;
pub mod ids;
pub mod limits;
pub mod remediation;
pub mod time;

pub use catalog::ErrorCode;
pub use error::NimbusError;
pub use remediation::Remediation;

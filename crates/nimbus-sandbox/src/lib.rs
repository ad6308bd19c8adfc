//! `nimbus-sandbox`: Nimbus's isolated compute.
//!
//! # Layout
//! - [`image`]: the content-addressed OCI image store in the data directory: import of
//!   OCI-layout and docker-archive tars, listing, removal, and each image unpacked once into a
//!   read-only root that sandboxes share.
//! - [`backend`]: the [`Backend`](backend::Backend) trait, the seam between the control plane and
//!   what runs a sandbox.
//!
//! - [`runtime`]: the `container` backend: libcontainer run inside a per-sandbox supervisor
//!   process (the `nimbus` binary re-executed as `nimbus __supervise`).
//! - [`krun`]: the `krun` backend, which fails closed on hosts without microVM support.
//!
//! This crate knows nothing of documents, tenants' data or HTTP.

pub mod backend;
pub mod files;
pub mod image;
pub mod krun;
pub mod runtime;

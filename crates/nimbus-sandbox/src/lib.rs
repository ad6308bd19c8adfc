//! `nimbus-sandbox`: Nimbus's isolated compute.
//!
//! # Layout
//! - [`image`]: the content-addressed OCI image store in the data directory: import of
//!   OCI-layout and docker-archive tars, listing, removal, and each image unpacked once into a
//!   read-only root that sandboxes will share.
//!
//! This crate knows nothing of documents, tenants' data or HTTP.

pub mod image;

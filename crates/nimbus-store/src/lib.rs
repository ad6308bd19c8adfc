//! `nimbus-store`: Nimbus's persistence layer on embedded SQLite.
//!
//! # Layout
//! - [`connection`]: opening tenant and system database files with the durability settings
//!   (WAL, `synchronous=FULL`) and creating their tables.
//! - [`documents`], [`index_entries`], [`schemas`], [`journal`]: the row-level operations on a
//!   tenant database, each a plain function over a `rusqlite::Connection`.
//! - [`schedule`]: a tenant's scheduled jobs, crons, cron runs and execution ids.
//! - [`functions`]: a tenant's deployed function set (one row, replaced by each deploy).
//! - [`system`]: the system database (the tenant registry).
//! - [`records`]: the system database's records of agents resources (sandboxes; later services
//!   and sessions), one JSON row per resource.
//! - [`error`]: [`StoreError`], a storage failure classified into the catalog's storage kinds.
//!
//! This crate knows tables and rows, not documents' meaning: validation, query semantics and
//! transactions live in `nimbus-engine`.

pub mod connection;
pub mod documents;
pub mod error;
pub mod functions;
pub mod index_entries;
pub mod journal;
pub mod records;
pub mod schedule;
pub mod schemas;
pub mod system;

pub use error::{StoreError, StoreResult};

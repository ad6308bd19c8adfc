//! `nimbus-engine`: the document engine.
//!
//! # Layout
//! - [`engine`]: [`Engine`], the tenant registry (create, list, delete, shutdown).
//! - [`tenant`]: [`Tenant`], one tenant's database with its writer and read pool, and the data
//!   operations (documents, queries, schemas, journal), one file each.
//! - [`writer`]: the per-tenant single writer with group commit.
//! - [`transaction`]: [`Transaction`], the reads and writes of one atomic unit and its touched set.
//! - [`query`]: filters, ordering, planning over indexes, keyset cursors.
//! - [`schema`], [`policy`]: table schemas, their indexes and access policies.
//! - [`document`], [`value`], [`index_key`]: documents, JSON value semantics, index key encoding.
//! - [`journal`]: journal records and their integrity hash.
//! - [`read_set`], [`reader`]: what an evaluation read (for function subscriptions) and the
//!   reads a function makes on a snapshot or inside the writer's transaction.
//!
//! The engine knows nothing of HTTP: it takes validated ids and typed requests and returns
//! documents or catalogued errors.

pub mod document;
pub mod engine;
pub mod index_key;
pub mod journal;
pub mod policy;
pub mod query;
pub mod read_set;
pub mod reader;
mod reads;
pub mod schema;
pub mod tenant;
pub mod transaction;
pub mod value;
pub mod writer;

pub use engine::Engine;
pub use tenant::Tenant;
pub use transaction::Transaction;

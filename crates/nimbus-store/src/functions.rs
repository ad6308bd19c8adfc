//! A tenant's deployed function set: one row holding the version, the deploy time and the
//! set's body (its compiled modules and manifest, as JSON text the engine does not interpret).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Context, StoreResult};

/// The stored function set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFunctionSet {
    /// Per-tenant deploy counter, 1 for the first deploy.
    pub version: i64,
    /// Deploy time, epoch ms.
    pub deployed_at: i64,
    /// The set, as JSON text.
    pub body: String,
}

/// The tenant's function set, `None` before the first deploy.
pub fn get(conn: &Connection) -> StoreResult<Option<StoredFunctionSet>> {
    conn.prepare_cached("SELECT version, deployed_at, body FROM function_set WHERE singleton = 1")
        .and_then(|mut stmt| {
            stmt.query_row([], |row| {
                Ok(StoredFunctionSet { version: row.get(0)?, deployed_at: row.get(1)?, body: row.get(2)? })
            })
            .optional()
        })
        .context("reading the function set")
}

/// The current version, 0 before the first deploy.
pub fn version(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached("SELECT version FROM function_set WHERE singleton = 1")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
        .map(|v| v.unwrap_or(0))
        .context("reading the function set version")
}

/// Replaces the function set.
pub fn put(conn: &Connection, set: &StoredFunctionSet) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO function_set (singleton, version, deployed_at, body) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (singleton) DO UPDATE SET version = excluded.version,
             deployed_at = excluded.deployed_at, body = excluded.body",
    )
    .and_then(|mut stmt| stmt.execute(params![set.version, set.deployed_at, set.body]))
    .context("writing the function set")?;
    Ok(())
}

//! Rows of the `schemas` table: one JSON body per table that has a schema.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Context, StoreResult};

/// Reads a table's schema body.
pub fn get(conn: &Connection, table: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT body FROM schemas WHERE tbl = ?1")
        .and_then(|mut stmt| stmt.query_row(params![table], |row| row.get(0)).optional())
        .context("reading a schema")
}

/// Reads every schema as `(table, body)` in table order.
pub fn all(conn: &Connection) -> StoreResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT tbl, body FROM schemas ORDER BY tbl").context("reading schemas")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).context("reading schemas")?;
    rows.collect::<Result<_, _>>().context("reading schemas")
}

/// Stores (or replaces) a table's schema body.
pub fn put(conn: &Connection, table: &str, body: &str) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO schemas (tbl, body) VALUES (?1, ?2) ON CONFLICT(tbl) DO UPDATE SET body = excluded.body",
    )
    .and_then(|mut stmt| stmt.execute(params![table, body]))
    .context("writing a schema")?;
    Ok(())
}

/// Removes a table's schema; returns whether there was one.
pub fn delete(conn: &Connection, table: &str) -> StoreResult<bool> {
    let removed = conn
        .prepare_cached("DELETE FROM schemas WHERE tbl = ?1")
        .and_then(|mut stmt| stmt.execute(params![table]))
        .context("removing a schema")?;
    Ok(removed > 0)
}

//! Rows of the `journal` table: one JSON record per committed transaction, by sequence.

use rusqlite::{Connection, params};

use crate::error::{Context, StoreResult};

/// Appends a record at `sequence`.
pub fn append(conn: &Connection, sequence: u64, body: &str) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO journal (sequence, body) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![sequence as i64, body]))
        .context("appending a journal record")?;
    Ok(())
}

/// The highest sequence written so far (0 for an empty journal).
pub fn latest_sequence(conn: &Connection) -> StoreResult<u64> {
    let latest: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM journal")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .context("reading the journal head")?;
    Ok(latest.max(0) as u64)
}

/// Record bodies with sequences strictly after `after`, at most `limit`, in order.
pub fn page(conn: &Connection, after: u64, limit: usize) -> StoreResult<Vec<(u64, String)>> {
    let mut stmt = conn
        .prepare_cached("SELECT sequence, body FROM journal WHERE sequence > ?1 ORDER BY sequence LIMIT ?2")
        .context("reading the journal")?;
    let rows = stmt
        .query_map(params![after as i64, limit as i64], |row| {
            let sequence: i64 = row.get(0)?;
            Ok((sequence.max(0) as u64, row.get(1)?))
        })
        .context("reading the journal")?;
    rows.collect::<Result<_, _>>().context("reading the journal")
}

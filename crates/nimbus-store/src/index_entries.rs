//! Rows of the `index_entries` table: `(table, index, key, document id)`, keys being the
//! order-preserving encodings produced by the engine, compared by SQLite as BLOBs (memcmp).

use rusqlite::{Connection, params};

use crate::error::{Context, StoreResult};

/// Adds one index entry.
pub fn insert(conn: &Connection, table: &str, index: &str, key: &[u8], doc_id: &str) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO index_entries (tbl, index_name, key, doc_id) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut stmt| stmt.execute(params![table, index, key, doc_id]))
        .context("writing an index entry")?;
    Ok(())
}

/// Removes one index entry.
pub fn delete(conn: &Connection, table: &str, index: &str, key: &[u8], doc_id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM index_entries WHERE tbl = ?1 AND index_name = ?2 AND key = ?3 AND doc_id = ?4")
        .and_then(|mut stmt| stmt.execute(params![table, index, key, doc_id]))
        .context("removing an index entry")?;
    Ok(())
}

/// Removes every entry of every index of a table (before a schema change rebuilds them).
pub fn clear_table(conn: &Connection, table: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM index_entries WHERE tbl = ?1")
        .and_then(|mut stmt| stmt.execute(params![table]))
        .context("clearing a table's indexes")?;
    Ok(())
}

/// Document ids whose key in `index` is in `[lower, upper)` (`upper = None`: unbounded), in key order.
pub fn scan(
    conn: &Connection,
    table: &str,
    index: &str,
    lower: &[u8],
    upper: Option<&[u8]>,
) -> StoreResult<Vec<String>> {
    let mut ids = Vec::new();
    let mut push = |row: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
        ids.push(row.get(0)?);
        Ok(())
    };
    match upper {
        Some(upper) => {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT doc_id FROM index_entries WHERE tbl = ?1 AND index_name = ?2 AND key >= ?3 AND key < ?4 ORDER BY key, doc_id",
                )
                .context("scanning an index")?;
            let mut rows = stmt.query(params![table, index, lower, upper]).context("scanning an index")?;
            while let Some(row) = rows.next().context("scanning an index")? {
                push(row).context("scanning an index")?;
            }
        }
        None => {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT doc_id FROM index_entries WHERE tbl = ?1 AND index_name = ?2 AND key >= ?3 ORDER BY key, doc_id",
                )
                .context("scanning an index")?;
            let mut rows = stmt.query(params![table, index, lower]).context("scanning an index")?;
            while let Some(row) = rows.next().context("scanning an index")? {
                push(row).context("scanning an index")?;
            }
        }
    }
    Ok(ids)
}

//! Rows of the `documents` table: one row per document, its user fields as JSON text.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Context, StoreResult};

/// A document row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Table name.
    pub table: String,
    /// Document id.
    pub id: String,
    /// Insert commit time, epoch ms.
    pub creation_time: i64,
    /// Last write commit time, epoch ms.
    pub update_time: i64,
    /// User fields as a JSON object text.
    pub fields: String,
}

const COLUMNS: &str = "tbl, id, creation_time, update_time, fields";

fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredDocument> {
    Ok(StoredDocument {
        table: row.get(0)?,
        id: row.get(1)?,
        creation_time: row.get(2)?,
        update_time: row.get(3)?,
        fields: row.get(4)?,
    })
}

/// Reads one document.
pub fn get(conn: &Connection, table: &str, id: &str) -> StoreResult<Option<StoredDocument>> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE tbl = ?1 AND id = ?2");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![table, id], from_row).optional())
        .context("reading a document")
}

/// Reads the document with this id in whichever table holds it (ids are unique per tenant;
/// `documents_by_id` makes this an index lookup). With several rows (ids chosen by clients may
/// repeat across tables) the first table in name order wins.
pub fn find_by_id(conn: &Connection, id: &str) -> StoreResult<Option<StoredDocument>> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE id = ?1 ORDER BY tbl LIMIT 1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![id], from_row).optional())
        .context("reading a document by id")
}

/// Reads documents of `table` with ids strictly after `after_id` (all when `None`), in id order,
/// at most `limit` (all when `None`).
pub fn list(
    conn: &Connection,
    table: &str,
    after_id: Option<&str>,
    limit: Option<usize>,
) -> StoreResult<Vec<StoredDocument>> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE tbl = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(&sql).context("listing documents")?;
    let rows = stmt.query_map(params![table, after_id.unwrap_or(""), limit], from_row).context("listing documents")?;
    rows.collect::<Result<_, _>>().context("listing documents")
}

/// Reads every document of every table (bootstrap snapshots), ordered by table then id.
pub fn all(conn: &Connection) -> StoreResult<Vec<StoredDocument>> {
    let sql = format!("SELECT {COLUMNS} FROM documents ORDER BY tbl, id");
    let mut stmt = conn.prepare_cached(&sql).context("reading all documents")?;
    let rows = stmt.query_map([], from_row).context("reading all documents")?;
    rows.collect::<Result<_, _>>().context("reading all documents")
}

/// Inserts a new document row.
pub fn insert(conn: &Connection, doc: &StoredDocument) -> StoreResult<()> {
    let sql = format!("INSERT INTO documents ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.execute(params![doc.table, doc.id, doc.creation_time, doc.update_time, doc.fields]))
        .context("inserting a document")?;
    Ok(())
}

/// Replaces the fields and update time of an existing document row.
pub fn update(conn: &Connection, doc: &StoredDocument) -> StoreResult<()> {
    conn.prepare_cached("UPDATE documents SET update_time = ?3, fields = ?4 WHERE tbl = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.execute(params![doc.table, doc.id, doc.update_time, doc.fields]))
        .context("updating a document")?;
    Ok(())
}

/// Deletes a document row.
pub fn delete(conn: &Connection, table: &str, id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM documents WHERE tbl = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.execute(params![table, id]))
        .context("deleting a document")?;
    Ok(())
}

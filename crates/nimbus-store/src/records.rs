//! Records of agents resources in the system database: one JSON row per (kind, tenant, key).
//! The control plane owns the JSON's meaning; this module stores and lists rows.

use rusqlite::{Connection, params};

use crate::error::{Context, StoreResult};

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The owning tenant.
    pub tenant_id: String,
    /// The resource key (sandbox id, service name, session id).
    pub key: String,
    /// The record, JSON text.
    pub record: String,
}

/// Inserts or replaces a record.
pub fn put(conn: &Connection, kind: &str, tenant_id: &str, key: &str, record: &str) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO records (kind, tenant_id, key, record) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut stmt| stmt.execute(params![kind, tenant_id, key, record]))
        .context("writing a record")?;
    Ok(())
}

/// Removes a record (absent is fine).
pub fn delete(conn: &Connection, kind: &str, tenant_id: &str, key: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM records WHERE kind = ?1 AND tenant_id = ?2 AND key = ?3")
        .and_then(|mut stmt| stmt.execute(params![kind, tenant_id, key]))
        .context("removing a record")?;
    Ok(())
}

/// Every record of a kind, by tenant then key.
pub fn list(conn: &Connection, kind: &str) -> StoreResult<Vec<Row>> {
    let mut stmt = conn
        .prepare_cached("SELECT tenant_id, key, record FROM records WHERE kind = ?1 ORDER BY tenant_id, key")
        .context("listing records")?;
    let rows = stmt
        .query_map(params![kind], |row| Ok(Row { tenant_id: row.get(0)?, key: row.get(1)?, record: row.get(2)? }))
        .context("listing records")?;
    rows.collect::<Result<_, _>>().context("listing records")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::open_system;

    #[test]
    fn records_round_trip_by_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open_system(&dir.path().join("system.sqlite3")).expect("open");
        put(&conn, "sandbox", "t1", "b", "{\"v\":1}").expect("put");
        put(&conn, "sandbox", "t1", "a", "{}").expect("put");
        put(&conn, "service", "t1", "a", "{}").expect("put");
        put(&conn, "sandbox", "t1", "b", "{\"v\":2}").expect("replace");
        let rows = list(&conn, "sandbox").expect("list");
        assert_eq!(rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(rows[1].record, "{\"v\":2}");
        delete(&conn, "sandbox", "t1", "a").expect("delete");
        delete(&conn, "sandbox", "t1", "a").expect("absent is fine");
        assert_eq!(list(&conn, "sandbox").expect("list").len(), 1);
    }
}

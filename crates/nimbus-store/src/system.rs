//! The system database: the tenant registry.

use rusqlite::{Connection, params};

use crate::error::{Context, StoreResult};

/// Lists registered tenant ids in byte order.
pub fn list_tenants(conn: &Connection) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM tenants ORDER BY id").context("listing tenants")?;
    let rows = stmt.query_map([], |row| row.get(0)).context("listing tenants")?;
    rows.collect::<Result<_, _>>().context("listing tenants")
}

/// Registers a tenant; this row is the tenant's commit point.
pub fn insert_tenant(conn: &Connection, id: &str, created_at: i64) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO tenants (id, created_at) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![id, created_at]))
        .context("registering a tenant")?;
    Ok(())
}

/// Removes a tenant from the registry.
pub fn delete_tenant(conn: &Connection, id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM tenants WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![id]))
        .context("removing a tenant")?;
    Ok(())
}

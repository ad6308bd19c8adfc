//! Opening database files with Nimbus's durability settings, and their table layout.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Context, StoreResult};

/// How long a connection waits on a lock held by another connection before `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_millis(nimbus_core::limits::STORAGE_BUSY_TIMEOUT_MS);

/// Tables of one tenant database.
const TENANT_TABLES: &str = "
CREATE TABLE IF NOT EXISTS documents (
    tbl TEXT NOT NULL,
    id TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (tbl, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS documents_by_id ON documents (id);
CREATE TABLE IF NOT EXISTS index_entries (
    tbl TEXT NOT NULL,
    index_name TEXT NOT NULL,
    key BLOB NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (tbl, index_name, key, doc_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schemas (
    tbl TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    sequence INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scheduled_jobs (
    id TEXT PRIMARY KEY,
    run_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    mutation TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    error_code TEXT,
    value TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scheduled_jobs_by_state ON scheduled_jobs (state, run_at, id);
CREATE TABLE IF NOT EXISTS crons (
    name TEXT PRIMARY KEY,
    schedule TEXT NOT NULL,
    mutation TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    last_run INTEGER,
    next_run INTEGER,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cron_runs (
    cron TEXT NOT NULL,
    run_id TEXT NOT NULL,
    scheduled_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    error_code TEXT,
    PRIMARY KEY (cron, run_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    executed_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS function_set (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    version INTEGER NOT NULL,
    deployed_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
";

/// Tables of the system database.
const SYSTEM_TABLES: &str = "
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (kind, tenant_id, key)
) WITHOUT ROWID;
";

/// Whether a connection may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The one writer connection of a database; creates the file and its tables.
    Write,
    /// A reader beside the writer (WAL lets it read a consistent snapshot while the writer works).
    Read,
}

fn open(path: &Path, access: Access, tables: &str) -> StoreResult<Connection> {
    let flags = match access {
        Access::Write => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        Access::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).context("opening a database file")?;
    conn.busy_timeout(BUSY_TIMEOUT).context("setting the busy timeout")?;
    if access == Access::Write {
        // WAL: readers never block the writer. synchronous=FULL: a commit is on disk (the WAL
        // fsync'd) before it returns, which is what makes an acknowledged write durable.
        conn.pragma_update(None, "journal_mode", "WAL").context("enabling WAL")?;
        conn.pragma_update(None, "synchronous", "FULL").context("setting synchronous=FULL")?;
        conn.execute_batch(tables).context("creating tables")?;
    }
    Ok(conn)
}

/// Opens (creating if needed) a tenant database.
pub fn open_tenant(path: &Path, access: Access) -> StoreResult<Connection> {
    open(path, access, TENANT_TABLES)
}

/// Opens (creating if needed) the system database.
pub fn open_system(path: &Path) -> StoreResult<Connection> {
    open(path, Access::Write, SYSTEM_TABLES)
}

//! Opening database files with Nimbus's durability settings, and their table layout.

use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use nimbus_core::limits::PRIVATE_FILE_MODE;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Context, StoreError, StoreResult};

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

/// Creates the database file with [`PRIVATE_FILE_MODE`] before SQLite opens it, so the `-wal`
/// and `-shm` files SQLite creates beside it get that mode too (it copies the database file's
/// mode), and tightens an existing file, or one of those left by a crash, whose mode lets other
/// users in (from an older version, which created them 0644).
fn make_private(path: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).mode(PRIVATE_FILE_MODE).open(path)?;
    tighten(path, &file)?;
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::File::open(&name) {
            Ok(file) => tighten(Path::new(&name), &file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sets [`PRIVATE_FILE_MODE`] on an open file whose mode grants anything to group or others.
fn tighten(path: &Path, file: &std::fs::File) -> std::io::Result<()> {
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(PRIVATE_FILE_MODE))?;
        tracing::info!(file = ?path, from = format_args!("{mode:04o}"), "tightened a database file's mode to 0600");
    }
    Ok(())
}

fn open(path: &Path, access: Access, tables: &str) -> StoreResult<Connection> {
    if access == Access::Write {
        make_private(path).map_err(|e| {
            let cause = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN);
            StoreError::new(
                "making a database file private",
                rusqlite::Error::SqliteFailure(cause, Some(e.to_string())),
            )
        })?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The permission bits, in octal.
    fn mode(path: &Path) -> String {
        format!("{:04o}", std::fs::metadata(path).expect("stat").permissions().mode() & 0o777)
    }

    fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        name.into()
    }

    #[test]
    fn a_new_database_and_its_wal_and_shm_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sqlite3");
        let conn = open_tenant(&path, Access::Write).expect("open");
        conn.execute("INSERT INTO schemas (tbl, body) VALUES ('a', '{}')", []).expect("write");
        let reader = open_tenant(&path, Access::Read).expect("open a reader");
        let _: i64 = reader.query_row("SELECT count(*) FROM schemas", [], |row| row.get(0)).expect("read");
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(mode(&with_suffix(&path, suffix)), "0600", "{suffix}");
        }
        let system = dir.path().join("system.sqlite3");
        let _system = open_system(&system).expect("open system");
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(mode(&with_suffix(&system, suffix)), "0600", "system{suffix}");
        }
    }

    #[test]
    fn files_of_an_older_version_are_tightened_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sqlite3");
        {
            let conn = open_tenant(&path, Access::Write).expect("open");
            conn.execute("INSERT INTO schemas (tbl, body) VALUES ('a', '{}')", []).expect("write");
            // A crash leaves the WAL and shared-memory files; forget() skips the close that
            // would checkpoint and remove them.
            std::mem::forget(conn);
        }
        for suffix in ["", "-wal", "-shm"] {
            std::fs::set_permissions(with_suffix(&path, suffix), Permissions::from_mode(0o644)).expect("loosen");
        }
        let conn = open_tenant(&path, Access::Write).expect("reopen");
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(mode(&with_suffix(&path, suffix)), "0600", "{suffix}");
        }
        let body: String = conn.query_row("SELECT body FROM schemas", [], |row| row.get(0)).expect("read");
        assert_eq!(body, "{}", "the committed row survives");
    }
}

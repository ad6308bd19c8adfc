//! The registries' rows in the system database: each registry keeps its records in memory and
//! writes them through here. A write a caller is waiting on (a create) fails with the storage
//! error, so nobody is told of a record that is not on disk; a write after a background
//! transition is logged instead, the in-memory record staying authoritative and the next change
//! rewriting the row.

use std::sync::{Mutex, PoisonError};

use nimbus_core::NimbusError;
use nimbus_store::records;
use rusqlite::Connection;
use serde::Serialize;

/// Writes (inserts or replaces) one record under `kind`, `tenant` and `key`.
pub(crate) fn put(
    db: &Mutex<Connection>,
    kind: &str,
    (tenant, key): (&str, &str),
    value: &impl Serialize,
) -> Result<(), NimbusError> {
    let json = serde_json::to_string(value).map_err(|e| {
        tracing::error!(error = %e, kind, "cannot encode a record");
        NimbusError::internal()
    })?;
    let db = db.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(records::put(&db, kind, tenant, key, &json)?)
}

/// [`put`] for a change no caller waits on: a failure is logged.
pub(crate) fn put_logged(db: &Mutex<Connection>, kind: &str, (tenant, key): (&str, &str), value: &impl Serialize) {
    if let Err(e) = put(db, kind, (tenant, key), value) {
        tracing::error!(error = %e.message, kind, tenant, key, "cannot persist a record");
    }
}

/// Removes one record (absent is fine); a failure is logged (the row comes back at the next
/// start, where recovery settles it).
pub(crate) fn delete_logged(db: &Mutex<Connection>, kind: &str, (tenant, key): (&str, &str)) {
    let db = db.lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(e) = records::delete(&db, kind, tenant, key) {
        tracing::error!(error = %e, kind, tenant, key, "cannot remove a record");
    }
}

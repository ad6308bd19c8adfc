//! Storage errors, classified into the catalog's storage kinds.

use nimbus_core::{ErrorCode, NimbusError};
use rusqlite::ErrorCode as SqliteCode;

/// The catalog's classification of a storage failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// The database cannot be opened at all.
    Unavailable,
    /// Another connection holds a lock for too long.
    Busy,
    /// A failure that may pass on retry (interrupted, out of memory).
    Transient,
    /// The disk failed or is full.
    Io,
    /// The file is not a valid database, or an integrity check failed.
    Corruption,
    /// Anything else.
    Other,
}

/// A failed storage operation: what was being done, its kind, and the SQLite cause.
#[derive(Debug, thiserror::Error)]
#[error("storage error while {context}: {source}")]
pub struct StoreError {
    /// What the store was doing.
    pub context: &'static str,
    /// The catalog classification.
    pub kind: StorageKind,
    /// The underlying SQLite error.
    #[source]
    pub source: rusqlite::Error,
}

/// Result of a storage operation.
pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Classifies a SQLite error raised while doing `context`.
    pub fn new(context: &'static str, source: rusqlite::Error) -> Self {
        let kind = match source.sqlite_error_code() {
            Some(SqliteCode::DatabaseBusy | SqliteCode::DatabaseLocked) => StorageKind::Busy,
            Some(SqliteCode::OperationInterrupted | SqliteCode::OutOfMemory) => StorageKind::Transient,
            Some(SqliteCode::SystemIoFailure | SqliteCode::DiskFull) => StorageKind::Io,
            Some(SqliteCode::DatabaseCorrupt | SqliteCode::NotADatabase) => StorageKind::Corruption,
            Some(SqliteCode::CannotOpen | SqliteCode::ReadOnly | SqliteCode::PermissionDenied) => {
                StorageKind::Unavailable
            }
            _ => StorageKind::Other,
        };
        Self { context, kind, source }
    }
}

/// Adds a context to a rusqlite result.
pub trait Context<T> {
    /// Converts the error into a [`StoreError`] that says what was being done.
    fn context(self, context: &'static str) -> StoreResult<T>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn context(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|e| StoreError::new(context, e))
    }
}

impl From<StoreError> for NimbusError {
    fn from(error: StoreError) -> Self {
        let (code, kind) = match error.kind {
            StorageKind::Unavailable => (ErrorCode::ServiceUnavailable, "unavailable"),
            StorageKind::Busy => (ErrorCode::ServiceStorageBusy, "busy"),
            StorageKind::Transient => (ErrorCode::ServiceStorageTransient, "transient"),
            StorageKind::Io => (ErrorCode::ServiceStorageIo, "io"),
            StorageKind::Corruption => (ErrorCode::ServiceStorageCorruption, "corruption"),
            StorageKind::Other => (ErrorCode::ServiceStorageOther, "other"),
        };
        tracing::error!(error = %error, "storage failure");
        NimbusError::new(
            code,
            format!("storage failure ({kind}) while {}", error.context),
            Some(serde_json::json!({ "storageKind": kind })),
        )
    }
}

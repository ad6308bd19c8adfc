//! A small pool of read-only connections to one tenant database, used from blocking threads.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use nimbus_core::NimbusError;
use nimbus_core::limits::READ_CONNECTIONS_PER_TENANT;
use nimbus_store::connection::{Access, open_tenant};
use rusqlite::Connection;
use tokio::sync::Semaphore;

/// Read-only connections, opened on demand up to the limit and reused.
pub(super) struct ReadPool {
    path: PathBuf,
    /// Idle connections. A std mutex: it is held only to push or pop, never across an await.
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReadPool {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path, idle: Mutex::new(Vec::new()), permits: Semaphore::new(READ_CONNECTIONS_PER_TENANT) }
    }

    /// Runs `read` on a pooled connection on the blocking thread pool.
    pub(super) async fn run<T, F>(&self, read: F) -> Result<T, NimbusError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, NimbusError> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| NimbusError::internal())?;
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let path = self.path.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let mut conn = match idle {
                Some(conn) => conn,
                None => match open_tenant(&path, Access::Read) {
                    Ok(conn) => conn,
                    Err(e) => return (None, Err(NimbusError::from(e))),
                },
            };
            let result = read(&mut conn);
            (Some(conn), result)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "read task failed");
            NimbusError::internal()
        })?;
        if let Some(conn) = conn {
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
        result
    }

    /// Closes every idle connection.
    pub(super) fn clear(&self) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

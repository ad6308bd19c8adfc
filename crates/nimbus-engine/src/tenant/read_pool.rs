//! A small pool of read-only connections to one tenant database, used from blocking threads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_core::NimbusError;
use nimbus_core::limits::READ_CONNECTIONS_PER_TENANT;
use nimbus_store::connection::{Access, open_tenant};
use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Read-only connections, opened on demand up to the limit and reused.
pub(super) struct ReadPool {
    path: PathBuf,
    /// Idle connections. A std mutex: it is held only to push or pop, never across an await.
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

/// A connection taken from the pool for longer than one call (a snapshot); it goes back to
/// the pool when dropped.
pub(super) struct Checkout {
    conn: Option<Connection>,
    idle: Arc<Mutex<Vec<Connection>>>,
    _permit: OwnedSemaphorePermit,
}

impl Checkout {
    /// The connection.
    pub(super) fn conn(&mut self) -> &mut Connection {
        // Present from construction until drop.
        self.conn.as_mut().unwrap_or_else(|| unreachable!("a checkout holds its connection until dropped"))
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
    }
}

impl ReadPool {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(READ_CONNECTIONS_PER_TENANT)),
        }
    }

    /// Takes a connection out of the pool (opening one if none is idle) until the returned
    /// checkout is dropped. Opening happens on the blocking pool.
    pub(super) async fn checkout(&self) -> Result<Checkout, NimbusError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| NimbusError::internal())?;
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let path = self.path.clone();
                tokio::task::spawn_blocking(move || open_tenant(&path, Access::Read)).await.map_err(|e| {
                    tracing::error!(error = %e, "read task failed");
                    NimbusError::internal()
                })??
            }
        };
        Ok(Checkout { conn: Some(conn), idle: self.idle.clone(), _permit: permit })
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

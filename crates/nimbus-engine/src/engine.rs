//! [`Engine`]: the tenant registry. It owns the system database and every open [`Tenant`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use nimbus_core::NimbusError;
use nimbus_core::ids::TenantId;
use nimbus_core::time::now_ms;
use nimbus_store::connection::open_system;
use nimbus_store::{records, system};
use rusqlite::Connection;

use crate::tenant::Tenant;

/// Why the engine could not open its data directory.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A database could not be opened.
    #[error("cannot open storage: {0}")]
    Storage(NimbusError),
}

/// Record kind (system database) of a tenant that may hold scheduled work; key `""`.
const SCHEDULING: &str = "scheduling";
/// Record kind of the marker saying the scheduling marks are complete (written once, after
/// marking every tenant of an older data directory).
const SCHEDULING_INDEX: &str = "scheduling_index";

/// The registry of tenants under one data directory.
pub struct Engine {
    tenants_dir: PathBuf,
    /// The system database. A std mutex: it is only used from blocking sections, briefly.
    system: Mutex<Connection>,
    /// Registered tenants; `None` until first used. Opening lazily keeps start-up independent of
    /// the number of tenants, and a tenant whose file cannot be opened fails alone (its
    /// requests get the storage error) instead of stopping the whole server.
    tenants: RwLock<BTreeMap<String, Option<Arc<Tenant>>>>,
    /// Serializes tenant creation and deletion with each other.
    admin: tokio::sync::Mutex<()>,
}

impl Engine {
    /// Opens the data directory: the system database and the tenant registry, and removes the
    /// files of tenants whose creation or deletion was interrupted. Tenant databases open on
    /// first use.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        let tenants_dir = data_dir.join("tenants");
        std::fs::create_dir_all(&tenants_dir).map_err(|source| OpenError::Io { path: tenants_dir.clone(), source })?;
        let conn = open_system(&data_dir.join("system.sqlite3")).map_err(|e| OpenError::Storage(e.into()))?;
        let ids = system::list_tenants(&conn).map_err(|e| OpenError::Storage(e.into()))?;
        remove_orphans(&tenants_dir, &ids).map_err(|source| OpenError::Io { path: tenants_dir.clone(), source })?;
        let tenants = ids.into_iter().map(|id| (id, None)).collect();
        Ok(Self {
            tenants_dir,
            system: Mutex::new(conn),
            tenants: RwLock::new(tenants),
            admin: tokio::sync::Mutex::new(()),
        })
    }

    /// Looks up a tenant, opening its database on first use (404 `session.tenant_not_found`;
    /// a storage error when its file cannot be opened, retried on the next request).
    pub fn tenant(&self, id: &TenantId) -> Result<Arc<Tenant>, NimbusError> {
        match self.tenants.read().unwrap_or_else(PoisonError::into_inner).get(id.as_str()) {
            None => return Err(NimbusError::tenant_not_found(id.as_str())),
            Some(Some(tenant)) => return Ok(tenant.clone()),
            Some(None) => {}
        }
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        let slot = tenants.get_mut(id.as_str()).ok_or_else(|| NimbusError::tenant_not_found(id.as_str()))?;
        if let Some(tenant) = slot {
            return Ok(tenant.clone());
        }
        let tenant = Arc::new(Tenant::open(id.clone(), &tenant_file(&self.tenants_dir, id.as_str()))?);
        *slot = Some(tenant.clone());
        Ok(tenant)
    }

    /// Tenant ids in byte order.
    pub fn tenant_ids(&self) -> Vec<String> {
        self.tenants.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// Creates a tenant (409 `op.already_exists` if it exists). The registry row is the commit
    /// point: the database file is created first and removed at start-up if the row is missing.
    pub async fn create_tenant(&self, id: TenantId) -> Result<(), NimbusError> {
        let _admin = self.admin.lock().await;
        if self.tenants.read().unwrap_or_else(PoisonError::into_inner).contains_key(id.as_str()) {
            return Err(NimbusError::already_exists("tenant", id.as_str()));
        }
        let path = tenant_file(&self.tenants_dir, id.as_str());
        // No registry row names a file already here: it is what a deletion that a crash
        // interrupted left behind, never this tenant's data.
        remove_files(&path);
        let tenant = Tenant::open(id.clone(), &path)?;
        let registered = tokio::task::block_in_place(|| {
            let system = self.system.lock().unwrap_or_else(PoisonError::into_inner);
            system::insert_tenant(&system, id.as_str(), now_ms())
        });
        if let Err(e) = registered {
            tenant.close().await;
            remove_files(&path);
            return Err(e.into());
        }
        self.tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.as_str().to_owned(), Some(Arc::new(tenant)));
        Ok(())
    }

    /// Deletes a tenant: new work is refused at once, in-flight work finishes, then the registry
    /// row and the database files are removed.
    pub async fn delete_tenant(&self, id: &TenantId) -> Result<(), NimbusError> {
        let _admin = self.admin.lock().await;
        let tenant = self
            .tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id.as_str())
            .ok_or_else(|| NimbusError::tenant_not_found(id.as_str()))?;
        if let Some(tenant) = &tenant {
            tenant.close().await;
        }
        tokio::task::block_in_place(|| {
            let system = self.system.lock().unwrap_or_else(PoisonError::into_inner);
            system::delete_tenant(&system, id.as_str())?;
            records::delete(&system, SCHEDULING, id.as_str(), "")
        })?;
        remove_files(&tenant_file(&self.tenants_dir, id.as_str()));
        Ok(())
    }

    /// Tenants that may hold scheduled work (jobs or crons), so the scheduler's start-up opens
    /// only those. On a data directory from before this index existed, every tenant is marked
    /// first (the scheduler then clears those it finds empty).
    pub fn scheduling_tenants(&self) -> Result<Vec<String>, NimbusError> {
        let system = self.system.lock().unwrap_or_else(PoisonError::into_inner);
        if records::list(&system, SCHEDULING_INDEX)?.is_empty() {
            for id in self.tenant_ids() {
                records::put(&system, SCHEDULING, &id, "", "{}")?;
            }
            records::put(&system, SCHEDULING_INDEX, "", "", "{}")?;
        }
        let registered = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        let marked = records::list(&system, SCHEDULING)?;
        Ok(marked.into_iter().map(|row| row.tenant_id).filter(|id| registered.contains_key(id)).collect())
    }

    /// Marks a tenant as holding scheduled work. Called before the work is written, so a crash
    /// can leave a mark without work (cleared at the next start) but never work without a mark.
    pub fn mark_scheduling(&self, id: &TenantId) -> Result<(), NimbusError> {
        tokio::task::block_in_place(|| {
            let system = self.system.lock().unwrap_or_else(PoisonError::into_inner);
            records::put(&system, SCHEDULING, id.as_str(), "", "{}")
        })?;
        Ok(())
    }

    /// Clears the mark of a tenant found holding no job and no cron.
    pub fn clear_scheduling(&self, id: &str) -> Result<(), NimbusError> {
        let system = self.system.lock().unwrap_or_else(PoisonError::into_inner);
        records::delete(&system, SCHEDULING, id, "")?;
        Ok(())
    }

    /// Closes every tenant (their writers finish what is queued). Used on shutdown.
    pub async fn shutdown(&self) {
        let tenants: Vec<Arc<Tenant>> =
            self.tenants.read().unwrap_or_else(PoisonError::into_inner).values().flatten().cloned().collect();
        for tenant in tenants {
            tenant.close().await;
        }
    }
}

fn tenant_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.sqlite3"))
}

/// Removes a database file with its WAL and shared-memory files.
fn remove_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = ?name, error = %e, "cannot remove a tenant file"),
        }
    }
}

/// Removes tenant files that have no registry row (an interrupted create or delete).
fn remove_orphans(dir: &Path, registered: &[String]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(id) = name.split_once(".sqlite3").map(|(id, _)| id) else { continue };
        if !registered.iter().any(|r| r == id) {
            tracing::info!(file = ?path, "removing the files of an unregistered tenant");
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id, "tenant_id").expect("valid id")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_scheduling_index_starts_with_every_tenant_then_follows_marks() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            // A data directory from before the index: tenants, no marks.
            let engine = Engine::open(dir.path()).expect("open");
            engine.create_tenant(tenant("a")).await.expect("create a");
            engine.create_tenant(tenant("b")).await.expect("create b");
            engine.shutdown().await;
        }
        let engine = Engine::open(dir.path()).expect("reopen");
        assert_eq!(engine.scheduling_tenants().expect("index"), ["a", "b"], "an old directory marks all");
        engine.clear_scheduling("a").expect("clear");
        engine.create_tenant(tenant("c")).await.expect("create c");
        assert_eq!(engine.scheduling_tenants().expect("index"), ["b"], "once built, only marks count");
        engine.mark_scheduling(&tenant("c")).expect("mark");
        engine.delete_tenant(&tenant("b")).await.expect("delete b");
        assert_eq!(engine.scheduling_tenants().expect("index"), ["c"], "a deleted tenant leaves the index");
    }
}

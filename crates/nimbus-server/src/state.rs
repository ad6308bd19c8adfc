//! The state every handler shares.

use std::sync::Arc;

use nimbus_compute::sandbox::Sandboxes;
use nimbus_compute::secrets::Secrets;
use nimbus_compute::service::Services;
use nimbus_compute::session::Sessions;
use nimbus_core::NimbusError;
use nimbus_engine::{Engine, Tenant};
use nimbus_realtime::Realtime;
use nimbus_sandbox::image::ImageStore;
use nimbus_scheduler::Scheduler;
use tokio::sync::Notify;

use crate::auth::AuthState;
use crate::params::PathParams;

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The document engine.
    pub engine: Arc<Engine>,
    /// The server-wide OCI image store.
    pub images: Arc<ImageStore>,
    /// Live query subscriptions of every tenant.
    pub realtime: Arc<Realtime>,
    /// The sandbox registry.
    pub sandboxes: Arc<Sandboxes>,
    /// The service registry.
    pub services: Arc<Services>,
    /// The session registry.
    pub sessions: Arc<Sessions>,
    /// Tenants' secrets (write-only over HTTP; read by the egress proxy).
    pub secrets: Arc<Secrets>,
    /// The sandboxes' egress proxy (its decision logs).
    pub egress: Arc<nimbus_egress::proxy::Proxy>,
    /// Credentials and origin policy.
    pub auth: Arc<AuthState>,
    /// The scheduler of one-shot jobs and crons.
    pub scheduler: Arc<Scheduler>,
    /// Tenants' deployed functions and their runtime.
    pub functions: Arc<crate::functions::NimbusFunctions>,
    /// Notified by `POST /api/system/shutdown`.
    pub shutdown: Arc<Notify>,
}

impl AppState {
    /// Resolves the `{tenant_id}` of a tenant-scoped route: syntax (400), then existence (404).
    /// Handlers parse their other path segments first, so every path syntax error (400) comes
    /// before a missing tenant (404), as the contract orders them.
    pub fn tenant(&self, params: &PathParams) -> Result<Arc<Tenant>, NimbusError> {
        self.engine.tenant(&params.tenant()?)
    }
}

//! What a tenant leaves outside its database when it is deleted: its sessions, services and
//! sandboxes (with their processes), its secrets, its scheduler and function caches. A deletion
//! removes the registry row first (new work is refused at once) and these after it, so a crash
//! in between leaves dependents of a tenant that no longer exists: the next start removes them
//! before it serves, and a new tenant with the old id never inherits any of them.

use std::collections::BTreeSet;

use crate::state::AppState;

/// Removes everything of `tenant` (already deleted from the registry) outside its database.
pub async fn remove_dependents(state: &AppState, tenant: &str) {
    state.scheduler.forget_tenant(tenant);
    state.functions.forget(tenant);
    state.sessions.close_for_tenant(tenant).await;
    state.services.delete_tenant(tenant).await;
    state.sandboxes.delete_tenant(tenant).await;
    // After the sandboxes, whose egress may still be reading them until they are gone.
    let (secrets, tenant) = (state.secrets.clone(), tenant.to_owned());
    // A failure is logged by `blocking` (and the secrets' own write failures by the registry).
    let _ = nimbus_compute::blocking(move || secrets.delete_tenant(&tenant)).await;
}

/// Finishes the deletions a crash interrupted: removes the dependents of every tenant that
/// owns sessions, services, sandboxes or secrets but is not registered. Runs before serving.
pub async fn finish_interrupted(state: &AppState) {
    let registered: BTreeSet<String> = state.engine.tenant_ids().into_iter().collect();
    let mut owners = state.sandboxes.tenant_ids();
    owners.extend(state.services.tenant_ids());
    owners.extend(state.sessions.tenant_ids());
    owners.extend(state.secrets.tenant_ids());
    for tenant in owners.difference(&registered) {
        tracing::warn!(tenant, "removing what a tenant deleted before a crash left behind");
        remove_dependents(state, tenant).await;
    }
}

//! Network: the checks of a sandbox's egress rules that need more than their shape (the
//! operator's ceiling, the tenant's secrets), the generation-checked replacement of a running
//! sandbox's rules, and the lookup the egress proxy makes on every connection.

use std::sync::{Arc, PoisonError};

use nimbus_core::NimbusError;
use nimbus_egress::rules::{Ceiling, EgressRules, NetworkSpec};
use serde_json::json;

use super::{LifecycleState, SandboxRecord, Sandboxes};
use crate::secrets::Secrets;

/// What a sandbox's egress rules are checked against beyond their shape.
pub struct NetworkPolicy {
    /// The operator's ceiling (`--egress-policy`), if any.
    pub ceiling: Option<Ceiling>,
    /// The tenants' secrets, which credential rules name.
    pub secrets: Arc<Secrets>,
}

impl Sandboxes {
    /// Checks normalized egress rules (at `field`, e.g. `spec.network.egress`) against the
    /// ceiling (403 `sandbox.egress_beyond_policy`) and the tenant's secrets (400 naming the
    /// credential rule whose secret does not exist).
    pub fn check_egress(&self, tenant: &str, egress: &EgressRules, field: &str) -> Result<(), NimbusError> {
        if let Some(ceiling) = &self.network.ceiling {
            ceiling.check(egress, field)?;
        }
        for (i, secret) in egress.secrets() {
            if !self.network.secrets.exists(tenant, secret) {
                return Err(NimbusError::invalid_input(
                    format!("{field}.credentials[{i}].secret"),
                    format!(
                        "this tenant has no secret named `{secret}`: create it first (PUT /api/tenants/{tenant}/secrets/{secret})"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Replaces the egress rules of a running standalone sandbox, if `generation` is its
    /// current one; the generation goes up by one. New connections follow the new rules.
    pub async fn update_network(
        &self,
        tenant: &str,
        id: &str,
        generation: u64,
        egress: EgressRules,
    ) -> Result<SandboxRecord, NimbusError> {
        // Serialized with creates and other updates, so the generation check holds.
        let _admission = self.admission.lock().await;
        let entry = self.entry(tenant, id)?;
        let current = entry.snapshot();
        if let Some(service) = current.owner.service_name() {
            return Err(NimbusError::conflict(
                "owned_by_service",
                format!("sandbox `{id}` belongs to service `{service}`: change the service's definition instead"),
                json!({ "service": service }),
            ));
        }
        if current.generation != generation {
            return Err(NimbusError::precondition_failed(generation, current.generation));
        }
        if current.state.is_terminal() {
            return Err(NimbusError::conflict(
                "sandbox_ended",
                format!("sandbox `{id}` has ended: its network can no longer change"),
                json!({ "lifecycleState": current.state.as_str() }),
            ));
        }
        let network = NetworkSpec { egress: egress.validate("egress")? };
        self.check_egress(tenant, &network.egress, "egress")?;
        Ok(self.update(&entry, |record| {
            record.network = network;
            record.generation += 1;
        }))
    }

    /// The TCP ports a running sandbox listens on (its endpoints), ascending; empty when it
    /// does not run.
    pub async fn listening(&self, tenant: &str, id: &str) -> Result<Vec<u16>, NimbusError> {
        let (record, backend) = self.runtime(tenant, id)?;
        if !matches!(record.state, LifecycleState::Ready) {
            return Ok(Vec::new());
        }
        crate::blocking(move || backend.listening(&record.id)).await
    }

    /// Whether a sandbox with this id is known (in any state, until it is removed).
    pub fn known(&self, id: &str) -> bool {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).keys().any(|(_, key)| key == id)
    }

    /// The tenant and egress rules of sandbox `id` while it runs (the egress proxy's question);
    /// `None` for unknown and ended sandboxes.
    pub fn egress_rules(&self, id: &str) -> Option<(String, EgressRules)> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let ((tenant, _), entry) = entries.iter().find(|((_, key), _)| key == id)?;
        let record = entry.record.lock().unwrap_or_else(PoisonError::into_inner);
        (!record.state.is_terminal()).then(|| (tenant.clone(), record.network.egress.clone()))
    }
}

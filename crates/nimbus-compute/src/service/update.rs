//! Update (PUT): replace a definition's backend and labels, checked against its generation
//! (services.md §4).

use nimbus_core::NimbusError;
use nimbus_core::time::now_ms;
use serde_json::json;

use super::definition::{DefinitionRequest, ServiceDefinition, Source};
use super::{Services, operation_in_progress, static_definition};

impl Services {
    /// Replaces the backend and labels of a dynamic definition whose generation is
    /// `expected_generation`; bumps the generation. Checks in order: static (409), missing
    /// (404), stale generation (412), an operation in progress or a running service (409).
    pub fn update(
        &self,
        tenant: &str,
        request: DefinitionRequest,
        expected_generation: u64,
    ) -> Result<ServiceDefinition, NimbusError> {
        let valid = request.validate()?;
        self.check_network(tenant, &valid)?;
        let entry = self.entry(tenant, &valid.name)?;
        let def = {
            let mut state = entry.lock();
            if state.def.source == Source::StaticCatalog {
                return Err(static_definition(&valid.name));
            }
            if state.def.generation != expected_generation {
                return Err(NimbusError::precondition_failed(expected_generation, state.def.generation));
            }
            // Held until the new definition is in place, so no start can read the old one.
            let _op = entry.op.try_lock().map_err(|_| operation_in_progress(&valid.name))?;
            if !state.rt.phase.is_terminal() {
                return Err(service_active(&valid.name));
            }
            let mut def = state.def.clone();
            def.backend = valid.backend;
            def.labels = valid.labels;
            def.generation += 1;
            def.version += 1;
            def.updated_at_ms = now_ms();
            self.persist_definition(&def)?;
            state.def = def.clone();
            def
        };
        entry.changed.send_modify(|v| *v += 1);
        Ok(def)
    }
}

/// 409 `op.conflict` (`service_active`): stop the service first.
pub(super) fn service_active(name: &str) -> NimbusError {
    NimbusError::conflict("service_active", format!("service `{name}` is running; stop it first"), json!({}))
}

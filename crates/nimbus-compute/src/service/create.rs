//! Create: validate the definition and store it at generation 1 (services.md §2).

use std::sync::{Arc, PoisonError};

use nimbus_core::NimbusError;
use nimbus_core::time::now_ms;

use super::definition::{DefinitionRequest, ServiceDefinition, Source, ValidDefinition};
use super::runtime::RuntimeRecord;
use super::{Entry, Services};

impl Services {
    /// Creates a dynamic definition (409 `op.already_exists` if the name is taken, static ones
    /// included). The service starts `stopped`.
    pub fn create(&self, tenant: &str, request: DefinitionRequest) -> Result<ServiceDefinition, NimbusError> {
        let valid = request.validate()?;
        self.check_network(tenant, &valid)?;
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let key = (tenant.to_owned(), valid.name.clone());
        if entries.contains_key(&key) {
            return Err(NimbusError::already_exists_named("service", &valid.name));
        }
        let def = first_generation(tenant, valid, Source::Dynamic);
        // Stored before it becomes visible: a 201 is on disk.
        self.persist_definition(&def)?;
        entries.insert(key, Entry::new(def.clone(), RuntimeRecord::default()));
        Ok(def)
    }
}

/// A static definition, built from the operator's catalog.
pub(super) fn static_definition(tenant: &str, request: DefinitionRequest) -> Result<Arc<Entry>, NimbusError> {
    let def = first_generation(tenant, request.validate()?, Source::StaticCatalog);
    Ok(Entry::new(def, RuntimeRecord::default()))
}

/// A definition at generation 1, created now.
fn first_generation(tenant: &str, valid: ValidDefinition, source: Source) -> ServiceDefinition {
    let now = now_ms();
    ServiceDefinition {
        tenant_id: tenant.to_owned(),
        name: valid.name,
        generation: 1,
        version: 1,
        created_at_ms: now,
        updated_at_ms: now,
        labels: valid.labels,
        source,
        backend: valid.backend,
    }
}

//! The definitions collection, sorted by name with keyset pagination (conventions §9).

use std::sync::PoisonError;

use super::Services;
use super::definition::ServiceDefinition;

/// One page of definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePage {
    /// The page, by name.
    pub items: Vec<ServiceDefinition>,
    /// Definitions after this page.
    pub remaining: usize,
    /// Changes with any change to the tenant's definitions (the collection's
    /// `resourceVersion`).
    pub version: u64,
}

impl Services {
    /// The tenant's definitions sorted by name (byte order), after `after`, at most `limit`.
    pub fn list(&self, tenant: &str, after: Option<&str>, limit: usize) -> ServicePage {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut version = 0u64;
        let matching: Vec<ServiceDefinition> = entries
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, entry)| entry.snapshot().def)
            .inspect(|def| version = version.wrapping_add(def.version))
            .filter(|def| after.is_none_or(|after| def.name.as_str() > after))
            .collect();
        let remaining = matching.len().saturating_sub(limit);
        ServicePage { items: matching.into_iter().take(limit).collect(), remaining, version }
    }
}

//! Listing with filters and keyset pagination (sandboxes.md §5, conventions §9).

use std::sync::PoisonError;

use super::Sandboxes;
use super::record::{LifecycleState, SandboxRecord};

/// Filters of a listing; all given filters must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Exact lifecycle state.
    pub state: Option<LifecycleState>,
    /// Label that must be present...
    pub label_key: Option<String>,
    /// ...with this value.
    pub label_value: Option<String>,
}

impl ListFilter {
    fn keeps(&self, record: &SandboxRecord) -> bool {
        self.state.is_none_or(|s| s == record.state)
            && self.label_key.as_ref().is_none_or(|key| match (record.labels.get(key), &self.label_value) {
                (Some(value), Some(wanted)) => value == wanted,
                (Some(_), None) => true,
                (None, _) => false,
            })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPage {
    /// The page, by id.
    pub items: Vec<SandboxRecord>,
    /// Matching sandboxes after this page.
    pub remaining: usize,
    /// Bumped by any change to the tenant's sandboxes (the collection's `resourceVersion`).
    pub version: u64,
}

impl Sandboxes {
    /// The tenant's sandboxes matching `filter`, sorted by id, after `after`, at most `limit`.
    pub fn list(&self, tenant: &str, filter: &ListFilter, after: Option<&str>, limit: usize) -> SandboxPage {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut version = 0;
        let matching: Vec<SandboxRecord> = entries
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, entry)| entry.snapshot())
            .filter(|record| !self.expired(record))
            .inspect(|record| version += record.version)
            .filter(|record| filter.keeps(record))
            .filter(|record| after.is_none_or(|after| record.id.as_str() > after))
            .collect();
        let remaining = matching.len().saturating_sub(limit);
        SandboxPage { items: matching.into_iter().take(limit).collect(), remaining, version }
    }
}

//! Get and list (sessions.md §1, conventions §9 pagination). Reads apply expiry and the
//! target's state first, so they always report the correct state; they never move the TTL.

use nimbus_core::NimbusError;

use super::Sessions;
use super::record::{SessionRecord, SessionState};

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    /// The page, by id.
    pub items: Vec<SessionRecord>,
    /// Matching sessions after this page.
    pub remaining: usize,
    /// Changes whenever any of the tenant's sessions changes (the collection's
    /// `resourceVersion`).
    pub version: u64,
}

impl Sessions {
    /// One session. With `tenant`, another tenant's session is 404 like an unknown id.
    pub async fn get(&self, tenant: Option<&str>, id: &str) -> Result<SessionRecord, NimbusError> {
        let entry = self.entry(tenant, id)?;
        Ok(self.current(&entry).await)
    }

    /// The tenant's sessions in `state` (all when `None`), sorted by id, after `after`, at most
    /// `limit`.
    pub async fn list(
        &self,
        tenant: &str,
        state: Option<SessionState>,
        after: Option<&str>,
        limit: usize,
    ) -> SessionPage {
        let mut records = Vec::new();
        for entry in self.all_entries() {
            if entry.snapshot().tenant_id == tenant {
                records.push(self.current(&entry).await);
            }
        }
        let version = records.iter().map(|r| r.generation).sum();
        let matching: Vec<SessionRecord> = records
            .into_iter()
            .filter(|r| state.is_none_or(|s| s == r.state))
            .filter(|r| after.is_none_or(|after| r.id.as_str() > after))
            .collect();
        let remaining = matching.len().saturating_sub(limit);
        SessionPage { items: matching.into_iter().take(limit).collect(), remaining, version }
    }
}

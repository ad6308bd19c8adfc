//! Renew (ours, sessions.md §4): `expiresAt = max(current, now + min(ttl, max))`, never shorter.

use nimbus_core::NimbusError;
use nimbus_core::time::now_ms;

use super::open::lease_ms;
use super::record::SessionRecord;
use super::{Sessions, not_open};

impl Sessions {
    /// Extends an open session's lease; 409 `session_not_open` otherwise. Bumps the generation
    /// even when the expiry does not move.
    pub async fn renew(
        &self,
        tenant: Option<&str>,
        id: &str,
        requested_ttl_ms: Option<i64>,
    ) -> Result<SessionRecord, NimbusError> {
        let entry = self.entry(tenant, id)?;
        let lease = lease_ms(requested_ttl_ms)?;
        let record = self.current(&entry).await;
        if !record.is_open() {
            return Err(not_open(&record));
        }
        let renewed = self.update_open(&entry, |record| {
            record.expires_at_ms = record.expires_at_ms.max(now_ms().saturating_add(lease));
        });
        // `None`: an ending raced the read above.
        renewed.ok_or_else(|| not_open(&entry.snapshot()))
    }
}

//! Close (sessions.md §4) by the caller, and the closes driven by a service's force delete and
//! a tenant's deletion.

use nimbus_core::NimbusError;

use super::Sessions;
use super::record::{Ending, SessionRecord};
use crate::service::ServiceSessions;

/// Longest caller-given close reason, in characters (sessions.md §4).
const MAX_CLOSE_REASON_CHARS: usize = 256;

/// The `closeReason` for a caller's text: trimmed, `client_close` when absent or blank.
pub(super) fn client_reason(text: Option<&str>) -> Result<String, NimbusError> {
    let text = text.map(str::trim).unwrap_or("");
    if text.is_empty() {
        return Ok("client_close".to_owned());
    }
    if text.chars().count() > MAX_CLOSE_REASON_CHARS {
        return Err(NimbusError::invalid_input(
            "reason",
            format!("must be at most {MAX_CLOSE_REASON_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

impl Sessions {
    /// Closes a session with the caller's reason. A session no longer open is returned
    /// unchanged; an open one past `expiresAt` becomes `expired` instead.
    pub async fn close(
        &self,
        tenant: Option<&str>,
        id: &str,
        reason: Option<&str>,
    ) -> Result<SessionRecord, NimbusError> {
        let entry = self.entry(tenant, id)?;
        let reason = client_reason(reason)?;
        let record = self.current(&entry).await;
        if !record.is_open() {
            return Ok(record);
        }
        Ok(self.end(&entry, Ending::ClientClosed(reason)).await)
    }

    /// Ends every open session on a service (`service_force_deleted`, or `target_stopped` when
    /// its sandbox went away). Returns how many were ended.
    pub async fn close_for_service(&self, tenant: &str, name: &str, reason: Ending) -> usize {
        let mut closed = 0;
        for entry in self.all_entries() {
            let record = entry.snapshot();
            if record.tenant_id == tenant
                && record.service_name() == Some(name)
                && let Some(record) = self.transition(&entry, reason.clone())
            {
                closed += 1;
                self.teardown(&record).await;
            }
        }
        closed
    }

    /// How many sessions on a service are open (a service delete without `force` refuses then).
    pub fn open_count_for_service(&self, tenant: &str, name: &str) -> usize {
        self.all_entries()
            .iter()
            .map(|e| e.snapshot())
            .filter(|r| r.tenant_id == tenant && r.is_open() && r.service_name() == Some(name))
            .filter(|r| self.due(r).is_none())
            .count()
    }

    /// The tenants that own a session record.
    pub fn tenant_ids(&self) -> std::collections::BTreeSet<String> {
        self.all_entries().iter().map(|entry| entry.snapshot().tenant_id).collect()
    }

    /// The tenant was deleted: ends its open sessions (`tenant_deleted`) and forgets them all.
    pub async fn close_for_tenant(&self, tenant: &str) {
        for entry in self.all_entries() {
            let record = entry.snapshot();
            if record.tenant_id != tenant {
                continue;
            }
            self.end(&entry, Ending::TenantDeleted).await;
            self.forget(tenant, &record.id);
        }
    }
}

/// The hooks the service registry calls (a delete checks open sessions; a forced delete ends
/// them). The ending is recorded at once; the teardown (attachments, processes) follows on the
/// runtime.
impl ServiceSessions for Sessions {
    fn open_count(&self, tenant: &str, name: &str) -> usize {
        self.open_count_for_service(tenant, name)
    }

    fn close_for_force_delete(&self, tenant: &str, name: &str) {
        let mut ended = Vec::new();
        for entry in self.all_entries() {
            let record = entry.snapshot();
            if record.tenant_id == tenant && record.service_name() == Some(name) {
                ended.extend(self.transition(&entry, Ending::ServiceForceDeleted));
            }
        }
        let (Some(me), Ok(runtime)) = (self.me.upgrade(), tokio::runtime::Handle::try_current()) else { return };
        runtime.spawn(async move {
            for record in ended {
                me.teardown(&record).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_trimmed_and_bounded() {
        assert_eq!(client_reason(None).ok().as_deref(), Some("client_close"));
        assert_eq!(client_reason(Some("  ")).ok().as_deref(), Some("client_close"));
        assert_eq!(client_reason(Some(" done \n")).ok().as_deref(), Some("done"));
        assert!(client_reason(Some(&"x".repeat(256))).is_ok());
        assert!(client_reason(Some(&"x".repeat(257))).is_err());
    }
}

//! Open: the checks of sessions.md §2 in the contract's order, then the record.

use std::sync::PoisonError;

use nimbus_core::NimbusError;
use nimbus_core::ids::mint_ulid;
use nimbus_core::limits::{SESSION_DEFAULT_TTL_MS, SESSION_MAX_TTL_MS, TENANT_MAX_OPEN_SESSIONS};
use nimbus_core::time::now_ms;
use serde_json::json;

use super::browser::BrowserOptions;
use super::record::{SessionRecord, SessionState, TargetRef, TargetSnapshot};
use super::target::{Channel, ServiceBackend, SessionTarget};
use super::{Entry, Sessions};
use crate::sandbox::{LifecycleState, Profile};

/// A validated-shape open request: the tenant exists, the target is resolved, and the channel
/// names parsed (steps 1–3 of sessions.md §2 are the caller's).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSession {
    /// The target.
    pub target: SessionTarget,
    /// The channels, validated by [`Channel::parse_list`].
    pub channels: Vec<Channel>,
    /// `requestedTtlMs` as given.
    pub requested_ttl_ms: Option<i64>,
    /// `browser` (ours): the context's defaults, for sessions on a browser service.
    pub browser: Option<BrowserOptions>,
}

/// The effective lease for a requested TTL: default when absent, clamped to the maximum; `0`
/// or negative is 400.
pub(super) fn lease_ms(requested: Option<i64>) -> Result<i64, NimbusError> {
    let ttl = match requested {
        None => SESSION_DEFAULT_TTL_MS,
        Some(ms) if ms < 1 => return Err(NimbusError::invalid_input("requestedTtlMs", "must be at least 1")),
        Some(ms) => u64::try_from(ms).unwrap_or(u64::MAX).min(SESSION_MAX_TTL_MS),
    };
    Ok(i64::try_from(ttl).unwrap_or(i64::MAX))
}

fn target_not_ready(state: &str) -> NimbusError {
    NimbusError::conflict(
        "target_not_ready",
        format!("the target is {state}, not ready"),
        json!({ "lifecycleState": state }),
    )
}

fn channels_allowed(channels: &[Channel], allowed: &[Channel], what: &str) -> Result<(), NimbusError> {
    match channels.iter().position(|c| !allowed.contains(c)) {
        None => Ok(()),
        Some(i) => Err(NimbusError::invalid_input(
            format!("channels[{i}]"),
            format!("`{}` is not available on {what}", channels[i].as_str()),
        )),
    }
}

impl Sessions {
    /// 409 `target_not_ready` unless the service's sandbox is `ready`.
    fn require_ready(&self, tenant: &str, sandbox_id: Option<&str>) -> Result<(), NimbusError> {
        let state = sandbox_id.and_then(|id| self.sandboxes.get(tenant, id).map(|s| s.state).ok());
        if state == Some(LifecycleState::Ready) {
            Ok(())
        } else {
            Err(target_not_ready(state.map_or("starting", LifecycleState::as_str)))
        }
    }

    /// Opens a session on a sandbox or a resolved service (steps 4–5 and the tenant quota).
    pub async fn open_session(&self, tenant: &str, request: OpenSession) -> Result<SessionRecord, NimbusError> {
        let OpenSession { target, channels, requested_ttl_ms, browser } = request;
        let mut browser_sandbox = None;
        let (target, snapshot) = match target {
            SessionTarget::Sandbox { id } => {
                let sandbox = self.sandboxes.get(tenant, &id)?;
                if sandbox.state != LifecycleState::Ready {
                    return Err(target_not_ready(sandbox.state.as_str()));
                }
                channels_allowed(&channels, &Channel::SANDBOX, "a sandbox")?;
                let profile = match sandbox.profile {
                    Profile::Worker => "worker",
                    Profile::Desktop => "desktop",
                };
                let snapshot = TargetSnapshot::Sandbox {
                    id: id.clone(),
                    generation: 1,
                    profile: profile.to_owned(),
                    backend: sandbox.backend.as_str().to_owned(),
                };
                (TargetRef::Sandbox { id }, snapshot)
            }
            SessionTarget::Service { name, sandbox_id, generation, backend, provider } => {
                match backend {
                    ServiceBackend::Sandbox => {
                        channels_allowed(&channels, &Channel::SANDBOX, "a sandbox-backed service")?;
                        self.require_ready(tenant, sandbox_id.as_deref())?;
                    }
                    ServiceBackend::BuiltIn if provider.as_deref() == Some("browser") => {
                        channels_allowed(&channels, &Channel::BROWSER, "a browser service")?;
                        self.require_ready(tenant, sandbox_id.as_deref())?;
                        browser_sandbox = sandbox_id.clone();
                    }
                    ServiceBackend::BuiltIn | ServiceBackend::External => {
                        channels_allowed(&channels, &[], "this service")?;
                    }
                }
                let snapshot =
                    TargetSnapshot::Service { name: name.clone(), generation, backend, provider, sandbox_id };
                (TargetRef::Service { name }, snapshot)
            }
        };
        let lease = lease_ms(requested_ttl_ms)?;
        if browser.is_some() && browser_sandbox.is_none() {
            return Err(NimbusError::invalid_input("browser", "is only allowed for sessions on a browser service"));
        }
        // Made before the admission lock (a context takes a round trip to Chromium), disposed
        // again if the open is refused after all.
        let browser = match &browser_sandbox {
            Some(sandbox_id) => Some(self.open_browser(tenant, sandbox_id, browser.unwrap_or_default()).await?),
            None => None,
        };
        let refused = async |error: NimbusError| {
            if let (Some(sandbox_id), Some((binding, _))) = (&browser_sandbox, &browser) {
                self.discard_browser(tenant, sandbox_id, binding).await;
            }
            Err(error)
        };

        let _admission = self.admission.lock().await;
        let open = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            entries
                .values()
                .map(|e| e.snapshot())
                .filter(|r| r.tenant_id == tenant && r.is_open() && r.expires_at_ms > now_ms())
                .count()
        };
        if open >= TENANT_MAX_OPEN_SESSIONS {
            return refused(NimbusError::resource_exhausted(
                "sessions",
                TENANT_MAX_OPEN_SESSIONS as u64,
                Some(open as u64),
            ))
            .await;
        }
        let now = now_ms();
        let record = SessionRecord {
            tenant_id: tenant.to_owned(),
            id: format!("session-{}", mint_ulid()),
            generation: 1,
            created_at_ms: now,
            updated_at_ms: now,
            transition_at_ms: now,
            target,
            snapshot,
            channels,
            expires_at_ms: now.saturating_add(lease),
            state: SessionState::Open,
            closed_at_ms: None,
            ending: None,
            browser: browser.as_ref().map(|(binding, _)| binding.clone()),
        };
        // Before anyone learns of it: a session whose record is not on disk is refused.
        if let Err(e) = self.persist(&record) {
            return refused(e).await;
        }
        if let Some((_, viewport)) = browser {
            self.browser_opened(&record, viewport);
        }
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.id.clone(), Entry::new(record.clone()));
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_default_clamp_and_refuse_zero() {
        assert_eq!(lease_ms(None).ok(), Some(900_000));
        assert_eq!(lease_ms(Some(1)).ok(), Some(1));
        assert_eq!(lease_ms(Some(10_000_000)).ok(), Some(3_600_000));
        assert!(lease_ms(Some(0)).is_err());
        assert!(lease_ms(Some(-5)).is_err());
    }

    #[test]
    fn channel_lists_are_checked() {
        let list = |names: &[&str]| Channel::parse_list(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&["stdio", "files"]).ok(), Some(vec![Channel::Stdio, Channel::Files]));
        assert!(list(&[]).is_err());
        assert!(list(&["stdio", "stdio"]).is_err());
        assert!(list(&["shell"]).is_err());
        assert!(list(&["stdio"; 9]).is_err());
        assert!(channels_allowed(&[Channel::Cdp], &Channel::SANDBOX, "a sandbox").is_err());
    }
}

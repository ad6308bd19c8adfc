//! Expiry and target checks: applied lazily by every read ([`Sessions::due`]), by a background
//! sweeper at least once per second, and once at start-up for the stored sessions.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use nimbus_core::limits::{SESSION_RETENTION_MS, SESSION_SWEEP_MS};
use nimbus_core::time::now_ms;
use nimbus_store::records::Row;

use super::record::{Ending, SessionRecord};
use super::{Entry, Sessions};
use crate::sandbox::LifecycleState;

impl Sessions {
    /// The ending an open session is due for now: `expired` past `expiresAt`, else
    /// `target_stopped` when its sandbox is no longer `ready` (or gone). `None` when it stays
    /// open (or is not open).
    pub(super) fn due(&self, record: &SessionRecord) -> Option<Ending> {
        if !record.is_open() {
            return None;
        }
        if record.expires_at_ms <= now_ms() {
            return Some(Ending::Expired);
        }
        let sandbox_id = record.snapshot.sandbox_id()?;
        match self.sandboxes.get(&record.tenant_id, sandbox_id) {
            Ok(sandbox) if sandbox.state == LifecycleState::Ready => None,
            _ => Some(Ending::TargetStopped),
        }
    }

    /// Ends due sessions and forgets ended ones past their retention, every
    /// [`SESSION_SWEEP_MS`]. Runs until its task is aborted (the server does so on shutdown);
    /// an abort between two awaits leaves every record consistent (each ending is persisted
    /// before its teardown starts, and a teardown cut short only leaves processes that the
    /// target's own ending or the next start-up's checks end).
    pub async fn sweep(self: Arc<Self>) {
        let period = Duration::from_millis(SESSION_SWEEP_MS);
        let retention = i64::try_from(SESSION_RETENTION_MS).unwrap_or(i64::MAX);
        loop {
            tokio::time::sleep(period).await;
            for entry in self.all_entries() {
                let record = entry.snapshot();
                if let Some(ending) = self.due(&record) {
                    self.end(&entry, ending).await;
                } else if record.closed_at_ms.is_some_and(|at| at.saturating_add(retention) <= now_ms()) {
                    self.forget(&record.tenant_id, &record.id);
                }
            }
        }
    }

    /// Loads the stored sessions. An open session whose target was re-adopted stays open (its
    /// attachments must be re-established); otherwise it closes with `target_stopped`. Expiry
    /// is left to the first read or sweep.
    pub(super) fn recover(&self, rows: Vec<Row>) {
        for row in rows {
            let record: SessionRecord = match serde_json::from_str(&row.record) {
                Ok(record) => record,
                Err(e) => {
                    tracing::error!(error = %e, session = %row.key, "unreadable session record; dropping it");
                    self.forget(&row.tenant_id, &row.key);
                    continue;
                }
            };
            let entry = Entry::new(record.clone());
            self.entries.write().unwrap_or_else(PoisonError::into_inner).insert(record.id.clone(), entry.clone());
            if self.due(&record) == Some(Ending::TargetStopped) {
                self.transition(&entry, Ending::TargetStopped);
            }
        }
    }
}

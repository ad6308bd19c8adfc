//! Restart: synchronous (stop then start) or fenced (asynchronous, answered with a receipt
//! that a repeated `requestId` replays) (services.md §6).

use std::sync::Arc;

use nimbus_core::NimbusError;
use nimbus_core::limits::{SERVICE_MAX_REQUEST_ID_CHARS, SERVICE_RECEIPT_RETENTION_MS};
use nimbus_core::time::now_ms;

use super::runtime::{Disposition, Receipt, ServiceView};
use super::{Halt, Services, built_in_unavailable, operation_in_progress, view};

impl Services {
    /// Stops the service (if running) and starts it again with a fresh sandbox; returns once
    /// the new sandbox exists. Resets `restartCount`.
    pub async fn restart(self: &Arc<Self>, tenant: &str, name: &str) -> Result<ServiceView, NimbusError> {
        let entry = self.entry(tenant, name)?;
        if let Some(provider) = entry.snapshot().def.backend.declared_only() {
            return Err(built_in_unavailable(provider));
        }
        let _op = entry.try_op()?;
        self.change(&entry, |rt| rt.restart_epoch += 1);
        self.halt(&entry, Halt::Restart).await;
        self.start_locked(&entry).await?;
        Ok(view(&entry.snapshot()))
    }

    /// A fenced restart: `source_generation` must be the current generation (else 412);
    /// the restart runs in the background and the receipt is returned at once. A `request_id`
    /// seen within the receipt retention returns its original receipt, `replayed`, and
    /// restarts nothing.
    pub async fn restart_fenced(
        self: &Arc<Self>,
        tenant: &str,
        name: &str,
        source_generation: u64,
        request_id: &str,
    ) -> Result<(Receipt, Disposition), NimbusError> {
        let length = request_id.chars().count();
        if length == 0 || length > SERVICE_MAX_REQUEST_ID_CHARS {
            return Err(NimbusError::invalid_input(
                "requestId",
                format!("must be 1 to {SERVICE_MAX_REQUEST_ID_CHARS} characters"),
            ));
        }
        let entry = self.entry(tenant, name)?;
        let (receipt, op) = {
            let mut state = entry.lock();
            let now = now_ms();
            let retention = i64::try_from(SERVICE_RECEIPT_RETENTION_MS).unwrap_or(i64::MAX);
            state.rt.receipts.retain(|r| r.created_at_ms.saturating_add(retention) > now);
            if let Some(receipt) = state.rt.receipts.iter().find(|r| r.request_id == request_id) {
                return Ok((receipt.clone(), Disposition::Replayed));
            }
            if let Some(provider) = state.def.backend.declared_only() {
                return Err(built_in_unavailable(provider));
            }
            if state.def.generation != source_generation {
                return Err(NimbusError::precondition_failed(source_generation, state.def.generation));
            }
            let op = entry.op.clone().try_lock_owned().map_err(|_| operation_in_progress(name))?;
            state.rt.restart_epoch += 1;
            let receipt = Receipt {
                request_id: request_id.to_owned(),
                workload_restart_request_id: format!("restart-{}", nimbus_core::ids::mint_ulid()),
                source_generation,
                restart_epoch: state.rt.restart_epoch,
                created_at_ms: now,
            };
            state.rt.receipts.push(receipt.clone());
            state.rt.version += 1;
            // Persisted before the 202: a replay after a server restart still finds it.
            self.persist_runtime(&state);
            (receipt, op)
        };
        entry.changed.send_modify(|v| *v += 1);
        let this = self.clone();
        tokio::spawn(async move {
            let _op = op;
            this.halt(&entry, Halt::Restart).await;
            if let Err(e) = this.start_locked(&entry).await {
                tracing::warn!(service = %entry.name, error = %e, "a fenced restart could not start the service");
            }
        });
        Ok((receipt, Disposition::Applied))
    }
}

//! Create: validate, admit against the tenant's quotas, resolve (or pull) the image, start.

use std::sync::{Arc, PoisonError};

use nimbus_core::NimbusError;
use nimbus_core::limits::{
    SANDBOX_DISK_RESERVE_BYTES, TENANT_MAX_ACTIVE_SANDBOXES, TENANT_MAX_SANDBOX_CPUS, TENANT_MAX_SANDBOX_MEMORY_BYTES,
};
use nimbus_core::time::now_ms;
use nimbus_sandbox::backend::{Exit, LaunchSpec, RuntimeState, TerminationReason};

use super::record::{ImageRef, LifecycleState, ProcessEcho, SandboxRecord};
use super::request::{CreateSandbox, ValidCreate, mint_id};
use super::{Entry, Sandboxes};
use crate::blocking;

impl Sandboxes {
    /// Creates and starts a sandbox. Synchronous through image resolution (pulling if needed)
    /// and process spawn: the answer is usually `ready`, or `failed` with `start_failed`.
    pub async fn create(self: &Arc<Self>, tenant: &str, request: CreateSandbox) -> Result<SandboxRecord, NimbusError> {
        let valid = request.validate()?;
        self.check_egress(tenant, &valid.request.network.egress, "spec.network.egress")?;
        let entry = self.admit(tenant, &valid).await?;
        let id = entry.snapshot().id;
        match self.launch(&entry, &valid).await {
            Ok(record) => Ok(record),
            Err(e) => {
                // Nothing started: the sandbox never existed for the caller.
                self.forget(tenant, &id);
                Err(e)
            }
        }
    }

    /// Checks the quotas and inserts the `starting` record under one lock, so concurrent
    /// creates cannot overshoot a quota.
    async fn admit(&self, tenant: &str, valid: &ValidCreate) -> Result<Arc<Entry>, NimbusError> {
        let _admission = self.admission.lock().await;
        // The databases' reserve: a new sandbox could fill its disk into it.
        if let Some(free) = nimbus_sandbox::runtime::disk::free_bytes(&self.data_dir)
            && free < SANDBOX_DISK_RESERVE_BYTES
        {
            return Err(NimbusError::resource_exhausted("data_dir_disk", SANDBOX_DISK_RESERVE_BYTES, Some(free)));
        }
        let (count, cpus, memory) = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            entries
                .iter()
                .filter(|((t, _), _)| t == tenant)
                .map(|(_, e)| e.snapshot())
                .filter(SandboxRecord::is_active)
                .fold((0u64, 0u64, 0u64), |(n, c, m), r| {
                    (n + 1, c + u64::from(r.resources.cpu_count), m + r.resources.memory_limit_bytes)
                })
        };
        let asked = valid.resources;
        if count + 1 > TENANT_MAX_ACTIVE_SANDBOXES {
            return Err(NimbusError::resource_exhausted("sandboxes", TENANT_MAX_ACTIVE_SANDBOXES, Some(count)));
        }
        if cpus + u64::from(asked.cpu_count) > TENANT_MAX_SANDBOX_CPUS {
            return Err(NimbusError::resource_exhausted("cpu", TENANT_MAX_SANDBOX_CPUS, Some(cpus)));
        }
        if memory + asked.memory_limit_bytes > TENANT_MAX_SANDBOX_MEMORY_BYTES {
            return Err(NimbusError::resource_exhausted("memory", TENANT_MAX_SANDBOX_MEMORY_BYTES, Some(memory)));
        }
        let request = &valid.request;
        let now = now_ms();
        let record = SandboxRecord {
            tenant_id: tenant.to_owned(),
            id: mint_id(&request.owner),
            version: 1,
            generation: 1,
            created_at_ms: now,
            updated_at_ms: now,
            transition_at_ms: now,
            labels: request.labels.clone(),
            profile: request.profile,
            owner: request.owner.clone(),
            backend: request.backend,
            requested_reference: request.reference.clone(),
            process: ProcessEcho {
                argv_count: request.process.argv.as_ref().map_or(0, Vec::len),
                entrypoint_count: request.process.entrypoint.as_ref().map(Vec::len),
                command_count: request.process.command.as_ref().map(Vec::len),
                env_count: request.process.env.len(),
                cwd: request.process.cwd.clone(),
                user: request.process.user.clone(),
                terminal: request.process.terminal,
            },
            resources: asked,
            network: request.network.clone(),
            private_ports: request.private_ports.clone(),
            state: LifecycleState::Starting,
            image: None,
            started_at_ms: None,
            finished_at_ms: None,
            exit_code: None,
            termination_reason: None,
            message: None,
            retained_until_ms: None,
        };
        // Before anything starts: a sandbox whose record is not on disk is refused.
        self.persist(&record)?;
        let entry = Entry::new(record.clone());
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((record.tenant_id, record.id), entry.clone());
        Ok(entry)
    }

    /// Resolves the image, merges its config, and starts the backend. An `Err` means nothing
    /// was started.
    async fn launch(self: &Arc<Self>, entry: &Arc<Entry>, valid: &ValidCreate) -> Result<SandboxRecord, NimbusError> {
        let backend = self.backends.get(valid.request.backend).clone();
        let image = self.images.ensure(&valid.reference.to_string()).await?;
        let images = self.images.clone();
        let digest = image.digest.clone();
        let config = blocking(move || images.run_config(&digest)).await??;
        let process = valid.request.process.resolve(&config)?;
        let image_rootfs = self.images.rootfs(&image.digest).ok_or_else(NimbusError::internal)?;
        let id = entry.snapshot().id;
        let spec = LaunchSpec {
            id: id.clone(),
            image_rootfs,
            argv: process.argv.clone(),
            env: process.env.clone(),
            cwd: process.cwd.clone(),
            user: process.user.clone(),
            terminal: valid.request.process.terminal,
            resources: valid.resources,
            egress: None,
        };
        // The reference the caller asked for (normalized), not whichever name the image was
        // first stored under: one image may carry several names.
        let reference = valid.reference.to_string();
        self.update(entry, |record| {
            record.image = Some(ImageRef { reference, digest: image.digest.clone() });
            record.process.argv_count = process.argv.len();
            record.process.env_count = process.env.len();
            record.process.cwd = Some(process.cwd.clone());
            record.process.user = Some(process.user.clone());
        });
        let started = blocking(move || backend.start(&spec)).await??;
        if self.entry(&entry.snapshot().tenant_id, &id).is_err() {
            // Deleted while starting: the delete already answered; free what started.
            let backend = self.backends.get(valid.request.backend).clone();
            blocking(move || backend.remove(&id)).await??;
            return Ok(entry.snapshot());
        }
        let record = match started {
            RuntimeState::Running { started_at_ms } => {
                let record = self.update(entry, |record| {
                    record.state = LifecycleState::Ready;
                    record.started_at_ms = Some(i64::try_from(started_at_ms).unwrap_or(i64::MAX));
                    record.transition_at_ms = now_ms();
                });
                self.watch_exit(entry.clone());
                record
            }
            RuntimeState::Ended(exit) => self.finish(entry, &exit),
        };
        Ok(record)
    }
}

/// The ending recorded for a sandbox whose backend vanished.
pub(super) fn lost(message: &str) -> Exit {
    Exit {
        reason: TerminationReason::ServerRestartLost,
        exit_code: None,
        message: Some(message.to_owned()),
        finished_at_ms: u64::try_from(now_ms()).unwrap_or(0),
    }
}

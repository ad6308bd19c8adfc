//! Start-up: stored definitions and runtime records are loaded, the operator's static
//! definitions added, and every service that was running is resumed: a re-adopted sandbox
//! keeps running and its probe loop resumes; one that ended meanwhile goes through the
//! restart policy (services.md §7).

use std::sync::{Arc, PoisonError};

use nimbus_core::NimbusError;
use nimbus_store::records::Row;

use super::create::static_definition;
use super::definition::{DefinitionRequest, ServiceBackend, ServiceDefinition};
use super::runtime::{Phase, RuntimeRecord, Termination};
use super::supervise::{Begin, lost};
use super::{Entry, Halt, RUNTIME_KIND, Services};

impl Services {
    /// Builds the entries from the stored rows and the static definitions. Runtime records of
    /// services that no longer exist are dropped, and their sandboxes deleted by
    /// [`Services::resume`].
    pub(super) fn load(
        &self,
        definitions: Vec<Row>,
        runtimes: Vec<Row>,
        statics: Vec<(String, DefinitionRequest)>,
    ) -> Result<(), NimbusError> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        for row in definitions {
            match serde_json::from_str::<ServiceDefinition>(&row.record) {
                Ok(def) => {
                    entries
                        .insert((def.tenant_id.clone(), def.name.clone()), Entry::new(def, RuntimeRecord::default()));
                }
                Err(e) => tracing::error!(error = %e, service = %row.key, "unreadable service definition; ignoring it"),
            }
        }
        for (tenant, request) in statics {
            let entry = static_definition(&tenant, request)?;
            let key = (tenant, entry.name.clone());
            if entries.contains_key(&key) {
                tracing::warn!(
                    tenant = %key.0, service = %key.1,
                    "the service catalog declares a service that also exists as a dynamic definition; the catalog's wins"
                );
            }
            entries.insert(key, entry);
        }
        for row in runtimes {
            let key = (row.tenant_id.clone(), row.key.clone());
            match (entries.get(&key), serde_json::from_str::<RuntimeRecord>(&row.record)) {
                (Some(entry), Ok(rt)) => entry.lock().rt = rt,
                (Some(_), Err(e)) => {
                    tracing::error!(error = %e, service = %row.key, "unreadable service runtime record; starting it over");
                }
                (None, _) => {
                    self.orphans.lock().unwrap_or_else(PoisonError::into_inner).push(key.clone());
                    let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Err(e) = nimbus_store::records::delete(&db, RUNTIME_KIND, &key.0, &key.1) {
                        tracing::error!(error = %e, service = %key.1, "cannot remove an orphaned service record");
                    }
                }
            }
        }
        Ok(())
    }

    /// Resumes every service that was running when the last server stopped, finishes stops
    /// that were in progress, and deletes the sandboxes of services that no longer exist.
    /// Call once, from the async runtime, after [`Services::open`].
    pub async fn resume(self: &Arc<Self>) {
        let orphans = std::mem::take(&mut *self.orphans.lock().unwrap_or_else(PoisonError::into_inner));
        for (tenant, name) in orphans {
            self.sandboxes.delete_service_sandboxes(&tenant, &name).await;
        }
        let entries: Vec<Arc<Entry>> =
            self.entries.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for entry in entries {
            let state = entry.snapshot();
            let rt = &state.rt;
            match state.def.backend {
                ServiceBackend::External(external) if rt.enabled => {
                    self.change(&entry, |rt| rt.phase = Phase::Starting);
                    self.spawn_health_loop(&entry, external);
                }
                backend if rt.enabled && backend.sandboxed().is_some() => {
                    let Some(spec) = backend.sandboxed().cloned() else { continue };
                    let begin = match &rt.sandbox_id {
                        Some(id) => match self.sandboxes.get(&entry.tenant, id) {
                            Ok(sandbox) if !sandbox.state.is_terminal() => {
                                let probe_passed = matches!(rt.phase, Phase::Ready | Phase::NotReady);
                                Begin::Watch { sandbox: Box::new(sandbox), probe_passed }
                            }
                            Ok(sandbox) => Begin::Ended(Termination::of(&sandbox)),
                            Err(_) => Begin::Ended(lost(id, "a service's sandbox is gone after a server restart")),
                        },
                        // A restart was pending.
                        None => Begin::Launch,
                    };
                    self.spawn_run(&entry, spec, begin);
                }
                _ if !rt.phase.is_terminal() => {
                    // A stop was in progress (or the service cannot run): finish it.
                    let this = self.clone();
                    tokio::spawn(async move { this.halted(&entry, Halt::Stop).await });
                }
                _ => {}
            }
        }
    }
}

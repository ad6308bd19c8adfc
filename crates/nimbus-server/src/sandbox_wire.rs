//! Wire shapes of the sandbox routes (sandboxes.md §2–§3): the strict create body, its
//! conversion into the control plane's request, and the `Sandbox` resource.

use std::collections::BTreeMap;

use nimbus_compute::sandbox::request::{Owner, ProcessRequest, ResourcesRequest};
use nimbus_compute::sandbox::{BackendKind, CreateSandbox, Profile, SandboxPage, SandboxRecord};
use nimbus_core::NimbusError;
use nimbus_core::time::rfc3339_ms;
use nimbus_egress::rules::{EgressRules, NetworkSpec};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /api/tenants/{t}/sandboxes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateSandboxBody {
    profile: Option<String>,
    spec: SpecBody,
    labels: Option<BTreeMap<String, String>>,
}

/// A sandbox spec (sandboxes.md §2 `spec`); services embed one as `spec.backend.sandbox`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpecBody {
    tenant_id: Option<String>,
    owner: Option<OwnerBody>,
    backend: Option<String>,
    root: RootBody,
    process: Option<ProcessBody>,
    resources: Option<ResourcesBody>,
    network: Option<NetworkSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OwnerBody {
    kind: String,
    display_name: Option<String>,
    service_name: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RootBody {
    kind: String,
    source: Option<SourceBody>,
    path: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SourceBody {
    kind: String,
    reference: Option<String>,
    context: Option<Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProcessBody {
    argv: Option<Vec<String>>,
    args: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    command: Option<Vec<String>>,
    env: Option<Vec<String>>,
    cwd: Option<String>,
    user: Option<String>,
    terminal: Option<bool>,
}

/// `spec.resources` of a sandbox (and `browser.resources` of a browser service).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourcesBody {
    cpu_count: Option<u64>,
    memory_limit_bytes: Option<u64>,
    pids_limit: Option<u64>,
    disk_limit_bytes: Option<u64>,
}

impl ResourcesBody {
    /// The request (ranges are checked with the rest of the sandbox).
    pub fn into_request(self) -> ResourcesRequest {
        ResourcesRequest {
            cpu_count: self.cpu_count,
            memory_limit_bytes: self.memory_limit_bytes,
            pids_limit: self.pids_limit,
            disk_limit_bytes: self.disk_limit_bytes,
        }
    }
}

impl CreateSandboxBody {
    /// Checks the body's choices (profile, tenant, owner, backend, root) and converts it.
    pub fn into_request(self, tenant: &str) -> Result<CreateSandbox, NimbusError> {
        let profile = match self.profile.as_deref() {
            None | Some("worker") => Profile::Worker,
            Some("desktop") => Profile::Desktop,
            Some(_) => return Err(NimbusError::invalid_input("profile", "must be \"worker\" or \"desktop\"")),
        };
        let spec = self.spec;
        let owner = match spec.owner.as_ref() {
            None => Owner::default(),
            Some(owner) if owner.kind == "standalone" => {
                if owner.service_name.is_some() {
                    return Err(NimbusError::invalid_input("spec.owner.serviceName", "is only for service owners"));
                }
                Owner::Standalone { display_name: owner.display_name.clone() }
            }
            Some(owner) if owner.kind == "service" => {
                return Err(NimbusError::invalid_input(
                    "spec.owner.kind",
                    "service sandboxes come only from services; use \"standalone\"",
                ));
            }
            Some(_) => return Err(NimbusError::invalid_input("spec.owner.kind", "must be \"standalone\"")),
        };
        spec.into_request(tenant, owner, profile, self.labels.unwrap_or_default())
    }
}

impl SpecBody {
    /// The sandbox a service runs: `owner.kind` must be `service`, and `serviceName`, if given,
    /// the service's name. Field errors name paths inside this spec (`owner.kind`, …).
    pub fn into_service_request(self, tenant: &str, service: &str) -> Result<CreateSandbox, NimbusError> {
        match self.owner.as_ref() {
            None => return Err(NimbusError::invalid_input("spec.owner", "is required (`{\"kind\": \"service\"}`)")),
            Some(owner) if owner.kind != "service" => {
                return Err(NimbusError::invalid_input("spec.owner.kind", "must be \"service\""));
            }
            Some(owner) if owner.display_name.is_some() => {
                return Err(NimbusError::invalid_input("spec.owner.displayName", "is only for standalone owners"));
            }
            Some(owner) if owner.service_name.as_deref().is_some_and(|n| n != service) => {
                return Err(NimbusError::invalid_input("spec.owner.serviceName", "must equal the service name"));
            }
            Some(_) => {}
        }
        let owner = Owner::Service { service_name: service.to_owned() };
        self.into_request(tenant, owner, Profile::Worker, BTreeMap::new())
    }

    /// Checks the tenant, backend and root, and converts the spec. Field errors are named
    /// `spec.<path>`.
    fn into_request(
        self,
        tenant: &str,
        owner: Owner,
        profile: Profile,
        labels: BTreeMap<String, String>,
    ) -> Result<CreateSandbox, NimbusError> {
        let spec = self;
        if spec.tenant_id.as_deref().is_some_and(|t| t != tenant) {
            return Err(NimbusError::invalid_input("spec.tenantId", "must equal the tenant in the path"));
        }
        let backend = match spec.backend.as_deref() {
            None | Some("container") => BackendKind::Container,
            Some("krun") => BackendKind::Krun,
            Some(_) => return Err(NimbusError::invalid_input("spec.backend", "must be \"container\" or \"krun\"")),
        };
        let reference = root_reference(spec.root)?;
        let process = spec.process.map(ProcessBody::into_request).unwrap_or_default();
        let resources = spec.resources.map(ResourcesBody::into_request).unwrap_or_default();
        let network = spec.network.unwrap_or_default();
        Ok(CreateSandbox {
            profile,
            owner,
            backend,
            reference,
            process,
            resources,
            network,
            labels,
            private_ports: Vec::new(),
        })
    }
}

/// Only `oci_image` roots from a `reference` are open to callers; `rootfs` roots and `build`
/// sources are operator-only.
fn root_reference(root: RootBody) -> Result<String, NimbusError> {
    match root.kind.as_str() {
        "oci_image" => {}
        "rootfs" => return Err(NimbusError::invalid_input("spec.root.kind", "rootfs roots are operator-only")),
        _ => return Err(NimbusError::invalid_input("spec.root.kind", "must be \"oci_image\"")),
    }
    if root.path.is_some() {
        return Err(NimbusError::invalid_input("spec.root.path", "is only for rootfs roots"));
    }
    let source = root.source.ok_or_else(|| NimbusError::invalid_input("spec.root.source", "is required"))?;
    match source.kind.as_str() {
        "reference" => {}
        "build" => return Err(NimbusError::invalid_input("spec.root.source.kind", "build sources are operator-only")),
        _ => return Err(NimbusError::invalid_input("spec.root.source.kind", "must be \"reference\"")),
    }
    if source.context.is_some() {
        return Err(NimbusError::invalid_input("spec.root.source.context", "is only for build sources"));
    }
    source
        .reference
        .filter(|r| !r.is_empty())
        .ok_or_else(|| NimbusError::invalid_input("spec.root.source.reference", "is required"))
}

impl ProcessBody {
    fn into_request(self) -> ProcessRequest {
        ProcessRequest {
            // `argv` wins over its alias `args`.
            argv: self.argv.or(self.args),
            entrypoint: self.entrypoint,
            command: self.command,
            env: self.env.unwrap_or_default(),
            cwd: self.cwd,
            user: self.user,
            terminal: self.terminal.unwrap_or(false),
        }
    }
}

/// `spec.owner` as echoed.
pub fn owner_json(owner: &Owner) -> Value {
    match owner {
        Owner::Standalone { display_name: None } => json!({ "kind": "standalone" }),
        Owner::Standalone { display_name: Some(name) } => json!({ "kind": "standalone", "displayName": name }),
        Owner::Service { service_name } => json!({ "kind": "service", "serviceName": service_name }),
    }
}

/// A redacted list: `{"redacted": true, "valueCount": N}`.
pub fn redacted(count: usize) -> Value {
    json!({ "redacted": true, "valueCount": count })
}

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::from(rfc3339_ms(ms)))
}

/// The `Sandbox` resource (sandboxes.md §3): argv, entrypoint, command and environment are
/// counted, never shown.
pub fn sandbox_json(record: &SandboxRecord) -> Value {
    let state = record.state;
    let mut process = json!({
        "argv": redacted(record.process.argv_count),
        "environment": redacted(record.process.env_count),
        "cwd": record.process.cwd,
        "terminal": record.process.terminal,
    });
    if let Some(count) = record.process.entrypoint_count {
        process["entrypoint"] = redacted(count);
    }
    if let Some(count) = record.process.command_count {
        process["command"] = redacted(count);
    }
    if let Some(user) = &record.process.user {
        process["user"] = user.clone().into();
    }
    let owner = owner_json(&record.owner);
    let ready = state.as_str() == "ready";
    let condition_message = match (&record.message, ready) {
        (_, true) => format!("sandbox `{}` is ready", record.id),
        (Some(message), false) => message.clone(),
        (None, false) => format!("sandbox `{}` is {}", record.id, state.as_str()),
    };
    json!({
        "metadata": {
            "tenantId": record.tenant_id,
            "id": record.id,
            "generation": record.generation,
            "resourceVersion": format!("sandbox-v{}", record.version),
            "createdAt": rfc3339_ms(record.created_at_ms),
            "updatedAt": rfc3339_ms(record.updated_at_ms),
            "labels": record.labels,
        },
        "spec": {
            "profile": match record.profile { Profile::Worker => "worker", Profile::Desktop => "desktop" },
            "sandbox": {
                "tenantId": record.tenant_id,
                "owner": owner,
                "backend": record.backend.as_str(),
                "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": record.requested_reference } },
                "process": process,
                "resources": {
                    "cpuCount": record.resources.cpu_count,
                    "memoryLimitBytes": record.resources.memory_limit_bytes,
                    "pidsLimit": record.resources.pids_limit,
                    "diskLimitBytes": record.resources.disk_limit_bytes,
                },
                "network": record.network,
            },
        },
        "status": {
            "lifecycleState": state.as_str(),
            "readiness": state.readiness(),
            "health": state.health(),
            "backend": record.backend.as_str(),
            "endpoints": [],
            "conditions": [{
                "type": "Ready",
                "status": if ready { "True" } else { "False" },
                "reason": "BackendState",
                "message": condition_message,
                "observedGeneration": record.generation,
                "lastTransitionTime": rfc3339_ms(record.transition_at_ms),
            }],
            "image": record.image.as_ref().map(|i| json!({ "reference": i.reference, "digest": i.digest })),
            "startedAt": time(record.started_at_ms),
            "finishedAt": time(record.finished_at_ms),
            "exitCode": record.exit_code,
            "terminationReason": record.termination_reason.map(|r| r.as_str()),
            "message": record.message,
            "retainedUntil": time(record.retained_until_ms),
        },
    })
}

/// `status.endpoints` of a running sandbox (and of the service it runs): each port it listens
/// on, with the ports route that reaches it.
pub fn endpoints_json(tenant: &str, sandbox: &str, ports: &[u16]) -> Value {
    let routes = format!("/api/tenants/{tenant}/sandboxes/{sandbox}/ports");
    ports
        .iter()
        .map(|port| {
            json!({ "name": format!("tcp-{port}"), "protocol": "tcp", "host": "127.0.0.1", "port": port,
                    "url": format!("{routes}/{port}/") })
        })
        .collect()
}

/// `PUT /api/tenants/{t}/sandboxes/{id}/network`: the new egress rules, generation-checked.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkUpdateBody {
    metadata: Option<GenerationBody>,
    /// The new rules (absent: deny-all).
    #[serde(default)]
    pub egress: EgressRules,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GenerationBody {
    generation: Option<u64>,
}

impl NetworkUpdateBody {
    /// `metadata.generation`, which is required.
    pub fn generation(&self) -> Result<u64, NimbusError> {
        self.metadata.as_ref().and_then(|m| m.generation).ok_or_else(|| {
            NimbusError::invalid_input("metadata.generation", "is required: the sandbox's current generation")
        })
    }
}

/// A `SandboxCollection` page.
pub fn collection_json(tenant: &str, page: &SandboxPage, limit: usize) -> Value {
    let mut metadata = json!({
        "tenantId": tenant,
        "resourceVersion": format!("sandboxes:{tenant}:{}", page.version),
        "limit": limit,
        "remainingCount": page.remaining,
    });
    if page.remaining > 0
        && let Some(last) = page.items.last()
    {
        metadata["nextPageToken"] = last.id.clone().into();
    }
    json!({ "metadata": metadata, "items": page.items.iter().map(sandbox_json).collect::<Vec<_>>() })
}

//! Wire shapes of the service routes (services.md): the strict create/update body and its
//! conversion into the control plane's [`DefinitionRequest`], the operator's service catalog
//! file, the `ServiceDefinition` resource (redacted), the runtime view and restart receipts.

use std::collections::BTreeMap;

use nimbus_compute::sandbox::request::{ProcessRequest, ResourcesRequest};
use nimbus_compute::service::definition::within_sandbox;
use nimbus_compute::service::{
    BackendRequest, BrowserRequest, DefinitionRequest, Disposition, ProbeRequest, Provider, ReadinessRequest, Receipt,
    RestartPolicy, ServiceBackend, ServiceDefinition, ServicePage, ServiceView, Termination,
};
use nimbus_core::NimbusError;
use nimbus_core::ids::TenantId;
use nimbus_core::time::rfc3339_ms;
use nimbus_egress::rules::NetworkSpec;
use nimbus_sandbox::backend::Probe;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sandbox_wire::{ResourcesBody, SpecBody, owner_json, redacted};

/// `POST /services` and `PUT /services/{name}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceBody {
    metadata: MetadataBody,
    spec: ServiceSpecBody,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MetadataBody {
    name: Option<String>,
    tenant_id: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    generation: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceSpecBody {
    backend: BackendBody,
}

/// `spec.backend`, one flat shape for every `kind` so that unknown fields are named precisely;
/// which fields a kind allows is checked on conversion.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BackendBody {
    kind: String,
    sandbox: Option<SpecBody>,
    readiness: Option<ReadinessBody>,
    start_timeout_ms: Option<u64>,
    restart_policy: Option<String>,
    max_restarts: Option<u64>,
    provider: Option<String>,
    browser: Option<BrowserBody>,
    endpoint: Option<EndpointBody>,
    auth: Option<AuthBody>,
    health: Option<HealthBody>,
}

/// `spec.backend.browser` of a `browser` service (ours).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BrowserBody {
    /// The image Chromium runs from (default the one `nimbus image build-browser` stores).
    image: Option<String>,
    /// As a sandbox's `spec.resources` (browser defaults for what is left out).
    resources: Option<ResourcesBody>,
    /// As a sandbox's `spec.network`: the hosts pages may reach.
    network: Option<NetworkSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReadinessBody {
    kind: String,
    port: Option<u64>,
    path: Option<String>,
    argv: Option<Vec<String>>,
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    failure_threshold: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EndpointBody {
    url: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AuthBody {
    kind: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HealthBody {
    kind: String,
    path: String,
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    failure_threshold: Option<u64>,
}

impl ServiceBody {
    /// A create body: `metadata.name` required, `metadata.generation` absent, `tenantId` (if
    /// given) the path's.
    pub fn into_create(self, tenant: &str) -> Result<DefinitionRequest, NimbusError> {
        if self.metadata.generation.is_some() {
            return Err(NimbusError::invalid_input("metadata.generation", "must be absent on create"));
        }
        let name =
            self.metadata.name.clone().ok_or_else(|| NimbusError::invalid_input("metadata.name", "is required"))?;
        self.into_request(tenant, name)
    }

    /// An update body: `metadata.generation` required (returned with the request); `name` and
    /// `tenantId`, if given, the path's.
    pub fn into_update(self, tenant: &str, name: &str) -> Result<(DefinitionRequest, u64), NimbusError> {
        let generation = self
            .metadata
            .generation
            .ok_or_else(|| NimbusError::invalid_input("metadata.generation", "is required on update"))?;
        if self.metadata.name.as_deref().is_some_and(|n| n != name) {
            return Err(NimbusError::invalid_input("metadata.name", "must equal the service name in the path"));
        }
        Ok((self.into_request(tenant, name.to_owned())?, generation))
    }

    fn into_request(self, tenant: &str, name: String) -> Result<DefinitionRequest, NimbusError> {
        if self.metadata.tenant_id.as_deref().is_some_and(|t| t != tenant) {
            return Err(NimbusError::invalid_input("metadata.tenantId", "must equal the tenant in the path"));
        }
        let backend = self.spec.backend.into_request(tenant, &name)?;
        Ok(DefinitionRequest { name, labels: self.metadata.labels.unwrap_or_default(), backend })
    }
}

/// 400 naming a field that the backend's `kind` does not take.
fn not_for_kind(field: &str, kind: &str) -> NimbusError {
    NimbusError::invalid_input(format!("spec.backend.{field}"), format!("is not allowed for kind \"{kind}\""))
}

impl BackendBody {
    fn into_request(self, tenant: &str, name: &str) -> Result<BackendRequest, NimbusError> {
        let kind = self.kind.as_str();
        let sandbox_fields = [
            ("sandbox", self.sandbox.is_some()),
            ("readiness", self.readiness.is_some()),
            ("startTimeoutMs", self.start_timeout_ms.is_some()),
            ("restartPolicy", self.restart_policy.is_some()),
            ("maxRestarts", self.max_restarts.is_some()),
        ];
        let external_fields = [
            ("endpoint", self.endpoint.is_some()),
            ("auth", self.auth.is_some()),
            ("health", self.health.is_some()),
            ("browser", self.browser.is_some()),
        ];
        let refuse = |fields: &[(&str, bool)]| match fields.iter().find(|(_, present)| *present) {
            Some((field, _)) => Err(not_for_kind(field, kind)),
            None => Ok(()),
        };
        match kind {
            "sandbox" => {
                refuse(&external_fields)?;
                refuse(&[("provider", self.provider.is_some())])?;
                let sandbox =
                    self.sandbox.ok_or_else(|| NimbusError::invalid_input("spec.backend.sandbox", "is required"))?;
                let sandbox = sandbox.into_service_request(tenant, name).map_err(within_sandbox)?;
                let restart_policy = parse_restart_policy(self.restart_policy.as_deref())?;
                Ok(BackendRequest::Sandbox {
                    sandbox: Box::new(sandbox),
                    readiness: self.readiness.map(ReadinessBody::into_request).transpose()?,
                    start_timeout_ms: self.start_timeout_ms,
                    restart_policy,
                    max_restarts: self.max_restarts,
                })
            }
            "builtIn" => {
                let raw = self
                    .provider
                    .as_deref()
                    .ok_or_else(|| NimbusError::invalid_input("spec.backend.provider", "is required"))?;
                let provider = Provider::parse(raw).ok_or_else(|| {
                    NimbusError::invalid_input(
                        "spec.backend.provider",
                        "must be one of loadBalancer, serviceDiscovery, browser, modelGateway",
                    )
                })?;
                if provider != Provider::Browser {
                    refuse(&sandbox_fields)?;
                    refuse(&external_fields)?;
                    return Ok(BackendRequest::BuiltIn { provider, browser: None });
                }
                // A browser runs in a sandbox Nimbus describes: the lifecycle fields apply.
                refuse(&sandbox_fields[..2])?;
                refuse(&external_fields[..3])?;
                let restart_policy = parse_restart_policy(self.restart_policy.as_deref())?;
                let browser = self.browser.map(|b| (b.image, b.resources, b.network));
                let (image, resources, network) = browser.unwrap_or_default();
                Ok(BackendRequest::BuiltIn {
                    provider,
                    browser: Some(Box::new(BrowserRequest {
                        image,
                        resources: resources.map(ResourcesBody::into_request).unwrap_or_default(),
                        network: network.unwrap_or_default(),
                        start_timeout_ms: self.start_timeout_ms,
                        restart_policy,
                        max_restarts: self.max_restarts,
                    })),
                })
            }
            "external" => {
                refuse(&sandbox_fields)?;
                refuse(&[("provider", self.provider.is_some())])?;
                let endpoint =
                    self.endpoint.ok_or_else(|| NimbusError::invalid_input("spec.backend.endpoint", "is required"))?;
                if let Some(auth) = self.auth
                    && auth.kind != "none"
                {
                    return Err(NimbusError::invalid_input("spec.backend.auth.kind", "must be \"none\""));
                }
                let health =
                    self.health.ok_or_else(|| NimbusError::invalid_input("spec.backend.health", "is required"))?;
                if health.kind != "http" {
                    return Err(NimbusError::invalid_input("spec.backend.health.kind", "must be \"http\""));
                }
                Ok(BackendRequest::External {
                    url: endpoint.url,
                    health_path: health.path,
                    interval_ms: health.interval_ms,
                    timeout_ms: health.timeout_ms,
                    failure_threshold: health.failure_threshold,
                })
            }
            _ => Err(NimbusError::invalid_input("spec.backend.kind", "must be one of sandbox, builtIn, external")),
        }
    }
}

/// `spec.backend.restartPolicy`, when given.
fn parse_restart_policy(raw: Option<&str>) -> Result<Option<RestartPolicy>, NimbusError> {
    raw.map(|raw| {
        RestartPolicy::parse(raw).ok_or_else(|| {
            NimbusError::invalid_input("spec.backend.restartPolicy", "must be one of never, on_failure, always")
        })
    })
    .transpose()
}

impl ReadinessBody {
    fn into_request(self) -> Result<ReadinessRequest, NimbusError> {
        let field = |name: &str| format!("spec.backend.readiness.{name}");
        let required = |name: &str| NimbusError::invalid_input(field(name), "is required");
        let absent = |name: &str, present: bool| {
            if present {
                Err(NimbusError::invalid_input(field(name), format!("is not allowed for kind \"{}\"", self.kind)))
            } else {
                Ok(())
            }
        };
        let probe = match self.kind.as_str() {
            "tcp" => {
                absent("path", self.path.is_some())?;
                absent("argv", self.argv.is_some())?;
                ProbeRequest::Tcp { port: self.port.ok_or_else(|| required("port"))? }
            }
            "http" => {
                absent("argv", self.argv.is_some())?;
                ProbeRequest::Http {
                    port: self.port.ok_or_else(|| required("port"))?,
                    path: self.path.clone().ok_or_else(|| required("path"))?,
                }
            }
            "exec" => {
                absent("port", self.port.is_some())?;
                absent("path", self.path.is_some())?;
                ProbeRequest::Exec { argv: self.argv.clone().ok_or_else(|| required("argv"))? }
            }
            _ => return Err(NimbusError::invalid_input(field("kind"), "must be one of tcp, http, exec")),
        };
        Ok(ReadinessRequest {
            probe,
            interval_ms: self.interval_ms,
            timeout_ms: self.timeout_ms,
            failure_threshold: self.failure_threshold,
        })
    }
}

/// The operator's service catalog file (`nimbus start --service-catalog`, cli.md §2):
/// `{"<tenant id>": [{"metadata": {"name", "labels"?}, "spec": {"backend"}}, …]}`.
type CatalogFile = std::collections::BTreeMap<String, Vec<ServiceBody>>;

/// Reads a service catalog: every entry is validated as on create (its errors name the entry:
/// `demo[2].spec.backend.kind`). Duplicate (tenant, name) pairs are refused.
pub fn parse_catalog(bytes: &[u8]) -> Result<Vec<(String, DefinitionRequest)>, NimbusError> {
    let file: CatalogFile = crate::body::parse(bytes)?;
    let mut out: Vec<(String, DefinitionRequest)> = Vec::new();
    let entries = file.into_iter().flat_map(|(tenant, bodies)| {
        bodies.into_iter().enumerate().map(move |(i, body)| (format!("{tenant}[{i}]"), tenant.clone(), body))
    });
    for (at, tenant, body) in entries {
        let tenant = TenantId::parse(&tenant, &at)?;
        let request = body.into_create(tenant.as_str()).map_err(|e| e.within(&at))?;
        request.clone().validate().map_err(|e| e.within(&at))?;
        if out.iter().any(|(t, r)| t == tenant.as_str() && r.name == request.name) {
            return Err(NimbusError::invalid_input(format!("{at}.metadata.name"), "is declared twice for this tenant"));
        }
        out.push((tenant.as_str().to_owned(), request));
    }
    Ok(out)
}

/// The body of `POST /{name}/restart`: empty (or `{}`) restarts synchronously; with both
/// fields the restart is fenced.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestartBody {
    source_generation: Option<u64>,
    request_id: Option<String>,
}

/// Which restart a body asks for.
pub enum RestartRequest {
    /// Stop then start, answered when done.
    Sync,
    /// Fenced on a generation, idempotent by request id, answered with a receipt.
    Fenced {
        /// `sourceGeneration`.
        source_generation: u64,
        /// `requestId`.
        request_id: String,
    },
}

impl RestartBody {
    /// Which restart this is; one of the two fenced fields alone is 400.
    pub fn into_request(self) -> Result<RestartRequest, NimbusError> {
        match (self.source_generation, self.request_id) {
            (None, None) => Ok(RestartRequest::Sync),
            (Some(source_generation), Some(request_id)) => Ok(RestartRequest::Fenced { source_generation, request_id }),
            (None, Some(_)) => Err(NimbusError::invalid_input("sourceGeneration", "is required with requestId")),
            (Some(_), None) => Err(NimbusError::invalid_input("requestId", "is required with sourceGeneration")),
        }
    }
}

/// The optional body of `POST /{name}/start` and `/{name}/stop`: no fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::from(rfc3339_ms(ms)))
}

/// The echo of a sandbox-backed service's process: command lines and environment counted,
/// never shown.
fn process_json(process: &ProcessRequest) -> Value {
    let mut out = json!({
        "argv": redacted(process.argv.as_ref().map_or(0, Vec::len)),
        "environment": redacted(process.env.len()),
        "terminal": process.terminal,
    });
    if let Some(count) = process.entrypoint.as_ref().map(Vec::len) {
        out["entrypoint"] = redacted(count);
    }
    if let Some(count) = process.command.as_ref().map(Vec::len) {
        out["command"] = redacted(count);
    }
    if let Some(cwd) = &process.cwd {
        out["cwd"] = cwd.clone().into();
    }
    if let Some(user) = &process.user {
        out["user"] = user.clone().into();
    }
    out
}

fn probe_json(probe: &Probe) -> Value {
    match probe {
        Probe::Tcp { port } => json!({ "kind": "tcp", "port": port }),
        Probe::Http { port, path } => json!({ "kind": "http", "port": port, "path": path }),
        Probe::Exec { argv } => json!({ "kind": "exec", "argv": redacted(argv.len()) }),
    }
}

fn resources_json(resources: &ResourcesRequest) -> Value {
    json!({
        "cpuCount": resources.cpu_count,
        "memoryLimitBytes": resources.memory_limit_bytes,
        "pidsLimit": resources.pids_limit,
        "diskLimitBytes": resources.disk_limit_bytes,
    })
}

fn backend_json(tenant: &str, backend: &ServiceBackend) -> Value {
    match backend {
        ServiceBackend::Sandbox(service) => {
            let sandbox = &service.sandbox;
            let mut out = json!({
                "kind": "sandbox",
                "sandbox": {
                    "tenantId": tenant,
                    "owner": owner_json(&sandbox.owner),
                    "backend": sandbox.backend.as_str(),
                    "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": sandbox.reference } },
                    "process": process_json(&sandbox.process),
                    "resources": resources_json(&sandbox.resources),
                },
                "startTimeoutMs": service.start_timeout_ms,
                "restartPolicy": service.restart_policy.as_str(),
            });
            if let Some(readiness) = &service.readiness {
                let mut probe = probe_json(&readiness.probe);
                probe["intervalMs"] = readiness.interval_ms.into();
                probe["timeoutMs"] = readiness.timeout_ms.into();
                probe["failureThreshold"] = readiness.failure_threshold.into();
                out["readiness"] = probe;
            }
            if service.restart_policy != RestartPolicy::Never {
                out["maxRestarts"] = service.max_restarts.into();
            }
            out
        }
        ServiceBackend::BuiltIn { provider, runtime: None } => {
            json!({ "kind": "builtIn", "provider": provider.as_str() })
        }
        ServiceBackend::BuiltIn { provider, runtime: Some(service) } => {
            let sandbox = &service.sandbox;
            let mut out = json!({
                "kind": "builtIn",
                "provider": provider.as_str(),
                "browser": {
                    "image": sandbox.reference,
                    "resources": resources_json(&sandbox.resources),
                    "network": sandbox.network,
                },
                "startTimeoutMs": service.start_timeout_ms,
                "restartPolicy": service.restart_policy.as_str(),
            });
            if service.restart_policy != RestartPolicy::Never {
                out["maxRestarts"] = service.max_restarts.into();
            }
            out
        }
        ServiceBackend::External(external) => json!({
            "kind": "external",
            "endpoint": { "url": external.url },
            "auth": { "kind": "none" },
            "health": {
                "kind": "http",
                "path": external.health_path,
                "intervalMs": external.interval_ms,
                "timeoutMs": external.timeout_ms,
                "failureThreshold": external.failure_threshold,
            },
        }),
    }
}

/// The `ServiceDefinition` resource (services.md §3). `status` is a static projection of the
/// definition; the live state is in the runtime view.
pub fn definition_json(def: &ServiceDefinition) -> Value {
    let kind = def.backend.kind();
    let state = if def.backend.sandboxed().is_some() { "stopped" } else { "declared" };
    json!({
        "metadata": {
            "tenantId": def.tenant_id,
            "name": def.name,
            "generation": def.generation,
            "resourceVersion": format!("svcdef-v{}", def.version),
            "createdAt": rfc3339_ms(def.created_at_ms),
            "updatedAt": rfc3339_ms(def.updated_at_ms),
            "labels": def.labels,
            "source": def.source.as_str(),
        },
        "spec": { "backend": backend_json(&def.tenant_id, &def.backend) },
        "status": {
            "backend": kind,
            "lifecycleState": state,
            "readiness": state,
            "health": "unknown",
            "conditions": [{
                "type": "Admitted",
                "status": "True",
                "reason": "DefinitionValidated",
                "message": format!("service `{}` generation {} is valid", def.name, def.generation),
                "observedGeneration": def.generation,
                "lastTransitionTime": rfc3339_ms(def.updated_at_ms),
            }],
        },
    })
}

fn termination_json(termination: &Termination) -> Value {
    json!({
        "sandboxId": termination.sandbox_id,
        "exitCode": termination.exit_code,
        "terminationReason": termination.termination_reason.as_str(),
        "finishedAt": time(Some(termination.finished_at_ms)),
    })
}

/// The runtime view (services.md §5).
pub fn view_json(view: &ServiceView) -> Value {
    let mut out = json!({
        "tenantId": view.tenant_id,
        "name": view.name,
        "state": view.phase.as_str(),
        "lifecycleState": view.phase.as_str(),
        "readiness": view.phase.readiness(),
        "health": view.phase.health(),
        "endpoints": [],
        "definitionGeneration": view.definition_generation,
        "restartCount": view.restart_count,
        "lastTermination": view.last_termination.as_ref().map(termination_json),
    });
    if let Some(id) = &view.sandbox_id {
        out["sandboxId"] = id.clone().into();
    }
    if let Some(backend) = view.sandbox_backend {
        out["backend"] = backend.as_str().into();
    }
    out
}

/// A fenced restart's receipt.
pub fn receipt_json(tenant: &str, name: &str, receipt: &Receipt, disposition: Disposition) -> Value {
    json!({
        "tenantId": tenant,
        "name": name,
        "sourceGeneration": receipt.source_generation,
        "requestId": receipt.request_id,
        "workloadRestartRequestId": receipt.workload_restart_request_id,
        "restartEpoch": receipt.restart_epoch,
        "disposition": disposition.as_str(),
    })
}

/// A `ServiceDefinitionCollection` page.
pub fn collection_json(tenant: &str, page: &ServicePage, limit: usize) -> Value {
    let mut metadata = json!({
        "tenantId": tenant,
        "resourceVersion": format!("services:{tenant}:{}", page.version),
        "limit": limit,
        "remainingCount": page.remaining,
    });
    if page.remaining > 0
        && let Some(last) = page.items.last()
    {
        metadata["nextPageToken"] = last.name.clone().into();
    }
    json!({ "metadata": metadata, "items": page.items.iter().map(definition_json).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> ServiceBody {
        crate::body::parse(value.to_string().as_bytes()).expect("parses")
    }

    fn field(error: &NimbusError) -> String {
        error.detail.as_ref().and_then(|d| d["field"].as_str()).unwrap_or_default().to_owned()
    }

    #[test]
    fn create_bodies_are_checked_per_kind() {
        let sandbox = json!({ "owner": { "kind": "service" }, "root": { "kind": "oci_image",
            "source": { "kind": "reference", "reference": "busybox" } }, "process": { "argv": ["sh"] } });
        let ok =
            body(json!({ "metadata": { "name": "web" }, "spec": { "backend": { "kind": "sandbox", "sandbox": sandbox,
            "readiness": { "kind": "tcp", "port": 80 }, "restartPolicy": "always" } } }));
        let request = ok.into_create("t").expect("valid");
        assert!(matches!(request.backend, BackendRequest::Sandbox { .. }));

        let with_generation = body(json!({ "metadata": { "name": "web", "generation": 1 },
            "spec": { "backend": { "kind": "builtIn", "provider": "browser" } } }));
        assert_eq!(field(&with_generation.into_create("t").expect_err("generation")), "metadata.generation");

        let provider_on_sandbox = body(json!({ "metadata": { "name": "web" },
            "spec": { "backend": { "kind": "external", "provider": "browser" } } }));
        assert_eq!(field(&provider_on_sandbox.into_create("t").expect_err("provider")), "spec.backend.provider");

        let standalone = json!({ "owner": { "kind": "standalone" }, "root": { "kind": "oci_image",
            "source": { "kind": "reference", "reference": "busybox" } } });
        let wrong_owner = body(json!({ "metadata": { "name": "web" },
            "spec": { "backend": { "kind": "sandbox", "sandbox": standalone } } }));
        assert_eq!(field(&wrong_owner.into_create("t").expect_err("owner")), "spec.backend.sandbox.owner.kind");

        let unknown = crate::body::parse::<ServiceBody>(
            json!({ "metadata": { "name": "w" }, "spec": { "backend": { "kind": "builtIn", "provider": "browser", "x": 1 } } })
                .to_string()
                .as_bytes(),
        )
        .expect_err("unknown field");
        assert_eq!(field(&unknown), "spec.backend.x");
    }

    #[test]
    fn catalog_entries_are_validated_and_named() {
        let good = json!({ "demo": [{ "metadata": { "name": "gw" },
            "spec": { "backend": { "kind": "builtIn", "provider": "modelGateway" } } }] });
        assert_eq!(parse_catalog(good.to_string().as_bytes()).expect("valid").len(), 1);
        let bad = json!({ "demo": [{ "metadata": { "name": "gw" },
            "spec": { "backend": { "kind": "builtIn", "provider": "nope" } } }] });
        let err = parse_catalog(bad.to_string().as_bytes()).expect_err("bad provider");
        assert_eq!(field(&err), "demo[0].spec.backend.provider");
        let twice = json!({ "demo": [{ "metadata": { "name": "gw" }, "spec": { "backend": { "kind": "builtIn", "provider": "browser" } } },
                                     { "metadata": { "name": "gw" }, "spec": { "backend": { "kind": "builtIn", "provider": "browser" } } }] });
        assert_eq!(field(&parse_catalog(twice.to_string().as_bytes()).expect_err("twice")), "demo[1].metadata.name");
    }
}

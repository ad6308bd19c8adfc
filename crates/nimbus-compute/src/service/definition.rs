//! What should run: a service definition as requested ([`DefinitionRequest`]), validated with its
//! defaults filled in ([`ServiceBackend`]), and as stored ([`ServiceDefinition`]).

use nimbus_core::NimbusError;
use nimbus_core::limits::{
    BROWSER_DEFAULT_MEMORY_BYTES, BROWSER_DEFAULT_PIDS, BROWSER_DEVTOOLS_PORT, BROWSER_IMAGE_REFERENCE,
    BROWSER_PROBE_INTERVAL_MS, EXTERNAL_HEALTH_DEFAULT_INTERVAL_MS, EXTERNAL_HEALTH_DEFAULT_TIMEOUT_MS,
    EXTERNAL_MAX_URL_BYTES, PROBE_DEFAULT_FAILURE_THRESHOLD, PROBE_DEFAULT_INTERVAL_MS, PROBE_DEFAULT_TIMEOUT_MS,
    PROBE_MAX_FAILURE_THRESHOLD, PROBE_MAX_INTERVAL_MS, PROBE_MAX_TIMEOUT_MS, PROBE_MIN_INTERVAL_MS,
    PROBE_MIN_TIMEOUT_MS, SERVICE_DEFAULT_MAX_RESTARTS, SERVICE_DEFAULT_START_TIMEOUT_MS, SERVICE_MAX_NAME_CHARS,
    SERVICE_MAX_RESTARTS, SERVICE_MAX_START_TIMEOUT_MS, SERVICE_MIN_START_TIMEOUT_MS,
};
use nimbus_egress::rules::NetworkSpec;
use nimbus_sandbox::backend::Probe;
use serde::{Deserialize, Serialize};

use crate::labels::{self, Labels};
use crate::sandbox::CreateSandbox;
use crate::sandbox::request::{BackendKind, Owner, ProcessRequest, Profile, ResourcesRequest};

/// Where a definition comes from (`metadata.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// Created through the API; read-write.
    Dynamic,
    /// Declared by the operator (`nimbus start --service-catalog`); read-only through the API.
    StaticCatalog,
}

impl Source {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dynamic => "dynamic",
            Self::StaticCatalog => "staticCatalog",
        }
    }
}

/// `restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// Never restart on its own (the default).
    Never,
    /// Restart when a sandbox ends `failed`.
    OnFailure,
    /// Restart whenever a sandbox ends, also after exit 0.
    Always,
}

impl RestartPolicy {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::OnFailure => "on_failure",
            Self::Always => "always",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Never, Self::OnFailure, Self::Always].into_iter().find(|p| p.as_str() == raw)
    }

    /// Whether a run that ended (`failed` or not) is followed by a restart.
    pub fn restarts_after(self, failed: bool) -> bool {
        match self {
            Self::Never => false,
            Self::OnFailure => failed,
            Self::Always => true,
        }
    }
}

/// A `builtIn` provider (declared only in this version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Provider {
    /// `loadBalancer`.
    LoadBalancer,
    /// `serviceDiscovery`.
    ServiceDiscovery,
    /// `browser`.
    Browser,
    /// `modelGateway`.
    ModelGateway,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Self; 4] = [Self::LoadBalancer, Self::ServiceDiscovery, Self::Browser, Self::ModelGateway];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoadBalancer => "loadBalancer",
            Self::ServiceDiscovery => "serviceDiscovery",
            Self::Browser => "browser",
            Self::ModelGateway => "modelGateway",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// A readiness probe as asked (ports not yet range-checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeRequest {
    /// `{"kind": "tcp", "port"}`.
    Tcp {
        /// Port.
        port: u64,
    },
    /// `{"kind": "http", "port", "path"}`.
    Http {
        /// Port.
        port: u64,
        /// Path.
        path: String,
    },
    /// `{"kind": "exec", "argv"}`.
    Exec {
        /// Command line.
        argv: Vec<String>,
    },
}

/// `readiness` as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessRequest {
    /// What to check.
    pub probe: ProbeRequest,
    /// `intervalMs`.
    pub interval_ms: Option<u64>,
    /// `timeoutMs`.
    pub timeout_ms: Option<u64>,
    /// `failureThreshold`.
    pub failure_threshold: Option<u64>,
}

/// `spec.backend` as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendRequest {
    /// A sandbox runs the service.
    Sandbox {
        /// The sandbox (owner: this service).
        sandbox: Box<CreateSandbox>,
        /// `readiness`.
        readiness: Option<ReadinessRequest>,
        /// `startTimeoutMs`.
        start_timeout_ms: Option<u64>,
        /// `restartPolicy`.
        restart_policy: Option<RestartPolicy>,
        /// `maxRestarts`.
        max_restarts: Option<u64>,
    },
    /// A provider built into Nimbus (`browser` runs; the others are declared only).
    BuiltIn {
        /// `provider`.
        provider: Provider,
        /// `browser` (ours), with the lifecycle fields; only for the `browser` provider.
        browser: Option<Box<BrowserRequest>>,
    },
    /// An endpoint elsewhere, watched by a health loop.
    External {
        /// `endpoint.url`.
        url: String,
        /// `health.path`.
        health_path: String,
        /// `health.intervalMs`.
        interval_ms: Option<u64>,
        /// `health.timeoutMs`.
        timeout_ms: Option<u64>,
        /// `health.failureThreshold`.
        failure_threshold: Option<u64>,
    },
}

/// `spec.backend.browser` (ours) and the lifecycle fields of a `browser` service, as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserRequest {
    /// `browser.image`: the image Chromium runs from.
    pub image: Option<String>,
    /// `browser.resources`.
    pub resources: ResourcesRequest,
    /// `browser.network`.
    pub network: NetworkSpec,
    /// `startTimeoutMs`.
    pub start_timeout_ms: Option<u64>,
    /// `restartPolicy`.
    pub restart_policy: Option<RestartPolicy>,
    /// `maxRestarts`.
    pub max_restarts: Option<u64>,
}

/// A create or update request whose shape the HTTP layer (or the catalog loader) has checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionRequest {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: Labels,
    /// `spec.backend`.
    pub backend: BackendRequest,
}

/// A readiness probe with its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// What to check.
    pub probe: Probe,
    /// Period, ms.
    pub interval_ms: u64,
    /// Timeout of one probe, ms.
    pub timeout_ms: u64,
    /// Consecutive failures before `not_ready`.
    pub failure_threshold: u32,
}

/// A sandbox-backed service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxService {
    /// The sandbox every run launches (owner: this service; resources effective).
    pub sandbox: CreateSandbox,
    /// The readiness probe, if any.
    pub readiness: Option<Readiness>,
    /// Time to the first passing probe, ms.
    pub start_timeout_ms: u64,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
    /// Consecutive policy restarts before the service stays `failed`.
    pub max_restarts: u32,
}

/// An external service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalService {
    /// `endpoint.url`.
    pub url: String,
    /// `health.path`.
    pub health_path: String,
    /// Period, ms.
    pub interval_ms: u64,
    /// Timeout of one check, ms.
    pub timeout_ms: u64,
    /// Consecutive failures before `not_ready`.
    pub failure_threshold: u32,
}

impl ExternalService {
    /// The URL the health loop requests: `<url><health.path>` (a trailing `/` of the URL is
    /// dropped so the two do not double up).
    pub fn health_url(&self) -> String {
        format!("{}{}", self.url.trim_end_matches('/'), self.health_path)
    }
}

/// `spec.backend`, validated, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ServiceBackend {
    /// A sandbox runs the service.
    Sandbox(Box<SandboxService>),
    /// A provider built into Nimbus.
    BuiltIn {
        /// The provider.
        provider: Provider,
        /// The sandbox that runs it (`browser`: Chromium); `None` for the providers that are
        /// declared only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runtime: Option<Box<SandboxService>>,
    },
    /// An endpoint elsewhere.
    External(ExternalService),
}

impl ServiceBackend {
    /// `sandbox`, `builtIn` or `external`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sandbox(_) => "sandbox",
            Self::BuiltIn { .. } => "builtIn",
            Self::External(_) => "external",
        }
    }

    /// The sandbox service that runs this backend: a sandbox-backed service's, or a runnable
    /// `builtIn` provider's (`browser`).
    pub fn sandboxed(&self) -> Option<&SandboxService> {
        match self {
            Self::Sandbox(service) => Some(service),
            Self::BuiltIn { runtime, .. } => runtime.as_deref(),
            Self::External(_) => None,
        }
    }

    /// The `builtIn` provider that cannot run in this version (declared only), if this is one.
    pub fn declared_only(&self) -> Option<Provider> {
        match self {
            Self::BuiltIn { provider, runtime: None } => Some(*provider),
            _ => None,
        }
    }
}

/// A definition, as stored (kind `service_definition`; static ones live in memory only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDefinition {
    /// Owning tenant.
    pub tenant_id: String,
    /// The service's name (its key).
    pub name: String,
    /// Starts at 1; bumped by every update.
    pub generation: u64,
    /// Bumped by every change (`resourceVersion`).
    pub version: u64,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub updated_at_ms: i64,
    /// Labels.
    pub labels: Labels,
    /// Dynamic or static.
    pub source: Source,
    /// What runs.
    pub backend: ServiceBackend,
}

/// Checks a service name (services.md §1): non-empty, no `/`, no surrounding whitespace, no
/// control characters, at most [`SERVICE_MAX_NAME_CHARS`] characters.
pub fn validate_name(name: &str, field: &str) -> Result<(), NimbusError> {
    if name.is_empty() {
        return Err(NimbusError::invalid_input(field, "must not be empty"));
    }
    if name.contains('/') {
        return Err(NimbusError::invalid_input(field, "must not contain '/'"));
    }
    if name.trim() != name {
        return Err(NimbusError::invalid_input(field, "must not have leading or trailing whitespace"));
    }
    if name.chars().any(char::is_control) {
        return Err(NimbusError::invalid_input(field, "must not contain control characters"));
    }
    if name.chars().count() > SERVICE_MAX_NAME_CHARS {
        return Err(NimbusError::invalid_input(field, format!("is longer than {SERVICE_MAX_NAME_CHARS} characters")));
    }
    Ok(())
}

/// A validated definition request: what create and update store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidDefinition {
    /// The name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// The backend with its defaults.
    pub backend: ServiceBackend,
}

impl DefinitionRequest {
    /// Checks the name, labels and backend (services.md §2); field errors name the body path.
    pub fn validate(self) -> Result<ValidDefinition, NimbusError> {
        validate_name(&self.name, "metadata.name")?;
        labels::validate(&self.labels).map_err(|e| e.within("metadata"))?;
        let backend = match self.backend {
            BackendRequest::Sandbox { sandbox, readiness, start_timeout_ms, restart_policy, max_restarts } => {
                let sandbox = validate_sandbox(*sandbox, &self.name, within_sandbox)?;
                let readiness = readiness.map(validate_readiness).transpose()?;
                let lifecycle = Lifecycle {
                    start_timeout_ms,
                    restart_policy: restart_policy.unwrap_or(RestartPolicy::Never),
                    max_restarts,
                };
                ServiceBackend::Sandbox(Box::new(lifecycle.service(sandbox, readiness)?))
            }
            BackendRequest::BuiltIn { provider: Provider::Browser, browser } => {
                let browser = browser.map(|b| *b).unwrap_or_default();
                let lifecycle = Lifecycle {
                    start_timeout_ms: browser.start_timeout_ms,
                    restart_policy: browser.restart_policy.unwrap_or(RestartPolicy::OnFailure),
                    max_restarts: browser.max_restarts,
                };
                let sandbox = validate_sandbox(browser_sandbox(&self.name, browser), &self.name, within_browser)?;
                let service = lifecycle.service(sandbox, Some(browser_readiness()))?;
                ServiceBackend::BuiltIn { provider: Provider::Browser, runtime: Some(Box::new(service)) }
            }
            BackendRequest::BuiltIn { provider, browser } => {
                if browser.is_some() {
                    return Err(NimbusError::invalid_input(
                        "spec.backend.browser",
                        "is only allowed for the browser provider",
                    ));
                }
                ServiceBackend::BuiltIn { provider, runtime: None }
            }
            BackendRequest::External { url, health_path, interval_ms, timeout_ms, failure_threshold } => {
                validate_url(&url)?;
                validate_path(&health_path, "spec.backend.health.path")?;
                ServiceBackend::External(ExternalService {
                    url,
                    health_path,
                    interval_ms: ranged(
                        "spec.backend.health.intervalMs",
                        interval_ms,
                        EXTERNAL_HEALTH_DEFAULT_INTERVAL_MS,
                        PROBE_MIN_INTERVAL_MS,
                        PROBE_MAX_INTERVAL_MS,
                    )?,
                    timeout_ms: ranged(
                        "spec.backend.health.timeoutMs",
                        timeout_ms,
                        EXTERNAL_HEALTH_DEFAULT_TIMEOUT_MS,
                        PROBE_MIN_TIMEOUT_MS,
                        PROBE_MAX_TIMEOUT_MS,
                    )?,
                    failure_threshold: threshold("spec.backend.health.failureThreshold", failure_threshold)?,
                })
            }
        };
        Ok(ValidDefinition { name: self.name, labels: self.labels, backend })
    }
}

/// The lifecycle fields of a sandbox-run service, as asked.
struct Lifecycle {
    start_timeout_ms: Option<u64>,
    restart_policy: RestartPolicy,
    max_restarts: Option<u64>,
}

impl Lifecycle {
    /// The service with its checked sandbox and readiness, the lifecycle's defaults filled in.
    fn service(self, sandbox: CreateSandbox, readiness: Option<Readiness>) -> Result<SandboxService, NimbusError> {
        let start_timeout_ms = ranged(
            "spec.backend.startTimeoutMs",
            self.start_timeout_ms,
            SERVICE_DEFAULT_START_TIMEOUT_MS,
            SERVICE_MIN_START_TIMEOUT_MS,
            SERVICE_MAX_START_TIMEOUT_MS,
        )?;
        if self.restart_policy == RestartPolicy::Never && self.max_restarts.is_some() {
            return Err(NimbusError::invalid_input(
                "spec.backend.maxRestarts",
                "is only allowed with restartPolicy on_failure or always",
            ));
        }
        let max_restarts = ranged(
            "spec.backend.maxRestarts",
            self.max_restarts,
            SERVICE_DEFAULT_MAX_RESTARTS.into(),
            0,
            SERVICE_MAX_RESTARTS.into(),
        )?;
        Ok(SandboxService {
            sandbox,
            readiness,
            start_timeout_ms,
            restart_policy: self.restart_policy,
            max_restarts: u32::try_from(max_restarts).unwrap_or(SERVICE_MAX_RESTARTS),
        })
    }
}

/// The sandbox a `browser` service runs: headless Chromium from the browser image, with the
/// browser defaults for what the request leaves out.
fn browser_sandbox(name: &str, browser: BrowserRequest) -> CreateSandbox {
    let resources = ResourcesRequest {
        memory_limit_bytes: browser.resources.memory_limit_bytes.or(Some(BROWSER_DEFAULT_MEMORY_BYTES)),
        pids_limit: browser.resources.pids_limit.or(Some(BROWSER_DEFAULT_PIDS.into())),
        ..browser.resources
    };
    CreateSandbox {
        profile: Profile::Worker,
        owner: Owner::Service { service_name: name.to_owned() },
        backend: BackendKind::Container,
        reference: browser.image.unwrap_or_else(|| BROWSER_IMAGE_REFERENCE.to_owned()),
        process: ProcessRequest { argv: Some(nimbus_browser::launch::chromium_argv()), ..ProcessRequest::default() },
        resources,
        network: browser.network,
        labels: Labels::new(),
        // Its pages must not reach Chromium's DevTools endpoint through the proxy's `localhost`.
        private_ports: vec![BROWSER_DEVTOOLS_PORT],
    }
}

/// Ready once Chromium answers on its DevTools endpoint inside the sandbox.
fn browser_readiness() -> Readiness {
    Readiness {
        probe: Probe::Http { port: BROWSER_DEVTOOLS_PORT, path: "/json/version".to_owned() },
        interval_ms: BROWSER_PROBE_INTERVAL_MS,
        timeout_ms: PROBE_DEFAULT_TIMEOUT_MS,
        failure_threshold: PROBE_DEFAULT_FAILURE_THRESHOLD,
    }
}

/// Moves a browser sandbox's field error (`spec.resources…`, `spec.root…`) under
/// `spec.backend.browser` (`resources`, `network`, `image`).
fn within_browser(error: NimbusError) -> NimbusError {
    moved(error, |inner| {
        let inner = if inner.starts_with("root") { "image" } else { inner };
        format!("spec.backend.browser.{inner}")
    })
}

/// The sandbox part: checked like a sandbox create request, with the effective resources kept
/// (so the definition echoes the defaults). Its field errors (`spec.…`) are moved by `place`.
fn validate_sandbox(
    mut sandbox: CreateSandbox,
    name: &str,
    place: fn(NimbusError) -> NimbusError,
) -> Result<CreateSandbox, NimbusError> {
    sandbox.owner = Owner::Service { service_name: name.to_owned() };
    let valid = sandbox.validate().map_err(place)?;
    let mut sandbox = valid.request;
    sandbox.resources = ResourcesRequest {
        cpu_count: Some(valid.resources.cpu_count.into()),
        memory_limit_bytes: Some(valid.resources.memory_limit_bytes),
        pids_limit: Some(valid.resources.pids_limit.into()),
        disk_limit_bytes: valid.resources.disk_limit_bytes,
    };
    Ok(sandbox)
}

/// Moves a sandbox spec's field error (`spec.…`) under `spec.backend.sandbox`.
pub fn within_sandbox(error: NimbusError) -> NimbusError {
    moved(error, |inner| format!("spec.backend.sandbox.{inner}"))
}

/// Renames a sandbox spec's field error: `to` gets the field without its `spec.` prefix; the
/// message follows.
fn moved(mut error: NimbusError, to: impl Fn(&str) -> String) -> NimbusError {
    let field = error.detail.as_ref().and_then(|d| d.get("field")).and_then(|f| f.as_str()).map(str::to_owned);
    if let (Some(field), Some(detail)) = (field, error.detail.as_mut()) {
        let moved = to(field.strip_prefix("spec.").unwrap_or(&field));
        error.message = error.message.replace(&field, &moved);
        detail["field"] = moved.into();
    }
    error
}

fn validate_readiness(request: ReadinessRequest) -> Result<Readiness, NimbusError> {
    let field = |name: &str| format!("spec.backend.readiness.{name}");
    let port = |port: u64| {
        u16::try_from(port)
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| NimbusError::invalid_input(field("port"), "must be from 1 to 65535"))
    };
    let probe = match request.probe {
        ProbeRequest::Tcp { port: p } => Probe::Tcp { port: port(p)? },
        ProbeRequest::Http { port: p, path } => {
            validate_path(&path, &field("path"))?;
            Probe::Http { port: port(p)?, path }
        }
        ProbeRequest::Exec { argv } => {
            if argv.is_empty() {
                return Err(NimbusError::invalid_input(field("argv"), "must not be empty"));
            }
            if argv.iter().any(|a| a.contains('\0')) {
                return Err(NimbusError::invalid_input(field("argv"), "must not contain NUL characters"));
            }
            Probe::Exec { argv }
        }
    };
    Ok(Readiness {
        probe,
        interval_ms: ranged(
            &field("intervalMs"),
            request.interval_ms,
            PROBE_DEFAULT_INTERVAL_MS,
            PROBE_MIN_INTERVAL_MS,
            PROBE_MAX_INTERVAL_MS,
        )?,
        timeout_ms: ranged(
            &field("timeoutMs"),
            request.timeout_ms,
            PROBE_DEFAULT_TIMEOUT_MS,
            PROBE_MIN_TIMEOUT_MS,
            PROBE_MAX_TIMEOUT_MS,
        )?,
        failure_threshold: threshold(&field("failureThreshold"), request.failure_threshold)?,
    })
}

fn threshold(field: &str, asked: Option<u64>) -> Result<u32, NimbusError> {
    let value = ranged(field, asked, PROBE_DEFAULT_FAILURE_THRESHOLD.into(), 1, PROBE_MAX_FAILURE_THRESHOLD.into())?;
    Ok(u32::try_from(value).unwrap_or(PROBE_MAX_FAILURE_THRESHOLD))
}

/// A defaulted integer within `min..=max` (else 400 naming `field`).
fn ranged(field: &str, asked: Option<u64>, default: u64, min: u64, max: u64) -> Result<u64, NimbusError> {
    let value = asked.unwrap_or(default);
    if !(min..=max).contains(&value) {
        return Err(NimbusError::invalid_input(field, format!("must be from {min} to {max}")));
    }
    Ok(value)
}

/// A request path: starts with `/`, one line, no whitespace or control characters.
fn validate_path(path: &str, field: &str) -> Result<(), NimbusError> {
    if !path.starts_with('/') {
        return Err(NimbusError::invalid_input(field, "must start with '/'"));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NimbusError::invalid_input(field, "must not contain whitespace or control characters"));
    }
    Ok(())
}

/// `endpoint.url`: an absolute, single-line `http`/`https` URL with a host and no user info.
fn validate_url(url: &str) -> Result<(), NimbusError> {
    const FIELD: &str = "spec.backend.endpoint.url";
    if url.len() > EXTERNAL_MAX_URL_BYTES {
        return Err(NimbusError::invalid_input(FIELD, format!("is longer than {EXTERNAL_MAX_URL_BYTES} bytes")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NimbusError::invalid_input(FIELD, "must be one line without whitespace"));
    }
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return Err(NimbusError::invalid_input(FIELD, "must be an absolute http:// or https:// URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(NimbusError::invalid_input(FIELD, "must not carry user info"));
    }
    let host = match authority.rsplit_once(':') {
        // `[::1]:8080`, `host:8080`; a bare IPv6 literal has `]` last.
        Some((host, port)) if !port.contains(']') => {
            if port.is_empty() || port.parse::<u16>().is_err() {
                return Err(NimbusError::invalid_input(FIELD, "has an invalid port"));
            }
            host
        }
        _ => authority,
    };
    if host.is_empty() || host == "[]" {
        return Err(NimbusError::invalid_input(FIELD, "must name a host"));
    }
    if rest.contains('#') {
        return Err(NimbusError::invalid_input(FIELD, "must not carry a fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        for good in ["web", "Web API", "a.b-c_d", &"x".repeat(128)] {
            assert!(validate_name(good, "name").is_ok(), "{good}");
        }
        for bad in ["", "a/b", " web", "web ", "a\u{7}b", &"x".repeat(129)] {
            assert!(validate_name(bad, "name").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_are_absolute_http_with_a_host() {
        for good in ["http://127.0.0.1:8080", "https://example.com/base", "http://[::1]:80/x?y=1", "http://h"] {
            assert!(validate_url(good).is_ok(), "{good}");
        }
        for bad in ["ftp://h", "http://", "http://u:p@h/", "http://h:x/", "http://h/a b", "/rel", "http://h/#f"] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
        let ext = ExternalService {
            url: "http://h/".into(),
            health_path: "/healthz".into(),
            interval_ms: 1,
            timeout_ms: 1,
            failure_threshold: 1,
        };
        assert_eq!(ext.health_url(), "http://h/healthz");
    }

    #[test]
    fn readiness_defaults_and_bounds() {
        let request =
            |probe, interval_ms| ReadinessRequest { probe, interval_ms, timeout_ms: None, failure_threshold: None };
        let ok = validate_readiness(request(ProbeRequest::Tcp { port: 5432 }, None)).expect("defaults");
        assert_eq!((ok.interval_ms, ok.timeout_ms, ok.failure_threshold), (1000, 1000, 3));
        let err = validate_readiness(request(ProbeRequest::Tcp { port: 0 }, None)).expect_err("port 0");
        assert_eq!(err.detail.expect("detail")["field"], "spec.backend.readiness.port");
        let err = validate_readiness(request(ProbeRequest::Tcp { port: 1 }, Some(99))).expect_err("interval");
        assert_eq!(err.detail.expect("detail")["field"], "spec.backend.readiness.intervalMs");
        let err = validate_readiness(request(ProbeRequest::Http { port: 80, path: "x".into() }, None))
            .expect_err("relative path");
        assert_eq!(err.detail.expect("detail")["field"], "spec.backend.readiness.path");
        assert!(validate_readiness(request(ProbeRequest::Exec { argv: vec![] }, None)).is_err());
    }

    #[test]
    fn browser_field_errors_name_the_browser_block() {
        let request = |resources| DefinitionRequest {
            name: "b".into(),
            labels: Labels::new(),
            backend: BackendRequest::BuiltIn {
                provider: Provider::Browser,
                browser: Some(Box::new(BrowserRequest { resources, ..BrowserRequest::default() })),
            },
        };
        let huge = ResourcesRequest { memory_limit_bytes: Some(u64::MAX), ..ResourcesRequest::default() };
        let err = request(huge).validate().expect_err("memory beyond the maximum");
        assert_eq!(err.detail.expect("detail")["field"], "spec.backend.browser.resources.memoryLimitBytes");
        assert!(request(ResourcesRequest::default()).validate().is_ok());
    }

    #[test]
    fn restart_policies() {
        assert!(!RestartPolicy::Never.restarts_after(true));
        assert!(RestartPolicy::OnFailure.restarts_after(true) && !RestartPolicy::OnFailure.restarts_after(false));
        assert!(RestartPolicy::Always.restarts_after(false));
        assert_eq!(RestartPolicy::parse("on_failure"), Some(RestartPolicy::OnFailure));
        assert_eq!(Provider::parse("browser"), Some(Provider::Browser));
    }
}

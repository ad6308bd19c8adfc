//! A create request, validated: what the caller asked for, before the image fills the gaps.

use nimbus_core::NimbusError;
use nimbus_core::limits::{
    MAX_DISPLAY_NAME_CHARS, SANDBOX_DEFAULT_CPUS, SANDBOX_DEFAULT_DISK_BYTES, SANDBOX_DEFAULT_MEMORY_BYTES,
    SANDBOX_DEFAULT_PIDS, SANDBOX_ID_SLUG_CHARS, SANDBOX_MAX_CPUS, SANDBOX_MAX_DISK_BYTES, SANDBOX_MAX_MEMORY_BYTES,
    SANDBOX_MAX_PIDS, SANDBOX_MIN_DISK_BYTES, SANDBOX_MIN_MEMORY_BYTES, SANDBOX_MIN_PIDS,
};
use nimbus_egress::rules::NetworkSpec;
use nimbus_sandbox::backend::Resources;
use nimbus_sandbox::image::{Reference, RunConfig};
use serde::{Deserialize, Serialize};

use crate::labels::{self, Labels};

/// The environment prefix reserved for Nimbus.
const RESERVED_ENV_PREFIX: &str = "NIMBUS_SANDBOX_";

/// `profile`: recorded and echoed; `desktop` launches like `worker` in this version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// A headless worker.
    Worker,
    /// A desktop sandbox (recorded; launches like `worker`).
    Desktop,
}

/// `spec.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// An OCI container.
    Container,
    /// A microVM (fails closed where unsupported).
    Krun,
}

impl BackendKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Krun => "krun",
        }
    }
}

/// `spec.owner`: who a sandbox belongs to. Callers create only `standalone` sandboxes; services
/// create `service` ones for themselves, and only the service may stop or delete those.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "kind")]
pub enum Owner {
    /// A sandbox of its own, optionally named for people (and its id's slug).
    Standalone {
        /// `displayName`.
        display_name: Option<String>,
    },
    /// A sandbox a service runs; its id's slug is the service name.
    Service {
        /// The owning service.
        service_name: String,
    },
}

impl Default for Owner {
    fn default() -> Self {
        Self::Standalone { display_name: None }
    }
}

impl Owner {
    /// The owning service's name, for service-owned sandboxes.
    pub fn service_name(&self) -> Option<&str> {
        match self {
            Self::Service { service_name } => Some(service_name),
            Self::Standalone { .. } => None,
        }
    }

    /// What the id's slug is made from (sandboxes.md §3).
    fn slug_source(&self) -> Option<&str> {
        match self {
            Self::Standalone { display_name } => display_name.as_deref(),
            Self::Service { service_name } => Some(service_name),
        }
    }
}

/// `spec.process` as asked (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRequest {
    /// Exact command line (`argv`, or its alias `args`).
    pub argv: Option<Vec<String>>,
    /// Replaces the image Entrypoint (and drops its Cmd).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image Cmd.
    pub command: Option<Vec<String>>,
    /// `KEY=VALUE` entries laid over the image's Env.
    pub env: Vec<String>,
    /// Absolute working directory.
    pub cwd: Option<String>,
    /// User, resolved inside the image.
    pub user: Option<String>,
    /// Whether the main process gets a pty.
    pub terminal: bool,
}

/// `spec.resources` as asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesRequest {
    /// `cpuCount`.
    pub cpu_count: Option<u64>,
    /// `memoryLimitBytes`.
    pub memory_limit_bytes: Option<u64>,
    /// `pidsLimit`.
    pub pids_limit: Option<u64>,
    /// `diskLimitBytes`.
    #[serde(default)]
    pub disk_limit_bytes: Option<u64>,
}

/// A sandbox create request whose shape the HTTP layer has checked. Services keep one in their
/// definition (so it is also stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSandbox {
    /// `profile`.
    pub profile: Profile,
    /// `spec.owner`.
    pub owner: Owner,
    /// `spec.backend`.
    pub backend: BackendKind,
    /// `spec.root.source.reference`, as given.
    pub reference: String,
    /// `spec.process`.
    pub process: ProcessRequest,
    /// `spec.resources`.
    pub resources: ResourcesRequest,
    /// `spec.network` (services stored before it existed have none: deny-all).
    #[serde(default)]
    pub network: NetworkSpec,
    /// `labels`.
    pub labels: Labels,
    /// Ports of the sandbox's own loopback its egress proxy never connects it to (never on the
    /// wire: Nimbus sets them for its own workloads, a browser's DevTools port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_ports: Vec<u16>,
}

/// A request that passed every check that does not need the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCreate {
    /// The request.
    pub request: CreateSandbox,
    /// The normalized image reference.
    pub reference: Reference,
    /// Effective resources.
    pub resources: Resources,
}

impl CreateSandbox {
    /// Checks everything that does not need the image: labels, display name, reference,
    /// environment, working directory, resources against the operator maxima, and the shape of
    /// the network rules (normalized; the ceiling and the secrets are the registry's checks).
    pub fn validate(mut self) -> Result<ValidCreate, NimbusError> {
        self.network = std::mem::take(&mut self.network).validate("spec.network")?;
        labels::validate(&self.labels)?;
        if let Owner::Standalone { display_name: Some(name) } = &self.owner
            && name.chars().count() > MAX_DISPLAY_NAME_CHARS
        {
            return Err(NimbusError::invalid_input(
                "spec.owner.displayName",
                format!("is longer than {MAX_DISPLAY_NAME_CHARS} characters"),
            ));
        }
        let reference = Reference::parse(&self.reference)
            .map_err(|e| NimbusError::invalid_input("spec.root.source.reference", e.to_string()))?;
        for (i, entry) in self.process.env.iter().enumerate() {
            let field = format!("spec.process.env[{i}]");
            let Some((key, _)) = entry.split_once('=') else {
                return Err(NimbusError::invalid_input(field, "must be KEY=VALUE"));
            };
            if key.is_empty() || key.contains('\0') {
                return Err(NimbusError::invalid_input(field, "has an empty or invalid key"));
            }
            if key.starts_with(RESERVED_ENV_PREFIX) {
                return Err(NimbusError::invalid_input(
                    field,
                    format!("keys starting with {RESERVED_ENV_PREFIX} are reserved"),
                ));
            }
        }
        if let Some(cwd) = &self.process.cwd
            && !cwd.starts_with('/')
        {
            return Err(NimbusError::invalid_input("spec.process.cwd", "must be an absolute path"));
        }
        for (field, list) in [
            ("spec.process.argv", &self.process.argv),
            ("spec.process.entrypoint", &self.process.entrypoint),
            ("spec.process.command", &self.process.command),
        ] {
            if list.iter().flatten().any(|arg| arg.contains('\0')) {
                return Err(NimbusError::invalid_input(field, "must not contain NUL characters"));
            }
        }
        let resources = self.effective_resources()?;
        Ok(ValidCreate { request: self, reference, resources })
    }

    fn effective_resources(&self) -> Result<Resources, NimbusError> {
        let r = self.resources;
        let cpu = bounded("cpuCount", r.cpu_count, SANDBOX_DEFAULT_CPUS.into(), 1, SANDBOX_MAX_CPUS.into())?;
        let memory = bounded(
            "memoryLimitBytes",
            r.memory_limit_bytes,
            SANDBOX_DEFAULT_MEMORY_BYTES,
            SANDBOX_MIN_MEMORY_BYTES,
            SANDBOX_MAX_MEMORY_BYTES,
        )?;
        let pids = bounded(
            "pidsLimit",
            r.pids_limit,
            SANDBOX_DEFAULT_PIDS.into(),
            SANDBOX_MIN_PIDS.into(),
            SANDBOX_MAX_PIDS.into(),
        )?;
        let disk = bounded(
            "diskLimitBytes",
            r.disk_limit_bytes,
            SANDBOX_DEFAULT_DISK_BYTES,
            SANDBOX_MIN_DISK_BYTES,
            SANDBOX_MAX_DISK_BYTES,
        )?;
        Ok(Resources {
            cpu_count: u32::try_from(cpu).unwrap_or(u32::MAX),
            memory_limit_bytes: memory,
            pids_limit: u32::try_from(pids).unwrap_or(u32::MAX),
            disk_limit_bytes: Some(disk),
        })
    }
}

/// A requested resource, defaulted, checked against its minimum (400 `op.invalid_input`) and
/// operator maximum (400 `op.cap_exceeded`).
fn bounded(name: &str, asked: Option<u64>, default: u64, min: u64, max: u64) -> Result<u64, NimbusError> {
    let value = asked.unwrap_or(default);
    if value < min {
        return Err(NimbusError::invalid_input(format!("spec.resources.{name}"), format!("must be at least {min}")));
    }
    if value > max {
        let mut err = NimbusError::cap_exceeded(name, value, max);
        if let Some(detail) = err.detail.as_mut() {
            detail["field"] = format!("spec.resources.{name}").into();
        }
        return Err(err);
    }
    Ok(value)
}

/// The process a sandbox runs once the image config fills what the request left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveProcess {
    /// Command line.
    pub argv: Vec<String>,
    /// Environment (`KEY=VALUE`, image Env overlaid by the request's, by key).
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User.
    pub user: String,
}

impl ProcessRequest {
    /// Merges the request with the image config (sandboxes.md §2 process table). An empty
    /// command line is 400 naming `spec.process.argv`.
    pub fn resolve(&self, image: &RunConfig) -> Result<EffectiveProcess, NimbusError> {
        let argv = match &self.argv {
            Some(argv) if !argv.is_empty() => argv.clone(),
            _ => {
                let entrypoint = self.entrypoint.clone().unwrap_or_else(|| image.entrypoint.clone());
                let command = match (&self.command, &self.entrypoint) {
                    (Some(command), _) => command.clone(),
                    (None, Some(_)) => Vec::new(),
                    (None, None) => image.cmd.clone(),
                };
                entrypoint.into_iter().chain(command).collect()
            }
        };
        if argv.is_empty() {
            return Err(NimbusError::invalid_input(
                "spec.process.argv",
                "the command line is empty: give argv, or use an image with an Entrypoint or Cmd",
            ));
        }
        let mut env: Vec<String> = Vec::new();
        for entry in image.env.iter().chain(&self.env) {
            let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
            env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            env.push(entry.clone());
        }
        let cwd = self
            .cwd
            .clone()
            .or_else(|| image.working_dir.clone().filter(|d| !d.is_empty()))
            .unwrap_or_else(|| "/".into());
        let user =
            self.user.clone().or_else(|| image.user.clone().filter(|u| !u.is_empty())).unwrap_or_else(|| "0:0".into());
        Ok(EffectiveProcess { argv, env, cwd, user })
    }
}

/// Mints a sandbox id: `<slug>-<ULID>` (sandboxes.md §3), the slug made from the display name
/// or the owning service's name.
pub fn mint_id(owner: &Owner) -> String {
    let mut slug = String::new();
    for c in owner.slug_source().unwrap_or("sandbox").chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_matches('-').chars().take(SANDBOX_ID_SLUG_CHARS).collect();
    slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        slug = "sandbox".into();
    }
    format!("{slug}-{}", nimbus_core::ids::mint_ulid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> RunConfig {
        RunConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into()],
            env: vec!["PATH=/bin".into(), "MODE=prod".into()],
            working_dir: Some("/app".into()),
            user: Some("app".into()),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn process_merges_with_the_image_config() {
        let plain = ProcessRequest::default().resolve(&image()).expect("image defaults");
        assert_eq!(plain.argv, strings(&["/entry", "serve"]));
        assert_eq!((plain.cwd.as_str(), plain.user.as_str()), ("/app", "app"));

        let argv = ProcessRequest { argv: Some(strings(&["sh"])), ..Default::default() };
        assert_eq!(argv.resolve(&image()).expect("argv").argv, strings(&["sh"]), "argv ignores Entrypoint and Cmd");

        let entry = ProcessRequest { entrypoint: Some(strings(&["/other"])), ..Default::default() };
        assert_eq!(entry.resolve(&image()).expect("entrypoint").argv, strings(&["/other"]), "entrypoint drops Cmd");

        let command = ProcessRequest { command: Some(strings(&["x"])), ..Default::default() };
        assert_eq!(command.resolve(&image()).expect("command").argv, strings(&["/entry", "x"]));

        let env = ProcessRequest { env: strings(&["MODE=test", "NEW=1"]), ..Default::default() };
        assert_eq!(env.resolve(&image()).expect("env").env, strings(&["PATH=/bin", "MODE=test", "NEW=1"]));

        let empty = RunConfig::default();
        let err = ProcessRequest::default().resolve(&empty).expect_err("empty command line");
        assert_eq!(err.detail.expect("detail")["field"], "spec.process.argv");
        let bare =
            ProcessRequest { argv: Some(strings(&["true"])), ..Default::default() }.resolve(&empty).expect("bare");
        assert_eq!((bare.cwd.as_str(), bare.user.as_str()), ("/", "0:0"));
    }

    #[test]
    fn ids_are_slugged_display_names() {
        let named = |name: &str| Owner::Standalone { display_name: Some(name.into()) };
        let id = mint_id(&named("  Agent Task!! #1 "));
        assert!(id.starts_with("agent-task-1-"), "{id}");
        assert_eq!(id.len(), "agent-task-1-".len() + 26);
        assert!(mint_id(&Owner::default()).starts_with("sandbox-"));
        assert!(mint_id(&named("!!!")).starts_with("sandbox-"));
        assert!(mint_id(&Owner::Service { service_name: "Web API".into() }).starts_with("web-api-"));
        let long = mint_id(&named(&"ab ".repeat(40)));
        assert!(long.len() <= SANDBOX_ID_SLUG_CHARS + 27 && !long.contains("--"), "{long}");
    }

    fn create() -> CreateSandbox {
        CreateSandbox {
            profile: Profile::Worker,
            owner: Owner::default(),
            backend: BackendKind::Container,
            reference: "busybox".into(),
            process: ProcessRequest::default(),
            resources: ResourcesRequest::default(),
            network: NetworkSpec::default(),
            private_ports: Vec::new(),
            labels: Labels::new(),
        }
    }

    #[test]
    fn resources_default_and_respect_the_maxima() {
        let valid = create().validate().expect("defaults");
        assert_eq!(valid.resources.cpu_count, SANDBOX_DEFAULT_CPUS);
        assert_eq!(valid.reference.to_string(), "docker.io/library/busybox:latest");
        let over =
            CreateSandbox { resources: ResourcesRequest { cpu_count: Some(8), ..Default::default() }, ..create() };
        let err = over.validate().expect_err("over the max");
        assert_eq!(err.code.as_str(), "op.cap_exceeded");
        let detail = err.detail.expect("detail");
        assert_eq!(
            (detail["cap"].as_str(), detail["observed"].as_u64(), detail["limit"].as_u64()),
            (Some("cpuCount"), Some(8), Some(4))
        );
        let under =
            CreateSandbox { resources: ResourcesRequest { pids_limit: Some(2), ..Default::default() }, ..create() };
        assert_eq!(under.validate().expect_err("under").code.as_str(), "op.invalid_input");
        let reserved = CreateSandbox {
            process: ProcessRequest { env: strings(&["NIMBUS_SANDBOX_X=1"]), ..Default::default() },
            ..create()
        };
        assert_eq!(reserved.validate().expect_err("reserved").detail.expect("detail")["field"], "spec.process.env[0]");
        let relative =
            CreateSandbox { process: ProcessRequest { cwd: Some("app".into()), ..Default::default() }, ..create() };
        assert_eq!(relative.validate().expect_err("cwd").detail.expect("detail")["field"], "spec.process.cwd");
    }
}

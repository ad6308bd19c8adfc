//! A tenant's deployed function set: compiled modules, the functions they export, and its
//! stored form (JSON the engine keeps opaque).

use std::collections::BTreeMap;

use nimbus_core::{ErrorCode, NimbusError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validator::Descriptor;

/// What a function may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Reads one snapshot; subscribable.
    Query,
    /// Reads and writes one transaction.
    Mutation,
    /// Orchestrates other functions; no direct data access.
    Action,
}

impl Kind {
    /// The name with its article, for messages ("a query", "an action").
    pub fn with_article(self) -> &'static str {
        match self {
            Kind::Query => "a query",
            Kind::Mutation => "a mutation",
            Kind::Action => "an action",
        }
    }

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
            Kind::Action => "action",
        }
    }
}

/// Who may call a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Callable over HTTP and WebSocket.
    Public,
    /// Callable only from other functions and the scheduler.
    Internal,
}

/// One function of a deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionInfo {
    /// `module path without extension:export`.
    pub name: String,
    /// Kind.
    pub kind: Kind,
    /// Visibility.
    pub visibility: Visibility,
    /// The module that exports it (canonical path, with extension).
    pub module: String,
    /// The export's name (`default` for a default export).
    pub export: String,
    /// The args validator (`None`: any object).
    pub args: Option<Descriptor>,
    /// The return value validator.
    pub returns: Option<Descriptor>,
    /// Built with `paginatedQuery`.
    #[serde(default)]
    pub paginated: bool,
}

/// One compiled module of a deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleCode {
    /// ES module source, types erased.
    pub js: String,
    /// Import specifier as written → the module path or built-in module name it resolves to.
    pub imports: BTreeMap<String, String>,
}

/// A deployment: everything an isolate needs to run the tenant's functions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    /// Per-tenant deploy counter (0: nothing deployed).
    #[serde(skip)]
    pub version: i64,
    /// Deploy time, epoch ms (0: nothing deployed).
    #[serde(skip)]
    pub deployed_at: i64,
    /// Modules by canonical path.
    pub modules: BTreeMap<String, ModuleCode>,
    /// Functions by name.
    pub functions: BTreeMap<String, FunctionInfo>,
}

/// A deployment as stored: version, deploy time and the JSON text of the [`Deployment`].
#[derive(Debug, Clone)]
pub struct StoredDeployment {
    /// Version.
    pub version: i64,
    /// Deploy time, epoch ms.
    pub deployed_at: i64,
    /// JSON text.
    pub body: String,
}

impl Deployment {
    /// The empty deployment of a tenant that never deployed.
    pub fn empty() -> Self {
        Self { version: 0, deployed_at: 0, modules: BTreeMap::new(), functions: BTreeMap::new() }
    }

    /// Decodes a stored deployment.
    pub fn from_stored(stored: &StoredDeployment) -> Result<Self, NimbusError> {
        let mut deployment: Deployment = serde_json::from_str(&stored.body).map_err(|e| {
            tracing::error!(error = %e, "a stored function set cannot be decoded");
            NimbusError::new(ErrorCode::ServiceSerialization, "the stored function set could not be decoded", None)
        })?;
        deployment.version = stored.version;
        deployment.deployed_at = stored.deployed_at;
        Ok(deployment)
    }

    /// The JSON text to store.
    pub fn to_body(&self) -> Result<String, NimbusError> {
        serde_json::to_string(self).map_err(|e| {
            tracing::error!(error = %e, "a function set cannot be encoded");
            NimbusError::internal()
        })
    }

    /// A function by name: 404 `function.not_found`.
    pub fn function(&self, name: &str) -> Result<&FunctionInfo, NimbusError> {
        self.functions.get(name).ok_or_else(|| function_not_found(name))
    }

    /// The function list as the API shows it: `[{name, kind, visibility}]`, sorted by name.
    pub fn listing(&self) -> Vec<Value> {
        self.functions
            .values()
            .map(|f| serde_json::json!({ "name": f.name, "kind": f.kind, "visibility": f.visibility }))
            .collect()
    }
}

/// 404 `function.not_found`.
pub fn function_not_found(name: &str) -> NimbusError {
    NimbusError::function_not_found(name)
}

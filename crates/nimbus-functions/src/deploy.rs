//! Preparing a deploy: size limits, compilation (type erasure and import resolution, in
//! `nimbus-modules`), then discovery: every module evaluated once in a fresh isolate with no
//! `ctx` under a small CPU budget, its exports described by the prelude. Nothing here
//! activates anything; the caller stores the result and then activates it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nimbus_core::limits::{
    FUNCTION_DISCOVERY_CPU_MS, FUNCTION_MAX_DEPLOY_BYTES, FUNCTION_MAX_MODULE_BYTES, FUNCTION_MAX_MODULES,
};
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_modules::{Builtin, CompiledModule, DeployError, Resolved};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::deployment::{Deployment, FunctionInfo, Kind, ModuleCode, Visibility};
use crate::host::{Completion, Ending, Finish, Host, Session};
use crate::runtime::budget::Tripped;
use crate::runtime::isolate::{Isolate, JsFailure};
use crate::{Functions, validator};

/// Wall-clock bound of discovery (top-level code has no timers or host calls, so CPU binds
/// first; this only covers a machine under load).
const DISCOVERY_WALL: Duration = Duration::from_secs(10);

/// A deploy ready to store and activate.
#[derive(Debug)]
pub struct Prepared {
    /// The new deployment (version and time are assigned when it is stored).
    pub deployment: Deployment,
    /// The `defineSchema` of `schema.ts`, if the deploy has one:
    /// `{"tables": {"<name>": {"fields": {"<field>": Descriptor}, "indexes": [...]}}}`.
    pub schema: Option<Value>,
}

/// What the prelude's `describe` hook answers for a function export.
#[derive(Deserialize)]
struct Description {
    kind: Kind,
    visibility: Visibility,
    args: Option<Value>,
    returns: Option<Value>,
    #[serde(default)]
    paginated: bool,
}

/// The session of discovery: top-level code has no `ctx`, so nothing reaches it.
pub(crate) struct Discovery;

impl Session for Discovery {
    type Trace = ();

    fn already_executed(&mut self) -> Result<bool, NimbusError> {
        Ok(false)
    }

    fn op(&mut self, name: &str, _payload: Value) -> Result<Value, NimbusError> {
        Err(NimbusError::invalid_request(format!("{name} is not available while a deploy is evaluated")))
    }

    fn start(&mut self, name: &str, _payload: Value, done: Completion) {
        done(Err(NimbusError::invalid_request(format!("{name} is not available while a deploy is evaluated"))));
    }

    fn finish(self, _success: bool, then: Finish<()>) {
        then(Ok(Ending::Finished(())));
    }
}

impl<H: Host> Functions<H> {
    /// Validates, compiles and discovers a deploy. 400 `op.cap_exceeded` past the size limits;
    /// 400 `function.deploy_failed` listing every error with file, line and column.
    pub async fn prepare(&self, modules: BTreeMap<String, String>) -> Result<Prepared, NimbusError> {
        check_sizes(&modules)?;
        let memory = self.limits().memory_bytes;
        self.on_worker(move || {
            let compiled = nimbus_modules::compile_set(&modules).map_err(deploy_failed)?;
            discover(&compiled, memory)
        })
        .await
    }
}

fn check_sizes(modules: &BTreeMap<String, String>) -> Result<(), NimbusError> {
    if modules.len() > FUNCTION_MAX_MODULES {
        return Err(NimbusError::cap_exceeded("modules", modules.len() as u64, FUNCTION_MAX_MODULES as u64));
    }
    let mut total = 0usize;
    for (path, source) in modules {
        if source.len() > FUNCTION_MAX_MODULE_BYTES {
            let mut error =
                NimbusError::cap_exceeded("module_bytes", source.len() as u64, FUNCTION_MAX_MODULE_BYTES as u64);
            error.message = format!("module {path}: {}", error.message);
            return Err(error);
        }
        total += source.len();
    }
    if total > FUNCTION_MAX_DEPLOY_BYTES {
        return Err(NimbusError::cap_exceeded("deploy_bytes", total as u64, FUNCTION_MAX_DEPLOY_BYTES as u64));
    }
    Ok(())
}

/// 400 `function.deploy_failed`.
fn deploy_failed(errors: Vec<DeployError>) -> NimbusError {
    let first =
        errors.first().map_or_else(String::new, |e| format!(": {}:{}:{}: {}", e.file, e.line, e.column, e.message));
    let count = errors.len();
    let listed: Vec<Value> = errors
        .into_iter()
        .map(|e| json!({ "file": e.file, "line": e.line, "column": e.column, "message": e.message }))
        .collect();
    NimbusError::new(
        ErrorCode::FunctionDeployFailed,
        format!("the deploy has {count} error(s){first}"),
        Some(json!({ "errors": listed })),
    )
}

/// Evaluates every module once and collects the functions they export.
fn discover(compiled: &[CompiledModule], memory: usize) -> Result<Prepared, NimbusError> {
    let modules: BTreeMap<String, ModuleCode> = compiled
        .iter()
        .map(|m| {
            let imports = m
                .imports
                .iter()
                .map(|(specifier, resolved)| {
                    let target = match resolved {
                        Resolved::Module(path) => path.clone(),
                        Resolved::Builtin(Builtin::Server) => "@nimbus/nimbus/server".to_owned(),
                        Resolved::Builtin(Builtin::Values) => "@nimbus/nimbus/values".to_owned(),
                    };
                    (specifier.clone(), target)
                })
                .collect();
            (m.path.as_str().to_owned(), ModuleCode { js: m.js.clone(), imports })
        })
        .collect();
    let shared = Arc::new(modules.clone());
    let mut isolate: Isolate<Discovery> = Isolate::new(shared, memory).map_err(|failure| {
        tracing::error!(?failure, "cannot create a discovery isolate");
        NimbusError::internal()
    })?;
    isolate.budget().arm(Duration::from_millis(FUNCTION_DISCOVERY_CPU_MS), Instant::now() + DISCOVERY_WALL);
    let mut functions = BTreeMap::new();
    let mut errors = Vec::new();
    let mut schema = None;
    for module in compiled {
        let path = module.path.as_str();
        let exports = match isolate.exports(path) {
            Ok(exports) => exports,
            Err(failure) => {
                errors.push(failure_at(path, failure));
                if !isolate.reusable() {
                    break;
                }
                continue;
            }
        };
        for (export, description) in exports {
            let Some(description) = description else { continue };
            match describe(module, &export, &description) {
                Ok(info) => {
                    functions.insert(info.name.clone(), info);
                }
                Err(message) => errors.push(DeployError { file: path.to_owned(), line: 1, column: 1, message }),
            }
        }
        if module.path.stem() == "schema" {
            match isolate.schema(path) {
                Ok(Some(text)) => match serde_json::from_str::<Value>(&text) {
                    Ok(value) => schema = Some(value),
                    Err(e) => errors.push(at_start(path, format!("defineSchema produced invalid JSON: {e}"))),
                },
                Ok(None) => {}
                Err(failure) => errors.push(failure_at(path, failure)),
            }
        }
    }
    isolate.budget().disarm();
    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        return Err(deploy_failed(errors));
    }
    let mut deployment = Deployment::empty();
    deployment.modules = modules;
    deployment.functions = functions;
    Ok(Prepared { deployment, schema })
}

/// A function's info from its export and the prelude's description.
fn describe(module: &CompiledModule, export: &str, description: &str) -> Result<FunctionInfo, String> {
    let described: Description =
        serde_json::from_str(description).map_err(|e| format!("export {export}: unreadable description: {e}"))?;
    let args =
        described.args.as_ref().map(validator::parse).transpose().map_err(|e| format!("export {export}: args: {e}"))?;
    let returns = described
        .returns
        .as_ref()
        .map(validator::parse)
        .transpose()
        .map_err(|e| format!("export {export}: returns: {e}"))?;
    Ok(FunctionInfo {
        name: format!("{}:{export}", module.path.stem()),
        kind: described.kind,
        visibility: described.visibility,
        module: module.path.as_str().to_owned(),
        export: export.to_owned(),
        args,
        returns,
        paginated: described.paginated,
    })
}

fn at_start(file: &str, message: String) -> DeployError {
    DeployError { file: file.to_owned(), line: 1, column: 1, message }
}

/// A failure while evaluating a module, placed at the first stack frame in that module.
fn failure_at(file: &str, failure: JsFailure) -> DeployError {
    match failure {
        JsFailure::Limit(Tripped::Cpu) => {
            at_start(file, format!("top-level code ran past the {FUNCTION_DISCOVERY_CPU_MS} ms CPU limit of discovery"))
        }
        JsFailure::Limit(Tripped::Wall) => at_start(file, "top-level code did not finish in time".to_owned()),
        JsFailure::Memory => at_start(file, "top-level code ran out of memory".to_owned()),
        JsFailure::Stalled => at_start(file, "top-level await never settled".to_owned()),
        JsFailure::Exception { name, message, stack } => {
            let (line, column) = position_in(&stack, file).unwrap_or((1, 1));
            DeployError { file: file.to_owned(), line, column, message: format!("{name}: {message}") }
        }
    }
}

/// The `(line, column)` of the first stack frame in `file` (QuickJS frames read
/// `    at name (file:line:column)`).
fn position_in(stack: &str, file: &str) -> Option<(u32, u32)> {
    stack.lines().find_map(|frame| {
        let start = frame.find(file)? + file.len();
        let rest = frame[start..].strip_prefix(':')?;
        let mut parts = rest.split(|c: char| !c.is_ascii_digit());
        let line = parts.next()?.parse().ok()?;
        let column = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
        Some((line, column))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    /// The discovery session, for runtime tests that need a session type.
    pub(crate) type NoSession = super::Discovery;
}

//! Module resolution and loading inside an isolate: a deployment's modules by canonical path
//! (each import specifier looked up in the map the compiler resolved at deploy time), and the
//! built-in prelude modules. Nothing else can be loaded: no files, no network.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::{Declared, WriteOptions};
use rquickjs::{Context, Ctx, Error, Module, Result, Runtime};

use crate::deployment::ModuleCode;

/// The built-in modules: name → source.
pub(crate) const BUILTINS: &[(&str, &str)] = &[
    ("@nimbus/nimbus/server", include_str!("../prelude/server.js")),
    ("nimbus/server", "export * from \"@nimbus/nimbus/server\";\n"),
    ("@nimbus/nimbus/values", include_str!("../prelude/values.js")),
    ("nimbus:internal/globals", include_str!("../prelude/globals.js")),
    ("nimbus:internal/host", include_str!("../prelude/host.js")),
    ("nimbus:internal/validators", include_str!("../prelude/validators.js")),
    ("nimbus:internal/query", include_str!("../prelude/query.js")),
];

/// Resolves and loads the modules of one deployment plus the built-ins.
#[derive(Clone)]
pub(crate) struct DeploymentLoader {
    modules: Arc<BTreeMap<String, ModuleCode>>,
    /// Whether built-ins load from their precompiled bytecode (not while precompiling them).
    precompiled: bool,
}

impl DeploymentLoader {
    pub(crate) fn new(modules: Arc<BTreeMap<String, ModuleCode>>) -> Self {
        Self { modules, precompiled: true }
    }
}

fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, source)| *source)
}

/// A built-in module's name and its bytecode.
type Compiled = (&'static str, Vec<u8>);

/// The built-in modules compiled to QuickJS bytecode once per process (a fresh isolate then
/// loads instead of parsing and compiling ~90 KB of JavaScript), or `None` if compiling failed
/// (isolates then compile from source).
fn compiled_builtins() -> Option<&'static [Compiled]> {
    static COMPILED: OnceLock<Option<Vec<Compiled>>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let compile = || -> Result<Vec<Compiled>> {
                let runtime = Runtime::new()?;
                // Declaring a module loads its imports: the built-ins, from source here.
                let sources = DeploymentLoader { modules: Arc::default(), precompiled: false };
                runtime.set_loader(sources.clone(), sources);
                let context = Context::full(&runtime)?;
                context.with(|ctx| {
                    BUILTINS
                        .iter()
                        .map(|(name, source)| {
                            let module = Module::declare(ctx.clone(), *name, *source)?;
                            Ok((*name, module.write(WriteOptions::default())?))
                        })
                        .collect()
                })
            };
            compile().map_err(|e| tracing::error!(error = %e, "cannot precompile the prelude")).ok()
        })
        .as_deref()
}

/// Loads a built-in module from its precompiled bytecode.
#[allow(unsafe_code)]
fn load_compiled<'js>(ctx: &Ctx<'js>, name: &str) -> Option<Result<Module<'js, Declared>>> {
    let (_, bytes) = compiled_builtins()?.iter().find(|(n, _)| *n == name)?;
    // SAFETY: the bytes are bytecode this process wrote from its own built-in sources with this
    // same QuickJS build (`compiled_builtins`); they are never read from outside, and they live
    // for the whole process, as QuickJS's ROM-data loading requires.
    Some(unsafe { Module::load(ctx.clone(), bytes) })
}

impl Resolver for DeploymentLoader {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<String> {
        if let Some(code) = self.modules.get(base) {
            // A tenant module: only what the compiler resolved at deploy time.
            return code.imports.get(name).cloned().ok_or_else(|| Error::new_resolving(base, name));
        }
        // The prelude (and the runtime's own imports): built-in names only.
        if builtin(name).is_some() || self.modules.contains_key(name) {
            return Ok(name.to_owned());
        }
        Err(Error::new_resolving(base, name))
    }
}

impl Loader for DeploymentLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<Module<'js, Declared>> {
        if let Some(source) = builtin(name) {
            let compiled = if self.precompiled { load_compiled(ctx, name) } else { None };
            return compiled.unwrap_or_else(|| Module::declare(ctx.clone(), name, source));
        }
        match self.modules.get(name) {
            Some(code) => Module::declare(ctx.clone(), name, code.js.as_str()),
            None => Err(Error::new_loading(name)),
        }
    }
}

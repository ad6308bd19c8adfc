//! Module resolution and loading inside an isolate: a deployment's modules by canonical path
//! (each import specifier looked up in the map the compiler resolved at deploy time), and the
//! built-in prelude modules. Nothing else can be loaded: no files, no network.

use std::collections::BTreeMap;
use std::sync::Arc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Error, Module, Result};

use crate::deployment::ModuleCode;

/// The built-in modules: name → source.
pub(crate) const BUILTINS: &[(&str, &str)] = &[
    ("@nimbus/nimbus/server", include_str!("../prelude/server.js")),
    ("nimbus/server", "export * from \"@nimbus/nimbus/server\";\n"),
    ("@nimbus/nimbus/values", include_str!("../prelude/values.js")),
    ("nimbus:internal/host", include_str!("../prelude/host.js")),
    ("nimbus:internal/validators", include_str!("../prelude/validators.js")),
    ("nimbus:internal/query", include_str!("../prelude/query.js")),
];

/// The classic script every isolate runs before any module.
pub(crate) const GLOBALS: &str = include_str!("../prelude/globals.js");

/// Resolves and loads the modules of one deployment plus the built-ins.
#[derive(Clone)]
pub(crate) struct DeploymentLoader {
    modules: Arc<BTreeMap<String, ModuleCode>>,
}

impl DeploymentLoader {
    pub(crate) fn new(modules: Arc<BTreeMap<String, ModuleCode>>) -> Self {
        Self { modules }
    }
}

fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, source)| *source)
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
            return Module::declare(ctx.clone(), name, source);
        }
        match self.modules.get(name) {
            Some(code) => Module::declare(ctx.clone(), name, code.js.as_str()),
            None => Err(Error::new_loading(name)),
        }
    }
}

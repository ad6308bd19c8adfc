//! Tenant module sources: path rules, TypeScript type erasure, import analysis and
//! resolution.
//!
//! A deploy is a map of module path → source. [`compile_set`] checks every path,
//! erases TypeScript types, finds every import and resolves it, and returns either one
//! [`CompiledModule`] per module (plain ES modules for QuickJS, with their resolved
//! imports) or every [`DeployError`] found across the whole set, sorted by file, line
//! and column. It does not evaluate anything and does not check sizes (the caller
//! does).
//!
//! # Layout
//!
//! - `lib.rs`: the public types and [`compile_set`], which runs the steps below per
//!   module on a worker thread.
//! - `path.rs`: [`ModulePath`], the path rules.
//! - `depth.rs`: a non-recursive scan that refuses absurdly nested code before swc's
//!   recursive parser sees it.
//! - `parse.rs`: parsing a module with swc as TypeScript (`.ts`, `.mts`) or
//!   JavaScript (`.js`, `.mjs`).
//! - `imports.rs`: the static imports that survive type erasure, and the refused
//!   import forms.
//! - `strip.rs`: type erasure with `swc_ts_fast_strip`, and refusal of syntax that
//!   needs code generation.
//! - `resolve.rs`: specifier → module of the set or built-in.
//! - `location.rs`: byte offsets → line and column.
//!
//! # What is accepted
//!
//! TypeScript is compiled by erasing types only, without type checking (see
//! `strip.rs` for what is refused: `enum`, namespaces with values, parameter
//! properties, decorators, `import x = require()`, `export =`, `<T>value`). An
//! ambient `declare enum` or `declare namespace` is erased, since it emits no code.
//! JavaScript modules are parsed as JavaScript: TypeScript syntax there is a syntax
//! error. Both are parsed as ES modules (strict mode).
//!
//! Type-only imports and re-exports are erased whatever their specifier: `import type`,
//! `export type … from`, `export type * from`, and lists whose every entry is `type`
//! (`import { type A } from "zod"` is erased whole). Every other static import and
//! `export … from` must resolve; dynamic `import()` anywhere is refused, as are import
//! attributes (`with { … }`) and source or defer imports. `import.meta` is allowed: it
//! gives a module no capability.
//!
//! # Resolution
//!
//! A specifier is resolved deterministically:
//! 1. `@nimbus/nimbus/server` and `nimbus/server` are [`Builtin::Server`];
//!    `@nimbus/nimbus/values` is [`Builtin::Values`]. Any other specifier not starting
//!    with `./` or `../` (nor equal to `.` or `..`) is refused.
//! 2. A relative specifier is joined to the importing module's directory segment by
//!    segment: `.` is skipped, `..` removes a segment (going above the root is an
//!    error), an empty segment is an error except a trailing `/`.
//! 3. For the joined path `p`, the first existing module among `p`, `p.ts`, `p.mts`,
//!    `p.js`, `p.mjs`, `p/index.ts`, `p/index.mts`, `p/index.js`, `p/index.mjs` is the
//!    target; a trailing `/` (or a path that joins to the root) tries only the index
//!    files. Paths compare byte for byte (case-sensitively); extensions are never
//!    rewritten (`./x.js` does not find `x.ts`).
//!
//! # Positions
//!
//! Lines are 1-based; a line ends at `\n`, `\r\n` or a lone `\r`. Columns are 1-based
//! and count characters (Unicode scalar values) from the start of the line. Every
//! position is in the source as the client sent it, less a leading byte order mark
//! (which the output drops too). Type erasure keeps the lines and columns of the
//! remaining code.
//!
//! # Hostile input
//!
//! Nothing in this crate panics on any input: sources that nest deeper than an
//! estimate of 1 000 levels are refused before parsing (see `depth.rs`), all work runs
//! on one worker thread with a 256 MiB stack (reserved, only touched as deep
//! code needs it) and a panic inside a dependency becomes a deploy error of its
//! module.

#![deny(missing_docs)]

mod depth;
mod imports;
mod location;
mod parse;
mod path;
mod resolve;
mod strip;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;

pub use path::ModulePath;

use location::{Lines, Problem};
use parse::Language;

/// Stack size of the thread that compiles a deploy.
///
/// swc recurses once per level of nesting and `depth.rs` bounds the nesting; at that
/// bound the deepest shape measured (1 000 nested parentheses) needs between 16 and
/// 32 MiB in a debug build, less in release. 256 MiB leaves room for shapes the
/// estimate undercounts. The stack is reserved, not committed: memory is used only as
/// deep as the code goes.
pub(crate) const WORKER_STACK_BYTES: usize = 256 << 20;

/// One problem of a deploy, located in the module that has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployError {
    /// The module path as the client sent it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters (Unicode scalar values) from the start of the line.
    pub column: u32,
    /// Plain-English description.
    pub message: String,
}

impl fmt::Display for DeployError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for DeployError {}

/// One module of a successful deploy, ready to be loaded as an ES module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledModule {
    /// The module's path.
    pub path: ModulePath,
    /// ES module source with types erased (positions preserved where the stripper allows).
    pub js: String,
    /// Every static import of this module that survives erasure: (specifier exactly as
    /// written, resolved target), in source order, `export … from` included.
    pub imports: Vec<(String, Resolved)>,
}

/// What an import specifier resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resolved {
    /// Another module of the set, by canonical path (e.g. `lib/format.ts`).
    Module(String),
    /// A module the host provides.
    Builtin(Builtin),
}

/// The modules the host provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `@nimbus/nimbus/server` (also `nimbus/server`): the function builders and `v`.
    Server,
    /// `@nimbus/nimbus/values`: `v` alone.
    Values,
}

/// Compiles a whole deploy. The map is path → source as the client sent it.
///
/// Returns the modules in path order, or every error of every module, sorted by file,
/// line, column and message. An invalid path is an error at line 1, column 1, and that
/// module is not compiled (imports of it do not resolve).
///
/// Blocks while it works on its own thread (parsing runs at tens of MiB/s in release
/// builds): call it from a blocking context such as `tokio::task::spawn_blocking`.
pub fn compile_set(modules: &BTreeMap<String, String>) -> Result<Vec<CompiledModule>, Vec<DeployError>> {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("nimbus-modules".to_owned())
            .stack_size(WORKER_STACK_BYTES)
            .spawn_scoped(scope, || compile_all(modules));
        match worker {
            Ok(handle) => {
                handle.join().unwrap_or_else(|_| Err(modules.keys().map(|file| internal_error(file)).collect()))
            }
            // Not on the caller's stack, which may be too small for swc (a tokio worker
            // thread has 2 MiB).
            Err(_) => Err(modules
                .keys()
                .map(|file| DeployError {
                    file: file.clone(),
                    line: 1,
                    column: 1,
                    message: "the server could not start a thread to compile the deploy; try again".to_owned(),
                })
                .collect()),
        }
    })
}

fn compile_all(modules: &BTreeMap<String, String>) -> Result<Vec<CompiledModule>, Vec<DeployError>> {
    let mut errors = Vec::new();
    let mut valid = Vec::new();
    for (file, source) in modules {
        match ModulePath::parse(file) {
            Ok(path) => valid.push((path, source.as_str())),
            Err(reason) => errors.push(DeployError {
                file: file.clone(),
                line: 1,
                column: 1,
                message: format!("invalid module path: {reason}"),
            }),
        }
    }
    errors.extend(same_stem_errors(valid.iter().map(|(path, _)| path)));

    let names: BTreeSet<String> = valid.iter().map(|(path, _)| path.as_str().to_owned()).collect();
    let mut compiled = Vec::with_capacity(valid.len());
    for (path, source) in &valid {
        match catch_unwind(AssertUnwindSafe(|| compile_module(path, source, &names))) {
            Ok(Ok(module)) => compiled.push(module),
            Ok(Err(problems)) => errors.extend(problems.into_iter().map(|problem| DeployError {
                file: path.as_str().to_owned(),
                line: problem.line,
                column: problem.column,
                message: problem.message,
            })),
            Err(_) => errors.push(internal_error(path.as_str())),
        }
    }
    if errors.is_empty() {
        return Ok(compiled);
    }
    errors.sort_by(|a, b| (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message)));
    errors.dedup();
    Err(errors)
}

/// One error per module whose path differs from another's only by extension: their
/// function names (`<path without extension>:<export>`) would clash.
fn same_stem_errors<'a>(paths: impl Iterator<Item = &'a ModulePath>) -> Vec<DeployError> {
    let mut by_stem: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for path in paths {
        by_stem.entry(path.stem()).or_default().push(path.as_str());
    }
    let mut errors = Vec::new();
    for group in by_stem.values().filter(|group| group.len() > 1) {
        let names = group.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(" and ");
        for file in group {
            errors.push(DeployError {
                file: (*file).to_owned(),
                line: 1,
                column: 1,
                message: format!(
                    "modules {names} differ only by extension; function names leave out the extension, so keep one of them"
                ),
            });
        }
    }
    errors
}

fn compile_module(path: &ModulePath, source: &str, names: &BTreeSet<String>) -> Result<CompiledModule, Vec<Problem>> {
    // Editors do not count a byte order mark as a column, and swc's type stripper drops it.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lines = Lines::new(source);
    if let Some(at) = depth::too_deep_at(source) {
        return Err(vec![lines.problem(
            at,
            format!(
                "the code nests too deeply (more than an estimated {} levels of brackets, operators and statements); split it up",
                depth::MAX_NESTING
            ),
        )]);
    }
    let language = if path.is_typescript() { Language::TypeScript } else { Language::JavaScript };
    let module = parse::parse(source, language, &lines)?;
    let analysis = imports::analyze(&module);
    let mut problems: Vec<Problem> = analysis
        .refused
        .iter()
        .chain(&strip::refuse_decorators(&module))
        .map(|(at, message)| lines.problem(*at, message.as_str()))
        .collect();
    drop(module);

    let mut imports = Vec::with_capacity(analysis.imports.len());
    for import in analysis.imports {
        match resolve::resolve(&import.specifier, path, names) {
            Ok(target) => imports.push((import.specifier, target)),
            Err(message) => problems.push(lines.problem(import.offset, message)),
        }
    }
    let js = match language {
        Language::TypeScript => strip::strip(source, &analysis.erase).map_err(|more| problems.extend(more)).ok(),
        Language::JavaScript => Some(source.to_owned()),
    };
    match js {
        Some(js) if problems.is_empty() => Ok(CompiledModule { path: path.clone(), js, imports }),
        _ => Err(problems),
    }
}

fn internal_error(file: &str) -> DeployError {
    DeployError {
        file: file.to_owned(),
        line: 1,
        column: 1,
        message: "internal error while compiling this module; please report it".to_owned(),
    }
}

#[cfg(test)]
mod tests;

//! `nimbus functions deploy|call`: a tenant's functions through the running server's
//! `/api/tenants/{t}/functions` routes (functions.md §2–§3). Both need a live server; the
//! server validates everything (paths, sizes, syntax), this file only gathers and prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use nimbus_core::NimbusError;
use serde_json::{Value, json};

use crate::Failure;
use crate::client::{connect, segment};

/// Module file endings a deploy carries (functions.md §2).
const MODULE_EXTENSIONS: [&str; 4] = [".ts", ".mts", ".js", ".mjs"];
/// Type declaration files: types only, never deployed.
const DECLARATION_SUFFIXES: [&str; 2] = [".d.ts", ".d.mts"];
/// A directory of installed packages, never deployed.
const PACKAGES_DIR: &str = "node_modules";

/// Where the server is and which tenant the command is about.
#[derive(Args)]
pub struct TenantArgs {
    /// The tenant whose functions these are.
    #[arg(long)]
    tenant: String,
    /// Server URL (else the discovery file).
    #[arg(long, env = "NIMBUS_ENDPOINT")]
    url: Option<String>,
    /// Errors as the JSON envelope on stderr (the answer on stdout is always JSON).
    #[arg(long)]
    json: bool,
}

/// The functions subcommands.
#[derive(Subcommand)]
pub enum FunctionsCommand {
    /// Deploy every module under DIR (`.ts .mts .js .mjs`, recursively; `node_modules`,
    /// dot-directories and `.d.ts` files skipped) as the tenant's whole function set.
    Deploy {
        /// The directory whose modules are deployed; module paths are relative to it.
        dir: PathBuf,
        /// Validate and report without activating.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        target: TenantArgs,
    },
    /// Call a public function and print its return value as JSON.
    Call {
        /// `module:export`, e.g. `messages:list`.
        name: String,
        /// The arguments, a JSON object.
        #[arg(long, default_value = "{}", value_parser = parse_args)]
        args: Value,
        #[command(flatten)]
        target: TenantArgs,
    },
}

impl FunctionsCommand {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            FunctionsCommand::Deploy { target, .. } | FunctionsCommand::Call { target, .. } => target.json,
        }
    }
}

/// `--args`: a JSON object (anything else is a usage error, exit 2).
fn parse_args(raw: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("must be a JSON object, e.g. '{\"channel\": \"general\"}'".to_owned()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Runs a functions subcommand.
pub fn run(command: FunctionsCommand) -> Result<(), Failure> {
    match command {
        FunctionsCommand::Deploy { dir, dry_run, target } => {
            let modules = read_modules(&dir)?;
            let live = connect(target.url)?;
            let query = if dry_run { "?dryRun=true" } else { "" };
            let path = format!("/api/tenants/{}/functions{query}", segment(&target.tenant));
            let body = json!({ "modules": modules }).to_string();
            let answer = live.call("PUT", &path, Some(("application/json", &mut body.as_bytes())))?;
            println!("{answer}");
        }
        FunctionsCommand::Call { name, args, target } => {
            let live = connect(target.url)?;
            let path = format!("/api/tenants/{}/functions/call", segment(&target.tenant));
            let body = json!({ "name": name, "args": args }).to_string();
            let answer = live.call("POST", &path, Some(("application/json", &mut body.as_bytes())))?;
            println!("{}", answer["value"]);
        }
    }
    Ok(())
}

/// Every module under `dir`, keyed by its `/`-separated path relative to `dir`.
///
/// An empty result is refused: the server reads `{"modules": {}}` as "remove every function",
/// which a mistyped or unbuilt directory should never do by accident.
fn read_modules(dir: &Path) -> Result<BTreeMap<String, String>, Failure> {
    let mut modules = BTreeMap::new();
    collect(dir, "", &mut modules)?;
    if modules.is_empty() {
        let reason = format!("{} holds no module (.ts, .mts, .js, .mjs)", dir.display());
        return Err(Failure::from(NimbusError::invalid_input("dir", reason)));
    }
    Ok(modules)
}

/// Walks `dir` (whose path relative to the deploy root is `prefix`) into `modules`. Symbolic
/// links to files are followed; links to directories are not, so a link cycle cannot loop.
fn collect(dir: &Path, prefix: &str, modules: &mut BTreeMap<String, String>) -> Result<(), Failure> {
    let unreadable = |path: &Path, e: std::io::Error| {
        Failure::from(NimbusError::invalid_input("dir", format!("cannot read {}: {e}", path.display())))
    };
    for entry in std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))? {
        let entry = entry.map_err(|e| unreadable(dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            let reason = format!("{} is not a UTF-8 name", path.display());
            return Err(Failure::from(NimbusError::invalid_input("dir", reason)));
        };
        let relative = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let kind = entry.file_type().map_err(|e| unreadable(&path, e))?;
        if kind.is_dir() {
            if name != PACKAGES_DIR && !name.starts_with('.') {
                collect(&path, &relative, modules)?;
            }
            continue;
        }
        let is_file = kind.is_file() || (kind.is_symlink() && path.metadata().is_ok_and(|m| m.is_file()));
        if !is_file || !is_module(&name) {
            continue;
        }
        let source = std::fs::read(&path).map_err(|e| unreadable(&path, e))?;
        let source = String::from_utf8(source).map_err(|_| {
            Failure::from(NimbusError::invalid_input("dir", format!("{} is not UTF-8 text", path.display())))
        })?;
        modules.insert(relative, source);
    }
    Ok(())
}

/// Whether a file name is a deployable module.
fn is_module(name: &str) -> bool {
    MODULE_EXTENSIONS.iter().any(|ext| name.ends_with(ext))
        && !DECLARATION_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_follow_the_deploy_rules() {
        let cases = [
            ("messages.ts", true),
            ("a.mts", true),
            ("b.js", true),
            ("c.mjs", true),
            ("types.d.ts", false),
            ("types.d.mts", false),
            ("README.md", false),
            ("data.json", false),
            ("x.tsx", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_module(name), expected, "{name}");
        }
    }

    #[test]
    fn args_must_be_a_json_object() {
        assert_eq!(parse_args(r#"{"a": 1}"#), Ok(json!({ "a": 1 })));
        assert!(parse_args("[1]").is_err());
        assert!(parse_args("{").is_err());
    }
}

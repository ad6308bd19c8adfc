//! Resolution of an import specifier to a module of the deploy or to a built-in.
//!
//! The rules are in the crate documentation, under "Resolution".

use std::collections::BTreeSet;

use crate::path::{EXTENSIONS, ModulePath};
use crate::{Builtin, Resolved};

/// The bare specifiers that can be imported, and what they are.
const BUILTINS: [(&str, Builtin); 3] = [
    ("@nimbus/nimbus/server", Builtin::Server),
    ("@nimbus/nimbus/values", Builtin::Values),
    ("nimbus/server", Builtin::Server),
];

/// Resolves `specifier`, written in module `importer`, against the deploy's module
/// paths. The error is the plain-English message of the deploy error.
pub(crate) fn resolve(specifier: &str, importer: &ModulePath, modules: &BTreeSet<String>) -> Result<Resolved, String> {
    if let Some((_, builtin)) = BUILTINS.iter().find(|(name, _)| *name == specifier) {
        return Ok(Resolved::Builtin(*builtin));
    }
    let is_relative =
        specifier.starts_with("./") || specifier.starts_with("../") || specifier == "." || specifier == "..";
    if !is_relative {
        return Err(format!(
            "cannot import \"{specifier}\": only @nimbus/nimbus/server, @nimbus/nimbus/values and nimbus/server can be imported, besides relative paths (./, ../) to modules of the deploy"
        ));
    }

    let mut segments = importer.directory();
    let parts: Vec<&str> = specifier.split('/').collect();
    let mut directory_only = false;
    for (i, part) in parts.iter().enumerate() {
        match *part {
            "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(format!(
                        "import \"{specifier}\" from \"{importer}\" goes above the root of the deploy"
                    ));
                }
            }
            "" if i + 1 == parts.len() => directory_only = true,
            "" => {
                return Err(format!("import \"{specifier}\" from \"{importer}\" has an empty path segment"));
            }
            name => segments.push(name),
        }
    }
    let joined = segments.join("/");

    let found = candidates(&joined, directory_only || joined.is_empty())
        .into_iter()
        .find(|candidate| modules.contains(candidate));
    match found {
        Some(path) => Ok(Resolved::Module(path)),
        None => Err(format!(
            "cannot resolve import \"{specifier}\" from \"{importer}\"{}",
            hint(specifier, &joined, modules)
        )),
    }
}

/// The paths tried for `joined`, in order: itself, with each extension, then its
/// index files (only the index files for a directory).
fn candidates(joined: &str, directory: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(1 + 2 * EXTENSIONS.len());
    let prefix = if joined.is_empty() { String::new() } else { format!("{joined}/") };
    if !directory {
        out.push(joined.to_owned());
        out.extend(EXTENSIONS.iter().map(|extension| format!("{joined}{extension}")));
    }
    out.extend(EXTENSIONS.iter().map(|extension| format!("{prefix}index{extension}")));
    out
}

/// A suggestion when a TypeScript-style `./x.js` names module `x.ts`: extensions are
/// not rewritten.
fn hint(specifier: &str, joined: &str, modules: &BTreeSet<String>) -> String {
    for (written, actual) in [(".js", ".ts"), (".mjs", ".mts")] {
        if let (Some(stem), Some(specifier_stem)) = (joined.strip_suffix(written), specifier.strip_suffix(written))
            && modules.contains(&format!("{stem}{actual}"))
        {
            return format!(" (did you mean \"{specifier_stem}{actual}\"? extensions are not rewritten)");
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    fn module(path: &str) -> Resolved {
        Resolved::Module(path.to_owned())
    }

    #[test]
    fn resolves_relative_specifiers_in_order() {
        let modules = set(&[
            "a.ts",
            "lib/format.ts",
            "lib/m.mts",
            "lib/j.js",
            "lib/k.mjs",
            "lib/index.ts",
            "dir/index.mjs",
            "both.ts",
            "both/index.ts",
            "x.ts.js",
            "x.ts",
            "nested/deep/c.js",
        ]);
        for (importer, specifier, expected) in [
            ("a.ts", "./lib/format.ts", module("lib/format.ts")),
            ("a.ts", "./lib/format", module("lib/format.ts")),
            ("a.ts", "./lib/m", module("lib/m.mts")),
            ("a.ts", "./lib/j", module("lib/j.js")),
            ("a.ts", "./lib/k", module("lib/k.mjs")),
            ("a.ts", "./lib", module("lib/index.ts")),
            ("a.ts", "./lib/", module("lib/index.ts")),
            ("a.ts", "./dir", module("dir/index.mjs")),
            ("a.ts", "./both", module("both.ts")),
            ("a.ts", "./both/", module("both/index.ts")),
            ("a.ts", "./x.ts", module("x.ts")),
            ("a.ts", "./x", module("x.ts")),
            ("lib/format.ts", "./j", module("lib/j.js")),
            ("lib/format.ts", "../a", module("a.ts")),
            ("lib/format.ts", ".", module("lib/index.ts")),
            ("lib/format.ts", "./", module("lib/index.ts")),
            ("nested/deep/c.js", "../../lib/./format", module("lib/format.ts")),
            ("nested/deep/c.js", "../../nested/deep/c.js", module("nested/deep/c.js")),
            ("lib/format.ts", "./../lib/../a.ts", module("a.ts")),
            ("a.ts", "@nimbus/nimbus/server", Resolved::Builtin(Builtin::Server)),
            ("a.ts", "nimbus/server", Resolved::Builtin(Builtin::Server)),
            ("a.ts", "@nimbus/nimbus/values", Resolved::Builtin(Builtin::Values)),
        ] {
            let importer_path = ModulePath::parse(importer).expect("valid importer");
            assert_eq!(resolve(specifier, &importer_path, &modules), Ok(expected), "{specifier} from {importer}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_resolved() {
        let modules = set(&["a.ts", "lib/format.ts", "index.ts"]);
        for (importer, specifier, message) in [
            ("a.ts", "./missing", "cannot resolve import \"./missing\" from \"a.ts\""),
            ("a.ts", "./lib/format.js", "did you mean \"./lib/format.ts\"?"),
            ("a.ts", "./lib/format.ts/", "cannot resolve"),
            ("a.ts", "./LIB/format", "cannot resolve"),
            ("a.ts", "./lib//format", "empty path segment"),
            ("a.ts", "../a", "goes above the root"),
            ("lib/format.ts", "../../a", "goes above the root"),
            ("a.ts", "..", "goes above the root"),
            ("a.ts", "zod", "only @nimbus/nimbus/server, @nimbus/nimbus/values and nimbus/server can be imported"),
            ("a.ts", "@nimbus/nimbus", "cannot import"),
            ("a.ts", "nimbus/values", "cannot import"),
            ("a.ts", "/a.ts", "cannot import"),
            ("a.ts", "node:fs", "cannot import"),
            ("a.ts", "", "cannot import"),
        ] {
            let importer_path = ModulePath::parse(importer).expect("valid importer");
            let error = resolve(specifier, &importer_path, &modules).expect_err(specifier);
            assert!(error.contains(message), "{specifier:?}: {error:?} should contain {message:?}");
        }
        let root = ModulePath::parse("a.ts").expect("valid");
        assert_eq!(resolve(".", &root, &modules), Ok(module("index.ts")));
    }
}

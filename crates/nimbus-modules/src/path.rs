//! Module path rules: what a tenant may name a module.

use std::fmt;

/// The extensions a module path may end in, TypeScript ones first.
///
/// Resolution ([`crate::resolve`]) tries them in this order.
pub(crate) const EXTENSIONS: [&str; 4] = [".ts", ".mts", ".js", ".mjs"];

/// A validated module path.
///
/// Relative, `/`-separated, every segment non-empty, not `.` or `..`, made of
/// `[A-Za-z0-9_.-]`, and ending in `.ts`, `.mts`, `.js` or `.mjs` with at least one
/// character before the extension (`lib/format.ts`, `admin/users.mjs`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModulePath(String);

impl ModulePath {
    /// Validates `path`; the error is a plain-English reason, e.g. "segment \"..\" is not
    /// allowed".
    pub fn parse(path: &str) -> Result<ModulePath, String> {
        if path.is_empty() {
            return Err("the path is empty".to_owned());
        }
        if path.starts_with('/') {
            return Err("the path must be relative (no leading \"/\")".to_owned());
        }
        for segment in path.split('/') {
            match segment {
                "" => return Err("the path has an empty segment (\"//\" or a trailing \"/\")".to_owned()),
                "." | ".." => return Err(format!("segment \"{segment}\" is not allowed")),
                _ => {}
            }
            if let Some(bad) = segment.chars().find(|c| !is_segment_char(*c)) {
                return Err(format!("character {bad:?} is not allowed; segments use only A-Z, a-z, 0-9, _, . and -"));
            }
        }
        let Some(extension) = extension_of(path) else {
            return Err("the path must end in .ts, .mts, .js or .mjs".to_owned());
        };
        let file_name = path.rsplit('/').next().unwrap_or(path);
        if file_name.len() == extension.len() {
            return Err(format!("the file name needs a name before \"{extension}\""));
        }
        Ok(ModulePath(path.to_owned()))
    }

    /// The path as given, e.g. `admin/users.ts`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path without its extension, e.g. `admin/users`: the prefix of the module's
    /// function names.
    pub fn stem(&self) -> &str {
        match extension_of(&self.0) {
            Some(extension) => &self.0[..self.0.len() - extension.len()],
            None => &self.0,
        }
    }

    /// Whether the module is TypeScript (`.ts` or `.mts`) rather than JavaScript.
    pub fn is_typescript(&self) -> bool {
        matches!(extension_of(&self.0), Some(".ts" | ".mts"))
    }

    /// The directory segments containing the module (empty at the root).
    pub(crate) fn directory(&self) -> Vec<&str> {
        let mut segments: Vec<&str> = self.0.split('/').collect();
        segments.pop();
        segments
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn extension_of(path: &str) -> Option<&'static str> {
    EXTENSIONS.into_iter().find(|extension| path.ends_with(extension))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_paths() {
        for (path, stem, typescript) in [
            ("a.ts", "a", true),
            ("a.mts", "a", true),
            ("a.js", "a", false),
            ("a.mjs", "a", false),
            ("lib/format.ts", "lib/format", true),
            ("admin/users.mjs", "admin/users", false),
            ("x-y_z/V1.2/a.b.ts", "x-y_z/V1.2/a.b", true),
            (".hidden.ts", ".hidden", true),
            ("a.ts.js", "a.ts", false),
        ] {
            let parsed = ModulePath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(parsed.as_str(), path);
            assert_eq!(parsed.stem(), stem, "{path}");
            assert_eq!(parsed.is_typescript(), typescript, "{path}");
        }
    }

    #[test]
    fn refuses_invalid_paths() {
        for (path, reason) in [
            ("", "empty"),
            ("/a.ts", "relative"),
            ("a//b.ts", "empty segment"),
            ("a/", "empty segment"),
            ("./a.ts", "\".\""),
            ("a/./b.ts", "\".\""),
            ("../a.ts", "\"..\""),
            ("a/../b.ts", "\"..\""),
            ("a b.ts", "' '"),
            ("a\\b.ts", "'\\\\'"),
            ("é.ts", "'é'"),
            ("a:b.ts", "':'"),
            ("a\0.ts", "'\\0'"),
            ("a", "must end in"),
            ("a.tsx", "must end in"),
            ("a.d", "must end in"),
            ("a.json", "must end in"),
            ("a.TS", "must end in"),
            (".ts", "name before"),
            ("lib/.mjs", "name before"),
        ] {
            let error = ModulePath::parse(path).expect_err(path);
            assert!(error.contains(reason), "{path:?}: {error:?} should mention {reason}");
        }
    }

    #[test]
    fn directory_is_every_segment_but_the_last() {
        let path = ModulePath::parse("a/b/c.ts").expect("valid");
        assert_eq!(path.directory(), ["a", "b"]);
        assert!(ModulePath::parse("c.ts").expect("valid").directory().is_empty());
    }
}

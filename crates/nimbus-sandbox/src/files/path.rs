//! Request path validation and lexical normalization.

use nimbus_core::limits::SESSION_FILE_MAX_PATH_BYTES;

use super::FileError;

/// Top-level directories that are never served, whatever the path says.
const REFUSED_TOP: [&str; 3] = ["proc", "sys", "dev"];

/// A validated request path: absolute, normalized, free of `.`, `..` and empty components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NormPath {
    /// The components; empty for `/`.
    pub comps: Vec<String>,
}

impl NormPath {
    /// The path as text (`/` or `/a/b`).
    pub fn text(&self) -> String {
        if self.comps.is_empty() { "/".to_owned() } else { self.comps.iter().map(|c| format!("/{c}")).collect() }
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.comps.is_empty()
    }

    /// The last component (`/` for the root).
    pub fn name(&self) -> String {
        self.comps.last().cloned().unwrap_or_else(|| "/".to_owned())
    }

    /// The first `n` components as an absolute path.
    pub fn prefix(&self, n: usize) -> NormPath {
        NormPath { comps: self.comps[..n].to_vec() }
    }

    /// The path of a child entry.
    pub fn child(&self, name: &str) -> String {
        if self.comps.is_empty() { format!("/{name}") } else { format!("{}/{name}", self.text()) }
    }
}

/// Validates and normalizes a request path: absolute, at most the path limit, no NUL; `.` and
/// empty components drop, `..` removes the previous component (and stays at `/` at the top).
/// `/proc`, `/sys` and `/dev` (and below) are refused.
pub(super) fn normalize(path: &str) -> Result<NormPath, FileError> {
    let invalid = |reason: &str| FileError::InvalidPath { path: shown(path), reason: reason.to_owned() };
    if path.len() > SESSION_FILE_MAX_PATH_BYTES {
        return Err(invalid(&format!("is longer than {SESSION_FILE_MAX_PATH_BYTES} bytes")));
    }
    if path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if !path.starts_with('/') {
        return Err(invalid("must be absolute"));
    }
    let mut comps: Vec<String> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                comps.pop();
            }
            name => comps.push(name.to_owned()),
        }
    }
    if let Some(first) = comps.first()
        && REFUSED_TOP.contains(&first.as_str())
    {
        return Err(invalid("/proc, /sys and /dev are not accessible"));
    }
    Ok(NormPath { comps })
}

/// A path for an error message: overlong paths are cut (at a character boundary).
pub(super) fn shown(path: &str) -> String {
    const SHOWN: usize = 256;
    if path.len() <= SHOWN {
        return path.replace('\0', "\\0");
    }
    let mut end = SHOWN;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", path[..end].replace('\0', "\\0"))
}

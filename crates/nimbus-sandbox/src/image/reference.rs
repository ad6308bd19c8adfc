//! Image references and their normalized form (`python:3.12` → `docker.io/library/python:3.12`).

use std::fmt;

/// A normalized image reference: registry, repository, and a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host (with port), e.g. `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/busybox`.
    pub repository: String,
    /// Tag (`latest` when none was given and there is no digest).
    pub tag: Option<String>,
    /// Manifest digest, `sha256:<hex>`.
    pub digest: Option<String>,
}

/// Why a reference cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference '{reference}': {reason}")]
pub struct ReferenceError {
    /// The reference as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn valid_component(part: &str) -> bool {
    !part.is_empty()
        && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && part.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
}

impl Reference {
    /// Parses and normalizes a reference: a first component with a `.` or `:` or equal to
    /// `localhost` is a registry, else the registry is `docker.io` (with `library/` for
    /// single-component names); a missing tag is `latest` unless a digest is given.
    pub fn parse(raw: &str) -> Result<Self, ReferenceError> {
        let error = |reason| ReferenceError { reference: raw.to_owned(), reason };
        if raw.is_empty() || raw.len() > 512 || raw.trim() != raw {
            return Err(error("must be 1-512 characters without surrounding whitespace"));
        }
        let (name, digest) = match raw.split_once('@') {
            Some((name, digest)) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(|| error("only sha256 digests are supported"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                    return Err(error("a digest is sha256: followed by 64 lowercase hex digits"));
                }
                (name, Some(digest.to_owned()))
            }
            None => (raw, None),
        };
        let (name, tag) = match name.rsplit_once(':') {
            Some((before, tag)) if !tag.contains('/') => (before, Some(tag.to_owned())),
            _ => (name, None),
        };
        if let Some(tag) = &tag
            && (tag.is_empty()
                || tag.len() > 128
                || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        {
            return Err(error("a tag is 1-128 characters of [A-Za-z0-9._-]"));
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let registry = if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
            parts.remove(0).to_owned()
        } else {
            "docker.io".to_owned()
        };
        if registry == "docker.io" && parts.len() == 1 {
            parts.insert(0, "library");
        }
        if !parts.iter().all(|p| valid_component(p)) {
            return Err(error("repository components are lowercase [a-z0-9._-]"));
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_owned()) } else { tag };
        Ok(Self { registry, repository: parts.join("/"), tag, digest })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalize_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("python:3.12", "docker.io/library/python:3.12"),
            ("user/app", "docker.io/user/app:latest"),
            ("127.0.0.1:5000/busybox:1", "127.0.0.1:5000/busybox:1"),
            ("localhost/x/y", "localhost/x/y:latest"),
            ("ghcr.io/org/tool:v1.2-rc", "ghcr.io/org/tool:v1.2-rc"),
        ];
        for (raw, normalized) in cases {
            assert_eq!(Reference::parse(raw).map(|r| r.to_string()).as_deref(), Ok(normalized), "{raw}");
        }
        let digest = format!("busybox@sha256:{}", "a".repeat(64));
        let parsed = Reference::parse(&digest).expect("digest reference");
        assert_eq!(parsed.tag, None);
        assert_eq!(parsed.to_string(), format!("docker.io/library/{digest}"));
    }

    #[test]
    fn bad_references_are_refused() {
        for raw in ["", " busybox", "Busybox", "busybox:", "busybox@sha256:abc", "a//b", "busybox@md5:00", "x:y z"] {
            assert!(Reference::parse(raw).is_err(), "{raw:?}");
        }
    }
}

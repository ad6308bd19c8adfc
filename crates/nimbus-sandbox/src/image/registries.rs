//! The operator's registry credentials, `<data-dir>/registries.json`, and which registries may be
//! spoken to over plain HTTP (loopback ones only).
//!
//! ```json
//! {"registries": {"ghcr.io": {"username": "bot", "password": "…"}, "127.0.0.1:5000": {"token": "…"}}}
//! ```
//! Callers never pass credentials: a pull uses the entry for its reference's registry, else it
//! is anonymous (the registry's bearer-token exchange still happens).

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use super::ImageError;

/// The file name, in the data directory.
pub(crate) const FILE_NAME: &str = "registries.json";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    registries: HashMap<String, Entry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Basic(BasicEntry),
    Token(TokenEntry),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicEntry {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
}

/// Credentials by registry host (`host[:port]`).
#[derive(Default, Clone)]
pub(crate) struct Credentials {
    by_registry: HashMap<String, RegistryAuth>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets: only which registries have credentials.
        f.debug_struct("Credentials").field("registries", &self.by_registry.keys().collect::<Vec<_>>()).finish()
    }
}

impl Credentials {
    /// Reads `<data_dir>/registries.json`; no file means no credentials.
    pub(crate) fn load(data_dir: &Path) -> Result<Self, ImageError> {
        let path = data_dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => Self::parse(&bytes)
                .map_err(|reason| ImageError::Credentials { path: path.display().to_string(), reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ImageError::Credentials { path: path.display().to_string(), reason: e.to_string() }),
        }
    }

    /// Parses the file's contents.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let file: File = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "expected {{\"registries\": {{\"<host[:port]>\": {{\"username\": \"…\", \"password\": \"…\"}} \
                 or {{\"token\": \"…\"}}}}}}: {e}"
            )
        })?;
        let mut by_registry = HashMap::new();
        for (host, entry) in file.registries {
            if host.is_empty() || host.contains(['/', ' ', '@']) || host.contains("://") {
                return Err(format!("'{host}' is not a registry host[:port] (no scheme, no path)"));
            }
            let auth = match entry {
                Entry::Basic(BasicEntry { username, password }) if !username.is_empty() => {
                    RegistryAuth::Basic(username, password)
                }
                Entry::Token(TokenEntry { token }) if !token.is_empty() => RegistryAuth::Bearer(token),
                _ => return Err(format!("the entry for '{host}' has an empty username or token")),
            };
            by_registry.insert(host.to_ascii_lowercase(), auth);
        }
        Ok(Self { by_registry })
    }

    /// The credentials for a registry (Docker Hub's aliases included), else anonymous.
    pub(crate) fn for_registry(&self, registry: &str) -> RegistryAuth {
        let registry = registry.to_ascii_lowercase();
        let aliases: &[&str] = if registry == "docker.io" {
            &["docker.io", "registry-1.docker.io", "index.docker.io"]
        } else {
            &[registry.as_str()]
        };
        aliases.iter().find_map(|name| self.by_registry.get(*name).cloned()).unwrap_or(RegistryAuth::Anonymous)
    }
}

/// Whether a registry host (`host[:port]`) is on this machine's loopback: `localhost`,
/// `127.0.0.0/8` or `[::1]`. Only those may be spoken to over plain HTTP.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || port_ok(after) => inside,
            _ => return false,
        }
    } else {
        match registry.rsplit_once(':') {
            Some((host, port)) if port_ok(&format!(":{port}")) => host,
            Some(_) => return false,
            None => registry,
        }
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// `:<1-65535>`.
fn port_ok(suffix: &str) -> bool {
    suffix.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_recognised() {
        for yes in
            ["localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000", "127.8.9.10:80", "[::1]", "[::1]:5000"]
        {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "docker.io",
            "ghcr.io:443",
            "10.0.0.1:5000",
            "128.0.0.1",
            "localhost.example.com",
            "127.0.0.1.nip.io",
            "[::2]:5000",
            "[::1]x",
            "127.0.0.1:notaport",
            "::1",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn registries_json_maps_basic_and_token_entries() {
        let good = br#"{"registries": {
            "ghcr.io": {"username": "bot", "password": "pw"},
            "127.0.0.1:5000": {"token": "t0k"},
            "registry-1.docker.io": {"username": "hub", "password": "x"}}}"#;
        let credentials = Credentials::parse(good).expect("valid file");
        assert_eq!(credentials.for_registry("ghcr.io"), RegistryAuth::Basic("bot".into(), "pw".into()));
        assert_eq!(credentials.for_registry("127.0.0.1:5000"), RegistryAuth::Bearer("t0k".into()));
        assert_eq!(credentials.for_registry("docker.io"), RegistryAuth::Basic("hub".into(), "x".into()));
        assert_eq!(credentials.for_registry("quay.io"), RegistryAuth::Anonymous);
        assert!(!format!("{credentials:?}").contains("pw"), "Debug never shows secrets");
        assert!(Credentials::parse(br#"{"registries": {}}"#).is_ok());
    }

    #[test]
    fn bad_registries_json_is_refused() {
        for bad in [
            &b"not json"[..],
            br#"{}"#,
            br#"{"registries": [], "extra": 1}"#,
            br#"{"registries": {"ghcr.io": {"username": "bot"}}}"#,
            br#"{"registries": {"ghcr.io": {"password": "x"}}}"#,
            br#"{"registries": {"ghcr.io": {"token": "t", "username": "u", "password": "p"}}}"#,
            br#"{"registries": {"ghcr.io": {"token": ""}}}"#,
            br#"{"registries": {"https://ghcr.io": {"token": "t"}}}"#,
            br#"{"registries": {"ghcr.io": {"auth": "base64"}}}"#,
        ] {
            assert!(Credentials::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let data = tempfile::tempdir().expect("tempdir");
        std::fs::write(data.path().join(FILE_NAME), "{").expect("write");
        let error = super::super::ImageStore::open(data.path()).err().expect("open refuses a bad file");
        assert!(error.to_string().contains("registries.json"), "{error}");
    }
}

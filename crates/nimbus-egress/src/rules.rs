//! A sandbox's egress rules (`spec.network.egress`) and the operator's ceiling
//! (`--egress-policy`): their validation, and the matching the proxy does on every connection.

use std::net::IpAddr;
use std::path::Path;

use nimbus_core::limits::{
    EGRESS_CREDENTIAL_PREFIX_MAX_CHARS, EGRESS_MAX_ALLOW_RULES, EGRESS_MAX_CREDENTIAL_RULES, EGRESS_MAX_RULE_PORTS,
};
use nimbus_core::{ErrorCode, NimbusError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The longest DNS name.
const MAX_HOST_CHARS: usize = 253;

/// Ports an allow rule covers when it names none.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// Headers a credential rule may not set: they frame or route the message, or belong to the
/// proxy hop.
const FORBIDDEN_HEADERS: &[&str] =
    &["host", "connection", "content-length", "transfer-encoding", "upgrade", "te", "trailer", "keep-alive", "expect"];

/// `spec.network`: everything about a sandbox's network that its spec says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSpec {
    /// `egress`.
    #[serde(default)]
    pub egress: EgressRules,
}

/// `spec.network.egress`: which hosts the sandbox may reach through the proxy, and which
/// credentials the proxy adds on the way. Empty means deny-all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressRules {
    /// `allow`.
    #[serde(default)]
    pub allow: Vec<AllowRule>,
    /// `credentials`.
    #[serde(default)]
    pub credentials: Vec<CredentialRule>,
}

/// One `allow` rule: a host pattern and its ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowRule {
    /// An exact name, a `*.` suffix wildcard, or an IP literal.
    pub host: String,
    /// Ports (default 80 and 443; filled in by validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
}

/// One `credentials` rule: the header the proxy adds to requests to `host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialRule {
    /// A host pattern, as in `allow`.
    pub host: String,
    /// The header's name.
    pub header: String,
    /// The tenant secret whose value the header carries.
    pub secret: String,
    /// Text put before the value (`"Bearer "`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl NetworkSpec {
    /// Validates and normalizes the spec (`field` is where it sits in the request, for errors).
    pub fn validate(self, field: &str) -> Result<Self, NimbusError> {
        Ok(Self { egress: self.egress.validate(&format!("{field}.egress"))? })
    }
}

impl EgressRules {
    /// Validates and normalizes the rules: hosts lower-cased without a trailing dot, IP
    /// literals in their canonical form, ports filled in. `field` is the rules' place in the
    /// request (`spec.network.egress`).
    pub fn validate(self, field: &str) -> Result<Self, NimbusError> {
        if self.allow.len() > EGRESS_MAX_ALLOW_RULES {
            return Err(too_many(&format!("{field}.allow"), EGRESS_MAX_ALLOW_RULES));
        }
        if self.credentials.len() > EGRESS_MAX_CREDENTIAL_RULES {
            return Err(too_many(&format!("{field}.credentials"), EGRESS_MAX_CREDENTIAL_RULES));
        }
        let mut allow = Vec::with_capacity(self.allow.len());
        for (i, rule) in self.allow.into_iter().enumerate() {
            let at = format!("{field}.allow[{i}]");
            let host = normalize_pattern(&rule.host)
                .map_err(|reason| NimbusError::invalid_input(format!("{at}.host"), reason))?;
            let ports = match rule.ports {
                None => DEFAULT_PORTS.to_vec(),
                Some(ports) => {
                    if ports.is_empty() || ports.len() > EGRESS_MAX_RULE_PORTS {
                        return Err(NimbusError::invalid_input(
                            format!("{at}.ports"),
                            format!("must list 1 to {EGRESS_MAX_RULE_PORTS} ports (omit it for 80 and 443)"),
                        ));
                    }
                    if ports.contains(&0) {
                        return Err(NimbusError::invalid_input(format!("{at}.ports"), "ports are 1 to 65535"));
                    }
                    let mut ports = ports;
                    ports.sort_unstable();
                    ports.dedup();
                    ports
                }
            };
            allow.push(AllowRule { host, ports: Some(ports) });
        }
        let mut credentials = Vec::with_capacity(self.credentials.len());
        for (i, rule) in self.credentials.into_iter().enumerate() {
            let at = format!("{field}.credentials[{i}]");
            let host = normalize_pattern(&rule.host)
                .map_err(|reason| NimbusError::invalid_input(format!("{at}.host"), reason))?;
            if !allow.iter().any(|a| pattern_covers(&a.host, &host)) {
                return Err(NimbusError::invalid_input(
                    format!("{at}.host"),
                    format!("`{host}` is not allowed by any rule of {field}.allow: allow it too"),
                ));
            }
            let header = rule.header.to_ascii_lowercase();
            let valid_name = hyper::header::HeaderName::from_bytes(header.as_bytes()).is_ok();
            if !valid_name || FORBIDDEN_HEADERS.contains(&header.as_str()) || header.starts_with("proxy-") {
                return Err(NimbusError::invalid_input(
                    format!("{at}.header"),
                    format!("`{}` is not a header a credential may set", rule.header),
                ));
            }
            if rule.secret.is_empty() {
                return Err(NimbusError::invalid_input(format!("{at}.secret"), "names no secret"));
            }
            if let Some(prefix) = &rule.prefix
                && (prefix.chars().count() > EGRESS_CREDENTIAL_PREFIX_MAX_CHARS || prefix.chars().any(char::is_control))
            {
                return Err(NimbusError::invalid_input(
                    format!("{at}.prefix"),
                    format!(
                        "must be at most {EGRESS_CREDENTIAL_PREFIX_MAX_CHARS} characters without control characters"
                    ),
                ));
            }
            credentials.push(CredentialRule { host, header: rule.header, secret: rule.secret, prefix: rule.prefix });
        }
        Ok(Self { allow, credentials })
    }

    /// The first allow rule covering `host:port` (`host` as the proxy normalized it).
    pub fn allowing(&self, host: &str, port: u16) -> Option<&AllowRule> {
        self.allow.iter().find(|rule| pattern_matches(&rule.host, host) && rule.ports().contains(&port))
    }

    /// The credential rule for `host`, if any.
    pub fn credential(&self, host: &str) -> Option<&CredentialRule> {
        self.credentials.iter().find(|rule| pattern_matches(&rule.host, host))
    }

    /// The names of the secrets the credential rules use.
    pub fn secrets(&self) -> impl Iterator<Item = (usize, &str)> {
        self.credentials.iter().enumerate().map(|(i, rule)| (i, rule.secret.as_str()))
    }
}

impl AllowRule {
    /// The rule's ports (the defaults when it names none).
    pub fn ports(&self) -> &[u16] {
        self.ports.as_deref().unwrap_or(&DEFAULT_PORTS)
    }
}

fn too_many(field: &str, limit: usize) -> NimbusError {
    let mut err = NimbusError::cap_exceeded("egressRules", u64::try_from(limit).unwrap_or(u64::MAX) + 1, limit as u64);
    if let Some(detail) = err.detail.as_mut() {
        detail["field"] = field.into();
    }
    err.message = format!("{field} holds more than {limit} rules");
    err
}

/// Normalizes a name the proxy was asked for (`CONNECT` target, URL host): lower case, no
/// trailing dot, IP literals canonical (brackets dropped). `None` when it is no valid host.
pub fn normalize_host(raw: &str) -> Option<String> {
    let trimmed = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(raw);
    if let Ok(ip) = trimmed.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed).to_ascii_lowercase();
    valid_dns_name(&name).then_some(name)
}

/// Normalizes a rule's host pattern, or says what is wrong with it.
fn normalize_pattern(raw: &str) -> Result<String, String> {
    if let Some(suffix) = raw.strip_prefix("*.") {
        return match normalize_host(suffix) {
            Some(name) if name.parse::<IpAddr>().is_err() && name.contains('.') => Ok(format!("*.{name}")),
            _ => Err(format!("`{raw}`: a wildcard is `*.` followed by a DNS name with at least two labels")),
        };
    }
    normalize_host(raw).ok_or_else(|| format!("`{raw}` is not a DNS name, a `*.` wildcard or an IP address"))
}

fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HOST_CHARS
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether a normalized pattern matches a normalized host.
fn pattern_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
        None => pattern == host,
    }
}

/// Whether every host `inner` matches is matched by `outer` (both normalized patterns).
fn pattern_covers(outer: &str, inner: &str) -> bool {
    match (outer.strip_prefix('*'), inner.strip_prefix('*')) {
        (Some(outer_suffix), Some(inner_suffix)) => inner_suffix.ends_with(outer_suffix),
        (None, Some(_)) => false,
        (_, None) => pattern_matches(outer, inner),
    }
}

/// The operator's ceiling (`--egress-policy FILE`): the most any sandbox may be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceiling {
    allow: Vec<AllowRule>,
}

/// The policy file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    allow: Vec<AllowRule>,
}

impl Ceiling {
    /// Reads and validates a policy file; the error is a sentence for the operator.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read the egress policy {}: {e}", path.display()))?;
        let file: PolicyFile = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the egress policy {} is not valid: {e}", path.display()))?;
        let rules = EgressRules { allow: file.allow, credentials: Vec::new() }
            .validate("allow")
            .map_err(|e| format!("the egress policy {} is not valid: {}", path.display(), e.message))?;
        Ok(Self { allow: rules.allow })
    }

    /// Checks that every allow rule (normalized) falls under the ceiling: 403
    /// `sandbox.egress_beyond_policy` naming the first host or port that does not.
    pub fn check(&self, rules: &EgressRules, field: &str) -> Result<(), NimbusError> {
        for (i, rule) in rules.allow.iter().enumerate() {
            let covering: Vec<&AllowRule> = self.allow.iter().filter(|c| pattern_covers(&c.host, &rule.host)).collect();
            let beyond = if covering.is_empty() {
                Some(None)
            } else {
                rule.ports().iter().find(|port| !covering.iter().any(|c| c.ports().contains(port))).map(|p| Some(*p))
            };
            if let Some(port) = beyond {
                let what = match port {
                    Some(port) => format!("port {port} of `{}`", rule.host),
                    None => format!("`{}`", rule.host),
                };
                return Err(NimbusError::new(
                    ErrorCode::SandboxEgressBeyondPolicy,
                    format!("the operator's egress policy does not allow {what}"),
                    Some(json!({ "field": format!("{field}.allow[{i}]"), "host": rule.host, "port": port })),
                ));
            }
        }
        Ok(())
    }

    /// Whether the ceiling lets any sandbox reach `host:port` (checked again per connection).
    pub fn permits(&self, host: &str, port: u16) -> bool {
        self.allow.iter().any(|rule| pattern_matches(&rule.host, host) && rule.ports().contains(&port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(value: serde_json::Value) -> Result<EgressRules, NimbusError> {
        serde_json::from_value::<EgressRules>(value).expect("shape").validate("spec.network.egress")
    }

    fn field(err: &NimbusError) -> String {
        err.detail.as_ref().and_then(|d| d["field"].as_str()).unwrap_or_default().to_owned()
    }

    #[test]
    fn rules_normalize_and_match() {
        let valid = rules(json!({ "allow": [
            { "host": "PyPI.org.", "ports": [443, 443] },
            { "host": "*.githubusercontent.com" },
            { "host": "[::1]", "ports": [8080] },
        ] }))
        .expect("valid");
        assert_eq!(valid.allow[0].host, "pypi.org");
        assert_eq!(valid.allow[0].ports, Some(vec![443]));
        assert_eq!(valid.allow[1].ports(), &[80, 443]);
        assert_eq!(valid.allow[2].host, "::1");
        assert!(valid.allowing("pypi.org", 443).is_some());
        assert!(valid.allowing("pypi.org", 80).is_none(), "only the rule's ports");
        assert!(valid.allowing("raw.githubusercontent.com", 443).is_some());
        assert!(valid.allowing("a.b.githubusercontent.com", 80).is_some());
        assert!(valid.allowing("githubusercontent.com", 443).is_none(), "a wildcard needs a label before it");
        assert!(valid.allowing("evilgithubusercontent.com", 443).is_none(), "suffixes match on label edges");
        assert!(valid.allowing(&normalize_host("[::1]").expect("ip"), 8080).is_some());
        assert!(valid.allowing("example.com", 443).is_none());
    }

    #[test]
    fn bad_rules_name_their_field() {
        for (value, expected) in [
            (json!({ "allow": [{ "host": "exa mple.com" }] }), "spec.network.egress.allow[0].host"),
            (json!({ "allow": [{ "host": "*.com" }] }), "spec.network.egress.allow[0].host"),
            (json!({ "allow": [{ "host": "a.com", "ports": [] }] }), "spec.network.egress.allow[0].ports"),
            (json!({ "allow": [{ "host": "a.com", "ports": [0] }] }), "spec.network.egress.allow[0].ports"),
            (
                json!({ "allow": [{ "host": "a.com" }], "credentials": [{ "host": "b.com", "header": "X", "secret": "s" }] }),
                "spec.network.egress.credentials[0].host",
            ),
            (
                json!({ "allow": [{ "host": "a.com" }], "credentials": [{ "host": "a.com", "header": "Host", "secret": "s" }] }),
                "spec.network.egress.credentials[0].header",
            ),
            (
                json!({ "allow": [{ "host": "a.com" }], "credentials": [{ "host": "a.com", "header": "Proxy-Authorization", "secret": "s" }] }),
                "spec.network.egress.credentials[0].header",
            ),
            (
                json!({ "allow": [{ "host": "*.a.com" }], "credentials": [{ "host": "x.a.com", "header": "Authorization", "secret": "s", "prefix": "a\r\nb" }] }),
                "spec.network.egress.credentials[0].prefix",
            ),
        ] {
            let err = rules(value).expect_err(expected);
            assert_eq!(field(&err), expected, "{err:?}");
        }
        let many: Vec<_> = (0..=EGRESS_MAX_ALLOW_RULES).map(|i| json!({ "host": format!("h{i}.com") })).collect();
        let err = rules(json!({ "allow": many })).expect_err("too many");
        assert_eq!(err.code.as_str(), "op.cap_exceeded");
    }

    #[test]
    fn the_ceiling_covers_names_wildcards_and_ports() {
        let ceiling = Ceiling {
            allow: rules(json!({ "allow": [{ "host": "*.example.com", "ports": [443] }, { "host": "pypi.org" }] }))
                .expect("ceiling")
                .allow,
        };
        let ok = rules(json!({ "allow": [
            { "host": "a.example.com", "ports": [443] }, { "host": "*.b.example.com", "ports": [443] }, { "host": "pypi.org", "ports": [80] },
        ] }))
        .expect("rules");
        ceiling.check(&ok, "spec.network.egress").expect("covered");
        for (value, host, port) in [
            (json!({ "allow": [{ "host": "example.com", "ports": [443] }] }), "example.com", None::<u16>),
            (json!({ "allow": [{ "host": "a.example.com" }] }), "a.example.com", Some(80)),
            (json!({ "allow": [{ "host": "*.pypi.org", "ports": [443] }] }), "*.pypi.org", None),
        ] {
            let err = ceiling.check(&rules(value).expect("rules"), "spec.network.egress").expect_err(host);
            assert_eq!(err.code.as_str(), "sandbox.egress_beyond_policy");
            let detail = err.detail.expect("detail");
            assert_eq!(detail["host"], host);
            assert_eq!(detail["port"].as_u64(), port.map(u64::from));
            assert_eq!(detail["field"], "spec.network.egress.allow[0]");
        }
        assert!(ceiling.permits("x.example.com", 443));
        assert!(!ceiling.permits("x.example.com", 80));
    }

    #[test]
    fn policy_files_are_validated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.json");
        std::fs::write(&path, r#"{"allow": [{"host": "pypi.org", "ports": [443]}]}"#).expect("write");
        let ceiling = Ceiling::load(&path).expect("load");
        assert!(ceiling.permits("pypi.org", 443));
        std::fs::write(&path, r#"{"allow": [{"host": "bad host"}]}"#).expect("write");
        assert!(Ceiling::load(&path).expect_err("bad").contains("not valid"));
        assert!(Ceiling::load(&dir.path().join("missing")).expect_err("missing").contains("cannot read"));
    }
}

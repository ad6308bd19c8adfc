//! [`StorageState`]: a context's cookies and `localStorage`, in Playwright's `storageState`
//! shape (`{cookies, origins}`), its validation, and its conversion from and to DevTools'
//! cookie objects.

use std::collections::HashSet;

use nimbus_core::NimbusError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest cookie (name and value together) a browser keeps, in bytes (RFC 6265bis; Chromium
/// drops larger ones).
const COOKIE_MAX_BYTES: usize = 4096;

/// A browser context's storage, as Playwright's `browserContext.storageState()` writes it:
/// restoring one into a fresh context gives it the same cookies and `localStorage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageState {
    /// Cookies, as DevTools' `Network.CookieParam`s (the export writes Playwright's fields).
    #[serde(default)]
    pub cookies: Vec<Cookie>,
    /// `localStorage` per origin.
    #[serde(default)]
    pub origins: Vec<OriginStorage>,
}

/// One cookie (`Network.CookieParam`): either `url` or `domain` places it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cookie {
    /// The cookie's name.
    pub name: String,
    /// The cookie's value.
    pub value: String,
    /// A URL whose host, path and scheme place the cookie (instead of `domain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The cookie's domain (a leading `.` makes it a domain cookie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The cookie's path (`/` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Expiry in seconds since the Unix epoch; `-1` (or absent) for a session cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
    /// Whether scripts cannot read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// Whether it is sent over secure connections only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// Its `SameSite` attribute (`None` needs `secure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<SameSite>,
    /// Chromium's cookie priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<CookiePriority>,
    /// The scheme the cookie was set from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_scheme: Option<CookieSourceScheme>,
    /// The port the cookie was set from (`-1` when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<i32>,
    /// The partition of a partitioned (CHIPS) cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<CookiePartitionKey>,
}

/// A cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Also sent on top-level navigations from other sites (what Chromium assumes when a
    /// cookie names none).
    Lax,
    /// Sent on cross-site requests too (needs `secure`).
    None,
}

/// Chromium's cookie priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CookiePriority {
    /// Evicted first.
    Low,
    /// The default.
    Medium,
    /// Evicted last.
    High,
}

/// The scheme a cookie was set from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CookieSourceScheme {
    /// Not recorded.
    Unset,
    /// Set over an insecure scheme.
    NonSecure,
    /// Set over a secure scheme.
    Secure,
}

/// The partition of a partitioned cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CookiePartitionKey {
    /// The top-level site the cookie is partitioned under (`https://example.com`).
    pub top_level_site: String,
    /// Whether it was set in a cross-site frame.
    pub has_cross_site_ancestor: bool,
}

/// One origin's `localStorage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OriginStorage {
    /// The origin (`https://example.com`, `http://127.0.0.1:8080`): scheme, host and a
    /// non-default port, nothing else.
    pub origin: String,
    /// Its `localStorage` entries.
    #[serde(default)]
    pub local_storage: Vec<StorageItem>,
}

/// One `localStorage` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageItem {
    /// The key.
    pub name: String,
    /// The value.
    pub value: String,
}

impl StorageState {
    /// Checks what Chromium would refuse or silently drop, so the error names the field
    /// (`cookies[2].domain`, `origins[0].origin`; place it with [`NimbusError::within`]).
    pub fn validate(&self) -> Result<(), NimbusError> {
        for (index, cookie) in self.cookies.iter().enumerate() {
            cookie.validate().map_err(|error| error.within(&format!("cookies[{index}]")))?;
        }
        let mut seen = HashSet::new();
        for (index, origin) in self.origins.iter().enumerate() {
            let field = format!("origins[{index}].origin");
            match origin_of(&origin.origin) {
                Some(normal) if normal == origin.origin => {}
                Some(normal) => {
                    return Err(NimbusError::invalid_input(
                        field,
                        format!("is not in its origin form; write {normal:?}"),
                    ));
                }
                None => {
                    return Err(NimbusError::invalid_input(
                        field,
                        "is not an http or https origin (scheme://host[:port], like \"https://example.com\")",
                    ));
                }
            }
            if !seen.insert(origin.origin.as_str()) {
                return Err(NimbusError::invalid_input(field, "names an origin an earlier entry already names"));
            }
        }
        Ok(())
    }
}

impl Cookie {
    fn validate(&self) -> Result<(), NimbusError> {
        let bad = |field: &str, reason: &str| Err(NimbusError::invalid_input(field, reason));
        if self.name.contains([';', '=']) || has_control(&self.name) {
            return bad("name", "must not contain `;`, `=` or control characters");
        }
        if self.value.contains(';') || has_control(&self.value) {
            return bad("value", "must not contain `;` or control characters");
        }
        if self.name.len() + self.value.len() > COOKIE_MAX_BYTES {
            return bad("value", "makes the cookie (name and value) larger than 4096 bytes");
        }
        match (&self.url, &self.domain) {
            (None, None) => return bad("domain", "is required when `url` is absent"),
            (Some(url), _) if origin_of(url).is_none() || has_control(url) || url.contains(' ') => {
                return bad("url", "must be an http or https URL");
            }
            _ => {}
        }
        if let Some(domain) = &self.domain {
            let well_formed = !domain.is_empty()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':'));
            if !well_formed {
                return bad("domain", "must be a host name or address");
            }
        }
        if let Some(path) = &self.path
            && (!path.starts_with('/') || path.contains(';') || has_control(path))
        {
            return bad("path", "must start with `/` and contain no `;` or control characters");
        }
        if let Some(expires) = self.expires
            && (!expires.is_finite() || (expires < 0.0 && expires != -1.0))
        {
            return bad("expires", "must be seconds since the Unix epoch, or -1 for a session cookie");
        }
        if self.same_site == Some(SameSite::None) && self.secure != Some(true) {
            return bad("secure", "must be true when `sameSite` is \"None\" (browsers drop such cookies)");
        }
        if let Some(port) = self.source_port
            && port != -1
            && !(1..=65535).contains(&port)
        {
            return bad("sourcePort", "must be a port (1..65535) or -1");
        }
        Ok(())
    }

    /// A cookie from DevTools' `Network.Cookie` (`Storage.getCookies`), in Playwright's export
    /// shape: `name`, `value`, `domain`, `path`, `expires`, `httpOnly`, `secure`, `sameSite`
    /// (`Lax` when Chromium records none) and `partitionKey` when partitioned. `None` when the
    /// object lacks a string name or value.
    pub(crate) fn from_devtools(cookie: &Value) -> Option<Cookie> {
        let text = |name: &str| cookie.get(name).and_then(Value::as_str).map(str::to_owned);
        let flag = |name: &str| cookie.get(name).and_then(Value::as_bool);
        let same_site = match cookie.get("sameSite").and_then(Value::as_str) {
            Some("Strict") => SameSite::Strict,
            Some("None") => SameSite::None,
            _ => SameSite::Lax,
        };
        let partition_key =
            cookie.get("partitionKey").and_then(|key| serde_json::from_value::<CookiePartitionKey>(key.clone()).ok());
        Some(Cookie {
            name: text("name")?,
            value: text("value")?,
            url: None,
            domain: text("domain"),
            path: text("path"),
            expires: Some(cookie.get("expires").and_then(Value::as_f64).filter(|e| e.is_finite()).unwrap_or(-1.0)),
            http_only: Some(flag("httpOnly").unwrap_or(false)),
            secure: Some(flag("secure").unwrap_or(false)),
            same_site: Some(same_site),
            priority: None,
            source_scheme: None,
            source_port: None,
            partition_key,
        })
    }
}

fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control())
}

/// The origin of an http or https URL, in its serialised form (`https://example.com`,
/// `http://127.0.0.1:8080`): scheme and host lower-cased, a default port dropped. `None` for
/// any other scheme, a URL with credentials, or one without a host.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (inside, after) = bracketed.split_once(']')?;
            if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.')) {
                return None;
            }
            let port = if after.is_empty() { None } else { Some(after.strip_prefix(':')?) };
            (format!("[{}]", inside.to_ascii_lowercase()), port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
                return None;
            }
            (host.to_ascii_lowercase(), port)
        }
    };
    let port = match port {
        None => None,
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => match port.parse::<u16>() {
            Ok(0) | Err(_) => return None,
            Ok(number) => Some(number.to_string()),
        },
        Some(_) => return None,
    };
    Some(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_of(state: Value) -> Option<String> {
        let state: StorageState = serde_json::from_value(state).expect("the shape parses");
        let error = state.validate().err()?;
        error.detail.and_then(|d| d["field"].as_str().map(str::to_owned))
    }

    fn cookie(extra: Value) -> Value {
        let mut cookie = json!({ "name": "sid", "value": "1", "domain": "example.com", "path": "/" });
        if let (Some(cookie), Value::Object(extra)) = (cookie.as_object_mut(), extra) {
            cookie.extend(extra);
        }
        json!({ "cookies": [cookie] })
    }

    #[test]
    fn a_playwright_export_is_valid() {
        let state = json!({
            "cookies": [
                { "name": "a", "value": "1", "domain": ".example.com", "path": "/", "expires": -1,
                  "httpOnly": false, "secure": true, "sameSite": "None" },
                { "name": "b", "value": "", "url": "http://127.0.0.1:8765/x", "expires": 1893456000.5,
                  "priority": "High", "sourceScheme": "NonSecure", "sourcePort": 8765 },
            ],
            "origins": [
                { "origin": "https://example.com", "localStorage": [{ "name": "k", "value": "v" }] },
                { "origin": "http://127.0.0.1:8765", "localStorage": [] },
            ],
        });
        assert_eq!(field_of(state), None);
        assert_eq!(field_of(json!({})), None);
    }

    #[test]
    fn bad_cookies_name_their_field() {
        for (extra, field) in [
            (json!({ "name": "a;b" }), "cookies[0].name"),
            (json!({ "name": "a=b" }), "cookies[0].name"),
            (json!({ "value": "x\ny" }), "cookies[0].value"),
            (json!({ "value": "v".repeat(4096) }), "cookies[0].value"),
            (json!({ "domain": null }), "cookies[0].domain"),
            (json!({ "domain": "exa mple.com" }), "cookies[0].domain"),
            (json!({ "url": "ftp://example.com/" }), "cookies[0].url"),
            (json!({ "path": "x" }), "cookies[0].path"),
            (json!({ "expires": -5 }), "cookies[0].expires"),
            (json!({ "sameSite": "None" }), "cookies[0].secure"),
            (json!({ "sourcePort": 70000 }), "cookies[0].sourcePort"),
        ] {
            assert_eq!(field_of(cookie(extra.clone())).as_deref(), Some(field), "{extra}");
        }
    }

    #[test]
    fn origins_must_be_origins_and_unique() {
        for (origin, bad) in [
            ("https://example.com", false),
            ("http://[::1]:8080", false),
            ("https://example.com/", true),
            ("https://Example.com", true),
            ("https://example.com:443", true),
            ("file:///tmp", true),
            ("https://user@example.com", true),
            ("example.com", true),
            ("https://:80", true),
        ] {
            let state = json!({ "origins": [{ "origin": origin }] });
            assert_eq!(field_of(state).is_some(), bad, "{origin}");
        }
        let twice = json!({ "origins": [{ "origin": "https://a.com" }, { "origin": "https://a.com" }] });
        assert_eq!(field_of(twice).as_deref(), Some("origins[1].origin"));
        let unknown = serde_json::from_value::<StorageState>(json!({ "origins": [], "indexedDB": [] }));
        assert!(unknown.is_err());
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(origin_of("HTTPS://Example.COM:443/a?b").as_deref(), Some("https://example.com"));
        assert_eq!(origin_of("http://127.0.0.1:8765/").as_deref(), Some("http://127.0.0.1:8765"));
        assert_eq!(origin_of("http://[::1]:81/x").as_deref(), Some("http://[::1]:81"));
        assert_eq!(origin_of("http://[::1]/x").as_deref(), Some("http://[::1]"));
        assert_eq!(origin_of("about:blank"), None);
        assert_eq!(origin_of("data:text/html,x"), None);
        assert_eq!(origin_of("http://a:99999/"), None);
    }

    #[test]
    fn devtools_cookies_export_in_playwright_shape() {
        let devtools = json!({ "name": "a", "value": "1", "domain": "example.com", "path": "/", "expires": -1,
            "size": 2, "httpOnly": false, "secure": true, "session": true, "priority": "Medium",
            "sourceScheme": "Secure", "sourcePort": 443 });
        let cookie = Cookie::from_devtools(&devtools).expect("a cookie");
        assert_eq!(
            serde_json::to_value(&cookie).expect("serialises"),
            json!({ "name": "a", "value": "1", "domain": "example.com", "path": "/", "expires": -1.0,
                    "httpOnly": false, "secure": true, "sameSite": "Lax" })
        );
        assert!(Cookie::from_devtools(&json!({ "name": 1, "value": "x" })).is_none());
    }
}

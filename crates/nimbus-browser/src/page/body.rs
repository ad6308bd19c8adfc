//! The operations' request bodies (the contract's wire types), their parsing with the path of
//! a bad field, and the checks serde cannot express.

use nimbus_core::NimbusError;
use nimbus_core::limits::{BROWSER_DEFAULT_TIMEOUT_MS, BROWSER_MAX_TIMEOUT_MS};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::element::ElementTarget;
use super::navigate::WaitUntil;
use crate::context::Viewport;
use crate::url;

/// Parses `body` (a JSON object; `null` reads as `{}`) into `T`, naming the first bad field
/// (`viewport.width`), or the missing one.
pub(crate) fn parse<T: DeserializeOwned>(body: Value) -> Result<T, NimbusError> {
    let body = if body.is_null() { Value::Object(serde_json::Map::new()) } else { body };
    if !body.is_object() {
        return Err(NimbusError::invalid_request("the body must be a JSON object"));
    }
    serde_path_to_error::deserialize(body).map_err(|error| {
        let path = error.path().to_string();
        let reason = error.into_inner().to_string();
        let within = |field: &str| if path == "." { field.to_owned() } else { format!("{path}.{field}") };
        if let Some(field) = quoted_after(&reason, "missing field `") {
            NimbusError::invalid_input(within(field), "is required")
        } else if let Some(field) = quoted_after(&reason, "unknown field `") {
            // serde_path_to_error's path already ends at the unknown field.
            let field =
                if path == field || path.ends_with(&format!(".{field}")) { path.clone() } else { within(field) };
            NimbusError::invalid_input(field, "is not a field of this body")
        } else if path == "." {
            NimbusError::invalid_request(reason)
        } else {
            NimbusError::invalid_input(path, reason)
        }
    })
}

/// The name serde quotes after `prefix` (`missing field `url``).
fn quoted_after<'a>(reason: &'a str, prefix: &str) -> Option<&'a str> {
    reason.strip_prefix(prefix)?.split('`').next()
}

/// `timeoutMs`: [`BROWSER_DEFAULT_TIMEOUT_MS`] when absent, else 1..=[`BROWSER_MAX_TIMEOUT_MS`].
pub(crate) fn timeout_ms(value: Option<u64>) -> Result<u64, NimbusError> {
    match value {
        None => Ok(BROWSER_DEFAULT_TIMEOUT_MS),
        Some(ms) if (1..=BROWSER_MAX_TIMEOUT_MS).contains(&ms) => Ok(ms),
        Some(ms) => Err(NimbusError::invalid_input(
            "timeoutMs",
            format!("must be between 1 and {BROWSER_MAX_TIMEOUT_MS} ms (got {ms})"),
        )),
    }
}

/// The element a body names: exactly one of `ref` and `selector` (`required`), or at most one.
pub(crate) fn element(
    element_ref: Option<&str>,
    selector: Option<&str>,
    required: bool,
) -> Result<Option<ElementTarget>, NimbusError> {
    match (element_ref, selector) {
        (Some(_), Some(_)) => {
            Err(NimbusError::invalid_input("selector", "cannot be given with `ref`; give one of them"))
        }
        (None, None) if required => Err(NimbusError::invalid_input("ref", "is required (or `selector`)")),
        (None, None) => Ok(None),
        (Some(text), None) => ElementTarget::parse_ref(text).map(Some),
        (None, Some(selector)) if selector.trim().is_empty() => {
            Err(NimbusError::invalid_input("selector", "must not be empty"))
        }
        (None, Some(selector)) => Ok(Some(ElementTarget::Selector(selector.to_owned()))),
    }
}

/// A URL to load: one Chromium may be sent to (see [`url::allowed`]).
pub(crate) fn navigable(field: &str, value: &str) -> Result<(), NimbusError> {
    if value.trim().is_empty() {
        return Err(NimbusError::invalid_input(field, "must not be empty"));
    }
    if !url::allowed(value) {
        return Err(NimbusError::invalid_input(
            field,
            "must be an http, https, file, data or blob URL, or about:blank (browser-internal pages are refused)",
        ));
    }
    Ok(())
}

/// Body of `open`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenBody {
    /// The URL to load (a blank page when absent).
    pub url: Option<String>,
    /// The new page's viewport (the session's default when absent).
    pub viewport: Option<Viewport>,
    /// What to wait for when `url` is given (`load` by default).
    pub wait_until: Option<WaitUntil>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `goto`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GotoBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// The URL to load.
    pub url: String,
    /// What to wait for (`load` by default).
    pub wait_until: Option<WaitUntil>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of the operations that name only a page: `snapshot`, `close` and `storageState`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PageBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `click`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClickBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// A snapshot ref (`e12`); or give `selector`.
    #[serde(rename = "ref")]
    pub element_ref: Option<String>,
    /// A CSS selector (`document.querySelector`); or give `ref`.
    pub selector: Option<String>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `type`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TypeBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// A snapshot ref (`e12`); or give `selector`.
    #[serde(rename = "ref")]
    pub element_ref: Option<String>,
    /// A CSS selector (`document.querySelector`); or give `ref`.
    pub selector: Option<String>,
    /// The text to insert at the caret, as typed input.
    pub text: String,
    /// Press Enter afterwards.
    pub submit: Option<bool>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `press`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PressBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// The key: a name (`Enter`, `Tab`, `Escape`, `Backspace`, `ArrowDown`, `F5`, …) or one
    /// character (`a`, `A`, `1`, `/`), optionally after modifiers (`Control+a`, `Shift+Tab`).
    pub key: String,
    /// A snapshot ref to focus first; or `selector`.
    #[serde(rename = "ref")]
    pub element_ref: Option<String>,
    /// A CSS selector to focus first; or `ref`.
    pub selector: Option<String>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `select`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SelectBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// A snapshot ref of a `<select>`; or give `selector`.
    #[serde(rename = "ref")]
    pub element_ref: Option<String>,
    /// A CSS selector of a `<select>`; or give `ref`.
    pub selector: Option<String>,
    /// The options to select, each by value or else by label (one for a single select).
    pub values: Vec<String>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `evaluate`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvaluateBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// JavaScript evaluated in the page (top-level `await` allowed; a promise is awaited).
    pub expression: String,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `text`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TextBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// A snapshot ref (the whole page when neither is given); or `selector`.
    #[serde(rename = "ref")]
    pub element_ref: Option<String>,
    /// A CSS selector; or `ref`.
    pub selector: Option<String>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `screenshot`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScreenshotBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// The whole document instead of the viewport.
    pub full_page: Option<bool>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `pdf`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PdfBody {
    /// The page (the session's default page when absent).
    pub page_id: Option<String>,
    /// Landscape paper.
    pub landscape: Option<bool>,
    /// Print background colours and images.
    pub print_background: Option<bool>,
    /// Milliseconds to wait (default 30000, at most 120000).
    pub timeout_ms: Option<u64>,
}

/// Body of `pages` (no fields).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagesBody {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field<T: DeserializeOwned>(body: Value) -> Option<String> {
        let error = parse::<T>(body).err()?;
        error.detail.and_then(|d| d.get("field").and_then(Value::as_str).map(str::to_owned))
    }

    #[test]
    fn bad_bodies_name_their_field() {
        assert_eq!(field::<GotoBody>(json!({})).as_deref(), Some("url"));
        assert_eq!(field::<GotoBody>(json!({ "url": "x", "nope": 1 })).as_deref(), Some("nope"));
        assert_eq!(
            field::<OpenBody>(json!({ "viewport": { "width": 1, "height": 1, "scale": 2 } })).as_deref(),
            Some("viewport.scale")
        );
        assert_eq!(field::<GotoBody>(json!({ "url": "x", "waitUntil": "networkidle" })).as_deref(), Some("waitUntil"));
        assert_eq!(field::<OpenBody>(json!({ "viewport": { "width": 1 } })).as_deref(), Some("viewport.height"));
        assert_eq!(
            field::<OpenBody>(json!({ "viewport": { "width": -1, "height": 1 } })).as_deref(),
            Some("viewport.width")
        );
        assert_eq!(field::<SelectBody>(json!({ "ref": "e1", "values": "a" })).as_deref(), Some("values"));
        assert_eq!(field::<TypeBody>(json!({ "ref": "e1" })).as_deref(), Some("text"));
        assert!(parse::<PagesBody>(json!({ "pageId": "x" })).is_err());
        assert!(parse::<PageBody>(json!([])).is_err());
        assert!(parse::<PageBody>(Value::Null).is_ok(), "no body is an empty one");
        let click: ClickBody = parse(json!({ "ref": "e3", "timeoutMs": 5 })).expect("parses");
        assert_eq!(click.element_ref.as_deref(), Some("e3"));
        let open: OpenBody = parse(json!({ "waitUntil": "domcontentloaded" })).expect("parses");
        assert_eq!(open.wait_until, Some(WaitUntil::DomContentLoaded));
    }

    #[test]
    fn timeouts_default_and_are_bounded() {
        assert_eq!(timeout_ms(None).ok(), Some(BROWSER_DEFAULT_TIMEOUT_MS));
        assert_eq!(timeout_ms(Some(1)).ok(), Some(1));
        assert_eq!(timeout_ms(Some(BROWSER_MAX_TIMEOUT_MS)).ok(), Some(BROWSER_MAX_TIMEOUT_MS));
        assert!(timeout_ms(Some(0)).is_err());
        assert!(timeout_ms(Some(BROWSER_MAX_TIMEOUT_MS + 1)).is_err());
    }

    #[test]
    fn exactly_one_of_ref_and_selector() {
        let field_of = |error: NimbusError| error.detail.and_then(|d| d["field"].as_str().map(str::to_owned));
        assert_eq!(element(Some("e1"), Some("a"), true).err().and_then(field_of).as_deref(), Some("selector"));
        assert_eq!(element(None, None, true).err().and_then(field_of).as_deref(), Some("ref"));
        assert!(matches!(element(None, None, false), Ok(None)));
        assert!(matches!(element(Some("e17"), None, true), Ok(Some(ElementTarget::Ref { backend_node_id: 17, .. }))));
        assert_eq!(element(Some("17"), None, true).err().and_then(field_of).as_deref(), Some("ref"));
        assert_eq!(element(None, Some("  "), true).err().and_then(field_of).as_deref(), Some("selector"));
        assert!(matches!(element(None, Some("#a"), true), Ok(Some(ElementTarget::Selector(_)))));
    }

    #[test]
    fn internal_pages_are_not_navigable() {
        assert!(navigable("url", "https://example.com/").is_ok());
        assert!(navigable("url", "").is_err());
        assert!(navigable("url", "chrome://inspect").is_err());
    }
}

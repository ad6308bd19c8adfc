//! The catalogued errors of the page operations (docs/browser.md, "The `page` channel").

use nimbus_core::limits::BROWSER_MAX_PAGES_PER_SESSION;
use nimbus_core::{ErrorCode, NimbusError};
use serde_json::{Value, json};

use super::element::ElementTarget;

/// Longest exception text `browser.evaluation_failed` carries, in bytes: the page writes it.
const EXCEPTION_MAX_BYTES: usize = 4096;

/// 404 `browser.page_not_found`: `page_id` is not a page of the session (or, with `None`, the
/// session has no page left).
pub(crate) fn page_not_found(page_id: Option<&str>) -> NimbusError {
    match page_id {
        Some(page_id) => NimbusError::new(
            ErrorCode::BrowserPageNotFound,
            format!("no page {page_id:?} in this session"),
            Some(json!({ "pageId": page_id })),
        ),
        None => NimbusError::new(ErrorCode::BrowserPageNotFound, "the session has no open page", Some(json!({}))),
    }
}

/// 502 `browser.page_crashed`.
pub(crate) fn page_crashed(page_id: &str) -> NimbusError {
    NimbusError::new(
        ErrorCode::BrowserPageCrashed,
        format!("page {page_id:?} crashed"),
        Some(json!({ "pageId": page_id })),
    )
}

/// 404 `browser.element_not_found` naming the `ref` or `selector` and why.
pub(crate) fn element_not_found(target: &ElementTarget, reason: impl Into<String>) -> NimbusError {
    let reason = reason.into();
    let (message, detail) = match target {
        ElementTarget::Ref { text, .. } => {
            (format!("no element for ref {text:?}: {reason}"), json!({ "ref": text, "reason": reason }))
        }
        ElementTarget::Selector(selector) => (
            format!("no element matches {:?}: {reason}", clip(selector, 200)),
            json!({ "selector": selector, "reason": reason }),
        ),
    };
    NimbusError::new(ErrorCode::BrowserElementNotFound, message, Some(detail))
}

/// 502 `browser.navigation_failed` with Chromium's reason (`net::ERR_NAME_NOT_RESOLVED`, …).
pub(crate) fn navigation_failed(url: &str, reason: &str) -> NimbusError {
    let reason = clip(reason, 512);
    NimbusError::new(
        ErrorCode::BrowserNavigationFailed,
        format!("{:?} did not load: {reason}", clip(url, 200)),
        Some(json!({ "url": url, "reason": reason })),
    )
}

/// 422 `browser.evaluation_failed` with the page's error text (bounded).
pub(crate) fn evaluation_failed(exception: &str) -> NimbusError {
    let exception = clip(exception, EXCEPTION_MAX_BYTES);
    NimbusError::new(
        ErrorCode::BrowserEvaluationFailed,
        format!("the expression failed: {}", clip(exception, 200)),
        Some(json!({ "exception": exception })),
    )
}

/// 429 `rate.resource_exhausted`: the session already holds `BROWSER_MAX_PAGES_PER_SESSION`
/// pages.
pub(crate) fn too_many_pages(open: usize) -> NimbusError {
    let limit = u64::try_from(BROWSER_MAX_PAGES_PER_SESSION).unwrap_or(u64::MAX);
    NimbusError::resource_exhausted("browser_pages", limit, u64::try_from(open).ok())
}

/// An error text from an exception's `RemoteObject` or `exceptionDetails`.
pub(crate) fn exception_text(details: &Value) -> String {
    let described = details.get("exception").and_then(|e| e.get("description")).and_then(Value::as_str);
    let thrown = details.get("exception").and_then(|e| e.get("value")).map(|v| match v {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    });
    described
        .map(str::to_owned)
        .or(thrown)
        .or_else(|| details.get("text").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "the expression threw".to_owned())
}

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

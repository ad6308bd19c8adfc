//! Navigation: `Page.navigate` and the wait for the new document's load, and the wait for a
//! navigation that a click or a key press started to commit.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use nimbus_core::limits::EGRESS_PROXY_STATUS_NAME as PROXY_STATUS_NAME;

use super::deadline::Deadline;
use super::target::PageTarget;
use crate::cdp::{CdpError, Event, Events, Received};

/// Which point of a page's load `goto` and `open` wait for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaitUntil {
    /// The `load` event: the document and its subresources (images, styles, scripts) loaded.
    #[default]
    Load,
    /// `DOMContentLoaded`: the document parsed, subresources possibly still loading.
    DomContentLoaded,
}

impl WaitUntil {
    /// The name of the `Page.lifecycleEvent` that marks it.
    fn lifecycle_name(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::DomContentLoaded => "DOMContentLoaded",
        }
    }

    /// Whether `document.readyState` shows it has passed.
    fn reached_by(self, ready_state: &str) -> bool {
        match self {
            Self::Load => ready_state == "complete",
            Self::DomContentLoaded => matches!(ready_state, "interactive" | "complete"),
        }
    }
}

/// Why a navigation did not end in a loaded document.
#[derive(Debug, Clone)]
pub(crate) enum NavigateError {
    /// Chromium could not load the URL: its error text (`net::ERR_NAME_NOT_RESOLVED`, …).
    Failed(String),
    /// The deadline passed first.
    Timeout,
    /// The page crashed or closed, or the connection failed.
    Cdp(CdpError),
}

impl From<CdpError> for NavigateError {
    fn from(error: CdpError) -> Self {
        match error {
            CdpError::Timeout { .. } => Self::Timeout,
            other => Self::Cdp(other),
        }
    }
}

/// Navigates the page's main frame to `url` and waits until the new document reaches `until`
/// (a document that replaces it meanwhile, such as a script's redirect, is followed). A
/// same-document navigation (a fragment) answers once done.
pub(crate) async fn navigate(
    page: &PageTarget<'_>,
    url: &str,
    until: WaitUntil,
    deadline: &Deadline,
) -> Result<(), NavigateError> {
    let mut events = page.events();
    // For the main response's headers: an answer of the sandbox's egress proxy itself (a refused
    // host) is a failed navigation, not a page.
    page.call("Network.enable", json!({}), deadline.remaining()).await?;
    let navigated = navigate_watched(page, &mut events, url, until, deadline).await;
    let _ = page.call("Network.disable", json!({}), deadline.remaining()).await;
    navigated
}

async fn navigate_watched(
    page: &PageTarget<'_>,
    events: &mut Events,
    url: &str,
    until: WaitUntil,
    deadline: &Deadline,
) -> Result<(), NavigateError> {
    let answer = match page.call("Page.navigate", json!({ "url": url }), deadline.remaining()).await {
        Ok(answer) => answer,
        // Chromium refuses a URL it cannot parse ("Cannot navigate to invalid URL").
        Err(CdpError::Protocol { message, .. }) => return Err(NavigateError::Failed(message)),
        Err(error) => return Err(error.into()),
    };
    if let Some(error) = answer.get("errorText").and_then(Value::as_str).filter(|e| !e.is_empty()) {
        return Err(NavigateError::Failed(error.to_owned()));
    }
    let Some(loader) = answer.get("loaderId").and_then(Value::as_str) else { return Ok(()) };
    wait_for_document(page, events, loader.to_owned(), until, deadline).await
}

/// The egress proxy's refusal in a main document response (its RFC 9209 `Proxy-Status`
/// header): `egress_refused: <reason>`.
fn refused_by_egress(response: &Value) -> Option<String> {
    let headers = response.get("headers")?.as_object()?;
    let status = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("proxy-status"))?.1.as_str()?;
    let rest = status.strip_prefix(PROXY_STATUS_NAME)?.strip_prefix(';')?;
    let reason = rest
        .split(';')
        .find_map(|param| param.trim().strip_prefix("details="))
        .map_or("refused", |details| details.trim_matches('"'));
    Some(format!("egress_refused: {reason}"))
}

async fn wait_for_document(
    page: &PageTarget<'_>,
    events: &mut Events,
    mut loader: String,
    until: WaitUntil,
    deadline: &Deadline,
) -> Result<(), NavigateError> {
    let frame = page.target_id().to_owned();
    loop {
        let received =
            tokio::time::timeout_at(deadline.instant(), events.recv()).await.map_err(|_| NavigateError::Timeout)?;
        let event = match received {
            Received::Event(event) => event,
            Received::Closed => {
                return Err(NavigateError::Cdp(CdpError::Closed { reason: "connection closed".into() }));
            }
            Received::Lagged => {
                if until.reached_by(&ready_state(page, deadline).await?) {
                    return Ok(());
                }
                continue;
            }
        };
        if let Some(error) = page.ended_by(&event) {
            return Err(NavigateError::Cdp(error));
        }
        let params = &event.params;
        let text = |value: &Value, name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        match event.method.as_str() {
            "Network.responseReceived"
                if text(params, "loaderId").as_deref() == Some(loader.as_str())
                    && text(params, "type").as_deref() == Some("Document") =>
            {
                if let Some(reason) = params.get("response").and_then(refused_by_egress) {
                    return Err(NavigateError::Failed(reason));
                }
            }
            "Page.lifecycleEvent"
                if text(params, "frameId").as_deref() == Some(frame.as_str())
                    && text(params, "loaderId").as_deref() == Some(loader.as_str())
                    && text(params, "name").as_deref() == Some(until.lifecycle_name()) =>
            {
                return Ok(());
            }
            "Page.frameNavigated" => {
                let Some(committed) = params.get("frame") else { continue };
                if text(committed, "id").as_deref() == Some(frame.as_str())
                    && committed.get("parentId").is_none()
                    && let Some(newer) = text(committed, "loaderId")
                {
                    loader = newer;
                }
            }
            _ => {}
        }
    }
}

/// The main frame's `document.readyState` (looked at when events may have been missed).
async fn ready_state(page: &PageTarget<'_>, deadline: &Deadline) -> Result<String, NavigateError> {
    let answer = page
        .call(
            "Runtime.evaluate",
            json!({ "expression": "document.readyState", "returnByValue": true }),
            deadline.remaining(),
        )
        .await?;
    Ok(answer.pointer("/result/value").and_then(Value::as_str).unwrap_or_default().to_owned())
}

/// What the events queued during an input said about navigation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// A navigation of the main frame in this tab was requested.
    requested: bool,
    /// The frame started loading since (a load still running from before stops on its own).
    loading: bool,
    /// The navigation committed, or ended without a document.
    settled: bool,
}

/// After an input (a click, a key press) with `events` subscribed before it: when the input
/// started a navigation of the main frame in this tab, waits until that navigation committed
/// (or ended without a document, like a download); otherwise answers at once.
pub(crate) async fn settle_after_input(
    page: &PageTarget<'_>,
    events: &mut Events,
    deadline: &Deadline,
) -> Result<(), NavigateError> {
    // A round trip through the renderer after the input: the navigation an input starts is
    // reported by the browser on another path than the input's own answer, and may arrive
    // after it. `Page.enable` is idempotent (Playwright waits the same way).
    page.call("Page.enable", json!({}), deadline.remaining()).await?;
    let mut seen = Seen::default();
    while let Some(received) = events.try_recv() {
        match take(page, seen, received)? {
            Some(next) => seen = next,
            None => return Ok(()),
        }
    }
    while seen.requested && !seen.settled {
        let received =
            tokio::time::timeout_at(deadline.instant(), events.recv()).await.map_err(|_| NavigateError::Timeout)?;
        match take(page, seen, received)? {
            Some(next) => seen = next,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// `seen` after one received item; `None` when events were missed (whatever was missed, the
/// page is past it now or will be shortly: nothing is waited on that may already have gone by).
fn take(page: &PageTarget<'_>, seen: Seen, received: Received) -> Result<Option<Seen>, NavigateError> {
    match received {
        Received::Event(event) => match page.ended_by(&event) {
            Some(error) => Err(NavigateError::Cdp(error)),
            None => Ok(Some(observe(seen, page.target_id(), &event))),
        },
        Received::Lagged => Ok(None),
        Received::Closed => Err(NavigateError::Cdp(CdpError::Closed { reason: "connection closed".into() })),
    }
}

/// Updates what is known of a navigation of the main frame `frame` from one event.
fn observe(mut seen: Seen, frame: &str, event: &Event) -> Seen {
    let params = &event.params;
    let on_main = params.get("frameId").and_then(Value::as_str) == Some(frame);
    match event.method.as_str() {
        "Page.frameRequestedNavigation" if on_main => {
            let disposition = params.get("disposition").and_then(Value::as_str).unwrap_or("currentTab");
            if disposition == "currentTab" {
                seen.requested = true;
            }
        }
        "Page.frameScheduledNavigation" | "Page.frameStartedNavigating" if on_main => seen.requested = true,
        "Page.frameStartedLoading" if on_main => seen.loading = seen.requested,
        // Same-document navigations, downloads and responses without a document (204) end
        // without a commit.
        "Page.navigatedWithinDocument" | "Page.downloadWillBegin" if on_main => seen.settled = seen.requested,
        "Page.frameStoppedLoading" if on_main => seen.settled = seen.requested && seen.loading,
        "Page.frameNavigated" => {
            let committed = params.get("frame");
            let main = committed.and_then(|f| f.get("id")).and_then(Value::as_str) == Some(frame)
                && committed.and_then(|f| f.get("parentId")).is_none();
            if main && seen.requested {
                seen.settled = true;
            }
        }
        _ => {}
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(method: &str, params: Value) -> Event {
        Event { session_id: Some("S".into()), method: method.into(), params }
    }

    fn run(events: &[Event]) -> Seen {
        events.iter().fold(Seen::default(), |seen, event| observe(seen, "F", event))
    }

    #[test]
    fn an_anchor_click_waits_for_the_commit() {
        // The order Chromium 156 sends for a click on a link (recorded).
        let requested = [
            event("Page.frameScheduledNavigation", json!({ "frameId": "F", "reason": "anchorClick" })),
            event("Page.frameRequestedNavigation", json!({ "frameId": "F", "disposition": "currentTab" })),
            event("Page.frameStartedNavigating", json!({ "frameId": "F", "navigationType": "differentDocument" })),
            event("Page.frameStartedLoading", json!({ "frameId": "F" })),
            event("Page.frameClearedScheduledNavigation", json!({ "frameId": "F" })),
        ];
        assert_eq!(run(&requested), Seen { requested: true, loading: true, settled: false });
        let mut committed = requested.to_vec();
        committed.push(event("Page.frameNavigated", json!({ "frame": { "id": "F", "loaderId": "L" } })));
        assert_eq!(run(&committed), Seen { requested: true, loading: true, settled: true });
    }

    #[test]
    fn other_frames_tabs_and_quiet_clicks_do_not_wait() {
        assert_eq!(run(&[]), Seen::default());
        let child = [event("Page.frameRequestedNavigation", json!({ "frameId": "C", "disposition": "currentTab" }))];
        assert!(!run(&child).requested);
        let new_tab = [event("Page.frameRequestedNavigation", json!({ "frameId": "F", "disposition": "newTab" }))];
        assert!(!run(&new_tab).requested);
        let child_commit = [
            event("Page.frameStartedNavigating", json!({ "frameId": "F" })),
            event("Page.frameNavigated", json!({ "frame": { "id": "F", "parentId": "P" } })),
        ];
        assert!(!run(&child_commit).settled);
        let no_content = [
            event("Page.frameStartedNavigating", json!({ "frameId": "F" })),
            event("Page.frameStartedLoading", json!({ "frameId": "F" })),
            event("Page.frameStoppedLoading", json!({ "frameId": "F" })),
        ];
        assert!(run(&no_content).settled);
        // The end of a load that was running before the request is not this navigation's.
        let earlier_load = [
            event("Page.frameRequestedNavigation", json!({ "frameId": "F" })),
            event("Page.frameStoppedLoading", json!({ "frameId": "F" })),
        ];
        assert!(!run(&earlier_load).settled);
    }
}

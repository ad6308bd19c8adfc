//! One page as the operations drive it: its target, the DevTools session attached to it, and
//! the calls every operation makes (a utility world for Nimbus's own scripts, the target's
//! info, creating a page with a viewport).

use std::time::Duration;

use serde_json::{Value, json};

use crate::cdp::{CdpError, Connection, Event, EventScope, Events, Received};
use crate::context::Viewport;

/// Name of the isolated world Nimbus's own scripts run in: the page's scripts cannot see or
/// change what runs there (a page that redefines `document.querySelector` or
/// `Element.prototype.scrollIntoView` does not change what a ref or selector means), and
/// Chromium reuses one world per name, so asking again costs nothing.
const UTILITY_WORLD: &str = "__nimbus_utility";

/// The smallest side a new page's window is created with, in pixels: a headless window carries
/// about 90 px of browser UI, and one whose content area would be empty cannot be sized (see
/// [`create_page`]).
const WINDOW_MIN_SIDE: u32 = 400;

/// Height added to a new page's window beyond its viewport, for that browser UI.
const WINDOW_UI_ALLOWANCE: u32 = 200;

/// DevTools' refusal of a command sent while the page swaps frame hosts.
const SWAPPING: &str = "Not attached to an active page";

/// How long to wait before sending a command again during a swap (it takes milliseconds).
const SWAP_RETRY: Duration = Duration::from_millis(10);

/// A page target as `Target.getTargets` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetInfo {
    /// The target id (the `pageId`).
    pub target_id: String,
    /// Its URL.
    pub url: String,
    /// Its tab title (Chromium's: the URL when the document has no title).
    pub title: String,
}

/// The open pages of `context_id`, in `Target.getTargets` order.
pub(crate) async fn context_pages(
    conn: &Connection,
    context_id: &str,
    timeout: Duration,
) -> Result<Vec<TargetInfo>, CdpError> {
    let answer = conn.call_with_timeout(None, "Target.getTargets", json!({}), timeout).await?;
    let infos = answer
        .get("targetInfos")
        .and_then(Value::as_array)
        .ok_or_else(|| CdpError::Malformed { method: "Target.getTargets".into(), what: "no targetInfos".into() })?;
    Ok(infos
        .iter()
        .filter(|info| info.get("type").and_then(Value::as_str) == Some("page"))
        .filter(|info| info.get("browserContextId").and_then(Value::as_str) == Some(context_id))
        .filter_map(target_info)
        .collect())
}

fn target_info(info: &Value) -> Option<TargetInfo> {
    let text = |name: &str| info.get(name).and_then(Value::as_str).map(str::to_owned);
    Some(TargetInfo {
        target_id: text("targetId")?,
        url: text("url").unwrap_or_default(),
        title: text("title").unwrap_or_default(),
    })
}

/// Creates a blank page in `context_id` whose viewport is exactly `viewport`, and answers its
/// target id.
///
/// The viewport is the size of the page's window contents (`Browser.setContentsSize`), a
/// property of the page itself: it holds for every DevTools client and survives any session
/// detaching (an emulation override would end with the session that set it). Each page gets a
/// window of its own, created larger than its contents so they can be sized.
pub(crate) async fn create_page(
    conn: &Connection,
    context_id: &str,
    viewport: Viewport,
    timeout: Duration,
) -> Result<String, CdpError> {
    let window_width = viewport.width.max(WINDOW_MIN_SIDE);
    let window_height = viewport.height.max(WINDOW_MIN_SIDE).saturating_add(WINDOW_UI_ALLOWANCE);
    let created = conn
        .call_with_timeout(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank", "browserContextId": context_id, "newWindow": true,
                    "width": window_width, "height": window_height }),
            timeout,
        )
        .await?;
    let target_id = string_field(&created, "targetId", "Target.createTarget")?;
    let sized = async {
        let window = conn
            .call_with_timeout(None, "Browser.getWindowForTarget", json!({ "targetId": target_id }), timeout)
            .await?;
        let window_id = window.get("windowId").and_then(Value::as_i64).ok_or_else(|| CdpError::Malformed {
            method: "Browser.getWindowForTarget".into(),
            what: "no windowId".into(),
        })?;
        conn.call_with_timeout(
            None,
            "Browser.setContentsSize",
            json!({ "windowId": window_id, "width": viewport.width, "height": viewport.height }),
            timeout,
        )
        .await
    };
    if let Err(error) = sized.await {
        close_quietly(conn, &target_id).await;
        return Err(error);
    }
    Ok(target_id)
}

/// Closes a page and waits (at most `timeout`) until Chromium has destroyed it, so no target
/// list shows it any more. A page already gone counts as closed.
pub(crate) async fn close_page(conn: &Connection, target_id: &str, timeout: Duration) -> Result<(), CdpError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut events = conn.subscribe(EventScope::Browser);
    match conn.call_with_timeout(None, "Target.closeTarget", json!({ "targetId": target_id }), timeout).await {
        Ok(_) => {}
        Err(error) if error.is_protocol("No target with given id") => return Ok(()),
        Err(error) => return Err(error),
    }
    loop {
        let received = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| CdpError::Timeout { method: "Target.closeTarget".into(), after: timeout })?;
        match received {
            Received::Event(event) => {
                let about = event.params.get("targetId").and_then(Value::as_str) == Some(target_id);
                if about && event.method == "Target.targetDestroyed" {
                    return Ok(());
                }
            }
            Received::Lagged => {
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                let params = json!({ "targetId": target_id });
                match conn.call_with_timeout(None, "Target.getTargetInfo", params, remaining).await {
                    Err(error) if error.is_protocol("No target with given id") => return Ok(()),
                    _ => {}
                }
            }
            Received::Closed => return Err(CdpError::Closed { reason: "connection closed".into() }),
        }
    }
}

/// Closes a page, ignoring failure (used to clean up after a failed step).
pub(crate) async fn close_quietly(conn: &Connection, target_id: &str) {
    if let Err(error) = close_page(conn, target_id, crate::cdp::DEFAULT_CALL_TIMEOUT).await {
        tracing::debug!(%error, target_id, "closing a page failed");
    }
}

/// A string field of a DevTools answer.
pub(crate) fn string_field(answer: &Value, field: &str, method: &str) -> Result<String, CdpError> {
    answer
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| CdpError::Malformed { method: method.to_owned(), what: format!("no {field}") })
}

/// Where a page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// The current document's URL.
    pub url: String,
    /// Its title (empty when the document has none).
    pub title: String,
}

/// What a function run in a page gave.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Its return value (by value, so JSON).
    Value(Value),
    /// It threw: the error's text.
    Threw(String),
}

/// A page with a DevTools session attached on `conn`.
#[derive(Debug, Clone)]
pub(crate) struct PageTarget<'a> {
    conn: &'a Connection,
    target_id: String,
    session_id: String,
}

impl<'a> PageTarget<'a> {
    /// Attaches a session to `target_id` and enables what the operations wait on: `Page`
    /// events with lifecycle events (load, navigation) and `Inspector` (crashes).
    pub(crate) async fn attach(conn: &'a Connection, target_id: &str, timeout: Duration) -> Result<Self, CdpError> {
        let session_id = tokio::time::timeout(timeout, conn.attach(target_id))
            .await
            .map_err(|_| CdpError::Timeout { method: "Target.attachToTarget".into(), after: timeout })??;
        let page = Self::existing(conn, target_id, &session_id);
        let enabled = futures_util::future::try_join3(
            page.call("Page.enable", json!({}), timeout),
            page.call("Page.setLifecycleEventsEnabled", json!({ "enabled": true }), timeout),
            page.call("Inspector.enable", json!({}), timeout),
        )
        .await;
        if let Err(error) = enabled {
            page.detach().await;
            return Err(error);
        }
        Ok(page)
    }

    /// A handle on a session attached earlier (and set up by [`attach`](Self::attach)).
    pub(crate) fn existing(conn: &'a Connection, target_id: &str, session_id: &str) -> Self {
        Self { conn, target_id: target_id.to_owned(), session_id: session_id.to_owned() }
    }

    /// The page's target id (also its main frame's id).
    pub(crate) fn target_id(&self) -> &str {
        &self.target_id
    }

    /// The attached session's id.
    pub(crate) fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Sends `method` on the page's session.
    /// A command sent while the page swaps documents (a cross-document navigation gives the
    /// new document a new frame host) is refused with "Not attached to an active page" before
    /// it reaches any handler; it is sent again, until `timeout`, as DevTools has no event for
    /// the swap's end.
    pub(crate) async fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, CdpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.conn.call_with_timeout(Some(&self.session_id), method, params.clone(), remaining).await {
                Err(error) if error.is_protocol(SWAPPING) && !remaining.is_zero() => {
                    tokio::time::sleep(SWAP_RETRY.min(remaining)).await;
                }
                other => return other,
            }
        }
    }

    /// Subscribes to the page's events (its session's, and the browser's about its target).
    pub(crate) fn events(&self) -> Events {
        self.conn.subscribe(EventScope::Page { target_id: self.target_id.clone(), session_id: self.session_id.clone() })
    }

    /// Detaches the session, ignoring failure.
    pub(crate) async fn detach(&self) {
        let params = json!({ "sessionId": self.session_id });
        if let Err(error) = self.conn.call(None, "Target.detachFromTarget", params).await {
            tracing::debug!(%error, "detaching from a page failed");
        }
    }

    /// The URL and title of the page's current document, from the browser's navigation
    /// history (never blocked by the page; right after a commit the target's own info may
    /// still show no URL).
    pub(crate) async fn location(&self, timeout: Duration) -> Result<Location, CdpError> {
        let history = self.call("Page.getNavigationHistory", json!({}), timeout).await?;
        let current = history
            .get("currentIndex")
            .and_then(Value::as_u64)
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| history.get("entries")?.as_array()?.get(index));
        let text = |name: &str| current.and_then(|entry| entry.get(name)).and_then(Value::as_str).map(str::to_owned);
        match text("url") {
            Some(url) => Ok(Location { url, title: text("title").unwrap_or_default() }),
            None => {
                Err(CdpError::Malformed { method: "Page.getNavigationHistory".into(), what: "no current entry".into() })
            }
        }
    }

    /// The execution context of the utility world in the page's main frame.
    pub(crate) async fn utility_world(&self, timeout: Duration) -> Result<i64, CdpError> {
        let answer = self
            .call(
                "Page.createIsolatedWorld",
                json!({ "frameId": self.target_id, "worldName": UTILITY_WORLD, "grantUniveralAccess": false }),
                timeout,
            )
            .await?;
        answer.get("executionContextId").and_then(Value::as_i64).ok_or_else(|| CdpError::Malformed {
            method: "Page.createIsolatedWorld".into(),
            what: "no executionContextId".into(),
        })
    }

    /// Runs `declaration` (a JavaScript function) in the utility world with `args` (JSON), and
    /// answers its (awaited) return value. A navigation that replaces the world between the
    /// two calls is retried once.
    pub(crate) async fn run_in_utility(
        &self,
        declaration: &str,
        args: &[Value],
        timeout: Duration,
    ) -> Result<Outcome, CdpError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let world = self.utility_world(timeout).await?;
            let params = json!({
                "functionDeclaration": declaration,
                "executionContextId": world,
                "arguments": args.iter().map(|value| json!({ "value": value })).collect::<Vec<_>>(),
                "returnByValue": true,
                "awaitPromise": true,
            });
            match self.call("Runtime.callFunctionOn", params, timeout).await {
                Ok(answer) => return Ok(outcome(answer)),
                Err(error) if attempts < 2 && is_lost_context(&error) => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// Runs `declaration` with `this` bound to the remote object `object_id`, answering its
    /// value (`by_value`) or the `RemoteObject` itself.
    pub(crate) async fn run_on(
        &self,
        object_id: &str,
        declaration: &str,
        args: &[Value],
        by_value: bool,
        timeout: Duration,
    ) -> Result<Result<Value, String>, CdpError> {
        let params = json!({
            "functionDeclaration": declaration,
            "objectId": object_id,
            "arguments": args.iter().map(|value| json!({ "value": value })).collect::<Vec<_>>(),
            "returnByValue": by_value,
            "awaitPromise": true,
        });
        let answer = self.call("Runtime.callFunctionOn", params, timeout).await?;
        Ok(match outcome_raw(answer) {
            (Some(details), _) => Err(super::errors::exception_text(&details)),
            (None, result) if by_value => Ok(result.get("value").cloned().unwrap_or(Value::Null)),
            (None, result) => Ok(result),
        })
    }

    /// The error that ends a wait on this page, if `event` is one: its renderer crashed, or
    /// the page (or this session) went away.
    pub(crate) fn ended_by(&self, event: &Event) -> Option<CdpError> {
        match event.method.as_str() {
            "Inspector.targetCrashed" | "Target.targetCrashed" => Some(CdpError::Crashed),
            "Target.targetDestroyed" => Some(CdpError::Detached),
            "Target.detachedFromTarget"
                if event.params.get("sessionId").and_then(Value::as_str) == Some(self.session_id.as_str()) =>
            {
                Some(CdpError::Detached)
            }
            _ => None,
        }
    }
}

/// Whether a call failed because its execution context went away (the page navigated).
fn is_lost_context(error: &CdpError) -> bool {
    error.is_protocol("Cannot find context with specified id") || error.is_protocol("Execution context was destroyed")
}

/// `Runtime.callFunctionOn`'s answer split into its exception details and its result.
fn outcome_raw(mut answer: Value) -> (Option<Value>, Value) {
    let details = answer.get_mut("exceptionDetails").map(Value::take);
    let result = answer.get_mut("result").map(Value::take).unwrap_or(Value::Null);
    (details, result)
}

fn outcome(answer: Value) -> Outcome {
    match outcome_raw(answer) {
        (Some(details), _) => Outcome::Threw(super::errors::exception_text(&details)),
        (None, result) => Outcome::Value(result.get("value").cloned().unwrap_or(Value::Null)),
    }
}

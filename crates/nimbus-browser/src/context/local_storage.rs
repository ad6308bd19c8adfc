//! Origins' `localStorage`, read from and written through pages of the context: DevTools has
//! no browser-side access to it that works for an origin no page shows.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use nimbus_core::NimbusError;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{OriginStorage, StorageItem, Viewport, origin_of};
use crate::cdp::{CdpError, Connection, Received};
use crate::page::deadline::Deadline;
use crate::page::navigate::{NavigateError, WaitUntil, navigate};
use crate::page::target::{Outcome, PageTarget, close_quietly, context_pages, create_page};

/// Lists the origin's `localStorage` entries; `null` where the document may not use it (an
/// opaque origin).
const READ: &str = "function () {
  try {
    const items = [];
    for (let i = 0; i < localStorage.length; i++) {
      const name = localStorage.key(i);
      items.push({ name, value: localStorage.getItem(name) });
    }
    return items;
  } catch (e) { return null; }
}";

/// Sets the entries; answers the error's name when one is refused (`QuotaExceededError`).
const WRITE: &str = "function (items) {
  try {
    for (const item of items) localStorage.setItem(item.name, item.value);
    return null;
  } catch (e) { return String((e && e.name) || e); }
}";

/// The document Nimbus answers a restore's navigation with.
const BLANK_DOCUMENT: &str = "<!doctype html><title></title>";

fn remaining(deadline: Instant) -> std::time::Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The `localStorage` of each http(s) origin the context's open pages show (one page read per
/// origin; origins with nothing stored are left out, as Playwright does).
pub(super) async fn read(
    conn: &Connection,
    context_id: &str,
    deadline: Instant,
) -> Result<Vec<OriginStorage>, CdpError> {
    let mut seen = HashSet::new();
    let mut origins = Vec::new();
    for info in context_pages(conn, context_id, remaining(deadline)).await? {
        let Some(origin) = origin_of(&info.url) else { continue };
        if conn.is_crashed(&info.target_id) || !seen.insert(origin.clone()) {
            continue;
        }
        let session = tokio::time::timeout_at(deadline, conn.attach(&info.target_id))
            .await
            .map_err(|_| CdpError::Timeout { method: "Target.attachToTarget".into(), after: remaining(deadline) })?;
        let session = match session {
            Ok(session) => session,
            // The page closed meanwhile.
            Err(CdpError::Protocol { .. } | CdpError::Detached) => continue,
            Err(error) => return Err(error),
        };
        let page = PageTarget::existing(conn, &info.target_id, &session);
        let outcome = page.run_in_utility(READ, &[], remaining(deadline)).await;
        page.detach().await;
        let items = match outcome {
            Ok(Outcome::Value(Value::Array(items))) => items,
            Ok(_) | Err(CdpError::Detached | CdpError::Crashed) => continue,
            Err(error) => return Err(error),
        };
        let local_storage: Vec<StorageItem> =
            items.into_iter().filter_map(|item| serde_json::from_value(item).ok()).collect();
        if !local_storage.is_empty() {
            origins.push(OriginStorage { origin, local_storage });
        }
    }
    Ok(origins)
}

/// Writes each origin's entries through a scratch page of the context, whose navigations to
/// the origins Nimbus answers itself with an empty document (`Fetch`), so no request leaves
/// the browser. The scratch page is closed whatever happens.
pub(super) async fn write(
    conn: &Connection,
    context_id: &str,
    origins: &[OriginStorage],
    deadline: Instant,
) -> Result<(), NimbusError> {
    let target = create_page(conn, context_id, Viewport::default(), remaining(deadline)).await?;
    let written = write_through(conn, &target, origins, deadline).await;
    close_quietly(conn, &target).await;
    written
}

async fn write_through(
    conn: &Connection,
    target: &str,
    origins: &[OriginStorage],
    deadline: Instant,
) -> Result<(), NimbusError> {
    let page = PageTarget::attach(conn, target, remaining(deadline)).await?;
    let mut paused = page.events();
    let patterns = json!({ "patterns": [{ "urlPattern": "*", "requestStage": "Request" }] });
    page.call("Fetch.enable", patterns, remaining(deadline)).await?;
    for (index, origin) in origins.iter().enumerate() {
        let url = format!("{}/", origin.origin);
        let timeout_ms = u64::try_from(remaining(deadline).as_millis()).unwrap_or(u64::MAX);
        let navigation_deadline = Deadline::after("storageState", timeout_ms);
        let navigated = tokio::select! {
            navigated = navigate(&page, &url, WaitUntil::Load, &navigation_deadline) => navigated,
            never = answer_requests(&page, &mut paused) => match never {},
        };
        match navigated {
            Ok(()) => {}
            Err(NavigateError::Cdp(error)) => return Err(error.into_nimbus()),
            Err(NavigateError::Timeout) => {
                return Err(
                    CdpError::Timeout { method: "Page.navigate".into(), after: remaining(deadline) }.into_nimbus()
                );
            }
            Err(NavigateError::Failed(reason)) => {
                tracing::warn!(%reason, origin = %origin.origin, "an intercepted navigation failed");
                return Err(NimbusError::internal());
            }
        }
        let items = serde_json::to_value(&origin.local_storage).map_err(|_| NimbusError::internal())?;
        match page.run_in_utility(WRITE, &[items], remaining(deadline)).await? {
            Outcome::Value(Value::Null) => {}
            Outcome::Value(refused) => {
                let field = format!("storageState.origins[{index}].localStorage");
                let reason = match refused.as_str() {
                    Some("QuotaExceededError") => {
                        "is larger than the browser's storage quota for the origin".to_owned()
                    }
                    _ => format!("was refused by the browser ({refused})"),
                };
                return Err(NimbusError::invalid_input(field, reason));
            }
            Outcome::Threw(text) => {
                tracing::warn!(%text, "writing localStorage threw");
                return Err(NimbusError::internal());
            }
        }
    }
    Ok(())
}

/// Answers every request the scratch page makes: its documents with an empty page, anything
/// else (a favicon) refused. Runs until dropped.
async fn answer_requests(page: &PageTarget<'_>, paused: &mut crate::cdp::Events) -> std::convert::Infallible {
    loop {
        let event = match paused.recv().await {
            Received::Event(event) => event,
            Received::Lagged => continue,
            Received::Closed => std::future::pending().await,
        };
        if event.method != "Fetch.requestPaused" {
            continue;
        }
        let Some(request) = event.params.get("requestId").and_then(Value::as_str) else { continue };
        let document = event.params.get("resourceType").and_then(Value::as_str) == Some("Document");
        let (method, params) = if document {
            (
                "Fetch.fulfillRequest",
                json!({ "requestId": request, "responseCode": 200,
                        "responseHeaders": [{ "name": "Content-Type", "value": "text/html; charset=utf-8" }],
                        "body": BASE64.encode(BLANK_DOCUMENT) }),
            )
        } else {
            ("Fetch.failRequest", json!({ "requestId": request, "errorReason": "BlockedByClient" }))
        };
        if let Err(error) = page.call(method, params, crate::cdp::DEFAULT_CALL_TIMEOUT).await {
            tracing::debug!(%error, method, "answering an intercepted request failed");
        }
    }
}

//! Browser contexts: one per browser session, holding its pages, cookies and storage apart
//! from every other session's (docs/browser.md, "Sessions on a browser service").
//!
//! # Layout
//! - `viewport.rs`: [`Viewport`], a page's size.
//! - `storage.rs`: [`StorageState`], Playwright's `{cookies, origins}`, and its validation.
//! - `local_storage.rs`: reading and writing an origin's `localStorage` through pages.

mod local_storage;
mod storage;
mod viewport;

use std::time::Duration;

use nimbus_core::NimbusError;
use serde_json::{Value, json};

pub use storage::{
    Cookie, CookiePartitionKey, CookiePriority, CookieSourceScheme, OriginStorage, SameSite, StorageItem, StorageState,
};
pub use viewport::{DEFAULT_VIEWPORT_HEIGHT, DEFAULT_VIEWPORT_WIDTH, Viewport};

pub(crate) use storage::origin_of;

use crate::cdp::{CdpError, Connection, DEFAULT_CALL_TIMEOUT};
use crate::page::target::create_page;

/// How long creating a context may take, its first page and restored storage included:
/// Chromium does it in well under a second; past this it is not answering.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// A session's browser context in Chromium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserContext {
    /// Chromium's `browserContextId`.
    pub context_id: String,
    /// The target id of the page created with it (the session's first page).
    pub first_page: String,
}

/// Creates a browser context with one blank page of `viewport` (its first page) and restores
/// `storage_state` into it: cookies through `Storage.setCookies`, each origin's `localStorage`
/// through a temporary page whose navigation to the origin Nimbus answers itself (no network
/// is touched).
///
/// Both inputs are validated first; errors name `viewport.…` or `storageState.…` (place them
/// with [`NimbusError::within`], e.g. `within("browser")`). Chromium not answering is
/// `browser.unavailable`. On any failure the context is disposed again.
pub async fn create(
    conn: &Connection,
    viewport: Viewport,
    storage_state: Option<StorageState>,
) -> Result<BrowserContext, NimbusError> {
    viewport.validate().map_err(|error| error.within("viewport"))?;
    if let Some(state) = &storage_state {
        state.validate().map_err(|error| error.within("storageState"))?;
    }
    let deadline = tokio::time::Instant::now() + CREATE_TIMEOUT;
    let created = conn.call(None, "Target.createBrowserContext", json!({})).await?;
    let context_id = created.get("browserContextId").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
        CdpError::Malformed { method: "Target.createBrowserContext".into(), what: "no browserContextId".into() }
    })?;
    let prepared = async {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let first_page = create_page(conn, &context_id, viewport, remaining).await?;
        if let Some(state) = &storage_state {
            restore(conn, &context_id, state, deadline).await?;
        }
        Ok::<_, NimbusError>(first_page)
    };
    match prepared.await {
        Ok(first_page) => Ok(BrowserContext { context_id, first_page }),
        Err(error) => {
            if let Err(disposal) = dispose(conn, &context_id).await {
                tracing::warn!(error = %disposal, context_id, "disposing a half-created browser context failed");
            }
            Err(error)
        }
    }
}

/// Disposes a browser context: its pages close, its cookies and storage are dropped. A
/// context Chromium no longer knows counts as disposed.
pub async fn dispose(conn: &Connection, context_id: &str) -> Result<(), NimbusError> {
    match conn.call(None, "Target.disposeBrowserContext", json!({ "browserContextId": context_id })).await {
        Ok(_) => Ok(()),
        Err(error) if error.is_protocol("Failed to find context") => Ok(()),
        Err(error) => Err(error.into_nimbus()),
    }
}

/// The context's storage in Playwright's `storageState` shape: every cookie of the context
/// (`Storage.getCookies`), and the `localStorage` of each http(s) origin one of its open pages
/// shows. A page that does not answer within [`DEFAULT_CALL_TIMEOUT`] fails the export.
pub async fn storage_state(conn: &Connection, context_id: &str) -> Result<StorageState, NimbusError> {
    let deadline = tokio::time::Instant::now() + DEFAULT_CALL_TIMEOUT;
    export(conn, context_id, deadline).await.map_err(CdpError::into_nimbus)
}

/// [`storage_state`] with its own deadline (the `page/storageState` operation's).
pub(crate) async fn export(
    conn: &Connection,
    context_id: &str,
    deadline: tokio::time::Instant,
) -> Result<StorageState, CdpError> {
    let remaining = || deadline.saturating_duration_since(tokio::time::Instant::now());
    let answer = conn
        .call_with_timeout(None, "Storage.getCookies", json!({ "browserContextId": context_id }), remaining())
        .await?;
    let cookies = answer
        .get("cookies")
        .and_then(Value::as_array)
        .map(|cookies| cookies.iter().filter_map(Cookie::from_devtools).collect())
        .unwrap_or_default();
    let origins = local_storage::read(conn, context_id, deadline).await?;
    Ok(StorageState { cookies, origins })
}

async fn restore(
    conn: &Connection,
    context_id: &str,
    state: &StorageState,
    deadline: tokio::time::Instant,
) -> Result<(), NimbusError> {
    if !state.cookies.is_empty() {
        let cookies = serde_json::to_value(&state.cookies).map_err(|_| NimbusError::internal())?;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let params = json!({ "cookies": cookies, "browserContextId": context_id });
        match conn.call_with_timeout(None, "Storage.setCookies", params, remaining).await {
            Ok(_) => {}
            Err(CdpError::Protocol { message, .. }) => {
                return Err(NimbusError::invalid_input(
                    "storageState.cookies",
                    format!("Chromium refused them: {message}"),
                ));
            }
            Err(error) => return Err(error.into_nimbus()),
        }
    }
    if !state.origins.is_empty() {
        local_storage::write(conn, context_id, &state.origins, deadline).await?;
    }
    Ok(())
}

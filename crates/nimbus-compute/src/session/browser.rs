//! Browser sessions (docs/browser.md): the browser context a session on a browser service owns
//! (made at the open, disposed at the teardown), its `page` operations and the upstream end of
//! its `cdp` sockets.
//!
//! The server keeps one DevTools connection per browser sandbox for the contexts and the page
//! operations; every `cdp` socket gets a connection of its own. All of them are dialed into the
//! sandbox's network namespace by its supervisor: Chromium's endpoint is on the sandbox's own
//! loopback, out of reach of everything else.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_browser::Dial;
use nimbus_browser::cdp::{self, Connection};
use nimbus_browser::confine::Scope;
use nimbus_browser::context::{self, BrowserContext, StorageState, Viewport};
use nimbus_browser::page::{self, PageAnswer, SessionPages};
use nimbus_core::NimbusError;
use nimbus_core::limits::{BROWSER_CDP_MAX_SOCKETS_PER_SESSION, BROWSER_DEVTOOLS_PORT, BROWSER_MAX_PAGES_PER_SESSION};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;

use super::Sessions;
use super::record::{BrowserBinding, SessionRecord};
use super::target::Channel;
use crate::sandbox::Sandboxes;

/// `browser` of a session open request (ours): the new context's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrowserOptions {
    /// The default viewport of the session's pages.
    pub viewport: Viewport,
    /// Cookies and local storage to restore into the new context.
    pub storage_state: Option<StorageState>,
}

/// What one browser session holds while it is open.
struct Live {
    pages: Arc<SessionPages>,
    sockets: AtomicUsize,
    /// `true` once the session ended: its `cdp` sockets close.
    ended: watch::Sender<bool>,
}

/// A browser sandbox's DevTools connection, once dialed. Whoever finds it missing or closed
/// dials while holding this slot alone: callers for the same sandbox wait for that dial, callers
/// for other sandboxes do not.
type ConnectionSlot = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// The browser side of the session registry.
#[derive(Default)]
pub(super) struct Browsers {
    /// One DevTools connection slot per browser sandbox (keyed by sandbox id). A std mutex: held
    /// only to find or add a slot.
    connections: Mutex<BTreeMap<String, ConnectionSlot>>,
    /// Keyed by session id.
    live: Mutex<BTreeMap<String, Arc<Live>>>,
}

/// The upstream end of a `cdp` socket: a DevTools connection of its own, the scope the relay
/// confines it to, and the session's end.
pub struct CdpUpstream {
    /// Chromium's browser endpoint, connected.
    pub upstream: WebSocketStream<TcpStream>,
    /// The session's context.
    pub scope: Scope,
    /// Turns `true` when the session ends.
    pub ended: watch::Receiver<bool>,
    /// Holds the socket's place in the session's count.
    pub slot: SocketSlot,
}

/// A `cdp` socket's place in its session's count, given back on drop.
pub struct SocketSlot(Arc<Live>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.sockets.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Dials Chromium's DevTools port inside a sandbox, through its supervisor.
fn dial(sandboxes: Arc<Sandboxes>, tenant: String, sandbox_id: String) -> Dial {
    Arc::new(move || {
        let (sandboxes, tenant, sandbox_id) = (sandboxes.clone(), tenant.clone(), sandbox_id.clone());
        Box::pin(async move {
            let (_, backend) = sandboxes.runtime(&tenant, &sandbox_id).map_err(std::io::Error::other)?;
            let stream = tokio::task::spawn_blocking(move || backend.connect(&sandbox_id, BROWSER_DEVTOOLS_PORT))
                .await
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)?;
            // (The backend's connections are `TCP_NODELAY` already.)
            stream.set_nonblocking(true)?;
            TcpStream::from_std(stream)
        })
    })
}

impl Sessions {
    /// The DevTools connection of a browser sandbox, connected on first use and again after it
    /// dropped. A dial holds its own sandbox's slot only: a slow one keeps no other browser
    /// service's sessions waiting.
    async fn browser_connection(&self, tenant: &str, sandbox_id: &str) -> Result<Connection, NimbusError> {
        let slot = {
            let mut slots = self.browsers.connections.lock().unwrap_or_else(PoisonError::into_inner);
            // A slot goes once its connection closed (its sandbox may be gone), unless a caller
            // holds it: one is dialing, or is about to.
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.try_lock().is_ok_and(|held| held.as_ref().is_some_and(|c| !c.is_closed()))
            });
            slots.entry(sandbox_id.to_owned()).or_default().clone()
        };
        let mut held = slot.lock().await;
        if let Some(open) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(open.clone());
        }
        let dial = dial(self.sandboxes.clone(), tenant.to_owned(), sandbox_id.to_owned());
        let connection = Connection::connect(&dial).await?;
        *held = Some(connection.clone());
        Ok(connection)
    }

    /// Makes a new session's browser context (with its first page) in the service's Chromium.
    pub(super) async fn open_browser(
        &self,
        tenant: &str,
        sandbox_id: &str,
        options: BrowserOptions,
    ) -> Result<(BrowserBinding, Viewport), NimbusError> {
        let connection = self.browser_connection(tenant, sandbox_id).await?;
        let viewport = options.viewport;
        let made = context::create(&connection, options.viewport, options.storage_state)
            .await
            .map_err(|e| e.within("browser"))?;
        Ok((BrowserBinding { context_id: made.context_id, first_page: made.first_page }, viewport))
    }

    /// Registers an opened browser session's live state.
    pub(super) fn browser_opened(&self, record: &SessionRecord, viewport: Viewport) {
        if let Some(binding) = &record.browser {
            self.browsers
                .live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(record.id.clone(), live(binding, viewport));
        }
    }

    /// Disposes a context made for an open that then failed.
    pub(super) async fn discard_browser(&self, tenant: &str, sandbox_id: &str, binding: &BrowserBinding) {
        if let Ok(connection) = self.browser_connection(tenant, sandbox_id).await
            && let Err(e) = context::dispose(&connection, &binding.context_id).await
        {
            tracing::debug!(error = %e, "cannot dispose a browser context");
        }
    }

    /// Ends an ended session's browser side: its `cdp` sockets close and its context (pages,
    /// cookies, storage) is disposed, when its Chromium still runs.
    pub(super) async fn teardown_browser(&self, record: &SessionRecord) {
        let Some(binding) = &record.browser else { return };
        if let Some(live) = self.browsers.live.lock().unwrap_or_else(PoisonError::into_inner).remove(&record.id) {
            live.ended.send_replace(true);
        }
        let Some(sandbox_id) = record.snapshot.sandbox_id() else { return };
        if self.sandboxes.runtime(&record.tenant_id, sandbox_id).is_ok() {
            self.discard_browser(&record.tenant_id, sandbox_id, binding).await;
        }
    }

    /// The live state of an open browser session (rebuilt after a server restart).
    fn browser_live(&self, record: &SessionRecord) -> Result<Arc<Live>, NimbusError> {
        let binding = record.browser.as_ref().ok_or_else(|| not_a_browser(record))?;
        let mut lives = self.browsers.live.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(lives.entry(record.id.clone()).or_insert_with(|| live(binding, Viewport::default())).clone())
    }

    /// Runs one `page` operation (`POST /api/sessions/{id}/page/{operation}`).
    pub async fn page_operation(
        &self,
        tenant: Option<&str>,
        id: &str,
        operation: &str,
        body: Value,
    ) -> Result<PageAnswer, NimbusError> {
        let (_, bound) = self.bind(tenant, id, Channel::Page).await?;
        let live = self.browser_live(&bound.session)?;
        let connection = self.browser_connection(&bound.session.tenant_id, &bound.sandbox.id).await?;
        page::run(&connection, &live.pages, operation, body).await
    }

    /// Opens the upstream end of a `cdp` socket (at most
    /// [`BROWSER_CDP_MAX_SOCKETS_PER_SESSION`] at once, else 429).
    pub async fn cdp(&self, tenant: Option<&str>, id: &str) -> Result<CdpUpstream, NimbusError> {
        let (_, bound) = self.bind(tenant, id, Channel::Cdp).await?;
        let live = self.browser_live(&bound.session)?;
        let held = live.sockets.fetch_add(1, Ordering::AcqRel);
        let slot = SocketSlot(live.clone());
        if held >= BROWSER_CDP_MAX_SOCKETS_PER_SESSION {
            return Err(NimbusError::resource_exhausted(
                "cdp sockets",
                BROWSER_CDP_MAX_SOCKETS_PER_SESSION as u64,
                Some(held as u64),
            ));
        }
        let dial = dial(self.sandboxes.clone(), bound.session.tenant_id.clone(), bound.sandbox.id.clone());
        let upstream = cdp::open_socket(&dial).await?;
        let scope = Scope { context_id: live.pages.context_id().to_owned(), max_pages: BROWSER_MAX_PAGES_PER_SESSION };
        Ok(CdpUpstream { upstream, scope, ended: live.ended.subscribe(), slot })
    }
}

fn live(binding: &BrowserBinding, viewport: Viewport) -> Arc<Live> {
    Arc::new(Live {
        pages: Arc::new(SessionPages::new(
            &BrowserContext { context_id: binding.context_id.clone(), first_page: binding.first_page.clone() },
            viewport,
        )),
        sockets: AtomicUsize::new(0),
        ended: watch::channel(false).0,
    })
}

/// 400: the session is not on a browser service (it cannot have been opened with `page` or
/// `cdp` then; kept for records written before browser sessions existed).
fn not_a_browser(record: &SessionRecord) -> NimbusError {
    NimbusError::invalid_input("channel", format!("session `{}` has no browser context", record.id))
}

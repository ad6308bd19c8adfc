//! [`SessionPages`]: what the server keeps in memory per browser session for its `page`
//! operations: the context, the order its pages were opened in, the session's default
//! viewport, and the DevTools session Nimbus keeps attached to each page it drove.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::target::TargetInfo;
use crate::context::{BrowserContext, Viewport};

/// One browser session's pages, as the `page` operations see them. Shared by the session's
/// concurrent requests (interior locking); build one per session with [`SessionPages::new`]
/// right after [`context::create`](crate::context::create).
#[derive(Debug)]
pub struct SessionPages {
    context_id: String,
    first_page: String,
    viewport: Viewport,
    /// A std mutex: held only to read or update the maps, never across an await.
    state: Mutex<State>,
    /// Serialises `open`, so the page count it checks is the one it adds to.
    open_gate: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    /// Pages opened by the operations (the first page first), in opening order.
    opened: Vec<String>,
    /// Page → the DevTools session attached to it, and the connection it is valid on.
    attached: HashMap<String, (u64, String)>,
}

impl SessionPages {
    /// The pages of a session whose context is `context` (its first page first in the
    /// order), with `viewport` for pages `open` creates without one.
    pub fn new(context: &BrowserContext, viewport: Viewport) -> Self {
        Self {
            context_id: context.context_id.clone(),
            first_page: context.first_page.clone(),
            viewport,
            state: Mutex::new(State { opened: vec![context.first_page.clone()], attached: HashMap::new() }),
            open_gate: tokio::sync::Mutex::new(()),
        }
    }

    /// The session's browser context id.
    pub fn context_id(&self) -> &str {
        &self.context_id
    }

    /// The session's first page (which may have been closed since).
    pub fn first_page(&self) -> &str {
        &self.first_page
    }

    /// The viewport of pages `open` creates without one.
    pub fn viewport(&self) -> Viewport {
        self.viewport
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The context's open pages in the session's order: those the operations opened, in
    /// opening order, then the others (a `cdp` client's) in `infos` order. Forgets pages no
    /// longer open.
    pub(crate) fn ordered(&self, infos: Vec<TargetInfo>) -> Vec<TargetInfo> {
        let mut state = self.lock();
        state.opened.retain(|page| infos.iter().any(|info| &info.target_id == page));
        state.attached.retain(|page, _| infos.iter().any(|info| &info.target_id == page));
        let mut ordered: Vec<TargetInfo> =
            state.opened.iter().filter_map(|page| infos.iter().find(|info| &info.target_id == page).cloned()).collect();
        ordered.extend(infos.into_iter().filter(|info| !state.opened.contains(&info.target_id)));
        ordered
    }

    /// Records a page `open` created, last in the order.
    pub(crate) fn opened(&self, target_id: &str) {
        self.lock().opened.push(target_id.to_owned());
    }

    /// Forgets a closed page.
    pub(crate) fn forget(&self, target_id: &str) {
        let mut state = self.lock();
        state.opened.retain(|page| page != target_id);
        state.attached.remove(target_id);
    }

    /// The session attached to `target_id` on connection `connection_id`, if any.
    pub(crate) fn attached(&self, connection_id: u64, target_id: &str) -> Option<String> {
        match self.lock().attached.get(target_id) {
            Some((connection, session)) if *connection == connection_id => Some(session.clone()),
            _ => None,
        }
    }

    /// Remembers the session attached to `target_id`, unless another request attached one
    /// first on the same connection: then that one is answered (and the caller detaches its
    /// own).
    pub(crate) fn remember(&self, connection_id: u64, target_id: &str, session_id: &str) -> String {
        let mut state = self.lock();
        match state.attached.get(target_id) {
            Some((connection, existing)) if *connection == connection_id => existing.clone(),
            _ => {
                state.attached.insert(target_id.to_owned(), (connection_id, session_id.to_owned()));
                session_id.to_owned()
            }
        }
    }

    /// Drops the remembered session of `target_id` (it detached).
    pub(crate) fn drop_session(&self, target_id: &str) {
        self.lock().attached.remove(target_id);
    }

    /// Held while `open` counts and creates.
    pub(crate) async fn open_gate(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.open_gate.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> TargetInfo {
        TargetInfo { target_id: id.into(), url: format!("https://{id}/"), title: id.into() }
    }

    fn ids(pages: &[TargetInfo]) -> Vec<&str> {
        pages.iter().map(|p| p.target_id.as_str()).collect()
    }

    fn pages() -> SessionPages {
        SessionPages::new(&BrowserContext { context_id: "C".into(), first_page: "first".into() }, Viewport::default())
    }

    #[test]
    fn opened_pages_come_first_in_opening_order_then_the_clients() {
        let pages = pages();
        pages.opened("b");
        pages.opened("a");
        let listed = vec![info("client2"), info("a"), info("first"), info("client1"), info("b")];
        assert_eq!(ids(&pages.ordered(listed)), ["first", "b", "a", "client2", "client1"]);
    }

    #[test]
    fn the_default_page_moves_on_when_the_first_closes() {
        let pages = pages();
        pages.opened("b");
        assert_eq!(ids(&pages.ordered(vec![info("client"), info("b")])), ["b", "client"]);
        assert!(pages.ordered(Vec::new()).is_empty());
    }

    #[test]
    fn sessions_are_per_connection_and_the_first_attach_wins() {
        let pages = pages();
        assert_eq!(pages.remember(1, "first", "S1"), "S1");
        assert_eq!(pages.remember(1, "first", "S2"), "S1");
        assert_eq!(pages.attached(1, "first").as_deref(), Some("S1"));
        assert_eq!(pages.attached(2, "first"), None, "a session is valid on its own connection only");
        assert_eq!(pages.remember(2, "first", "S3"), "S3");
        pages.forget("first");
        assert_eq!(pages.attached(2, "first"), None);
    }
}

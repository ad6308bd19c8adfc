//! What one socket owns: browser contexts, targets, flat DevTools sessions and windows, each
//! bounded so a hostile client cannot grow them without limit.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use serde_json::Value;

use super::MAX_TRACKED;
use super::message::{context_of, target_id_of, type_of};

/// Target types a client may see and drive in its contexts: pages and what runs in them.
/// Chromium's own UI (`browser_ui`: the omnibox popup, a privileged WebUI page present in every
/// context), extensions' pages and the browser target are not the session's.
const OWNABLE_TYPES: [&str; 9] = [
    "page",
    "tab",
    "iframe",
    "worker",
    "shared_worker",
    "service_worker",
    "worklet",
    "auction_worklet",
    "shared_storage_worklet",
];

/// Whether a `TargetInfo`'s type is one a session may own.
pub(super) fn ownable_type(info: &Value) -> bool {
    type_of(info).is_some_and(|kind| OWNABLE_TYPES.contains(&kind))
}

/// An owned flat session: the session it was attached on (`None` for the browser session), so
/// a parent's detach forgets its children.
#[derive(Debug, Clone)]
struct SessionEntry {
    parent: Option<String>,
}

/// The socket's possessions. Contexts are authoritative (the session's, and the ones this
/// socket created); targets and windows are a cache of what Chromium has shown to be in an
/// owned context (forgetting one only costs a re-check, never a wrong answer); sessions are
/// exactly the attachments Chromium reported for owned targets.
#[derive(Debug)]
pub(super) struct Owned {
    session_context: String,
    created: Vec<String>,
    /// `Target.createBrowserContext` commands sent and not yet answered: they count against
    /// the cap on created contexts.
    creating: usize,
    targets: Recent<String, String>,
    sessions: HashMap<String, SessionEntry>,
    windows: Recent<i64, ()>,
}

impl Owned {
    pub fn new(session_context: String) -> Owned {
        Owned {
            session_context,
            created: Vec::new(),
            creating: 0,
            targets: Recent::new(MAX_TRACKED),
            sessions: HashMap::new(),
            windows: Recent::new(MAX_TRACKED),
        }
    }

    /// The session's own context, which plays the browser's default context for the client.
    pub fn session_context(&self) -> &str {
        &self.session_context
    }

    pub fn owns_context(&self, id: &str) -> bool {
        id == self.session_context || self.created.iter().any(|c| c == id)
    }

    /// Whether the context is one this socket created (and so may dispose).
    pub fn created_context(&self, id: &str) -> bool {
        self.created.iter().any(|c| c == id)
    }

    /// Contexts this socket created or is creating.
    pub fn created_or_creating(&self) -> usize {
        self.created.len() + self.creating
    }

    pub fn creating_started(&mut self) {
        self.creating += 1;
    }

    /// A `Target.createBrowserContext` was answered: with the new context's id on success.
    pub fn creating_finished(&mut self, created: Option<&str>) {
        self.creating = self.creating.saturating_sub(1);
        if let Some(id) = created
            && !self.owns_context(id)
        {
            self.created.push(id.to_owned());
        }
    }

    /// A created context was disposed: it and its targets are no longer ours.
    pub fn context_disposed(&mut self, id: &str) {
        self.created.retain(|c| c != id);
        self.targets.retain(|_, context| context != id);
    }

    /// Takes the created contexts (to dispose them when the socket ends).
    pub fn take_created(&mut self) -> Vec<String> {
        std::mem::take(&mut self.created)
    }

    pub fn owns_target(&self, id: &str) -> bool {
        self.targets.contains(id)
    }

    pub fn add_target(&mut self, id: &str, context: &str) {
        self.targets.insert(id.to_owned(), context.to_owned());
    }

    pub fn forget_target(&mut self, id: &str) {
        self.targets.remove(id);
    }

    /// Records the target a `TargetInfo` describes when it is of an ownable type in an owned
    /// context; answers whether it is.
    pub fn note_target(&mut self, info: &Value) -> bool {
        match (target_id_of(info), context_of(info)) {
            (Some(target), Some(context)) if self.owns_context(context) && ownable_type(info) => {
                self.add_target(target, context);
                true
            }
            _ => false,
        }
    }

    pub fn owns_session(&self, id: &str) -> bool {
        self.sessions.contains_key(id)
    }

    /// Whether one more session may be tracked.
    pub fn session_room(&self) -> bool {
        self.sessions.len() < MAX_TRACKED
    }

    /// Records an owned session; false (and nothing recorded) when the table is full.
    pub fn add_session(&mut self, id: &str, parent: Option<&str>) -> bool {
        if self.sessions.contains_key(id) {
            return true;
        }
        if !self.session_room() {
            return false;
        }
        self.sessions.insert(id.to_owned(), SessionEntry { parent: parent.map(str::to_owned) });
        true
    }

    /// Forgets a session and every session attached through it.
    pub fn forget_session(&mut self, id: &str) {
        if self.sessions.remove(id).is_none() {
            return;
        }
        let mut gone = vec![id.to_owned()];
        while let Some(parent) = gone.pop() {
            let children: Vec<String> = self
                .sessions
                .iter()
                .filter(|(_, entry)| entry.parent.as_deref() == Some(parent.as_str()))
                .map(|(child, _)| child.clone())
                .collect();
            for child in children {
                self.sessions.remove(&child);
                gone.push(child);
            }
        }
    }

    pub fn owns_window(&self, id: i64) -> bool {
        self.windows.contains(&id)
    }

    pub fn add_window(&mut self, id: i64) {
        self.windows.insert(id, ());
    }

    #[cfg(test)]
    pub fn tracked_targets(&self) -> usize {
        self.targets.len()
    }

    #[cfg(test)]
    pub fn tracked_sessions(&self) -> usize {
        self.sessions.len()
    }
}

/// A map that holds at most `cap` entries, forgetting the oldest insertion first.
#[derive(Debug)]
pub(super) struct Recent<K, V> {
    entries: HashMap<K, (V, u64)>,
    /// Insertion order, with stale positions (removed or re-inserted keys) skipped lazily and
    /// compacted when they outnumber the live ones.
    order: VecDeque<(u64, K)>,
    next: u64,
    cap: usize,
}

impl<K: Eq + Hash + Clone, V> Recent<K, V> {
    pub fn new(cap: usize) -> Recent<K, V> {
        Recent { entries: HashMap::new(), order: VecDeque::new(), next: 0, cap: cap.max(1) }
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries.contains_key(key)
    }

    pub fn insert(&mut self, key: K, value: V) {
        let position = self.next;
        self.next += 1;
        self.entries.insert(key.clone(), (value, position));
        self.order.push_back((position, key));
        while self.entries.len() > self.cap {
            let Some((position, key)) = self.order.pop_front() else { break };
            if self.entries.get(&key).is_some_and(|(_, p)| *p == position) {
                self.entries.remove(&key);
            }
        }
        if self.order.len() > 2 * self.cap {
            let entries = &self.entries;
            self.order.retain(|(position, key)| entries.get(key).is_some_and(|(_, p)| p == position));
        }
    }

    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries.remove(key);
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.entries.retain(|key, (value, _)| keep(key, value));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_forgets_the_oldest_beyond_its_cap() {
        let mut recent = Recent::new(3);
        for key in 0..5 {
            recent.insert(key, ());
        }
        assert!(!recent.contains(&0) && !recent.contains(&1));
        assert!(recent.contains(&2) && recent.contains(&3) && recent.contains(&4));
        // Re-inserting refreshes a key's age.
        recent.insert(2, ());
        recent.insert(5, ());
        assert!(recent.contains(&2) && !recent.contains(&3));
        assert_eq!(recent.len(), 3);
    }

    #[test]
    fn recent_order_stays_bounded_under_churn() {
        let mut recent = Recent::new(4);
        for round in 0..10_000 {
            recent.insert(round % 2, ());
            recent.remove(&(round % 2));
        }
        assert!(recent.order.len() <= 8);
    }

    #[test]
    fn forgetting_a_session_forgets_its_children() {
        let mut owned = Owned::new("C".into());
        assert!(owned.add_session("tab", None));
        assert!(owned.add_session("page", Some("tab")));
        assert!(owned.add_session("frame", Some("page")));
        assert!(owned.add_session("other", None));
        owned.forget_session("tab");
        assert!(!owned.owns_session("page") && !owned.owns_session("frame"));
        assert!(owned.owns_session("other"));
    }
}

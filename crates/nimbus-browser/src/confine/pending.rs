//! The proxy's command ids: every command Chromium sees carries one, mapped to whoever waits
//! for its reply. A client's ids never reach Chromium, so any integer a client picks is fine
//! and the proxy's own commands cannot collide with the client's.

use std::collections::HashMap;

use serde_json::Number;

use super::message::Command;
use super::rules::{Check, Hook};

/// Who waits for the reply to a command the proxy sent.
#[derive(Debug)]
pub(super) enum Waiter {
    /// The client, under its own id; the hook says what to learn from the reply.
    Client { id: Number, hook: Hook },
    /// The proxy, to decide on a client's held command.
    Check { check: Check, held: Command },
    /// Nobody: the proxy's own command (releasing a foreign target); the reply is dropped.
    Own,
    /// The end of the socket: disposing a created context.
    Teardown,
}

/// Commands sent to Chromium and not yet answered. An entry lives until its reply arrives.
#[derive(Debug)]
pub(super) struct Pending {
    waiters: HashMap<u32, Waiter>,
    next: u32,
}

/// Chromium reads ids as 32-bit signed integers.
const LAST_ID: u32 = i32::MAX as u32;

impl Pending {
    pub fn new() -> Pending {
        Pending { waiters: HashMap::new(), next: 1 }
    }

    /// Registers a waiter under a fresh id (1 ..= i32::MAX, wrapping, never one in use).
    pub fn add(&mut self, waiter: Waiter) -> u32 {
        loop {
            let id = self.next;
            self.next = if self.next >= LAST_ID { 1 } else { self.next + 1 };
            if let std::collections::hash_map::Entry::Vacant(slot) = self.waiters.entry(id) {
                slot.insert(waiter);
                return id;
            }
        }
    }

    /// Takes the waiter of a reply's id; `None` for an id the proxy has no command under.
    pub fn take(&mut self, id: u32) -> Option<Waiter> {
        self.waiters.remove(&id)
    }

    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    #[cfg(test)]
    pub fn set_next(&mut self, next: u32) {
        self.next = next;
    }
}

//! The DevTools (CDP) client: one WebSocket to Chromium's browser endpoint, over which Nimbus
//! manages browser contexts and drives the `page` operations.
//!
//! Everything Chromium sends is untrusted (it renders hostile pages): messages are bounded by
//! [`BROWSER_CDP_MAX_MESSAGE_BYTES`](nimbus_core::limits::BROWSER_CDP_MAX_MESSAGE_BYTES),
//! malformed ones are dropped, and every call has a deadline, so nothing waits forever.
//!
//! # Layout
//! - `socket.rs`: [`open_socket`], the browser endpoint's WebSocket (`GET /json/version`, then
//!   the handshake), shared with the `cdp` channel's relay.
//! - `connection.rs`: [`Connection`], calls matched to answers, a reader task, and what the
//!   reader learns on the way (sessions, crashed targets).
//! - `events.rs`: event subscriptions ([`EventScope`], [`Events`]).
//! - `error.rs`: [`CdpError`], why a call failed.

mod connection;
mod error;
mod events;
mod socket;

pub use connection::{Connection, DEFAULT_CALL_TIMEOUT};
pub use error::{CdpError, unavailable};
pub use events::{Event, EventScope, Events, Received};
pub use socket::{CONNECT_TIMEOUT, open_socket};

//! Browser control for Nimbus's builtIn `browser` service: a DevTools (CDP) client for Chromium
//! running in a sandbox, the `cdp` channel's confinement of a client to one session's browser
//! context, and the `page` operations made for agents (docs/browser.md).
//!
//! The crate never opens a connection by address: the caller hands it a [`Dial`] that opens a
//! TCP stream to Chromium's DevTools port inside the sandbox's network namespace.

pub mod cdp;
pub mod confine;
pub mod context;
pub mod launch;
pub mod page;
pub mod relay;
mod url;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpStream;

/// Opens a fresh TCP stream to Chromium's DevTools endpoint (inside the sandbox).
pub type Dial = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>> + Send + Sync>;

//! `nimbus-server`: the HTTP surface of Nimbus.
//!
//! # Layout
//! - [`serve`]: start-up in the contract's order (data-directory lock, token, storage, bind,
//!   discovery file) and graceful shutdown.
//! - [`routes`]: the route table (**API boundary**) and one handler file per resource.
//! - [`wire`]: request bodies of the core data routes; [`sandbox_wire`]: the sandbox routes'
//!   strict bodies and the `Sandbox` resource; [`service_wire`]: the service routes' bodies,
//!   the definition resource, the runtime view and the service catalog file;
//!   [`health_check`]: the HTTP client of external services' health loops.
//! - [`schedule_wire`]: the scheduling routes' bodies (job targets, cron schedules) and the job
//!   and cron resources.
//! - [`body`], [`params`]: JSON bodies and path/query parameters with contract errors.
//! - [`envelope`], [`request_id`]: the error envelope and request ids.
//! - [`keep_alive`]: the rest of a request body answered early is read, or the close announced,
//!   so the connection stays usable.
//! - [`auth`]: the admin token file, cookies, origin policy.
//! - [`functions`]: the functions runtime's host (invocations' data access through the engine
//!   and the scheduler), the scheduler's runner of function targets, deploys.
//! - [`convex_wire`]: Convex's HTTP protocol on the deployment URL `/convex/{t}` (the request
//!   body, `convex_encoded_json` arguments, answer bodies).
//! - [`capabilities`]: what this build offers; [`discovery`]: `server.json`.
//! - [`mcp`]: `/mcp`, the MCP server on streamable HTTP, its tools answered in process.
//!
//! Only this crate knows HTTP and JSON wire shapes; the engine below it knows neither.

pub mod auth;
pub mod body;
pub mod capabilities;
pub mod convex_wire;
pub mod discovery;
pub mod egress;
pub mod envelope;
pub mod functions;
#[cfg(test)]
mod generated_docs;
pub mod health_check;
pub mod keep_alive;
pub mod mcp;
pub(crate) mod openapi;
pub mod params;
pub mod realtime_wire;
pub mod request_id;
pub mod routes;
pub mod sandbox_wire;
pub mod schedule_wire;
pub mod serve;
pub mod service_wire;
pub mod session_wire;
pub mod state;
pub mod tenant_removal;
pub mod wire;

pub use serve::{EgressOptions, ServerConfig, StartError, run};

//! `nimbus-mcp`: the Model Context Protocol server of Nimbus, a front end over the Nimbus HTTP
//! API. Every tool and resource is a request through a [`Backend`]: `nimbus-server` implements
//! it in process for `/mcp` (streamable HTTP), `nimbus mcp` over HTTP to a running server
//! (stdio). Neither transport nor backend lives here.
//!
//! # Layout
//! - [`backend`]: the [`Backend`] trait and the request and answer it speaks.
//! - [`server`]: [`NimbusMcp`], the handler (`initialize`, tools, resources).
//! - [`tools`]: the tools, `data` (tenants, documents, schemas, functions, jobs) and `compute`
//!   (sandboxes, `sandbox_exec`, sandbox files).
//! - [`resources`]: the manual (`llms.txt`, docs pages, error catalog, capabilities).
//! - [`error`]: a failed call as an MCP tool error carrying the catalogued error.

pub mod backend;
pub mod error;
pub mod resources;
pub mod server;
pub mod tools;

pub use backend::{Answer, Backend, BackendError, Body, Collector, Method, Request};
pub use server::NimbusMcp;

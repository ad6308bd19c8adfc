//! The tools, one file per area; each tool is one or a few requests through the backend.

pub mod compute;
pub mod data;

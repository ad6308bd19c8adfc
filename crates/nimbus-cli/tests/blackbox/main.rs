//! Black-box integration suite: every test spawns the built `nimbus` binary with its own data
//! directory, HOME and XDG directories, and talks to it over loopback HTTP only.

mod harness;

mod auth;
mod browser;
mod browser_image;
mod cli_resources;
mod cli_transfer;
mod convex;
mod coverage;
mod crash;
mod disk;
mod documents;
mod egress;
mod errors;
mod faults;
mod functions;
mod functions_cli;
mod images;
mod journal;
mod keepalive;
mod openapi;
mod permissions;
mod ports;
mod powercut;
mod query;
mod realtime;
mod registry;
mod registry_auth;
mod restart;
mod sandboxes;
mod scheduling;
mod schema;
mod secrets;
mod services;
mod sessions;
mod supervisors;
mod syscalls;
mod system;
mod tenants;
mod upstream;
mod userns;

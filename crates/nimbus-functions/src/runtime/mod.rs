//! The isolate runtime: QuickJS isolates ([`isolate`]), the host object they call
//! ([`bridge`]), their CPU and wall-clock budget ([`budget`]), module loading ([`loader`]), the
//! worker threads they run on ([`workers`]) and each tenant's share of them ([`slots`]).

pub(crate) mod bridge;
pub(crate) mod budget;
pub(crate) mod isolate;
pub(crate) mod loader;
pub(crate) mod slots;
pub(crate) mod workers;

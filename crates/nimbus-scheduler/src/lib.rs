//! `nimbus-scheduler`: time-driven work. One-shot jobs and crons are stored per tenant by
//! `nimbus-engine`; this crate decides *when* they run and drives them.
//!
//! # Layout
//! - [`cron`]: cron expressions (5 or 6 fields, names, macros) and their next firing in an
//!   IANA time zone (DST gaps skipped, overlaps fired once).
//! - [`schedule`]: [`Schedule`], an interval or a cron expression with its zone.
//! - [`clock`]: [`Clock`], the injectable source of now.
//! - [`scheduler`]: [`Scheduler`], the per-server loop: recovery, due jobs in `(run_at, id)`
//!   order, cron firings without pile-up or overlap, retention.
//!
//! The crate knows no HTTP: routes validate wire shapes and call [`Scheduler`]'s verbs.

pub mod clock;
pub mod cron;
pub mod schedule;
pub mod scheduler;

pub use clock::{Clock, ManualClock, SystemClock};
pub use schedule::Schedule;
pub use scheduler::{CronChange, Scheduler};

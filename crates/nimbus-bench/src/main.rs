//! `nimbus-bench`: benchmarks that measure Nimbus against a baseline in the same run.
//!
//! `nimbus-bench store <path to nimbus>` measures (a) raw rusqlite inserts with Nimbus's
//! durability settings and one transaction per row, (b) Nimbus HTTP inserts at concurrency 1
//! and 32, (c) Nimbus HTTP point reads, and prints ops/s with the ratios.
//!
//! `nimbus-bench realtime <path to nimbus>` measures write→push latency over `/ws` with 1, 100
//! and 1,000 subscribers and the server's RSS with 5,000 idle sockets;
//! `nimbus-bench realtime-fanout <path to nimbus> <subscribers>` measures only one fan-out size
//! (for profiling).
//!
//! `nimbus-bench sandbox <path to nimbus> <path to runc>` measures (a) the raw runtime (runc)
//! starting `/bin/true` on the same unpacked image root, (b) Nimbus sandbox create→ready, (c) the
//! memory of 100 concurrent idle sandboxes (server plus supervisors), (d) session exec round
//! trips against `runc exec`, stdio echo over the WebSocket and time to first command, and prints
//! medians, p99 and ratios.
//!
//! `nimbus-bench functions <path to nimbus>` measures tenants' functions against plain HTTP
//! reads and inserts and against live queries: call throughput, isolate creation and idle
//! memory, and subscription latency on the client and the server side (`functions.rs`).
//!
//! `nimbus-bench network <path to nimbus>` measures the ports route (HTTP into a sandbox's port
//! through the server) against the same requests made from inside the sandbox's network
//! namespace, and the egress proxy (a sandbox's plain-HTTP requests to a server on the host)
//! against the same requests made from the host: latency p50/p99 and throughput (`network.rs`).
//!
//! `nimbus-bench browser <path to nimbus> <cache dir>` measures a browser service: session open →
//! first screenshot, a DevTools round trip through the `cdp` channel against the same call made
//! directly inside the sandbox's network namespace, and the service's memory at rest
//! (`browser.rs`).

mod browser;
mod client;
mod functions;
mod network;
mod realtime;
mod sandbox;
mod schedule;
mod server;
mod session;
mod store;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result =
        match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["store", nimbus] => store::run(nimbus),
            ["realtime", nimbus] => realtime::run(nimbus),
            ["realtime-fanout", nimbus, subscribers] => realtime::fanout(nimbus, subscribers),
            ["sandbox", nimbus, runc] => sandbox::run(nimbus, runc),
            ["functions", nimbus] => functions::run(nimbus),
            ["network", nimbus] => network::run(nimbus, network::Halves::Both),
            ["network", nimbus, "egress"] => network::run(nimbus, network::Halves::Egress),
            ["browser", nimbus, cache_dir] => browser::run(nimbus, cache_dir),
            _ => Err("usage: nimbus-bench store <nimbus binary> | nimbus-bench realtime <nimbus binary> | nimbus-bench realtime-fanout <nimbus binary> <subscribers> | nimbus-bench sandbox <nimbus binary> <runc binary> | nimbus-bench functions <nimbus binary> | nimbus-bench network <nimbus binary> [egress] | nimbus-bench browser <nimbus binary> <browser image cache dir>"
                .to_owned()),
        };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

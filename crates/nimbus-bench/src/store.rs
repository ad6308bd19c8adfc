//! The storage benchmark: raw rusqlite per-row commits against Nimbus HTTP writes and reads.

use std::time::{Duration, Instant};

use hyper::Method;
use rusqlite::{Connection, params};

use crate::client::{Request, load};
use crate::server::Server;

/// Rows the raw baseline inserts.
const RAW_ROWS: usize = 5000;
/// Inserts per connection at concurrency 1.
const SERIAL_INSERTS: usize = 2000;
/// Connections of the concurrent insert run, and inserts per connection.
const CONCURRENT_WORKERS: usize = 32;
const CONCURRENT_INSERTS: usize = 500;
/// Documents read back, connections and reads per connection of the point-read run.
const READ_DOCS: usize = 1000;
const READ_WORKERS: usize = 16;
const READS_PER_WORKER: usize = 5000;

/// Trials of each throughput case; the table reports the median, since one short run on a
/// shared two-core machine varies by tens of percent.
const TRIALS: usize = 3;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Raw SQLite: the same durability settings as Nimbus (WAL, synchronous=FULL), one transaction
/// per row (autocommit), a document-shaped row with a JSON body.
fn raw_inserts() -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let conn = Connection::open(dir.path().join("raw.sqlite3")).map_err(|e| e.to_string())?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| e.to_string())?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(|e| e.to_string())?;
    conn.execute_batch(
        "CREATE TABLE documents (tbl TEXT NOT NULL, id TEXT NOT NULL, creation_time INTEGER NOT NULL,
         update_time INTEGER NOT NULL, fields TEXT NOT NULL, PRIMARY KEY (tbl, id)) WITHOUT ROWID;",
    )
    .map_err(|e| e.to_string())?;
    let mut stmt = conn.prepare("INSERT INTO documents VALUES ('bench', ?1, 0, 0, ?2)").map_err(|e| e.to_string())?;
    let start = Instant::now();
    for i in 0..RAW_ROWS {
        stmt.execute(params![format!("{i:026}"), format!(r#"{{"n":{i},"title":"row {i}"}}"#)])
            .map_err(|e| e.to_string())?;
    }
    Ok(RAW_ROWS as f64 / start.elapsed().as_secs_f64())
}

fn insert(i: usize) -> Request {
    Request {
        method: Method::POST,
        path: "/api/tenants/bench/documents".into(),
        body: Some(format!(r#"{{"table":"bench","fields":{{"n":{i},"title":"row {i}"}}}}"#)),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the whole storage benchmark and prints the table.
pub fn run(nimbus: &str) -> Result<(), String> {
    let raw = median((0..TRIALS).map(|_| raw_inserts()).collect::<Result<_, _>>()?);
    // One client thread: the load generator shares this machine's two cores with the server, so
    // it should spend as little CPU on scheduling as it can.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let server = Server::start(nimbus)?;
    runtime.block_on(async {
        let (address, token) = (server.address.as_str(), server.token.as_str());
        let create = |_: usize, _: usize| Request {
            method: Method::POST,
            path: "/api/tenants".into(),
            body: Some(r#"{"id":"bench"}"#.into()),
        };
        load(address, token, 1, 1, 201, create).await?;
        let serial = load(address, token, 1, SERIAL_INSERTS, 201, |_, i| insert(i)).await?;
        let mut trials = Vec::with_capacity(TRIALS);
        for trial in 0..TRIALS {
            let make = move |w: usize, i: usize| insert(trial * 10_000_000 + w * 100_000 + i);
            trials.push(load(address, token, CONCURRENT_WORKERS, CONCURRENT_INSERTS, 201, make).await?);
        }
        trials.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
        let concurrent = trials.swap_remove(TRIALS / 2);

        // Point reads: a table of READ_DOCS documents, read back by id in a fixed pseudo-random order.
        let ids: Vec<String> = list_ids(address, token).await?;
        if ids.is_empty() {
            return Err("no documents to read".to_owned());
        }
        let ids = std::sync::Arc::new(ids);
        let reads = load(address, token, READ_WORKERS, READS_PER_WORKER, 200, move |w, i| Request {
            method: Method::GET,
            path: format!("/api/tenants/bench/documents/bench/{}", ids[(w * 7919 + i * 104_729) % ids.len()]),
            body: None,
        })
        .await?;

        println!("storage benchmark (raw baseline measured in the same run; throughput rows are the median of {TRIALS} trials)");
        println!("{:<44} {:>12} {:>10} {:>10} {:>12}", "case", "ops/s", "p50 ms", "p99 ms", "vs raw");
        println!(
            "{:<44} {:>12.0} {:>10} {:>10} {:>12}",
            "raw rusqlite insert, 1 txn/row (WAL, FULL)", raw, "-", "-", "1.00x"
        );
        for (name, outcome) in
            [("nimbus HTTP insert, concurrency 1", &serial), ("nimbus HTTP insert, concurrency 32", &concurrent)]
        {
            println!(
                "{:<44} {:>12.0} {:>10.2} {:>10.2} {:>11.2}x",
                name,
                outcome.ops_per_sec(),
                ms(outcome.percentile(50.0)),
                ms(outcome.percentile(99.0)),
                outcome.ops_per_sec() / raw
            );
        }
        println!(
            "{:<44} {:>12.0} {:>10.2} {:>10.2} {:>12}",
            format!("nimbus HTTP point read, concurrency {READ_WORKERS}"),
            reads.ops_per_sec(),
            ms(reads.percentile(50.0)),
            ms(reads.percentile(99.0)),
            "-"
        );
        println!();
        println!(
            "target: insert c=32 >= 2x raw -> {:.2}x {}",
            concurrent.ops_per_sec() / raw,
            verdict(concurrent.ops_per_sec() / raw >= 2.0)
        );
        println!(
            "target: point reads >= 10000/s -> {:.0}/s {}",
            reads.ops_per_sec(),
            verdict(reads.ops_per_sec() >= 10_000.0)
        );
        Ok(())
    })
}

fn verdict(met: bool) -> &'static str {
    if met { "(met)" } else { "(NOT met)" }
}

/// Reads the ids of the benchmark table through the list route.
async fn list_ids(address: &str, token: &str) -> Result<Vec<String>, String> {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    let stream = tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::get(format!("/api/tenants/bench/documents/bench?limit={READ_DOCS}"))
        .header("host", address)
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    Ok(body["data"]
        .as_array()
        .map(|docs| docs.iter().filter_map(|d| d["_id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}

//! A minimal keep-alive HTTP/1.1 load client over hyper: one connection per worker.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request to send.
#[derive(Clone)]
pub struct Request {
    /// Method.
    pub method: hyper::Method,
    /// Path and query.
    pub path: String,
    /// JSON body, if any.
    pub body: Option<String>,
}

/// What a load run measured.
pub struct Outcome {
    /// Completed requests.
    pub count: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Per-request latencies, sorted.
    pub latencies: Vec<Duration>,
}

impl Outcome {
    /// Requests per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency percentile (0–100).
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }
}

/// Sends `per_worker` requests from each of `workers` connections; `make(worker, i)` builds
/// each request. Every answer must have `expect` status.
pub async fn load(
    address: &str,
    token: &str,
    workers: usize,
    per_worker: usize,
    expect: u16,
    make: impl Fn(usize, usize) -> Request + Send + Sync + Clone + 'static,
) -> Result<Outcome, String> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (address, token, make) = (address.to_owned(), token.to_owned(), make.clone());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&address).await.map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            let mut latencies = Vec::with_capacity(per_worker);
            for i in 0..per_worker {
                let request = make(worker, i);
                let mut builder = hyper::Request::builder()
                    .method(request.method)
                    .uri(&request.path)
                    .header("host", &address)
                    .header("authorization", format!("Bearer {token}"));
                if request.body.is_some() {
                    builder = builder.header("content-type", "application/json");
                }
                let body = Full::new(Bytes::from(request.body.unwrap_or_default()));
                let request = builder.body(body).map_err(|e| e.to_string())?;
                let sent = Instant::now();
                sender.ready().await.map_err(|e| e.to_string())?;
                let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                latencies.push(sent.elapsed());
                if status != expect {
                    return Err(format!("status {status}: {}", String::from_utf8_lossy(&bytes)));
                }
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(|e| e.to_string())??);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Ok(Outcome { count: latencies.len(), elapsed, latencies })
}

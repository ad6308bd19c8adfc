//! Scheduled-job throughput against plain HTTP inserts, in one run.
//!
//! N jobs (each inserting one document) are scheduled to come due at the same instant; their
//! throughput is N over the span from the first start to the last finish, read from the jobs'
//! own `started_at`/`finished_at`. The baseline is N plain `POST /documents` at concurrency 1
//! against the same server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::Server;

/// Jobs (and baseline inserts) per run.
const JOBS: usize = 1000;
/// How far ahead the jobs come due: long enough to schedule them all first.
const DUE_IN_MS: u64 = 4000;

/// A keep-alive HTTP client for a benchmark's setup and serial requests.
pub(crate) struct Http {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Http {
    /// A client of `server` with its admin token; any one request gives up after a minute.
    pub(crate) fn new(server: &Server) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        Self { agent, base: format!("http://{}", server.address), auth: format!("Bearer {}", server.token) }
    }

    /// Sends a request and returns the JSON answer of a 2xx (else an error naming the status).
    pub(crate) fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let uri = format!("{}{path}", self.base);
        let request = ureq::http::Request::builder().method(method).uri(&uri).header("authorization", &self.auth);
        let response = match body {
            Some(body) => self.agent.run(
                request.header("content-type", "application/json").body(body.to_string()).map_err(|e| e.to_string())?,
            ),
            None => self.agent.run(request.body(()).map_err(|e| e.to_string())?),
        }
        .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().map_err(|e| e.to_string())?;
        if status >= 300 {
            return Err(format!("{method} {path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Returns (jobs per second, inserts per second).
pub fn throughput(nimbus: &str) -> Result<(f64, f64), String> {
    let server = Server::start(nimbus)?;
    let http = Http::new(&server);
    http.send("POST", "/api/tenants", Some(&json!({ "id": "sched" })))?;

    let started = Instant::now();
    for i in 0..JOBS {
        let body = json!({ "table": "plain", "fields": { "n": i } });
        http.send("POST", "/api/tenants/sched/documents", Some(&body))?;
    }
    let inserts_per_sec = JOBS as f64 / started.elapsed().as_secs_f64();

    // Every job comes due at the same instant.
    let first = Instant::now();
    let mut ids = Vec::with_capacity(JOBS);
    for i in 0..JOBS {
        let elapsed = u64::try_from(first.elapsed().as_millis()).unwrap_or(u64::MAX);
        let body = json!({ "run_after_ms": DUE_IN_MS.saturating_sub(elapsed),
                           "mutation": { "type": "insert", "table": "jobs", "fields": { "n": i } } });
        let answer = http.send("POST", "/api/tenants/sched/schedule", Some(&body))?;
        ids.push(answer["job_id"].as_str().ok_or("no job_id")?.to_owned());
    }
    // Stay off the server while the jobs run: look only once they are all due, then poll gently.
    std::thread::sleep(Duration::from_millis(DUE_IN_MS).saturating_sub(first.elapsed()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut spans = (i64::MAX, i64::MIN);
    for id in &ids {
        let job = loop {
            let job = http.send("GET", &format!("/api/tenants/sched/schedule/{id}"), None)?["job"].clone();
            if job["state"] == "completed" {
                break job;
            }
            if job["state"] == "failed" || Instant::now() > deadline {
                return Err(format!("job {id} did not complete: {job}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        spans.0 = spans.0.min(job["started_at"].as_i64().unwrap_or(i64::MAX));
        spans.1 = spans.1.max(job["finished_at"].as_i64().unwrap_or(i64::MIN));
    }
    let span_ms = (spans.1 - spans.0).max(1) as f64;
    Ok((JOBS as f64 * 1000.0 / span_ms, inserts_per_sec))
}

//! A sandbox's network (docs/networking.md): `PUT /{id}/network` replaces its egress rules
//! (generation-checked), `GET /{id}/egress` reads and follows its egress decision log (NDJSON).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use nimbus_compute::sandbox::{Sandboxes, WaitFor};
use nimbus_core::ErrorCode;
use nimbus_core::limits::LOG_HEARTBEAT_MS;
use nimbus_core::time::{now_ms, rfc3339_ms};
use nimbus_egress::log::{DecisionLogs, Entry};
use serde_json::{Value, json};

use super::ndjson;
use super::sandboxes::{tail, target};
use crate::body::RawBody;
use crate::envelope::ApiResult;
use crate::params::{PathParams, QueryParams};
use crate::sandbox_wire::{NetworkUpdateBody, sandbox_json};
use crate::state::AppState;

/// `PUT /{id}/network`: the new rules, for new connections; answers the sandbox.
pub async fn update(State(state): State<AppState>, params: PathParams, body: RawBody) -> ApiResult<Json<Value>> {
    let (tenant, id) = target(&state, &params)?;
    let body = body.json::<NetworkUpdateBody>()?;
    let generation = body.generation()?;
    let record = state.sandboxes.update_network(&tenant, &id, generation, body.egress).await?;
    Ok(Json(sandbox_json(&record)))
}

/// `GET /{id}/egress?tail=N&follow=true`: the decision log, oldest first.
pub async fn log(State(state): State<AppState>, params: PathParams, query: QueryParams) -> ApiResult<Response> {
    let (tenant, id) = target(&state, &params)?;
    let record = state.sandboxes.get(&tenant, &id)?;
    let tail = tail(&query)?;
    let follow = query.flag("follow")?;
    let logs = state.egress.logs().clone();
    // Watched before the first read, so nothing written in between is missed.
    let watch = logs.watch(&id);
    let (first, last) = logs.read(&id, 0, tail);
    let first = ndjson(&first);
    let body = if follow && !record.state.is_terminal() {
        let follow = Follow { logs, sandboxes: state.sandboxes.clone(), tenant, id, watch, last };
        Body::from_stream(follow.stream(first))
    } else {
        Body::from(first)
    };
    Ok(ndjson::response(body))
}

fn ndjson(entries: &[Arc<Entry>]) -> String {
    entries.iter().map(|e| format!("{}\n", serde_json::to_string(&**e).unwrap_or_default())).collect()
}

/// What woke a follower.
enum Woke {
    /// The log changed (`false`: the log went with its sandbox).
    Entries(bool),
    /// The sandbox ended or went.
    Ended,
    /// A heartbeat period passed in silence.
    Quiet,
}

/// A followed log: new entries as they are written, a heartbeat after `LOG_HEARTBEAT_MS` of
/// silence; it ends when the sandbox ends or goes.
struct Follow {
    logs: Arc<DecisionLogs>,
    sandboxes: Arc<Sandboxes>,
    tenant: String,
    id: String,
    watch: tokio::sync::watch::Receiver<u64>,
    last: u64,
}

impl Follow {
    fn stream(self, first: String) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
        futures_util::stream::unfold((self, Some(first)), |(mut follow, pending)| async move {
            if let Some(chunk) = pending.filter(|c| !c.is_empty()) {
                return Some((Ok(chunk), (follow, None)));
            }
            loop {
                // The sandbox's end, awaited for one heartbeat period, doubles as the heartbeat's
                // timer; a deleted sandbox ends the wait at once.
                let ended = follow.sandboxes.wait_for(
                    &follow.tenant,
                    &follow.id,
                    WaitFor::Stopped,
                    Duration::from_millis(LOG_HEARTBEAT_MS),
                );
                let woke = tokio::select! {
                    changed = follow.watch.changed() => Woke::Entries(changed.is_ok()),
                    ended = ended => match ended {
                        Ok(_) => Woke::Ended,
                        Err(err) if err.code == ErrorCode::OpWaitTimeout => Woke::Quiet,
                        Err(_) => Woke::Ended,
                    },
                };
                let (entries, last) = follow.logs.read(&follow.id, follow.last, None);
                follow.last = last;
                if !entries.is_empty() {
                    return Some((Ok(ndjson(&entries)), (follow, None)));
                }
                match woke {
                    Woke::Ended | Woke::Entries(false) => return None,
                    Woke::Entries(true) => {}
                    Woke::Quiet => {
                        let beat = json!({ "kind": "heartbeat", "time": rfc3339_ms(now_ms()) });
                        return Some((Ok(format!("{beat}\n")), (follow, None)));
                    }
                }
            }
        })
    }
}

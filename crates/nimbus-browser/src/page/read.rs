//! The operations that read the page: `snapshot`, `evaluate`, `text`, `storageState`.

use nimbus_core::NimbusError;
use nimbus_core::limits::BROWSER_MAX_TEXT_BYTES;
use serde_json::{Value, json};

use super::answers::{EvaluateAnswer, SnapshotAnswer, TextAnswer};
use super::body::{EvaluateBody, PageBody, TextBody, element, timeout_ms};
use super::deadline::Deadline;
use super::element::resolve;
use super::errors::{clip, evaluation_failed, exception_text};
use super::op::{Op, locate};
use super::pages::SessionPages;
use super::snapshot;
use super::target::Outcome;
use crate::cdp::{CdpError, Connection};
use crate::context::{self, StorageState};

/// Object group of `evaluate`'s remote objects, released when it answers.
const EVALUATE_GROUP: &str = "nimbus-evaluate";

/// Serialises `this` as JSON in the page, refusing (before it crosses the DevTools socket) a
/// text longer than `limit` UTF-16 units.
const TO_JSON: &str = "function (limit) {
  const text = JSON.stringify(this);
  if (text === undefined) return { kind: 'none' };
  if (text.length > limit) return { kind: 'large', length: text.length };
  return { kind: 'json', text };
}";

/// The rendered text of an element (`innerText`, or `textContent` where it has none), or of
/// the page, cut at `limit` UTF-16 units in the page.
const ELEMENT_TEXT: &str = "function (limit) {
  const text = String(typeof this.innerText === 'string' ? this.innerText : (this.textContent || ''));
  return { text: text.length > limit ? text.slice(0, limit) : text, cut: text.length > limit };
}";
const PAGE_TEXT: &str = "function (limit) {
  const root = document.body || document.documentElement;
  const text = root ? String(typeof root.innerText === 'string' ? root.innerText : (root.textContent || '')) : '';
  return { text: text.length > limit ? text.slice(0, limit) : text, cut: text.length > limit };
}";

/// `snapshot`: the accessibility tree as text with refs.
pub(crate) async fn snapshot(
    conn: &Connection,
    pages: &SessionPages,
    body: PageBody,
) -> Result<SnapshotAnswer, NimbusError> {
    let deadline = Deadline::after("snapshot", timeout_ms(body.timeout_ms)?);
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    let taken = snapshot::take(op.page(), op.deadline()).await.map_err(|error| op.fail(error))?;
    let location = op.location().await?;
    Ok(SnapshotAnswer {
        page_id: op.page_id().to_owned(),
        url: location.url,
        title: location.title,
        snapshot: taken.text,
        truncated: taken.truncated,
    })
}

/// `evaluate`: runs the expression in the page's main world (top-level `await` allowed, a
/// promise awaited) and answers its value as JSON.
pub(crate) async fn evaluate(
    conn: &Connection,
    pages: &SessionPages,
    body: EvaluateBody,
) -> Result<EvaluateAnswer, NimbusError> {
    let deadline = Deadline::after("evaluate", timeout_ms(body.timeout_ms)?);
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    let result = evaluate_value(&op, &body.expression).await;
    let release = json!({ "objectGroup": EVALUATE_GROUP });
    if let Err(error) = op.page().call("Runtime.releaseObjectGroup", release, op.remaining()).await {
        tracing::debug!(%error, "releasing evaluate's objects failed");
    }
    Ok(EvaluateAnswer { page_id: op.page_id().to_owned(), result: result? })
}

async fn evaluate_value(op: &Op<'_>, expression: &str) -> Result<Value, NimbusError> {
    let script_timeout = op.deadline().remaining_ms();
    let started = tokio::time::Instant::now();
    let params = json!({
        "expression": expression,
        "objectGroup": EVALUATE_GROUP,
        "returnByValue": false,
        "awaitPromise": true,
        "replMode": true,
        "userGesture": true,
        // Stops a script that never yields; the deadline bounds the rest.
        "timeout": script_timeout,
    });
    let evaluated = op.call_raw("Runtime.evaluate", params).await;
    // Chromium's `timeout` ends a script that never yields (with an exception, or a bare
    // "Internal error") once it ran that long: that is this operation's timeout.
    let ran_out = started.elapsed() >= std::time::Duration::from_millis(script_timeout);
    let clean = matches!(&evaluated, Ok(answer) if answer.get("exceptionDetails").is_none());
    if op.remaining().is_zero() || (ran_out && !clean) {
        return Err(op.deadline().expired());
    }
    let mut answer = match evaluated {
        Ok(answer) => answer,
        Err(CdpError::Protocol { message, .. }) => return Err(evaluation_failed(&message)),
        Err(error) => return Err(op.fail(error)),
    };
    // In REPL mode a script's completion value is not awaited even when it is a promise.
    let promise = answer.get("result").filter(|r| r.get("subtype").and_then(Value::as_str) == Some("promise"));
    if answer.get("exceptionDetails").is_none()
        && let Some(promise) = promise.and_then(|r| r.get("objectId")).and_then(Value::as_str)
    {
        let params = json!({ "promiseObjectId": promise, "returnByValue": false });
        answer = match op.call_raw("Runtime.awaitPromise", params).await {
            Ok(answer) => answer,
            Err(CdpError::Protocol { message, .. }) => return Err(evaluation_failed(&message)),
            Err(error) => return Err(op.fail(error)),
        };
    }
    if op.remaining().is_zero() {
        return Err(op.deadline().expired());
    }
    if let Some(details) = answer.get("exceptionDetails") {
        return Err(evaluation_failed(&exception_text(details)));
    }
    let remote = answer.get("result").cloned().unwrap_or(Value::Null);
    let kind = remote.get("type").and_then(Value::as_str).unwrap_or("undefined");
    match kind {
        "undefined" => Ok(Value::Null),
        "string" | "boolean" | "number" => {
            if let Some(unserializable) = remote.get("unserializableValue").and_then(Value::as_str) {
                return Err(evaluation_failed(&format!("the result {} is not JSON", clip(unserializable, 64))));
            }
            let value = remote.get("value").cloned().unwrap_or(Value::Null);
            if let Value::String(text) = &value
                && text.len() > BROWSER_MAX_TEXT_BYTES
            {
                return Err(too_large(text.len()));
            }
            Ok(value)
        }
        "object" if remote.get("subtype").and_then(Value::as_str) == Some("null") => Ok(Value::Null),
        "object" => {
            let object = remote
                .get("objectId")
                .and_then(Value::as_str)
                .ok_or_else(|| evaluation_failed("the result has no handle"))?;
            let limit = json!(BROWSER_MAX_TEXT_BYTES);
            let serialised = op.page().run_on(object, TO_JSON, &[limit], true, op.remaining()).await;
            let serialised = match serialised {
                Ok(Ok(serialised)) => serialised,
                Ok(Err(exception)) => return Err(evaluation_failed(&format!("the result is not JSON: {exception}"))),
                Err(CdpError::Protocol { message, .. }) => return Err(evaluation_failed(&message)),
                Err(error) => return Err(op.fail(error)),
            };
            match serialised.get("kind").and_then(Value::as_str) {
                Some("json") => {
                    let text = serialised.get("text").and_then(Value::as_str).unwrap_or("null");
                    if text.len() > BROWSER_MAX_TEXT_BYTES {
                        return Err(too_large(text.len()));
                    }
                    serde_json::from_str(text)
                        .map_err(|error| evaluation_failed(&format!("the result is not JSON Nimbus can read: {error}")))
                }
                Some("large") => {
                    let length = serialised.get("length").and_then(Value::as_u64).unwrap_or(0);
                    Err(too_large(usize::try_from(length).unwrap_or(usize::MAX)))
                }
                _ => Ok(Value::Null),
            }
        }
        other => Err(evaluation_failed(&format!("the result is a {}, not JSON", clip(other, 32)))),
    }
}

fn too_large(length: usize) -> NimbusError {
    evaluation_failed(&format!(
        "the result is {length} characters of JSON, over the limit of {BROWSER_MAX_TEXT_BYTES} bytes"
    ))
}

/// `text`: the rendered text of the element, or of the page, cut at `BROWSER_MAX_TEXT_BYTES`.
pub(crate) async fn text(conn: &Connection, pages: &SessionPages, body: TextBody) -> Result<TextAnswer, NimbusError> {
    let deadline = Deadline::after("text", timeout_ms(body.timeout_ms)?);
    let target = element(body.element_ref.as_deref(), body.selector.as_deref(), false)?;
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    let limit = json!(BROWSER_MAX_TEXT_BYTES);
    let read = match &target {
        Some(target) => {
            let object = resolve(&op, target).await?;
            op.page().run_on(&object, ELEMENT_TEXT, &[limit], true, op.remaining()).await.map_err(|e| op.fail(e))?
        }
        None => match op.run_in_utility(PAGE_TEXT, &[limit]).await? {
            Outcome::Value(value) => Ok(value),
            Outcome::Threw(exception) => Err(exception),
        },
    };
    let read = read.map_err(|exception| {
        tracing::debug!(%exception, "reading text threw");
        NimbusError::internal()
    })?;
    let text = read.get("text").and_then(Value::as_str).unwrap_or_default();
    let cut = read.get("cut").and_then(Value::as_bool).unwrap_or(false);
    let kept = clip(text, BROWSER_MAX_TEXT_BYTES);
    Ok(TextAnswer {
        page_id: op.page_id().to_owned(),
        text: kept.to_owned(),
        truncated: cut || kept.len() < text.len(),
    })
}

/// `storageState`: the session context's cookies and the `localStorage` of its pages' origins.
pub(crate) async fn storage_state(
    conn: &Connection,
    pages: &SessionPages,
    body: PageBody,
) -> Result<StorageState, NimbusError> {
    let deadline = Deadline::after("storageState", timeout_ms(body.timeout_ms)?);
    if body.page_id.is_some() {
        locate(conn, pages, body.page_id.as_deref(), &deadline).await?;
    }
    context::export(conn, pages.context_id(), deadline.instant()).await.map_err(|error| match error {
        CdpError::Timeout { .. } => deadline.expired(),
        other => other.into_nimbus(),
    })
}

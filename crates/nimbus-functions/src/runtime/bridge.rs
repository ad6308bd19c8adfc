//! The `__nimbus_host` object of the prelude ABI (`prelude/ABI.md`): the native functions an
//! isolate's JavaScript calls, and the state of the invocation they serve. The functions are
//! created once per isolate; each invocation installs its [`Active`] state and takes it back.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nimbus_core::NimbusError;
use nimbus_core::limits::{FUNCTION_LOG_LINE_BYTES, FUNCTION_LOG_LINES_KEPT};
use rquickjs::{Ctx, Function, Object};
use serde_json::{Value, json};

use super::budget::{Budget, thread_cpu_ns};
use crate::deployment::Kind;
use crate::host::Session;

/// A finished asynchronous operation: its id and the ABI's `{"ok"}`/`{"err"}` JSON text.
pub(crate) type Finished = (u32, String);

/// The state of the invocation in progress.
pub(crate) struct Active<S: Session> {
    pub(crate) session: S,
    pub(crate) kind: Kind,
    /// Tags for log lines.
    pub(crate) tenant: String,
    pub(crate) function: String,
    pub(crate) request_id: String,
    /// The last log lines, for `detail.logs`.
    pub(crate) logs: VecDeque<String>,
    /// Asynchronous operations started and not yet finished (host operations).
    pub(crate) in_flight: usize,
    /// Timers by id → due time.
    pub(crate) timers: BTreeMap<u32, Instant>,
    next_id: u32,
    /// Where host operations report back.
    pub(crate) finished: Sender<Finished>,
}

impl<S: Session> Active<S> {
    pub(crate) fn new(session: S, kind: Kind, tags: [String; 3], finished: Sender<Finished>) -> Self {
        let [tenant, function, request_id] = tags;
        Self {
            session,
            kind,
            tenant,
            function,
            request_id,
            logs: VecDeque::new(),
            in_flight: 0,
            timers: BTreeMap::new(),
            next_id: 1,
            finished,
        }
    }
}

/// Shared by an isolate's native functions and the runtime.
pub(crate) struct Bridge<S: Session> {
    active: Mutex<Option<Active<S>>>,
    pub(crate) budget: Arc<Budget>,
}

impl<S: Session> Bridge<S> {
    pub(crate) fn new(budget: Arc<Budget>) -> Arc<Self> {
        Arc::new(Self { active: Mutex::new(None), budget })
    }

    pub(crate) fn active(&self) -> MutexGuard<'_, Option<Active<S>>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installs `__nimbus_host` on the context's global object.
    /// `register(hooks)` keeps the prelude's hooks as the context's user data (the first
    /// registration wins, so user code cannot replace them).
    pub(crate) fn install<'js>(self: &Arc<Self>, ctx: &Ctx<'js>) -> rquickjs::Result<()> {
        let host = Object::new(ctx.clone())?;
        let bridge = self.clone();
        host.set("op", Function::new(ctx.clone(), move |name: String, payload: String| bridge.op(&name, &payload))?)?;
        let bridge = self.clone();
        host.set(
            "start",
            Function::new(ctx.clone(), move |name: String, payload: String| bridge.start(&name, &payload))?,
        )?;
        let bridge = self.clone();
        host.set(
            "log",
            Function::new(ctx.clone(), move |level: String, message: String| bridge.log(&level, message))?,
        )?;
        host.set(
            "register",
            Function::new(ctx.clone(), |hooks: Object<'js>| {
                let ctx = hooks.ctx().clone();
                if ctx.userdata::<Object<'js>>().is_none() {
                    let _ = ctx.store_userdata(hooks);
                }
            })?,
        )?;
        ctx.globals().set("__nimbus_host", host)
    }

    /// `op(name, payload)`: a synchronous operation of the running invocation.
    fn op(&self, name: &str, payload: &str) -> String {
        let mut guard = self.active();
        let Some(active) = guard.as_mut() else {
            return err_json(&refused(name, "no function is running (module top-level code has no ctx)"));
        };
        if !sync_allowed(active.kind, name) {
            return err_json(&refused(name, &format!("a {} cannot use {name}", active.kind.as_str())));
        }
        let payload = match serde_json::from_str::<Value>(payload) {
            Ok(p) => p,
            Err(e) => return err_json(&refused(name, &format!("payload is not JSON: {e}"))),
        };
        let started = thread_cpu_ns();
        let outcome = active.session.op(name, payload);
        self.budget.exclude(thread_cpu_ns().saturating_sub(started));
        match outcome {
            Ok(value) => ok_json(&value),
            Err(error) => err_json(&error),
        }
    }

    /// `start(name, payload)`: an asynchronous operation of a running action; returns its id
    /// (0 when refused: the refusal arrives as its completion).
    fn start(&self, name: &str, payload: &str) -> u32 {
        let mut guard = self.active();
        let Some(active) = guard.as_mut() else { return 0 };
        let id = active.next_id;
        active.next_id = active.next_id.wrapping_add(1).max(1);
        let refuse = |active: &Active<S>, error: NimbusError| {
            let _ = active.finished.send((id, err_json(&error)));
        };
        if active.kind != Kind::Action || !async_allowed(name) {
            let error = refused(name, &format!("a {} cannot use {name}", active.kind.as_str()));
            refuse(active, error);
            active.in_flight += 1;
            return id;
        }
        let payload = match serde_json::from_str::<Value>(payload) {
            Ok(p) => p,
            Err(e) => {
                refuse(active, refused(name, &format!("payload is not JSON: {e}")));
                active.in_flight += 1;
                return id;
            }
        };
        if name == "timer" {
            let ms = payload.get("ms").and_then(Value::as_f64).unwrap_or(0.0).clamp(0.0, 86_400_000.0);
            active.timers.insert(id, Instant::now() + Duration::from_millis(ms as u64));
            return id;
        }
        active.in_flight += 1;
        let finished = active.finished.clone();
        active.session.start(
            name,
            payload,
            Box::new(move |outcome| {
                let text = match outcome {
                    Ok(value) => ok_json(&value),
                    Err(error) => err_json(&error),
                };
                let _ = finished.send((id, text));
            }),
        );
        id
    }

    /// `log(level, message)`: to the server log, and kept for `detail.logs`.
    fn log(&self, level: &str, mut message: String) {
        let mut guard = self.active();
        let Some(active) = guard.as_mut() else { return };
        if message.len() > FUNCTION_LOG_LINE_BYTES {
            let mut cut = FUNCTION_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        tracing::info!(
            tenant = %active.tenant, function = %active.function, request_id = %active.request_id,
            level, "{message}"
        );
        if active.logs.len() == FUNCTION_LOG_LINES_KEPT {
            active.logs.pop_front();
        }
        active.logs.push_back(format!("[{level}] {message}"));
    }
}

/// Synchronous operations each kind may use.
fn sync_allowed(kind: Kind, name: &str) -> bool {
    let read = matches!(name, "db.get" | "db.query" | "db.paginate" | "db.indexFields");
    let write = matches!(name, "db.insert" | "db.patch" | "db.replace" | "db.delete")
        || matches!(name, "scheduler.runAfter" | "scheduler.runAt" | "scheduler.cancel");
    match kind {
        Kind::Query => read,
        Kind::Mutation => read || write,
        Kind::Action => false,
    }
}

/// Asynchronous operations (actions only).
fn async_allowed(name: &str) -> bool {
    matches!(
        name,
        "run.query"
            | "run.mutation"
            | "run.action"
            | "scheduler.runAfter"
            | "scheduler.runAt"
            | "scheduler.cancel"
            | "timer"
    )
}

fn refused(name: &str, reason: &str) -> NimbusError {
    NimbusError::new(
        nimbus_core::ErrorCode::OpInvalidInput,
        format!("{name} is not available here: {reason}"),
        Some(json!({ "field": name, "reason": reason })),
    )
}

/// The ABI's success envelope.
pub(crate) fn ok_json(value: &Value) -> String {
    json!({ "ok": value }).to_string()
}

/// The ABI's failure envelope.
pub(crate) fn err_json(error: &NimbusError) -> String {
    json!({ "err": { "code": error.code.as_str(), "message": error.message, "detail": error.detail } }).to_string()
}

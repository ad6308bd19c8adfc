//! [`Isolate`]: one QuickJS runtime and context with a memory limit, an interrupt handler that
//! enforces the running invocation's CPU and wall-clock budget, the prelude, and a loader for
//! one deployment's modules. An isolate serves one tenant's deployment, one invocation at a
//! time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use nimbus_core::limits::FUNCTION_STACK_BYTES;
use rquickjs::promise::PromiseState;
use rquickjs::{
    CatchResultExt, CaughtError, Context, Ctx, FromJs, Function, Module, Object, Promise, Runtime, Value as JsValue,
};

use super::bridge::{Active, Bridge, ok_json};
use super::budget::{Budget, Tripped};
use super::loader::DeploymentLoader;
use crate::deployment::{Kind, ModuleCode};
use crate::host::Session;

/// Why JavaScript did not produce a result.
#[derive(Debug, Clone)]
pub(crate) enum JsFailure {
    /// A limit of the budget ran out.
    Limit(Tripped),
    /// The isolate's memory limit was hit.
    Memory,
    /// Nothing can settle the handler's promise.
    Stalled,
    /// An exception escaped: its name, message and stack.
    Exception { name: String, message: String, stack: String },
}

/// The raw outcome of an invocation: the ABI's envelope JSON text, or a failure.
pub(crate) type RawOutcome = Result<String, JsFailure>;

/// One isolate.
pub(crate) struct Isolate<S: Session> {
    /// The context; it holds its runtime (and so the memory limit, the interrupt handler and
    /// the loader) alive.
    context: Context,
    bridge: Arc<Bridge<S>>,
    /// Set once an invocation was interrupted or ran out of memory: never reused.
    spoiled: bool,
}

impl<S: Session> Isolate<S> {
    /// Creates an isolate for `modules` and evaluates the prelude in it.
    pub(crate) fn new(modules: Arc<BTreeMap<String, ModuleCode>>, memory_limit: usize) -> Result<Self, JsFailure> {
        let runtime = Runtime::new().map_err(|e| exception("InternalError", &e.to_string()))?;
        runtime.set_memory_limit(memory_limit);
        runtime.set_max_stack_size(FUNCTION_STACK_BYTES);
        let budget = Arc::new(Budget::default());
        let check = budget.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || check.check())));
        runtime.set_loader(DeploymentLoader::new(modules.clone()), DeploymentLoader::new(modules));
        let context = Context::full(&runtime).map_err(|e| exception("InternalError", &e.to_string()))?;
        let bridge = Bridge::new(budget);
        let isolate = Self { context, bridge, spoiled: false };
        isolate.context.with(|ctx| -> Result<(), JsFailure> {
            isolate.bridge.install(&ctx).catch(&ctx).map_err(caught)?;
            // The globals first (they take the host object), then the authoring API.
            isolate.load(&ctx, "nimbus:internal/globals")?;
            isolate.load(&ctx, "@nimbus/nimbus/server")?;
            Ok(())
        })?;
        Ok(isolate)
    }

    /// The budget the interrupt handler checks.
    pub(crate) fn budget(&self) -> &Arc<Budget> {
        &self.bridge.budget
    }

    /// Whether the isolate may serve another invocation.
    pub(crate) fn reusable(&self) -> bool {
        !self.spoiled
    }

    /// Imports (evaluating once) a module and returns its namespace's exports as
    /// `(name, describe JSON)`: the hooks' description of each export, `None` when it is not
    /// a function built by the builders. Runs under the armed budget.
    pub(crate) fn exports(&mut self, module: &str) -> Result<Vec<(String, Option<String>)>, JsFailure> {
        let outcome = self.context.with(|ctx| -> Result<Vec<(String, Option<String>)>, JsFailure> {
            let namespace = self.import(&ctx, module)?;
            let describe: Function = self.hook(&ctx, "describe")?;
            let mut exports = Vec::new();
            for key in namespace.keys::<String>() {
                let key = key.catch(&ctx).map_err(caught)?;
                let value: JsValue = namespace.get(key.as_str()).catch(&ctx).map_err(caught)?;
                let description: Option<String> = describe.call((value,)).catch(&ctx).map_err(caught)?;
                exports.push((key, description));
            }
            Ok(exports)
        });
        let outcome = self.limited(outcome);
        self.note(&outcome);
        outcome
    }

    /// The schema JSON of a module's default export made by `defineSchema`, if any.
    pub(crate) fn schema(&mut self, module: &str) -> Result<Option<String>, JsFailure> {
        let outcome = self.context.with(|ctx| -> Result<Option<String>, JsFailure> {
            let namespace = self.import(&ctx, module)?;
            let schema: Function = self.hook(&ctx, "schema")?;
            let value: JsValue = namespace.get("default").catch(&ctx).map_err(caught)?;
            schema.call((value,)).catch(&ctx).map_err(caught)
        });
        let outcome = self.limited(outcome);
        self.note(&outcome);
        outcome
    }

    /// Runs one invocation of `module`'s `export` with `session` and returns the raw outcome
    /// and the session back. The budget must be armed by the caller.
    pub(crate) fn invoke(
        &mut self,
        (module, export): (&str, &str),
        kind: Kind,
        args_json: &str,
        (session, tags): (S, [String; 3]),
    ) -> (RawOutcome, Active<S>) {
        let (finished_tx, finished) = mpsc::channel();
        let request_id = tags[2].clone();
        *self.bridge.active() = Some(Active::new(session, kind, tags, finished_tx));
        let outcome = self.context.with(|ctx| -> RawOutcome {
            let namespace = self.import(&ctx, module)?;
            let target: JsValue = namespace.get(export).catch(&ctx).map_err(caught)?;
            let invoke: Function = self.hook(&ctx, "invoke")?;
            let complete: Function = self.hook(&ctx, "complete")?;
            let promise: Promise =
                invoke.call((target, kind.as_str(), args_json, request_id.as_str())).catch(&ctx).map_err(caught)?;
            self.drive(&ctx, &promise, &finished, &complete)
        });
        let outcome = self.limited(outcome);
        self.note(&outcome);
        // The invocation installed it above and nothing else takes it.
        let active = self.bridge.active().take();
        match active {
            Some(active) => (outcome, active),
            None => unreachable!("the active invocation is only taken here"),
        }
    }

    /// Runs the event loop until `promise` settles: microtasks, then host completions and
    /// timers. Fails when a limit trips or when nothing is left that could settle it.
    fn drive<'js>(
        &self,
        ctx: &Ctx<'js>,
        promise: &Promise<'js>,
        finished: &mpsc::Receiver<(u32, String)>,
        complete: &Function<'js>,
    ) -> RawOutcome {
        let budget = self.budget().clone();
        loop {
            while ctx.execute_pending_job() {
                if let Some(limit) = budget.tripped() {
                    return Err(JsFailure::Limit(limit));
                }
            }
            if let Some(limit) = budget.tripped() {
                return Err(JsFailure::Limit(limit));
            }
            match promise.state() {
                PromiseState::Resolved => {
                    return promise
                        .result::<String>()
                        .unwrap_or(Err(rquickjs::Error::Unknown))
                        .catch(ctx)
                        .map_err(caught);
                }
                PromiseState::Rejected => {
                    let outcome = promise.result::<JsValue>().unwrap_or(Err(rquickjs::Error::Unknown)).catch(ctx);
                    return Err(match outcome {
                        Ok(value) => describe_thrown(&value),
                        Err(e) => caught(e),
                    });
                }
                PromiseState::Pending => {}
            }
            let (in_flight, next_timer) = {
                let guard = self.bridge.active();
                let Some(active) = guard.as_ref() else { return Err(JsFailure::Stalled) };
                (active.in_flight, active.timers.iter().min_by_key(|(_, due)| **due).map(|(id, due)| (*id, *due)))
            };
            if in_flight == 0 && next_timer.is_none() {
                return Err(JsFailure::Stalled);
            }
            let deadline = budget.deadline().unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
            let wake = next_timer.map_or(deadline, |(_, due)| due.min(deadline));
            match finished.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok((id, text)) => {
                    if let Some(active) = self.bridge.active().as_mut() {
                        active.in_flight = active.in_flight.saturating_sub(1);
                    }
                    complete.call::<_, ()>((id, text)).catch(ctx).map_err(caught)?;
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    if Instant::now() >= deadline {
                        budget.trip_wall();
                        return Err(JsFailure::Limit(Tripped::Wall));
                    }
                    if let Some((id, due)) = next_timer
                        && Instant::now() >= due
                    {
                        if let Some(active) = self.bridge.active().as_mut() {
                            active.timers.remove(&id);
                        }
                        let done = ok_json(&serde_json::Value::Null);
                        complete.call::<_, ()>((id, done)).catch(ctx).map_err(caught)?;
                    }
                }
            }
        }
    }

    /// A module's namespace: imported on first use, then kept in the prelude's `namespaces`
    /// hook object (a dynamic import of a module already evaluated still builds and settles a
    /// promise: about 3% of the server's CPU under insert mutations, docs/performance.md).
    fn import<'js>(&self, ctx: &Ctx<'js>, name: &str) -> Result<Object<'js>, JsFailure> {
        let kept: Object<'js> = self.hook(ctx, "namespaces")?;
        if let Some(namespace) = kept.get::<_, Option<Object<'js>>>(name).catch(ctx).map_err(caught)? {
            return Ok(namespace);
        }
        let namespace = self.load(ctx, name)?;
        kept.set(name, namespace.clone()).catch(ctx).map_err(caught)?;
        Ok(namespace)
    }

    /// Imports a module (evaluating it the first time) and returns its namespace.
    fn load<'js>(&self, ctx: &Ctx<'js>, name: &str) -> Result<Object<'js>, JsFailure> {
        let promise = Module::import(ctx, name).catch(ctx).map_err(caught)?;
        while promise.state() == PromiseState::Pending {
            if !ctx.execute_pending_job() {
                if let Some(limit) = self.budget().tripped() {
                    return Err(JsFailure::Limit(limit));
                }
                return Err(JsFailure::Stalled);
            }
        }
        if let Some(limit) = self.budget().tripped() {
            return Err(JsFailure::Limit(limit));
        }
        promise.result::<Object>().unwrap_or(Err(rquickjs::Error::Unknown)).catch(ctx).map_err(caught)
    }

    fn hook<'js, T: FromJs<'js>>(&self, ctx: &Ctx<'js>, name: &str) -> Result<T, JsFailure> {
        let hooks =
            ctx.userdata::<Object<'js>>().ok_or_else(|| exception("InternalError", "the prelude did not register"))?;
        hooks.get(name).map_err(|e| exception("InternalError", &format!("prelude hook {name}: {e}")))
    }

    /// A tripped limit overrides whatever JavaScript made of the interruption (QuickJS's
    /// "interrupted" error can surface as an ordinary exception).
    fn limited<T>(&self, outcome: Result<T, JsFailure>) -> Result<T, JsFailure> {
        match self.budget().tripped() {
            Some(limit) => Err(JsFailure::Limit(limit)),
            None => outcome,
        }
    }

    /// Marks the isolate spoiled after a limit or memory failure. Garbage is left to QuickJS's
    /// own collector, which runs when allocations pass its threshold: measuring the heap or
    /// collecting after every call cost a tenth to a quarter of a trivial call's CPU.
    fn note<T>(&mut self, outcome: &Result<T, JsFailure>) {
        if matches!(outcome, Err(JsFailure::Limit(_) | JsFailure::Memory)) {
            self.spoiled = true;
        }
    }
}

fn exception(name: &str, message: &str) -> JsFailure {
    JsFailure::Exception { name: name.to_owned(), message: message.to_owned(), stack: String::new() }
}

/// Turns a caught rquickjs error into a failure.
fn caught(error: CaughtError<'_>) -> JsFailure {
    match error {
        CaughtError::Exception(e) => classify(
            e.as_object().get::<_, Option<String>>("name").ok().flatten().unwrap_or_else(|| "Error".to_owned()),
            e.message().unwrap_or_default(),
            e.stack().unwrap_or_default(),
        ),
        CaughtError::Value(value) => describe_thrown(&value),
        CaughtError::Error(rquickjs::Error::Allocation) => JsFailure::Memory,
        CaughtError::Error(e) => exception("InternalError", &e.to_string()),
    }
}

/// Describes a thrown JavaScript value.
fn describe_thrown(value: &JsValue<'_>) -> JsFailure {
    match value.as_object() {
        Some(object) => classify(
            object.get::<_, Option<String>>("name").ok().flatten().unwrap_or_else(|| "Error".to_owned()),
            object.get::<_, Option<String>>("message").ok().flatten().unwrap_or_default(),
            object.get::<_, Option<String>>("stack").ok().flatten().unwrap_or_default(),
        ),
        None => exception("Error", &format!("{value:?}")),
    }
}

fn classify(name: String, message: String, stack: String) -> JsFailure {
    if name == "InternalError" && message.contains("out of memory") {
        return JsFailure::Memory;
    }
    JsFailure::Exception { name, message, stack }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::tests::NoSession;

    /// How long a fresh isolate takes (the prelude evaluated), for `cargo test --release -- --ignored`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn isolate_creation_time() {
        let modules = Arc::new(BTreeMap::new());
        let mut times = Vec::new();
        for _ in 0..200 {
            let start = Instant::now();
            let isolate: Isolate<NoSession> = Isolate::new(modules.clone(), 64 << 20).expect("isolate");
            times.push(start.elapsed());
            drop(isolate);
        }
        times.sort();
        eprintln!("isolate creation p50 {:?} p90 {:?}", times[100], times[180]);
    }
}

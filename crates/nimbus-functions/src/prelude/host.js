// nimbus:internal/host — the only holder of the host object in module land.
//
// Claims the host from the one-shot hand-off that globals.js left (ABI.md, "The host object"),
// and wraps it: synchronous and asynchronous operations with their {"ok"}/{"err"} envelopes,
// NimbusError, and the strict JSON encoding of payloads. User modules cannot import
// `nimbus:internal/*` specifiers, so nothing here is reachable from tenant code except through
// what server.js hands out.

// Built-ins captured before any tenant code runs, so a tenant that replaces them later cannot
// observe or redirect the prelude's traffic with the host.
const jsonParse = JSON.parse;
const jsonStringify = JSON.stringify;
const hasOwn = Object.hasOwn;
const isArray = Array.isArray;
const NativeMap = Map;
const NativePromise = Promise;
const mapGet = Map.prototype.get;
const mapSet = Map.prototype.set;
const mapDelete = Map.prototype.delete;
const reflectApply = Reflect.apply;

const HANDOFF = Symbol.for("nimbus.host");

const host = (() => {
  const claim = globalThis[HANDOFF];
  if (typeof claim !== "function") {
    // Either globals.js did not run, or something claimed the host before this module: the
    // isolate cannot be trusted, so it must not finish starting.
    throw new Error("nimbus prelude: the host object is not available (globals.js must run first, and only once)");
  }
  return claim();
})();

/** A failure with a catalogued error code: thrown by host operations, or by the user. */
export class NimbusError extends Error {
  constructor(code, message, detail) {
    super(message === undefined ? "" : String(message));
    this.name = "NimbusError";
    this.code = String(code);
    this.detail = detail === undefined ? null : detail;
  }
}

/** A NimbusError `op.invalid_input` whose detail carries the reason (and `field` if given). */
export function invalidInput(reason, field) {
  const detail = field === undefined ? { reason } : { field, reason };
  return new NimbusError("op.invalid_input", reason, detail);
}

function rejectNonJson(key, value) {
  switch (typeof value) {
    case "number":
      if (value !== value || value === Infinity || value === -Infinity) {
        throw new TypeError(`${value} is not a JSON value${where(key)}`);
      }
      return value;
    case "bigint":
      throw new TypeError(`a BigInt is not a JSON value${where(key)}`);
    case "function":
    case "symbol":
      throw new TypeError(`a ${typeof value} is not a JSON value${where(key)}`);
    case "undefined":
      // An undefined object property is left out, as JSON.stringify does (and as Convex does
      // for documents); in an array it would silently become null, so it is refused.
      if (isArray(this)) throw new TypeError(`undefined is not a JSON value${where(key)}`);
      return value;
    default:
      return value;
  }
}

function where(key) {
  return key === "" ? "" : ` (at key ${jsonStringify(String(key))})`;
}

/**
 * The JSON text of `value`, refusing what JSON.stringify would silently change (NaN,
 * Infinity, functions, undefined array elements). Cycles and BigInts throw TypeError too.
 */
export function encodeJson(value) {
  return jsonStringify(value, rejectNonJson);
}

export function parseJson(text) {
  return jsonParse(text);
}

export function stringifyJson(value) {
  return jsonStringify(value);
}

function decodeOutcome(name, text) {
  const outcome = jsonParse(text);
  if (outcome !== null && typeof outcome === "object") {
    if (hasOwn(outcome, "err")) {
      const e = outcome.err ?? {};
      throw new NimbusError(e.code, e.message, e.detail);
    }
    if (hasOwn(outcome, "ok")) return outcome.ok;
  }
  throw new Error(`nimbus prelude: malformed answer from host operation ${name}`);
}

/** Runs a synchronous host operation: returns its value or throws its NimbusError. */
export function syncOp(name, payload) {
  const text = host.op(name, encodeJson(payload));
  return decodeOutcome(name, text);
}

// Pending asynchronous operations: host op id → { resolve, reject }.
const pending = new NativeMap();

/** Starts an asynchronous host operation; the promise settles when the host completes it. */
export function asyncOp(name, payload) {
  return new NativePromise((resolve, reject) => {
    const id = host.start(name, encodeJson(payload));
    reflectApply(mapSet, pending, [id, { name, resolve, reject }]);
  });
}

/** The `complete` hook: settles the promise of `start(id)`. Unknown ids are ignored. */
export function complete(id, resultJson) {
  const entry = reflectApply(mapGet, pending, [id]);
  if (entry === undefined) return;
  reflectApply(mapDelete, pending, [id]);
  let value;
  try {
    value = decodeOutcome(entry.name, resultJson);
  } catch (error) {
    entry.reject(error);
    return;
  }
  entry.resolve(value);
}

/** Hands the hooks to the runtime (once, from server.js). */
export function registerHooks(hooks) {
  host.register(hooks);
}

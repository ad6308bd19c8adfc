// @nimbus/nimbus/server (alias nimbus/server) — the authoring API: function builders, `ctx`,
// schemas; and the hooks the runtime calls (`describe`, `invoke`, `complete`, `schema`),
// registered with the host when this module is evaluated (ABI.md).

import { NimbusError, syncOp, asyncOp, complete, registerHooks, parseJson, stringifyJson } from "nimbus:internal/host";
import { optionDescriptor, tableFieldDescriptors, isPlainObject } from "nimbus:internal/validators";
import { queryBuilder } from "nimbus:internal/query";
import { v, ConvexError } from "@nimbus/nimbus/values";

export { v, ConvexError, NimbusError };

const freeze = Object.freeze;
const defineProperty = Object.defineProperty;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const isArray = Array.isArray;
const isFinite_ = Number.isFinite;
const NativePromise = Promise;
const promiseResolve = Promise.resolve.bind(Promise);
// Captured now: tenant code may replace `console` later.
const reportError = globalThis.console.error;

// ---------------------------------------------------------------------------------------------
// Function builders

// Function object → its frozen definition. Module-private: nothing else can make `describe`
// recognise a value.
const definitions = new WeakMap();

const DIRECT_CALL_MESSAGE = "Nimbus functions are called through ctx.runQuery/ctx.runMutation/ctx.runAction or the API, not directly";

function builder(builderName, kind, visibility, paginated) {
  return function (definition) {
    let handler;
    let args;
    let returns;
    if (typeof definition === "function") {
      handler = definition;
    } else if (definition !== null && typeof definition === "object") {
      ({ handler, args, returns } = definition);
    } else {
      throw new TypeError(`${builderName}() takes {args?, returns?, handler} or a handler function`);
    }
    if (typeof handler !== "function") throw new TypeError(`${builderName}({handler}): handler must be a function`);
    const fn = function () {
      throw new Error(DIRECT_CALL_MESSAGE);
    };
    definitions.set(
      fn,
      freeze({
        kind,
        visibility,
        paginated,
        handler,
        args: args === undefined ? null : optionDescriptor(args, `${builderName}({args})`),
        returns: returns === undefined ? null : optionDescriptor(returns, `${builderName}({returns})`),
      }),
    );
    // Convex's flags, for code that inspects registered functions.
    for (const [flag, value] of [
      ["isQuery", kind === "query"],
      ["isMutation", kind === "mutation"],
      ["isAction", kind === "action"],
      ["isPublic", visibility === "public"],
      ["isInternal", visibility === "internal"],
    ]) {
      defineProperty(fn, flag, { value, enumerable: false });
    }
    return freeze(fn);
  };
}

export const query = builder("query", "query", "public", false);
export const mutation = builder("mutation", "mutation", "public", false);
export const action = builder("action", "action", "public", false);
export const internalQuery = builder("internalQuery", "query", "internal", false);
export const internalMutation = builder("internalMutation", "mutation", "internal", false);
export const internalAction = builder("internalAction", "action", "internal", false);
export const paginatedQuery = builder("paginatedQuery", "query", "public", true);

export const paginationOptsValidator = v.object({
  numItems: v.number(),
  cursor: v.union(v.string(), v.null()),
  endCursor: v.optional(v.union(v.string(), v.null())),
  id: v.optional(v.number()),
  maximumRowsRead: v.optional(v.number()),
  maximumBytesRead: v.optional(v.number()),
});

// ---------------------------------------------------------------------------------------------
// Schemas

const schemas = new WeakMap();
const tableFields = new WeakMap();

// Only defineTable may construct tables, so their fields are always validator descriptors.
const CONSTRUCT = Symbol("construct");

class TableDefinition {
  #indexes = [];

  constructor(token, fields) {
    if (token !== CONSTRUCT) throw new TypeError("tables are made with defineTable(...)");
    tableFields.set(this, { fields, indexes: this.#indexes });
  }

  /** Declares an index over `fields` (in order); returns the table for chaining. */
  index(name, fields) {
    if (typeof name !== "string" || name === "") throw new TypeError("defineTable(...).index(name, fields): name must be a non-empty string");
    if (!isArray(fields) || fields.length === 0 || fields.some((f) => typeof f !== "string")) {
      throw new TypeError(`defineTable(...).index(${stringifyJson(name)}, fields): fields must be a non-empty array of field names`);
    }
    if (this.#indexes.some((index) => index.name === name)) throw new TypeError(`defineTable(...): index ${stringifyJson(name)} is declared twice`);
    this.#indexes.push(freeze({ name, fields: freeze([...fields]) }));
    return this;
  }

  searchIndex() {
    throw new TypeError("defineTable(...).searchIndex() is not supported by Nimbus");
  }

  vectorIndex() {
    throw new TypeError("defineTable(...).vectorIndex() is not supported by Nimbus");
  }
}
freeze(TableDefinition.prototype);

/** A table of `schema.ts`: a plain object of validators or `v.object({...})`. */
export function defineTable(fields) {
  return new TableDefinition(CONSTRUCT, tableFieldDescriptors(fields, "defineTable(fields)"));
}

/** The default export of `schema.ts`: `{tableName: defineTable(...)}`. Options are ignored. */
export function defineSchema(tables) {
  if (!isPlainObject(tables)) throw new TypeError("defineSchema(tables): tables must be an object of defineTable(...) values");
  const out = {};
  for (const name of Object.keys(tables)) {
    const table = tableFields.get(tables[name]);
    if (table === undefined) throw new TypeError(`defineSchema(tables): ${stringifyJson(name)} must be made by defineTable(...)`);
    defineProperty(out, name, { value: table, enumerable: true });
  }
  const schema = freeze({ tables: freeze(out) });
  const handle = freeze({});
  schemas.set(handle, schema);
  return handle;
}

function schemaHook(value) {
  const schema = value !== null && typeof value === "object" ? schemas.get(value) : undefined;
  if (schema === undefined) return null;
  const tables = {};
  for (const name of Object.keys(schema.tables)) {
    const { fields, indexes } = schema.tables[name];
    defineProperty(tables, name, { value: { fields, indexes: [...indexes] }, enumerable: true });
  }
  return stringifyJson({ tables });
}

// ---------------------------------------------------------------------------------------------
// ctx

function requireString(value, what) {
  if (typeof value !== "string") throw new TypeError(`${what} must be a string, got ${value === null ? "null" : typeof value}`);
  return value;
}

function requireFields(value, what) {
  if (!isPlainObject(value)) throw new TypeError(`${what} must be an object of fields`);
  return value;
}

function requireArgs(value, what) {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw new TypeError(`${what} must be an object`);
  return value;
}

function functionName(value, what) {
  if (typeof value === "string") return value;
  if (value !== null && (typeof value === "object" || typeof value === "function")) {
    throw new TypeError(
      `${what}: pass the function's name as a string, such as "messages:deliver"; function references (api.…/internal.…) are not supported`,
    );
  }
  throw new TypeError(`${what}: the function must be named by a string such as "messages:deliver", got ${typeof value}`);
}

function timestamp(value, what) {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== "number" || !isFinite_(ms)) throw new TypeError(`${what} must be a Date or a number of epoch milliseconds`);
  return ms;
}

/** Builds `ctx` for `kind`; every operation first checks that the invocation is still running. */
function makeCtx(kind, invocation) {
  const guard = () => {
    if (!invocation.live) throw new Error("this ctx belongs to a function invocation that has already finished");
  };
  // A synchronous op as a promise (already settled), so every ctx method returns one.
  const now = (run) =>
    new NativePromise((resolve) => {
      guard();
      resolve(run());
    });
  const later = (run) => {
    try {
      guard();
      return run();
    } catch (error) {
      return NativePromise.reject(error);
    }
  };
  const ctx = { auth: freeze({ getUserIdentity: () => promiseResolve(null) }) };

  if (kind === "query" || kind === "mutation") {
    const db = {
      get: (...a) =>
        now(() =>
          a.length >= 2
            ? syncOp("db.get", { table: requireString(a[0], "db.get(table, id): table"), id: requireString(a[1], "db.get(table, id): id") })
            : syncOp("db.get", { table: null, id: requireString(a[0], "db.get(id): id") }),
        ),
      query: (table) => queryBuilder(table, guard),
    };
    if (kind === "mutation") {
      db.insert = (table, fields) =>
        now(() => syncOp("db.insert", { table: requireString(table, "db.insert(table, fields): table"), fields: requireFields(fields, "db.insert(table, fields): fields") }));
      db.patch = (...a) => now(() => syncOp("db.patch", targetAndFields("db.patch", a)));
      db.replace = (...a) => now(() => syncOp("db.replace", targetAndFields("db.replace", a)));
      db.delete = (...a) =>
        now(() =>
          a.length >= 2
            ? syncOp("db.delete", { table: requireString(a[0], "db.delete(table, id): table"), id: requireString(a[1], "db.delete(table, id): id") })
            : syncOp("db.delete", { table: null, id: requireString(a[0], "db.delete(id): id") }),
        );
    }
    ctx.db = freeze(db);
  }

  if (kind === "mutation" || kind === "action") {
    // In a mutation jobs are part of the transaction (sync ops); in an action they are
    // created at once (async ops).
    const op = kind === "mutation" ? (name, payload) => now(() => syncOp(name, payload())) : (name, payload) => later(() => asyncOp(name, payload()));
    ctx.scheduler = freeze({
      runAfter: (ms, fn, args) =>
        op("scheduler.runAfter", () => {
          if (typeof ms !== "number" || !isFinite_(ms)) throw new TypeError("scheduler.runAfter(ms, name, args): ms must be a number");
          return { ms, name: functionName(fn, "scheduler.runAfter(ms, name, args)"), args: requireArgs(args, "scheduler.runAfter(ms, name, args): args") };
        }),
      runAt: (at, fn, args) =>
        op("scheduler.runAt", () => ({
          at: timestamp(at, "scheduler.runAt(timestamp, name, args): timestamp"),
          name: functionName(fn, "scheduler.runAt(timestamp, name, args)"),
          args: requireArgs(args, "scheduler.runAt(timestamp, name, args): args"),
        })),
      cancel: (jobId) => op("scheduler.cancel", () => ({ jobId: requireString(jobId, "scheduler.cancel(jobId): jobId") })),
    });
  }

  if (kind === "action") {
    const run = (opName, method) => (name, args) =>
      later(() => asyncOp(opName, { name: functionName(name, `${method}(name, args)`), args: requireArgs(args, `${method}(name, args): args`) }));
    ctx.runQuery = run("run.query", "ctx.runQuery");
    ctx.runMutation = run("run.mutation", "ctx.runMutation");
    ctx.runAction = run("run.action", "ctx.runAction");
  }
  return ctx;
}

/** `(table, id, fields)` or `(id, fields)`, told apart by the argument count. */
function targetAndFields(method, a) {
  if (a.length >= 3) {
    return {
      table: requireString(a[0], `${method}(table, id, fields): table`),
      id: requireString(a[1], `${method}(table, id, fields): id`),
      fields: requireFields(a[2], `${method}(table, id, fields): fields`),
    };
  }
  return { table: null, id: requireString(a[0], `${method}(id, fields): id`), fields: requireFields(a[1], `${method}(id, fields): fields`) };
}

// ---------------------------------------------------------------------------------------------
// Timers (actions only)

/**
 * Defines `setTimeout`/`clearTimeout` for the duration of one action and returns the function
 * that removes them again (restoring whatever was there) and drops callbacks not yet run.
 */
function installTimers(invocation) {
  const callbacks = new Map();
  let nextHandle = 1;
  function setTimeout(callback, ms, ...rest) {
    if (typeof callback !== "function") throw new TypeError("setTimeout(callback, ms): callback must be a function");
    let delay = Number(ms);
    if (!(delay >= 0)) delay = 0;
    const handle = nextHandle++;
    callbacks.set(handle, { callback, rest });
    asyncOp("timer", { ms: delay }).then(
      () => {
        const entry = callbacks.get(handle);
        if (entry === undefined || !invocation.live) return;
        callbacks.delete(handle);
        try {
          entry.callback(...entry.rest);
        } catch (error) {
          reportError("Uncaught error in a setTimeout callback:", error);
        }
      },
      () => callbacks.delete(handle),
    );
    return handle;
  }
  function clearTimeout(handle) {
    callbacks.delete(handle);
  }
  const saved = [];
  for (const [name, value] of [
    ["setTimeout", setTimeout],
    ["clearTimeout", clearTimeout],
  ]) {
    saved.push([name, getOwnPropertyDescriptor(globalThis, name), value]);
    defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }
  return () => {
    callbacks.clear();
    for (const [name, previous, ours] of saved) {
      const current = getOwnPropertyDescriptor(globalThis, name);
      if (current === undefined || current.value !== ours) continue; // replaced by the tenant: leave it
      if (previous === undefined) delete globalThis[name];
      else defineProperty(globalThis, name, previous);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Hooks

function describe(value) {
  const definition = typeof value === "function" ? definitions.get(value) : undefined;
  if (definition === undefined) return null;
  const { kind, visibility, args, returns, paginated } = definition;
  return stringifyJson({ kind, visibility, args, returns, paginated });
}

/**
 * Runs a function; never rejects (ABI.md) except on out of memory. `requestId` only tags the invocation for the host,
 * which already knows it, so it is unused here.
 */
async function invoke(value, kind, argsJson, requestId) {
  void requestId;
  try {
    const definition = typeof value === "function" ? definitions.get(value) : undefined;
    if (definition === undefined) throw new Error("nimbus prelude: invoke() was given a value that is not a Nimbus function");
    if (definition.kind !== kind) throw new Error(`nimbus prelude: invoke() was asked to run a ${definition.kind} as a ${kind}`);
    const args = parseJson(argsJson);
    const invocation = { live: true };
    const ctx = makeCtx(kind, invocation);
    const removeTimers = kind === "action" ? installTimers(invocation) : null;
    let result;
    try {
      result = await definition.handler(ctx, args);
    } finally {
      invocation.live = false;
      if (removeTimers !== null) removeTimers();
    }
    return encodeOk(result);
  } catch (error) {
    // Out of memory is the runtime's to classify (runtime.memory_limit), not the tenant's
    // error: let it reject, the one exception to "never rejects".
    if (isOutOfMemory(error)) throw error;
    return encodeErr(error);
  }
}

function isOutOfMemory(error) {
  return safeRead(() => error instanceof Error && error.name === "InternalError" && error.message === "out of memory", false);
}

function encodeOk(value) {
  let text;
  try {
    text = stringifyJson(value);
  } catch (error) {
    return encodeErr(new TypeError(`the return value cannot be encoded as JSON: ${safeRead(() => error.message, "")}`));
  }
  return `{"ok":${text === undefined ? "null" : text}}`;
}

/** Reads a property of a thrown value, which may be a hostile object (getters, proxies). */
function safeRead(read, fallback) {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** A value as JSON (a plain copy), or undefined when it is not encodable. */
function jsonCopy(value) {
  try {
    const text = stringifyJson(value);
    return text === undefined ? undefined : parseJson(text);
  } catch {
    return undefined;
  }
}

/**
 * The error envelope. An Error gives its `name`, `message` and `stack`; a NimbusError also
 * `code` and `detail`; any error with a JSON-encodable `data` also `data`. A thrown non-Error
 * is reported as errorName "Error", with its string form as message (objects: their JSON
 * text when encodable) and an empty stack.
 */
function encodeErr(error) {
  try {
    const out = {};
    if (safeRead(() => error instanceof NimbusError, false)) {
      out.code = safeRead(() => String(error.code), "function.thrown");
      const detail = jsonCopy(safeRead(() => error.detail, null));
      out.detail = detail === undefined ? null : detail;
    }
    if (safeRead(() => error instanceof Error, false)) {
      const name = safeRead(() => error.name, "Error");
      const message = safeRead(() => error.message, "");
      const stack = safeRead(() => error.stack, "");
      out.errorName = typeof name === "string" && name !== "" ? name : "Error";
      out.message = typeof message === "string" ? message : safeRead(() => String(message), "");
      out.stack = typeof stack === "string" ? withoutPreludeFrames(stack) : "";
    } else {
      out.errorName = "Error";
      out.message = nonErrorMessage(error);
      out.stack = "";
    }
    if (error !== null && (typeof error === "object" || typeof error === "function")) {
      const data = safeRead(() => error.data, undefined);
      if (data !== undefined) {
        const copy = jsonCopy(data);
        if (copy !== undefined) out.data = copy;
      }
    }
    return stringifyJson({ err: out });
  } catch {
    return '{"err":{"errorName":"Error","message":"the error could not be encoded","stack":""}}';
  }
}

/** A stack without the frames of the built-in modules: a tenant only sees its own code. */
function withoutPreludeFrames(stack) {
  return stack
    .split("\n")
    .filter((line) => !PRELUDE_FRAME.test(line))
    .join("\n");
}
const PRELUDE_FRAME = /(?:\(|at )(?:@nimbus\/nimbus\/|nimbus\/server:|nimbus:internal\/)/;

function nonErrorMessage(value) {
  if (value !== null && typeof value === "object") {
    const text = safeRead(() => stringifyJson(value), undefined);
    if (typeof text === "string") return text;
  }
  return safeRead(() => String(value), "a value that cannot be converted to a string");
}

// `namespaces`: where the runtime keeps each module's namespace once it has imported it.
registerHooks(freeze({ describe, invoke, complete, schema: schemaHook, namespaces: Object.create(null) }));

// nimbus:internal/query — `ctx.db.query(table)`: the query builder, filter expressions, index
// ranges, and their translation into the `db.query` / `db.paginate` host operations.
//
// What the engine can take is pushed down: native `.filter(field, op, value)` filters, every
// top-level conjunct of a `.filter(q => ...)` expression that compares a field with a JSON
// literal, and the comparisons of a `.withIndex` range. Anything else (`q.or`, `q.not`, two
// fields compared, arithmetic, comparisons with `undefined`) is evaluated here, over the rows
// the pushed-down part returns, with the same semantics as the engine (data.md §3): a document
// lacking a field never matches a comparison on it; `gt`/`gte`/`lt`/`lte` only compare two
// strings (by code point, which is UTF-8 byte order) or two numbers; `eq` is JSON equality.
// One extension, for Convex code: comparing with the literal `undefined` tests presence,
// `q.eq(q.field("x"), undefined)` matches documents without `x` and `q.neq` those with it.
//
// Builders are immutable: every method returns a new query, so a query can be reused.

import { syncOp, invalidInput, NimbusError, stringifyJson } from "nimbus:internal/host";

const freeze = Object.freeze;
const hasOwn = Object.hasOwn;
const getPrototypeOf = Object.getPrototypeOf;
const objectKeys = Object.keys;
const isArray = Array.isArray;
const isInteger = Number.isInteger;
const isFinite_ = Number.isFinite;

/** Rows fetched per `db.paginate` call by `for await (const doc of query)`. */
const ITERATION_PAGE_SIZE = 100;

const NATIVE_OPS = freeze(["eq", "neq", "gt", "gte", "lt", "lte", "in"]);
const RANGE_OPS = freeze(["gt", "gte", "lt", "lte"]);
const FLIPPED = freeze({ eq: "eq", neq: "neq", gt: "lt", gte: "lte", lt: "gt", lte: "gte" });

// The value of a missing field (and of an arithmetic expression over one).
const MISSING = Symbol("missing");

// ---------------------------------------------------------------------------------------------
// Filter expressions

const expressionNodes = new WeakMap();

/** An opaque filter expression built with `q`; only this module can read its node. */
class Expression {}
freeze(Expression.prototype);

function expression(node) {
  const e = freeze(new Expression());
  expressionNodes.set(e, freeze(node));
  return e;
}

function fieldNode(path, where) {
  if (typeof path !== "string") throw new TypeError(`${where}: a field name must be a string, got ${typeof path}`);
  const segments = path.split(".");
  if (segments.some((s) => s === "")) throw invalidInput(`${where}: invalid field path ${stringifyJson(path)}: empty segment`);
  return { k: "field", path, segments: freeze(segments) };
}

const UNDEFINED_NODE = freeze({ k: "undefined" });

/** An operand: an expression, a field name (a string in first position of a comparison), or a literal. */
function operand(value, fieldIfString, where) {
  if (value !== null && typeof value === "object" && expressionNodes.has(value)) return expressionNodes.get(value);
  if (fieldIfString && typeof value === "string") return fieldNode(value, where);
  if (value === undefined) return UNDEFINED_NODE;
  return { k: "literal", value };
}

function comparison(op) {
  return (...args) => {
    if (args.length !== 2) throw new TypeError(`q.${op}(a, b) takes 2 arguments, got ${args.length}`);
    const where = `q.${op}`;
    return expression({ k: "compare", op, a: operand(args[0], true, where), b: operand(args[1], false, where) });
  };
}

function arithmetic(op, arity) {
  return (...args) => {
    if (args.length !== arity) throw new TypeError(`q.${op}() takes ${arity} argument${arity === 1 ? "" : "s"}, got ${args.length}`);
    return expression({ k: "arith", op, items: freeze(args.map((a) => operand(a, false, `q.${op}`))) });
  };
}

/** The `q` handed to `.filter(q => ...)`. */
const filterBuilder = freeze({
  field: (path) => expression(fieldNode(path, "q.field")),
  eq: comparison("eq"),
  neq: comparison("neq"),
  gt: comparison("gt"),
  gte: comparison("gte"),
  lt: comparison("lt"),
  lte: comparison("lte"),
  and: (...items) => expression({ k: "and", items: freeze(items.map((x) => operand(x, false, "q.and"))) }),
  or: (...items) => expression({ k: "or", items: freeze(items.map((x) => operand(x, false, "q.or"))) }),
  not: (...args) => {
    if (args.length !== 1) throw new TypeError(`q.not(x) takes 1 argument, got ${args.length}`);
    return expression({ k: "not", item: operand(args[0], false, "q.not") });
  },
  add: arithmetic("add", 2),
  sub: arithmetic("sub", 2),
  mul: arithmetic("mul", 2),
  div: arithmetic("div", 2),
  mod: arithmetic("mod", 2),
  neg: arithmetic("neg", 1),
});

function isPlainObject(value) {
  if (value === null || typeof value !== "object" || isArray(value)) return false;
  const proto = getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Whether `value` is JSON as it is (no NaN, no undefined, no Date, no cycle). */
function isJsonValue(value, seen = new Set()) {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return isFinite_(value);
    case "object": {
      if (value === null) return true;
      if (seen.has(value)) return false;
      if (!isArray(value) && !isPlainObject(value)) return false;
      seen.add(value);
      const ok = isArray(value)
        ? value.every((item) => isJsonValue(item, seen))
        : objectKeys(value).every((key) => isJsonValue(value[key], seen));
      seen.delete(value);
      return ok;
    }
    default:
      return false;
  }
}

/** JSON equality: numbers numerically, arrays element-wise, objects by key set (order ignored). */
export function jsonEqual(a, b) {
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return a === b;
  if (isArray(a)) return isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isArray(b) || !isPlainObject(a) || !isPlainObject(b)) return false;
  const keys = objectKeys(a);
  return keys.length === objectKeys(b).length && keys.every((key) => hasOwn(b, key) && jsonEqual(a[key], b[key]));
}

/** A value for an error message, whatever it is. */
function show(value) {
  if (typeof value === "string") return stringifyJson(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) return String(value);
  return typeof value;
}

/** Orders strings by code point (= UTF-8 byte order), not by UTF-16 code unit as `<` does. */
export function compareStrings(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Only surrogates (0xD800–0xDFFF) are out of order in UTF-16: a supplementary character
    // must sort after every BMP character, including U+E000–U+FFFF.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function getPath(doc, segments) {
  let current = doc;
  for (const segment of segments) {
    if (current === null || typeof current !== "object" || isArray(current) || !hasOwn(current, segment)) return MISSING;
    current = current[segment];
  }
  return current === undefined ? MISSING : current;
}

function evaluate(node, doc) {
  switch (node.k) {
    case "field":
      return getPath(doc, node.segments);
    case "literal":
      return node.value;
    case "undefined":
      return MISSING;
    case "compare":
      return compare(node, doc);
    case "and":
      return node.items.every((item) => evaluate(item, doc) === true);
    case "or":
      return node.items.some((item) => evaluate(item, doc) === true);
    case "not":
      return evaluate(node.item, doc) !== true;
    case "arith":
      return arith(node, doc);
    default:
      throw new Error(`nimbus prelude: unknown expression node ${node.k}`);
  }
}

function compare(node, doc) {
  const { op } = node;
  const a = evaluate(node.a, doc);
  const b = evaluate(node.b, doc);
  if (node.a.k === "undefined" || node.b.k === "undefined") {
    const other = node.a.k === "undefined" ? b : a;
    if (op === "eq") return other === MISSING;
    if (op === "neq") return other !== MISSING;
    return false;
  }
  if (a === MISSING || b === MISSING) return false;
  switch (op) {
    case "eq":
      return jsonEqual(a, b);
    case "neq":
      return !jsonEqual(a, b);
    default: {
      let order;
      if (typeof a === "number" && typeof b === "number") order = a < b ? -1 : a > b ? 1 : a === b ? 0 : NaN;
      else if (typeof a === "string" && typeof b === "string") order = compareStrings(a, b);
      else return false;
      if (op === "gt") return order > 0;
      if (op === "gte") return order >= 0;
      if (op === "lt") return order < 0;
      return order <= 0;
    }
  }
}

function arith(node, doc) {
  const values = node.items.map((item) => evaluate(item, doc));
  if (values.some((x) => typeof x !== "number")) return MISSING;
  const [a, b] = values;
  let result;
  switch (node.op) {
    case "add":
      result = a + b;
      break;
    case "sub":
      result = a - b;
      break;
    case "mul":
      result = a * b;
      break;
    case "div":
      result = a / b;
      break;
    case "mod":
      result = a % b;
      break;
    default:
      result = -a;
  }
  return isFinite_(result) ? result : MISSING;
}

/** The node of a filter callback's result (an expression or a boolean). */
function filterNode(result) {
  if (result !== null && typeof result === "object" && expressionNodes.has(result)) return expressionNodes.get(result);
  if (typeof result === "boolean") return { k: "literal", value: result };
  if (result !== null && (typeof result === "object" || typeof result === "function") && typeof result.then === "function") {
    throw new TypeError("filter(q => ...): the callback must return an expression synchronously, not a promise");
  }
  throw new TypeError("filter(q => ...): the callback must return an expression built with q (q.eq, q.and, ...)");
}

/** Splits a filter into pushed-down `{field, op, value}` filters and JavaScript-evaluated nodes. */
function splitFilter(node, pushed, remaining) {
  if (node.k === "and") {
    for (const item of node.items) splitFilter(item, pushed, remaining);
    return;
  }
  if (node.k === "literal" && node.value === true) return;
  const filter = pushable(node);
  if (filter === null) remaining.push(node);
  else pushed.push(filter);
}

function pushable(node) {
  if (node.k !== "compare") return null;
  let field;
  let literal;
  let op = node.op;
  if (node.a.k === "field" && node.b.k === "literal") [field, literal] = [node.a, node.b];
  else if (node.a.k === "literal" && node.b.k === "field") [field, literal, op] = [node.b, node.a, FLIPPED[op]];
  else return null;
  const value = literal.value;
  if (!isJsonValue(value)) return null;
  // The engine refuses a range bound that is not a string or a number; such a comparison
  // never matches, which the JavaScript evaluation answers without an error.
  if (RANGE_OPS.includes(op) && typeof value !== "string" && typeof value !== "number") return null;
  return freeze({ field: field.path, op, value });
}

// ---------------------------------------------------------------------------------------------
// Index ranges

const rangeSteps = new WeakMap();

/** The `q` handed to `.withIndex(name, q => ...)`: `.eq` on a prefix, then one range. */
class IndexRange {
  eq(field, value) {
    return addStep(this, "eq", field, value);
  }
  gt(field, value) {
    return addStep(this, "gt", field, value);
  }
  gte(field, value) {
    return addStep(this, "gte", field, value);
  }
  lt(field, value) {
    return addStep(this, "lt", field, value);
  }
  lte(field, value) {
    return addStep(this, "lte", field, value);
  }
}
freeze(IndexRange.prototype);

function indexRange(steps) {
  const range = freeze(new IndexRange());
  rangeSteps.set(range, freeze(steps));
  return range;
}

function addStep(range, op, field, value) {
  const steps = rangeSteps.get(range);
  if (steps === undefined) throw new TypeError(`${op}() called on something that is not an index range`);
  if (typeof field !== "string") throw new TypeError(`withIndex: .${op}(field, value) needs a field name, got ${typeof field}`);
  return indexRange([...steps, freeze({ op, field, value })]);
}

/**
 * Checks the index range against the index's fields and turns it into filters.
 * Returns `{filters, remaining, orderField}`.
 */
function planIndex(indexName, steps, indexFields) {
  const fields = indexFields.includes("_creationTime") ? indexFields : [...indexFields, "_creationTime"];
  const where = `withIndex(${stringifyJson(indexName)})`;
  const listing = `the index fields are ${indexFields.map((f) => stringifyJson(f)).join(", ")}`;
  const invalid = (message) => invalidInput(`${where}: ${message} (${listing})`);
  let equalities = 0;
  let rangeField = null;
  let lower = false;
  let upper = false;
  const filters = [];
  const remaining = [];
  for (const { op, field, value } of steps) {
    if (op === "eq") {
      if (rangeField !== null) throw invalid(`.eq(${stringifyJson(field)}) cannot follow a range bound`);
      if (equalities >= fields.length) throw invalid(`.eq(${stringifyJson(field)}): every index field is already constrained`);
      if (field !== fields[equalities]) {
        throw invalid(`.eq() must name the index fields in order: expected ${stringifyJson(fields[equalities])}, got ${stringifyJson(field)}`);
      }
      equalities += 1;
      if (value === undefined) remaining.push({ k: "compare", op: "eq", a: fieldNode(field, where), b: UNDEFINED_NODE });
      else filters.push(freeze({ field, op, value }));
      continue;
    }
    if (rangeField === null) {
      if (equalities >= fields.length) throw invalid(`.${op}(${stringifyJson(field)}): every index field is already constrained`);
      if (field !== fields[equalities]) {
        throw invalid(`.${op}() must be on the first field after the .eq() prefix: expected ${stringifyJson(fields[equalities])}, got ${stringifyJson(field)}`);
      }
      rangeField = field;
    } else if (field !== rangeField) {
      throw invalid(`.${op}(${stringifyJson(field)}): both range bounds must be on ${stringifyJson(rangeField)}`);
    }
    const isLower = op === "gt" || op === "gte";
    if (isLower ? lower : upper) throw invalid(`at most one ${isLower ? "lower (.gt/.gte)" : "upper (.lt/.lte)"} bound`);
    if (isLower) lower = true;
    else upper = true;
    if (typeof value !== "string" && typeof value !== "number") {
      throw invalid(`.${op}(${stringifyJson(field)}, value): a range bound must be a string or a number`);
    }
    filters.push(freeze({ field, op, value }));
  }
  let orderField;
  if (equalities < indexFields.length) orderField = indexFields[equalities];
  else if (rangeField === "_creationTime") orderField = "_creationTime";
  else orderField = "_id";
  return { filters, remaining, orderField };
}

// ---------------------------------------------------------------------------------------------
// The query builder

const EMPTY_STATE = freeze({
  table: "",
  filters: freeze([]),
  remaining: freeze([]),
  index: null, // { name, steps }
  order: null, // { direction, field } (field undefined: the default)
});

/**
 * `ctx.db.query(table)`. `guard()` throws when the invocation that owns the ctx is over; it
 * runs before every host operation.
 */
export function queryBuilder(table, guard) {
  if (typeof table !== "string") throw new TypeError(`ctx.db.query(table): table must be a string, got ${typeof table}`);
  return new Query(CONSTRUCT, { ...EMPTY_STATE, table }, guard);
}

// Only this module may construct queries, so every query's guard is a ctx's.
const CONSTRUCT = Symbol("construct");

class Query {
  #state;
  #guard;

  constructor(token, state, guard) {
    if (token !== CONSTRUCT) throw new TypeError("queries are made with ctx.db.query(table)");
    this.#state = freeze(state);
    this.#guard = guard;
  }

  #with(changes) {
    return new Query(CONSTRUCT, { ...this.#state, ...changes }, this.#guard);
  }

  /**
   * `.filter(field, op, value)` (native, pushed down as is) or `.filter(q => expression)`.
   * Repeated filters are ANDed.
   */
  filter(...args) {
    const state = this.#state;
    if (args.length === 1 && typeof args[0] === "function") {
      const node = filterNode(args[0](filterBuilder));
      const filters = [...state.filters];
      const remaining = [...state.remaining];
      splitFilter(node, filters, remaining);
      return this.#with({ filters: freeze(filters), remaining: freeze(remaining) });
    }
    if (args.length === 3) {
      const [field, op, value] = args;
      fieldNode(field, "filter(field, op, value)");
      if (!NATIVE_OPS.includes(op)) {
        throw invalidInput(`filter(field, op, value): op must be one of ${NATIVE_OPS.join(", ")}, got ${show(op)}`);
      }
      if (value === undefined) throw new TypeError("filter(field, op, value): value must be a JSON value, got undefined");
      return this.#with({ filters: freeze([...state.filters, freeze({ field, op, value })]) });
    }
    throw new TypeError("filter() takes (field, op, value) or a callback (q => expression)");
  }

  /** Uses the named index: `.eq` on a prefix of its fields, then at most one range. */
  withIndex(name, range) {
    if (typeof name !== "string") throw new TypeError(`withIndex(name): name must be a string, got ${typeof name}`);
    if (this.#state.index !== null) throw invalidInput("withIndex() can only be called once per query");
    let steps = freeze([]);
    if (range !== undefined) {
      if (typeof range !== "function") throw new TypeError("withIndex(name, range): range must be a function (q => q.eq(...))");
      const result = range(indexRange([]));
      steps = result !== null && typeof result === "object" ? rangeSteps.get(result) : undefined;
      if (steps === undefined) throw new TypeError("withIndex(name, q => ...): the callback must return the range built on q");
    }
    return this.#with({ index: freeze({ name, steps }) });
  }

  /** Convex's explicit full scan: the default here, so a no-op. */
  fullTableScan() {
    return this;
  }

  withSearchIndex() {
    throw new TypeError("withSearchIndex() is not supported by Nimbus (no search indexes)");
  }

  /** `.order("asc" | "desc", field = "_id")`; with `withIndex`, only the direction. */
  order(direction, field) {
    if (direction !== "asc" && direction !== "desc") {
      throw invalidInput(`order(): direction must be "asc" or "desc", got ${show(direction)}`);
    }
    if (field !== undefined) fieldNode(field, "order(direction, field)");
    if (this.#state.order !== null) throw invalidInput("order() can only be called once per query");
    return this.#with({ order: freeze({ direction, field }) });
  }

  /** The host payload (without limit/pagination) and the JavaScript-side filter nodes. */
  #plan() {
    this.#guard();
    const { table, index, order } = this.#state;
    const filters = [...this.#state.filters];
    const remaining = [...this.#state.remaining];
    let orderPayload = null;
    if (index !== null) {
      const indexFields = syncOp("db.indexFields", { table, index: index.name });
      const planned = planIndex(index.name, index.steps, indexFields);
      filters.push(...planned.filters);
      remaining.push(...planned.remaining);
      if (order !== null && order.field !== undefined && order.field !== planned.orderField) {
        throw invalidInput(
          `order(): with withIndex(${stringifyJson(index.name)}) results are ordered by ${stringifyJson(planned.orderField)}; pass only a direction`,
        );
      }
      orderPayload = { field: planned.orderField, direction: order === null ? "asc" : order.direction };
    } else if (order !== null) {
      orderPayload = { field: order.field === undefined ? "_id" : order.field, direction: order.direction };
    }
    const matches = remaining.length === 0 ? null : (doc) => remaining.every((node) => evaluate(node, doc) === true);
    return { payload: { table, filters, order: orderPayload, index: index === null ? null : index.name }, matches };
  }

  #fetch(payload, limit) {
    return syncOp("db.query", { table: payload.table, filters: payload.filters, order: payload.order, limit, index: payload.index });
  }

  #page(payload, cursor, numItems) {
    return syncOp("db.paginate", { ...payload, numItems, cursor });
  }

  /** Every matching document. */
  async collect() {
    const { payload, matches } = this.#plan();
    const rows = this.#fetch(payload, null);
    return matches === null ? rows : rows.filter(matches);
  }

  /**
   * The first `n` matching documents. With a JavaScript-side filter the host query runs
   * without a limit and the filter picks the first `n`.
   */
  async take(n) {
    if (!isInteger(n) || n < 0) throw invalidInput(`take(n): n must be a non-negative integer, got ${show(n)}`);
    const { payload, matches } = this.#plan();
    if (matches === null) return this.#fetch(payload, n);
    return this.#fetch(payload, null).filter(matches).slice(0, n);
  }

  /** The first matching document, or null. */
  async first() {
    const [doc] = await this.take(1);
    return doc === undefined ? null : doc;
  }

  /** The only matching document, or null; a NimbusError `op.invalid_input` if there are several. */
  async unique() {
    const docs = await this.take(2);
    if (docs.length > 1) {
      const table = this.#state.table;
      const message = `unique() query returned more than one result from table ${table}:\n [${docs[0]._id}, ${docs[1]._id}, ...]`;
      throw new NimbusError("op.invalid_input", message, { reason: message });
    }
    return docs.length === 0 ? null : docs[0];
  }

  /**
   * One page: `{page, continueCursor, isDone}`. Without a JavaScript-side filter this is one
   * `db.paginate` call. With one, host pages are fetched and filtered until `numItems`
   * documents matched or the table is done; when a host page holds more matches than needed,
   * the rows up to the last needed match are fetched again from the same cursor, so
   * `continueCursor` points right after the last returned document and the page holds exactly
   * `numItems` documents (fewer only at the end). `maximumRowsRead` bounds the rows scanned in
   * that mode (the page may then be short with `isDone: false`); otherwise it,
   * `maximumBytesRead`, `endCursor` and `id` are ignored.
   */
  async paginate(options) {
    if (options === null || typeof options !== "object") throw invalidInput("paginate(options): options must be an object {numItems, cursor}");
    const { numItems, cursor = null, maximumRowsRead } = options;
    if (!isInteger(numItems) || numItems < 1) {
      throw invalidInput(`paginate(): numItems must be a positive integer, got ${show(numItems)}`, "numItems");
    }
    if (cursor !== null && typeof cursor !== "string") throw invalidInput("paginate(): cursor must be a string or null", "cursor");
    if (maximumRowsRead !== undefined && (!isInteger(maximumRowsRead) || maximumRowsRead < 1)) {
      throw invalidInput("paginate(): maximumRowsRead must be a positive integer", "maximumRowsRead");
    }
    const { payload, matches } = this.#plan();
    if (matches === null) {
      const result = this.#page(payload, cursor, numItems);
      return { page: result.page, isDone: result.isDone, continueCursor: result.continueCursor };
    }
    const budget = maximumRowsRead === undefined ? Infinity : maximumRowsRead;
    const page = [];
    let position = cursor;
    let isDone = false;
    let scanned = 0;
    while (page.length < numItems && !isDone && scanned < budget) {
      const need = numItems - page.length;
      const batch = this.#page(payload, position, Math.min(numItems, budget - scanned));
      let found = 0;
      let lastNeeded = -1;
      for (let i = 0; i < batch.page.length; i++) {
        if (matches(batch.page[i]) && ++found === need) {
          lastNeeded = i;
          break;
        }
      }
      const exact = lastNeeded >= 0 && lastNeeded < batch.page.length - 1 ? this.#page(payload, position, lastNeeded + 1) : batch;
      for (const doc of exact.page) if (matches(doc)) page.push(doc);
      scanned += exact.page.length;
      position = exact.continueCursor;
      isDone = exact.isDone;
      if (exact.page.length === 0) break;
    }
    return { page, isDone, continueCursor: position };
  }

  /** `for await (const doc of query)`: pages of ITERATION_PAGE_SIZE rows, filtered. */
  async *[Symbol.asyncIterator]() {
    const { payload, matches } = this.#plan();
    let cursor = null;
    for (;;) {
      this.#guard();
      const batch = this.#page(payload, cursor, ITERATION_PAGE_SIZE);
      for (const doc of batch.page) if (matches === null || matches(doc)) yield doc;
      if (batch.isDone || batch.page.length === 0) return;
      cursor = batch.continueCursor;
    }
  }
}
freeze(Query.prototype);

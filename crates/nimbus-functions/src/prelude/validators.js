// nimbus:internal/validators — `v`, the validator builders, and their descriptors.
//
// A validator is a frozen object with Convex's public shape (`kind`, `isOptional`, `fields`,
// `element`, `members`, `value`, `tableName`, `key`), so code that inspects validators keeps
// working. Its descriptor (ABI.md, "Validator descriptors") is kept in a module-private
// WeakMap filled only by the builders below: an object that merely looks like a validator is
// refused, so no tenant code can forge what `describe` reports.

const freeze = Object.freeze;
const defineProperty = Object.defineProperty;
const getPrototypeOf = Object.getPrototypeOf;
const objectKeys = Object.keys;
const isArray = Array.isArray;

const descriptors = new WeakMap();
const weakGet = WeakMap.prototype.get;
const weakSet = WeakMap.prototype.set;
const weakHas = WeakMap.prototype.has;
const reflectApply = Reflect.apply;

// Only this module may construct validators (`new (v.string().constructor)(...)` throws).
const CONSTRUCT = Symbol("construct");

class Validator {
  constructor(token, props, descriptor) {
    if (token !== CONSTRUCT) throw new TypeError("validators are made with v.*");
    for (const key of objectKeys(props)) setOwn(this, key, props[key]);
    freeze(this);
    reflectApply(weakSet, descriptors, [this, deepFreeze(descriptor)]);
  }
}
freeze(Validator.prototype);

/** Defines an own data property (never a setter call, even for a key named `__proto__`). */
function setOwn(object, key, value) {
  defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

function deepFreeze(value) {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    freeze(value);
    for (const key of objectKeys(value)) deepFreeze(value[key]);
  }
  return value;
}

/** Whether `value` was made by `v.*`. */
export function isValidator(value) {
  return value !== null && typeof value === "object" && reflectApply(weakHas, descriptors, [value]);
}

/** The descriptor of a validator made by `v.*` (frozen), or `undefined`. */
export function descriptorOf(value) {
  return isValidator(value) ? reflectApply(weakGet, descriptors, [value]) : undefined;
}

export function isPlainObject(value) {
  if (value === null || typeof value !== "object" || isArray(value)) return false;
  const proto = getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describeForError(value) {
  if (value === null) return "null";
  if (isArray(value)) return "an array";
  if (typeof value === "object") return "an object that was not made by v.*";
  if (typeof value === "function") return "a function (did you forget to call it, e.g. v.string()?)";
  return `${typeof value === "undefined" ? "" : "a "}${typeof value}`;
}

function requireValidator(value, where) {
  if (!isValidator(value)) throw new TypeError(`${where} must be a validator made by v.*, got ${describeForError(value)}`);
  return value;
}

function requireRequired(value, where) {
  requireValidator(value, where);
  if (value.isOptional === "optional") {
    throw new TypeError(`${where} cannot be v.optional(...): optional is only allowed for object fields`);
  }
  return value;
}

function make(kind, extra, descriptor) {
  return new Validator(CONSTRUCT, { kind, isOptional: "required", isConvexValidator: true, ...extra }, descriptor);
}

/** The fields descriptor map of a plain object of validators (optional fields allowed). */
function fieldDescriptors(fields, where) {
  if (!isPlainObject(fields)) throw new TypeError(`${where} must be an object of validators, got ${describeForError(fields)}`);
  const out = {};
  const copy = {};
  for (const name of objectKeys(fields)) {
    const field = requireValidator(fields[name], `${where}.${name}`);
    setOwn(out, name, descriptorOf(field));
    setOwn(copy, name, field);
  }
  return { descriptors: out, validators: freeze(copy) };
}

/**
 * The descriptor of an `args` or `returns` option: a validator (not optional), or a plain
 * object of validators, which stands for `v.object({...})`.
 */
export function optionDescriptor(value, where) {
  if (isValidator(value)) return descriptorOf(requireRequired(value, where));
  if (isPlainObject(value)) return { type: "object", fields: fieldDescriptors(value, where).descriptors };
  throw new TypeError(`${where} must be a validator made by v.* or an object of validators, got ${describeForError(value)}`);
}

/**
 * The field validators of a table: a plain object of validators or a `v.object(...)`.
 * Returns the fields' descriptor map.
 */
export function tableFieldDescriptors(value, where) {
  if (isValidator(value)) {
    if (value.kind !== "object" || value.isOptional === "optional") {
      throw new TypeError(`${where} must be v.object({...}) or an object of validators (a union of objects is not supported), got v.${value.kind}(...)`);
    }
    return descriptorOf(value).fields;
  }
  return fieldDescriptors(value, where).descriptors;
}

function notSupported(name) {
  return () => {
    throw new TypeError(`v.${name}() is not supported by Nimbus: values are JSON (use v.number() or v.string())`);
  };
}

export const v = freeze({
  string: () => make("string", {}, { type: "string" }),
  number: () => make("float64", {}, { type: "number" }),
  float64: () => make("float64", {}, { type: "number" }),
  boolean: () => make("boolean", {}, { type: "boolean" }),
  null: () => make("null", {}, { type: "null" }),
  any: () => make("any", {}, { type: "any" }),

  literal(value) {
    const ok = typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value));
    if (!ok) throw new TypeError(`v.literal() takes a string, a finite number or a boolean, got ${describeForError(value)}`);
    return make("literal", { value }, { type: "literal", value });
  },

  id(tableName) {
    if (typeof tableName !== "string" || tableName === "") {
      throw new TypeError(`v.id() takes a table name, got ${describeForError(tableName)}`);
    }
    return make("id", { tableName }, { type: "id", table: tableName });
  },

  array(element) {
    requireRequired(element, "v.array(item): item");
    return make("array", { element }, { type: "array", items: descriptorOf(element) });
  },

  object(fields) {
    const { descriptors: fieldDescs, validators } = fieldDescriptors(fields, "v.object(fields): fields");
    return make("object", { fields: validators }, { type: "object", fields: fieldDescs });
  },

  record(keys, values) {
    requireRequired(keys, "v.record(keys, values): keys");
    requireRequired(values, "v.record(keys, values): values");
    if (keys.kind !== "string" && keys.kind !== "id") {
      throw new TypeError(`v.record(keys, values): keys must be v.string() or v.id(table), got v.${keys.kind}(...)`);
    }
    return make("record", { key: keys, value: values }, { type: "record", keys: descriptorOf(keys), values: descriptorOf(values) });
  },

  optional(inner) {
    requireRequired(inner, "v.optional(x): x");
    const props = {};
    for (const key of objectKeys(inner)) setOwn(props, key, inner[key]);
    props.isOptional = "optional";
    return new Validator(CONSTRUCT, props, { type: "optional", inner: descriptorOf(inner) });
  },

  union(...members) {
    members.forEach((member, i) => requireRequired(member, `v.union(...): member ${i}`));
    return make("union", { members: freeze(members) }, { type: "union", members: members.map(descriptorOf) });
  },

  /** `v.nullable(x)` is `v.union(x, v.null())`. */
  nullable(inner) {
    return v.union(inner, v.null());
  },

  int64: notSupported("int64"),
  bigint: notSupported("bigint"),
  bytes: notSupported("bytes"),
});

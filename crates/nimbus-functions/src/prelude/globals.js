// globals.js — the classic script every isolate evaluates before any module (ABI.md).
//
// Takes the host object off the global scope (keeping only `log` for `console`, and leaving a
// one-shot hand-off that `nimbus:internal/host` claims), then defines `console` and, where
// QuickJS lacks them, `TextEncoder`, `TextDecoder`, `structuredClone` and `queueMicrotask`.
// It defines no timers, `fetch`, `require` or `process`.

(function () {
  "use strict";

  const host = globalThis.__nimbus_host;
  if (host === null || typeof host !== "object") throw new Error("nimbus prelude: __nimbus_host is missing");
  if (!delete globalThis.__nimbus_host || "__nimbus_host" in globalThis) {
    throw new Error("nimbus prelude: __nimbus_host could not be removed (install it as a configurable property)");
  }
  const HANDOFF = Symbol.for("nimbus.host");
  Object.defineProperty(globalThis, HANDOFF, {
    configurable: true,
    enumerable: false,
    writable: false,
    value: function claim() {
      delete globalThis[HANDOFF];
      return host;
    },
  });

  // QuickJS-ng's V8-style `Error.prepareStackTrace` hands its hook CallSite objects whose
  // getFunction() returns the function of every frame, strict and native ones included: the
  // prelude's private functions (and the host's) would leak whenever an Error is created
  // under them. The hook is pinned to undefined (setting it is ignored); `error.stack` and
  // `Error.captureStackTrace` keep working.
  if (Object.getOwnPropertyDescriptor(Error, "prepareStackTrace") !== undefined) {
    Object.defineProperty(Error, "prepareStackTrace", {
      get: () => undefined,
      set: () => {},
      enumerable: false,
      configurable: false,
    });
  }

  const defineGlobal = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });

  // -------------------------------------------------------------------------------------------
  // console

  // Bounds on what one inspected value prints, so a huge or deep object cannot flood the log.
  const MAX_DEPTH = 4;
  const MAX_ITEMS = 100;
  const MAX_STRING = 10000;

  const objectToString = Object.prototype.toString;
  const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

  function quote(s) {
    const text = JSON.stringify(s.length > MAX_STRING ? s.slice(0, MAX_STRING) : s);
    return s.length > MAX_STRING ? `${text.slice(0, -1)}…"` : text;
  }

  function errorText(error) {
    let header;
    try {
      header = String(error);
    } catch {
      header = "Error";
    }
    let stack;
    try {
      stack = error.stack;
    } catch {
      stack = undefined;
    }
    if (typeof stack !== "string" || stack === "") return header;
    return stack.startsWith(header) ? stack.trimEnd() : `${header}\n${stack.trimEnd()}`;
  }

  function constructorName(value) {
    try {
      const proto = Object.getPrototypeOf(value);
      if (proto === null) return "[Object: null prototype]";
      const name = proto.constructor && proto.constructor.name;
      return typeof name === "string" ? name : "";
    } catch {
      return "";
    }
  }

  function inspectKey(key) {
    if (typeof key === "symbol") return `[${String(key)}]`;
    return IDENTIFIER.test(key) ? key : quote(key);
  }

  function items(parts, open, close, prefix) {
    if (parts.length === 0) return `${prefix}${open}${close}`;
    return `${prefix}${open} ${parts.join(", ")} ${close}`;
  }

  function inspect(value, depth, seen) {
    switch (typeof value) {
      case "string":
        return quote(value);
      case "number":
        return Object.is(value, -0) ? "-0" : String(value);
      case "bigint":
        return `${value}n`;
      case "undefined":
        return "undefined";
      case "boolean":
        return String(value);
      case "symbol":
        return String(value);
      case "function":
        return value.name ? `[Function: ${value.name}]` : "[Function (anonymous)]";
    }
    if (value === null) return "null";
    if (seen.includes(value)) return "[Circular]";
    try {
      if (value instanceof Error) return errorText(value);
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString();
      if (value instanceof RegExp) return String(value);
      if (value instanceof Promise) return "Promise {}";
      if (value instanceof WeakMap || value instanceof WeakSet) return `${constructorName(value)} { <items unknown> }`;
      const name = constructorName(value);
      if (depth > MAX_DEPTH) return Array.isArray(value) ? "[Array]" : `[${name || "Object"}]`;
      seen.push(value);
      try {
        const inner = (x) => inspect(x, depth + 1, seen);
        const more = (n) => (n > MAX_ITEMS ? [`... ${n - MAX_ITEMS} more items`] : []);
        if (Array.isArray(value)) {
          const parts = value.slice(0, MAX_ITEMS).map(inner).concat(more(value.length));
          return items(parts, "[", "]", name === "Array" ? "" : `${name}(${value.length}) `);
        }
        if (value instanceof Map) {
          const parts = [];
          for (const [k, x] of value) {
            if (parts.length === MAX_ITEMS) break;
            parts.push(`${inner(k)} => ${inner(x)}`);
          }
          return items(parts.concat(more(value.size)), "{", "}", `${name}(${value.size}) `);
        }
        if (value instanceof Set) {
          const parts = [];
          for (const x of value) {
            if (parts.length === MAX_ITEMS) break;
            parts.push(inner(x));
          }
          return items(parts.concat(more(value.size)), "{", "}", `${name}(${value.size}) `);
        }
        if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
          const parts = Array.from(value.subarray(0, MAX_ITEMS), inner).concat(more(value.length));
          return items(parts, "[", "]", `${name}(${value.length}) `);
        }
        if (value instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${value.byteLength} }`;
        const keys = Reflect.ownKeys(value).filter((k) => Object.prototype.propertyIsEnumerable.call(value, k));
        const parts = keys.slice(0, MAX_ITEMS).map((k) => {
          let shown;
          try {
            shown = inner(value[k]);
          } catch {
            shown = "[Getter threw]";
          }
          return `${inspectKey(k)}: ${shown}`;
        });
        const prefix = name === "Object" ? "" : `${name || objectToString.call(value)} `;
        return items(parts.concat(more(keys.length)), "{", "}", prefix);
      } finally {
        seen.pop();
      }
    } catch {
      return "[object that cannot be inspected]";
    }
  }

  /** Node's util.format, lightly: %s %d %i %f %j %o %O %c %% in a leading string. */
  function format(args) {
    const out = [];
    let rest = args;
    if (typeof args[0] === "string" && args[0].includes("%")) {
      let index = 1;
      const first = args[0].replace(/%[sdifjoOc%]/g, (directive) => {
        if (directive === "%%") return "%";
        if (index >= args.length) return directive;
        const arg = args[index++];
        switch (directive) {
          case "%s":
            return typeof arg === "string" ? arg : typeof arg === "bigint" ? `${arg}n` : inspect(arg, 2, []);
          case "%d":
            return typeof arg === "bigint" ? `${arg}n` : typeof arg === "symbol" ? "NaN" : String(Number(arg));
          case "%i":
            return typeof arg === "bigint" ? `${arg}n` : typeof arg === "symbol" ? "NaN" : String(parseInt(arg, 10));
          case "%f":
            return typeof arg === "symbol" ? "NaN" : String(parseFloat(arg));
          case "%j":
            try {
              return String(JSON.stringify(arg));
            } catch {
              return "[Circular]";
            }
          case "%c":
            return "";
          default:
            return inspect(arg, 0, []);
        }
      });
      out.push(first);
      rest = args.slice(index);
    } else if (args.length > 0) {
      out.push(typeof args[0] === "string" ? args[0] : inspect(args[0], 0, []));
      rest = args.slice(1);
    }
    for (const arg of rest) out.push(typeof arg === "string" ? arg : inspect(arg, 0, []));
    return out.join(" ");
  }

  function emit(level, args) {
    let message;
    try {
      message = format(args);
    } catch {
      message = "[console message that cannot be formatted]";
    }
    host.log(level, message);
  }

  const counts = new Map();
  const timers = new Map();
  const console = {
    log: (...args) => emit("log", args),
    info: (...args) => emit("info", args),
    warn: (...args) => emit("warn", args),
    error: (...args) => emit("error", args),
    debug: (...args) => emit("debug", args),
    trace: (...args) => {
      const stack = new Error("Trace").stack;
      emit("debug", ["Trace:", ...args, ...(typeof stack === "string" && stack !== "" ? [`\n${stack.trimEnd()}`] : [])]);
    },
    dir: (value) => emit("log", [value]),
    table: (...args) => emit("log", args),
    assert: (condition, ...args) => {
      if (!condition) emit("error", args.length === 0 ? ["Assertion failed"] : ["Assertion failed:", ...args]);
    },
    count: (label = "default") => {
      const n = (counts.get(String(label)) ?? 0) + 1;
      counts.set(String(label), n);
      emit("log", [`${label}: ${n}`]);
    },
    countReset: (label = "default") => void counts.delete(String(label)),
    time: (label = "default") => void timers.set(String(label), Date.now()),
    timeLog: (label = "default", ...args) => {
      const start = timers.get(String(label));
      if (start !== undefined) emit("log", [`${label}: ${Date.now() - start}ms`, ...args]);
    },
    timeEnd: (label = "default") => {
      const start = timers.get(String(label));
      if (start === undefined) return;
      timers.delete(String(label));
      emit("log", [`${label}: ${Date.now() - start}ms`]);
    },
    group: (...args) => {
      if (args.length > 0) emit("log", args);
    },
    groupCollapsed: (...args) => {
      if (args.length > 0) emit("log", args);
    },
    groupEnd: () => {},
  };
  defineGlobal("console", console);

  // -------------------------------------------------------------------------------------------
  // TextEncoder / TextDecoder (UTF-8 only)

  if (typeof globalThis.TextEncoder !== "function") {
    /** The code point at `i` of `s`, lone surrogates as U+FFFD; and how many units it used. */
    const codePointAt = (s, i) => {
      const c = s.charCodeAt(i);
      if (c < 0xd800 || c > 0xdfff) return [c, 1];
      if (c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) return [0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00), 2];
      }
      return [0xfffd, 1];
    };
    const utf8Length = (cp) => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
    const put = (out, j, cp) => {
      if (cp < 0x80) {
        out[j] = cp;
      } else if (cp < 0x800) {
        out[j] = 0xc0 | (cp >> 6);
        out[j + 1] = 0x80 | (cp & 0x3f);
      } else if (cp < 0x10000) {
        out[j] = 0xe0 | (cp >> 12);
        out[j + 1] = 0x80 | ((cp >> 6) & 0x3f);
        out[j + 2] = 0x80 | (cp & 0x3f);
      } else {
        out[j] = 0xf0 | (cp >> 18);
        out[j + 1] = 0x80 | ((cp >> 12) & 0x3f);
        out[j + 2] = 0x80 | ((cp >> 6) & 0x3f);
        out[j + 3] = 0x80 | (cp & 0x3f);
      }
      return utf8Length(cp);
    };

    class TextEncoder {
      get encoding() {
        return "utf-8";
      }
      encode(input = "") {
        const s = String(input);
        const out = new Uint8Array(s.length * 3);
        let j = 0;
        for (let i = 0; i < s.length; ) {
          const [cp, units] = codePointAt(s, i);
          j += put(out, j, cp);
          i += units;
        }
        return out.slice(0, j);
      }
      encodeInto(input, destination) {
        if (!(destination instanceof Uint8Array)) throw new TypeError("TextEncoder.encodeInto: destination must be a Uint8Array");
        const s = String(input);
        let read = 0;
        let written = 0;
        while (read < s.length) {
          const [cp, units] = codePointAt(s, read);
          if (written + utf8Length(cp) > destination.length) break;
          written += put(destination, written, cp);
          read += units;
        }
        return { read, written };
      }
    }
    defineGlobal("TextEncoder", TextEncoder);
  }

  if (typeof globalThis.TextDecoder !== "function") {
    const LABELS = ["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"];
    const CHUNK = 8192;

    const bytesOf = (input) => {
      if (input === undefined) return new Uint8Array(0);
      if (input instanceof ArrayBuffer) return new Uint8Array(input);
      if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      throw new TypeError("TextDecoder.decode: input must be an ArrayBuffer or an ArrayBuffer view");
    };

    class TextDecoder {
      #fatal;
      #ignoreBOM;
      #pending = new Uint8Array(0);
      #started = false;

      constructor(label = "utf-8", options = {}) {
        if (!LABELS.includes(String(label).trim().toLowerCase())) {
          throw new RangeError(`TextDecoder: only UTF-8 is supported, got ${JSON.stringify(String(label))}`);
        }
        this.#fatal = Boolean(options && options.fatal);
        this.#ignoreBOM = Boolean(options && options.ignoreBOM);
      }
      get encoding() {
        return "utf-8";
      }
      get fatal() {
        return this.#fatal;
      }
      get ignoreBOM() {
        return this.#ignoreBOM;
      }

      decode(input, options = {}) {
        const stream = Boolean(options && options.stream);
        const fresh = bytesOf(input);
        let bytes = fresh;
        if (this.#pending.length > 0) {
          bytes = new Uint8Array(this.#pending.length + fresh.length);
          bytes.set(this.#pending);
          bytes.set(fresh, this.#pending.length);
        }
        const units = [];
        const chunks = [];
        const flush = () => {
          chunks.push(String.fromCharCode.apply(null, units));
          units.length = 0;
        };
        const emitCp = (cp) => {
          if (cp >= 0x10000) units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
          else units.push(cp);
          if (units.length >= CHUNK) flush();
        };
        const bad = () => {
          if (this.#fatal) {
            this.#pending = new Uint8Array(0);
            this.#started = false;
            throw new TypeError("TextDecoder: the input is not valid UTF-8");
          }
          emitCp(0xfffd);
        };
        let i = 0;
        if (!this.#started && !this.#ignoreBOM) {
          if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
          else if (stream && bytes.length < 3 && bytes.every((b, k) => b === [0xef, 0xbb, 0xbf][k])) {
            this.#pending = bytes.slice();
            return "";
          }
        }
        this.#started = true;
        let rest = new Uint8Array(0);
        while (i < bytes.length) {
          const b = bytes[i];
          if (b < 0x80) {
            emitCp(b);
            i += 1;
            continue;
          }
          let need;
          let cp;
          let lower = 0x80;
          let upper = 0xbf;
          if (b >= 0xc2 && b <= 0xdf) {
            need = 1;
            cp = b & 0x1f;
          } else if (b >= 0xe0 && b <= 0xef) {
            need = 2;
            cp = b & 0x0f;
            if (b === 0xe0) lower = 0xa0;
            if (b === 0xed) upper = 0x9f;
          } else if (b >= 0xf0 && b <= 0xf4) {
            need = 3;
            cp = b & 0x07;
            if (b === 0xf0) lower = 0x90;
            if (b === 0xf4) upper = 0x8f;
          } else {
            bad();
            i += 1;
            continue;
          }
          // Consume continuation bytes; a wrong one ends the (maximal) subpart, unconsumed.
          let k = 1;
          let ok = true;
          for (; k <= need; k++) {
            if (i + k >= bytes.length) {
              ok = false;
              break;
            }
            const c = bytes[i + k];
            if (c < lower || c > upper) {
              ok = false;
              break;
            }
            lower = 0x80;
            upper = 0xbf;
            cp = (cp << 6) | (c & 0x3f);
          }
          if (ok) {
            emitCp(cp);
            i += need + 1;
          } else if (i + k >= bytes.length && stream) {
            rest = bytes.slice(i);
            break;
          } else {
            bad();
            i += k;
          }
        }
        this.#pending = rest;
        if (!stream) this.#started = false;
        flush();
        return chunks.join("");
      }
    }
    defineGlobal("TextDecoder", TextDecoder);
  }

  // -------------------------------------------------------------------------------------------
  // structuredClone (JSON-like values, Date, RegExp, Map, Set, ArrayBuffer, typed arrays,
  // boxed primitives and Errors, with cycles and shared references kept)

  if (typeof globalThis.structuredClone !== "function") {
    const cloneError = (what) => {
      const error = new Error(`structuredClone: ${what} could not be cloned`);
      error.name = "DataCloneError";
      return error;
    };
    const clone = (value, memo) => {
      if (typeof value === "function") throw cloneError(`function ${value.name || "(anonymous)"}`);
      if (typeof value === "symbol") throw cloneError("a symbol");
      if (value === null || typeof value !== "object") return value;
      if (memo.has(value)) return memo.get(value);
      let out;
      if (Array.isArray(value)) {
        out = new Array(value.length);
        memo.set(value, out);
        for (const key of Object.keys(value)) out[key] = clone(value[key], memo);
        return out;
      }
      if (value instanceof Date) out = new Date(value.getTime());
      else if (value instanceof RegExp) out = new RegExp(value.source, value.flags);
      else if (value instanceof ArrayBuffer) out = value.slice(0);
      else if (value instanceof DataView) {
        const buffer = clone(value.buffer, memo);
        out = new DataView(buffer, value.byteOffset, value.byteLength);
      } else if (ArrayBuffer.isView(value)) {
        const buffer = clone(value.buffer, memo);
        out = new value.constructor(buffer, value.byteOffset, value.length);
      } else if (value instanceof Map) {
        out = new Map();
        memo.set(value, out);
        for (const [k, x] of value) out.set(clone(k, memo), clone(x, memo));
        return out;
      } else if (value instanceof Set) {
        out = new Set();
        memo.set(value, out);
        for (const x of value) out.add(clone(x, memo));
        return out;
      } else if (value instanceof Error) {
        const Ctor = [EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError].find((C) => value instanceof C) ?? Error;
        out = new Ctor(value.message);
        memo.set(value, out);
        if (typeof value.stack === "string") out.stack = value.stack;
        if ("cause" in value) out.cause = clone(value.cause, memo);
        return out;
      } else if (value instanceof Boolean || value instanceof Number || value instanceof String) {
        out = Object(value.valueOf());
      } else if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet) {
        throw cloneError(`a ${constructorName(value)}`);
      } else {
        out = {};
        memo.set(value, out);
        for (const key of Object.keys(value)) out[key] = clone(value[key], memo);
        return out;
      }
      memo.set(value, out);
      return out;
    };
    defineGlobal("structuredClone", function structuredClone(value, options) {
      if (options !== undefined && options !== null && options.transfer !== undefined && options.transfer.length > 0) {
        throw cloneError("a transfer list");
      }
      return clone(value, new Map());
    });
  }

  // -------------------------------------------------------------------------------------------
  // queueMicrotask

  if (typeof globalThis.queueMicrotask !== "function") {
    const resolved = Promise.resolve();
    defineGlobal("queueMicrotask", function queueMicrotask(callback) {
      if (typeof callback !== "function") throw new TypeError("queueMicrotask: callback must be a function");
      resolved.then(() => callback());
    });
  }
})();

// @nimbus/nimbus/values — validators and the error classes a function may throw.

import { NimbusError, stringifyJson } from "nimbus:internal/host";
import { v } from "nimbus:internal/validators";

export { v, NimbusError };

/**
 * An error carrying structured `data` to the caller (`detail.data`, or Convex's `errorData`).
 * Its message is `data` itself when it is a string, else `data`'s JSON text.
 */
export class ConvexError extends Error {
  constructor(data) {
    super(typeof data === "string" ? data : messageFor(data));
    this.name = "ConvexError";
    this.data = data;
  }
}

function messageFor(data) {
  try {
    const text = stringifyJson(data);
    if (text !== undefined) return text;
  } catch {
    // Not JSON (a cycle, a BigInt): fall back to its string form.
  }
  try {
    return String(data);
  } catch {
    return "ConvexError";
  }
}

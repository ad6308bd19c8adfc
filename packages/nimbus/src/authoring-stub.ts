// The run-time side of `@nimbus/nimbus/server` and `@nimbus/nimbus/values` outside Nimbus: the
// authoring API exists only inside a function isolate (where the server provides those
// modules), so evaluating the SDK's stand-ins throws this error at import.

/** The message of the error thrown when an authoring module is imported outside Nimbus. */
export const OUTSIDE_FUNCTIONS_MESSAGE = "this module runs inside Nimbus functions; deploy it with nimbus functions deploy";

/** Throws: the authoring API has no implementation outside a Nimbus function isolate. */
export function insideFunctionsOnly(): never {
  throw new Error(OUTSIDE_FUNCTIONS_MESSAGE);
}

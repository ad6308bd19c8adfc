// `@nimbus/nimbus`: the public surface. `Nimbus` is the client; every namespace class, type and
// error class is exported too, so code can annotate with them and branch on `instanceof`.

export { Nimbus, System, type NimbusClientOptions } from "./client.js";
export * from "./errors.js";
export * from "./errors.generated.js";
export * from "./discovery.js";
export * from "./transport.js";
export * from "./types.js";
export * from "./data.js";
export * from "./realtime.js";
export * from "./schedule.js";
export * from "./functions.js";
export * from "./sandboxes.js";
export * from "./services.js";
export * from "./sessions.js";
export * from "./browser.js";
export * from "./images.js";
export * from "./secrets.js";
export * from "./stream.js";
export * from "./compute-types.js";

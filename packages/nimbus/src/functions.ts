// `nimbus.functions`: deploy, list and call a tenant's functions (the functions contract's
// routes, docs/functions.md). Failures are the server's envelopes as typed errors:
// `NimbusFunctionDeployFailedError`, `NimbusFunctionNotFoundError`,
// `NimbusFunctionInvalidArgsError`, `NimbusFunctionThrownError` (a thrown error's `data` in
// `detail.data`), `NimbusForbiddenError` for an internal function, the `runtime.*` limits.
// Modules are written against `@nimbus/nimbus/server` (src/server.ts, types only outside Nimbus).

import type { Transport } from "./transport.js";
import type { DeployResult, FunctionSet, TenantScoped } from "./types.js";

export class Functions {
  constructor(private readonly transport: Transport) {}

  /**
   * Replaces the tenant's whole function set with `modules` (path → source), atomically;
   * `dryRun` validates and reports without activating.
   */
  async deploy(args: TenantScoped & { modules: Record<string, string>; dryRun?: boolean }): Promise<DeployResult> {
    return this.transport.json("PUT", this.transport.tenantPath(args.tenantId, "functions"), {
      query: { dryRun: args.dryRun === true ? true : undefined },
      body: { modules: args.modules },
    });
  }

  /** The deployed function set (`version: 0` before the first deploy). */
  async list(args: TenantScoped = {}): Promise<FunctionSet> {
    return this.transport.json("GET", this.transport.tenantPath(args.tenantId, "functions"));
  }

  /** Calls a public function (any kind) and resolves to its return value (`undefined` → `null`). */
  async call<T = unknown>(args: TenantScoped & { name: string; args?: Record<string, unknown> }): Promise<T> {
    const answer = await this.transport.json<{ value: T }>("POST", this.transport.tenantPath(args.tenantId, "functions", "call"), {
      body: { name: args.name, args: args.args ?? {} },
    });
    return answer.value;
  }
}

/**
 * `nimbus.services`: named workloads with readiness, restart policy and generation-checked
 * definitions (docs/services.md), under `/api/tenants/{tenant}/services`.
 */

import { NimbusClientError } from "./errors.js";
import type { Transport } from "./transport.js";
import type { Service, ServiceBackendSpec, ServiceDefinition, ServiceDefinitionCollection } from "./compute-types.js";

/** A condition `wait` can hold for. */
export type ServiceCondition = "ready" | "stopped" | "healthy";

const DEFAULT_WAIT_TIMEOUT_MS = 30_000;
const DEFAULT_WAIT_INTERVAL_MS = 250;

/** Whether the runtime view satisfies the condition (the server's `waitFor` rules). */
function holds(service: Service, until: ServiceCondition): boolean {
  switch (until) {
    case "ready":
      return service.readiness === "ready";
    case "healthy":
      return service.health === "healthy";
    case "stopped":
      // `failed` is terminal: a service waiting to restart shows `starting`.
      return service.state === "stopped" || service.state === "failed";
  }
}

function describe(service: Service | undefined): string {
  if (service === undefined) return "none (no answer yet)";
  return `${service.state} (readiness ${service.readiness}, health ${service.health})`;
}

export class Services {
  constructor(private readonly transport: Transport) {}

  /** Creates a definition (generation 1). Nothing runs until {@link Services.start}. */
  async create(options: {
    name: string;
    tenantId?: string;
    backend: ServiceBackendSpec;
    labels?: Record<string, string>;
  }): Promise<ServiceDefinition> {
    const { name, tenantId, backend, labels } = options;
    return this.transport.json<ServiceDefinition>("POST", this.path(tenantId), {
      body: { metadata: { name, labels }, spec: { backend } },
    });
  }

  /**
   * Replaces a stopped service's backend and labels (omitted labels become `{}`), fenced on the
   * generation you read: a stale one is `op.precondition_failed` (412).
   */
  async update(options: {
    name: string;
    tenantId?: string;
    backend: ServiceBackendSpec;
    ifMatchGeneration: number;
    labels?: Record<string, string>;
  }): Promise<ServiceDefinition> {
    const { name, tenantId, backend, ifMatchGeneration, labels } = options;
    return this.transport.json<ServiceDefinition>("PUT", this.path(tenantId, name), {
      body: { metadata: { name, generation: ifMatchGeneration, labels }, spec: { backend } },
    });
  }

  /**
   * Deletes a definition fenced on its generation. A running service, or one with open
   * sessions, needs `force` (which stops it and closes its sessions).
   */
  async delete(options: {
    name: string;
    tenantId?: string;
    ifMatchGeneration: number;
    force?: boolean;
  }): Promise<void> {
    const { name, tenantId, ifMatchGeneration, force } = options;
    await this.transport.json<void>("DELETE", this.path(tenantId, name), {
      query: { ifMatchGeneration, force: force ? true : undefined },
    });
  }

  /** The definitions, sorted by name; pass the previous page's `metadata.nextPageToken`. */
  async list(
    options: { tenantId?: string; limit?: number; pageToken?: string } = {},
  ): Promise<ServiceDefinitionCollection> {
    const { tenantId, limit, pageToken } = options;
    return this.transport.json<ServiceDefinitionCollection>("GET", this.path(tenantId), {
      query: { limit, pageToken },
    });
  }

  /** The runtime view: what runs now. */
  async get(options: { name: string; tenantId?: string }): Promise<Service> {
    return this.transport.json<Service>("GET", this.path(options.tenantId, options.name));
  }

  /** The definition, with `metadata.generation` for {@link Services.update} and {@link Services.delete}. */
  async definition(options: { name: string; tenantId?: string }): Promise<ServiceDefinition> {
    return this.transport.json<ServiceDefinition>("GET", this.path(options.tenantId, options.name, "definition"));
  }

  /** Starts a run (a no-op if running); resolves once its sandbox exists, or once `waitUntil` holds. */
  async start(options: { name: string; tenantId?: string; waitUntil?: "ready" | "healthy" }): Promise<Service> {
    return this.verb("start", options);
  }

  /** SIGTERM, then SIGKILL after 10 s; no restart follows. Resolves once stopped. */
  async stop(options: { name: string; tenantId?: string; waitUntil?: "stopped" }): Promise<Service> {
    return this.verb("stop", options);
  }

  /** Stop then start, a fresh sandbox; resolves once its sandbox exists, or once `waitUntil` holds. */
  async restart(options: { name: string; tenantId?: string; waitUntil?: "ready" | "healthy" }): Promise<Service> {
    return this.verb("restart", options);
  }

  /**
   * Polls the runtime view every `intervalMs` until `until` holds: `ready` (readiness ready),
   * `healthy` (health healthy), `stopped` (stopped, or failed with no restart pending). After
   * `timeoutMs` (default 30 s) throws a {@link NimbusClientError} naming the service, the
   * condition and the last observed state; a run that ended `failed` can never become ready or
   * healthy, so that throws at once.
   */
  async wait(options: {
    name: string;
    tenantId?: string;
    until: ServiceCondition;
    timeoutMs?: number;
    intervalMs?: number;
  }): Promise<Service> {
    const { name, tenantId, until } = options;
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
    const intervalMs = options.intervalMs ?? DEFAULT_WAIT_INTERVAL_MS;
    const deadline = Date.now() + timeoutMs;
    let last: Service | undefined;
    for (;;) {
      last = await this.get({ name, tenantId });
      if (holds(last, until)) return last;
      if (until !== "stopped" && last.state === "failed") {
        throw new NimbusClientError(
          `service \`${name}\` cannot become ${until}: its run ended; last observed state: ${describe(last)}`,
          { service: name, until, lastObserved: last },
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
    }
    throw new NimbusClientError(
      `service \`${name}\` did not become ${until} within ${timeoutMs} ms; last observed state: ${describe(last)}`,
      { service: name, until, timeoutMs, lastObserved: last },
    );
  }

  private async verb(
    verb: "start" | "stop" | "restart",
    options: { name: string; tenantId?: string; waitUntil?: ServiceCondition },
  ): Promise<Service> {
    const { name, tenantId, waitUntil } = options;
    const service = await this.transport.json<Service>("POST", this.path(tenantId, name, verb));
    if (waitUntil === undefined) return service;
    return this.wait({ name, tenantId, until: waitUntil });
  }

  private path(tenantId: string | undefined, ...rest: string[]): string {
    return this.transport.tenantPath(tenantId, "services", ...rest);
  }
}

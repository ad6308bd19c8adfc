/**
 * `nimbus.sandboxes`: isolated execution worlds for one task (docs/sandboxes.md), and their
 * network (docs/networking.md), under `/api/tenants/{tenant}/sandboxes`.
 */

import { NimbusClientError, NimbusError } from "./errors.js";
import type { Transport } from "./transport.js";
import type {
  EgressDecision,
  HeartbeatFrame,
  Sandbox,
  SandboxCollection,
  SandboxEgress,
  SandboxLifecycleState,
  SandboxProfile,
  SandboxSpec,
  StreamFrame,
} from "./compute-types.js";

/** The server's longest single long-poll (`WAIT_MAX_TIMEOUT_MS`); longer waits are chained. */
const SERVER_WAIT_MAX_MS = 60_000;
/** The server's default wait. */
const DEFAULT_WAIT_MS = 30_000;

export class Sandboxes {
  constructor(private readonly transport: Transport) {}

  /**
   * Creates and starts a sandbox; synchronous through the image pull and the spawn, so the
   * answer is usually `ready` (or `failed` with `start_failed` when the command cannot run).
   */
  async create(options: {
    tenantId?: string;
    profile: SandboxProfile;
    spec: SandboxSpec;
    labels?: Record<string, string>;
  }): Promise<Sandbox> {
    const { tenantId, profile, spec, labels } = options;
    return this.transport.json<Sandbox>("POST", this.path(tenantId), { body: { profile, spec, labels } });
  }

  async get(options: { id: string; tenantId?: string }): Promise<Sandbox> {
    return this.transport.json<Sandbox>("GET", this.path(options.tenantId, options.id));
  }

  /** One page, sorted by id; pass the previous page's `metadata.nextPageToken` as `pageToken`. */
  async list(
    options: {
      tenantId?: string;
      limit?: number;
      pageToken?: string;
      status?: SandboxLifecycleState;
      labelKey?: string;
      labelValue?: string;
    } = {},
  ): Promise<SandboxCollection> {
    const { tenantId, limit, pageToken, status, labelKey, labelValue } = options;
    return this.transport.json<SandboxCollection>("GET", this.path(tenantId), {
      query: { limit, pageToken, status, labelKey, labelValue },
    });
  }

  /** SIGTERM to the main process, SIGKILL after the server's grace period; resolves once `stopped`. */
  async stop(options: { id: string; tenantId?: string }): Promise<Sandbox> {
    return this.transport.json<Sandbox>("POST", this.path(options.tenantId, options.id, "stop"));
  }

  /** Kills and removes the sandbox from any state, with everything it holds. */
  async delete(options: { id: string; tenantId?: string }): Promise<void> {
    await this.transport.json<void>("DELETE", this.path(options.tenantId, options.id));
  }

  /**
   * Long-polls on the server until the sandbox is `ready`, or `stopped`/`failed` for
   * `until: "stopped"`. Throws the server's `op.wait_timeout` (408) after `timeoutMs` (default
   * 30 s; waits beyond the server's 60 s maximum are chained) and `op.wait_unsatisfiable` (409)
   * at once when the condition can no longer hold.
   */
  async wait(options: {
    id: string;
    tenantId?: string;
    until: "ready" | "stopped";
    timeoutMs?: number;
  }): Promise<Sandbox> {
    const { id, tenantId, until } = options;
    const path = this.path(tenantId, id);
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_WAIT_MS);
    for (;;) {
      const timeoutMs = Math.max(0, Math.min(SERVER_WAIT_MAX_MS, deadline - Date.now()));
      try {
        return await this.transport.json<Sandbox>("GET", path, { query: { waitFor: until, timeoutMs } });
      } catch (error) {
        const more = deadline - Date.now() > 0;
        if (!(error instanceof NimbusError && error.code === "op.wait_timeout" && more)) throw error;
      }
    }
  }

  /**
   * The main process's output as frames (`stdout`, `stderr`, maybe a first `truncated`, and
   * `exit` once the sandbox ended). `tail` keeps the last N records; `follow` keeps the stream
   * open (with `heartbeat`s) until the exit. Nothing is sent until iteration starts; leaving
   * the loop closes the request.
   */
  async *logs(options: {
    id: string;
    tenantId?: string;
    tail?: number;
    follow?: boolean;
  }): AsyncGenerator<StreamFrame> {
    const { id, tenantId, tail, follow } = options;
    yield* this.transport.ndjson<StreamFrame>("GET", this.path(tenantId, id, "logs"), { query: { tail, follow } });
  }

  /**
   * Replaces the sandbox's egress rules (docs/networking.md): new connections follow them at
   * once, open ones keep the decision they got. `generation` must be the sandbox's current
   * `metadata.generation` (`NimbusPreconditionFailedError` otherwise, with `detail`
   * `{expectedGeneration, currentGeneration}`); the answer carries the next one. `egress: {}`
   * denies everything. A service's sandbox (`owned_by_service`) or an ended one
   * (`sandbox_ended`) is `NimbusConflictError`; a bad rule `NimbusInvalidInputError` naming the
   * field (`egress.allow[0].host`); one beyond the operator's ceiling
   * `NimbusSandboxEgressBeyondPolicyError`.
   */
  async updateNetwork(options: {
    id: string;
    tenantId?: string;
    generation: number;
    egress: SandboxEgress;
  }): Promise<Sandbox> {
    const { id, tenantId, generation, egress } = options;
    return this.transport.json<Sandbox>("PUT", this.path(tenantId, id, "network"), {
      body: { metadata: { generation }, egress },
    });
  }

  /**
   * The sandbox's egress decision log, oldest first (`tail` keeps the last N). The server keeps
   * the last 1000 decisions of each sandbox, in memory: the log starts empty after a restart.
   */
  async egressLog(options: { id: string; tenantId?: string; tail?: number }): Promise<EgressDecision[]> {
    const { id, tenantId, tail } = options;
    const decisions: EgressDecision[] = [];
    for await (const decision of this.decisions(tenantId, id, { tail })) decisions.push(decision);
    return decisions;
  }

  /**
   * The egress decision log, then each new decision as the proxy writes it. The iteration ends
   * once the sandbox stops or is deleted; aborting
   * `signal` throws its reason; leaving the loop closes the request. `tail` keeps the last N of
   * the decisions already logged (`0`: only new ones). Heartbeats are not yielded. Nothing is
   * sent until iteration starts.
   */
  async *followEgress(options: {
    id: string;
    tenantId?: string;
    tail?: number;
    signal?: AbortSignal;
  }): AsyncGenerator<EgressDecision> {
    const { id, tenantId, tail, signal } = options;
    yield* this.decisions(tenantId, id, { tail, follow: true }, signal);
  }

  /** The lines of `GET …/egress` that are decisions (a followed log also sends heartbeats). */
  private async *decisions(
    tenantId: string | undefined,
    id: string,
    query: { tail?: number; follow?: boolean },
    signal?: AbortSignal,
  ): AsyncGenerator<EgressDecision> {
    const lines = this.transport.ndjson<EgressDecision | HeartbeatFrame>("GET", this.path(tenantId, id, "egress"), {
      query,
      signal,
    });
    for await (const line of lines) {
      if (line.kind !== "heartbeat") yield line;
    }
  }

  /**
   * Sends an HTTP request to `port` on the sandbox's loopback through the ports route
   * (docs/sandboxes.md#reaching-a-port-inside) and returns the answer of the sandbox's server as
   * it is, whatever its status. Nimbus's own refusals throw: no such sandbox, one not running,
   * nothing listening or no HTTP there (`sandbox.port_unreachable`, retryable).
   */
  async fetchPort(options: {
    id: string;
    port: number;
    /** Path and query inside the sandbox's server, e.g. `api/items?limit=5`. */
    path?: string;
    tenantId?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: Uint8Array | ReadableStream<Uint8Array>;
    signal?: AbortSignal;
  }): Promise<Response> {
    const { id, port, path = "", tenantId, method = "GET", headers, body, signal } = options;
    return this.transport.response(method, this.portPath(tenantId, id, port, path), {
      rawBody: body,
      headers,
      signal,
      passThrough: (response) => response.headers.get("x-nimbus-upstream") === "sandbox",
    });
  }

  /**
   * The absolute URL of `path` on `port` of the sandbox, through the ports route: for clients
   * that connect themselves (a WebSocket, a browser). They must send the admin token as
   * `Authorization: Bearer …`.
   */
  async portUrl(options: { id: string; port: number; path?: string; tenantId?: string }): Promise<string> {
    const { id, port, path = "", tenantId } = options;
    const { endpoint } = await this.transport.connection();
    return endpoint + this.portPath(tenantId, id, port, path);
  }

  private portPath(tenantId: string | undefined, id: string, port: number, path: string): string {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new NimbusClientError(`port must be an integer from 1 to 65535 (got ${port})`, { reason: "invalid_port", port });
    }
    return this.path(tenantId, id, "ports", String(port)) + "/" + path.replace(/^\/+/, "");
  }

  private path(tenantId: string | undefined, ...rest: string[]): string {
    return this.transport.tenantPath(tenantId, "sandboxes", ...rest);
  }
}

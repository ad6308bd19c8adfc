// `Nimbus`, the client: options, discovery, and one property per namespace. Every namespace
// shares the client's `Transport` (one endpoint, one credential, one default tenant).

import type { Connection } from "./discovery.js";
import { Documents, Journal, Schemas, Tenants, runPaginate, runPaginateAll, runQuery, type PaginateArgs } from "./data.js";
import { Functions } from "./functions.js";
import { Images } from "./images.js";
import { Realtime, type FunctionSubscribeArgs, type QuerySubscribeArgs, type ReconnectOptions, type Subscription } from "./realtime.js";
import { Sandboxes } from "./sandboxes.js";
import { Crons, Schedule } from "./schedule.js";
import { Secrets } from "./secrets.js";
import { Services } from "./services.js";
import { Sessions } from "./sessions.js";
import { Transport } from "./transport.js";
import type { Capabilities, Doc, ErrorCatalog, Fields, Page, QuerySpec, TenantScoped } from "./types.js";

/** How a client finds its server and what it sends. */
export interface NimbusClientOptions {
  /** Base URL; else NIMBUS_ENDPOINT, else the running server's discovery file, else http://127.0.0.1:8080. */
  endpoint?: string;
  /** The default tenant of every call; any call may pass its own `tenantId`. */
  tenantId?: string;
  /** Admin token; else NIMBUS_TOKEN / NIMBUS_BEARER_TOKEN, else the local admin token file. */
  token?: string;
  /** The `fetch` to use (defaults to the global one). */
  fetch?: typeof fetch;
  /** Extra headers sent with every request and WebSocket upgrade. */
  headers?: Record<string, string>;
  /** How live subscriptions reconnect after their socket drops. */
  reconnect?: ReconnectOptions;
}

/** `nimbus.system`: the open and system routes. */
export class System {
  constructor(private readonly transport: Transport) {}

  /** `GET /health` → `{ok: true}` when the server answers. */
  async health(): Promise<{ ok: boolean }> {
    return this.transport.json("GET", this.transport.path("health"));
  }

  /** What this server and host offer (`GET /api/system/capabilities`). */
  async capabilities(): Promise<Capabilities> {
    return this.transport.json("GET", this.transport.path("api", "system", "capabilities"));
  }

  /** The server's error catalog (`GET /errors`). */
  async errors(): Promise<ErrorCatalog> {
    return this.transport.json("GET", this.transport.path("errors"));
  }

  /**
   * Replaces the admin token with the next generation; the old token stops working at once.
   * A client whose token came from the token file reads the new one on its next 401.
   */
  async rotateToken(): Promise<{ generation: number }> {
    return this.transport.json("POST", this.transport.path("api", "system", "token", "rotate"));
  }
}

/**
 * The Nimbus client.
 *
 * ```ts
 * const nimbus = new Nimbus({ tenantId: "demo" });   // endpoint and token discovered
 * const { id } = await nimbus.documents.insert({ table: "tasks", fields: { title: "write spec" } });
 * ```
 */
export class Nimbus {
  /** The HTTP and WebSocket transport shared by every namespace. */
  readonly transport: Transport;
  readonly tenants: Tenants;
  readonly documents: Documents;
  readonly schemas: Schemas;
  readonly journal: Journal;
  readonly schedule: Schedule;
  readonly crons: Crons;
  readonly functions: Functions;
  readonly system: System;
  readonly sandboxes: Sandboxes;
  readonly services: Services;
  readonly sessions: Sessions;
  readonly images: Images;
  readonly secrets: Secrets;
  private readonly realtime: Realtime;

  /** Does no I/O: the endpoint and token are discovered on the first request. */
  constructor(options: NimbusClientOptions = {}) {
    this.transport = new Transport(options);
    this.tenants = new Tenants(this.transport);
    this.documents = new Documents(this.transport);
    this.schemas = new Schemas(this.transport);
    this.journal = new Journal(this.transport);
    this.schedule = new Schedule(this.transport);
    this.crons = new Crons(this.transport);
    this.functions = new Functions(this.transport);
    this.system = new System(this.transport);
    this.sandboxes = new Sandboxes(this.transport);
    this.services = new Services(this.transport);
    this.sessions = new Sessions(this.transport);
    this.images = new Images(this.transport);
    this.secrets = new Secrets(this.transport);
    this.realtime = new Realtime(this.transport, options.reconnect);
  }

  /**
   * A client whose endpoint and credential are already resolved (options, then the
   * environment, then the local files): rejects with `NimbusClientError` when no credential
   * can be found, instead of at the first request.
   */
  static async defaultClient(options: NimbusClientOptions = {}): Promise<Nimbus> {
    const client = new Nimbus(options);
    await client.transport.connection();
    return client;
  }

  /** The tenant of calls that name none. */
  get tenantId(): string | undefined {
    return this.transport.defaultTenantId;
  }

  /** The resolved endpoint and credential (discovered on first use). */
  connection(): Promise<Connection> {
    return this.transport.connection();
  }

  /** Every document matching the query, filtered, ordered and limited by the server. */
  query<T extends Fields = Fields>(args: TenantScoped & QuerySpec): Promise<Doc<T>[]> {
    return runQuery<T>(this.transport, args);
  }

  /** One keyset page of a query; continue with `after: page.next_cursor` while `has_more`. */
  paginate<T extends Fields = Fields>(args: PaginateArgs): Promise<Page<T>> {
    return runPaginate<T>(this.transport, args);
  }

  /** Every document of a query, fetched `pageSize` at a time as the loop consumes them. */
  paginateAll<T extends Fields = Fields>(args: Omit<PaginateArgs, "after">): AsyncGenerator<Doc<T>> {
    return runPaginateAll<T>(this.transport, args);
  }

  /**
   * A live query (results are document lists) or live query function (results are its return
   * values): an async iterable with `close()`; `onResult`, when given, also receives every
   * result. The subscription survives dropped sockets (it reconnects with backoff and
   * subscribes again) and ends with a `NimbusError` when the server refuses it for good.
   */
  subscribe<T extends Fields = Fields>(args: QuerySubscribeArgs, onResult?: (result: Doc<T>[]) => void): Subscription<Doc<T>[]>;
  subscribe<T = unknown>(args: FunctionSubscribeArgs, onResult?: (result: T) => void): Subscription<T>;
  subscribe(args: QuerySubscribeArgs | FunctionSubscribeArgs, onResult?: (result: never) => void): Subscription<unknown> {
    return this.realtime.subscribe(args as QuerySubscribeArgs, onResult as (result: Doc[]) => void) as Subscription<unknown>;
  }
}

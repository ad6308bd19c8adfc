// The one place the SDK talks HTTP and opens WebSockets. Every namespace builds paths with
// `tenantPath`/`path` (which validate before anything is sent) and calls `json`, `bytes`,
// `ndjson` or `websocket`; errors come back as `NimbusError` subclasses (server answers) or
// `NimbusClientError` (no answer).

import { resolveEndpoint, resolveToken, type Connection } from "./discovery.js";
import { NimbusClientError, NimbusError, errorFromEnvelope, isErrorEnvelope } from "./errors.js";
// Loads the generated per-code classes (they register themselves with `errorFromEnvelope`).
import "./errors.generated.js";

/** Query parameters; `undefined` values are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

/** One request's options. */
export interface RequestOptions {
  /** Query parameters; `undefined` values are omitted. */
  query?: Query;
  /** JSON-encoded and sent as `application/json`. */
  body?: unknown;
  /** Sent as-is, as `application/octet-stream` unless `headers` names another type. */
  rawBody?: Uint8Array | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** A non-2xx answer for which this holds is returned, not thrown (another server's answer). */
  passThrough?: (response: Response) => boolean;
}

/** How a `Transport` finds and talks to its server. */
export interface TransportOptions {
  /** Base URL; else NIMBUS_ENDPOINT, else the discovery file, else http://127.0.0.1:8080. */
  endpoint?: string;
  /** Admin token; else NIMBUS_TOKEN / NIMBUS_BEARER_TOKEN, else the local token file. */
  token?: string;
  /** The tenant of calls that name none. */
  tenantId?: string;
  /** The `fetch` to use (defaults to the global one). */
  fetch?: typeof fetch;
  /** Extra headers sent with every request and WebSocket upgrade. */
  headers?: Record<string, string>;
}

type WebSocketCtor = new (url: string, protocols?: string | string[] | Record<string, unknown>) => WebSocket;

/** The WebSocket subprotocol of `/ws`. */
export const REALTIME_PROTOCOL = "nimbus.v2";

function isNode(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof proc?.versions?.node === "string";
}

export class Transport {
  /** The tenant used by calls that do not name one. */
  readonly defaultTenantId: string | undefined;
  private readonly options: TransportOptions;
  private readonly fetchImpl: typeof fetch;
  private resolved: Promise<Connection> | undefined;

  /** Does no I/O: discovery runs on the first request (or `connection()`). */
  constructor(options: TransportOptions = {}) {
    this.options = { ...options };
    this.defaultTenantId = options.tenantId;
    const f = options.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
    this.fetchImpl = f ?? ((() => Promise.reject(new NimbusClientError("no fetch implementation: pass the `fetch` option"))) as typeof fetch);
  }

  /**
   * The resolved endpoint and credential, discovered once and then reused. Throws
   * `NimbusClientError` when no credential can be found (naming the options and variables).
   */
  connection(): Promise<Connection> {
    if (this.resolved === undefined) {
      const attempt = (async (): Promise<Connection> => {
        const endpoint = await resolveEndpoint(this.options);
        const token = await resolveToken(this.options);
        return { ...endpoint, ...token };
      })();
      this.resolved = attempt;
      // A failed discovery is not cached: the environment may change before the next call.
      attempt.catch(() => {
        if (this.resolved === attempt) this.resolved = undefined;
      });
    }
    return this.resolved;
  }

  /** Forgets a discovered endpoint or file token so the next request discovers them again. */
  private rediscover(stale: Connection, what: "endpoint" | "token"): void {
    const discovered = what === "endpoint" ? stale.endpointSource === "discovery_file" : stale.tokenSource === "token_file";
    if (discovered) this.resolved = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Paths
  // -------------------------------------------------------------------------------------------

  /**
   * `/api/tenants/<tenant>/<segments…>` for the call's tenant, else the client's default tenant;
   * throws `NimbusClientError` before sending when there is neither, or a segment is empty.
   */
  tenantPath(tenantId: string | undefined, ...segments: string[]): string {
    const tenant = tenantId ?? this.defaultTenantId;
    if (tenant === undefined) {
      throw new NimbusClientError(
        "this call needs a tenant: pass `tenantId` to the call or set `tenantId` on the client (new Nimbus({ tenantId }))",
        { reason: "missing_tenant" },
      );
    }
    return this.path("api", "tenants", tenant, ...segments);
  }

  /** `/<segments…>`: every segment trimmed and percent-encoded; an empty one throws `NimbusClientError`. */
  path(...segments: string[]): string {
    const parts = segments.map((segment, index) => {
      if (typeof segment !== "string") {
        throw new NimbusClientError(`path parameter ${index} is missing (got ${segment === null ? "null" : typeof segment})`, {
          reason: "missing_path_parameter",
          index,
        });
      }
      const trimmed = segment.trim();
      if (trimmed === "") {
        throw new NimbusClientError(`path parameter ${index} is empty`, {
          reason: "empty_path_parameter",
          index,
          path: "/" + segments.map((s) => (typeof s === "string" && s.trim() !== "" ? s.trim() : "{…}")).join("/"),
        });
      }
      return encodeURIComponent(trimmed);
    });
    return "/" + parts.join("/");
  }

  // -------------------------------------------------------------------------------------------
  // HTTP
  // -------------------------------------------------------------------------------------------

  private url(endpoint: string, path: string, query?: Query): string {
    let url = endpoint + path;
    if (query !== undefined) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value !== undefined) params.append(key, String(value));
      }
      const text = params.toString();
      if (text !== "") url += "?" + text;
    }
    return url;
  }

  private authHeaders(connection: Connection): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.options.headers ?? {})) headers[key.toLowerCase()] = value;
    headers.authorization = `Bearer ${connection.token}`;
    return headers;
  }

  /**
   * Sends one request and returns the 2xx response (body unread). A non-2xx answer throws its
   * `NimbusError`; no answer throws `NimbusClientError`. A 401 with a token read from the token
   * file re-reads the file once (the token may have been rotated) and retries.
   */
  async response(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    let connection = await this.connection();
    let response = await this.send(connection, method, path, opts);
    if (response.status === 401 && connection.tokenSource === "token_file" && !(opts.rawBody instanceof ReadableStream)) {
      this.rediscover(connection, "token");
      const fresh = await this.connection();
      if (fresh.token !== connection.token) {
        await response.body?.cancel().catch(() => undefined);
        connection = fresh;
        response = await this.send(connection, method, path, opts);
      }
    }
    if (!response.ok && !opts.passThrough?.(response)) throw await this.errorOf(response);
    return response;
  }

  private async send(connection: Connection, method: string, path: string, opts: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = this.authHeaders(connection);
    let body: RequestInit["body"];
    if (opts.rawBody !== undefined) {
      headers["content-type"] = "application/octet-stream";
      body = opts.rawBody as RequestInit["body"];
    } else if (opts.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    for (const [key, value] of Object.entries(opts.headers ?? {})) headers[key.toLowerCase()] = value;
    const init: RequestInit & { duplex?: "half" } = { method, headers, body, signal: opts.signal };
    if (opts.rawBody instanceof ReadableStream) init.duplex = "half";
    const url = this.url(connection.endpoint, path, opts.query);
    try {
      return await this.fetchImpl(url, init);
    } catch (error) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? error;
      // The server may have moved (restarted on another port): discover it again next time.
      this.rediscover(connection, "endpoint");
      throw new NimbusClientError(
        `cannot reach Nimbus at ${connection.endpoint} (${method} ${path}): ${describe(error)}`,
        { reason: "unreachable", endpoint: connection.endpoint, endpointSource: connection.endpointSource, method, path },
        { cause: error },
      );
    }
  }

  /** The error of a non-2xx response: its envelope's class, or `NimbusClientError` if it has none. */
  private async errorOf(response: Response): Promise<Error> {
    const text = await response.text().catch(() => "");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const envelope = (parsed as { error?: unknown } | undefined)?.error;
    if (isErrorEnvelope(envelope)) {
      if (envelope.requestId === undefined) {
        const header = response.headers.get("x-request-id");
        if (header !== null) envelope.requestId = header;
      }
      return errorFromEnvelope(envelope, response.status);
    }
    return new NimbusClientError(`the server answered ${response.status} without a Nimbus error envelope`, {
      reason: "unexpected_response",
      status: response.status,
      body: text.slice(0, 1024),
      requestId: response.headers.get("x-request-id"),
    });
  }

  /** Parsed JSON of a 2xx answer; `undefined` for 204 or an empty body. */
  async json<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
    const response = await this.response(method, path, withAccept(opts, "application/json"));
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    if (text.trim() === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new NimbusClientError(`${method} ${path} answered ${response.status} with a body that is not JSON`, {
        reason: "invalid_json",
        status: response.status,
        body: text.slice(0, 1024),
      }, { cause: error });
    }
  }

  /** The raw bytes of a 2xx answer. */
  async bytes(method: string, path: string, opts?: RequestOptions): Promise<Uint8Array> {
    const response = await this.response(method, path, opts);
    return new Uint8Array(await response.arrayBuffer());
  }

  /**
   * One parsed JSON value per line of an NDJSON answer, as the lines arrive. Returning early
   * from the loop (or aborting `opts.signal`) aborts the request.
   */
  async *ndjson<T>(method: string, path: string, opts: RequestOptions = {}): AsyncGenerator<T> {
    const controller = new AbortController();
    const outer = opts.signal;
    const onAbort = (): void => controller.abort(outer?.reason);
    if (outer !== undefined) {
      if (outer.aborted) controller.abort(outer.reason);
      else outer.addEventListener("abort", onAbort, { once: true });
    }
    try {
      const response = await this.response(method, path, withAccept({ ...opts, signal: controller.signal }, "application/x-ndjson"));
      if (response.body === null) return;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += decoder.decode(value, { stream: true });
          let newline: number;
          while ((newline = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (line !== "") yield parseLine<T>(line);
          }
        }
        buffered += decoder.decode();
        if (buffered.trim() !== "") yield parseLine<T>(buffered.trim());
      } finally {
        reader.releaseLock();
      }
    } finally {
      outer?.removeEventListener("abort", onAbort);
      // Ends the request when the caller stops early; a no-op after a complete read.
      controller.abort();
    }
  }

  // -------------------------------------------------------------------------------------------
  // WebSocket
  // -------------------------------------------------------------------------------------------

  /**
   * An OPEN WebSocket (standard WHATWG API, `binaryType` "arraybuffer") to `path`,
   * authenticated with the admin token. Uses the global `WebSocket` when there is one, else the
   * `ws` package. Rejects with the server's `NimbusError` when the upgrade is refused, or
   * `NimbusClientError` when the server cannot be reached.
   */
  async websocket(path: string, opts: { query?: Query; protocols?: string[] } = {}): Promise<WebSocket> {
    const connection = await this.connection();
    try {
      return await this.openSocket(connection, path, opts);
    } catch (error) {
      if (error instanceof NimbusError && error.status === 401 && connection.tokenSource === "token_file") {
        // The token may have been rotated since it was read: read the file again, once.
        this.rediscover(connection, "token");
        const fresh = await this.connection();
        if (fresh.token !== connection.token) return await this.openSocket(fresh, path, opts);
      }
      if (!(error instanceof NimbusError)) this.rediscover(connection, "endpoint");
      throw error;
    }
  }

  /**
   * The `ws:` (or `wss:`) URL of `path` and the headers that authenticate its upgrade (the
   * client's extra headers and `Authorization: Bearer` with the admin token), for a WebSocket
   * client the SDK does not open itself (Playwright, Puppeteer). The token is the one resolved
   * now: after a rotation, ask again.
   */
  async socketEndpoint(path: string, query?: Query): Promise<{ url: string; headers: Record<string, string> }> {
    const connection = await this.connection();
    const url = this.url(connection.endpoint, path, query).replace(/^http/, "ws");
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.options.headers ?? {})) {
      if (key.toLowerCase() !== "authorization") headers[key] = value;
    }
    headers.Authorization = `Bearer ${connection.token}`;
    return { url, headers };
  }

  private async openSocket(connection: Connection, path: string, opts: { query?: Query; protocols?: string[] }): Promise<WebSocket> {
    const httpUrl = this.url(connection.endpoint, path, opts.query);
    const wsUrl = httpUrl.replace(/^http/, "ws");
    const protocols = opts.protocols ?? [];
    const Global = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (Global !== undefined) return await this.openGlobal(Global, connection, httpUrl, wsUrl, protocols);
    return await this.openWs(connection, wsUrl, protocols);
  }

  /** Through the `ws` package: headers carry the token, a refused upgrade's body is the envelope. */
  private async openWs(connection: Connection, url: string, protocols: string[]): Promise<WebSocket> {
    const mod = await import("ws");
    const WS = mod.WebSocket ?? mod.default;
    return await new Promise<WebSocket>((resolve, reject) => {
      const socket = new WS(url, protocols, { headers: this.authHeaders(connection) });
      socket.binaryType = "arraybuffer";
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        reject(error);
      };
      socket.once("unexpected-response", (_request, response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const envelope = safeParse(text)?.error;
          const status = response.statusCode ?? 0;
          if (isErrorEnvelope(envelope)) {
            if (envelope.requestId === undefined) envelope.requestId = header(response.headers["x-request-id"]);
            fail(errorFromEnvelope(envelope, status));
          } else {
            fail(new NimbusClientError(`the WebSocket upgrade of ${url} was refused with ${status}`, { reason: "upgrade_refused", status, body: text.slice(0, 1024) }));
          }
          socket.terminate();
        });
        response.on("error", (error: Error) => fail(unreachable(url, error)));
      });
      // Persistent: `ws` throws an 'error' event nobody listens to. Later errors are followed
      // by a close event, which the socket's user sees.
      socket.on("error", (error: Error) => fail(unreachable(url, error)));
      socket.once("open", () => {
        if (settled) return;
        settled = true;
        // Frames that came in the same packet as the 101 would be emitted before the caller,
        // resumed after this promise, could add its listeners: hold them until the next turn.
        socket.pause();
        resolve(socket as unknown as WebSocket);
        setImmediate(() => socket.resume());
      });
    });
  }

  /**
   * Through the global `WebSocket`. Non-browser runtimes (Node ≥ 22, Bun, Deno) accept headers
   * in an init object; browsers cannot set headers, so the token is exchanged for the
   * `nimbus_session` cookie first. A refused upgrade shows no status here, so the same request
   * is repeated as a plain GET to read the server's envelope.
   */
  private async openGlobal(Global: WebSocketCtor, connection: Connection, httpUrl: string, wsUrl: string, protocols: string[]): Promise<WebSocket> {
    const nonBrowser = isNode() || "Bun" in globalThis || "Deno" in globalThis;
    let socket: WebSocket;
    if (nonBrowser) {
      socket = new Global(wsUrl, { protocols, headers: this.authHeaders(connection) });
    } else {
      await this.response("POST", "/ui/auth/session", { body: { token: connection.token }, headers: {} });
      socket = new Global(wsUrl, protocols);
    }
    socket.binaryType = "arraybuffer";
    const opened = await new Promise<boolean>((resolve) => {
      socket.addEventListener("open", () => resolve(true), { once: true });
      socket.addEventListener("error", () => resolve(false), { once: true });
      socket.addEventListener("close", () => resolve(false), { once: true });
    });
    if (opened) return socket;
    // Learn why: every check the server makes before the upgrade answers a plain GET the same way.
    let probe: Response;
    try {
      probe = await this.fetchImpl(httpUrl, { headers: { ...this.authHeaders(connection), "sec-websocket-protocol": protocols.join(", ") } });
    } catch (error) {
      throw unreachable(wsUrl, error);
    }
    if (!probe.ok) {
      const error = await this.errorOf(probe);
      if (error instanceof NimbusError && !(error.code === "op.invalid_input" && /upgrade/i.test(error.message))) throw error;
    } else {
      await probe.body?.cancel().catch(() => undefined);
    }
    throw new NimbusClientError(`the WebSocket connection to ${wsUrl} failed`, { reason: "upgrade_failed", url: wsUrl });
  }
}

function withAccept(opts: RequestOptions | undefined, accept: string): RequestOptions {
  return { ...opts, headers: { accept, ...opts?.headers } };
}

function parseLine<T>(line: string): T {
  try {
    return JSON.parse(line) as T;
  } catch (error) {
    throw new NimbusClientError("a stream line is not JSON", { reason: "invalid_json", line: line.slice(0, 1024) }, { cause: error });
  }
}

function safeParse(text: string): { error?: unknown } | undefined {
  try {
    return JSON.parse(text) as { error?: unknown };
  } catch {
    return undefined;
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code !== undefined) return cause.code;
  return error instanceof Error ? error.message : String(error);
}

function unreachable(url: string, error: unknown): NimbusClientError {
  return new NimbusClientError(`cannot open a WebSocket to ${url}: ${describe(error)}`, { reason: "unreachable", url }, { cause: error });
}

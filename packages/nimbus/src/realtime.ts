// Live subscriptions over `GET /ws` (`nimbus.v2`, docs/realtime.md). One socket per tenant per
// client carries every subscription of that tenant. When the socket drops (server restart,
// network, heartbeat loss) it is reopened with exponential backoff, the handshake is redone
// and every live subscription is subscribed again; a result equal to the last one delivered
// is not delivered twice. Errors that retrying cannot fix end the subscriptions they concern:
// a refused upgrade (401, 404 tenant), a fatal protocol error, `op.error` for a subscribe,
// `session.subscription_error` with `dropped: true`.

import { NimbusClientError, NimbusError, errorFromEnvelope, isErrorEnvelope, type ErrorEnvelope } from "./errors.js";
import { queryBody } from "./data.js";
import { REALTIME_PROTOCOL, type Transport } from "./transport.js";
import type { Doc, Fields, QuerySpec, TenantScoped } from "./types.js";

/** How a dropped socket is reopened. */
export interface ReconnectOptions {
  /** First delay after a drop, ms (default 100); doubled per failed attempt, with jitter. */
  initialDelayMs?: number;
  /** Largest delay, ms (default 5000). */
  maxDelayMs?: number;
  /** Consecutive failed attempts after which the subscriptions fail (default: never give up). */
  maxAttempts?: number;
}

/**
 * A live query function (realtime contract §6): results are its return value (any JSON). A
 * redeploy that removes it ends the subscription with `NimbusSubscriptionError`
 * (`detail.reason: "function_removed"`); a mutation or action → `NimbusInvalidInputError`, an
 * internal one → `NimbusForbiddenError`, an unknown one → `NimbusFunctionNotFoundError`.
 */
export interface FunctionRef {
  name: string;
  args?: Record<string, unknown>;
}

interface SubscribeCommon extends TenantScoped {
  /**
   * Called with errors that do not end the subscription (`session.subscription_error` with
   * `dropped: false`, session-scoped `error` frames) and, last, with the error that ends it.
   */
  onError?: (error: NimbusError | NimbusClientError) => void;
}

/** Subscribes to a query: every result is the complete current document list. */
export interface QuerySubscribeArgs extends SubscribeCommon {
  query: QuerySpec;
  function?: undefined;
}

/** Subscribes to a query function: every result is its return value. */
export interface FunctionSubscribeArgs extends SubscribeCommon {
  function: FunctionRef;
  query?: undefined;
}

export type SubscribeArgs = QuerySubscribeArgs | FunctionSubscribeArgs;

/**
 * A live subscription: an async iterable of complete results (the first one reflects the
 * state when it registered, each later one a newer state), coalesced to the latest when the
 * loop is slower than the changes. Ends when `close()` is called (the loop finishes) or with
 * the error that ended it (the loop throws it).
 */
export interface Subscription<T> extends AsyncIterable<T> {
  /** Unsubscribes; a running loop finishes. Idempotent. */
  close(): void;
  /** Resolves after `close()`, rejects with the error that ended the subscription. */
  readonly done: Promise<void>;
  /** Whether it has ended (closed or failed). */
  readonly closed: boolean;
  /** The last result received, if any. */
  readonly latest: T | undefined;
  /** How many times the socket was re-established (handshake redone) since the first one. */
  readonly reconnects: number;
}

type Frame = Record<string, unknown> & { type?: unknown };

const DEFAULTS = { initialDelayMs: 100, maxDelayMs: 5000, maxAttempts: Infinity };
/** A silent socket is pinged after this long, and given up after twice this long. */
const HEARTBEAT_MS = 15_000;
/** Inbound frame limit of the server; a larger subscribe would close the whole socket (1009). */
const MAX_FRAME_BYTES = 1024 * 1024;

class SubscriptionImpl implements Subscription<unknown> {
  requestId: string | undefined;
  serverId: number | undefined;
  latest: unknown;
  reconnects = 0;
  closed = false;
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (error: Error) => void;
  private pending: { value: unknown } | undefined;
  private failure: Error | undefined;
  private lastKey: string | undefined;
  private waiter: (() => void) | undefined;
  private iterating = false;

  constructor(
    readonly frameBody: Record<string, unknown>,
    private readonly socket: TenantSocket,
    private readonly onResult: ((value: unknown) => void) | undefined,
    private readonly onError: ((error: NimbusError | NimbusClientError) => void) | undefined,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // `done` is for those who ask; an unobserved failure must not crash the process.
    this.done.catch(() => undefined);
  }

  deliver(value: unknown): void {
    if (this.closed) return;
    // A function's value may be any JSON (`null` included); a frame without one counts as `null`.
    const key = JSON.stringify(value ?? null);
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.latest = value;
    this.pending = { value };
    this.wake();
    if (this.onResult !== undefined) {
      try {
        this.onResult(value);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  report(error: NimbusError | NimbusClientError): void {
    if (this.closed || this.onError === undefined) return;
    try {
      this.onError(error);
    } catch (thrown) {
      queueMicrotask(() => {
        throw thrown;
      });
    }
  }

  /** Ends the subscription with `error` (from the socket; the socket already forgot it). */
  fail(error: NimbusError | NimbusClientError): void {
    if (this.closed) return;
    this.report(error);
    this.closed = true;
    this.failure = error;
    this.rejectDone(error);
    this.wake();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.remove(this);
    this.resolveDone();
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    if (this.iterating) throw new NimbusClientError("a subscription has one consumer: it is already being iterated");
    this.iterating = true;
    const next = async (): Promise<IteratorResult<unknown>> => {
      for (;;) {
        if (this.pending !== undefined) {
          const { value } = this.pending;
          this.pending = undefined;
          return { value, done: false };
        }
        if (this.failure !== undefined) {
          const failure = this.failure;
          this.failure = undefined;
          throw failure;
        }
        if (this.closed) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (this.waiter = resolve));
      }
    };
    return {
      next,
      return: async (): Promise<IteratorResult<unknown>> => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }
}

function isFatal(error: unknown): boolean {
  if (error instanceof NimbusError) return !error.retryable && (error.status === undefined || error.status < 500);
  if (error instanceof NimbusClientError) {
    const reason = error.detail?.reason;
    return reason !== "unreachable" && reason !== "upgrade_failed";
  }
  return false;
}

function asNimbusError(error: unknown): NimbusError | NimbusClientError {
  if (error instanceof NimbusError || error instanceof NimbusClientError) return error;
  return new NimbusClientError(`realtime connection failed: ${error instanceof Error ? error.message : String(error)}`, { reason: "unreachable" }, { cause: error });
}

function nodeTimer<T>(timer: T, keepAlive: boolean): T {
  if (!keepAlive) (timer as { unref?: () => void }).unref?.();
  return timer;
}

/** One tenant's socket and the subscriptions it carries. */
class TenantSocket {
  private readonly subs = new Set<SubscriptionImpl>();
  private readonly byRequestId = new Map<string, SubscriptionImpl>();
  private readonly byServerId = new Map<number, SubscriptionImpl>();
  private socket: WebSocket | undefined;
  private ready = false;
  private connecting = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private failedAttempts = 0;
  private handshakes = 0;
  private nextRequest = 0;
  private lastMessageAt = 0;
  private fatal: NimbusError | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly tenantId: string,
    private readonly reconnect: Required<ReconnectOptions>,
    private readonly onIdle: () => void,
  ) {}

  add(sub: SubscriptionImpl): void {
    this.subs.add(sub);
    if (this.ready) this.subscribe(sub);
    else this.ensureConnecting();
  }

  remove(sub: SubscriptionImpl): void {
    this.subs.delete(sub);
    if (this.subs.size === 0) {
      // Closing the socket ends every subscription it carried.
      this.shutdown();
      return;
    }
    if (sub.serverId !== undefined) {
      this.byServerId.delete(sub.serverId);
      this.send({ type: "unsubscribe", subscription_id: sub.serverId });
    }
    // A subscribe still awaiting its first result stays in `byRequestId`: that result names its
    // id, and it is unsubscribed then.
  }

  private shutdown(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const socket = this.socket;
    this.detach();
    if (socket !== undefined && socket.readyState <= 1) socket.close(1000);
    this.onIdle();
  }

  private ensureConnecting(): void {
    if (this.socket !== undefined || this.connecting || this.retryTimer !== undefined) return;
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.connecting = true;
    let socket: WebSocket;
    try {
      socket = await this.transport.websocket("/ws", { query: { tenant_id: this.tenantId }, protocols: [REALTIME_PROTOCOL] });
    } catch (error) {
      this.connecting = false;
      if (this.subs.size === 0) return;
      if (isFatal(error)) this.failAll(asNimbusError(error));
      else this.retryLater(asNimbusError(error));
      return;
    }
    this.connecting = false;
    if (this.subs.size === 0) {
      socket.close(1000);
      return;
    }
    this.socket = socket;
    this.fatal = undefined;
    this.lastMessageAt = Date.now();
    socket.addEventListener("message", (event) => {
      if (this.socket === socket) this.onMessage(event.data);
    });
    // Errors are followed by a close event, which decides what happens next.
    socket.addEventListener("error", () => undefined);
    socket.addEventListener("close", (event) => {
      if (this.socket === socket) this.onClose(event.code, event.reason);
    });
    this.heartbeat = nodeTimer(
      setInterval(() => {
        if (this.socket !== socket) return;
        const silentFor = Date.now() - this.lastMessageAt;
        if (silentFor >= 2 * HEARTBEAT_MS) {
          // A dead peer may never complete a closing handshake: reconnect now, close meanwhile.
          socket.close(4000, "heartbeat lost");
          this.onClose(4000, "heartbeat lost");
        } else if (silentFor >= HEARTBEAT_MS) {
          this.send({ type: "ping" });
        }
      }, HEARTBEAT_MS / 3),
      false,
    );
  }

  private detach(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.socket = undefined;
    this.ready = false;
    this.byRequestId.clear();
    this.byServerId.clear();
    for (const sub of this.subs) {
      sub.requestId = undefined;
      sub.serverId = undefined;
    }
  }

  private onClose(code: number, reason: string): void {
    const fatal = this.fatal;
    this.detach();
    if (this.subs.size === 0) {
      this.onIdle();
      return;
    }
    if (fatal !== undefined && !fatal.retryable) {
      this.failAll(fatal);
      return;
    }
    if (code === 1009) {
      this.failAll(new NimbusClientError("the server closed the realtime socket: a frame was too large (1009)", { reason: "frame_too_large", code }));
      return;
    }
    const cause = fatal ?? new NimbusClientError(`the realtime socket closed (${code}${reason ? ` ${reason}` : ""})`, { reason: "unreachable", code });
    this.retryLater(cause);
  }

  private retryLater(cause: NimbusError | NimbusClientError): void {
    this.failedAttempts += 1;
    if (this.failedAttempts > this.reconnect.maxAttempts) {
      this.failAll(cause);
      return;
    }
    const base = Math.min(this.reconnect.maxDelayMs, this.reconnect.initialDelayMs * 2 ** (this.failedAttempts - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    // Kept referenced: a loop awaiting the next result must not let the process exit meanwhile.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.subs.size > 0) void this.connect();
    }, delay);
  }

  private failAll(error: NimbusError | NimbusClientError): void {
    const subs = [...this.subs];
    this.subs.clear();
    const socket = this.socket;
    this.detach();
    if (socket !== undefined && socket.readyState <= 1) socket.close(1000);
    for (const sub of subs) sub.fail(error);
    this.onIdle();
  }

  private send(frame: Record<string, unknown>): boolean {
    const socket = this.socket;
    if (socket === undefined || socket.readyState !== 1) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  private subscribe(sub: SubscriptionImpl): void {
    const requestId = `r${++this.nextRequest}`;
    const frame = JSON.stringify({ type: "subscribe", request_id: requestId, ...sub.frameBody });
    if (new TextEncoder().encode(frame).length > MAX_FRAME_BYTES) {
      this.subs.delete(sub);
      sub.fail(new NimbusClientError("the subscription's query is larger than the 1 MiB frame limit", { reason: "frame_too_large" }));
      if (this.subs.size === 0) this.shutdown();
      return;
    }
    sub.requestId = requestId;
    this.byRequestId.set(requestId, sub);
    this.socket?.send(frame);
  }

  private onMessage(data: unknown): void {
    this.lastMessageAt = Date.now();
    if (typeof data !== "string") return;
    let frame: Frame;
    try {
      frame = JSON.parse(data) as Frame;
    } catch {
      return;
    }
    switch (frame.type) {
      case "hello":
        this.onHello(frame);
        return;
      case "subscription_result":
        this.onResult(frame);
        return;
      case "op.error":
        this.onOpError(frame);
        return;
      case "error":
        this.onSessionError(frame);
        return;
      case "fatal_error":
        this.onFatal(frame);
        return;
      default:
        // pong, authenticated, and types newer than this SDK.
        return;
    }
  }

  private onHello(frame: Frame): void {
    if (frame.protocol !== REALTIME_PROTOCOL) {
      this.failAll(new NimbusClientError(`the server speaks ${String(frame.protocol)}, not ${REALTIME_PROTOCOL}`, { reason: "protocol_mismatch" }));
      return;
    }
    this.send({ type: "client_hello", protocol: REALTIME_PROTOCOL, client: "@nimbus/nimbus" });
    this.ready = true;
    this.failedAttempts = 0;
    this.handshakes += 1;
    for (const sub of this.subs) {
      if (this.handshakes > 1) sub.reconnects += 1;
      this.subscribe(sub);
    }
  }

  private onResult(frame: Frame): void {
    // Query results carry `data`; function results carry their value in `value` (realtime
    // contract §4) or, on the Convex-compatible socket, `data`.
    const value = "data" in frame ? frame.data : "value" in frame ? frame.value : null;
    const serverId = typeof frame.subscription_id === "number" ? frame.subscription_id : undefined;
    let sub: SubscriptionImpl | undefined;
    if (typeof frame.request_id === "string") {
      sub = this.byRequestId.get(frame.request_id);
      this.byRequestId.delete(frame.request_id);
      if (sub !== undefined && serverId !== undefined) {
        sub.serverId = serverId;
        if (!this.subs.has(sub)) {
          this.send({ type: "unsubscribe", subscription_id: serverId });
          return;
        }
        this.byServerId.set(serverId, sub);
      }
    } else if (serverId !== undefined) {
      sub = this.byServerId.get(serverId);
    }
    sub?.deliver(value);
  }

  private onOpError(frame: Frame): void {
    const id = typeof frame.id === "string" ? frame.id : undefined;
    const sub = id === undefined ? undefined : this.byRequestId.get(id);
    if (sub === undefined || !isErrorEnvelope(frame.error)) return;
    this.byRequestId.delete(id!);
    const wasLive = this.subs.delete(sub);
    sub.fail(errorFromEnvelope(frame.error));
    if (wasLive && this.subs.size === 0) this.shutdown();
  }

  private onSessionError(frame: Frame): void {
    if (!isErrorEnvelope(frame.error)) return;
    const error = errorFromEnvelope(frame.error);
    if (error.code === "session.unsubscribe_failed") return;
    if (error.code !== "session.subscription_error") {
      for (const sub of this.subs) sub.report(error);
      return;
    }
    const detail = error.detail ?? {};
    let sub = typeof detail.subscriptionId === "number" ? this.byServerId.get(detail.subscriptionId) : undefined;
    if (sub === undefined) {
      // A subscription can fail before its first result named its id: if exactly one
      // subscribe awaits its first result, the error is that one's.
      const awaiting = [...this.byRequestId.values()];
      if (awaiting.length === 1) sub = awaiting[0];
    }
    if (sub === undefined) return;
    if (detail.dropped === true) {
      if (sub.serverId !== undefined) this.byServerId.delete(sub.serverId);
      if (sub.requestId !== undefined) this.byRequestId.delete(sub.requestId);
      const wasLive = this.subs.delete(sub);
      sub.fail(error);
      if (wasLive && this.subs.size === 0) this.shutdown();
    } else {
      sub.report(error);
    }
  }

  private onFatal(frame: Frame): void {
    if (!isErrorEnvelope(frame.error)) return;
    // The server closes the socket next; the close decides between failing and reconnecting.
    this.fatal = errorFromEnvelope(frame.error as ErrorEnvelope);
  }
}

/** `nimbus.subscribe`: the per-tenant sockets of one client. */
export class Realtime {
  private readonly sockets = new Map<string, TenantSocket>();
  private readonly reconnect: Required<ReconnectOptions>;

  constructor(
    private readonly transport: Transport,
    reconnect: ReconnectOptions = {},
  ) {
    this.reconnect = { ...DEFAULTS, ...stripUndefined(reconnect) };
  }

  /**
   * Subscribes to a query (results are document lists) or a query function (results are its
   * return values). Throws `NimbusClientError` at once when no tenant is named. `onResult`,
   * when given, is called with every result as well.
   */
  subscribe<T extends Fields = Fields>(args: QuerySubscribeArgs, onResult?: (result: Doc<T>[]) => void): Subscription<Doc<T>[]>;
  subscribe<T = unknown>(args: FunctionSubscribeArgs, onResult?: (result: T) => void): Subscription<T>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  subscribe(args: SubscribeArgs, onResult?: (result: any) => void): Subscription<any> {
    // Throws before anything is sent when there is no tenant, or it is empty.
    this.transport.tenantPath(args.tenantId);
    const tenantId = (args.tenantId ?? this.transport.defaultTenantId)!.trim();
    let body: Record<string, unknown>;
    if (args.query !== undefined && args.function === undefined) {
      body = { query: queryBody(args.query) };
    } else if (args.function !== undefined && args.query === undefined) {
      body = { function: { name: args.function.name, args: args.function.args ?? {} } };
    } else {
      throw new NimbusClientError("subscribe needs exactly one of `query` and `function`", { reason: "invalid_subscription" });
    }
    let socket = this.sockets.get(tenantId);
    if (socket === undefined) {
      const created: TenantSocket = new TenantSocket(this.transport, tenantId, this.reconnect, () => {
        if (this.sockets.get(tenantId) === created) this.sockets.delete(tenantId);
      });
      socket = created;
      this.sockets.set(tenantId, socket);
    }
    const sub = new SubscriptionImpl(body, socket, onResult, args.onError);
    socket.add(sub);
    return sub;
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * `nimbus.sessions`: expiring leases on a running sandbox or sandbox-backed service, and what
 * they carry: the main process's stdio, exec'd processes and confined file access
 * (docs/sessions.md), and on a browser service a browser context of their own, reached through
 * the `cdp` and `page` channels (docs/browser.md), under `/api/sessions`.
 *
 * Routes under `/api/sessions/{id}` take an optional `?tenantId=`: the call's `tenantId`, else
 * the client's default, is sent when there is one (the server then answers 404 for another
 * tenant's session), and without either the server takes the tenant from the session.
 */

import { NimbusClientError, NimbusError } from "./errors.js";
import type { Query, Transport } from "./transport.js";
import { Attachment, type AttachmentOptions, type AttachmentWire } from "./stream.js";
import { SessionPage } from "./browser.js";
import type {
  BrowserSessionOptions,
  CdpEndpoint,
  ExecResult,
  ExitFrame,
  FileInfo,
  FileList,
  ProcessInfo,
  ProcessSignal,
  Session,
  SessionChannel,
  SessionCollection,
  SessionState,
  SessionTarget,
  StreamFrame,
} from "./compute-types.js";

/** Consecutive attachments `Process.wait()` tries when each ends before the exit (replaced, cut off). */
const WAIT_MAX_ATTACHES = 100;

/** The session routes' shared plumbing. */
class SessionRoutes {
  constructor(readonly transport: Transport) {}

  /** `/api/sessions/{id}/…` (segments trimmed and encoded; an empty one throws). */
  path(id: string, ...rest: string[]): string {
    return this.transport.path("api", "sessions", id, ...rest);
  }

  /** `tenantId` for the query: the call's, else the client's default, else none. */
  tenant(tenantId: string | undefined): Query {
    return { tenantId: tenantId ?? this.transport.defaultTenantId };
  }

  /**
   * Attaches to what `base` (`…/channels/stdio` or `…/processes/{pid}`) names: its `stream`
   * for frames, its `input` and `resize` routes for input.
   */
  attach(base: string, tenantId: string | undefined, options: AttachmentOptions): Promise<Attachment> {
    const query = this.tenant(tenantId);
    const stream = new AbortController();
    const wire: AttachmentWire = {
      frames: this.transport.ndjson<StreamFrame>("GET", `${base}/stream`, { query, signal: stream.signal }),
      detach: () => stream.abort(),
      input: async (body) => {
        await this.transport.json<void>("POST", `${base}/input`, { query, body });
      },
      resize: async (cols, rows) => {
        await this.transport.json<void>("POST", `${base}/resize`, { query, body: { cols, rows } });
      },
    };
    return Attachment.open(wire, options);
  }
}

/** The tenant a call needs in its body or query: the call's, else the client's default. */
function requireTenant(transport: Transport, tenantId: string | undefined, call: string): string {
  const tenant = (tenantId ?? transport.defaultTenantId)?.trim();
  if (!tenant) {
    throw new NimbusClientError(
      `${call} needs a tenant: pass \`tenantId\` to the call or to the client (new Nimbus({ tenantId }))`,
      { call },
    );
  }
  return tenant;
}

/** A process started by {@link Sessions.exec}. */
export class Process {
  private live: Attachment | undefined;
  private waiting: Promise<ExecResult> | undefined;
  private readonly startedAt = Date.now();

  constructor(
    private readonly routes: SessionRoutes,
    private readonly sessionId: string,
    private readonly tenantId: string | undefined,
    /** `proc-<ULID>`. */
    readonly processId: string,
  ) {}

  /**
   * Attaches to the process: its retained output (the last 64 KiB) replayed, then live output,
   * `exit` and `closed`; input goes to its stdin. One live attachment per process: a new one
   * ends the previous one with `closed` `replaced`.
   */
  async attach(): Promise<Attachment> {
    const attachment = await this.open(true);
    this.live = attachment;
    return attachment;
  }

  /**
   * Resolves when the process exits, with its status and output: what an attachment saw from
   * its replay (the server keeps the last 64 KiB) on, each stream capped at 1 MiB; `truncated`
   * says output may be missing. Observes this object's live attachment when there is one
   * instead of replacing it. Use {@link Sessions.run} to collect up to 1 MiB of a short command.
   */
  async wait(): Promise<ExecResult> {
    this.waiting ??= this.waitForExit().finally(() => (this.waiting = undefined));
    return this.waiting;
  }

  /** Sends a signal to the process group: `"INT"`, `"SIGTERM"`, … (409 once it exited). */
  async signal(signal: ProcessSignal | string): Promise<void> {
    await this.routes.transport.json<void>("POST", this.path("signal"), {
      query: this.routes.tenant(this.tenantId),
      body: { signal },
    });
  }

  /** Resizes the process's pty (1..1000 each; 409 `not_a_tty` without one). */
  async resize(cols: number, rows: number): Promise<void> {
    await this.routes.transport.json<void>("POST", this.path("resize"), {
      query: this.routes.tenant(this.tenantId),
      body: { cols, rows },
    });
  }

  private path(...rest: string[]): string {
    return this.routes.path(this.sessionId, "processes", this.processId, ...rest);
  }

  private async open(retainFrames: boolean): Promise<Attachment> {
    const label = `process ${this.processId} of session ${this.sessionId}`;
    return this.routes.attach(this.path(), this.tenantId, { label, retainFrames });
  }

  private async waitForExit(): Promise<ExecResult> {
    let lastReason = "none";
    for (let attempt = 0; attempt < WAIT_MAX_ATTACHES; attempt++) {
      let attachment = this.live;
      if (attachment?.isClosed) {
        // An attachment that saw the exit still holds the answer (the session may be gone).
        const end = await attachment.ended;
        if (end.exit !== undefined) return this.result(attachment, end.exit);
        attachment = undefined;
      }
      if (attachment === undefined) {
        attachment = await this.open(false);
        this.live = attachment;
      }
      const end = await attachment.ended;
      if (end.exit !== undefined) return this.result(attachment, end.exit);
      lastReason = end.reason;
      if (end.reason === "session_closed" || end.reason === "session_expired" || end.reason === "target_stopped") {
        break;
      }
    }
    throw new NimbusClientError(
      `process ${this.processId} of session ${this.sessionId}: no exit status (its attachment ended: ${lastReason})`,
      { sessionId: this.sessionId, processId: this.processId, reason: lastReason },
    );
  }

  private async result(attachment: Attachment, exit: ExitFrame): Promise<ExecResult> {
    let durationMs = Date.now() - this.startedAt;
    try {
      const info = await this.routes.transport.json<ProcessInfo>("GET", this.path(), {
        query: this.routes.tenant(this.tenantId),
      });
      if (info.finishedAt !== null) durationMs = Date.parse(info.finishedAt) - Date.parse(info.startedAt);
    } catch (error) {
      // The session ended with the process (it was killed for it): the client's measure stands.
      if (!(error instanceof NimbusError)) throw error;
    }
    return {
      processId: this.processId,
      exitCode: exit.code,
      signal: exit.signal ?? null,
      timedOut: exit.timedOut ?? false,
      durationMs,
      stdout: attachment.transcript.text("stdout"),
      stderr: attachment.transcript.text("stderr"),
      truncated: attachment.transcript.truncated,
    };
  }
}

/** `nimbus.sessions.files`: confined file access inside the session's sandbox (the `files` channel). */
export class SessionFiles {
  private readonly routes: SessionRoutes;

  constructor(transport: Transport) {
    this.routes = new SessionRoutes(transport);
  }

  /** The file's bytes (symlinks followed; at most 64 MiB). */
  async read(options: { id: string; path: string; tenantId?: string }): Promise<Uint8Array> {
    return this.routes.transport.bytes("GET", this.routes.path(options.id, "files"), {
      query: this.query(options),
    });
  }

  /** The file's content as UTF-8 text (invalid bytes become U+FFFD). */
  async readText(options: { id: string; path: string; tenantId?: string }): Promise<string> {
    return new TextDecoder("utf-8").decode(await this.read(options));
  }

  /**
   * Writes a file atomically, creating parents. `mode` is octal, as a number (`0o600`) or a
   * string (`"0600"`); a replaced file keeps its mode unless one is given.
   */
  async write(options: {
    id: string;
    path: string;
    data: string | Uint8Array;
    mode?: number | string;
    tenantId?: string;
  }): Promise<FileInfo> {
    const { data, mode } = options;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const octal = typeof mode === "number" ? mode.toString(8).padStart(4, "0") : mode;
    return this.routes.transport.json<FileInfo>("PUT", this.routes.path(options.id, "files"), {
      query: { ...this.query(options), mode: octal },
      rawBody: bytes,
      headers: { "content-type": "application/octet-stream" },
    });
  }

  /** A directory's entries, sorted by name. */
  async list(options: { id: string; path: string; tenantId?: string }): Promise<FileList> {
    return this.routes.transport.json<FileList>("GET", this.routes.path(options.id, "files", "list"), {
      query: this.query(options),
    });
  }

  /** A path's metadata (a final symlink is not followed). */
  async stat(options: { id: string; path: string; tenantId?: string }): Promise<FileInfo> {
    return this.routes.transport.json<FileInfo>("GET", this.routes.path(options.id, "files", "stat"), {
      query: this.query(options),
    });
  }

  /** Deletes a file, symlink or empty directory; a non-empty directory needs `recursive`. */
  async delete(options: { id: string; path: string; recursive?: boolean; tenantId?: string }): Promise<void> {
    await this.routes.transport.json<void>("DELETE", this.routes.path(options.id, "files"), {
      query: { ...this.query(options), recursive: options.recursive ? true : undefined },
    });
  }

  private query(options: { path: string; tenantId?: string }): Query {
    return { ...this.routes.tenant(options.tenantId), path: options.path };
  }
}

export class Sessions {
  /** File access through a session's `files` channel. */
  readonly files: SessionFiles;
  /** Page operations through a browser session's `page` channel. */
  readonly page: SessionPage;
  private readonly routes: SessionRoutes;

  constructor(private readonly transport: Transport) {
    this.routes = new SessionRoutes(transport);
    this.files = new SessionFiles(transport);
    this.page = new SessionPage(transport);
  }

  /**
   * Opens a session on a `ready` sandbox (`{ sandbox: { id } }`) or sandbox-backed service
   * (`{ service: { name } }`). The lease lasts `requestedTtlMs` (default 15 min, at most 1 h).
   * On a browser service (channels `cdp`, `page`, `files`) the session gets a browser context
   * of its own with one blank page; `browser` sets its default viewport and restores a
   * `storageState`.
   */
  async open(options: {
    tenantId?: string;
    target: SessionTarget;
    channels: SessionChannel[];
    requestedTtlMs?: number;
    browser?: BrowserSessionOptions;
  }): Promise<Session> {
    const tenantId = requireTenant(this.transport, options.tenantId, "sessions.open");
    const { target, channels, requestedTtlMs, browser } = options;
    return this.transport.json<Session>("POST", this.transport.path("api", "sessions"), {
      body: { tenantId, target, channels, requestedTtlMs, browser },
    });
  }

  async get(options: { id: string; tenantId?: string }): Promise<Session> {
    return this.transport.json<Session>("GET", this.routes.path(options.id), {
      query: this.routes.tenant(options.tenantId),
    });
  }

  /** One page of the tenant's sessions, optionally of one state. */
  async list(
    options: { tenantId?: string; limit?: number; pageToken?: string; state?: SessionState } = {},
  ): Promise<SessionCollection> {
    const tenantId = requireTenant(this.transport, options.tenantId, "sessions.list");
    const { limit, pageToken, state } = options;
    return this.transport.json<SessionCollection>("GET", this.transport.path("api", "sessions"), {
      query: { tenantId, limit, pageToken, state },
    });
  }

  /** Closes the session (its attachments end, its processes are killed); closing twice is a no-op. */
  async close(options: { id: string; tenantId?: string; reason?: string }): Promise<Session> {
    return this.transport.json<Session>("POST", this.routes.path(options.id, "close"), {
      query: this.routes.tenant(options.tenantId),
      body: options.reason === undefined ? undefined : { reason: options.reason },
    });
  }

  /**
   * Where the session's `cdp` channel socket is, for Playwright
   * (`chromium.connectOverCDP(url, { headers })`) or Puppeteer
   * (`connect({ browserWSEndpoint: url, headers })`): the client's endpoint as a WebSocket URL
   * and the headers with its admin token. Makes no request: a session that is not open (or has
   * no `cdp` channel) shows when the client connects, as a refused upgrade (409 `op.conflict`).
   * The socket sees only the session's browser context: to the client, it is the browser.
   */
  async cdpEndpoint(options: { id: string; tenantId?: string }): Promise<CdpEndpoint> {
    const path = this.routes.path(options.id, "channels", "cdp", "ws");
    return this.transport.socketEndpoint(path, this.routes.tenant(options.tenantId));
  }

  /** Moves `expiresAt` to `max(current, now + requestedTtlMs)`: a renew never shortens the lease. */
  async renew(options: { id: string; tenantId?: string; requestedTtlMs?: number }): Promise<Session> {
    const { requestedTtlMs } = options;
    return this.transport.json<Session>("POST", this.routes.path(options.id, "renew"), {
      query: this.routes.tenant(options.tenantId),
      body: requestedTtlMs === undefined ? undefined : { requestedTtlMs },
    });
  }

  /**
   * Attaches to the target's main process: replayed output (the last 64 KiB), live output,
   * input to its stdin. One live attachment per session: a new one ends this one with `replaced`.
   */
  async stdio(options: { id: string; tenantId?: string }): Promise<Attachment> {
    const base = this.routes.path(options.id, "channels", "stdio");
    return this.routes.attach(base, options.tenantId, { label: `stdio of session ${options.id}` });
  }

  /**
   * Starts a process in the session's sandbox (its namespaces, limits, environment and user).
   * `stdin` is written and then closed; `timeoutMs` kills the process group when it expires.
   */
  async exec(options: {
    id: string;
    tenantId?: string;
    argv: string[];
    env?: string[];
    cwd?: string;
    tty?: boolean;
    timeoutMs?: number;
    stdin?: string;
  }): Promise<Process> {
    const { id, tenantId, argv, env, cwd, tty, timeoutMs, stdin } = options;
    const started = await this.transport.json<{ processId: string }>("POST", this.routes.path(id, "exec"), {
      query: this.routes.tenant(tenantId),
      body: { argv, env, cwd, tty, timeoutMs, stdin },
    });
    return new Process(this.routes, id, tenantId, started.processId);
  }

  /**
   * Runs a command to completion (`timeoutMs` default 60 s, at most 10 min) and returns its exit
   * status and output (each stream's first 1 MiB). Stdin is closed at once unless `stdin` is given.
   */
  async run(options: {
    id: string;
    tenantId?: string;
    argv: string[];
    env?: string[];
    cwd?: string;
    timeoutMs?: number;
    stdin?: string;
  }): Promise<ExecResult> {
    const { id, tenantId, argv, env, cwd, timeoutMs, stdin } = options;
    return this.transport.json<ExecResult>("POST", this.routes.path(id, "exec"), {
      query: { ...this.routes.tenant(tenantId), wait: true },
      body: { argv, env, cwd, timeoutMs, stdin },
    });
  }
}

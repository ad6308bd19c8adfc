/**
 * Wire types of the compute surface (docs/sandboxes.md, networking.md, services.md, sessions.md,
 * browser.md, images.md): the resources exactly as the server renders them, and the request
 * shapes the SDK sends.
 *
 * Command lines and environments are never echoed by the server: they come back as
 * {@link Redacted} counts.
 */

/** RFC 3339 UTC with three fractional digits, e.g. `2026-11-28T13:23:49.831Z`. */
export type Timestamp = string;

/** What the server shows instead of a command line or an environment. */
export interface Redacted {
  redacted: true;
  valueCount: number;
}

/** A resource condition (`Ready` for sandboxes, `Admitted` for definitions, `Open` for sessions). */
export interface Condition {
  type: string;
  status: "True" | "False";
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: Timestamp;
}

/** `metadata` of a paginated collection; `nextPageToken` is present while items remain. */
export interface CollectionMetadata {
  tenantId: string;
  resourceVersion: string;
  limit: number;
  remainingCount: number;
  nextPageToken?: string;
}

// ---------------------------------------------------------------------------------------------
// Sandboxes

export type SandboxProfile = "worker" | "desktop";
export type SandboxBackend = "container" | "krun";
export type SandboxLifecycleState = "starting" | "ready" | "not_ready" | "stopping" | "stopped" | "failed";
export type TerminationReason =
  | "exited"
  | "killed"
  | "oom_killed"
  | "stopped_by_request"
  | "start_failed"
  | "server_restart_lost";

/** `spec.root`: only images named by reference are open to callers. */
export interface SandboxRoot {
  kind: "oci_image";
  source: { kind: "reference"; reference: string };
}

export interface SandboxOwner {
  kind: "standalone" | "service";
  /** Standalone only: the slug of the sandbox id is made from it. */
  displayName?: string;
  /** Service only; defaults to the service's name. */
  serviceName?: string;
}

/** `spec.process` as sent. `argv` wins over `entrypoint` + `command`. */
export interface SandboxProcessSpec {
  argv?: string[];
  /** Alias of `argv`. */
  args?: string[];
  entrypoint?: string[];
  command?: string[];
  /** `KEY=VALUE` strings laid over the image's `Env`. */
  env?: string[];
  cwd?: string;
  /** `uid`, `uid:gid`, `name` or `name:group`. */
  user?: string;
  /** Run on a pty (stdout and stderr become one stream). */
  terminal?: boolean;
}

export interface SandboxResources {
  cpuCount?: number;
  memoryLimitBytes?: number;
  pidsLimit?: number;
  /** Size of the writable root's file system, bytes (ours; default 4 GiB). */
  diskLimitBytes?: number;
}

/** A sandbox spec as sent (`spec` of a create, `spec.backend.sandbox` of a service). */
export interface SandboxSpec {
  tenantId?: string;
  owner?: SandboxOwner;
  backend?: SandboxBackend;
  root: SandboxRoot;
  process?: SandboxProcessSpec;
  resources?: SandboxResources;
  /** What the sandbox may reach (docs/networking.md); absent or `{}` means deny-all. */
  network?: SandboxNetwork;
}

/** `spec.process` as echoed: command lines and environment counted, never shown. */
export interface SandboxProcessEcho {
  argv: Redacted;
  environment: Redacted;
  entrypoint?: Redacted;
  command?: Redacted;
  cwd?: string;
  user?: string;
  terminal: boolean;
}

export interface SandboxSpecEcho {
  tenantId: string;
  owner: SandboxOwner;
  backend: SandboxBackend;
  root: SandboxRoot;
  process: SandboxProcessEcho;
  resources: Required<SandboxResources>;
  network: SandboxNetworkEcho;
}

/** The metadata every sandbox and session carries. */
export interface ResourceMetadata {
  tenantId: string;
  id: string;
  generation: number;
  resourceVersion: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** The `Sandbox` resource (sandboxes.md §3). */
export interface Sandbox {
  metadata: ResourceMetadata & {
    labels: Record<string, string>;
  };
  spec: { profile: SandboxProfile; sandbox: SandboxSpecEcho };
  status: {
    lifecycleState: SandboxLifecycleState;
    readiness: string;
    health: string;
    backend: SandboxBackend;
    /** The TCP ports a running sandbox listens on (the egress proxy's listener is not listed). */
    endpoints: SandboxEndpoint[];
    conditions: Condition[];
    image: { reference: string; digest: string } | null;
    startedAt: Timestamp | null;
    finishedAt: Timestamp | null;
    exitCode: number | null;
    terminationReason: TerminationReason | null;
    message: string | null;
    retainedUntil: Timestamp | null;
  };
}

export interface SandboxCollection {
  metadata: CollectionMetadata;
  items: Sandbox[];
}

// ---------------------------------------------------------------------------------------------
// Networking (docs/networking.md)

/**
 * One `spec.network.egress.allow` rule. `host` is a DNS name (`pypi.org`), a suffix wildcard
 * (`*.example.com`: names ending in `.example.com`, not `example.com` itself) or an IP literal.
 */
export interface EgressAllowRule {
  host: string;
  /** 1–16 ports; default `[80, 443]`. */
  ports?: number[];
}

/**
 * One `spec.network.egress.credentials` rule: the egress proxy adds `header: prefix + value` of
 * the tenant secret `secret` to every request the sandbox sends to `host` (which an allow rule
 * must also cover). The value never enters the sandbox.
 */
export interface EgressCredentialRule {
  host: string;
  /** An HTTP header name, not a hop-by-hop or framing one (`Host`, `Content-Length`, `Proxy-*`, …). */
  header: string;
  /** The name of a tenant secret (`nimbus.secrets`); it must exist when the rule is set. */
  secret: string;
  /** Text put before the value, e.g. `"Bearer "`; at most 256 characters. */
  prefix?: string;
}

/** `spec.network.egress` as sent (to create, or to `sandboxes.updateNetwork`). Empty means deny-all. */
export interface SandboxEgress {
  /** At most 64 rules. */
  allow?: EgressAllowRule[];
  /** At most 16 rules. */
  credentials?: EgressCredentialRule[];
}

/** `spec.network` as sent. */
export interface SandboxNetwork {
  egress?: SandboxEgress;
}

/**
 * `spec.sandbox.network` as echoed: normalized (hosts lower-cased, ports filled in and sorted),
 * both lists always present; credentials name their secret, never its value.
 */
export interface SandboxNetworkEcho {
  egress: {
    allow: Array<Required<EgressAllowRule>>;
    credentials: EgressCredentialRule[];
  };
}

/** A TCP port the sandbox listens on (`status.endpoints`), reachable through the ports route. */
export interface SandboxEndpoint {
  /** `tcp-<port>`. */
  name: string;
  protocol: "tcp";
  /** Where it listens inside the sandbox (`127.0.0.1`). */
  host: string;
  port: number;
  /** The ports route's path, `/api/tenants/{t}/sandboxes/{id}/ports/{port}/`. */
  url: string;
}

/** Why the egress proxy refused (`decision: "refused"`) or failed (`"failed"`) a connection or request. */
export type EgressReason =
  | "not_allowed"
  | "internal_address"
  | "sni_mismatch"
  | "not_tls"
  | "ceiling"
  | "secret_missing"
  | "bad_request"
  | "unresolvable"
  | "connect_failed"
  | "upstream_tls"
  | "client_tls";

/**
 * One line of a sandbox's egress decision log (`GET …/egress`): one per tunnel, per plain-HTTP
 * request and per request inside an intercepted tunnel, written when it ends (a refusal at once).
 */
export interface EgressDecision {
  /** Position in the sandbox's log, from 1. */
  seq: number;
  /** When the connection or request ended. */
  time: Timestamp;
  /** `tunnel` (a `CONNECT`), or `request` (plain HTTP, or one request inside an intercepted tunnel). */
  kind: "tunnel" | "request";
  /** `CONNECT`, or the request's method. */
  method: string;
  /** The host asked for (normalized). */
  host: string;
  port: number;
  /** The address the proxy connected to (`151.101.0.223:443`), when it connected. */
  address: string | null;
  /** `failed`: allowed, but the upstream could not be reached (`reason` says why). */
  decision: "allowed" | "refused" | "failed";
  /** The allow rule that matched, when one did. */
  rule: Required<EgressAllowRule> | null;
  reason: EgressReason | null;
  /** The secret's name when the proxy added a credential header (never its value). */
  credential: string | null;
  /** The upstream's HTTP status, for requests. */
  status: number | null;
  /** Bytes sent to the upstream. */
  bytesOut: number;
  /** Bytes received from the upstream. */
  bytesIn: number;
}

// ---------------------------------------------------------------------------------------------
// Services

export type RestartPolicy = "never" | "on_failure" | "always";

/** A readiness probe; `argv` of an `exec` probe comes back redacted. */
export type ReadinessProbe = (
  | { kind: "tcp"; port: number }
  | { kind: "http"; port: number; path: string }
  | { kind: "exec"; argv: string[] }
) & { intervalMs?: number; timeoutMs?: number; failureThreshold?: number };

/** `spec.backend` of a service as sent (services.md §2). */
export type ServiceBackendSpec =
  | {
      kind: "sandbox";
      /** `owner.kind` must be `"service"`. */
      sandbox: SandboxSpec;
      readiness?: ReadinessProbe;
      startTimeoutMs?: number;
      restartPolicy?: RestartPolicy;
      maxRestarts?: number;
    }
  | {
      kind: "builtIn";
      /** Headless Chromium in a sandbox (docs/browser.md). */
      provider: "browser";
      /** Every field has a default. */
      browser?: BrowserBackendSpec;
      /** Time for Chromium to first answer; default 120000. */
      startTimeoutMs?: number;
      /** Default `on_failure`. */
      restartPolicy?: RestartPolicy;
      /** Default 5. */
      maxRestarts?: number;
    }
  | { kind: "builtIn"; provider: "loadBalancer" | "serviceDiscovery" | "modelGateway" }
  | {
      kind: "external";
      endpoint: { url: string };
      auth?: { kind: "none" };
      health: { kind: "http"; path: string; intervalMs?: number; timeoutMs?: number; failureThreshold?: number };
    };

/** `spec.backend.browser` of a browser service (ours, docs/browser.md). */
export interface BrowserBackendSpec {
  /** The image Chromium runs from; default `nimbus/browser:bookworm-1` (`nimbus image build-browser`). */
  image?: string;
  /** As a sandbox's `spec.resources`; default 1 CPU, 1 GiB memory, 1024 processes. */
  resources?: SandboxResources;
  /** As a sandbox's `spec.network`: pages reach only the hosts it allows. Default: no egress. */
  network?: SandboxNetwork;
}

/**
 * The `ServiceDefinition` resource (services.md §3). `spec.backend` is the stored backend with
 * defaults filled in and command lines redacted, so it is not a valid create or update body.
 */
export interface ServiceDefinition {
  metadata: {
    tenantId: string;
    name: string;
    generation: number;
    resourceVersion: string;
    createdAt: Timestamp;
    updatedAt: Timestamp;
    labels: Record<string, string>;
    source: "dynamic" | "staticCatalog";
  };
  spec: { backend: Record<string, unknown> & { kind: ServiceBackendSpec["kind"] } };
  status: {
    backend: ServiceBackendSpec["kind"];
    lifecycleState: string;
    readiness: string;
    health: string;
    conditions: Condition[];
  };
}

export interface ServiceDefinitionCollection {
  metadata: CollectionMetadata;
  items: ServiceDefinition[];
}

export type ServiceState = "stopped" | "starting" | "ready" | "not_ready" | "stopping" | "failed";

/** The runtime view of a service (services.md §5): what runs now. */
export interface Service {
  tenantId: string;
  name: string;
  state: ServiceState;
  lifecycleState: ServiceState;
  readiness: "ready" | "not_ready" | "stopped" | "failed";
  health: "healthy" | "unhealthy" | "unknown";
  endpoints: unknown[];
  /** The generation the current run started from; `null` before any run. */
  definitionGeneration: number | null;
  restartCount: number;
  lastTermination: {
    sandboxId: string;
    exitCode: number | null;
    terminationReason: TerminationReason;
    finishedAt: Timestamp;
  } | null;
  /** The current run's sandbox, when there is one. */
  sandboxId?: string;
  backend?: SandboxBackend;
}

// ---------------------------------------------------------------------------------------------
// Sessions

export type SessionChannel = "stdio" | "exec" | "files" | "cdp" | "page";
export type SessionState = "open" | "closed" | "expired";
export type SessionTarget = { sandbox: { id: string } } | { service: { name: string } };

/** The `Session` resource (sessions.md §3). */
export interface Session {
  metadata: ResourceMetadata;
  spec: {
    target: SessionTarget;
    targetSnapshot:
      | { sandbox: { id: string; generation: number; profile: SandboxProfile; backend: SandboxBackend } }
      | {
          service: {
            name: string;
            generation: number;
            backend: "sandbox" | "builtIn" | "external";
            provider?: string;
            sandboxId?: string;
          };
        };
    channels: SessionChannel[];
    expiresAt: Timestamp;
  };
  status: {
    lifecycleState: SessionState;
    expiresAt: Timestamp;
    conditions: Condition[];
    closedAt?: Timestamp;
    /** Your reason or `client_close`, `expired`, `target_stopped`, `service_force_deleted`, … */
    closeReason?: string;
  };
}

export interface SessionCollection {
  metadata: CollectionMetadata;
  items: Session[];
}

/** The `Process` resource of an exec (sessions.md §7). */
export interface ProcessInfo {
  processId: string;
  state: "running" | "exited";
  tty: boolean;
  startedAt: Timestamp;
  finishedAt: Timestamp | null;
  exitCode: number | null;
  /** A name such as `"SIGTERM"` when a signal ended it. */
  signal: string | null;
  timedOut: boolean;
}

/** A finished command: the answer of `exec?wait=true`, and of `Process.wait()`. */
export interface ExecResult {
  processId: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** UTF-8 text; bytes that are not UTF-8 become U+FFFD. */
  stdout: string;
  stderr: string;
  /** Some output is missing (cut at 1 MiB per stream, or older than what the server retains). */
  truncated: boolean;
}

/** Signals a session may send to a process, with or without the `SIG` prefix. */
export type ProcessSignal =
  | "HUP" | "INT" | "QUIT" | "KILL" | "USR1" | "USR2" | "TERM" | "CONT" | "STOP" | "WINCH"
  | "SIGHUP" | "SIGINT" | "SIGQUIT" | "SIGKILL" | "SIGUSR1" | "SIGUSR2" | "SIGTERM" | "SIGCONT" | "SIGSTOP"
  | "SIGWINCH";

export type FileType = "file" | "dir" | "symlink" | "other";

/** A directory entry. `mode` is a 4-digit octal string such as `"0644"`. */
export interface FileEntry {
  name: string;
  type: FileType;
  size: number;
  mode: string;
  modifiedAt: Timestamp;
}

/** A file's metadata: an entry with its `path` and, for symlinks, `target`. */
export interface FileInfo extends FileEntry {
  path: string;
  target?: string;
}

export interface FileList {
  path: string;
  /** Sorted by name; at most 10 000. */
  entries: FileEntry[];
  truncated: boolean;
}

// ---------------------------------------------------------------------------------------------
// Browser sessions (docs/browser.md)

/** A page's viewport in CSS pixels, each side 1..8192. */
export interface BrowserViewport {
  width: number;
  height: number;
}

/**
 * One cookie of a {@link StorageState}: Playwright's shape, which is DevTools'
 * `Network.CookieParam` (`expires` in seconds since the epoch, `-1` for a session cookie).
 */
export interface StorageCookie {
  name: string;
  value: string;
  domain?: string;
  path?: string;
  /** Instead of `domain` and `path` when restoring: the cookie is set as for this URL. */
  url?: string;
  expires?: number;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: "Strict" | "Lax" | "None";
}

/** One origin's `localStorage` in a {@link StorageState}. */
export interface StorageOrigin {
  /** E.g. `https://example.com`. */
  origin: string;
  localStorage: Array<{ name: string; value: string }>;
}

/**
 * A browser context's cookies and local storage, in Playwright's `storageState` shape: what
 * {@link SessionPage.storageState} returns and what a new session's `browser.storageState`
 * restores (Playwright's own `context.storageState()` is accepted as it is).
 */
export interface StorageState {
  cookies: StorageCookie[];
  origins: StorageOrigin[];
}

/** `browser` of a session open request: the session's browser context's defaults. */
export interface BrowserSessionOptions {
  /** The default viewport of the session's pages; 1280×720 when absent. */
  viewport?: BrowserViewport;
  /** Cookies and local storage restored into the new context. */
  storageState?: StorageState;
}

/**
 * Where a `cdp` channel socket is: the WebSocket URL and the headers that authenticate its
 * upgrade, in the form Playwright's `chromium.connectOverCDP(url, { headers })` and Puppeteer's
 * `connect({ browserWSEndpoint: url, headers })` take.
 */
export interface CdpEndpoint {
  /** `ws://…/api/sessions/{id}/channels/cdp/ws` (`wss:` behind an `https:` endpoint). */
  url: string;
  /** `Authorization: Bearer <admin token>`, plus the client's extra headers. */
  headers: Record<string, string>;
}

/** When a navigation counts as done: the `load` event (default) or `DOMContentLoaded`. */
export type PageWaitUntil = "load" | "domcontentloaded";

/**
 * The element a page operation acts on: a `ref` from a snapshot (`e12`), or a CSS `selector`
 * (matched with `document.querySelector`). Exactly one of them.
 */
export type PageElement = { ref: string; selector?: undefined } | { selector: string; ref?: undefined };

/** A page of a session: its id (Chromium's target id), URL and title. */
export interface PageInfo {
  pageId: string;
  url: string;
  title: string;
}

/** The answer of `page.goto`. */
export interface PageNavigation extends PageInfo {
  /** The main response's HTTP status, when the document came over HTTP (none for `file:`, `data:`, `about:`). */
  status?: number;
}

/** The answer of `page.snapshot`: the accessibility tree as indented text, elements with refs. */
export interface PageSnapshot extends PageInfo {
  /** One element per line: `- heading "Welcome" [level=1] [ref=e12]`. */
  snapshot: string;
  /** The snapshot was cut at 1 MiB (`BROWSER_MAX_TEXT_BYTES`): elements are missing from the end. */
  truncated: boolean;
}

/** The answer of `page.click`, `page.type` and `page.press`: the page and its URL afterwards. */
export interface PageActionResult {
  pageId: string;
  url: string;
}

/** The answer of `page.select`. */
export interface PageSelection {
  pageId: string;
  /** The values of the options now selected. */
  selected: string[];
}

/** The answer of `page.evaluate`: the expression's value, as JSON. */
export interface PageEvaluation<T = unknown> {
  pageId: string;
  result: T;
}

/** The answer of `page.text`. */
export interface PageText {
  pageId: string;
  /** The element's (or the page's) rendered text, `innerText`. */
  text: string;
  /** The text was cut at 1 MiB (`BROWSER_MAX_TEXT_BYTES`). */
  truncated: boolean;
}

/** The answer of `page.close`. */
export interface PageClosed {
  pageId: string;
  closed: true;
}

// ---------------------------------------------------------------------------------------------
// Stream frames: sandbox logs and session attachments

/** Output of a process. `data` is text, or base64 when `encoding` says so (see `frameBytes`). */
export interface OutputFrame {
  kind: "stdout" | "stderr";
  data: string;
  encoding?: "base64";
  /** Attachments: output buffered before this attach. */
  replay?: boolean;
  /** Logs: when the record was written. */
  time?: Timestamp;
}

/** First frame of an attachment. */
export interface OpenedFrame {
  kind: "opened";
  channel: SessionChannel;
  targetGeneration: number;
  processId?: string;
}

/**
 * The process ended. Logs carry `terminationReason`; process attachments carry `signal` and
 * `timedOut`.
 */
export interface ExitFrame {
  kind: "exit";
  code: number | null;
  terminationReason?: TerminationReason;
  signal?: string | null;
  timedOut?: boolean;
}

/** Last frame of an attachment. */
export interface ClosedFrame {
  kind: "closed";
  reason: "source_closed" | "backpressure" | "replaced" | "session_closed" | "session_expired" | "target_stopped";
}

export interface HeartbeatFrame {
  kind: "heartbeat";
  time: Timestamp;
}

/** Logs: older output was dropped. */
export interface TruncatedFrame {
  kind: "truncated";
  droppedBytes: number;
}

export type StreamFrame =
  | OutputFrame
  | OpenedFrame
  | ExitFrame
  | ClosedFrame
  | HeartbeatFrame
  | TruncatedFrame;

// ---------------------------------------------------------------------------------------------
// Images

/** An image of the server-wide store (images.md). */
export interface Image {
  digest: string;
  /** Normalized names, e.g. `docker.io/library/busybox:latest`. */
  references: string[];
  os: string;
  architecture: string;
  sizeBytes: number;
  source: "pull" | "import";
  storedAt: Timestamp;
  /** Sandboxes (not yet removed) that use it. */
  usedBy: number;
}

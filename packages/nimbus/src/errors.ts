// The SDK's two error roots: `NimbusError`, an error the server answered with (its catalogued
// envelope), and `NimbusClientError`, an error raised before or without a server answer. The
// per-code subclasses of `NimbusError` are generated from the server's catalog
// (errors.generated.ts) and registered here, so `errorFromEnvelope` builds the right class.

/**
 * What to do about an error: the catalog's default for its code, or one the server wrote for this
 * error's reason (e.g. how to create a missing tenant).
 */
export interface Remediation {
  action: string;
  message: string;
}

/** The object under `error` in every error response and WebSocket error frame. */
export interface ErrorEnvelope {
  code: string;
  message: string;
  requestId?: string;
  timestamp?: string;
  severity?: "fatal" | "error" | "warning";
  retryable?: boolean;
  detail?: Record<string, unknown> | null;
  remediation?: Remediation;
}

/**
 * An error the server answered with. Branch on `code`, `retryable` and `severity` (or on the
 * subclass: `NimbusNotFoundError`, `NimbusConflictError`, …), never on `message`.
 */
export class NimbusError extends Error {
  /** The stable catalog code, e.g. `op.not_found`. */
  readonly code: string;
  /** The server's `req_<ULID>` for this request (also in the server log). */
  readonly requestId: string | undefined;
  /** The HTTP status; `undefined` for errors that arrived in a WebSocket frame. */
  readonly status: number | undefined;
  /** Whether the same request may succeed if retried. */
  readonly retryable: boolean;
  readonly severity: "fatal" | "error" | "warning";
  /** Structured detail, shaped per code as the catalog says; `null` when the code has none. */
  readonly detail: Record<string, unknown> | null;
  /** What to do about it: the envelope's `remediation` (reason-specific, else the catalog's default). */
  readonly remediation: Remediation | undefined;
  /** When the server raised it (RFC 3339). */
  readonly timestamp: string | undefined;

  constructor(envelope: ErrorEnvelope, status?: number, options?: { cause?: unknown }) {
    super(envelope.message, options);
    this.name = new.target.name;
    this.code = envelope.code;
    this.requestId = envelope.requestId;
    this.status = status;
    this.retryable = envelope.retryable ?? false;
    this.severity = envelope.severity ?? "error";
    this.detail = envelope.detail ?? null;
    this.remediation = envelope.remediation;
    this.timestamp = envelope.timestamp;
  }

  /** The envelope this error was built from. */
  toJSON(): ErrorEnvelope {
    const envelope: ErrorEnvelope = {
      code: this.code,
      message: this.message,
      severity: this.severity,
      retryable: this.retryable,
      detail: this.detail,
    };
    if (this.requestId !== undefined) envelope.requestId = this.requestId;
    if (this.timestamp !== undefined) envelope.timestamp = this.timestamp;
    if (this.remediation !== undefined) envelope.remediation = this.remediation;
    return envelope;
  }
}

/**
 * An error raised by the SDK itself, before or without a server answer: no tenant for a call
 * that needs one, an empty path parameter, no credential found, an unreachable server, a
 * response that is not a Nimbus answer, or a client-side wait that timed out.
 */
export class NimbusClientError extends Error {
  /** Structured detail about what was wrong, when there is any. */
  readonly detail?: Record<string, unknown>;

  constructor(message: string, detail?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    if (detail !== undefined) this.detail = detail;
  }
}

/** A constructor of a `NimbusError` subclass. */
export type NimbusErrorClass = new (envelope: ErrorEnvelope, status?: number, options?: { cause?: unknown }) => NimbusError;

const classes = new Map<string, NimbusErrorClass>();

/** Registers the class thrown for each code (called by errors.generated.ts when it loads). */
export function registerErrorClasses(byCode: Record<string, NimbusErrorClass>): void {
  for (const [code, ctor] of Object.entries(byCode)) classes.set(code, ctor);
}

/** The class thrown for `code`: its generated subclass, else `NimbusError` (a code newer than this SDK). */
export function errorClassFor(code: string): NimbusErrorClass {
  return classes.get(code) ?? NimbusError;
}

/**
 * Builds the error for an envelope (HTTP body `error`, or a WebSocket frame's `error`), as the
 * generated subclass of its code. `status` is the HTTP status, absent for WebSocket errors.
 */
export function errorFromEnvelope(envelope: ErrorEnvelope, status?: number): NimbusError {
  const Class = errorClassFor(envelope.code);
  return new Class(envelope, status);
}

/** Whether `value` looks like an error envelope (`{code: string, message: string, …}`). */
export function isErrorEnvelope(value: unknown): value is ErrorEnvelope {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.code === "string" && typeof v.message === "string";
}

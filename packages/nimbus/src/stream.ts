/**
 * Stream frames and attachments (docs/sessions.md "stdio", "exec"; sandboxes.md "Logs").
 *
 * An {@link Attachment} is a live attachment to a session's `stdio` channel or to a process
 * started by exec: iterate it for frames, and send input, end-of-file and pty resizes through
 * it. Frames come from the attachment's NDJSON stream (`…/stream`, the same frames as the
 * WebSocket route) and input goes through the HTTP input routes, in order, each write answered
 * by the server: a refused write rejects with its `NimbusError` instead of arriving later as a
 * WebSocket `error` frame, and no frame can be missed between the upgrade and the first listener.
 * Frames are read whether or not the caller iterates; they are queued until read.
 */

import { NimbusClientError, NimbusError } from "./errors.js";
import type { ClosedFrame, ExitFrame, StreamFrame } from "./compute-types.js";

/**
 * Unread output an attachment holds for a caller that does not iterate before it ends itself
 * with a `closed` `backpressure` frame, like the server does for a client that stops reading.
 * Reattaching replays the last 64 KiB. Large enough for any burst a reader catches up with.
 */
const MAX_UNREAD_BYTES = 8 * 1024 * 1024;

/** Per-stream cap of the output a process wait collects (the server's `exec?wait=true` cap). */
const WAIT_OUTPUT_CAP_BYTES = 1024 * 1024;

/** The server's replay buffer per process: a replay this large may have lost older output. */
const REPLAY_BYTES = 64 * 1024;

/** The bytes of an output frame (`data` decoded from base64 when `encoding` says so). */
export function frameBytes(frame: { data: string; encoding?: string }): Uint8Array {
  if (frame.encoding === "base64") return new Uint8Array(Buffer.from(frame.data, "base64"));
  return new TextEncoder().encode(frame.data);
}

/**
 * The output an attachment delivered, as `Process.wait()` reports it: the replay (at most the
 * last 64 KiB) plus live output, each stream capped at 1 MiB.
 */
export class Transcript {
  private readonly chunks = { stdout: [] as Uint8Array[], stderr: [] as Uint8Array[] };
  private readonly sizes = { stdout: 0, stderr: 0 };
  private replayed = 0;
  private cut = false;

  add(frame: StreamFrame): void {
    if (frame.kind !== "stdout" && frame.kind !== "stderr") return;
    const bytes = frameBytes(frame);
    if (frame.replay === true) this.replayed += bytes.length;
    const room = WAIT_OUTPUT_CAP_BYTES - this.sizes[frame.kind];
    if (bytes.length > room) this.cut = true;
    const kept = bytes.length > room ? bytes.subarray(0, Math.max(room, 0)) : bytes;
    if (kept.length === 0) return;
    this.chunks[frame.kind].push(kept);
    this.sizes[frame.kind] += kept.length;
  }

  /** One stream's text; bytes that are not UTF-8 become U+FFFD, as in `exec?wait=true`. */
  text(stream: "stdout" | "stderr"): string {
    return new TextDecoder("utf-8").decode(Buffer.concat(this.chunks[stream]));
  }

  /** Output was cut at the cap, or the replay was full so older output may be missing. */
  get truncated(): boolean {
    return this.cut || this.replayed >= REPLAY_BYTES;
  }
}

/** Where an attachment's frames come from and where its input goes (internal). */
export interface AttachmentWire {
  /** The attachment's frames (an NDJSON stream, requested on the first `next()`). */
  frames: AsyncGenerator<StreamFrame>;
  /** Ends the stream's request at once (detaching), even while a read is pending. */
  detach(): void;
  /** `POST …/input`: `{data, encoding?}` or `{eof: true}`. */
  input(body: { data?: string; encoding?: "base64"; eof?: boolean }): Promise<void>;
  /** `POST …/resize`. */
  resize(cols: number, rows: number): Promise<void>;
}

/** How an attachment ended. */
export interface AttachmentEnd {
  /** The process's `exit` frame, when it arrived. */
  exit?: ExitFrame;
  /**
   * The server's `closed` reason, or `"client_close"` (close() was called) or `"disconnected"`
   * (the stream ended without a `closed` frame).
   */
  reason: ClosedFrame["reason"] | "client_close" | "disconnected";
}

/** Options of an attachment (internal). */
export interface AttachmentOptions {
  /** What the attachment is attached to, for error messages. */
  label: string;
  /** Queue frames for iteration (`false` for attachments only observed through `ended`). */
  retainFrames?: boolean;
}

/**
 * A live attachment: `AsyncIterable<StreamFrame>` plus input. Iteration yields every frame the
 * server sends (`opened`, replayed and live output, `heartbeat`, `exit`, and the final
 * `closed`), then ends. Leaving a `for await` loop early does not detach: frames stay queued for
 * the next loop; call {@link Attachment.close} to detach (the session and the process go on).
 */
export class Attachment implements AsyncIterable<StreamFrame> {
  /** Resolves once the attachment is over, however it ended. */
  readonly ended: Promise<AttachmentEnd>;
  /** Output seen so far (what `Process.wait()` reports). */
  readonly transcript = new Transcript();

  private readonly queue: StreamFrame[] = [];
  private unreadBytes = 0;
  private waiter: (() => void) | undefined;
  private exit: ExitFrame | undefined;
  private end: AttachmentEnd | undefined;
  private failure: Error | undefined;
  private resolveEnded!: (end: AttachmentEnd) => void;
  /** The input sent so far, so that writes reach the process in call order. */
  private inputs: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly wire: AttachmentWire,
    private readonly options: AttachmentOptions,
  ) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  /**
   * Attaches: resolves once the server answered with the stream (so input can follow at once),
   * rejects with the server's error when it refused (session not open, channel not opened, …).
   */
  static async open(wire: AttachmentWire, options: AttachmentOptions): Promise<Attachment> {
    const attachment = new Attachment(wire, options);
    const first = await wire.frames.next();
    if (first.done === true) {
      throw new NimbusClientError(`the attachment to ${options.label} ended before its first frame`, {
        attachment: options.label,
      });
    }
    attachment.receive(first.value);
    void attachment.pump();
    return attachment;
  }

  /** Whether the attachment has ended (a `closed` frame, close(), or a lost stream). */
  get isClosed(): boolean {
    return this.end !== undefined;
  }

  /**
   * Sends input to the attached process's stdin: text as is, bytes base64-encoded. Writes are
   * delivered in call order; each resolves once the server accepted it and rejects with its
   * `NimbusError` otherwise (for example `op.conflict` `stdin_closed`).
   */
  write(data: string | Uint8Array): Promise<void> {
    if (typeof data === "string") return this.send(() => this.wire.input({ data }));
    const encoded = Buffer.from(data).toString("base64");
    return this.send(() => this.wire.input({ data: encoded, encoding: "base64" }));
  }

  /** Closes the attached process's stdin (after the writes before it). */
  eof(): Promise<void> {
    return this.send(() => this.wire.input({ eof: true }));
  }

  /** Resizes the attached process's pty (1..1000 each); `op.conflict` `not_a_tty` without one. */
  resize(cols: number, rows: number): Promise<void> {
    return this.send(() => this.wire.resize(cols, rows));
  }

  /** Detaches. The session and the process keep running; frames already queued stay readable. */
  close(): void {
    if (this.end === undefined) this.finish({ exit: this.exit, reason: "client_close" });
    this.wire.detach();
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamFrame> {
    return {
      next: async (): Promise<IteratorResult<StreamFrame>> => {
        for (;;) {
          const frame = this.queue.shift();
          if (frame !== undefined) {
            if (frame.kind === "stdout" || frame.kind === "stderr") this.unreadBytes -= frame.data.length;
            return { value: frame, done: false };
          }
          if (this.failure !== undefined) {
            const failure = this.failure;
            this.failure = undefined;
            throw failure;
          }
          if (this.end !== undefined) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (this.waiter = resolve));
        }
      },
      // Leaving a loop keeps the attachment (see the class comment).
      return: async (): Promise<IteratorResult<StreamFrame>> => ({ value: undefined, done: true }),
    };
  }

  private send(request: () => Promise<void>): Promise<void> {
    if (this.end !== undefined) {
      return Promise.reject(
        new NimbusClientError(`the attachment to ${this.options.label} is closed (${this.end.reason})`, {
          attachment: this.options.label,
          reason: this.end.reason,
        }),
      );
    }
    const sent = this.inputs.then(request, request);
    this.inputs = sent.catch(() => undefined);
    return sent;
  }

  /** Reads the stream to its end in the background. */
  private async pump(): Promise<void> {
    try {
      for (;;) {
        const next = await this.wire.frames.next();
        if (next.done === true || this.end !== undefined) break;
        this.receive(next.value);
      }
    } catch (error) {
      if (this.end === undefined) {
        this.failure =
          error instanceof NimbusError || error instanceof NimbusClientError
            ? error
            : new NimbusClientError(`the attachment to ${this.options.label} was cut off: ${String(error)}`, {
                attachment: this.options.label,
              }, { cause: error });
      }
    }
    if (this.end === undefined) this.finish({ exit: this.exit, reason: "disconnected" });
  }

  private receive(frame: StreamFrame): void {
    if (this.end !== undefined) return;
    this.transcript.add(frame);
    if (frame.kind === "exit") this.exit = frame;
    if (this.options.retainFrames !== false) {
      this.queue.push(frame);
      if (frame.kind === "stdout" || frame.kind === "stderr") this.unreadBytes += frame.data.length;
    }
    if (frame.kind === "closed") {
      this.finish({ exit: this.exit, reason: frame.reason });
    } else if (this.unreadBytes > MAX_UNREAD_BYTES) {
      // Like the server: a reader that fell this far behind is cut off, never silently dropped.
      this.queue.push({ kind: "closed", reason: "backpressure" });
      this.finish({ exit: this.exit, reason: "backpressure" });
      this.wire.detach();
    }
    this.wake();
  }

  private finish(end: AttachmentEnd): void {
    this.end = end;
    this.resolveEnded(end);
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

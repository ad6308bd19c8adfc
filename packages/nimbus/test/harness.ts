// The SDK tests' harness: spawns the real `nimbus` binary ($NIMBUS_BIN, default
// <repo>/target/debug/nimbus) with `start` on a loopback port, with a private temporary data
// dir and HOME/XDG dirs, the way the Rust black-box harness does. Readiness is the server's
// own "listening on http://…" line (printed after the bind and after server.json is written),
// awaited with a deadline; nothing sleeps. Every server still running when the test process
// exits (or is interrupted) is killed by its pid.

import { spawn, type ChildProcess } from "node:child_process";
import { after, before } from "node:test";
import { chmod, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Nimbus } from "../src/index.js";

/** Safety nets only: a server that never prints its URL or never exits fails the test instead of hanging it. */
const STARTUP_DEADLINE_MS = 60_000;
const EXIT_DEADLINE_MS = 30_000;

/** The repository root (this file runs from packages/nimbus/build/test/). */
export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
/** The binary under test. */
export const NIMBUS_BIN = process.env.NIMBUS_BIN ?? path.join(REPO_ROOT, "target/debug/nimbus");

export interface TestServer {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** The admin token, read from the server's token file at start-up. */
  token: string;
  dataDir: string;
  /** The environment the server runs with (HOME, XDG_* dirs, TMPDIR, PATH, plus `opts.env`). */
  env: Record<string, string>;
  /** A client of this server (explicit endpoint and token). */
  client(tenantId?: string): Nimbus;
  /** Stops the server (SIGTERM, then waits for its exit) and removes its temporary dirs. */
  stop(): Promise<void>;
  /** The listening port. */
  port: number;
  /** The server process id (changes on restart). */
  pid: number;
  /** Stops the server gracefully and starts it again on the same port and directories. */
  restart(): Promise<void>;
  /** The server's stderr so far. */
  stderr(): string;
}

interface Running {
  child: ChildProcess;
  exited: Promise<number | null>;
  lines: string[];
}

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
  live.clear();
}

process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what())), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function launch(env: Record<string, string>, dataDir: string, cwd: string, port: number, args: string[]): Promise<Running & { url: string }> {
  const child = spawn(NIMBUS_BIN, ["start", "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir, ...args], {
    env,
    cwd,
    stdio: ["ignore", "ignore", "pipe"],
  });
  live.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      live.delete(child);
      resolve(code);
    });
    child.once("error", () => {
      live.delete(child);
      resolve(null);
    });
  });
  const lines: string[] = [];
  const url = new Promise<string>((resolve, reject) => {
    let partial = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      partial += chunk;
      let newline: number;
      while ((newline = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, newline);
        partial = partial.slice(newline + 1);
        lines.push(line);
        const at = line.indexOf(" listening on http://");
        if (at >= 0) resolve(line.slice(at + " listening on ".length).trim());
      }
    });
    child.once("error", (error) => reject(new Error(`cannot run ${NIMBUS_BIN}: ${error.message} (set NIMBUS_BIN or run cargo build -p nimbus-cli)`)));
    void exited.then((code) => reject(new Error(`nimbus start exited with ${code} before listening; stderr:\n${lines.join("\n")}`)));
  });
  // A forgotten server must not keep the test process alive; the exit hook kills it.
  child.unref();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  try {
    const listening = await withDeadline(url, STARTUP_DEADLINE_MS, () => `nimbus did not print its listen URL; stderr:\n${lines.join("\n")}`);
    return { child, exited, lines, url: listening };
  } catch (error) {
    await terminate({ child, exited, lines }, "SIGKILL");
    throw error;
  }
}

async function terminate(running: Running, signal: NodeJS.Signals): Promise<void> {
  const { child } = running;
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(child.pid, signal);
    } catch {
      // Exited meanwhile.
    }
  }
  try {
    await withDeadline(running.exited, EXIT_DEADLINE_MS, () => `nimbus (pid ${child.pid}) did not exit`);
  } catch (error) {
    if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    await running.exited;
    throw error;
  }
}

/** Spawns `nimbus start` on a free loopback port with fresh temporary directories. */
export async function startServer(opts: { env?: Record<string, string>; args?: string[] } = {}): Promise<TestServer> {
  const root = await mkdtemp(path.join(tmpdir(), "nimbus-sdk-"));
  const dirs = {
    data: path.join(root, "data"),
    home: path.join(root, "home"),
    xdgData: path.join(root, "xdg-data"),
    xdgRuntime: path.join(root, "xdg-runtime"),
    xdgState: path.join(root, "xdg-state"),
    xdgConfig: path.join(root, "xdg-config"),
  };
  for (const dir of [dirs.home, dirs.xdgData, dirs.xdgRuntime, dirs.xdgState, dirs.xdgConfig]) await mkdir(dir, { recursive: true });
  await chmod(dirs.xdgRuntime, 0o700);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dirs.home,
    XDG_DATA_HOME: dirs.xdgData,
    XDG_RUNTIME_DIR: dirs.xdgRuntime,
    XDG_STATE_HOME: dirs.xdgState,
    XDG_CONFIG_HOME: dirs.xdgConfig,
    TMPDIR: root,
    ...opts.env,
  };
  const args = opts.args ?? [];
  let running: Running;
  let url: string;
  try {
    const launched = await launch(env, dirs.data, root, 0, args);
    running = launched;
    url = launched.url;
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  const port = Number(new URL(url).port);
  const tokenFile = JSON.parse(await readFile(path.join(dirs.xdgData, "nimbus/auth/token"), "utf8")) as { token: string };
  let stopped = false;

  const server: TestServer = {
    endpoint: url,
    token: tokenFile.token,
    dataDir: dirs.data,
    env,
    port,
    pid: running.child.pid!,
    client(tenantId?: string): Nimbus {
      return new Nimbus({ endpoint: server.endpoint, token: server.token, tenantId });
    },
    stderr(): string {
      return running.lines.join("\n");
    },
    async restart(): Promise<void> {
      await terminate(running, "SIGTERM");
      const launched = await launch(env, dirs.data, root, port, args);
      running = launched;
      server.pid = launched.child.pid!;
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      try {
        await terminate(running, "SIGTERM");
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    },
  };
  return server;
}

let tenantCounter = 0;

/** Creates a uniquely named tenant on `server` and returns its id. */
export async function freshTenant(server: TestServer): Promise<string> {
  const id = `t-${process.pid}-${Date.now().toString(36)}-${++tenantCounter}`;
  await server.client().tenants.create({ id });
  return id;
}

/**
 * Polls `probe` until it returns a value other than `undefined`, with a deadline. For
 * conditions only observable by asking again (a job's state after its write committed).
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = 30_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  let delay = 5;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/**
 * One server for a test file: started before the file's tests (then `ready` runs), stopped after
 * them (after `beforeStop`, even when that throws). Returns the server; call it only inside
 * tests and hooks.
 */
export function fileServer(
  hooks: { ready?: (server: TestServer) => Promise<void>; beforeStop?: () => Promise<void> } = {},
): () => TestServer {
  let server: TestServer | undefined;
  before(async () => {
    server = await startServer();
    await hooks.ready?.(server);
  });
  after(async () => {
    try {
      await hooks.beforeStop?.();
    } finally {
      await server?.stop();
    }
  });
  return () => {
    if (server === undefined) throw new Error("the file's server is not started yet");
    return server;
  };
}

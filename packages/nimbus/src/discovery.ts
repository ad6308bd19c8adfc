// Where the server is and which credential to send, resolved the way the `nimbus` CLI does:
//
//   endpoint: the `endpoint` option → NIMBUS_ENDPOINT → the running server's discovery file
//             ($XDG_RUNTIME_DIR/nimbus/server.json, else $XDG_STATE_HOME/nimbus/run/server.json,
//             else ~/.local/state/nimbus/run/server.json) → http://127.0.0.1:8080
//   token:    the `token` option → NIMBUS_TOKEN → NIMBUS_BEARER_TOKEN → the local admin token
//             file ($XDG_DATA_HOME/nimbus/auth/token, else ~/.local/share/nimbus/auth/token)
//
// Files are read only where Node's `fs` exists; elsewhere (browsers) only the options count.

import { NimbusClientError } from "./errors.js";

/** The endpoint used when nothing else names one. */
export const DEFAULT_ENDPOINT = "http://127.0.0.1:8080";

/** Where the endpoint came from. */
export type EndpointSource = "option" | "NIMBUS_ENDPOINT" | "discovery_file" | "default";
/** Where the token came from. */
export type TokenSource = "option" | "NIMBUS_TOKEN" | "NIMBUS_BEARER_TOKEN" | "token_file";

/** A resolved server address and credential. */
export interface Connection {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`. */
  endpoint: string;
  endpointSource: EndpointSource;
  token: string;
  tokenSource: TokenSource;
  /** The file the endpoint or token was read from, when one was. */
  discoveryFile?: string;
  tokenFile?: string;
}

/** The inputs of discovery; `env` defaults to `process.env`. */
export interface DiscoveryInput {
  endpoint?: string;
  token?: string;
  env?: Record<string, string | undefined>;
}

/** The `server.json` record a running server writes. */
export interface ServerRecord {
  pid: number;
  address: string;
  startedAt?: string;
  version?: string;
  protocolVersions?: string[];
}

type Env = Record<string, string | undefined>;

function processEnv(): Env {
  const proc = (globalThis as { process?: { env?: Env } }).process;
  return proc?.env ?? {};
}

function nonEmpty(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

interface NodeFs {
  readFile(path: string, encoding: "utf8"): Promise<string>;
}

async function nodeFs(): Promise<NodeFs | undefined> {
  try {
    return (await import("node:fs/promises")) as NodeFs;
  } catch {
    return undefined;
  }
}

async function homeDir(env: Env): Promise<string | undefined> {
  const home = nonEmpty(env, "HOME");
  if (home !== undefined) return home;
  try {
    const os = await import("node:os");
    return os.homedir() || undefined;
  } catch {
    return undefined;
  }
}

/** `$XDG_RUNTIME_DIR/nimbus/server.json`, else `$XDG_STATE_HOME/nimbus/run/server.json`, else under `~/.local/state`. */
export async function discoveryFilePath(env: Env = processEnv()): Promise<string | undefined> {
  const runtime = nonEmpty(env, "XDG_RUNTIME_DIR");
  if (runtime !== undefined) return `${runtime}/nimbus/server.json`;
  const state = nonEmpty(env, "XDG_STATE_HOME") ?? withSuffix(await homeDir(env), "/.local/state");
  return state === undefined ? undefined : `${state}/nimbus/run/server.json`;
}

/** `$XDG_DATA_HOME/nimbus/auth/token`, else `~/.local/share/nimbus/auth/token`. */
export async function tokenFilePath(env: Env = processEnv()): Promise<string | undefined> {
  const data = nonEmpty(env, "XDG_DATA_HOME") ?? withSuffix(await homeDir(env), "/.local/share");
  return data === undefined ? undefined : `${data}/nimbus/auth/token`;
}

function withSuffix(base: string | undefined, suffix: string): string | undefined {
  return base === undefined ? undefined : base + suffix;
}

function processAlive(pid: number): boolean {
  const proc = (globalThis as { process?: { kill?: (pid: number, signal: number) => boolean } }).process;
  if (proc?.kill === undefined) return true;
  try {
    proc.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as { code?: string }).code === "EPERM";
  }
}

/**
 * The live server named by the discovery file, if any. A record whose process is gone is
 * stale and ignored (the server's own readers delete it; a client library leaves files alone).
 */
export async function readServerRecord(env: Env = processEnv()): Promise<{ record: ServerRecord; path: string } | undefined> {
  const path = await discoveryFilePath(env);
  const fs = await nodeFs();
  if (path === undefined || fs === undefined) return undefined;
  let record: ServerRecord;
  try {
    record = JSON.parse(await fs.readFile(path, "utf8")) as ServerRecord;
  } catch {
    return undefined;
  }
  if (typeof record.address !== "string" || typeof record.pid !== "number") return undefined;
  if (!processAlive(record.pid)) return undefined;
  return { record, path };
}

/** `host:port` from `server.json` as a URL; a wildcard bind address is reached over loopback. */
export function endpointFromAddress(address: string): string {
  let host: string;
  let port: string;
  const bracket = /^\[(.*)\]:(\d+)$/.exec(address);
  if (bracket !== null) {
    host = bracket[1] === "::" ? "::1" : bracket[1]!;
    port = bracket[2]!;
    return `http://[${host}]:${port}`;
  }
  const at = address.lastIndexOf(":");
  host = at < 0 ? address : address.slice(0, at);
  port = at < 0 ? "80" : address.slice(at + 1);
  if (host === "0.0.0.0" || host === "") host = "127.0.0.1";
  return `http://${host}:${port}`;
}

/** The token in the local admin token file, if the file exists and holds one. */
export async function readTokenFile(env: Env = processEnv()): Promise<{ token: string; path: string } | undefined> {
  const path = await tokenFilePath(env);
  const fs = await nodeFs();
  if (path === undefined || fs === undefined) return undefined;
  let text: string;
  try {
    text = await fs.readFile(path, "utf8");
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw new NimbusClientError(`cannot read the admin token file ${path}: ${(error as Error).message}`, { path }, { cause: error });
  }
  let token: unknown;
  try {
    token = (JSON.parse(text) as { token?: unknown }).token;
  } catch (error) {
    throw new NimbusClientError(`the admin token file ${path} is not JSON`, { path }, { cause: error });
  }
  if (typeof token !== "string" || token === "") {
    throw new NimbusClientError(`the admin token file ${path} has no "token" field`, { path });
  }
  return { token, path };
}

function trimEndpoint(endpoint: string): string {
  return endpoint.replace(/\/+$/, "");
}

/** Resolves the endpoint only (no credential needed). */
export async function resolveEndpoint(
  input: DiscoveryInput = {},
): Promise<Pick<Connection, "endpoint" | "endpointSource" | "discoveryFile">> {
  const env = input.env ?? processEnv();
  if (input.endpoint !== undefined && input.endpoint !== "") {
    return { endpoint: trimEndpoint(input.endpoint), endpointSource: "option" };
  }
  const fromEnv = nonEmpty(env, "NIMBUS_ENDPOINT");
  if (fromEnv !== undefined) return { endpoint: trimEndpoint(fromEnv), endpointSource: "NIMBUS_ENDPOINT" };
  const found = await readServerRecord(env);
  if (found !== undefined) {
    return { endpoint: endpointFromAddress(found.record.address), endpointSource: "discovery_file", discoveryFile: found.path };
  }
  return { endpoint: DEFAULT_ENDPOINT, endpointSource: "default" };
}

/** Resolves the token only; throws `NimbusClientError` naming every source when none has one. */
export async function resolveToken(input: DiscoveryInput = {}): Promise<Pick<Connection, "token" | "tokenSource" | "tokenFile">> {
  const env = input.env ?? processEnv();
  if (input.token !== undefined && input.token !== "") return { token: input.token, tokenSource: "option" };
  for (const name of ["NIMBUS_TOKEN", "NIMBUS_BEARER_TOKEN"] as const) {
    const value = nonEmpty(env, name);
    if (value !== undefined) return { token: value, tokenSource: name };
  }
  const file = await readTokenFile(env);
  if (file !== undefined) return { token: file.token, tokenSource: "token_file", tokenFile: file.path };
  const path = await tokenFilePath(env);
  throw new NimbusClientError(
    "no Nimbus credential: pass the `token` option, set NIMBUS_TOKEN or NIMBUS_BEARER_TOKEN, " +
      `or run \`nimbus start\` on this machine so the admin token file exists${path === undefined ? "" : ` (${path})`}`,
    { reason: "missing_credential", options: ["token"], variables: ["NIMBUS_TOKEN", "NIMBUS_BEARER_TOKEN"], tokenFile: path ?? null },
  );
}

/** Resolves the endpoint and the credential, in the order described at the top of this file. */
export async function resolveConnection(input: DiscoveryInput = {}): Promise<Connection> {
  const endpoint = await resolveEndpoint(input);
  const token = await resolveToken(input);
  return { ...endpoint, ...token };
}

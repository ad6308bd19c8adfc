// The client itself: discovery of endpoint and token (options, environment, files), the rules
// that throw before sending (tenant, path parameters, credential), error mapping, and the
// generated error classes against the server's `GET /errors`.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import * as sdk from "../src/index.js";
import {
  DEFAULT_ENDPOINT,
  ERROR_CATALOG,
  ERROR_CATALOG_VERSION,
  Nimbus,
  NimbusClientError,
  NimbusError,
  NimbusInvalidInputError,
  NimbusNotFoundError,
  NimbusRateLimitedError,
  NimbusUnauthorizedError,
  Transport,
  errorFromEnvelope,
  resolveConnection,
  type ErrorCode,
} from "../src/index.js";
import { freshTenant, startServer, type TestServer } from "./harness.js";

let server: TestServer;
let scratch: string;

before(async () => {
  server = await startServer();
  scratch = await mkdtemp(path.join(tmpdir(), "nimbus-sdk-client-"));
});

after(async () => {
  await server?.stop();
  await rm(scratch, { recursive: true, force: true });
});

/** A `fetch` that records requests and answers 200 `{}` without any network. */
function stubFetch(calls: Array<{ url: string; init: RequestInit | undefined }>): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(input), init });
    return new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
  }) as typeof fetch;
}

/** Runs `body` with process.env changed as given (`undefined` unsets), then restores it. */
async function withEnv<T>(changes: Record<string, string | undefined>, body: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(changes)) {
    saved[key] = process.env[key];
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  try {
    return await body();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const { port } = listener.address() as { port: number };
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  return port;
}

const NO_DISCOVERY = { NIMBUS_ENDPOINT: undefined, NIMBUS_TOKEN: undefined, NIMBUS_BEARER_TOKEN: undefined };

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

test("discovery: options win over the environment, which wins over files", async () => {
  const env = { NIMBUS_ENDPOINT: "http://10.0.0.1:9/", NIMBUS_TOKEN: "env-token", NIMBUS_BEARER_TOKEN: "bearer", ...server.env };
  assert.deepEqual(await resolveConnection({ endpoint: "http://example.test:1/", token: "opt", env }), {
    endpoint: "http://example.test:1",
    endpointSource: "option",
    token: "opt",
    tokenSource: "option",
  });
  const fromEnv = await resolveConnection({ env });
  assert.equal(fromEnv.endpoint, "http://10.0.0.1:9");
  assert.equal(fromEnv.endpointSource, "NIMBUS_ENDPOINT");
  assert.equal(fromEnv.token, "env-token");
  assert.equal(fromEnv.tokenSource, "NIMBUS_TOKEN");
  const bearer = await resolveConnection({ env: { ...env, NIMBUS_TOKEN: "" } });
  assert.equal(bearer.token, "bearer");
  assert.equal(bearer.tokenSource, "NIMBUS_BEARER_TOKEN");
});

test("discovery: the running server's server.json and the local token file", async () => {
  const connection = await resolveConnection({ env: server.env });
  assert.equal(connection.endpoint, server.endpoint);
  assert.equal(connection.endpointSource, "discovery_file");
  assert.equal(connection.discoveryFile, path.join(server.env.XDG_RUNTIME_DIR!, "nimbus/server.json"));
  assert.equal(connection.token, server.token);
  assert.equal(connection.tokenSource, "token_file");
  assert.equal(connection.tokenFile, path.join(server.env.XDG_DATA_HOME!, "nimbus/auth/token"));
});

test("discovery: XDG_STATE_HOME and HOME fallbacks; a stale server.json is ignored", async () => {
  const root = await mkdtemp(path.join(scratch, "xdg-"));
  const record = (pid: number, port: number) => JSON.stringify({ pid, address: `127.0.0.1:${port}`, startedAt: "2026-01-01T00:00:00.000Z", version: "0.1.0", protocolVersions: ["nimbus.v2"] });
  const token = (value: string) => JSON.stringify({ version: 1, token: value, generation: 1, issuedAt: "2026-01-01T00:00:00.000Z", scope: "local-admin" });

  // XDG_STATE_HOME/nimbus/run/server.json when XDG_RUNTIME_DIR is unset.
  await mkdir(path.join(root, "state/nimbus/run"), { recursive: true });
  await writeFile(path.join(root, "state/nimbus/run/server.json"), record(process.pid, 4567));
  const viaState = await resolveConnection({ token: "t", env: { XDG_STATE_HOME: path.join(root, "state"), HOME: path.join(root, "nohome") } });
  assert.equal(viaState.endpoint, "http://127.0.0.1:4567");
  assert.equal(viaState.endpointSource, "discovery_file");

  // ~/.local/state and ~/.local/share when no XDG variable is set.
  const home = path.join(root, "home");
  await mkdir(path.join(home, ".local/state/nimbus/run"), { recursive: true });
  await mkdir(path.join(home, ".local/share/nimbus/auth"), { recursive: true });
  await writeFile(path.join(home, ".local/state/nimbus/run/server.json"), record(process.pid, 5678));
  await writeFile(path.join(home, ".local/share/nimbus/auth/token"), token("nimbus_at_home"));
  const viaHome = await resolveConnection({ env: { HOME: home } });
  assert.equal(viaHome.endpoint, "http://127.0.0.1:5678");
  assert.equal(viaHome.token, "nimbus_at_home");
  assert.equal(viaHome.tokenSource, "token_file");

  // A record whose process is gone is stale: the default endpoint applies.
  await writeFile(path.join(home, ".local/state/nimbus/run/server.json"), record(2 ** 31 - 2, 6789));
  const stale = await resolveConnection({ env: { HOME: home } });
  assert.equal(stale.endpoint, DEFAULT_ENDPOINT);
  assert.equal(stale.endpointSource, "default");

  // A token file without a token is an error naming the file, not a silent fallback.
  await writeFile(path.join(home, ".local/share/nimbus/auth/token"), "{}");
  await assert.rejects(resolveConnection({ env: { HOME: home } }), (error: unknown) => {
    assert.ok(error instanceof NimbusClientError);
    assert.match(error.message, /auth\/token/);
    return true;
  });
});

test("new Nimbus() with no options finds the server from the environment's files", async () => {
  await withEnv({ ...NO_DISCOVERY, HOME: server.env.HOME, XDG_RUNTIME_DIR: server.env.XDG_RUNTIME_DIR, XDG_DATA_HOME: server.env.XDG_DATA_HOME, XDG_STATE_HOME: undefined }, async () => {
    const tenant = await freshTenant(server);
    const nimbus = new Nimbus({ tenantId: tenant });
    assert.equal(nimbus.tenantId, tenant);
    assert.deepEqual(await nimbus.query({ table: "tasks" }), []);
    const connection = await nimbus.connection();
    assert.equal(connection.endpoint, server.endpoint);
    assert.equal(connection.tokenSource, "token_file");

    const eager = await Nimbus.defaultClient({ tenantId: tenant });
    assert.equal((await eager.connection()).endpointSource, "discovery_file");
  });
  await withEnv({ ...NO_DISCOVERY, NIMBUS_ENDPOINT: server.endpoint, NIMBUS_TOKEN: server.token }, async () => {
    const nimbus = new Nimbus();
    assert.ok(Array.isArray(await nimbus.tenants.list()));
    assert.equal((await nimbus.connection()).endpointSource, "NIMBUS_ENDPOINT");
  });
});

test("no credential: the constructor does no I/O, the first request throws naming the options and variables", async () => {
  const empty = await mkdtemp(path.join(scratch, "empty-"));
  await withEnv({ ...NO_DISCOVERY, HOME: empty, XDG_DATA_HOME: path.join(empty, "data"), XDG_RUNTIME_DIR: path.join(empty, "run") }, async () => {
    const calls: Array<{ url: string; init: RequestInit | undefined }> = [];
    const nimbus = new Nimbus({ endpoint: server.endpoint, tenantId: "demo", fetch: stubFetch(calls) });
    await assert.rejects(nimbus.tenants.list(), (error: unknown) => {
      assert.ok(error instanceof NimbusClientError);
      assert.ok(!(error instanceof NimbusError));
      for (const name of ["`token`", "NIMBUS_TOKEN", "NIMBUS_BEARER_TOKEN", "nimbus start"]) assert.ok(error.message.includes(name), error.message);
      assert.equal(error.detail?.reason, "missing_credential");
      return true;
    });
    assert.equal(calls.length, 0);
    await assert.rejects(Nimbus.defaultClient({ endpoint: server.endpoint }), NimbusClientError);
  });
});

test("a token read from the token file is re-read after a rotation", async () => {
  const own = await startServer();
  try {
    await withEnv({ ...NO_DISCOVERY, HOME: own.env.HOME, XDG_RUNTIME_DIR: own.env.XDG_RUNTIME_DIR, XDG_DATA_HOME: own.env.XDG_DATA_HOME }, async () => {
      const fromFile = new Nimbus();
      const before = (await fromFile.connection()).token;
      const rotator = own.client();
      assert.deepEqual(await rotator.system.rotateToken(), { generation: 2 });
      await assert.rejects(rotator.tenants.list(), (error: unknown) => error instanceof NimbusUnauthorizedError && error.detail.reason === "token_revoked");
      // The file now holds generation 2; the file-based client picks it up on its 401.
      assert.ok(Array.isArray(await fromFile.tenants.list()));
      assert.notEqual((await fromFile.connection()).token, before);
    });
  } finally {
    await own.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// Rules applied before sending
// ---------------------------------------------------------------------------------------------

test("calls that need a tenant throw before sending when neither the call nor the client names one", async () => {
  const calls: Array<{ url: string; init: RequestInit | undefined }> = [];
  const nimbus = new Nimbus({ endpoint: server.endpoint, token: "t", fetch: stubFetch(calls) });
  const attempts: Array<() => Promise<unknown>> = [
    () => nimbus.documents.insert({ table: "tasks", fields: {} }),
    () => nimbus.documents.list({ table: "tasks" }),
    () => nimbus.query({ table: "tasks" }),
    () => nimbus.paginate({ query: { table: "tasks" }, pageSize: 1 }),
    () => nimbus.schemas.list(),
    () => nimbus.journal.read(),
    () => nimbus.schedule.list(),
    () => nimbus.crons.list(),
    () => nimbus.functions.list(),
  ];
  for (const attempt of attempts) {
    await assert.rejects(attempt(), (error: unknown) => {
      assert.ok(error instanceof NimbusClientError);
      assert.match(error.message, /tenantId/);
      assert.equal(error.detail?.reason, "missing_tenant");
      return true;
    });
  }
  assert.equal(calls.length, 0);
  // Tenant-less routes are sent.
  await nimbus.tenants.list().catch(() => undefined);
  assert.equal(calls.length, 1);
});

test("path parameters are trimmed and percent-encoded; an empty one throws before sending", async () => {
  const calls: Array<{ url: string; init: RequestInit | undefined }> = [];
  const nimbus = new Nimbus({ endpoint: `${server.endpoint}/`, token: "t", tenantId: "demo", fetch: stubFetch(calls) });
  await nimbus.documents.get({ table: " tasks ", id: "a/b c?d" }).catch(() => undefined);
  await nimbus.crons.runs({ name: "nightly report", limit: 5 });
  await nimbus.documents.list({ tenantId: "other", table: "t", limit: undefined });
  assert.deepEqual(
    calls.map((c) => c.url),
    [
      `${server.endpoint}/api/tenants/demo/documents/tasks/a%2Fb%20c%3Fd`,
      `${server.endpoint}/api/tenants/demo/crons/nightly%20report/runs?limit=5`,
      `${server.endpoint}/api/tenants/other/documents/t`,
    ],
  );
  calls.length = 0;
  for (const attempt of [
    () => nimbus.documents.get({ table: "tasks", id: "" }),
    () => nimbus.documents.delete({ table: "  ", id: "x" }),
    () => nimbus.crons.get({ name: "\t" }),
    () => nimbus.schedule.cancel({ id: "" }),
    () => nimbus.tenants.delete({ id: " " }),
    () => nimbus.query({ tenantId: "", table: "tasks" }),
    () => nimbus.documents.get({ table: "tasks", id: undefined as unknown as string }),
  ]) {
    await assert.rejects(attempt(), (error: unknown) => {
      assert.ok(error instanceof NimbusClientError);
      assert.match(String(error.detail?.reason), /^(empty|missing)_path_parameter$/);
      return true;
    });
  }
  assert.equal(calls.length, 0);
});

test("requests carry the token, the client's headers and JSON bodies", async () => {
  const calls: Array<{ url: string; init: RequestInit | undefined }> = [];
  const nimbus = new Nimbus({ endpoint: server.endpoint, token: "secret", tenantId: "demo", headers: { "X-Trace": "abc", Authorization: "ignored" }, fetch: stubFetch(calls) });
  await nimbus.documents.insert({ table: "tasks", fields: { a: 1 } });
  const init = calls[0]!.init!;
  const headers = init.headers as Record<string, string>;
  assert.equal(init.method, "POST");
  assert.equal(headers.authorization, "Bearer secret");
  assert.equal(headers["x-trace"], "abc");
  assert.equal(headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(String(init.body)), { table: "tasks", fields: { a: 1 } });
});

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

test("a 404 is a NimbusNotFoundError with the envelope's code, requestId, status and flags", async () => {
  const nimbus = server.client(await freshTenant(server));
  const response = await fetch(`${server.endpoint}/api/tenants/${nimbus.tenantId}/crons/absent`, { headers: { authorization: `Bearer ${server.token}` } });
  const envelope = ((await response.json()) as { error: Record<string, unknown> }).error;
  const error = await nimbus.crons.get({ name: "absent" }).then(
    () => assert.fail("a missing cron was found"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof NimbusNotFoundError);
  assert.ok(error instanceof NimbusError);
  assert.equal(error.name, "NimbusNotFoundError");
  assert.equal(error.code, "op.not_found");
  assert.equal(error.status, 404);
  assert.equal(error.retryable, false);
  assert.equal(error.severity, "error");
  assert.match(error.requestId ?? "", /^req_[0-9a-z]{26}$/);
  assert.notEqual(error.requestId, envelope.requestId, "each request has its own id");
  assert.equal(error.message, envelope.message);
  assert.deepEqual(error.detail, envelope.detail);
  // The catalog has no remediation for op.not_found; this error carries one for its reason.
  assert.deepEqual(error.remediation, envelope.remediation);
  assert.equal(error.remediation?.action, "fix_request");
  assert.match(error.remediation?.message ?? "", /`GET \/api\/tenants\/\{tenant_id\}\/crons`/);
  assert.deepEqual(error.toJSON().remediation, error.remediation);
});

test("an unknown tenant's error says how to create it (error.remediation)", async () => {
  const error = await server.client("no-such-tenant").crons.list().then(
    () => assert.fail("an unknown tenant answered"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof NimbusError);
  assert.equal(error.code, "session.tenant_not_found");
  assert.equal(error.remediation?.action, "fix_request");
  assert.match(error.remediation?.message ?? "", /POST \/api\/tenants \{"id": "no-such-tenant"\}/);
});

test("a wrong token is a NimbusUnauthorizedError; an unreachable server or a foreign answer a NimbusClientError", async () => {
  await assert.rejects(new Nimbus({ endpoint: server.endpoint, token: "nimbus_at_wrong" }).tenants.list(), (error: unknown) => {
    assert.ok(error instanceof NimbusUnauthorizedError);
    assert.equal(error.status, 401);
    assert.deepEqual(error.detail, { reason: "invalid_token" });
    assert.equal(error.remediation?.action, "reauthenticate");
    return true;
  });

  const port = await closedPort();
  await assert.rejects(new Nimbus({ endpoint: `http://127.0.0.1:${port}`, token: "t" }).tenants.list(), (error: unknown) => {
    assert.ok(error instanceof NimbusClientError);
    assert.equal(error.detail?.reason, "unreachable");
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    return true;
  });

  const foreign = (async () => new Response("<html>bad gateway</html>", { status: 502, headers: { "x-request-id": "req_x" } })) as typeof fetch;
  await assert.rejects(new Nimbus({ endpoint: server.endpoint, token: "t", fetch: foreign }).tenants.list(), (error: unknown) => {
    assert.ok(error instanceof NimbusClientError);
    assert.equal(error.detail?.reason, "unexpected_response");
    assert.equal(error.detail?.status, 502);
    return true;
  });
});

test("errorFromEnvelope builds the code's class; unknown codes stay NimbusError", () => {
  const conflict = errorFromEnvelope({ code: "op.conflict", message: "busy", retryable: true, detail: { reason: "transaction_conflict" } }, 409);
  assert.ok(conflict instanceof sdk.NimbusConflictError);
  assert.equal(conflict.retryable, true);
  const stale = errorFromEnvelope({ code: "op.precondition_failed", message: "stale" }, 412);
  assert.ok(stale instanceof sdk.NimbusPreconditionFailedError);
  assert.equal(stale.detail, null);
  assert.ok(errorFromEnvelope({ code: "rate.resource_exhausted", message: "full" }) instanceof NimbusRateLimitedError);
  const future = errorFromEnvelope({ code: "future.code", message: "new" });
  assert.equal(future.constructor, NimbusError);
  assert.equal(future.status, undefined);
  assert.equal(future.retryable, false);
});

test("the generated error classes match the server's GET /errors", async () => {
  const catalog = await server.client().system.errors();
  assert.equal(catalog.version, ERROR_CATALOG_VERSION);
  assert.deepEqual(Object.keys(ERROR_CATALOG).sort(), catalog.codes.map((c) => c.code).sort());
  const exported = sdk as unknown as Record<string, unknown>;
  for (const entry of catalog.codes) {
    const spec = ERROR_CATALOG[entry.code as ErrorCode];
    assert.deepEqual(
      { httpStatus: spec.httpStatus, severity: spec.severity, retryable: spec.retryable, action: spec.action, detail: spec.detail, meaning: spec.meaning, surface: spec.surface, reserved: spec.reserved },
      { httpStatus: entry.httpStatus, severity: entry.severity, retryable: entry.retryable, action: entry.remediation?.action ?? null, detail: entry.detail, meaning: entry.meaning, surface: entry.surface, reserved: entry.reserved },
      entry.code,
    );
    const Class = exported[spec.className];
    assert.equal(typeof Class, "function", `${spec.className} is exported`);
    const error = errorFromEnvelope({ code: entry.code, message: entry.meaning }, entry.httpStatus ?? undefined);
    assert.ok(error instanceof (Class as typeof NimbusError), `${entry.code} -> ${spec.className}`);
    assert.equal(error.code, entry.code);
    if (entry.code.startsWith("rate.")) assert.equal(spec.className, "NimbusRateLimitedError");
    else assert.equal(error.name, spec.className);
  }
  // The classes the SDK documents by name.
  assert.equal(ERROR_CATALOG["op.not_found"].className, "NimbusNotFoundError");
  assert.equal(ERROR_CATALOG["op.conflict"].className, "NimbusConflictError");
  assert.equal(ERROR_CATALOG["op.precondition_failed"].className, "NimbusPreconditionFailedError");
  assert.equal(ERROR_CATALOG["op.invalid_input"].className, NimbusInvalidInputError.name);
});

// ---------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------

test("transport: ndjson yields lines as they arrive, an early return aborts the request; bytes and rawBody", async () => {
  let streamClosed!: () => void;
  const closed = new Promise<void>((resolve) => (streamClosed = resolve));
  const uploads: Array<{ type: string | undefined; body: number[] }> = [];
  const local = createHttpServer((request, response) => {
    if (request.url === "/stream?follow=true") {
      response.writeHead(200, { "content-type": "application/x-ndjson" });
      // The second line is split across two writes; the response then stays open.
      response.write('{"n":1}\n{"n"');
      response.write(":2}\n");
      response.on("close", () => streamClosed());
      return;
    }
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      uploads.push({ type: request.headers["content-type"], body: [...Buffer.concat(chunks)] });
      response.writeHead(200, { "content-type": "application/octet-stream" });
      response.end(Buffer.from([0, 1, 2, 255]));
    });
  });
  await new Promise<void>((resolve) => local.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = local.address() as { port: number };
    const transport = new Transport({ endpoint: `http://127.0.0.1:${port}`, token: "t" });
    const seen: unknown[] = [];
    for await (const value of transport.ndjson("GET", "/stream", { query: { follow: true, tail: undefined } })) {
      seen.push(value);
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, [{ n: 1 }, { n: 2 }]);
    await closed;

    const bytes = await transport.bytes("PUT", "/upload", { rawBody: new Uint8Array([9, 8, 7]) });
    assert.deepEqual([...bytes], [0, 1, 2, 255]);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1, 2]));
        controller.enqueue(new Uint8Array([3]));
        controller.close();
      },
    });
    await transport.bytes("POST", "/import", { rawBody: stream, headers: { "Content-Type": "application/x-tar" } });
    assert.deepEqual(uploads, [
      { type: "application/octet-stream", body: [9, 8, 7] },
      { type: "application/x-tar", body: [1, 2, 3] },
    ]);
  } finally {
    local.closeAllConnections();
    await new Promise<void>((resolve) => local.close(() => resolve()));
  }
});

// ---------------------------------------------------------------------------------------------
// System
// ---------------------------------------------------------------------------------------------

test("system: health and capabilities", async () => {
  const nimbus = server.client();
  assert.deepEqual(await nimbus.system.health(), { ok: true });
  const capabilities = await nimbus.system.capabilities();
  assert.equal(typeof capabilities.version, "string");
  assert.ok(capabilities.capabilities.some((c) => c.area.toLowerCase().includes("storage") || c.area.toLowerCase().includes("data")));
  assert.equal(typeof capabilities.host, "object");
});

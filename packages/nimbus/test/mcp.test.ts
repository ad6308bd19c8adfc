// The MCP server (docs/mcp.md) driven by the official TypeScript client, `@modelcontextprotocol/sdk`,
// over both transports: streamable HTTP at `/mcp` on the server, and stdio through `nimbus mcp`
// (which finds the server and its token as the SDK does). Each transport initializes, lists the
// tools and resources, calls every tool, runs a sandbox round trip and shows a failing call's
// catalog code. Protocol version negotiation and the auth guard are checked on `/mcp` itself.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import { NIMBUS_BIN, REPO_ROOT, fileServer, freshTenant, type TestServer } from "./harness.js";
import { BUSYBOX_TAG, Cleanup, busyboxClient } from "./fixtures/busybox.js";

const cleanup = new Cleanup();
const server = fileServer({
  ready: async (s) => void (await busyboxClient(s)),
  beforeStop: () => cleanup.verify(),
});

type Transport = "http" | "stdio";

/** A connected MCP client over `transport`; `stdioArgs` are added to `nimbus mcp`. */
async function connect(transport: Transport, stdioArgs: string[] = []): Promise<Client> {
  const s = server();
  const client = new Client({ name: "nimbus-mcp-test", version: "1.0.0" });
  if (transport === "http") {
    await client.connect(
      new StreamableHTTPClientTransport(new URL("/mcp", s.endpoint), {
        requestInit: { headers: { Authorization: `Bearer ${s.token}` } },
      }),
    );
  } else {
    // The server's own HOME and XDG dirs: `nimbus mcp` finds its discovery file and token file.
    await client.connect(new StdioClientTransport({ command: NIMBUS_BIN, args: ["mcp", ...stdioArgs], env: s.env, stderr: "pipe" }));
  }
  return client;
}

/** Runs `body` with a client over `transport`, closed afterwards. */
async function withClient(transport: Transport, body: (client: Client) => Promise<void>, stdioArgs: string[] = []): Promise<void> {
  const client = await connect(transport, stdioArgs);
  try {
    await body(client);
  } finally {
    await client.close();
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** Calls a tool that must succeed; returns its structured content (checked against its text form). */
async function call(client: Client, name: string, args: Record<string, unknown>): Promise<Json> {
  const result = await client.callTool({ name, arguments: args });
  assert.notEqual(result.isError, true, `${name} failed: ${JSON.stringify(result.content)}`);
  const content = result.content as Array<{ type: string; text: string }>;
  assert.deepEqual(JSON.parse(content[0]!.text), result.structuredContent, `${name}: the text form is the structured content`);
  return result.structuredContent;
}

/** Calls a tool that must fail with `code`; returns the envelope's `error`. */
async function failure(client: Client, name: string, args: Record<string, unknown>, code: string): Promise<Json> {
  const result = await client.callTool({ name, arguments: args });
  assert.equal(result.isError, true, `${name} should fail: ${JSON.stringify(result)}`);
  assert.equal(result.structuredContent, undefined);
  const [summary, envelope] = result.content as Array<{ type: string; text: string }>;
  assert.match(summary!.text, new RegExp(`^error\\[${code.replace(".", "\\.")}\\]: `));
  const { error } = JSON.parse(envelope!.text);
  assert.equal(error.code, code);
  assert.ok(summary!.text.includes(error.message), "the summary carries the message");
  if (error.remediation !== undefined) {
    assert.ok(summary!.text.includes(`\nremediation (${error.remediation.action}): ${error.remediation.message}`), "and the remediation");
  }
  return error;
}

/** The tool names docs/mcp.md lists in its "## Tools" table. */
async function documentedTools(): Promise<string[]> {
  const page = await readFile(path.join(REPO_ROOT, "docs/mcp.md"), "utf8");
  const section = page.split("\n## Tools\n")[1]?.split("\n## ")[0] ?? "";
  return [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!).sort();
}

const READ_ONLY = new Set([
  "tenants_list", "documents_get", "documents_query", "schema_get", "functions_list", "jobs_get",
  "sandboxes_list", "sandboxes_get", "sandboxes_logs", "sandbox_files_read", "sandbox_files_list",
]);
const DESTRUCTIVE = new Set([
  "documents_patch", "documents_delete", "schema_put", "functions_call", "jobs_cancel", "sandboxes_stop",
  "sandboxes_delete", "sandbox_exec", "sandbox_files_write",
]);

/** The tools exercised by the tests below, to prove every listed tool is called. */
const called = { http: new Set<string>(), stdio: new Set<string>() };

function tracking(client: Client, transport: Transport): Client {
  const original = client.callTool.bind(client);
  client.callTool = ((params: { name: string }, ...rest: unknown[]) => {
    called[transport].add(params.name);
    return (original as (...args: unknown[]) => unknown)(params, ...rest);
  }) as typeof client.callTool;
  return client;
}

async function listing(transport: Transport): Promise<void> {
  await withClient(transport, async (client) => {
    assert.equal(client.getServerVersion()?.name, "nimbus");
    assert.ok(client.getServerCapabilities()?.tools);
    assert.ok(client.getServerCapabilities()?.resources);
    assert.match(client.getInstructions() ?? "", /nimbus:\/\/docs\/llms\.txt/);

    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    assert.deepEqual(names, await documentedTools(), "docs/mcp.md lists exactly the served tools");
    for (const tool of tools) {
      assert.equal(tool.inputSchema.type, "object", tool.name);
      assert.equal(tool.outputSchema?.type, "object", `${tool.name} has a structured output`);
      assert.ok((tool.description ?? "").length > 20, `${tool.name} is described`);
      assert.equal(tool.annotations?.readOnlyHint, READ_ONLY.has(tool.name), `${tool.name} readOnlyHint`);
      if (!READ_ONLY.has(tool.name)) {
        assert.equal(tool.annotations?.destructiveHint, DESTRUCTIVE.has(tool.name), `${tool.name} destructiveHint`);
      }
    }

    const { resources } = await client.listResources();
    const uris = resources.map((r) => r.uri);
    for (const uri of ["nimbus://docs/llms.txt", "nimbus://errors", "nimbus://capabilities", "nimbus://docs/sandboxes.md", "nimbus://docs/mcp.md"]) {
      assert.ok(uris.includes(uri), `${uri} is listed`);
    }
    const { resourceTemplates } = await client.listResourceTemplates();
    assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate), ["nimbus://docs/{page}.md"]);

    const text = async (uri: string, mimeType: string) => {
      const [contents] = (await client.readResource({ uri })).contents;
      assert.equal(contents?.mimeType, mimeType, uri);
      assert.ok(contents !== undefined && "text" in contents, `${uri} is text`);
      return contents.text;
    };
    assert.match(await text("nimbus://docs/llms.txt", "text/markdown"), /^# Nimbus/);
    assert.match(await text("nimbus://docs/sandboxes.md", "text/markdown"), /^# Sandboxes/);
    assert.ok((await text("nimbus://errors", "application/json")).includes("session.tenant_not_found"));
    const capabilities = JSON.parse(await text("nimbus://capabilities", "application/json"));
    assert.equal(typeof capabilities, "object");
    await assert.rejects(client.readResource({ uri: "nimbus://docs/no-such-page.md" }), /no-such-page|not found/i);
  });
}

async function dataTools(transport: Transport): Promise<void> {
  await withClient(transport, async (raw) => {
    const client = tracking(raw, transport);
    const tenant = `mcp-${transport}-${process.pid}`;
    assert.deepEqual(await call(client, "tenants_create", { id: tenant }), { id: tenant });
    assert.ok((await call(client, "tenants_list", {})).tenants.includes(tenant));

    const ids: string[] = [];
    for (const [title, priority, status] of [["a", 1, "open"], ["b", 3, "open"], ["c", 2, "done"]] as const) {
      ids.push((await call(client, "documents_insert", { tenant, table: "tasks", fields: { title, priority, status } })).id);
    }
    const first = await call(client, "documents_get", { tenant, table: "tasks", id: ids[0] });
    assert.equal(first.document.title, "a");
    assert.deepEqual(await call(client, "documents_patch", { tenant, table: "tasks", id: ids[0], patch: { priority: 5 } }), { id: ids[0] });
    assert.equal((await call(client, "documents_get", { tenant, table: "tasks", id: ids[0] })).document.priority, 5);

    const query = { tenant, table: "tasks", filters: [{ field: "status", op: "eq", value: "open" }], order: { field: "priority", direction: "desc" } };
    const page1 = await call(client, "documents_query", { ...query, limit: 1 });
    assert.deepEqual(page1.documents.map((d: Json) => d.title), ["a"]);
    assert.equal(page1.hasMore, true);
    const page2 = await call(client, "documents_query", { ...query, limit: 1, cursor: page1.nextCursor });
    assert.deepEqual(page2.documents.map((d: Json) => d.title), ["b"]);
    assert.equal(page2.hasMore, false);
    assert.equal(page2.nextCursor, null);

    assert.deepEqual(await call(client, "documents_delete", { tenant, table: "tasks", id: ids[2] }), { id: ids[2], removed: true });
    await failure(client, "documents_get", { tenant, table: "tasks", id: ids[2] }, "op.document_not_found");

    const schema = { fields: [{ name: "title", field_type: "string", required: true }], indexes: [{ name: "by_title", fields: ["title"] }] };
    const put = await call(client, "schema_put", { tenant, table: "tasks", schema });
    assert.deepEqual(put.tables.tasks.indexes, schema.indexes);
    assert.deepEqual(Object.keys((await call(client, "schema_get", { tenant })).tables), ["tasks"]);
    assert.equal((await call(client, "schema_get", { tenant, table: "tasks" })).tables.tasks.table, "tasks");
    await failure(client, "documents_insert", { tenant, table: "tasks", fields: { priority: 1 } }, "op.schema_validation");

    await server().client(tenant).functions.deploy({
      modules: {
        "greet.ts": `import { query } from "@nimbus/nimbus/server";\nexport const hello = query({ handler: (_ctx, args: { name: string }) => "hello " + args.name });\n`,
      },
    });
    const functions = await call(client, "functions_list", { tenant });
    assert.equal(functions.version, 1);
    assert.deepEqual(functions.functions.map((f: Json) => f.name), ["greet:hello"]);
    assert.deepEqual(await call(client, "functions_call", { tenant, name: "greet:hello", args: { name: "mcp" } }), { value: "hello mcp" });
    await failure(client, "functions_call", { tenant, name: "greet:missing" }, "function.not_found");

    const { jobId } = await call(client, "jobs_schedule", {
      tenant,
      runAfterMs: 3_600_000,
      target: { type: "insert", table: "later", fields: { x: 1 } },
    });
    assert.equal((await call(client, "jobs_get", { tenant, jobId })).job.state, "pending");
    assert.deepEqual(await call(client, "jobs_cancel", { tenant, jobId }), { id: jobId, removed: true });
    assert.equal((await call(client, "jobs_get", { tenant, jobId })).job.state, "cancelled");
  });
}

async function sandboxRoundTrip(transport: Transport): Promise<void> {
  const tenant = await freshTenant(server());
  const nimbus = server().client(tenant);
  await withClient(transport, async (raw) => {
    const client = tracking(raw, transport);
    const created = await call(client, "sandboxes_create", {
      tenant,
      image: BUSYBOX_TAG,
      command: ["sh", "-c", "echo started; exec sleep 300"],
      displayName: `mcp-${transport}`,
      labels: { suite: "mcp", transport },
      cpus: 1,
      memoryBytes: 64 * 1024 * 1024,
      pidsLimit: 64,
    });
    const id: string = cleanup.sandbox(nimbus, created.sandbox.metadata.id);
    assert.equal(created.sandbox.status.lifecycleState, "ready");
    assert.equal(created.sandbox.metadata.labels.transport, transport);
    assert.equal(created.sandbox.spec.sandbox.resources.memoryLimitBytes, 64 * 1024 * 1024);

    const listed = await call(client, "sandboxes_list", { tenant, labelKey: "transport", labelValue: transport });
    assert.deepEqual(listed.items.map((s: Json) => s.metadata.id), [id]);
    assert.equal((await call(client, "sandboxes_get", { tenant, id })).sandbox.metadata.id, id);

    const ran = await call(client, "sandbox_exec", { tenant, id, command: ["sh", "-c", "echo out; echo err >&2; exit 3"] });
    assert.deepEqual(
      { exitCode: ran.exitCode, stdout: ran.stdout, stderr: ran.stderr, truncated: ran.truncated, timedOut: ran.timedOut },
      { exitCode: 3, stdout: "out\n", stderr: "err\n", truncated: false, timedOut: false },
    );
    assert.equal((await call(client, "sandbox_exec", { tenant, id, command: ["cat"], stdin: "piped" })).stdout, "piped");
    // Long output is bounded. (Its `truncated` is not asserted here: a process this fast can
    // outrun the server's 64 KiB replay ring before `exec?wait=true` attaches, and the server's
    // own answer then says `truncated: false`; the file read below shows the flag.)
    const long = await call(client, "sandbox_exec", { tenant, id, command: ["sh", "-c", "yes | head -c 100000 >/tmp/big; cat /tmp/big"] });
    assert.equal(long.stdout.length, 64 * 1024);
    const head = await call(client, "sandbox_files_read", { tenant, id, path: "/tmp/big" });
    assert.deepEqual([head.bytes, head.truncated], [64 * 1024, true], "a long file is bounded and says so");
    const rest = await call(client, "sandbox_files_read", { tenant, id, path: "/tmp/big", offset: head.bytes });
    assert.deepEqual([rest.bytes, rest.truncated, rest.content], [100_000 - 64 * 1024, false, "y\n".repeat((100_000 - 64 * 1024) / 2)]);

    const written = await call(client, "sandbox_files_write", { tenant, id, path: "/tmp/mcp/notes.txt", content: "hello from mcp" });
    assert.equal(written.file.size, 14);
    const read = await call(client, "sandbox_files_read", { tenant, id, path: "/tmp/mcp/notes.txt" });
    assert.deepEqual(read, { path: "/tmp/mcp/notes.txt", content: "hello from mcp", encoding: "utf8", offset: 0, bytes: 14, truncated: false });
    const binary = Buffer.from([0, 255, 1, 2]).toString("base64");
    await call(client, "sandbox_files_write", { tenant, id, path: "/tmp/mcp/blob", content: binary, encoding: "base64" });
    const blob = await call(client, "sandbox_files_read", { tenant, id, path: "/tmp/mcp/blob", offset: 1 });
    assert.deepEqual([blob.encoding, blob.content, blob.offset], ["base64", Buffer.from([255, 1, 2]).toString("base64"), 1]);
    const listing = await call(client, "sandbox_files_list", { tenant, id, path: "/tmp/mcp" });
    assert.deepEqual(listing.entries.map((e: Json) => e.name).sort(), ["blob", "notes.txt"]);
    await failure(client, "sandbox_files_read", { tenant, id, path: "/proc/1/environ" }, "op.invalid_input");

    // Every session the tools opened was closed with their call.
    assert.deepEqual((await nimbus.sessions.list({ state: "open" })).items, []);

    const logs = await call(client, "sandboxes_logs", { tenant, id });
    assert.equal(logs.truncated, false);
    assert.deepEqual(logs.records.filter((r: Json) => r.kind === "stdout").map((r: Json) => r.data), ["started\n"]);

    const stopped = await call(client, "sandboxes_stop", { tenant, id, gracePeriodMs: 0 });
    assert.notEqual(stopped.sandbox.status.lifecycleState, "ready");
    await failure(client, "sandbox_exec", { tenant, id, command: ["true"] }, "op.conflict");
    assert.deepEqual(await call(client, "sandboxes_delete", { tenant, id }), { id, deleted: true });
    const gone = await failure(client, "sandboxes_get", { tenant, id }, "op.not_found");
    assert.equal(gone.detail.id, id);
  });
}

async function failingCall(transport: Transport): Promise<void> {
  await withClient(transport, async (raw) => {
    const client = tracking(raw, transport);
    const error = await failure(client, "documents_insert", { tenant: "no-such-tenant", table: "t", fields: {} }, "session.tenant_not_found");
    assert.deepEqual(error.detail, { tenantId: "no-such-tenant" });
    assert.match(error.remediation.message, /POST \/api\/tenants/);
    // Arguments that do not fit the tool's input are refused before any request, in the same form.
    const invalid = await failure(client, "documents_get", { tenant: "x" }, "op.invalid_input");
    assert.equal(invalid.detail.field, "arguments");
    assert.match(invalid.message, /missing field `table`/);
  });
}

async function everyToolCalled(transport: Transport): Promise<void> {
  await withClient(transport, async (client) => {
    const { tools } = await client.listTools();
    const missing = tools.map((t) => t.name).filter((name) => !called[transport].has(name));
    assert.deepEqual(missing, []);
  });
}

test("http: initialize, tools with schemas and annotations, resources", () => listing("http"));
test("stdio: initialize, tools with schemas and annotations, resources", () => listing("stdio"));
test("http: tenants, documents, queries, schemas, functions and jobs", () => dataTools("http"));
test("stdio: tenants, documents, queries, schemas, functions and jobs", () => dataTools("stdio"));
test("http: a sandbox round trip (create, exec, files, logs, stop, delete)", () => sandboxRoundTrip("http"));
test("stdio: a sandbox round trip (create, exec, files, logs, stop, delete)", () => sandboxRoundTrip("stdio"));
test("http: a failing call is a tool error with its catalog code and remediation", () => failingCall("http"));
test("stdio: a failing call is a tool error with its catalog code and remediation", () => failingCall("stdio"));
// Last of each transport: the tests above called every tool.
test("http: every tool is called", () => everyToolCalled("http"));
test("stdio: every tool is called", () => everyToolCalled("stdio"));

/** A raw JSON-RPC POST to `/mcp`; returns the status and the parsed body (if JSON). */
async function post(s: TestServer, message: object, headers: Record<string, string> = { Authorization: `Bearer ${s.token}` }) {
  const response = await fetch(new URL("/mcp", s.endpoint), {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(message),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}

function initialize(protocolVersion: string) {
  return { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion, capabilities: {}, clientInfo: { name: "raw", version: "1" } } };
}

test("http: protocol version negotiation answers a supported version", async () => {
  const older = await post(server(), initialize("2024-11-05"));
  assert.equal(older.status, 200);
  assert.equal(older.body.result.protocolVersion, "2024-11-05", "a supported older version is kept");
  const unknown = await post(server(), initialize("1999-01-01"));
  assert.equal(unknown.status, 200);
  const offered: string = unknown.body.result.protocolVersion;
  assert.notEqual(offered, "1999-01-01");
  assert.match(offered, /^\d{4}-\d{2}-\d{2}$/, "an unknown version gets one the server supports");
});

test("http: /mcp needs the admin token and applies the origin policy", async () => {
  const s = server();
  const anonymous = await post(s, initialize("2025-06-18"), {});
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.body.error.code, "auth.unauthorized");
  const foreign = await post(s, initialize("2025-06-18"), { Authorization: `Bearer ${s.token}`, Origin: "https://evil.example" });
  assert.equal(foreign.status, 403);
  assert.equal(foreign.body.error.code, "auth.forbidden");
});

test("stdio: --endpoint and --token are used instead of discovery", async () => {
  const s = server();
  await withClient("stdio", async (client) => {
    assert.ok((await call(client, "tenants_list", {})).tenants.length > 0);
  }, ["--endpoint", s.endpoint, "--token", s.token]);
  await withClient("stdio", async (client) => {
    await failure(client, "tenants_list", {}, "auth.unauthorized");
  }, ["--endpoint", s.endpoint, "--token", "wrong-token"]);
  // Nothing listens on loopback port 1: the call fails, saying how to reach a server.
  await withClient("stdio", async (client) => {
    const error = await failure(client, "tenants_list", {}, "service.unavailable");
    assert.match(error.remediation.message, /nimbus start.*--endpoint/);
  }, ["--endpoint", "http://127.0.0.1:1", "--token", s.token]);
});

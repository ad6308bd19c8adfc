// Functions against a real server: deploy (the TypeScript fixture modules under
// test/fixtures/functions, with interfaces, generics and a schema), list, dry runs, failed
// deploys, calls of every kind and their typed errors, live function subscriptions (updates,
// resubscription after a restart, the end on `function_removed`), and Convex's own
// `ConvexHttpClient` pointed at the deployment URL `{origin}/convex/{tenant}`.

import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";

import { ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { ConvexError } from "convex/values";

import {
  NimbusForbiddenError,
  NimbusFunctionDeployFailedError,
  NimbusFunctionInvalidArgsError,
  NimbusFunctionNotFoundError,
  NimbusFunctionThrownError,
  NimbusInvalidInputError,
  NimbusSubscriptionError,
  type Doc,
  type FunctionInfo,
  type Nimbus,
} from "../src/index.js";
import { REPO_ROOT, eventually, fileServer, freshTenant, startServer } from "./harness.js";

const FIXTURE_DIR = path.join(REPO_ROOT, "packages/nimbus/test/fixtures/functions");

/** The fixture modules as `deploy` takes them: relative `/`-separated path → source. */
async function fixtureModules(only?: string[]): Promise<Record<string, string>> {
  const modules: Record<string, string> = {};
  async function walk(dir: string, prefix: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory()) await walk(path.join(dir, entry.name), rel);
      else if (entry.name.endsWith(".ts")) modules[rel] = await readFile(path.join(dir, entry.name), "utf8");
    }
  }
  await walk(FIXTURE_DIR, "");
  if (only === undefined) return modules;
  return Object.fromEntries(Object.entries(modules).filter(([file]) => only.includes(file)));
}

const fn = (name: string, kind: FunctionInfo["kind"], visibility: FunctionInfo["visibility"] = "public"): FunctionInfo => ({ name, kind, visibility });

/** What deploying every fixture module defines, sorted by name. */
const FIXTURE_FUNCTIONS: FunctionInfo[] = [
  fn("messages:byAuthor", "query"),
  fn("messages:count", "query"),
  fn("messages:crash", "query"),
  fn("messages:deliver", "mutation", "internal"),
  fn("messages:digest", "action"),
  fn("messages:edit", "mutation"),
  fn("messages:fail", "mutation"),
  fn("messages:get", "query"),
  fn("messages:list", "query"),
  fn("messages:page", "query"),
  fn("messages:previews", "query"),
  fn("messages:remove", "mutation"),
  fn("messages:send", "mutation"),
  fn("messages:summary", "query"),
  fn("messages:urgent", "query"),
  fn("messages:whoami", "query"),
  fn("stats:latest", "query"),
  fn("stats:record", "mutation", "internal"),
  fn("stats:total", "query", "internal"),
].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/** What `paginatedQuery` handlers return (`.paginate(opts)`). */
type Page<T> = { page: T[]; isDone: boolean; continueCursor: string };

type Message = { channel: string; body: string; status: string; author?: string; priority?: number; tags?: string[] };

/** The next result of a subscription's iterator that satisfies `predicate`. */
async function nextMatching<T>(iterator: AsyncIterator<T>, predicate: (value: T) => boolean): Promise<T> {
  for (;;) {
    const { value, done } = await iterator.next();
    if (done) throw new Error("the subscription ended before the expected result");
    if (predicate(value)) return value;
  }
}

/** A tenant with the fixture modules deployed. */
async function deployedTenant(nimbus: Nimbus): Promise<string> {
  const { id } = await nimbus.tenants.create({ id: `fx-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}` });
  await nimbus.functions.deploy({ tenantId: id, modules: await fixtureModules() });
  return id;
}

let tenant: string;
const server = fileServer({ ready: async (s) => void (tenant = await freshTenant(s)) });

test("functions.list before the first deploy: version 0, no functions", async () => {
  const nimbus = server().client(await freshTenant(server()));
  assert.deepEqual(await nimbus.functions.list(), { version: 0, deployedAt: null, functions: [] });
});

test("functions.deploy with dryRun reports the would-be set without activating it", async () => {
  const nimbus = server().client(tenant);
  const result = await nimbus.functions.deploy({ modules: await fixtureModules(), dryRun: true });
  assert.equal(result.version, 1);
  assert.deepEqual(result.functions, FIXTURE_FUNCTIONS);
  assert.deepEqual(result.warnings, []);
  assert.deepEqual(await nimbus.functions.list(), { version: 0, deployedAt: null, functions: [] });
  await assert.rejects(nimbus.functions.call({ name: "messages:list", args: { channel: "general" } }), NimbusFunctionNotFoundError);
});

test("functions.deploy activates TypeScript modules (interfaces, generics, relative imports, schema.ts)", async () => {
  const nimbus = server().client(tenant);
  const result = await nimbus.functions.deploy({ modules: await fixtureModules() });
  assert.equal(result.version, 1);
  assert.match(result.deployedAt ?? "", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
  assert.deepEqual(result.functions, FIXTURE_FUNCTIONS);
  assert.deepEqual(result.warnings, []);
  assert.deepEqual(await nimbus.functions.list(), { version: 1, deployedAt: result.deployedAt, functions: FIXTURE_FUNCTIONS });

  // schema.ts put the tables' schemas and indexes.
  const messages = await nimbus.schemas.get({ table: "messages" });
  assert.deepEqual(
    messages.indexes.map((index) => [index.name, index.fields]),
    [
      ["by_channel", ["channel"]],
      ["by_channel_priority", ["channel", "priority"]],
    ],
  );
  assert.deepEqual(
    Object.fromEntries(messages.fields.map((field) => [field.name, [field.field_type, field.required]])),
    { channel: ["string", true], body: ["string", true], author: ["string", false], status: ["string", true], priority: ["number", false], tags: ["array", false] },
  );
});

test("a deploy that fails changes nothing and names the file", async () => {
  const nimbus = server().client(tenant);
  const before = await nimbus.functions.list();
  const modules = { ...(await fixtureModules()), "broken.ts": 'import { query } from "@nimbus/nimbus/server";\nexport const x = query({ handler: ( => 1 });\n' };
  await assert.rejects(nimbus.functions.deploy({ modules }), (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionDeployFailedError, `got ${String(error)}`);
    assert.equal(error.status, 400);
    const errors = error.detail.errors as Array<{ file: string; line: number; column: number; message: string }>;
    assert.ok(errors.length >= 1);
    assert.equal(errors[0]!.file, "broken.ts");
    assert.equal(errors[0]!.line, 2);
    return true;
  });
  await assert.rejects(nimbus.functions.deploy({ modules: { "net.ts": 'import x from "node:fs";\nexport default x;\n' } }), NimbusFunctionDeployFailedError);
  assert.deepEqual(await nimbus.functions.list(), before);
});

test("functions.call runs queries, mutations and actions", async () => {
  const nimbus = server().client(tenant);
  const id = await nimbus.functions.call<string>({ name: "messages:send", args: { channel: "general", body: "hello world", author: "ada", priority: 5 } });
  assert.equal(typeof id, "string");
  await nimbus.functions.call({ name: "messages:send", args: { channel: "general", body: "second", author: "bob", priority: 1, tags: ["x"] } });

  const list = await nimbus.functions.call<Doc<Message>[]>({ name: "messages:list", args: { channel: "general" } });
  assert.deepEqual(list.map((doc) => doc.body), ["second", "hello world"]);
  assert.equal(list[1]!._id, id);
  assert.equal(typeof list[1]!._creationTime, "number");
  assert.equal((await nimbus.functions.call<Doc<Message>[]>({ name: "messages:list", args: { channel: "general", limit: 1 } })).length, 1);
  assert.equal(await nimbus.functions.call<number>({ name: "messages:count", args: { channel: "general" } }), 2);
  assert.deepEqual(
    (await nimbus.functions.call<Doc<Message>[]>({ name: "messages:urgent", args: { channel: "general", above: 3 } })).map((doc) => doc._id),
    [id],
  );
  assert.deepEqual(
    (await nimbus.functions.call<Doc<Message>[]>({ name: "messages:byAuthor", args: { author: "bob" } })).map((doc) => doc.body),
    ["second"],
  );
  assert.equal((await nimbus.functions.call<Doc<Message> | null>({ name: "messages:get", args: { id } }))?.body, "hello world");
  const summary = await nimbus.functions.call<{ count: number; first: { text: string } | null }>({ name: "messages:summary", args: { channel: "general" } });
  assert.equal(summary.count, 2);
  assert.equal(summary.first?.text, "hello world");
  assert.deepEqual(await nimbus.functions.call({ name: "messages:whoami" }), { identity: null });

  // The mutation's `ctx.scheduler.runAfter(0, "messages:deliver", …)` job ran after it committed.
  await eventually("messages:deliver to run", async () => {
    const doc = await nimbus.documents.get<Message>({ table: "messages", id });
    return doc.status === "delivered" ? true : undefined;
  });

  const page = await nimbus.functions.call<Page<Doc<Message>>>({
    name: "messages:page",
    args: { channel: "general", paginationOpts: { numItems: 1, cursor: null } },
  });
  assert.equal(page.page.length, 1);
  assert.equal(page.isDone, false);
  const rest = await nimbus.functions.call<Page<Doc<Message>>>({
    name: "messages:page",
    args: { channel: "general", paginationOpts: { numItems: 10, cursor: page.continueCursor } },
  });
  assert.equal(rest.page.length, 1);
  assert.equal(rest.isDone, true);

  assert.equal(await nimbus.functions.call({ name: "messages:edit", args: { id, body: "edited" } }), "edited");
  const edited = await nimbus.documents.get<Message>({ table: "messages", id });
  assert.equal(edited.body, "edited");
  assert.equal(edited.author, "ada");

  // An action: ctx.runQuery + ctx.runMutation (an internal one) + scheduler.runAt/cancel.
  const digest = await nimbus.functions.call<{ count: number; statId: string }>({ name: "messages:digest", args: {} });
  assert.equal(digest.count, 2);
  assert.equal(typeof digest.statId, "string");
  assert.equal(await nimbus.functions.call({ name: "stats:latest" }), 2);

  assert.equal(await nimbus.functions.call({ name: "messages:remove", args: { id } }), null);
  assert.equal(await nimbus.functions.call<number>({ name: "messages:count", args: { channel: "general" } }), 1);
});

test("an internal function called from outside → NimbusForbiddenError (auth.forbidden)", async () => {
  const nimbus = server().client(tenant);
  for (const name of ["messages:deliver", "stats:total"]) {
    await assert.rejects(nimbus.functions.call({ name, args: {} }), (error: unknown) => {
      assert.ok(error instanceof NimbusForbiddenError, `got ${String(error)}`);
      assert.equal(error.code, "auth.forbidden");
      assert.equal(error.status, 403);
      assert.deepEqual(error.detail, { name, visibility: "internal" });
      return true;
    });
  }
});

test("arguments the validator rejects → NimbusFunctionInvalidArgsError with the path", async () => {
  const nimbus = server().client(tenant);
  await assert.rejects(nimbus.functions.call({ name: "messages:list", args: { channel: 5 } }), (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionInvalidArgsError, `got ${String(error)}`);
    assert.equal(error.code, "function.invalid_args");
    assert.equal(error.status, 400);
    assert.equal(error.detail.name, "messages:list");
    assert.equal(error.detail.path, "args.channel");
    assert.equal(typeof error.detail.reason, "string");
    return true;
  });
  await assert.rejects(nimbus.functions.call({ name: "messages:list", args: { channel: "g", limit: "ten" } }), (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionInvalidArgsError);
    assert.equal(error.detail.path, "args.limit");
    return true;
  });
  // Unknown keys are rejected; so is a missing required one.
  await assert.rejects(nimbus.functions.call({ name: "messages:list", args: { channel: "g", extra: true } }), NimbusFunctionInvalidArgsError);
  await assert.rejects(nimbus.functions.call({ name: "messages:list", args: {} }), NimbusFunctionInvalidArgsError);
});

test("an unknown function → NimbusFunctionNotFoundError", async () => {
  await assert.rejects(server().client(tenant).functions.call({ name: "messages:nope" }), (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionNotFoundError, `got ${String(error)}`);
    assert.equal(error.status, 404);
    assert.deepEqual(error.detail, { name: "messages:nope" });
    return true;
  });
});

test("a thrown ConvexError's data reaches the caller as detail.data (function.thrown)", async () => {
  const nimbus = server().client(tenant);
  await assert.rejects(nimbus.functions.call({ name: "messages:fail", args: { reason: "slow down" } }), (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionThrownError, `got ${String(error)}`);
    assert.equal(error.code, "function.thrown");
    assert.equal(error.detail.name, "messages:fail");
    assert.equal(error.detail.errorName, "ConvexError");
    assert.deepEqual(error.detail.data, { code: "rate_limited", reason: "slow down", retryAfterMs: 1000 });
    return true;
  });
  await assert.rejects(nimbus.functions.call({ name: "messages:crash" }), (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionThrownError, `got ${String(error)}`);
    assert.equal(error.detail.errorName, "Error");
    assert.match(error.detail.message, /boom/);
    assert.equal(error.detail.data, undefined);
    return true;
  });
  // The mutation threw after nothing was written; a ConvexError thrown before an insert leaves no document.
  await assert.rejects(nimbus.functions.call({ name: "messages:send", args: { channel: "empty", body: "  " } }), (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionThrownError);
    assert.deepEqual(error.detail.data, { code: "empty_body", channel: "empty" });
    return true;
  });
  assert.equal(await nimbus.functions.call({ name: "messages:count", args: { channel: "empty" } }), 0);
});

test("a function subscription yields the query's value again after a mutation changes its data", async () => {
  const nimbus = server().client(tenant);
  const values: unknown[] = [];
  const sub = nimbus.subscribe<Doc<Message>[]>({ function: { name: "messages:list", args: { channel: "live" } } }, (value) => values.push(value));
  const results = sub[Symbol.asyncIterator]();
  assert.deepEqual((await results.next()).value, []);

  await nimbus.functions.call({ name: "messages:send", args: { channel: "live", body: "first" } });
  let result = await nextMatching(results, (docs) => docs.length === 1);
  assert.equal(result[0]!.body, "first");

  // A scalar-valued function subscription works the same (`data` need not be an array).
  const count = nimbus.subscribe<number>({ function: { name: "messages:count", args: { channel: "live" } } });
  const counts = count[Symbol.asyncIterator]();
  assert.equal((await counts.next()).value, 1);

  await nimbus.functions.call({ name: "messages:send", args: { channel: "live", body: "second" } });
  result = await nextMatching(results, (docs) => docs.length === 2);
  assert.deepEqual(result.map((doc) => doc.body), ["second", "first"]);
  assert.equal(await nextMatching(counts, (n) => n === 2), 2);
  assert.deepEqual(sub.latest, result);
  assert.ok(values.length >= 3);

  sub.close();
  count.close();
  await sub.done;
  await count.done;
});

test("subscribing to a mutation, an internal or an unknown function ends the subscription with the server's error", async () => {
  const nimbus = server().client(tenant);
  await assert.rejects(nimbus.subscribe({ function: { name: "messages:send", args: { channel: "x", body: "y" } } }).done, NimbusInvalidInputError);
  await assert.rejects(nimbus.subscribe({ function: { name: "stats:total" } }).done, NimbusForbiddenError);
  await assert.rejects(nimbus.subscribe({ function: { name: "messages:nope" } }).done, (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionNotFoundError);
    assert.deepEqual(error.detail, { name: "messages:nope" });
    return true;
  });
  await assert.rejects(nimbus.subscribe({ function: { name: "messages:list", args: { channel: 1 } } }).done, NimbusFunctionInvalidArgsError);
});

test("a redeploy that removes a subscribed function ends it with function_removed; warnings name orphaned jobs", async () => {
  const admin = server().client();
  const tenantId = await deployedTenant(admin);
  const nimbus = server().client(tenantId);
  const errors: unknown[] = [];
  const sub = nimbus.subscribe<Doc<Message>[]>({ function: { name: "messages:list", args: { channel: "general" } }, onError: (error) => errors.push(error) });
  const results = sub[Symbol.asyncIterator]();
  assert.deepEqual((await results.next()).value, []);

  // A pending job whose function the redeploy removes.
  const { id } = await nimbus.documents.insert({ table: "messages", fields: { channel: "other", body: "b", status: "new" } });
  await nimbus.schedule.create({ runAfterMs: 3_600_000, mutation: { type: "function", name: "messages:deliver", args: { id } } });

  const result = await nimbus.functions.deploy({ modules: await fixtureModules(["stats.ts", "schema.ts"]) });
  assert.equal(result.version, 2);
  assert.deepEqual(result.functions.map((f) => f.name), ["stats:latest", "stats:record", "stats:total"]);
  assert.deepEqual(result.warnings, [{ kind: "scheduled_function_missing", name: "messages:deliver", count: 1 }]);

  await assert.rejects(results.next(), (error: unknown) => {
    assert.ok(error instanceof NimbusSubscriptionError, `got ${String(error)}`);
    assert.equal(error.code, "session.subscription_error");
    assert.equal(error.detail.reason, "function_removed");
    assert.equal(error.detail.dropped, true);
    return true;
  });
  await assert.rejects(sub.done, NimbusSubscriptionError);
  assert.equal(sub.closed, true);
  assert.ok(errors.at(-1) instanceof NimbusSubscriptionError);
  await assert.rejects(nimbus.functions.call({ name: "messages:list", args: { channel: "general" } }), NimbusFunctionNotFoundError);
});

test("a function subscription resubscribes after the server restarts", async () => {
  const restartable = await startServer();
  try {
    const tenantId = await deployedTenant(restartable.client());
    const nimbus = restartable.client(tenantId);
    const sub = nimbus.subscribe<Doc<Message>[]>({ function: { name: "messages:list", args: { channel: "r" } } });
    const results = sub[Symbol.asyncIterator]();
    assert.deepEqual((await results.next()).value, []);
    assert.equal(sub.reconnects, 0);

    await restartable.restart();
    // The function set survives the restart; the call's commit reaches the resubscribed function.
    await nimbus.functions.call({ name: "messages:send", args: { channel: "r", body: "after restart" } });
    const result = await nextMatching(results, (docs) => docs.length === 1);
    assert.equal(result[0]!.body, "after restart");
    assert.ok(sub.reconnects >= 1, "the result came over a new socket");
    assert.equal((await nimbus.functions.list()).version, 1);
    sub.close();
    await sub.done;
  } finally {
    await restartable.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// Convex's ConvexHttpClient against {origin}/convex/{tenant} (functions contract §10)
// ---------------------------------------------------------------------------------------------

function convexClient(tenantId: string, token: string = server().token): ConvexHttpClient {
  const client = new ConvexHttpClient(`${server().endpoint}/convex/${tenantId}`, { skipConvexDeploymentUrlCheck: true, logger: false });
  client.setAuth(token);
  return client;
}

const api = {
  list: makeFunctionReference<"query", { channel: string; limit?: number }, Doc<Message>[]>("messages:list"),
  count: makeFunctionReference<"query", { channel: string }, number>("messages:count"),
  crash: makeFunctionReference<"query", Record<string, never>, never>("messages:crash"),
  send: makeFunctionReference<"mutation", { channel: string; body: string; author?: string }, string>("messages:send"),
  fail: makeFunctionReference<"mutation", { reason: string }, never>("messages:fail"),
  digest: makeFunctionReference<"action", { channel?: string }, { count: number; statId: string }>("messages:digest"),
  deliver: makeFunctionReference<"mutation", { id: string }, null>("messages:deliver"),
};

test("ConvexHttpClient calls queries, mutations and actions through /convex/{tenant}/api/*", async () => {
  const tenantId = await deployedTenant(server().client());
  const client = convexClient(tenantId);
  assert.deepEqual(await client.query(api.list, { channel: "cx" }), []);

  const id = await client.mutation(api.send, { channel: "cx", body: "from convex", author: "grace" });
  assert.equal(typeof id, "string");
  const docs = await client.query(api.list, { channel: "cx", limit: 10 });
  assert.equal(docs.length, 1);
  assert.equal(docs[0]!._id, id);
  assert.equal(docs[0]!.body, "from convex");
  assert.equal(await client.query(api.count, { channel: "cx" }), 1);

  const digest = await client.action(api.digest, { channel: "cx" });
  assert.equal(digest.count, 1);
  assert.equal(typeof digest.statId, "string");

  // What the client wrote is what the native API reads (the scheduled `deliver` may have
  // changed its status meanwhile, so only the written fields are compared).
  const native = await server().client(tenantId).functions.call<Doc<Message>[]>({ name: "messages:list", args: { channel: "cx" } });
  const written = (d: Doc<Message>) => [d._id, d._creationTime, d.body, d.author];
  assert.deepEqual(native.map(written), docs.map(written));
});

test("ConvexHttpClient: a thrown ConvexError arrives as ConvexError.data; other failures as Error", async () => {
  const tenantId = await deployedTenant(server().client());
  const client = convexClient(tenantId);
  await assert.rejects(client.mutation(api.fail, { reason: "too fast" }), (error: unknown) => {
    assert.ok(error instanceof ConvexError, `got ${String(error)}`);
    assert.deepEqual(error.data, { code: "rate_limited", reason: "too fast", retryAfterMs: 1000 });
    return true;
  });
  await assert.rejects(client.mutation(api.send, { channel: "cx", body: " " }), (error: unknown) => {
    assert.ok(error instanceof ConvexError);
    assert.deepEqual(error.data, { code: "empty_body", channel: "cx" });
    return true;
  });
  await assert.rejects(client.query(api.crash, {}), (error: unknown) => {
    assert.ok(error instanceof Error && !(error instanceof ConvexError), `got ${String(error)}`);
    assert.match(error.message, /boom/);
    return true;
  });
  // Internal functions are not callable from clients.
  await assert.rejects(client.mutation(api.deliver, { id: "0".repeat(26) }), (error: unknown) => error instanceof Error && !(error instanceof ConvexError));
  // A wrong token is refused before any function runs (a non-560 answer: the client throws its body).
  await assert.rejects(convexClient(tenantId, "not-the-token").query(api.count, { channel: "cx" }), (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.match(error.message, /auth\.unauthorized/);
    return true;
  });
});

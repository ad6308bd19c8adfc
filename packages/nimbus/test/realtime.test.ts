// Live subscriptions against a real server: results, callbacks, close, errors that end a
// subscription, and reconnection after the server restarts on the same port.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";

import {
  NimbusClientError,
  NimbusError,
  NimbusInvalidInputError,
  NimbusSubscriptionError,
  NimbusTenantNotFoundError,
  type Doc,
  type Subscription,
} from "../src/index.js";
import { fileServer, freshTenant, startServer } from "./harness.js";

const server = fileServer();

/** The next result of a subscription's iterator that satisfies `predicate`. */
async function nextMatching<T>(iterator: AsyncIterator<T>, predicate: (value: T) => boolean): Promise<T> {
  for (;;) {
    const { value, done } = await iterator.next();
    if (done) throw new Error("the subscription ended before the expected result");
    if (predicate(value)) return value;
  }
}

test("a query subscription yields the complete result on every matching change", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const sub = nimbus.subscribe<{ title: string; status: string }>({
    query: { table: "tasks", filters: [{ field: "status", op: "eq", value: "open" }], order: { field: "title", direction: "asc" } },
  });
  const results = sub[Symbol.asyncIterator]();
  assert.deepEqual((await results.next()).value, []);

  const a = await nimbus.documents.insert({ table: "tasks", fields: { title: "a", status: "open" } });
  let result = await nextMatching(results, (docs) => docs.length === 1);
  assert.equal(result[0]!._id, a.id);

  // Outside the filters: no result for it; the next one carries both open tasks in order.
  await nimbus.documents.insert({ table: "tasks", fields: { title: "x", status: "done" } });
  const b = await nimbus.documents.insert({ table: "tasks", fields: { title: "b", status: "open" } });
  result = await nextMatching(results, (docs) => docs.length === 2);
  assert.deepEqual(result.map((d) => d.title), ["a", "b"]);
  assert.ok(result.every((d) => d.status === "open"));

  await nimbus.documents.patch({ table: "tasks", id: b.id, patch: { status: "done" } });
  result = await nextMatching(results, (docs) => docs.length === 1);
  assert.equal(result[0]!._id, a.id);
  assert.deepEqual(sub.latest, result);

  sub.close();
  assert.equal(sub.closed, true);
  assert.deepEqual(await results.next(), { value: undefined, done: true });
  await sub.done;
});

test("the callback form receives every result; breaking out of a loop closes the subscription", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const seen: Doc[][] = [];
  let notify: () => void = () => undefined;
  const sub = nimbus.subscribe({ query: { table: "events" } }, (docs) => {
    seen.push(docs);
    notify();
  });
  const waitFor = (count: number): Promise<void> =>
    new Promise((resolve) => {
      notify = () => {
        if (seen.length >= count) resolve();
      };
      notify();
    });
  await waitFor(1);
  assert.deepEqual(seen[0], []);
  await nimbus.documents.insert({ table: "events", fields: { n: 1 } });
  await waitFor(2);
  assert.equal(seen[1]!.length, 1);

  for await (const docs of sub) {
    assert.equal(docs.length, 1);
    break;
  }
  assert.equal(sub.closed, true);
  await sub.done;
});

test("two subscriptions of one tenant are independent; closing one keeps the other", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const red = nimbus.subscribe({ query: { table: "items", filters: [{ field: "color", op: "eq", value: "red" }] } });
  const all = nimbus.subscribe({ query: { table: "items" } });
  const redResults = red[Symbol.asyncIterator]();
  const allResults = all[Symbol.asyncIterator]();
  assert.deepEqual((await redResults.next()).value, []);
  assert.deepEqual((await allResults.next()).value, []);
  red.close();
  await nimbus.documents.insert({ table: "items", fields: { color: "red" } });
  assert.equal((await nextMatching(allResults, (docs) => docs.length === 1)).length, 1);
  assert.deepEqual(await redResults.next(), { value: undefined, done: true });
  all.close();
});

test("a bad query ends the subscription with the server's op.error", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const errors: unknown[] = [];
  const sub = nimbus.subscribe({
    query: { table: "tasks", filters: [{ field: "a..b", op: "eq", value: 1 }] },
    onError: (error) => errors.push(error),
  });
  await assert.rejects(
    (async () => {
      for await (const _ of sub) assert.fail("a bad query produced a result");
    })(),
    (error: unknown) => {
      assert.ok(error instanceof NimbusInvalidInputError);
      assert.equal(error.status, undefined);
      assert.equal(error.detail.field, "query.filters[0].field");
      return true;
    },
  );
  await assert.rejects(sub.done, NimbusInvalidInputError);
  assert.equal(errors.length, 1);
  assert.equal(sub.closed, true);
});

test("subscribing to a missing tenant fails with the refused upgrade's error", async () => {
  const sub = server().client("no-such-tenant").subscribe({ query: { table: "tasks" } });
  await assert.rejects(sub.done, (error: unknown) => {
    assert.ok(error instanceof NimbusTenantNotFoundError);
    assert.equal(error.status, 404);
    assert.deepEqual(error.detail, { tenantId: "no-such-tenant" });
    return true;
  });
});

test("a subscription without a tenant throws before connecting", () => {
  const nimbus = server().client();
  assert.throws(() => nimbus.subscribe({ query: { table: "tasks" } }), NimbusClientError);
  assert.throws(() => nimbus.subscribe({ tenantId: " ", query: { table: "tasks" } }), NimbusClientError);
});

test("deleting the tenant ends its subscriptions with session.tenant_not_found", async () => {
  const tenant = await freshTenant(server());
  const nimbus = server().client(tenant);
  const sub = nimbus.subscribe({ query: { table: "tasks" } });
  const results = sub[Symbol.asyncIterator]();
  assert.deepEqual((await results.next()).value, []);
  await nimbus.tenants.delete({ id: tenant });
  await assert.rejects(results.next(), (error: unknown) => {
    assert.ok(error instanceof NimbusTenantNotFoundError);
    assert.equal(error.severity, "error");
    return true;
  });
  assert.equal(sub.closed, true);
});

test("a result over the server's limit surfaces session.subscription_error and ends the subscription", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const errors: NimbusError[] = [];
  const sub = nimbus.subscribe({ query: { table: "blobs" }, onError: (error) => errors.push(error as NimbusError) });
  const results = sub[Symbol.asyncIterator]();
  assert.deepEqual((await results.next()).value, []);
  // 18 documents of ~1,000,000 bytes: the whole result exceeds the 16 MiB result limit.
  const blob = "x".repeat(999_000);
  for (let i = 0; i < 18; i++) await nimbus.documents.insert({ table: "blobs", fields: { i, blob } });
  const failure = await (async () => {
    try {
      for (;;) {
        const { done } = await results.next();
        if (done) return undefined;
      }
    } catch (error) {
      return error;
    }
  })();
  assert.ok(failure instanceof NimbusSubscriptionError, `expected a NimbusSubscriptionError, got ${String(failure)}`);
  assert.equal(failure.code, "session.subscription_error");
  assert.equal(failure.detail.dropped, true);
  assert.equal(failure.detail.reason, "result_too_large");
  assert.deepEqual(errors, [failure]);
});

test("a subscription reconnects and resubscribes after the server restarts", async () => {
  const restartable = await startServer();
  try {
    const tenant = await freshTenant(restartable);
    const nimbus = restartable.client(tenant);
    const sub: Subscription<Doc[]> = nimbus.subscribe({ query: { table: "tasks" } });
    const results = sub[Symbol.asyncIterator]();
    const before = await nimbus.documents.insert({ table: "tasks", fields: { title: "before" } });
    await nextMatching(results, (docs) => docs.some((d) => d._id === before.id));
    assert.equal(sub.reconnects, 0);

    await restartable.restart();
    const afterRestart = await nimbus.documents.insert({ table: "tasks", fields: { title: "after" } });
    const result = await nextMatching(results, (docs) => docs.some((d) => d._id === afterRestart.id));
    assert.deepEqual(result.map((d) => d.title), ["before", "after"]);
    assert.ok(sub.reconnects >= 1, "the result came over a new socket");
    assert.equal(sub.closed, false);
    sub.close();
    await sub.done;
  } finally {
    await restartable.stop();
  }
});

/** Run by a child `node --experimental-websocket`, which has a global (undici) WebSocket. */
const GLOBAL_WEBSOCKET_CHILD = `
const { Nimbus } = await import(process.env.SDK_URL);
const nimbus = new Nimbus({ tenantId: process.env.NIMBUS_TENANT });
const report = { global: typeof globalThis.WebSocket === "function" };
const sub = nimbus.subscribe({ query: { table: "g" } });
const results = sub[Symbol.asyncIterator]();
report.first = (await results.next()).value.length;
await nimbus.documents.insert({ table: "g", fields: {} });
report.second = (await results.next()).value.length;
sub.close();
const refused = nimbus.subscribe({ tenantId: "no-such-tenant", query: { table: "g" } });
await refused.done.catch((error) => { report.refused = error.constructor.name; report.refusedStatus = error.status; });
console.log(JSON.stringify(report));
`;

test("with a global WebSocket (node --experimental-websocket) the SDK uses it, authenticated", async () => {
  const tenant = await freshTenant(server());
  const sdkUrl = new URL("../src/index.js", import.meta.url).href;
  const child = spawn(process.execPath, ["--experimental-websocket", "--no-warnings", "--input-type=module", "-e", GLOBAL_WEBSOCKET_CHILD], {
    env: { ...process.env, SDK_URL: sdkUrl, NIMBUS_ENDPOINT: server().endpoint, NIMBUS_TOKEN: server().token, NIMBUS_TENANT: tenant },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  assert.equal(code, 0, output);
  const report = JSON.parse(output) as Record<string, unknown>;
  assert.deepEqual(report, { global: true, first: 0, second: 1, refused: "NimbusTenantNotFoundError", refusedStatus: 404 });
});

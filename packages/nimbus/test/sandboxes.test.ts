// `nimbus.sandboxes` against the real server running real containers (docs/sandboxes.md):
// lifecycle and exit codes, logs (plain, tail, follow), waits, listing, stop and delete.

import assert from "node:assert/strict";
import { test } from "node:test";

import { NimbusClientError, NimbusError, NimbusNotFoundError, type Nimbus } from "../src/index.js";
import type { Sandbox, StreamFrame } from "../src/compute-types.js";
import { fileServer, freshTenant } from "./harness.js";
import {
  BUSYBOX_REFERENCE,
  Cleanup,
  assertNothingLeft,
  busyboxSpec,
  outputOf,
  readUntil,
  busyboxClient,
} from "./fixtures/busybox.js";

let nimbus: Nimbus;
const cleanup = new Cleanup();
const server = fileServer({
  ready: async (s) => void (nimbus = await busyboxClient(s)),
  beforeStop: () => cleanup.verify(),
});

async function create(
  argv: string[],
  options: { labels?: Record<string, string>; displayName?: string; client?: Nimbus } = {},
): Promise<Sandbox> {
  const client = options.client ?? nimbus;
  const sandbox = await client.sandboxes.create({
    profile: "worker",
    spec: busyboxSpec(argv, { displayName: options.displayName }),
    labels: options.labels,
  });
  cleanup.sandbox(client, sandbox.metadata.id);
  return sandbox;
}

async function allLogs(id: string, options: { tail?: number } = {}): Promise<StreamFrame[]> {
  const frames: StreamFrame[] = [];
  for await (const frame of nimbus.sandboxes.logs({ id, ...options })) frames.push(frame);
  return frames;
}

test("a sandbox runs its command, ends with its exit code and keeps its logs", async () => {
  const created = await create(["sh", "-c", "echo hello; echo oops >&2; exit 3"], {
    labels: { purpose: "exit" },
    displayName: "Exit Task",
  });
  const id = created.metadata.id;
  assert.match(id, /^exit-task-[0-9a-z]{26}$/);
  assert.equal(created.metadata.labels.purpose, "exit");
  assert.deepEqual(created.spec.sandbox.process.argv, { redacted: true, valueCount: 3 });
  assert.equal(created.status.image?.reference, BUSYBOX_REFERENCE);
  assert.match(created.status.image?.digest ?? "", /^sha256:[0-9a-f]{64}$/);

  const ended = await nimbus.sandboxes.wait({ id, until: "stopped", timeoutMs: 60_000 });
  assert.equal(ended.status.lifecycleState, "failed");
  assert.equal(ended.status.exitCode, 3);
  assert.equal(ended.status.terminationReason, "exited");
  assert.equal(typeof ended.status.retainedUntil, "string");

  const logs = await allLogs(id);
  assert.equal(outputOf(logs, "stdout"), "hello\n");
  assert.equal(outputOf(logs, "stderr"), "oops\n");
  assert.deepEqual(logs.at(-1), { kind: "exit", code: 3, terminationReason: "exited" });
  assert.deepEqual(await allLogs(id, { tail: 0 }), [{ kind: "exit", code: 3, terminationReason: "exited" }]);

  const read = await nimbus.sandboxes.get({ id });
  assert.equal(read.metadata.id, id);
  assert.equal(read.status.finishedAt, ended.status.finishedAt);
});

test("a clean exit is stopped with code 0, and waiting for ready on it is unsatisfiable", async () => {
  const { metadata } = await create(["echo", "done"]);
  const ended = await nimbus.sandboxes.wait({ id: metadata.id, until: "stopped", timeoutMs: 60_000 });
  assert.equal(ended.status.lifecycleState, "stopped");
  assert.equal(ended.status.exitCode, 0);
  assert.equal(outputOf(await allLogs(metadata.id), "stdout"), "done\n");
  await assert.rejects(nimbus.sandboxes.wait({ id: metadata.id, until: "ready" }), (error: unknown) => {
    assert.ok(error instanceof NimbusError);
    assert.equal(error.code, "op.wait_unsatisfiable");
    assert.equal(error.status, 409);
    return true;
  });
});

test("a command missing from the image gives a failed sandbox with start_failed", async () => {
  const created = await create(["/bin/no-such-command"]);
  const ended = await nimbus.sandboxes.wait({ id: created.metadata.id, until: "stopped" });
  assert.equal(ended.status.lifecycleState, "failed");
  assert.equal(ended.status.terminationReason, "start_failed");
  assert.equal(typeof ended.status.message, "string");
});

test("logs follow live output until the exit", async () => {
  // The second line is printed only once the test has seen the first one and created /tmp/go.
  const argv = ["sh", "-c", "echo first; while [ ! -f /tmp/go ]; do sleep 0.05; done; echo second"];
  const { metadata } = await create(argv);
  const id = metadata.id;
  await nimbus.sandboxes.wait({ id, until: "ready" });
  const frames = nimbus.sandboxes.logs({ id, follow: true })[Symbol.asyncIterator]();
  const seen: StreamFrame[] = [];
  for (;;) {
    const { value, done } = await frames.next();
    assert.ok(!done, "the follow stream ended before the first line");
    seen.push(value);
    if (outputOf(seen, "stdout") === "first\n") break;
  }
  const session = await nimbus.sessions.open({ target: { sandbox: { id } }, channels: ["files"] });
  await nimbus.sessions.files.write({ id: session.metadata.id, path: "/tmp/go", data: "" });
  for (;;) {
    const { value, done } = await frames.next();
    if (done) break;
    seen.push(value);
  }
  assert.equal(outputOf(seen, "stdout"), "first\nsecond\n");
  assert.deepEqual(seen.at(-1), { kind: "exit", code: 0, terminationReason: "exited" });
});

test("leaving a follow loop early ends the request", async () => {
  const { metadata } = await create(["sh", "-c", "echo tick; exec sleep 300"]);
  let read = 0;
  for await (const frame of nimbus.sandboxes.logs({ id: metadata.id, follow: true })) {
    read += 1;
    if (frame.kind === "stdout") break;
  }
  assert.equal(read, 1);
  const stopped = await nimbus.sandboxes.stop({ id: metadata.id });
  assert.equal(stopped.status.lifecycleState, "stopped");
});

test("list filters by label and status and paginates", async () => {
  const tenant = await freshTenant(server());
  const client = server().client(tenant);
  const a = await create(["sleep", "300"], { labels: { purpose: "a" }, client });
  const b = await create(["sleep", "300"], { labels: { purpose: "b" }, client });
  const c = await create(["true"], { labels: { other: "x" }, client });
  await client.sandboxes.wait({ id: c.metadata.id, until: "stopped" });

  const byValue = await client.sandboxes.list({ labelKey: "purpose", labelValue: "a" });
  assert.deepEqual(byValue.items.map((s) => s.metadata.id), [a.metadata.id]);
  const byKey = await client.sandboxes.list({ labelKey: "purpose" });
  assert.deepEqual(byKey.items.map((s) => s.metadata.id).sort(), [a.metadata.id, b.metadata.id].sort());
  const ready = await client.sandboxes.list({ status: "ready" });
  assert.deepEqual(ready.items.map((s) => s.metadata.id).sort(), [a.metadata.id, b.metadata.id].sort());
  const stopped = await client.sandboxes.list({ status: "stopped" });
  assert.deepEqual(stopped.items.map((s) => s.metadata.id), [c.metadata.id]);

  const first = await client.sandboxes.list({ limit: 2 });
  assert.equal(first.items.length, 2);
  assert.equal(first.metadata.remainingCount, 1);
  assert.ok(first.metadata.nextPageToken);
  const second = await client.sandboxes.list({ limit: 2, pageToken: first.metadata.nextPageToken });
  assert.equal(second.items.length, 1);
  assert.equal(second.metadata.nextPageToken, undefined);
  const all = [...first.items, ...second.items].map((s) => s.metadata.id);
  assert.deepEqual(all, [a, b, c].map((s) => s.metadata.id).sort());

  // Another tenant sees none of them, even by id.
  assert.equal((await nimbus.sandboxes.list({ labelKey: "other" })).items.length, 0);
  await assert.rejects(nimbus.sandboxes.get({ id: a.metadata.id }), NimbusNotFoundError);
});

test("stop ends a running sleep; wait for ready holds and a short wait times out", async () => {
  const { metadata } = await create(["sleep", "300"]);
  const ready = await nimbus.sandboxes.wait({ id: metadata.id, until: "ready" });
  assert.equal(ready.status.lifecycleState, "ready");
  await assert.rejects(nimbus.sandboxes.wait({ id: metadata.id, until: "stopped", timeoutMs: 100 }), (error: unknown) => {
    assert.ok(error instanceof NimbusError);
    assert.equal(error.code, "op.wait_timeout");
    return true;
  });
  const stopped = await nimbus.sandboxes.stop({ id: metadata.id });
  assert.equal(stopped.status.lifecycleState, "stopped");
  assert.equal(stopped.status.terminationReason, "stopped_by_request");
  const again = await nimbus.sandboxes.stop({ id: metadata.id });
  assert.equal(again.metadata.resourceVersion, stopped.metadata.resourceVersion);
});

test("delete removes a running sandbox with everything it held; it is then not found", async () => {
  const { metadata } = await create(["sleep", "300"]);
  const id = metadata.id;
  await nimbus.sandboxes.delete({ id });
  assertNothingLeft(id);
  await assert.rejects(nimbus.sandboxes.get({ id }), (error: unknown) => {
    assert.ok(error instanceof NimbusNotFoundError);
    assert.equal(error.code, "op.not_found");
    assert.equal(error.status, 404);
    return true;
  });
  await assert.rejects(nimbus.sandboxes.delete({ id }), NimbusNotFoundError);
});

test("calls without a tenant or with an empty id throw before sending", async () => {
  const untenanted = server().client();
  await assert.rejects(untenanted.sandboxes.list(), NimbusClientError);
  await assert.rejects(untenanted.sandboxes.create({ profile: "worker", spec: busyboxSpec(["true"]) }), NimbusClientError);
  await assert.rejects(nimbus.sandboxes.get({ id: "  " }), NimbusClientError);
  await assert.rejects(untenanted.sandboxes.logs({ id: "x" }).next(), NimbusClientError);
});

test("fetchPort reaches a server inside the sandbox: its answers pass through, Nimbus's refusals throw", async () => {
  const script = "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 127.0.0.1:8000 -h /www";
  const { id } = (await create(["sh", "-c", script])).metadata;
  // The server may take a moment to listen: until then the route refuses, retryably.
  let page: Response | undefined;
  for (let attempt = 0; attempt < 500 && page === undefined; attempt++) {
    try {
      page = await nimbus.sandboxes.fetchPort({ id, port: 8000, path: "index.html" });
    } catch (error) {
      if (!(error instanceof NimbusError && error.code === "sandbox.port_unreachable")) throw error;
    }
  }
  assert.ok(page, "the sandbox's httpd never answered");
  assert.equal(page.status, 200);
  assert.equal(await page.text(), "hi\n");
  const missing = await nimbus.sandboxes.fetchPort({ id, port: 8000, path: "/nope" });
  assert.equal(missing.status, 404, "the sandbox's own 404 is returned, not thrown");
  await missing.body?.cancel();
  await assert.rejects(
    nimbus.sandboxes.fetchPort({ id, port: 8001 }),
    (error) => error instanceof NimbusError && error.code === "sandbox.port_unreachable",
  );
  await assert.rejects(nimbus.sandboxes.portUrl({ id, port: 0 }), NimbusClientError);
  const url = await nimbus.sandboxes.portUrl({ id, port: 8000, path: "index.html" });
  assert.match(url, new RegExp(`^http://[^/]+/api/tenants/[^/]+/sandboxes/${id}/ports/8000/index\\.html$`));
  await nimbus.sandboxes.delete({ id });
});

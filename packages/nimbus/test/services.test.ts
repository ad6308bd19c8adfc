// `nimbus.services` against the real server (docs/services.md): generation-checked definitions,
// the lifecycle verbs with `waitUntil`, the runtime view and the client-side wait, forced deletes.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  NimbusClientError,
  NimbusConflictError,
  NimbusError,
  NimbusNotFoundError,
  NimbusPreconditionFailedError,
  type Nimbus,
} from "../src/index.js";
import type { ServiceBackendSpec } from "../src/compute-types.js";
import { fileServer, freshTenant } from "./harness.js";
import { BUSYBOX_TAG, Cleanup, busyboxClient } from "./fixtures/busybox.js";

let nimbus: Nimbus;
const cleanup = new Cleanup();
const server = fileServer({
  ready: async (s) => void (nimbus = await busyboxClient(s)),
  beforeStop: () => cleanup.verify(),
});

/** An HTTP server on :8080 inside the sandbox, ready once it answers `GET /`. */
function web(page = "hello"): ServiceBackendSpec {
  return {
    kind: "sandbox",
    sandbox: {
      owner: { kind: "service" },
      root: { kind: "oci_image", source: { kind: "reference", reference: BUSYBOX_TAG } },
      process: {
        argv: ["sh", "-c", `mkdir -p /tmp/www && echo ${page} > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www`],
      },
      resources: { memoryLimitBytes: 64 * 1024 * 1024, pidsLimit: 64 },
    },
    readiness: { kind: "http", port: 8080, path: "/", intervalMs: 100 },
    restartPolicy: "on_failure",
    maxRestarts: 2,
  };
}

test("definitions are created, read, listed and updated against their generation", async () => {
  const client = server().client(await freshTenant(server()));
  const created = await client.services.create({ name: "web", backend: web(), labels: { tier: "dev" } });
  cleanup.service(client, "web");
  assert.equal(created.metadata.name, "web");
  assert.equal(created.metadata.generation, 1);
  assert.equal(created.metadata.source, "dynamic");
  assert.deepEqual(created.metadata.labels, { tier: "dev" });
  assert.equal(created.spec.backend.kind, "sandbox");
  assert.deepEqual((created.spec.backend.sandbox as { process: { argv: unknown } }).process.argv, {
    redacted: true,
    valueCount: 3,
  });

  await assert.rejects(client.services.create({ name: "web", backend: web() }), (error: unknown) => {
    assert.ok(error instanceof NimbusError);
    assert.equal(error.code, "op.already_exists");
    return true;
  });

  const runtime = await client.services.get({ name: "web" });
  assert.equal(runtime.name, "web");
  assert.equal(runtime.state, "stopped");
  assert.equal(runtime.definitionGeneration, null, "no run yet");
  assert.equal(runtime.sandboxId, undefined);

  await assert.rejects(
    client.services.update({ name: "web", backend: web("v2"), ifMatchGeneration: 2 }),
    (error: unknown) => {
      assert.ok(error instanceof NimbusPreconditionFailedError);
      assert.equal(error.code, "op.precondition_failed");
      assert.equal(error.status, 412);
      assert.equal(error.detail?.expectedGeneration, 2);
      assert.equal(error.detail?.currentGeneration, 1);
      return true;
    },
  );
  const updated = await client.services.update({ name: "web", backend: web("v2"), ifMatchGeneration: 1 });
  assert.equal(updated.metadata.generation, 2);
  assert.deepEqual(updated.metadata.labels, {}, "labels are replaced wholesale");
  const definition = await client.services.definition({ name: "web" });
  assert.equal(definition.metadata.generation, 2);
  assert.equal(definition.metadata.resourceVersion, updated.metadata.resourceVersion);

  await client.services.create({ name: "api", backend: { kind: "builtIn", provider: "browser" } });
  cleanup.service(client, "api");
  const listed = await client.services.list();
  assert.deepEqual(listed.items.map((d) => d.metadata.name), ["api", "web"]);
  const first = await client.services.list({ limit: 1 });
  assert.deepEqual(first.items.map((d) => d.metadata.name), ["api"]);
  assert.equal(first.metadata.nextPageToken, "api");
  const second = await client.services.list({ limit: 1, pageToken: first.metadata.nextPageToken });
  assert.deepEqual(second.items.map((d) => d.metadata.name), ["web"]);

  await client.services.delete({ name: "api", ifMatchGeneration: 1 });
  await assert.rejects(client.services.definition({ name: "api" }), NimbusNotFoundError);
});

test("a service starts until ready, restarts on a fresh sandbox, stops, and is force-deleted", async () => {
  await nimbus.services.create({ name: "web", backend: web() });
  cleanup.service(nimbus, "web");

  const started = await nimbus.services.start({ name: "web", waitUntil: "ready" });
  assert.equal(started.state, "ready");
  assert.equal(started.readiness, "ready");
  assert.equal(started.health, "healthy");
  assert.equal(started.definitionGeneration, 1);
  assert.equal(started.restartCount, 0);
  const first = started.sandboxId;
  assert.ok(first);
  const sandbox = await nimbus.sandboxes.get({ id: first });
  assert.equal(sandbox.status.lifecycleState, "ready");
  assert.deepEqual(sandbox.spec.sandbox.owner, { kind: "service", serviceName: "web" });
  // The page is served from inside the sandbox (it has no network).
  const session = await nimbus.sessions.open({ target: { service: { name: "web" } }, channels: ["exec"] });
  const fetched = await nimbus.sessions.run({
    id: session.metadata.id,
    argv: ["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8080"],
  });
  assert.match(fetched.stdout, /hello/);

  // A service sandbox is the service's to stop.
  await assert.rejects(nimbus.sandboxes.stop({ id: first }), (error: unknown) => {
    assert.ok(error instanceof NimbusConflictError);
    assert.equal(error.detail?.reason, "owned_by_service");
    return true;
  });
  // A running service's definition cannot change.
  await assert.rejects(nimbus.services.update({ name: "web", backend: web(), ifMatchGeneration: 1 }), (error: unknown) => {
    assert.ok(error instanceof NimbusConflictError);
    assert.equal(error.detail?.reason, "service_active");
    return true;
  });

  const healthy = await nimbus.services.wait({ name: "web", until: "healthy" });
  assert.equal(healthy.health, "healthy");
  await assert.rejects(
    nimbus.services.wait({ name: "web", until: "stopped", timeoutMs: 300, intervalMs: 50 }),
    (error: unknown) => {
      assert.ok(error instanceof NimbusClientError);
      assert.match(error.message, /service `web`/);
      assert.match(error.message, /stopped/);
      assert.match(error.message, /last observed state: ready/);
      assert.equal(error.detail?.until, "stopped");
      return true;
    },
  );

  const restarted = await nimbus.services.restart({ name: "web", waitUntil: "ready" });
  assert.equal(restarted.state, "ready");
  assert.ok(restarted.sandboxId);
  assert.notEqual(restarted.sandboxId, first, "every restart is a fresh sandbox");
  const closed = await nimbus.sessions.get({ id: session.metadata.id });
  assert.equal(closed.status.lifecycleState, "closed");
  assert.equal(closed.status.closeReason, "target_stopped");

  const stopped = await nimbus.services.stop({ name: "web", waitUntil: "stopped" });
  assert.equal(stopped.state, "stopped");
  assert.equal(stopped.lastTermination?.sandboxId, restarted.sandboxId);
  assert.equal(stopped.lastTermination?.terminationReason, "stopped_by_request");

  // Running again, a delete needs the current generation and `force`.
  const again = await nimbus.services.start({ name: "web" });
  assert.ok(again.state === "starting" || again.state === "ready", again.state);
  const running = again.sandboxId;
  assert.ok(running);
  await assert.rejects(nimbus.services.delete({ name: "web", ifMatchGeneration: 7, force: true }), NimbusPreconditionFailedError);
  await assert.rejects(nimbus.services.delete({ name: "web", ifMatchGeneration: 1 }), (error: unknown) => {
    assert.ok(error instanceof NimbusConflictError);
    assert.equal(error.detail?.reason, "service_active");
    return true;
  });
  await nimbus.services.delete({ name: "web", ifMatchGeneration: 1, force: true });
  await assert.rejects(nimbus.services.get({ name: "web" }), (error: unknown) => {
    assert.ok(error instanceof NimbusNotFoundError);
    assert.equal(error.detail?.resource, "service");
    return true;
  });
  // Its sandbox was stopped with it.
  try {
    const left = await nimbus.sandboxes.get({ id: running });
    assert.ok(["stopped", "failed"].includes(left.status.lifecycleState), left.status.lifecycleState);
  } catch (error) {
    assert.ok(error instanceof NimbusNotFoundError);
  }
});

test("a start that cannot become ready fails the wait with the observed state", async () => {
  const backend = web();
  assert.equal(backend.kind, "sandbox");
  backend.sandbox.process = { argv: ["sh", "-c", "exit 7"] };
  backend.restartPolicy = "never";
  delete backend.maxRestarts;
  await nimbus.services.create({ name: "broken", backend });
  cleanup.service(nimbus, "broken");
  await assert.rejects(nimbus.services.start({ name: "broken", waitUntil: "ready" }), (error: unknown) => {
    assert.ok(error instanceof NimbusClientError);
    assert.match(error.message, /service `broken` cannot become ready/);
    assert.match(error.message, /failed/);
    return true;
  });
  const view = await nimbus.services.get({ name: "broken" });
  assert.equal(view.state, "failed");
  assert.equal(view.lastTermination?.exitCode, 7);
});

test("service calls without a tenant or name throw before sending", async () => {
  const untenanted = server().client();
  await assert.rejects(untenanted.services.list(), NimbusClientError);
  await assert.rejects(nimbus.services.get({ name: "" }), NimbusClientError);
});

// `nimbus.functions` calls the functions contract's routes; this server build has none, so each
// call surfaces the server's own answer (404 `service.route_not_found`, whose detail names the
// method and path the SDK used) as a typed NimbusError. Function subscriptions are answered
// with `function.not_found`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Nimbus, NimbusError, NimbusFunctionNotFoundError, NimbusRouteNotFoundError } from "../src/index.js";
import { fileServer, freshTenant } from "./harness.js";

let tenant: string;
const server = fileServer({ ready: async (s) => void (tenant = await freshTenant(s)) });

/** A client of the test server that records every URL it fetches. */
function recordingClient(urls: string[]): Nimbus {
  return new Nimbus({
    endpoint: server().endpoint,
    token: server().token,
    tenantId: tenant,
    fetch: (input, init) => {
      urls.push(String(input));
      return fetch(input, init);
    },
  });
}

function routeNotFound(method: string, path: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof NimbusRouteNotFoundError, `expected NimbusRouteNotFoundError, got ${String(error)}`);
    assert.ok(error instanceof NimbusError);
    assert.equal(error.code, "service.route_not_found");
    assert.equal(error.status, 404);
    assert.equal(error.retryable, false);
    assert.match(error.requestId ?? "", /^req_/);
    assert.deepEqual(error.detail, { method, path });
    return true;
  };
}

test("functions.deploy sends PUT /api/tenants/{t}/functions and surfaces the server's error", async () => {
  const urls: string[] = [];
  const nimbus = recordingClient(urls);
  const modules = { "messages.ts": "export const list = 1;" };
  await assert.rejects(nimbus.functions.deploy({ modules }), routeNotFound("PUT", `/api/tenants/${tenant}/functions`));
  await assert.rejects(nimbus.functions.deploy({ modules, dryRun: true }), routeNotFound("PUT", `/api/tenants/${tenant}/functions`));
  assert.deepEqual(urls, [`${server().endpoint}/api/tenants/${tenant}/functions`, `${server().endpoint}/api/tenants/${tenant}/functions?dryRun=true`]);
});

test("functions.list sends GET /api/tenants/{t}/functions", async () => {
  const nimbus = server().client(tenant);
  await assert.rejects(nimbus.functions.list(), routeNotFound("GET", `/api/tenants/${tenant}/functions`));
  const other = await freshTenant(server());
  await assert.rejects(nimbus.functions.list({ tenantId: other }), routeNotFound("GET", `/api/tenants/${other}/functions`));
});

test("functions.call sends POST /api/tenants/{t}/functions/call", async () => {
  const nimbus = server().client(tenant);
  await assert.rejects(nimbus.functions.call({ name: "messages:list", args: { channel: "general" } }), routeNotFound("POST", `/api/tenants/${tenant}/functions/call`));
});

test("a function subscription ends with function.not_found", async () => {
  const sub = server().client(tenant).subscribe({ function: { name: "messages:list", args: {} } });
  await assert.rejects(sub.done, (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionNotFoundError);
    assert.equal(error.code, "function.not_found");
    assert.deepEqual(error.detail, { name: "messages:list" });
    return true;
  });
});

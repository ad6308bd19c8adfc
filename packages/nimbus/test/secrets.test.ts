// `nimbus.secrets` against the real server (docs/networking.md, "Tenant secrets"): put creates
// and replaces, list shows names and times only, delete, the typed errors, the default tenant,
// and deletion with the tenant.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  NimbusCapExceededError,
  NimbusClientError,
  NimbusInvalidInputError,
  NimbusNotFoundError,
  NimbusTenantNotFoundError,
  type Secret,
} from "../src/index.js";
import { fileServer, freshTenant } from "./harness.js";

const server = fileServer();

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function assertSecret(secret: Secret, name: string): void {
  assert.deepEqual(Object.keys(secret).sort(), ["createdAt", "name", "updatedAt"]);
  assert.equal(secret.name, name);
  assert.match(secret.createdAt, TIMESTAMP);
  assert.match(secret.updatedAt, TIMESTAMP);
}

test("secrets: put creates and replaces, list shows no value, delete removes", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const value = "ghp_sdk-secret-value-5e7b";

  const created = await nimbus.secrets.put({ name: "github", value });
  assertSecret(created, "github");
  assert.equal(created.createdAt, created.updatedAt);
  const replaced = await nimbus.secrets.put({ name: "github", value: `${value}-2` });
  assertSecret(replaced, "github");
  assert.equal(replaced.createdAt, created.createdAt, "a replacement keeps the creation time");
  assert.ok(replaced.updatedAt >= created.updatedAt);
  await nimbus.secrets.put({ name: "Api.KEY_2-b", value: "x" });

  const listed = await nimbus.secrets.list();
  assert.deepEqual(listed.map((s) => s.name), ["Api.KEY_2-b", "github"]);
  assert.deepEqual(listed[1], replaced);
  assert.ok(!JSON.stringify([created, replaced, listed]).includes(value), "a value came back");

  await nimbus.secrets.delete({ name: "github" });
  assert.deepEqual((await nimbus.secrets.list()).map((s) => s.name), ["Api.KEY_2-b"]);
  await assert.rejects(nimbus.secrets.delete({ name: "github" }), (error: unknown) => {
    assert.ok(error instanceof NimbusNotFoundError);
    assert.equal(error.status, 404);
    assert.equal(error.detail?.resource, "secret");
    return true;
  });
});

test("secrets: bad names and values are refused naming the field; the cap is typed", async () => {
  const tenantId = await freshTenant(server());
  const nimbus = server().client();
  for (const [name, value, field] of [
    ["_hidden", "v", "name"],
    ["a:b", "v", "name"],
    ["n".repeat(65), "v", "name"],
    ["ok", "", "value"],
    ["ok", "line\nbreak", "value"],
    ["ok", "v".repeat(8193), "value"],
  ] as const) {
    await assert.rejects(nimbus.secrets.put({ tenantId, name, value }), (error: unknown) => {
      assert.ok(error instanceof NimbusInvalidInputError, `${name}: ${String(error)}`);
      assert.equal(error.detail?.field, field);
      return true;
    });
  }
  assert.deepEqual(await nimbus.secrets.list({ tenantId }), []);

  for (let i = 0; i < 100; i++) await nimbus.secrets.put({ tenantId, name: `s${i}`, value: "v" });
  await assert.rejects(nimbus.secrets.put({ tenantId, name: "one-more", value: "v" }), NimbusCapExceededError);
  assert.equal((await nimbus.secrets.list({ tenantId })).length, 100);
});

test("secrets: a tenant is required and must exist; its secrets go with it", async () => {
  const untenanted = server().client();
  await assert.rejects(untenanted.secrets.list(), NimbusClientError);
  await assert.rejects(untenanted.secrets.put({ name: "a", value: "v" }), NimbusClientError);
  await assert.rejects(untenanted.secrets.list({ tenantId: "no-such-tenant" }), NimbusTenantNotFoundError);

  const tenantId = await freshTenant(server());
  const nimbus = server().client(tenantId);
  await nimbus.secrets.put({ name: "token", value: "v" });
  await nimbus.tenants.delete({ id: tenantId });
  await assert.rejects(nimbus.secrets.list(), NimbusTenantNotFoundError);
  await nimbus.tenants.create({ id: tenantId });
  assert.deepEqual(await nimbus.secrets.list(), [], "a new tenant of the same id has no secrets");
});

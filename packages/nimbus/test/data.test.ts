// Tenants, documents, queries, pagination, schemas and the journal against a real server.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  NimbusAlreadyExistsError,
  NimbusDocumentNotFoundError,
  NimbusError,
  NimbusInvalidInputError,
  NimbusSchemaNotFoundError,
  NimbusSchemaValidationError,
  NimbusTenantNotFoundError,
  type Nimbus,
} from "../src/index.js";
import { fileServer, freshTenant } from "./harness.js";

const server = fileServer();

test("tenants: create, list, delete; duplicates and unknown tenants are typed errors", async () => {
  const nimbus = server().client();
  const id = `tenant-${Date.now().toString(36)}`;
  assert.deepEqual(await nimbus.tenants.create({ id }), { id });
  assert.ok((await nimbus.tenants.list()).includes(id));

  const duplicate = await nimbus.tenants.create({ id }).then(
    () => assert.fail("a duplicate tenant was created"),
    (error: unknown) => error,
  );
  assert.ok(duplicate instanceof NimbusAlreadyExistsError);
  assert.equal(duplicate.code, "op.already_exists");
  assert.equal(duplicate.status, 409);
  assert.deepEqual(duplicate.detail, { resource: "tenant", id });

  await nimbus.tenants.delete({ id });
  assert.ok(!(await nimbus.tenants.list()).includes(id));
  await assert.rejects(nimbus.tenants.delete({ id }), (error: unknown) => {
    assert.ok(error instanceof NimbusTenantNotFoundError);
    assert.equal(error.status, 404);
    assert.deepEqual(error.detail, { tenantId: id });
    return true;
  });
});

test("documents: insert, get, patch, list with cursors, delete", async () => {
  const tenant = await freshTenant(server());
  const nimbus = server().client(tenant);

  const { id } = await nimbus.documents.insert({ table: "tasks", fields: { title: "write spec", priority: 2, owner: { team: "infra" } } });
  assert.match(id, /^[0-9a-z]{26}$/);
  const doc = await nimbus.documents.get<{ title: string; priority: number }>({ table: "tasks", id });
  assert.equal(doc._id, id);
  assert.equal(doc.title, "write spec");
  assert.equal(doc.priority, 2);
  assert.equal(doc._creationTime, doc._updateTime);

  assert.deepEqual(await nimbus.documents.patch({ table: "tasks", id, patch: { priority: 3, done: null } }), { id });
  const patched = await nimbus.documents.get({ table: "tasks", id });
  assert.equal(patched.priority, 3);
  assert.equal(patched.done, null);
  assert.deepEqual(patched.owner, { team: "infra" });
  assert.ok(patched._updateTime >= doc._updateTime);

  const more = [];
  for (let i = 0; i < 3; i++) more.push((await nimbus.documents.insert({ table: "tasks", fields: { title: `t${i}` } })).id);
  const all = await nimbus.documents.list({ table: "tasks" });
  assert.deepEqual(all.data.map((d) => d._id), [id, ...more]);
  assert.equal(all.has_more, false);
  assert.equal(all.next_cursor, null);

  const first = await nimbus.documents.list({ table: "tasks", limit: 3 });
  assert.equal(first.data.length, 3);
  assert.equal(first.has_more, true);
  assert.equal(typeof first.next_cursor, "string");
  const second = await nimbus.documents.list({ table: "tasks", limit: 3, cursor: first.next_cursor! });
  assert.deepEqual(second.data.map((d) => d._id), [more[2]]);
  assert.equal(second.has_more, false);

  await nimbus.documents.delete({ table: "tasks", id });
  await assert.rejects(nimbus.documents.get({ table: "tasks", id }), (error: unknown) => {
    assert.ok(error instanceof NimbusDocumentNotFoundError);
    assert.equal(error.status, 404);
    assert.deepEqual(error.detail, { table: "tasks", documentId: id });
    assert.match(error.requestId ?? "", /^req_[0-9a-z]{26}$/);
    return true;
  });
  await assert.rejects(nimbus.documents.delete({ table: "tasks", id }), NimbusDocumentNotFoundError);
});

test("a call's tenantId overrides the client's default", async () => {
  const a = await freshTenant(server());
  const b = await freshTenant(server());
  const nimbus = server().client(a);
  const { id } = await nimbus.documents.insert({ tenantId: b, table: "notes", fields: { n: 1 } });
  assert.equal((await nimbus.documents.get({ tenantId: b, table: "notes", id })).n, 1);
  await assert.rejects(nimbus.documents.get({ table: "notes", id }), NimbusDocumentNotFoundError);
  assert.equal((await nimbus.documents.list({ table: "notes" })).data.length, 0);
});

test("validation errors carry the server's field path", async () => {
  const nimbus = server().client(await freshTenant(server()));
  await assert.rejects(nimbus.documents.insert({ table: "tasks", fields: { _secret: 1 } }), (error: unknown) => {
    assert.ok(error instanceof NimbusInvalidInputError);
    assert.equal(error.status, 400);
    assert.equal(error.detail.field, "fields._secret");
    assert.equal(error.retryable, false);
    assert.equal(error.remediation?.action, "fix_request");
    return true;
  });
  await assert.rejects(nimbus.query({ table: "tasks", filters: [{ field: "x", op: "like" as "eq", value: 1 }] }), (error: unknown) => {
    assert.ok(error instanceof NimbusInvalidInputError);
    assert.equal(error.detail.field, "filters[0].op");
    return true;
  });
});

async function seed(nimbus: Nimbus): Promise<string[]> {
  const ids: string[] = [];
  const rows = [
    { status: "open", priority: 1, owner: { team: "infra" } },
    { status: "blocked", priority: 5, owner: { team: "infra" } },
    { status: "open", priority: 3, owner: { team: "web" } },
    { status: "done", priority: 4, owner: { team: "infra" } },
    { status: "open", priority: 2, owner: { team: "infra" } },
  ];
  for (const fields of rows) ids.push((await nimbus.documents.insert({ table: "tasks", fields })).id);
  return ids;
}

test("query: filters, dot paths, order and limit", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const ids = await seed(nimbus);

  const open = await nimbus.query({
    table: "tasks",
    filters: [
      { field: "status", op: "in", value: ["open", "blocked"] },
      { field: "owner.team", op: "eq", value: "infra" },
      { field: "priority", op: "gte", value: 2 },
    ],
    order: { field: "priority", direction: "desc" },
  });
  assert.deepEqual(open.map((d) => d._id), [ids[1], ids[4]]);

  const everything = await nimbus.query({ table: "tasks" });
  assert.deepEqual(everything.map((d) => d._id), ids);

  const top2 = await nimbus.query<{ priority: number }>({ table: "tasks", order: { field: "priority", direction: "asc" }, limit: 2 });
  assert.deepEqual(top2.map((d) => d.priority), [1, 2]);
  assert.deepEqual(await nimbus.query({ table: "tasks", limit: 0 }), []);
});

test("paginate and paginateAll walk a query in keyset pages", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const ids = await seed(nimbus);
  const query = { table: "tasks", order: { field: "priority", direction: "asc" as const } };
  const byPriority = [ids[0], ids[4], ids[2], ids[3], ids[1]];

  const page1 = await nimbus.paginate({ query, pageSize: 2 });
  assert.deepEqual(page1.data.map((d) => d._id), byPriority.slice(0, 2));
  assert.equal(page1.has_more, true);
  const page2 = await nimbus.paginate({ query, pageSize: 2, after: page1.next_cursor });
  assert.deepEqual(page2.data.map((d) => d._id), byPriority.slice(2, 4));
  const page3 = await nimbus.paginate({ query, pageSize: 2, after: page2.next_cursor });
  assert.deepEqual(page3.data.map((d) => d._id), byPriority.slice(4));
  assert.equal(page3.has_more, false);
  assert.equal(page3.next_cursor, null);

  const walked: string[] = [];
  for await (const doc of nimbus.paginateAll({ query, pageSize: 2 })) walked.push(doc._id);
  assert.deepEqual(walked, byPriority);

  await assert.rejects(nimbus.paginate({ query, pageSize: 0 }), (error: unknown) => {
    assert.ok(error instanceof NimbusInvalidInputError);
    assert.equal(error.detail.field, "page_size");
    return true;
  });
  await assert.rejects(nimbus.paginate({ query: { table: "other" }, pageSize: 2, after: page1.next_cursor }), (error: unknown) => {
    assert.ok(error instanceof NimbusInvalidInputError);
    assert.equal(error.detail.field, "after");
    return true;
  });
});

test("schemas: put with an index, get, list, violations, delete", async () => {
  const nimbus = server().client(await freshTenant(server()));
  await nimbus.documents.insert({ table: "tasks", fields: { title: "ok", priority: 1 } });
  await nimbus.schemas.put({
    table: "tasks",
    fields: [
      { name: "title", field_type: "string", required: true },
      { name: "priority", field_type: "number", required: false },
    ],
    indexes: [{ name: "by_priority", fields: ["priority"] }],
  });
  const schema = await nimbus.schemas.get({ table: "tasks" });
  assert.equal(schema.table, "tasks");
  assert.deepEqual(schema.indexes, [{ name: "by_priority", fields: ["priority"] }]);
  assert.equal(schema.access_policy, null);
  assert.deepEqual(Object.keys(await nimbus.schemas.list()), ["tasks"]);

  await assert.rejects(nimbus.documents.insert({ table: "tasks", fields: { priority: 2 } }), (error: unknown) => {
    assert.ok(error instanceof NimbusSchemaValidationError);
    assert.equal(error.status, 422);
    assert.equal(error.detail.table, "tasks");
    assert.equal(error.detail.field, "title");
    return true;
  });
  // A schema that existing documents violate is refused as a whole.
  await assert.rejects(
    nimbus.schemas.put({ table: "tasks", fields: [{ name: "owner", field_type: "string", required: true }] }),
    (error: unknown) => error instanceof NimbusSchemaValidationError && error.detail.violationCount === 1,
  );

  await nimbus.schemas.delete({ table: "tasks" });
  await assert.rejects(nimbus.schemas.get({ table: "tasks" }), (error: unknown) => {
    assert.ok(error instanceof NimbusSchemaNotFoundError);
    assert.deepEqual(error.detail, { table: "tasks" });
    return true;
  });
  await assert.rejects(nimbus.schemas.delete({ table: "tasks" }), NimbusSchemaNotFoundError);
  // Documents stay; validation is gone.
  await nimbus.documents.insert({ table: "tasks", fields: { priority: 2 } });
});

test("journal: records of every write, and a bootstrap snapshot to resume after", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const { id } = await nimbus.documents.insert({ table: "tasks", fields: { title: "a" } });
  await nimbus.documents.patch({ table: "tasks", id, patch: { title: "b" } });
  await nimbus.documents.delete({ table: "tasks", id });

  const page = await nimbus.journal.read({ after: 0, limit: 2 });
  assert.deepEqual(page.records.map((r) => r.sequence), [1, 2]);
  assert.equal(page.latest_sequence, 3);
  assert.equal(page.has_more, true);
  assert.deepEqual(page.records.map((r) => r.writes[0]!.op_type), ["insert", "update"]);
  assert.equal(page.records[1]!.writes[0]!.current?.title, "b");
  assert.equal(page.records[0]!.integrity_sha256.length, 32);
  const rest = await nimbus.journal.read({ after: page.next_cursor });
  assert.deepEqual(rest.records.map((r) => r.writes[0]!.op_type), ["delete"]);
  assert.equal(rest.has_more, false);

  const kept = await nimbus.documents.insert({ table: "tasks", fields: { title: "kept" } });
  const boot = await nimbus.journal.bootstrap();
  assert.equal(boot.resume_after_sequence, 4);
  assert.deepEqual(boot.snapshot.documents.map((d) => [d.id, d.fields.title]), [[kept.id, "kept"]]);

  await assert.rejects(nimbus.journal.read({ after: 99 }), (error: unknown) => {
    assert.ok(error instanceof NimbusInvalidInputError);
    assert.equal(error.detail.latestSequence, 4);
    return true;
  });
});

test("errors are NimbusError with the envelope's fields", async () => {
  const nimbus = server().client("no-such-tenant");
  const error = await nimbus.query({ table: "tasks" }).then(
    () => assert.fail("query on a missing tenant succeeded"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof NimbusError);
  assert.ok(error instanceof Error);
  assert.equal(error.name, "NimbusTenantNotFoundError");
  assert.equal(error.severity, "error");
  assert.match(error.timestamp ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(error.toJSON().code, "session.tenant_not_found");
});

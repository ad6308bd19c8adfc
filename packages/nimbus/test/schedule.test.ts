// One-shot jobs and crons against a real server. A job or cron that runs is observed through a
// live subscription on the table it writes (the write is the signal), then its record.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  NimbusAlreadyExistsError,
  NimbusClientError,
  NimbusFunctionNotFoundError,
  NimbusInvalidInputError,
  NimbusNotFoundError,
  NimbusScheduledJobNotFoundError,
  type Doc,
  type Nimbus,
} from "../src/index.js";
import { eventually, fileServer, freshTenant } from "./harness.js";

const server = fileServer();

const HOUR_MS = 3_600_000;

/** Resolves with the table's documents once `predicate` holds for them. */
async function untilTable(nimbus: Nimbus, table: string, predicate: (docs: Doc[]) => boolean): Promise<Doc[]> {
  const sub = nimbus.subscribe({ query: { table } });
  try {
    for await (const docs of sub) if (predicate(docs)) return docs;
    throw new Error("the subscription ended");
  } finally {
    sub.close();
  }
}

test("schedule: create, get, list, cancel; a cancelled job cannot be cancelled again", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const mutation = { type: "insert" as const, table: "later", fields: { title: "later" } };
  const { job_id } = await nimbus.schedule.create({ runAfterMs: HOUR_MS, mutation });
  assert.match(job_id, /^[0-9a-z]{26}$/);

  const job = await nimbus.schedule.get({ id: job_id });
  assert.equal(job.id, job_id);
  assert.equal(job.state, "pending");
  assert.equal(job.attempts, 0);
  // The server renders an insert's optional id as null.
  assert.deepEqual(job.mutation, { ...mutation, id: null });
  assert.ok(job.run_at >= job.created_at + HOUR_MS);

  const listed = await nimbus.schedule.list();
  assert.deepEqual(listed.map((j) => j.id), [job_id]);
  assert.equal(listed[0]!.run_at, job.run_at);

  await assert.rejects(nimbus.schedule.result({ id: job_id }), NimbusScheduledJobNotFoundError);
  await nimbus.schedule.cancel({ id: job_id });
  assert.equal((await nimbus.schedule.get({ id: job_id })).state, "cancelled");
  assert.deepEqual(await nimbus.schedule.list(), []);
  await assert.rejects(nimbus.schedule.cancel({ id: job_id }), (error: unknown) => {
    assert.ok(error instanceof NimbusScheduledJobNotFoundError);
    assert.equal(error.status, 404);
    assert.deepEqual(error.detail, { jobId: job_id, state: "cancelled" });
    return true;
  });
});

test("schedule: runAt is converted to a delay; a due job runs and records its result", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const at = Date.now() + HOUR_MS;
  const later = await nimbus.schedule.create({ runAt: new Date(at), mutation: { type: "delete", table: "t", id: "01j9z3m0a1b2c3d4e5f6g7h8j9" } });
  const laterJob = await nimbus.schedule.get({ id: later.job_id });
  assert.ok(Math.abs(laterJob.run_at - at) < 60_000, `run_at ${laterJob.run_at} is not near ${at}`);

  const { job_id } = await nimbus.schedule.create({ runAt: Date.now() - 1000, mutation: { type: "insert", table: "done", fields: { by: "job" } } });
  const docs = await untilTable(nimbus, "done", (d) => d.length === 1);
  assert.equal(docs[0]!.by, "job");
  const result = await eventually("the job's result", () => nimbus.schedule.result({ id: job_id }).catch(() => undefined));
  assert.equal(result.outcome, "completed");
  assert.equal(result.error_code, null);
  const job = await nimbus.schedule.get({ id: job_id });
  assert.equal(job.state, "completed");
  assert.equal(job.attempts, 1);
});

test("schedule: a failing target is recorded with its error code", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const { id } = await nimbus.documents.insert({ table: "tasks", fields: {} });
  const { job_id } = await nimbus.schedule.create({ runAfterMs: 0, mutation: { type: "insert", table: "tasks", id, fields: {} } });
  const result = await eventually("the job's result", () => nimbus.schedule.result({ id: job_id }).catch(() => undefined));
  assert.equal(result.outcome, "failed");
  assert.equal(result.error_code, "op.already_exists");
});

test("schedule: invalid input is refused by the client or the server", async () => {
  const nimbus = server().client(await freshTenant(server()));
  await assert.rejects(
    nimbus.schedule.create({ mutation: { type: "insert", table: "t", fields: {} } } as never),
    NimbusClientError,
  );
  await assert.rejects(nimbus.schedule.create({ runAfterMs: 0, mutation: { type: "insert", table: "bad table", fields: {} } }), (error: unknown) => {
    assert.ok(error instanceof NimbusInvalidInputError);
    assert.equal(error.detail.field, "mutation.table");
    return true;
  });
  await assert.rejects(nimbus.schedule.create({ runAfterMs: 0, mutation: { type: "function", name: "jobs:run" } }), (error: unknown) => {
    assert.ok(error instanceof NimbusFunctionNotFoundError);
    assert.equal(error.status, 404);
    assert.deepEqual(error.detail, { name: "jobs:run" });
    return true;
  });
  await assert.rejects(nimbus.schedule.get({ id: "01j9z3m0a1b2c3d4e5f6g7h8j9" }), NimbusScheduledJobNotFoundError);
});

test("crons: create, get, list, update, runs, delete", async () => {
  const nimbus = server().client(await freshTenant(server()));
  const name = "nightly report";
  const mutation = { type: "insert" as const, table: "reports", fields: { kind: "nightly" } };
  await nimbus.crons.create({ name, schedule: { type: "cron", expression: "0 8 * * MON-FRI", timezone: "Europe/Berlin" }, mutation });

  const cron = await nimbus.crons.get({ name });
  assert.equal(cron.name, name);
  assert.equal(cron.enabled, true);
  assert.deepEqual(cron.mutation, { ...mutation, id: null });
  assert.deepEqual(cron.schedule, { type: "cron", expression: "0 8 * * MON-FRI", timezone: "Europe/Berlin" });
  assert.equal(cron.last_run, null);
  assert.ok(cron.next_run !== null && cron.next_run > cron.created_at);
  assert.deepEqual((await nimbus.crons.list()).map((c) => c.name), [name]);

  await assert.rejects(
    nimbus.crons.create({ name, schedule: { type: "interval", seconds: 60 }, mutation }),
    (error: unknown) => error instanceof NimbusAlreadyExistsError && error.status === 409,
  );

  const disabled = await nimbus.crons.update({ name, enabled: false });
  assert.equal(disabled.enabled, false);
  assert.equal(disabled.next_run, null);
  const changed = await nimbus.crons.update({ name, enabled: true, schedule: { type: "interval", seconds: 3600 } });
  assert.equal(changed.enabled, true);
  assert.deepEqual(changed.schedule, { type: "interval", seconds: 3600 });
  assert.ok(changed.next_run !== null);
  assert.deepEqual(await nimbus.crons.runs({ name, limit: 5 }), []);

  await assert.rejects(nimbus.crons.update({ name, schedule: { type: "cron", expression: "0 8 * * L" } }), (error: unknown) => {
    assert.ok(error instanceof NimbusInvalidInputError);
    assert.equal(error.detail.field, "schedule.expression");
    return true;
  });

  await nimbus.crons.delete({ name });
  await assert.rejects(nimbus.crons.get({ name }), (error: unknown) => {
    assert.ok(error instanceof NimbusNotFoundError);
    assert.equal(error.code, "op.not_found");
    assert.equal(error.status, 404);
    assert.equal(error.retryable, false);
    assert.match(error.requestId ?? "", /^req_/);
    assert.equal(error.detail.resource, "cron");
    return true;
  });
  await nimbus.crons.delete({ name });
  assert.deepEqual(await nimbus.crons.list(), []);
});

test("crons: an interval cron fires and records its run", async () => {
  const nimbus = server().client(await freshTenant(server()));
  await nimbus.crons.create({ name: "tick", schedule: { type: "interval", seconds: 1 }, mutation: { type: "insert", table: "ticks", fields: {} } });
  await untilTable(nimbus, "ticks", (docs) => docs.length >= 1);
  const runs = await eventually("a recorded cron run", async () => {
    const runs = await nimbus.crons.runs({ name: "tick" });
    return runs.some((r) => r.outcome === "completed") ? runs : undefined;
  });
  assert.equal(runs[0]!.error_code, null);
  assert.ok((await nimbus.crons.get({ name: "tick" })).last_run !== null);
  await nimbus.crons.delete({ name: "tick" });
});

// Sandbox networking through the SDK (docs/networking.md): egress rules sent at create and echoed,
// replaced under a generation check, the decision log read and followed, and status.endpoints.
// The container tests make requests from inside real sandboxes, to names no rule allows: the
// egress proxy refuses those before resolving them, so nothing leaves this machine.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Nimbus,
  NimbusConflictError,
  NimbusInvalidInputError,
  NimbusPreconditionFailedError,
  type EgressDecision,
  type ExecResult,
} from "../src/index.js";
import { eventually, fileServer } from "./harness.js";
import { Cleanup, busyboxClient, busyboxSpec } from "./fixtures/busybox.js";

let nimbus: Nimbus;
const cleanup = new Cleanup();
fileServer({
  ready: async (s) => void (nimbus = await busyboxClient(s)),
  beforeStop: () => cleanup.verify(),
});

/** A name no rule allows; the proxy refuses it before any lookup. */
const REFUSED_URL = "http://not-allowed.example/";

/** Safety net for a followed log that never yields: the test fails instead of hanging. */
const FOLLOW_DEADLINE_MS = 30_000;

/** The decision the proxy logs for a plain-HTTP GET of {@link REFUSED_URL}. */
function assertRefused(decision: EgressDecision | undefined): asserts decision is EgressDecision {
  assert.ok(decision, "no decision for not-allowed.example");
  assert.equal(typeof decision.seq, "number");
  assert.match(decision.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const { seq: _seq, time: _time, ...rest } = decision;
  assert.deepEqual(rest, {
    kind: "request",
    method: "GET",
    host: "not-allowed.example",
    port: 80,
    address: null,
    decision: "refused",
    rule: null,
    reason: "not_allowed",
    credential: null,
    status: null,
    bytesOut: 0,
    bytesIn: 0,
  });
}

test("egress: rules are echoed, a refused request is logged and followed, updates are generation-checked", async () => {
  const created = await nimbus.sandboxes.create({
    profile: "worker",
    spec: { ...busyboxSpec(["sleep", "1000"]), network: { egress: { allow: [{ host: "pypi.org", ports: [443] }] } } },
  });
  const id = cleanup.sandbox(nimbus, created.metadata.id);
  try {
    assert.deepEqual(created.spec.sandbox.network.egress.allow[0], { host: "pypi.org", ports: [443] });
    assert.deepEqual(created.spec.sandbox.network.egress.credentials, []);
    assert.equal(created.metadata.generation, 1);
    await nimbus.sandboxes.wait({ id, until: "ready" });

    // busybox wget follows the sandbox's `http_proxy`; the proxy answers 403 for the name.
    const sid = (await nimbus.sessions.open({ target: { sandbox: { id } }, channels: ["exec"] })).metadata.id;
    const wget = (): Promise<ExecResult> => nimbus.sessions.run({ id: sid, argv: ["wget", "-q", "-O", "-", REFUSED_URL] });
    const refused = await wget();
    assert.notEqual(refused.exitCode, 0, `wget got through: ${JSON.stringify(refused)}`);
    assert.equal(refused.stdout, "");
    assert.match(refused.stderr, /403/);

    // The refusal is logged before the proxy answers.
    const log = await nimbus.sandboxes.egressLog({ id });
    assertRefused(log.find((d) => d.host === "not-allowed.example"));
    const last = log.at(-1)!;
    assert.deepEqual(await nimbus.sandboxes.egressLog({ id, tail: 1 }), [last]);
    assert.deepEqual(await nimbus.sandboxes.egressLog({ id, tail: 0 }), []);

    // Following: the last logged decision first (so the request is open), then a new one.
    const followed: EgressDecision[] = [];
    const signal = AbortSignal.timeout(FOLLOW_DEADLINE_MS);
    for await (const decision of nimbus.sandboxes.followEgress({ id, tail: 1, signal })) {
      followed.push(decision);
      if (followed.length === 1) await wget();
      else break;
    }
    assert.deepEqual(followed[0], last);
    assert.equal(followed[1]?.seq, last.seq + 1);
    assertRefused(followed[1]);

    // A rule update: the current generation succeeds and bumps it; a stale one is refused.
    const updated = await nimbus.sandboxes.updateNetwork({
      id,
      generation: 1,
      egress: { allow: [{ host: "*.PythonHosted.org." }, { host: "pypi.org", ports: [443] }] },
    });
    assert.equal(updated.metadata.generation, 2);
    assert.deepEqual(updated.spec.sandbox.network.egress.allow, [
      { host: "*.pythonhosted.org", ports: [80, 443] },
      { host: "pypi.org", ports: [443] },
    ]);
    assert.deepEqual((await nimbus.sandboxes.get({ id })).spec.sandbox.network, updated.spec.sandbox.network);
    await assert.rejects(nimbus.sandboxes.updateNetwork({ id, generation: 1, egress: {} }), (error: unknown) => {
      assert.ok(error instanceof NimbusPreconditionFailedError, String(error));
      assert.equal(error.code, "op.precondition_failed");
      assert.equal(error.status, 412);
      assert.deepEqual(error.detail, { expectedGeneration: 1, currentGeneration: 2 });
      return true;
    });
    await assert.rejects(
      nimbus.sandboxes.updateNetwork({ id, generation: 2, egress: { allow: [{ host: "pypi.org", ports: [] }] } }),
      (error: unknown) => {
        assert.ok(error instanceof NimbusInvalidInputError, String(error));
        assert.equal(error.detail?.field, "egress.allow[0].ports");
        return true;
      },
    );
    // A refused update changed nothing; the name is still refused under the new rules.
    assert.equal((await nimbus.sandboxes.get({ id })).metadata.generation, 2);
    assert.notEqual((await wget()).exitCode, 0);
    assertRefused((await nimbus.sandboxes.egressLog({ id, tail: 1 }))[0]);
  } finally {
    await nimbus.sandboxes.delete({ id });
  }
});

test("status.endpoints lists the ports a sandbox listens on, never the proxy's", async () => {
  const created = await nimbus.sandboxes.create({ profile: "worker", spec: busyboxSpec(["sleep", "1000"]) });
  const id = cleanup.sandbox(nimbus, created.metadata.id);
  try {
    assert.deepEqual(created.spec.sandbox.network, { egress: { allow: [], credentials: [] } }, "no network is deny-all");
    await nimbus.sandboxes.wait({ id, until: "ready" });
    assert.deepEqual((await nimbus.sandboxes.get({ id })).status.endpoints, []);
    const sid = (await nimbus.sessions.open({ target: { sandbox: { id } }, channels: ["exec"] })).metadata.id;
    await nimbus.sessions.exec({ id: sid, argv: ["httpd", "-f", "-p", "127.0.0.1:8000", "-h", "/tmp"] });
    const endpoints = await eventually("httpd to listen", async () => {
      const { status } = await nimbus.sandboxes.get({ id });
      return status.endpoints.length > 0 ? status.endpoints : undefined;
    });
    assert.deepEqual(endpoints, [
      {
        name: "tcp-8000",
        protocol: "tcp",
        host: "127.0.0.1",
        port: 8000,
        url: `/api/tenants/${nimbus.tenantId}/sandboxes/${id}/ports/8000/`,
      },
    ]);
  } finally {
    await nimbus.sandboxes.delete({ id });
  }
});

test("updateNetwork on an ended sandbox is a conflict", async () => {
  const created = await nimbus.sandboxes.create({ profile: "worker", spec: busyboxSpec(["true"]) });
  const id = cleanup.sandbox(nimbus, created.metadata.id);
  try {
    await nimbus.sandboxes.wait({ id, until: "stopped" });
    await assert.rejects(nimbus.sandboxes.updateNetwork({ id, generation: 1, egress: {} }), (error: unknown) => {
      assert.ok(error instanceof NimbusConflictError, String(error));
      assert.equal(error.detail?.reason, "sandbox_ended");
      return true;
    });
    // The log of an ended sandbox is read at once, and following it ends at once.
    assert.deepEqual(await nimbus.sandboxes.egressLog({ id }), []);
    const followed: EgressDecision[] = [];
    for await (const decision of nimbus.sandboxes.followEgress({ id })) followed.push(decision);
    assert.deepEqual(followed, []);
  } finally {
    await nimbus.sandboxes.delete({ id });
  }
});

// ---------------------------------------------------------------------------------------------
// The requests the SDK sends, against a stub `fetch` (no server)

interface Call {
  method: string;
  url: URL;
  body: unknown;
}

/** A client whose `fetch` records each request and answers it with `answer`'s response. */
function stubbed(answer: (call: Call) => Response): { client: Nimbus; calls: Call[] } {
  const calls: Call[] = [];
  const stub = (async (input: string | URL | Request, init?: RequestInit) => {
    if (init?.signal?.aborted === true) throw init.signal.reason;
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
    const call = { method: init?.method ?? "GET", url: new URL(String(input)), body };
    calls.push(call);
    return answer(call);
  }) as typeof fetch;
  return { client: new Nimbus({ endpoint: "http://127.0.0.1:9", token: "t", tenantId: "demo", fetch: stub }), calls };
}

function decision(seq: number): EgressDecision {
  return {
    seq, time: "2026-12-07T09:30:00.120Z", kind: "tunnel", method: "CONNECT", host: "pypi.org", port: 443,
    address: "151.101.0.223:443", decision: "allowed", rule: { host: "pypi.org", ports: [443] }, reason: null,
    credential: null, status: null, bytesOut: 1822, bytesIn: 53120,
  };
}

/** An NDJSON answer sent in `chunks` (lines may be split across them). */
function ndjson(chunks: string[]): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "application/x-ndjson" } });
}

test("updateNetwork sends PUT …/network with the generation and the rules", async () => {
  const { client, calls } = stubbed(() => Response.json({ metadata: { generation: 4 } }));
  const egress = {
    allow: [{ host: "api.github.com" }],
    credentials: [{ host: "api.github.com", header: "Authorization", secret: "github", prefix: "Bearer " }],
  };
  const answer = await client.sandboxes.updateNetwork({ id: "box-1", tenantId: "other", generation: 3, egress });
  assert.equal(answer.metadata.generation, 4);
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.method, "PUT");
  assert.equal(calls[0]!.url.pathname, "/api/tenants/other/sandboxes/box-1/network");
  assert.deepEqual(calls[0]!.body, { metadata: { generation: 3 }, egress });
});

test("egressLog and followEgress read GET …/egress and skip heartbeats", async () => {
  const heartbeat = { kind: "heartbeat", time: "2026-12-07T09:30:15.000Z" };
  const whole = [decision(1), heartbeat, decision(2)].map((line) => JSON.stringify(line) + "\n").join("");
  const { client, calls } = stubbed(() => ndjson([whole.slice(0, 40), whole.slice(40, 300), whole.slice(300)]));

  assert.deepEqual(await client.sandboxes.egressLog({ id: "box-1", tail: 5 }), [decision(1), decision(2)]);
  assert.equal(calls[0]!.method, "GET");
  assert.equal(calls[0]!.url.pathname, "/api/tenants/demo/sandboxes/box-1/egress");
  assert.deepEqual([...calls[0]!.url.searchParams], [["tail", "5"]]);

  const followed: EgressDecision[] = [];
  const stream = client.sandboxes.followEgress({ id: "box-1", tail: 0 });
  assert.equal(calls.length, 1, "nothing is sent before iteration starts");
  for await (const entry of stream) followed.push(entry);
  assert.deepEqual(followed, [decision(1), decision(2)]);
  assert.deepEqual([...calls[1]!.url.searchParams], [["tail", "0"], ["follow", "true"]]);

  const aborted = new AbortController();
  aborted.abort(new Error("stop following"));
  await assert.rejects(client.sandboxes.followEgress({ id: "box-1", signal: aborted.signal }).next(), /stop following/);
});

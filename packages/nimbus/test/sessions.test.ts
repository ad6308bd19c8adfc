// `nimbus.sessions` against the real server and real sandboxes (docs/sessions.md): open, get,
// list, renew, close; stdio attachments; exec with streaming, wait, signals, ptys and run;
// confined files.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import {
  NimbusClientError,
  NimbusConflictError,
  NimbusError,
  NimbusNotFoundError,
  type Nimbus,
} from "../src/index.js";
import type { Session, StreamFrame } from "../src/compute-types.js";
import type { Attachment } from "../src/stream.js";
import { fileServer, freshTenant } from "./harness.js";
import { Cleanup, busyboxClient, busyboxSpec, outputOf, readUntil } from "./fixtures/busybox.js";

let nimbus: Nimbus;
let tenant: string;
const cleanup = new Cleanup();
const server = fileServer({
  ready: async (s) => {
    nimbus = await busyboxClient(s);
    tenant = nimbus.tenantId ?? "";
  },
  beforeStop: () => cleanup.verify(),
});

/** A ready sandbox running `argv`. */
async function sandbox(argv: string[], terminal = false): Promise<string> {
  const created = await nimbus.sandboxes.create({ profile: "worker", spec: busyboxSpec(argv, { terminal }) });
  cleanup.sandbox(nimbus, created.metadata.id);
  await nimbus.sandboxes.wait({ id: created.metadata.id, until: "ready" });
  return created.metadata.id;
}

async function open(sandboxId: string, channels: Array<"stdio" | "exec" | "files">): Promise<Session> {
  return nimbus.sessions.open({ target: { sandbox: { id: sandboxId } }, channels, requestedTtlMs: 300_000 });
}

function hasText(kind: "stdout" | "stderr", text: string) {
  const seen: StreamFrame[] = [];
  return (frame: StreamFrame): boolean => {
    seen.push(frame);
    return outputOf(seen, kind).includes(text);
  };
}

const isExit = (frame: StreamFrame): boolean => frame.kind === "exit";
const isClosed = (frame: StreamFrame): boolean => frame.kind === "closed";

/** The frames of an attachment up to its `closed` frame, then checks it has ended. */
async function drain(attachment: Attachment): Promise<StreamFrame[]> {
  const frames = await readUntil(attachment, isClosed);
  assert.equal(attachment.isClosed, true);
  return frames;
}

test("sessions open, renew (never shorter), list by state and close", async () => {
  const id = await sandbox(["sleep", "300"]);
  const session = await open(id, ["exec", "files"]);
  const sid = session.metadata.id;
  assert.match(sid, /^session-[0-9a-z]{26}$/);
  assert.equal(session.metadata.tenantId, tenant);
  assert.equal(session.status.lifecycleState, "open");
  assert.deepEqual(session.spec.target, { sandbox: { id } });
  assert.deepEqual(session.spec.channels, ["exec", "files"]);
  assert.equal(session.spec.expiresAt, session.status.expiresAt);

  const read = await nimbus.sessions.get({ id: sid });
  assert.equal(read.metadata.id, sid);
  assert.equal(read.metadata.generation, session.metadata.generation);
  // The client's tenant is sent: another tenant's client cannot see the session.
  const other = server().client(await freshTenant(server()));
  await assert.rejects(other.sessions.get({ id: sid }), NimbusNotFoundError);
  await assert.rejects(other.sessions.close({ id: sid }), NimbusNotFoundError);
  // Without any tenant the server takes it from the session.
  assert.equal((await server().client().sessions.get({ id: sid })).metadata.id, sid);

  const renewed = await nimbus.sessions.renew({ id: sid, requestedTtlMs: 3_600_000 });
  assert.ok(Date.parse(renewed.status.expiresAt) > Date.parse(session.status.expiresAt));
  assert.equal(renewed.metadata.generation, session.metadata.generation + 1);
  const shorter = await nimbus.sessions.renew({ id: sid, requestedTtlMs: 1_000 });
  assert.equal(shorter.status.expiresAt, renewed.status.expiresAt, "a renew never shortens the lease");

  const second = await open(id, ["exec"]);
  const openIds = (await nimbus.sessions.list({ state: "open" })).items.map((s) => s.metadata.id);
  assert.ok(openIds.includes(sid) && openIds.includes(second.metadata.id));

  const closed = await nimbus.sessions.close({ id: sid, reason: "done" });
  assert.equal(closed.status.lifecycleState, "closed");
  assert.equal(closed.status.closeReason, "done");
  assert.equal(typeof closed.status.closedAt, "string");
  const again = await nimbus.sessions.close({ id: sid });
  assert.equal(again.status.closeReason, "done", "closing a closed session returns it unchanged");
  const defaultReason = await nimbus.sessions.close({ id: second.metadata.id });
  assert.equal(defaultReason.status.closeReason, "client_close");

  const closedIds = (await nimbus.sessions.list({ state: "closed" })).items.map((s) => s.metadata.id);
  assert.ok(closedIds.includes(sid) && closedIds.includes(second.metadata.id));
  const stillOpen = (await nimbus.sessions.list({ state: "open" })).items.map((s) => s.metadata.id);
  assert.ok(!stillOpen.includes(sid));
  const page = await nimbus.sessions.list({ limit: 1 });
  assert.equal(page.items.length, 1);
  assert.ok(page.metadata.nextPageToken);
  const next = await nimbus.sessions.list({ limit: 1, pageToken: page.metadata.nextPageToken });
  assert.notEqual(next.items[0]?.metadata.id, page.items[0]?.metadata.id);

  await assert.rejects(nimbus.sessions.renew({ id: sid }), (error: unknown) => {
    assert.ok(error instanceof NimbusConflictError);
    assert.equal(error.detail?.reason, "session_not_open");
    return true;
  });
  await assert.rejects(nimbus.sessions.run({ id: sid, argv: ["true"] }), NimbusConflictError);
});

test("opening needs a ready target and a tenant", async () => {
  const ended = await nimbus.sandboxes.create({ profile: "worker", spec: busyboxSpec(["true"]) });
  cleanup.sandbox(nimbus, ended.metadata.id);
  await nimbus.sandboxes.wait({ id: ended.metadata.id, until: "stopped" });
  await assert.rejects(open(ended.metadata.id, ["exec"]), (error: unknown) => {
    assert.ok(error instanceof NimbusConflictError);
    assert.equal(error.detail?.reason, "target_not_ready");
    return true;
  });
  await assert.rejects(open("no-such-sandbox", ["exec"]), NimbusNotFoundError);
  const untenanted = server().client();
  await assert.rejects(
    untenanted.sessions.open({ target: { sandbox: { id: ended.metadata.id } }, channels: ["exec"] }),
    NimbusClientError,
  );
  await assert.rejects(untenanted.sessions.list(), NimbusClientError);
});

test("stdio attaches to the main process: replay, input, binary input, eof, exit", async () => {
  const id = await sandbox(["sh", "-c", "echo ready; exec cat"]);
  const sid = (await open(id, ["stdio"])).metadata.id;

  const first = await nimbus.sessions.stdio({ id: sid });
  const opened = await readUntil(first, hasText("stdout", "ready\n"));
  assert.deepEqual(opened[0], { kind: "opened", channel: "stdio", targetGeneration: 1 });
  assert.ok(opened.slice(1).every((f) => f.kind !== "stdout" || f.replay === true), "output from before the attach is replayed");

  await first.write("hello\n");
  const echoed = await readUntil(first, hasText("stdout", "hello\n"));
  assert.ok(echoed.every((f) => f.kind !== "stdout" || f.replay !== true), "live output is not marked replay");
  await first.write(new Uint8Array([0x62, 0x69, 0x6e, 0x0a])); // "bin\n", sent base64
  await readUntil(first, hasText("stdout", "bin\n"));

  // Not a pty: the server's refusal rejects the call and the attachment stays open.
  await assert.rejects(first.resize(100, 40), (error: unknown) => {
    assert.ok(error instanceof NimbusConflictError);
    assert.equal(error.detail?.reason, "not_a_tty");
    return true;
  });
  assert.equal(first.isClosed, false);

  // A second attachment replaces the first and replays what was said.
  const second = await nimbus.sessions.stdio({ id: sid });
  assert.deepEqual((await drain(first)).at(-1), { kind: "closed", reason: "replaced" });
  await assert.rejects(first.write("late\n"), NimbusClientError);
  const replay = await readUntil(second, hasText("stdout", "bin\n"));
  assert.equal(outputOf(replay, "stdout"), "ready\nhello\nbin\n");

  // Closing stdin ends `cat`, the main process: exit, closed, the sandbox stops.
  await second.eof();
  await assert.rejects(second.write("after eof\n"), (error: unknown) => error instanceof NimbusError);
  const end = await drain(second);
  assert.deepEqual(end.filter(isExit), [{ kind: "exit", code: 0 }]);
  assert.deepEqual(end.at(-1), { kind: "closed", reason: "source_closed" });
  const stopped = await nimbus.sandboxes.wait({ id, until: "stopped" });
  assert.equal(stopped.status.exitCode, 0);
  const session = await nimbus.sessions.get({ id: sid });
  assert.equal(session.status.lifecycleState, "closed");
  assert.equal(session.status.closeReason, "target_stopped");
});

test("exec streams a process: attach, write, eof, wait for the exit", async () => {
  const id = await sandbox(["sleep", "300"]);
  const sid = (await open(id, ["exec"])).metadata.id;

  const process = await nimbus.sessions.exec({
    id: sid,
    argv: ["sh", "-c", 'echo out; echo err >&2; read line; echo "got:$line:$GREETING:$(pwd)"; cat; exit 4'],
    env: ["GREETING=hi"],
    cwd: "/tmp",
  });
  assert.match(process.processId, /^proc-[0-9a-z]{26}$/);
  const attachment = await process.attach();
  const opened = await readUntil(attachment, hasText("stdout", "out\n"));
  assert.deepEqual(opened[0], { kind: "opened", channel: "exec", targetGeneration: 1, processId: process.processId });
  await attachment.write("abc\n");
  await readUntil(attachment, hasText("stdout", "got:abc:hi:/tmp\n"));
  // Unawaited writes still arrive in order, before the end-of-file.
  void attachment.write("ta");
  void attachment.write("il\n");
  await attachment.eof();
  const rest = await drain(attachment);
  const exit = rest.find(isExit);
  assert.deepEqual(exit, { kind: "exit", code: 4, signal: null, timedOut: false });

  const result = await process.wait();
  assert.equal(result.processId, process.processId);
  assert.equal(result.exitCode, 4);
  assert.equal(result.signal, null);
  assert.equal(result.timedOut, false);
  assert.equal(result.stdout, "out\ngot:abc:hi:/tmp\ntail\n");
  assert.equal(result.stderr, "err\n");
  assert.equal(result.truncated, false);
  assert.ok(result.durationMs >= 0);

  // wait() alone attaches by itself; it observes a live attach() instead of replacing it.
  const quick = await nimbus.sessions.exec({ id: sid, argv: ["sh", "-c", "echo a; echo b >&2; exit 5"] });
  const quickResult = await quick.wait();
  assert.deepEqual(
    [quickResult.exitCode, quickResult.stdout, quickResult.stderr],
    [5, "a\n", "b\n"],
  );
  const reader = await nimbus.sessions.exec({ id: sid, argv: ["sh", "-c", "read x; echo $x"] });
  const live = await reader.attach();
  await readUntil(live, (f) => f.kind === "opened");
  const waited = reader.wait();
  await live.write("via-attachment\n");
  const frames = await drain(live);
  assert.equal(outputOf(frames, "stdout"), "via-attachment\n");
  assert.equal((await waited).stdout, "via-attachment\n");

  // close() detaches only: the process goes on and a new attachment picks it up.
  const detached = await nimbus.sessions.exec({ id: sid, argv: ["sh", "-c", "read x; echo $x"] });
  const gone = await detached.attach();
  gone.close();
  assert.equal((await gone.ended).reason, "client_close");
  await assert.rejects(gone.write("x\n"), NimbusClientError);
  const back = await detached.attach();
  await back.write("still-running\n");
  assert.equal(outputOf(await drain(back), "stdout"), "still-running\n");

  // stdin given at exec is written, then closed.
  const fed = await nimbus.sessions.exec({ id: sid, argv: ["cat"], stdin: "fed\n" });
  assert.equal((await fed.wait()).stdout, "fed\n");
});

test("signals end processes; timeouts are reported; a pty can be resized", async () => {
  const id = await sandbox(["sleep", "300"]);
  const sid = (await open(id, ["exec"])).metadata.id;

  const sleeper = await nimbus.sessions.exec({ id: sid, argv: ["sleep", "300"] });
  await assert.rejects(sleeper.signal("BOGUS"), (error: unknown) => {
    assert.ok(error instanceof NimbusError);
    assert.equal(error.code, "op.invalid_input");
    return true;
  });
  await sleeper.signal("SIGTERM");
  const ended = await sleeper.wait();
  assert.equal(ended.signal, "SIGTERM");
  assert.equal(ended.exitCode, null);
  await assert.rejects(sleeper.signal("KILL"), (error: unknown) => {
    assert.ok(error instanceof NimbusConflictError);
    assert.equal(error.detail?.reason, "process_exited");
    return true;
  });

  const slow = await nimbus.sessions.exec({ id: sid, argv: ["sleep", "300"], timeoutMs: 200 });
  const timedOut = await slow.wait();
  assert.equal(timedOut.timedOut, true);
  assert.equal(timedOut.signal, "SIGKILL");

  const tty = await nimbus.sessions.exec({
    id: sid,
    argv: ["sh", "-c", "stty size; read x; stty size"],
    tty: true,
  });
  const screen = await tty.attach();
  await readUntil(screen, hasText("stdout", "24 80"));
  await tty.resize(100, 40);
  await screen.write("go\n");
  const rest = await drain(screen);
  assert.match(outputOf(rest, "stdout"), /40 100/);
  assert.equal(rest.find(isExit)?.kind, "exit");
  await assert.rejects(sleeper.resize(10, 10), NimbusConflictError);
});

test("run returns the exit code and output of a finished command", async () => {
  const id = await sandbox(["sleep", "300"]);
  const sid = (await open(id, ["exec"])).metadata.id;
  const result = await nimbus.sessions.run({ id: sid, argv: ["sh", "-c", "echo hi; echo bad >&2; exit 3"] });
  assert.equal(result.exitCode, 3);
  assert.equal(result.stdout, "hi\n");
  assert.equal(result.stderr, "bad\n");
  assert.equal(result.signal, null);
  assert.equal(result.timedOut, false);
  assert.equal(result.truncated, false);
  assert.match(result.processId, /^proc-/);

  const env = await nimbus.sessions.run({ id: sid, argv: ["sh", "-c", "echo $A; pwd; cat"], env: ["A=1"], cwd: "/etc", stdin: "in" });
  assert.equal(env.stdout, "1\n/etc\nin");
  const missing = await nimbus.sessions.run({ id: sid, argv: ["no-such-command"] });
  assert.equal(missing.exitCode, 127);
  const killed = await nimbus.sessions.run({ id: sid, argv: ["sleep", "300"], timeoutMs: 200 });
  assert.equal(killed.timedOut, true);
});

test("files: write, read, list, stat, delete, and paths confined to the sandbox", async () => {
  const id = await sandbox(["sleep", "300"]);
  const sid = (await open(id, ["exec", "files"])).metadata.id;
  const files = nimbus.sessions.files;

  const info = await files.write({ id: sid, path: "/work/dir/notes.txt", data: "hello", mode: 0o600 });
  assert.equal(info.path, "/work/dir/notes.txt");
  assert.equal(info.name, "notes.txt");
  assert.equal(info.type, "file");
  assert.equal(info.size, 5);
  assert.equal(info.mode, "0600");
  assert.equal(await files.readText({ id: sid, path: "/work/dir/notes.txt" }), "hello");
  const seen = await nimbus.sessions.run({ id: sid, argv: ["cat", "/work/dir/notes.txt"] });
  assert.equal(seen.stdout, "hello", "written content is visible to processes");

  const binary = new Uint8Array(256).map((_, i) => i);
  await files.write({ id: sid, path: "/work/dir/blob.bin", data: binary, mode: "0644" });
  assert.deepEqual(await files.read({ id: sid, path: "/work/dir/blob.bin" }), binary);

  const listed = await files.list({ id: sid, path: "/work/dir" });
  assert.equal(listed.path, "/work/dir");
  assert.equal(listed.truncated, false);
  assert.deepEqual(
    listed.entries.map((e) => [e.name, e.type, e.size, e.mode]),
    [
      ["blob.bin", "file", 256, "0644"],
      ["notes.txt", "file", 5, "0600"],
    ],
  );
  const dir = await files.stat({ id: sid, path: "/work/dir" });
  assert.equal(dir.type, "dir");
  await nimbus.sessions.run({ id: sid, argv: ["ln", "-s", "/work/dir/notes.txt", "/work/link"] });
  const link = await files.stat({ id: sid, path: "/work/link" });
  assert.deepEqual([link.type, link.target], ["symlink", "/work/dir/notes.txt"]);

  await assert.rejects(files.delete({ id: sid, path: "/work/dir" }), (error: unknown) => {
    assert.ok(error instanceof NimbusConflictError);
    assert.equal(error.detail?.reason, "directory_not_empty");
    return true;
  });
  await files.delete({ id: sid, path: "/work/dir", recursive: true });
  await assert.rejects(files.stat({ id: sid, path: "/work/dir/notes.txt" }), (error: unknown) => {
    assert.ok(error instanceof NimbusNotFoundError);
    assert.deepEqual(error.detail, { resource: "file", path: "/work/dir/notes.txt" });
    return true;
  });

  // Confinement: `..` stops at the sandbox's root, absolute symlinks resolve inside it, and
  // /proc, /sys and /dev are refused with `op.invalid_input` (`invalid_path`).
  const marker = `nimbus-sdk-escape-${process.pid}`;
  const climbed = await files.write({ id: sid, path: `/tmp/../../../../${marker}`, data: "inside" });
  assert.equal(climbed.path, `/${marker}`);
  assert.equal(existsSync(`/${marker}`), false, "the host's root was not written");
  assert.equal((await nimbus.sessions.run({ id: sid, argv: ["cat", `/${marker}`] })).stdout, "inside");
  for (const path of ["/proc/1/environ", "/proc/self/root/etc/passwd", "/sys/kernel", "/dev/null"]) {
    await assert.rejects(files.readText({ id: sid, path }), (error: unknown) => {
      assert.ok(error instanceof NimbusError, path);
      assert.equal(error.code, "op.invalid_input", path);
      assert.equal(error.status, 400, path);
      assert.deepEqual(error.detail, { field: "path", reason: "invalid_path" }, path);
      return true;
    });
  }
  const hostDir = await mkdtemp(join(tmpdir(), "nimbus-sdk-secret-"));
  try {
    const secret = join(hostDir, "secret");
    await writeFile(secret, "HOST");
    const links = await nimbus.sessions.run({
      id: sid,
      argv: ["sh", "-c", `ln -s ${secret} /tmp/abs && ln -s /proc/self/root /tmp/procroot && ln -s ../../../../.. /tmp/up`],
    });
    assert.equal(links.exitCode, 0, links.stderr);
    for (const path of ["/tmp/abs", `/tmp/up${secret}`, `/tmp/procroot${secret}`]) {
      await assert.rejects(files.readText({ id: sid, path }), (error: unknown) => {
        assert.ok(error instanceof NimbusError, path);
        // sessions.md §8 says 400 for a path that resolves into /proc; the server answers 404
        // for the link through /proc/self/root (see the report). Either way nothing leaks.
        assert.ok(["op.not_found", "op.invalid_input"].includes(error.code), `${path}: ${error.code}`);
        return true;
      });
      await files.write({ id: sid, path, data: "pwned" }).catch((error: unknown) => {
        assert.ok(error instanceof NimbusError && error.status !== undefined && error.status < 500, String(error));
      });
    }
    assert.equal(await readFile(secret, "utf8"), "HOST", "the host file is untouched");
    assert.equal(await files.readText({ id: sid, path: secret }), "pwned", "writes through the links stayed inside");
  } finally {
    await rm(hostDir, { recursive: true, force: true });
  }
  // The channel must have been opened.
  const execOnly = (await open(id, ["exec"])).metadata.id;
  await assert.rejects(files.list({ id: execOnly, path: "/" }), (error: unknown) => {
    assert.ok(error instanceof NimbusError);
    assert.equal(error.code, "op.invalid_input");
    return true;
  });
});

test("closing a session ends its attachments and kills its processes", async () => {
  const id = await sandbox(["sleep", "300"]);
  const sid = (await open(id, ["exec"])).metadata.id;
  const process = await nimbus.sessions.exec({ id: sid, argv: ["sleep", "300"] });
  const attachment = await process.attach();
  await readUntil(attachment, (f) => f.kind === "opened");
  await nimbus.sessions.close({ id: sid });
  const frames = await drain(attachment);
  assert.deepEqual(frames.at(-1), { kind: "closed", reason: "session_closed" });
  // The kill's `exit` frame may or may not beat the `closed` frame; when it does, it says SIGKILL.
  const exit = frames.find(isExit);
  if (exit?.kind === "exit") assert.equal(exit.signal, "SIGKILL");
  await assert.rejects(attachment.write("x"), NimbusClientError);
  await assert.rejects(process.attach(), (error: unknown) => {
    assert.ok(error instanceof NimbusConflictError);
    assert.equal(error.detail?.reason, "session_not_open");
    return true;
  });
});

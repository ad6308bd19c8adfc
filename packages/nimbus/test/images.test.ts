// `nimbus.images` against the real server (docs/images.md): importing docker archives (plain,
// gzip, streamed), names, idempotence, listing, usage counts and a refused archive.

import assert from "node:assert/strict";
import { test } from "node:test";
import { gzipSync } from "node:zlib";

import { NimbusError, type Nimbus } from "../src/index.js";
import { fileServer, freshTenant } from "./harness.js";
import {
  BUSYBOX_REFERENCE,
  BUSYBOX_TAG,
  Cleanup,
  busyboxArchive,
  busyboxSpec,
  tar,
} from "./fixtures/busybox.js";

let nimbus: Nimbus;
const cleanup = new Cleanup();
const server = fileServer({
  ready: async (s) => void (nimbus = s.client(await freshTenant(s))),
  beforeStop: () => cleanup.verify(),
});

function hostArch(): string {
  return process.arch === "x64" ? "amd64" : process.arch;
}

/** An archive streamed in small chunks, as a caller reading a file would send it. */
function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + 64 * 1024));
      offset += 64 * 1024;
    },
  });
}

test("an imported archive is stored under its normalized name, idempotently, and listed", async () => {
  assert.deepEqual(await nimbus.images.list(), []);
  const archive = busyboxArchive();

  const [image, ...others] = await nimbus.images.import({ archive });
  assert.equal(others.length, 0);
  assert.ok(image);
  assert.match(image.digest, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(image.references, [BUSYBOX_REFERENCE]);
  assert.equal(image.os, "linux");
  assert.equal(image.architecture, hostArch());
  assert.equal(image.source, "import");
  assert.equal(image.usedBy, 0);
  assert.ok(image.sizeBytes > 1_000_000, `${image.sizeBytes}`);
  assert.ok(!Number.isNaN(Date.parse(image.storedAt)));

  // The archive's own name wins over `reference`, which names unnamed archives only.
  const [named] = await nimbus.images.import({ archive, reference: "ignored/busybox:3" });
  assert.deepEqual(named?.references, [BUSYBOX_REFERENCE]);
  // Unnamed, gzip-compressed and streamed: the same image, one more name.
  const [again] = await nimbus.images.import({ archive: streamOf(gzipSync(busyboxArchive(null))), reference: "extra/busybox:2" });
  assert.equal(again?.digest, image.digest);
  assert.deepEqual([...(again?.references ?? [])].sort(), [BUSYBOX_REFERENCE, "docker.io/extra/busybox:2"].sort());

  const listed = await nimbus.images.list();
  assert.equal(listed.length, 1);
  assert.equal(listed[0]?.digest, image.digest);
  assert.deepEqual([...(listed[0]?.references ?? [])].sort(), [BUSYBOX_REFERENCE, "docker.io/extra/busybox:2"].sort());
});

test("usedBy counts the sandboxes using an image until they are deleted", async () => {
  await nimbus.images.import({ archive: busyboxArchive() });
  const created = await nimbus.sandboxes.create({ profile: "worker", spec: busyboxSpec(["sleep", "300"]) });
  cleanup.sandbox(nimbus, created.metadata.id);
  const byTag = (images: Awaited<ReturnType<Nimbus["images"]["list"]>>) =>
    images.find((i) => i.references.includes(BUSYBOX_REFERENCE));
  const image = byTag(await nimbus.images.list());
  assert.equal(image?.usedBy, 1);
  assert.equal(created.status.image?.digest, image?.digest);
  // The reference asked for (normalized), even when the image carries other names too.
  assert.equal(created.status.image?.reference, BUSYBOX_REFERENCE);
  assert.equal(created.spec.sandbox.root.source.reference, BUSYBOX_TAG);
  await nimbus.sandboxes.delete({ id: created.metadata.id });
  assert.equal(byTag(await nimbus.images.list())?.usedBy, 0);
});

test("an archive that is not an image is refused and nothing is stored", async () => {
  const before = (await nimbus.images.list()).length;
  const notAnImage = tar([{ path: "hello.txt", type: "file", mode: 0o644, data: new TextEncoder().encode("hi") }]);
  for (const archive of [new TextEncoder().encode("not a tar at all"), notAnImage]) {
    await assert.rejects(nimbus.images.import({ archive }), (error: unknown) => {
      assert.ok(error instanceof NimbusError);
      assert.equal(error.code, "op.invalid_input");
      assert.equal(error.status, 400);
      return true;
    });
  }
  await assert.rejects(nimbus.images.import({ archive: busyboxArchive(), reference: "Bad Name" }), (error: unknown) => {
    assert.ok(error instanceof NimbusError);
    assert.equal(error.detail?.field, "reference");
    return true;
  });
  assert.equal((await nimbus.images.list()).length, before);
});

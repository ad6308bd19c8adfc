// The function authoring types the package ships (`@nimbus/nimbus/server`, `/values`,
// `/globals`): the fixture modules under test/fixtures/functions type-check against the built
// declarations (strict), and every wrong use in test/fixtures/functions-checks fails to (each is
// marked `@ts-expect-error`, which tsc reports when the line compiles after all). Outside a
// function isolate the authoring modules throw at import. No server involved.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";

import { REPO_ROOT } from "./harness.js";

const PACKAGE_ROOT = path.join(REPO_ROOT, "packages/nimbus");
const OUTSIDE = /^this module runs inside Nimbus functions; deploy it with nimbus functions deploy$/;

test("the fixture function modules type-check against the shipped declarations; wrong uses do not", () => {
  const tsc = createRequire(path.join(PACKAGE_ROOT, "package.json")).resolve("typescript/bin/tsc");
  const run = spawnSync(process.execPath, [tsc, "-p", "test/fixtures/tsconfig.functions.json", "--pretty", "false"], {
    cwd: PACKAGE_ROOT,
    encoding: "utf8",
  });
  assert.equal(run.status, 0, `tsc failed:\n${run.stdout}${run.stderr}`);
  assert.equal(run.stdout.trim(), "");
});

test("@nimbus/nimbus/server and /values throw at import outside a function isolate", async () => {
  await assert.rejects(import("@nimbus/nimbus/server"), (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.match(error.message, OUTSIDE);
    return true;
  });
  await assert.rejects(import("@nimbus/nimbus/values"), (error: unknown) => error instanceof Error && OUTSIDE.test(error.message));
  // The client itself is unaffected.
  const sdk = await import("@nimbus/nimbus");
  assert.equal(typeof sdk.Nimbus, "function");
});

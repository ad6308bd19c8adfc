// Browser sessions against the real server and real Chromium (docs/browser.md): one server for the
// file, allowed to reach internal addresses, with the browser image put into its store by the real
// `nimbus image build-browser` (which imports the checkout's cached build, building it first when
// there is none), a browser service allowed to reach a test site on 127.0.0.2 (the sandbox's own
// loopback is not the host's, so pages reach the site only through the egress proxy), and
// Playwright (`playwright-core`, which downloads no browser) on the sessions' `cdp` sockets.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";

import { chromium, type Browser } from "playwright-core";

import {
  NimbusBrowserElementNotFoundError,
  NimbusBrowserNavigationFailedError,
  type Nimbus,
} from "../src/index.js";
import type { BrowserSessionOptions, Session, SessionChannel } from "../src/compute-types.js";
import { NIMBUS_BIN, REPO_ROOT, freshTenant, startServer, type TestServer } from "./harness.js";

/** Where `build-browser` keeps its build for every test run of this checkout (as the Rust suite). */
const BROWSER_CACHE = path.join(REPO_ROOT, "target", "nimbus-browser-cache");
/** What `build-browser` stores and the service runs by default. */
const BROWSER_IMAGE = "nimbus/browser:bookworm-1";
/** Safety nets only: a first build runs mmdebstrap (about a minute); Chromium starts in seconds. */
const BUILD_DEADLINE_MS = 900_000;
const READY_DEADLINE_MS = 180_000;
const DISCONNECT_DEADLINE_MS = 30_000;
const SERVICE = "browser";

let server: TestServer;
let nimbus: Nimbus;
let site: Server;
let siteOrigin: string;
const sessions: string[] = [];
const browsers: Browser[] = [];

/** The test site: a heading a button changes, a form, a page that sets a cookie. */
function sitePage(url: string): { status: number; body: string; headers?: Record<string, string> } {
  const html = (body: string) =>
    `<!doctype html><html><head><title>Nimbus test site</title></head><body>${body}</body></html>`;
  const { pathname, searchParams } = new URL(url, "http://site.invalid");
  switch (pathname) {
    case "/":
      return {
        status: 200,
        body: html(`<h1 id="title">Welcome to the test site</h1>
<button id="change" onclick="document.getElementById('title').textContent='Clicked'">Change the title</button>
<label for="email">Email</label><input id="email" type="text">
<label for="colour">Colour</label><select id="colour"><option value="r">Red</option><option value="g">Green</option></select>`),
      };
    case "/set-cookie":
      return {
        status: 200,
        body: html("<p>cookie set</p>"),
        headers: { "set-cookie": `who=${searchParams.get("v") ?? "none"}; Path=/` },
      };
    default:
      return { status: 404, body: html("<h1>not here</h1>") };
  }
}

/** Runs the real CLI with the server's environment; resolves with its stdout, rejects on failure. */
async function cli(args: string[]): Promise<string> {
  const child = spawn(NIMBUS_BIN, args, { env: server.env, cwd: server.dataDir, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const deadline = setTimeout(() => child.kill("SIGKILL"), BUILD_DEADLINE_MS);
  const [code] = (await once(child, "close")) as [number | null];
  clearTimeout(deadline);
  if (code !== 0) throw new Error(`nimbus ${args.join(" ")} exited ${code}:\n${stderr}`);
  return stdout;
}

before(async () => {
  server = await startServer({ args: ["--egress-allow-internal"] });
  site = createServer((request, response) => {
    const page = sitePage(request.url ?? "/");
    response.writeHead(page.status, { "content-type": "text/html; charset=utf-8", ...page.headers });
    response.end(page.body);
  });
  site.listen(0, "127.0.0.2");
  await once(site, "listening");
  const { port } = site.address() as AddressInfo;
  siteOrigin = `http://127.0.0.2:${port}`;

  const stored = await cli(["image", "build-browser", "--cache-dir", BROWSER_CACHE, "--data-dir", server.dataDir]);
  assert.equal(stored, `${BROWSER_IMAGE}\n`, "build-browser prints exactly the reference it stored");

  nimbus = server.client(await freshTenant(server));
  await nimbus.services.create({
    name: SERVICE,
    backend: {
      kind: "builtIn",
      provider: "browser",
      browser: { network: { egress: { allow: [{ host: "127.0.0.2", ports: [port] }] } } },
    },
  });
  await nimbus.services.start({ name: SERVICE });
  await nimbus.services.wait({ name: SERVICE, until: "ready", timeoutMs: READY_DEADLINE_MS });
});

after(async () => {
  try {
    for (const browser of browsers) await browser.close().catch(() => undefined);
    for (const id of sessions) await nimbus?.sessions.close({ id }).catch(() => undefined);
    if (nimbus !== undefined) {
      const definition = await nimbus.services.definition({ name: SERVICE }).catch(() => undefined);
      if (definition !== undefined) {
        await nimbus.services.delete({ name: SERVICE, ifMatchGeneration: definition.metadata.generation, force: true });
      }
    }
  } finally {
    site?.close();
    site?.closeAllConnections();
    await server?.stop();
  }
});

/** Opens a session on the browser service (closed after the file if the test does not). */
async function open(channels: SessionChannel[], browser?: BrowserSessionOptions): Promise<Session> {
  const session = await nimbus.sessions.open({ target: { service: { name: SERVICE } }, channels, browser });
  sessions.push(session.metadata.id);
  return session;
}

/** Playwright on the session's `cdp` socket, through the SDK's endpoint. */
async function connect(id: string): Promise<Browser> {
  const { url, headers } = await nimbus.sessions.cdpEndpoint({ id });
  const browser = await chromium.connectOverCDP(url, { headers });
  browsers.push(browser);
  return browser;
}

/** `promise`, or a failure naming `what` after `ms` (a safety net, not synchronisation). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The width and height in a PNG's IHDR chunk. */
function pngSize(bytes: Uint8Array): { width: number; height: number } {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG signature");
  assert.equal(Buffer.from(bytes.subarray(12, 16)).toString("latin1"), "IHDR");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** The ref of the snapshot line holding `role "name"`. */
function refOf(snapshot: string, role: string, name: string): string {
  const line = snapshot.split("\n").find((l) => l.includes(`${role} "${name}"`));
  const ref = line === undefined ? undefined : /\[ref=(e\d+)\]/.exec(line)?.[1];
  assert.ok(ref, `no ${role} "${name}" with a ref in the snapshot:\n${snapshot}`);
  return ref;
}

test("the browser service echoes its browser block and runs in a sandbox", async () => {
  const definition = await nimbus.services.definition({ name: SERVICE });
  const backend = definition.spec.backend as {
    browser?: { image?: string; network?: { egress?: { allow?: unknown } } };
    restartPolicy?: string;
  };
  assert.equal(backend.browser?.image, BROWSER_IMAGE);
  assert.equal(backend.restartPolicy, "on_failure");
  assert.deepEqual(backend.browser?.network?.egress?.allow, [
    { host: "127.0.0.2", ports: [Number(new URL(siteOrigin).port)] },
  ]);
  const runtime = await nimbus.services.get({ name: SERVICE });
  assert.equal(runtime.state, "ready");
  assert.match(runtime.sandboxId ?? "", /./, "a ready browser service names its sandbox");
});

test("Playwright over the cdp channel drives the session's own context and sees no other", async () => {
  const alice = await open(["cdp", "page"]);
  const endpoint = await nimbus.sessions.cdpEndpoint({ id: alice.metadata.id });
  assert.equal(
    endpoint.url,
    `${server.endpoint.replace(/^http/, "ws")}/api/sessions/${alice.metadata.id}/channels/cdp/ws?tenantId=${nimbus.tenantId}`,
  );
  assert.deepEqual(endpoint.headers, { Authorization: `Bearer ${server.token}` });

  const browser = await connect(alice.metadata.id);
  assert.equal(browser.contexts().length, 1, "the session's context is the browser's only one");
  const context = browser.contexts()[0]!;
  assert.equal(context.pages().length, 1);
  const page = context.pages()[0]!;
  const response = await page.goto(`${siteOrigin}/?tab=first`);
  assert.equal(response?.status(), 200);
  const [first] = await nimbus.sessions.page.pages({ id: alice.metadata.id });
  assert.equal(first?.url, `${siteOrigin}/?tab=first`, "the default context's first page is the session's first page");
  assert.equal(await page.textContent("#title"), "Welcome to the test site");
  await page.click("#change");
  assert.equal(await page.textContent("#title"), "Clicked");
  const seen = await nimbus.sessions.page.text({ id: alice.metadata.id, selector: "#title" });
  assert.equal(seen.text, "Clicked", "the page channel acts on the page Playwright drives");

  const second = await context.newPage();
  await second.goto(`${siteOrigin}/?tab=second`);
  const listed = await nimbus.sessions.page.pages({ id: alice.metadata.id });
  assert.deepEqual(
    listed.map((p) => [p.pageId, p.url]),
    [
      [first?.pageId, `${siteOrigin}/?tab=first`],
      [listed[1]?.pageId, `${siteOrigin}/?tab=second`],
    ],
    "a page made over the socket is a page of the session",
  );

  // Another session's socket: its own single blank page, none of alice's, and no cookie of hers.
  const bob = await open(["cdp"]);
  const bobs = await connect(bob.metadata.id);
  assert.equal(bobs.contexts().length, 1);
  const bobPages = bobs.contexts()[0]!.pages();
  assert.deepEqual(bobPages.map((p) => p.url()), ["about:blank"], "bob's socket sees only his own blank page");
  const bobPage = bobPages[0]!;
  assert.equal(context.pages().length, 2, "alice's socket does not see bob's page");

  await page.goto(`${siteOrigin}/set-cookie?v=alice`);
  assert.equal(await page.evaluate("document.cookie"), "who=alice");
  await bobPage.goto(`${siteOrigin}/`);
  assert.equal(await bobPage.evaluate("document.cookie"), "", "bob sees none of alice's cookies");
  assert.deepEqual(await bobs.contexts()[0]!.cookies(), []);
});

test("a page written through the files channel opens by its file URL", async () => {
  const session = await open(["files", "page"]);
  const id = session.metadata.id;
  await nimbus.sessions.files.write({
    id,
    path: "/tmp/site/index.html",
    data: "<!doctype html><title>From files</title><h1>Written through the files channel</h1>",
  });
  const went = await nimbus.sessions.page.goto({ id, url: "file:///tmp/site/index.html" });
  assert.equal(went.url, "file:///tmp/site/index.html");
  assert.equal(went.title, "From files");
  const { snapshot } = await nimbus.sessions.page.snapshot({ id });
  assert.match(snapshot, /heading "Written through the files channel"/);
  await nimbus.sessions.close({ id });
});

test("the page operations: snapshot refs, input, captures, pages and errors", async () => {
  const session = await open(["page"], { viewport: { width: 640, height: 360 } });
  const id = session.metadata.id;
  const went = await nimbus.sessions.page.goto({ id, url: `${siteOrigin}/` });
  assert.equal(went.status, 200);
  assert.equal(went.title, "Nimbus test site");

  const { snapshot } = await nimbus.sessions.page.snapshot({ id });
  assert.match(snapshot, /heading "Welcome to the test site"/);
  const clicked = await nimbus.sessions.page.click({ id, ref: refOf(snapshot, "button", "Change the title") });
  assert.equal(clicked.pageId, went.pageId);
  assert.equal((await nimbus.sessions.page.text({ id, selector: "#title" })).text, "Clicked");

  await nimbus.sessions.page.type({ id, ref: refOf(snapshot, "textbox", "Email"), text: "ada@example.com" });
  await nimbus.sessions.page.press({ id, selector: "#email", key: "Backspace" });
  const selected = await nimbus.sessions.page.select({ id, selector: "#colour", values: ["Green"] });
  assert.deepEqual(selected.selected, ["g"]);
  const values = await nimbus.sessions.page.evaluate<[string, string]>({
    id,
    expression: "[document.querySelector('#email').value, document.querySelector('#colour').value]",
  });
  assert.deepEqual(values.result, ["ada@example.co", "g"]);

  assert.deepEqual(pngSize(await nimbus.sessions.page.screenshot({ id })), { width: 640, height: 360 });
  const pdf = await nimbus.sessions.page.pdf({ id });
  assert.equal(Buffer.from(pdf.subarray(0, 5)).toString("latin1"), "%PDF-");

  const opened = await nimbus.sessions.page.open({ id, url: `${siteOrigin}/`, viewport: { width: 320, height: 200 } });
  assert.notEqual(opened.pageId, went.pageId);
  assert.deepEqual((await nimbus.sessions.page.pages({ id })).map((p) => p.pageId), [went.pageId, opened.pageId]);
  assert.deepEqual(pngSize(await nimbus.sessions.page.screenshot({ id, pageId: opened.pageId })), { width: 320, height: 200 });
  assert.deepEqual(await nimbus.sessions.page.close({ id, pageId: opened.pageId }), { pageId: opened.pageId, closed: true });
  assert.deepEqual((await nimbus.sessions.page.pages({ id })).map((p) => p.pageId), [went.pageId]);

  await assert.rejects(nimbus.sessions.page.click({ id, selector: "#nope" }), NimbusBrowserElementNotFoundError);
  const nowhere = "http://nonexistent.invalid/";
  const failed = await nimbus.sessions.page.goto({ id, url: nowhere }).catch((error: unknown) => error);
  assert.ok(failed instanceof NimbusBrowserNavigationFailedError, `goto ${nowhere} answered ${JSON.stringify(failed)}`);
  assert.equal(failed.code, "browser.navigation_failed");
  assert.equal(failed.status, 502);
  assert.equal(failed.detail?.url, nowhere);
  assert.equal(typeof failed.detail?.reason, "string", "detail.reason says why");
  await nimbus.sessions.close({ id });
});

test("a storage state round-trips into a new session", async () => {
  const alice = await open(["page"]);
  await nimbus.sessions.page.goto({ id: alice.metadata.id, url: `${siteOrigin}/set-cookie?v=alice` });
  await nimbus.sessions.page.evaluate({ id: alice.metadata.id, expression: "(localStorage.setItem('theme', 'dark'), true)" });
  const state = await nimbus.sessions.page.storageState({ id: alice.metadata.id });
  assert.ok(state.cookies.some((c) => c.name === "who" && c.value === "alice"), JSON.stringify(state));
  const origin = state.origins.find((o) => o.origin === siteOrigin);
  assert.deepEqual(origin?.localStorage, [{ name: "theme", value: "dark" }], JSON.stringify(state));

  const restored = await open(["page"], { storageState: state });
  const fresh = await open(["page"]);
  const probe = "[document.cookie, localStorage.getItem('theme')]";
  for (const [session, expected] of [
    [restored, ["who=alice", "dark"]],
    [fresh, ["", null]],
  ] as const) {
    await nimbus.sessions.page.goto({ id: session.metadata.id, url: `${siteOrigin}/` });
    const seen = await nimbus.sessions.page.evaluate({ id: session.metadata.id, expression: probe });
    assert.deepEqual(seen.result, expected);
  }
  for (const session of [alice, restored, fresh]) await nimbus.sessions.close({ id: session.metadata.id });
});

test("closing a session closes its cdp socket", async () => {
  const session = await open(["cdp"]);
  const browser = await connect(session.metadata.id);
  const disconnected = new Promise<void>((resolve) => browser.once("disconnected", () => resolve()));
  assert.equal(browser.isConnected(), true);
  await nimbus.sessions.close({ id: session.metadata.id });
  await within(disconnected, DISCONNECT_DEADLINE_MS, "Playwright's disconnected event after the session closed");
  assert.equal(browser.isConnected(), false);
  // A closed session's socket cannot be opened again: the upgrade is refused.
  await assert.rejects(connect(session.metadata.id), /409/);
});

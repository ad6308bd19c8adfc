/**
 * `nimbus.sessions.page`: the `page` channel of a session on a browser service
 * (docs/browser.md), `POST /api/sessions/{id}/page/{operation}`: open pages, navigate, take
 * accessibility snapshots whose elements carry refs, click and type by ref, read text, take
 * screenshots and PDFs.
 *
 * Every operation acts on the page `pageId` names, by default the session's first page (once
 * that is closed, the earliest-opened page still open). Failures are the catalog's `browser.*`
 * errors: `NimbusBrowserPageNotFoundError`, `NimbusBrowserElementNotFoundError`,
 * `NimbusBrowserNavigationFailedError`, `NimbusBrowserTimeoutError`,
 * `NimbusBrowserEvaluationFailedError`, `NimbusBrowserPageCrashedError`,
 * `NimbusBrowserUnavailableError`.
 */

import type { Query, Transport } from "./transport.js";
import type {
  BrowserViewport,
  PageActionResult,
  PageClosed,
  PageElement,
  PageEvaluation,
  PageInfo,
  PageNavigation,
  PageSelection,
  PageSnapshot,
  PageText,
  PageWaitUntil,
  StorageState,
} from "./compute-types.js";

/**
 * What every operation on a page names: the session, its tenant, the page (default: the first)
 * and how long the operation may take.
 */
export interface PageCall {
  /** The session's id (`session-<ULID>`). */
  id: string;
  tenantId?: string;
  /** A page of the session (`PageInfo.pageId`); default the session's first page still open. */
  pageId?: string;
  /** Milliseconds the operation may take (default 30000, at most 120000): then `NimbusBrowserTimeoutError`. */
  timeoutMs?: number;
}

/** No element: the operation acts on the whole page. */
type WholePage = { ref?: undefined; selector?: undefined };

export class SessionPage {
  constructor(private readonly transport: Transport) {}

  /**
   * Opens a new page in the session's browser context: blank without `url`, else navigated to
   * it (waiting as {@link SessionPage.goto} does). At most 32 pages per session.
   */
  async open(options: {
    id: string;
    tenantId?: string;
    url?: string;
    /** Default: the session's viewport. */
    viewport?: BrowserViewport;
    waitUntil?: PageWaitUntil;
    timeoutMs?: number;
  }): Promise<PageInfo> {
    const { url, viewport, waitUntil, timeoutMs } = options;
    return this.call<PageInfo>("open", options, { url, viewport, waitUntil, timeoutMs });
  }

  /**
   * Navigates the page to `url` and waits for `waitUntil` (default `load`), at most `timeoutMs`
   * (default 30000, at most 120000). A URL that does not load rejects with
   * `NimbusBrowserNavigationFailedError` (`detail.reason` is Chromium's, e.g.
   * `net::ERR_NAME_NOT_RESOLVED`, or `egress_refused: <reason>` when the sandbox's egress proxy
   * answered itself, e.g. `egress_refused: not_allowed` for a host the service's rules do not
   * allow); an HTTP error status is an answer, with its `status`.
   */
  async goto(options: PageCall & { url: string; waitUntil?: PageWaitUntil }): Promise<PageNavigation> {
    const { pageId, url, waitUntil, timeoutMs } = options;
    return this.call<PageNavigation>("goto", options, { pageId, url, waitUntil, timeoutMs });
  }

  /**
   * The page's accessibility tree as indented text, one element per line with its role, name,
   * states and a ref (`- button "Sign in" [ref=e17]`) that {@link SessionPage.click} and the
   * other element operations take.
   */
  async snapshot(options: PageCall): Promise<PageSnapshot> {
    const { pageId, timeoutMs } = options;
    return this.call<PageSnapshot>("snapshot", options, { pageId, timeoutMs });
  }

  /**
   * Scrolls the element into view and clicks its centre with real mouse events. A click that
   * starts a navigation resolves once the navigation has committed.
   */
  async click(options: PageCall & PageElement): Promise<PageActionResult> {
    const { pageId, ref, selector, timeoutMs } = options;
    return this.call<PageActionResult>("click", options, { pageId, ref, selector, timeoutMs });
  }

  /** Focuses the element and inserts `text` as typed input; `submit` presses Enter after it. */
  async type(
    options: PageCall & PageElement & { text: string; submit?: boolean },
  ): Promise<PageActionResult> {
    const { pageId, ref, selector, text, submit, timeoutMs } = options;
    return this.call<PageActionResult>("type", options, { pageId, ref, selector, text, submit, timeoutMs });
  }

  /**
   * Presses a key: a name (`Enter`, `Tab`, `Escape`, `Backspace`, `ArrowDown`, `F5`, …) or one
   * character (`a`, `/`), optionally after modifiers (`Control+a`, `Shift+Tab`), in the element
   * `ref` or `selector` names (focused first) or wherever the focus is.
   */
  async press(options: PageCall & (PageElement | WholePage) & { key: string }): Promise<PageActionResult> {
    const { pageId, ref, selector, key, timeoutMs } = options;
    return this.call<PageActionResult>("press", options, { pageId, ref, selector, key, timeoutMs });
  }

  /**
   * Selects the options of a `<select>` whose values (or labels) are `values`, firing `input`
   * and `change`; resolves with the values now selected.
   */
  async select(options: PageCall & PageElement & { values: string[] }): Promise<PageSelection> {
    const { pageId, ref, selector, values, timeoutMs } = options;
    return this.call<PageSelection>("select", options, { pageId, ref, selector, values, timeoutMs });
  }

  /**
   * Evaluates a JavaScript expression in the page (awaited when it is a promise; top-level
   * `await` allowed) and returns its value as JSON (`undefined` becomes `null`). A throw, or a
   * value that is not JSON, rejects with `NimbusBrowserEvaluationFailedError`.
   */
  async evaluate<T = unknown>(options: PageCall & { expression: string }): Promise<PageEvaluation<T>> {
    const { pageId, expression, timeoutMs } = options;
    return this.call<PageEvaluation<T>>("evaluate", options, { pageId, expression, timeoutMs });
  }

  /** The rendered text (`innerText`) of the element `ref` or `selector` names, else of the page. */
  async text(options: PageCall & (PageElement | WholePage)): Promise<PageText> {
    const { pageId, ref, selector, timeoutMs } = options;
    return this.call<PageText>("text", options, { pageId, ref, selector, timeoutMs });
  }

  /** A PNG of the viewport, or of the whole page with `fullPage`. */
  async screenshot(options: PageCall & { fullPage?: boolean }): Promise<Uint8Array> {
    const { pageId, fullPage, timeoutMs } = options;
    return this.binary("screenshot", options, { pageId, fullPage, timeoutMs });
  }

  /** The page printed as a PDF. */
  async pdf(options: PageCall & { landscape?: boolean; printBackground?: boolean }): Promise<Uint8Array> {
    const { pageId, landscape, printBackground, timeoutMs } = options;
    return this.binary("pdf", options, { pageId, landscape, printBackground, timeoutMs });
  }

  /** The session's open pages, in opening order (pages a `cdp` client opened included). */
  async pages(options: { id: string; tenantId?: string }): Promise<PageInfo[]> {
    const answer = await this.call<{ pages: PageInfo[] }>("pages", options, {});
    return answer.pages;
  }

  /** Closes a page (default the first page still open); the session and its context stay. */
  async close(options: PageCall): Promise<PageClosed> {
    const { pageId, timeoutMs } = options;
    return this.call<PageClosed>("close", options, { pageId, timeoutMs });
  }

  /**
   * The session's cookies and local storage in Playwright's `storageState` shape, which a new
   * session restores with `sessions.open({ …, browser: { storageState } })`.
   */
  async storageState(options: { id: string; tenantId?: string; timeoutMs?: number }): Promise<StorageState> {
    return this.call<StorageState>("storageState", options, { timeoutMs: options.timeoutMs });
  }

  private call<T>(operation: string, at: { id: string; tenantId?: string }, body: Record<string, unknown>): Promise<T> {
    return this.transport.json<T>("POST", this.path(at.id, operation), { query: this.tenant(at.tenantId), body });
  }

  private binary(operation: string, at: { id: string; tenantId?: string }, body: Record<string, unknown>): Promise<Uint8Array> {
    return this.transport.bytes("POST", this.path(at.id, operation), { query: this.tenant(at.tenantId), body });
  }

  /** `/api/sessions/{id}/page/{operation}`. */
  private path(id: string, operation: string): string {
    return this.transport.path("api", "sessions", id, "page", operation);
  }

  /** `tenantId` for the query: the call's, else the client's default, else none (as every session route). */
  private tenant(tenantId: string | undefined): Query {
    return { tenantId: tenantId ?? this.transport.defaultTenantId };
  }
}

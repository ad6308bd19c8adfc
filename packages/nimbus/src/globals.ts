// `@nimbus/nimbus/globals` (types only): the globals of a Nimbus function isolate (functions
// contract §4 "Logging" and §6), for authoring projects that compile without the DOM and Node
// libraries, so that `fetch`, `process`, `require` and file APIs fail to type-check as they fail
// to exist at run time. Use it with `"lib": ["ES2023"]` and `"types": ["@nimbus/nimbus/globals"]`.
// Compiled by tsconfig.globals.json, apart from the SDK (whose Node types declare these too).

export {};

declare global {
  /** Lines go to the server log, tagged with tenant, function and request id. */
  interface Console {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
    debug(...data: unknown[]): void;
  }
  var console: Console;

  interface TextEncoder {
    readonly encoding: string;
    encode(input?: string): Uint8Array;
  }
  var TextEncoder: {
    prototype: TextEncoder;
    new (): TextEncoder;
  };

  interface TextDecoder {
    readonly encoding: string;
    readonly fatal: boolean;
    readonly ignoreBOM: boolean;
    decode(input?: ArrayBuffer | ArrayBufferView, options?: { stream?: boolean }): string;
  }
  var TextDecoder: {
    prototype: TextDecoder;
    new (label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean }): TextDecoder;
  };

  function structuredClone<T>(value: T): T;
  function queueMicrotask(callback: () => void): void;

  /** Actions only: absent while a query or mutation runs. */
  function setTimeout(handler: (...args: any[]) => void, timeout?: number, ...args: any[]): number;
  /** Actions only. */
  function clearTimeout(id: number | undefined): void;
}

/**
 * `nimbus.images`: the server-wide OCI image store (docs/images.md), under `/api/images`. Not
 * tenant-scoped.
 */

import type { Transport } from "./transport.js";
import type { Image } from "./compute-types.js";

export class Images {
  constructor(private readonly transport: Transport) {}

  /**
   * Imports an OCI image layout or docker archive tar (optionally gzip-compressed), streamed as
   * the request body. `reference` names an image the archive leaves unnamed. Importing an image
   * already stored returns it (adding any new names).
   */
  async import(options: { archive: Uint8Array | ReadableStream<Uint8Array>; reference?: string }): Promise<Image[]> {
    const path = this.transport.path("api", "images", "import");
    const answer = await this.transport.json<{ images: Image[] }>("POST", path, {
      query: { reference: options.reference },
      rawBody: options.archive,
      headers: { "content-type": "application/x-tar" },
    });
    return answer.images;
  }

  /** Every stored image. */
  async list(): Promise<Image[]> {
    const answer = await this.transport.json<{ items: Image[] }>("GET", this.transport.path("api", "images"));
    return answer.items;
  }
}

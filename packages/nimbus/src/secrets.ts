/**
 * `nimbus.secrets`: a tenant's write-only secrets, which the egress proxy adds to a sandbox's
 * requests as headers (docs/networking.md, "Tenant secrets"), under
 * `/api/tenants/{tenant}/secrets`. No answer ever carries a value back.
 */

import type { Transport } from "./transport.js";
import type { Timestamp } from "./compute-types.js";

/** A secret as the server shows it: its name and times, never its value. */
export interface Secret {
  name: string;
  createdAt: Timestamp;
  /** When the value was last stored (its creation, or the last `put` that replaced it). */
  updatedAt: Timestamp;
}

export class Secrets {
  constructor(private readonly transport: Transport) {}

  /**
   * Stores `value` under `name`, creating the secret or replacing its value (the server answers
   * 201 or 200; either way the secret is returned, without its value). Names are 1–64 characters
   * of `A–Z a–z 0–9 _ . -` starting with a letter or digit; values 1–8192 bytes of text without
   * control characters (`NimbusInvalidInputError` naming `name` or `value` otherwise). A tenant
   * holds at most 100 secrets (`NimbusCapExceededError`).
   */
  async put(options: { tenantId?: string; name: string; value: string }): Promise<Secret> {
    const { tenantId, name, value } = options;
    return this.transport.json<Secret>("PUT", this.path(tenantId, name), { body: { value } });
  }

  /** The tenant's secrets, sorted by name. */
  async list(options: { tenantId?: string } = {}): Promise<Secret[]> {
    const answer = await this.transport.json<{ items: Secret[] }>("GET", this.path(options.tenantId));
    return answer.items;
  }

  /** Deletes a secret (`NimbusNotFoundError` when there is none of that name). */
  async delete(options: { tenantId?: string; name: string }): Promise<void> {
    await this.transport.json<void>("DELETE", this.path(options.tenantId, options.name));
  }

  private path(tenantId: string | undefined, ...rest: string[]): string {
    return this.transport.tenantPath(tenantId, "secrets", ...rest);
  }
}

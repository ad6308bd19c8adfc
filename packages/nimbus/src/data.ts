// The data namespaces: tenants, documents, queries and paginated queries, schemas (with their
// indexes and access policies) and the change journal. One method per route of docs/data.md;
// results are the server's wire shapes.

import type { Transport } from "./transport.js";
import type {
  AccessPolicy,
  Doc,
  Fields,
  IndexDefinition,
  JournalBootstrap,
  JournalPage,
  Page,
  QuerySpec,
  SchemaField,
  TableSchema,
  TenantScoped,
} from "./types.js";

/** `nimbus.tenants`: isolated storage namespaces (not tenant-scoped themselves). */
export class Tenants {
  constructor(private readonly transport: Transport) {}

  /** Creates a tenant (`op.already_exists` if the id is taken). */
  async create(args: { id: string }): Promise<{ id: string }> {
    return this.transport.json("POST", this.transport.path("api", "tenants"), { body: { id: args.id } });
  }

  /** Every tenant id, in byte order. */
  async list(): Promise<string[]> {
    const answer = await this.transport.json<{ tenants: string[] }>("GET", this.transport.path("api", "tenants"));
    return answer.tenants;
  }

  /** Deletes a tenant and all its data; resolves once the files are gone. */
  async delete(args: { id: string }): Promise<void> {
    await this.transport.json("DELETE", this.transport.path("api", "tenants", args.id));
  }
}

/** `nimbus.documents`: single-document reads and writes. */
export class Documents {
  constructor(private readonly transport: Transport) {}

  /** Inserts a document; the server mints its id. */
  async insert(args: TenantScoped & { table: string; fields: Fields }): Promise<{ id: string }> {
    return this.transport.json("POST", this.transport.tenantPath(args.tenantId, "documents"), {
      body: { table: args.table, fields: args.fields },
    });
  }

  /** One document (`op.document_not_found` when absent). */
  async get<T extends Fields = Fields>(args: TenantScoped & { table: string; id: string }): Promise<Doc<T>> {
    const answer = await this.transport.json<{ document: Doc<T> }>(
      "GET",
      this.transport.tenantPath(args.tenantId, "documents", args.table, args.id),
    );
    return answer.document;
  }

  /** Shallow-merges `patch` into the document (a `null` value stores `null`). */
  async patch(args: TenantScoped & { table: string; id: string; patch: Fields }): Promise<{ id: string }> {
    return this.transport.json("PATCH", this.transport.tenantPath(args.tenantId, "documents", args.table, args.id), {
      body: { patch: args.patch },
    });
  }

  /** Deletes the document (`op.document_not_found` when absent). */
  async delete(args: TenantScoped & { table: string; id: string }): Promise<void> {
    await this.transport.json("DELETE", this.transport.tenantPath(args.tenantId, "documents", args.table, args.id));
  }

  /**
   * A table's documents in `_id` (creation) order. Without `limit`, every document after
   * `cursor`; with it (1..1000), one page: continue with `cursor: page.next_cursor`.
   */
  async list<T extends Fields = Fields>(args: TenantScoped & { table: string; limit?: number; cursor?: string }): Promise<Page<T>> {
    return this.transport.json("GET", this.transport.tenantPath(args.tenantId, "documents", args.table), {
      query: { limit: args.limit, cursor: args.cursor },
    });
  }
}

/** A query as sent: `filters` defaults to `[]`, absent `order` and `limit` are left out. */
export function queryBody(query: QuerySpec): QuerySpec {
  const body: QuerySpec = { table: query.table, filters: query.filters ?? [] };
  if (query.order !== undefined) body.order = query.order;
  if (query.limit !== undefined) body.limit = query.limit;
  return body;
}

/** `nimbus.query(…)`: every matching document, filtered, ordered and limited by the server. */
export async function runQuery<T extends Fields = Fields>(transport: Transport, args: TenantScoped & QuerySpec): Promise<Doc<T>[]> {
  const answer = await transport.json<{ data: Doc<T>[] }>("POST", transport.tenantPath(args.tenantId, "query"), {
    body: queryBody(args),
  });
  return answer.data;
}

/** The arguments of a paginated query. */
export interface PaginateArgs extends TenantScoped {
  query: QuerySpec;
  /** 1..1000 (larger values are clamped to 1000). */
  pageSize: number;
  /** The previous page's `next_cursor`; absent or `null` for the first page. */
  after?: string | null;
}

/** `nimbus.paginate(…)`: one keyset page of a query. */
export async function runPaginate<T extends Fields = Fields>(transport: Transport, args: PaginateArgs): Promise<Page<T>> {
  return transport.json("POST", transport.tenantPath(args.tenantId, "query", "paginated"), {
    body: { query: queryBody(args.query), page_size: args.pageSize, after: args.after ?? null },
  });
}

/** `nimbus.paginateAll(…)`: every document of a query, fetched page by page as the loop asks. */
export async function* runPaginateAll<T extends Fields = Fields>(
  transport: Transport,
  args: Omit<PaginateArgs, "after">,
): AsyncGenerator<Doc<T>> {
  let after: string | null = null;
  for (;;) {
    const page: Page<T> = await runPaginate<T>(transport, { ...args, after });
    yield* page.data;
    if (!page.has_more || page.next_cursor === null) return;
    after = page.next_cursor;
  }
}

/** A schema to store with `schemas.put`. */
export interface SchemaDefinition {
  fields: SchemaField[];
  indexes?: IndexDefinition[];
  accessPolicy?: AccessPolicy | null;
}

/** `nimbus.schemas`: optional per-table schemas with their indexes and access policies. */
export class Schemas {
  constructor(private readonly transport: Transport) {}

  /** Every table's schema, by table name. */
  async list(args: TenantScoped = {}): Promise<Record<string, TableSchema>> {
    const answer = await this.transport.json<{ tables: Record<string, TableSchema> }>("GET", this.transport.tenantPath(args.tenantId, "schema"));
    return answer.tables;
  }

  /** One table's schema (`op.schema_not_found` when it has none). */
  async get(args: TenantScoped & { table: string }): Promise<TableSchema> {
    return this.transport.json("GET", this.transport.tenantPath(args.tenantId, "schema", args.table));
  }

  /**
   * Stores a table's schema, validating every existing document against it and rebuilding its
   * indexes, in one transaction (422 `op.schema_validation` and nothing changes on a violation).
   */
  async put(args: TenantScoped & { table: string } & SchemaDefinition): Promise<void> {
    await this.transport.json("PUT", this.transport.tenantPath(args.tenantId, "schema", args.table), {
      body: { table: args.table, fields: args.fields, indexes: args.indexes ?? [], access_policy: args.accessPolicy ?? null },
    });
  }

  /** Removes the schema, its indexes and its access policy; the documents stay. */
  async delete(args: TenantScoped & { table: string }): Promise<void> {
    await this.transport.json("DELETE", this.transport.tenantPath(args.tenantId, "schema", args.table));
  }
}

/** `nimbus.journal`: every committed write, in order, and a consistent snapshot to start from. */
export class Journal {
  constructor(private readonly transport: Transport) {}

  /** The records with `sequence > after` (default 0), oldest first; `limit` 1..1000, default 100. */
  async read(args: TenantScoped & { after?: number; limit?: number } = {}): Promise<JournalPage> {
    return this.transport.json("GET", this.transport.tenantPath(args.tenantId, "journal"), {
      query: { after: args.after, limit: args.limit },
    });
  }

  /** One consistent snapshot of the tenant and the sequence to resume the journal after. */
  async bootstrap(args: TenantScoped = {}): Promise<JournalBootstrap> {
    return this.transport.json("GET", this.transport.tenantPath(args.tenantId, "journal", "bootstrap"));
  }
}

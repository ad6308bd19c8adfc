// Data-side types: documents, queries, schemas, the journal, scheduling and functions. They are
// the server's wire shapes, field for field (snake_case, as the HTTP API documents them), so
// docs/data.md and docs/scheduling.md describe what these methods return.

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A document's user fields. */
export type Fields = Record<string, unknown>;

/** The system fields every document carries, first. */
export interface SystemFields {
  /** Server-minted lowercase ULID. */
  _id: string;
  /** Commit time of the insert, epoch ms. */
  _creationTime: number;
  /** Commit time of the last write, epoch ms. */
  _updateTime: number;
}

/** A document in wire form: system fields, then the user's fields. */
export type Doc<T extends Fields = Fields> = SystemFields & T;

/** Every call that works inside a tenant accepts its own tenant (else the client's default). */
export interface TenantScoped {
  tenantId?: string;
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

/** A filter operator (docs/data.md, Operators). */
export type FilterOp = "eq" | "neq" | "gt" | "gte" | "lt" | "lte" | "in";

/** One filter; all filters of a query are ANDed. `field` may be a dot path (`owner.team`). */
export interface Filter {
  field: string;
  op: FilterOp;
  value: unknown;
}

/** The order of a query's results; the default is `_id` ascending. */
export interface Order {
  field: string;
  direction: "asc" | "desc";
}

/** A query: the body of `POST /api/tenants/{t}/query`, and of a live subscription. */
export interface QuerySpec {
  table: string;
  /** Defaults to `[]` (every document). */
  filters?: Filter[];
  order?: Order | null;
  /** `0` returns nothing; absent returns every match. */
  limit?: number | null;
}

/** One page of a list or a paginated query. `next_cursor` is a string exactly when `has_more`. */
export interface Page<T extends Fields = Fields> {
  data: Doc<T>[];
  next_cursor: string | null;
  has_more: boolean;
}

// ---------------------------------------------------------------------------------------------
// Schemas, indexes and access policies
// ---------------------------------------------------------------------------------------------

export type FieldType = "string" | "number" | "boolean" | "array" | "object" | "any";

export interface SchemaField {
  name: string;
  field_type: FieldType;
  required: boolean;
}

/** An index: fields most significant first. */
export interface IndexDefinition {
  name: string;
  fields: string[];
}

/** A policy operand, tagged by `source`. */
export type PolicyOperand =
  | { source: "literal"; value: unknown }
  | { source: "principal_claim"; principal: "identity" | "verified_identity"; claim: string }
  | { source: "document_field"; field: string }
  | { source: "existing_document_field"; field: string };

export interface PolicyPredicate {
  left: PolicyOperand;
  op: "eq" | "neq" | "gt" | "gte" | "lt" | "lte";
  right: PolicyOperand;
}

export interface PolicyRule {
  require_authenticated: boolean;
  predicates: PolicyPredicate[];
}

/** One rule per operation, all four required. */
export interface AccessPolicy {
  read: PolicyRule;
  create: PolicyRule;
  update: PolicyRule;
  delete: PolicyRule;
}

/** A table's schema as stored (`access_policy` is `null` when there is none). */
export interface TableSchema {
  table: string;
  fields: SchemaField[];
  indexes: IndexDefinition[];
  access_policy: AccessPolicy | null;
}

// ---------------------------------------------------------------------------------------------
// Journal
// ---------------------------------------------------------------------------------------------

export interface JournalWrite {
  table: string;
  op_type: "insert" | "update" | "delete";
  doc_id: string;
  previous: Doc | null;
  current: Doc | null;
}

/** One committed transaction. */
export interface JournalRecord {
  version: number;
  sequence: number;
  timestamp: number;
  writes: JournalWrite[];
  scheduled_execution_id: string | null;
  /** SHA-256 of the record's MessagePack encoding, as 32 integers. */
  integrity_sha256: number[];
}

export interface JournalPage {
  records: JournalRecord[];
  next_cursor: number;
  latest_sequence: number;
  cursor_floor: number;
  has_more: boolean;
}

/** A document in the snapshot's storage form. */
export interface StoredDocument {
  id: string;
  table: string;
  creation_time: number;
  update_time: number;
  fields: Fields;
}

export interface JournalBootstrap {
  snapshot: {
    version: number;
    applied_sequence: number;
    durable_head: number;
    schema: { tables: Record<string, TableSchema> };
    documents: StoredDocument[];
    scheduled_execution_ids: string[];
  };
  resume_after_sequence: number;
  bootstrap_cut_sequence: number;
  cursor_floor_sequence: number;
}

// ---------------------------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------------------------

/** What a job or cron runs: a data write, or (with functions) a function. */
export type JobTarget =
  | { type: "insert"; table: string; fields: Fields; id?: string | null }
  | { type: "update"; table: string; id: string; patch: Fields }
  | { type: "delete"; table: string; id: string }
  | { type: "function"; name: string; args?: Record<string, unknown> };

export type JobState = "pending" | "running" | "completed" | "failed" | "cancelled";

/** A pending job, as listed. */
export interface ScheduledJob {
  id: string;
  run_at: number;
  mutation: JobTarget;
  created_at: number;
}

/** A job in any state. */
export interface JobStatus {
  id: string;
  state: JobState;
  run_at: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  attempts: number;
  mutation: JobTarget;
  error: string | null;
  error_code: string | null;
  value: unknown;
}

/** A finished (or cancelled) job's result. */
export interface JobResult {
  id: string;
  run_at: number;
  finished_at: number | null;
  mutation: JobTarget;
  outcome: JobState;
  error: string | null;
  error_code: string | null;
  value: unknown;
}

/** When a cron fires: every N seconds, or on a cron expression in an IANA zone (default UTC). */
export type CronSchedule = { type: "interval"; seconds: number } | { type: "cron"; expression: string; timezone?: string };

export interface Cron {
  name: string;
  schedule: CronSchedule;
  mutation: JobTarget;
  enabled: boolean;
  last_run: number | null;
  /** `null` while disabled. */
  next_run: number | null;
  created_at: number;
}

export interface CronRun {
  run_id: string;
  scheduled_at: number;
  started_at: number;
  finished_at: number | null;
  outcome: "completed" | "failed" | "skipped" | string;
  error: string | null;
  error_code: string | null;
}

// ---------------------------------------------------------------------------------------------
// Functions (docs/functions.md)
// ---------------------------------------------------------------------------------------------

/** One deployed function: `<module path without extension>:<export name>`. */
export interface FunctionInfo {
  name: string;
  kind: "query" | "mutation" | "action";
  visibility: "public" | "internal";
}

/** A tenant's function set (`version: 0`, `deployedAt: null` before the first deploy). */
export interface FunctionSet {
  version: number;
  /** RFC 3339, or `null` before the first deploy. */
  deployedAt: string | null;
  /** Sorted by name. */
  functions: FunctionInfo[];
}

/** A pending job or cron whose function the deployed (or dry-run) set no longer has. */
export interface DeployWarning {
  kind: "scheduled_function_missing" | (string & {});
  name: string;
  count: number;
}

/** The answer of a deploy; with `dryRun`, `version` is the one the deploy would get. */
export interface DeployResult extends FunctionSet {
  warnings: DeployWarning[];
}

// ---------------------------------------------------------------------------------------------
// System
// ---------------------------------------------------------------------------------------------

export interface Capability {
  area: string;
  capability: string;
  status: "available" | "available_with_caveats" | "not_yet";
  notes?: string;
}

export interface Capabilities {
  version: string;
  capabilities: Capability[];
  host: Record<string, unknown>;
}

/** One code of `GET /errors`. */
export interface CatalogEntry {
  code: string;
  httpStatus: number | null;
  severity: "fatal" | "error" | "warning";
  retryable: boolean;
  remediation: { action: string; message: string } | null;
  detail: Record<string, string> | null;
  meaning: string;
  surface: "http" | "ws" | "both";
  reserved: boolean;
  since: string;
}

export interface ErrorCatalog {
  version: string;
  codes: CatalogEntry[];
}

// `@nimbus/nimbus/server`: the function authoring API (functions contract §4 and §10) as types:
// the builders (`query`, `mutation`, `action`, `internal*`, `paginatedQuery`), `ctx` per kind,
// `v`, `NimbusError`, `ConvexError`, `defineSchema`/`defineTable` and pagination. The real
// implementations exist only inside a Nimbus function isolate, where the server provides this
// module (also under the alias `nimbus/server`); importing it anywhere else throws at once.

import { insideFunctionsOnly } from "./authoring-stub.js";
import type { GenericValidator, Id, Infer, ObjectType, PropertyValidators, Validator, VObject, Value } from "./values.js";

export { v, ConvexError } from "./values.js";
export type {
  ConvexErrorConstructor,
  GenericId,
  GenericValidator,
  Id,
  Infer,
  ObjectType,
  OptionalProperty,
  PropertyValidators,
  Validator,
  ValidatorBuilder,
  Value,
  VAny,
  VArray,
  VBoolean,
  VFloat64,
  VId,
  VLiteral,
  VNull,
  VObject,
  VOptional,
  VRecord,
  VString,
  VUnion,
} from "./values.js";

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

/** The system fields every stored document carries (data contract §2). */
export interface SystemFields<TableName extends string = string> {
  _id: Id<TableName>;
  /** Epoch ms. */
  _creationTime: number;
  /** Epoch ms of the last commit that wrote it. */
  _updateTime: number;
}

/** A stored document of `TableName`, in its wire form: system fields and any user fields. */
export type Doc<TableName extends string = string> = SystemFields<TableName> & { [field: string]: any };
/** Any stored document. */
export type GenericDocument = Doc;

/** User fields to write (no `_`-prefixed system fields). Interfaces are accepted. */
export type WithoutSystemFields = { [field: string]: any };

// ---------------------------------------------------------------------------------------------
// Reading: queries, filters, indexes, pagination
// ---------------------------------------------------------------------------------------------

/** The operators of `.filter(field, op, value)`, as in HTTP queries (data contract §3). */
export type FilterOp = "eq" | "neq" | "gt" | "gte" | "lt" | "lte" | "in";

/** An expression of `.filter((q) => …)`; built by the `FilterBuilder` only. */
export interface Expression<T> {
  /** Types only. */
  readonly __expressionType?: T;
  readonly __isExpression: true;
}

/** An expression or a plain value. */
export type ExpressionOrValue<T extends Value | undefined> = Expression<T> | T;

/**
 * The `q` of `.filter((q) => …)`. A string first operand of a comparison names a field
 * (`q.eq("author", "Ada")` is `q.eq(q.field("author"), "Ada")`); a document lacking the field
 * matches no comparison.
 */
export interface FilterBuilder {
  /** The value of a field (a dot path reaches into nested objects). */
  field(fieldPath: string): Expression<any>;
  eq(left: ExpressionOrValue<Value | undefined>, right: ExpressionOrValue<Value | undefined>): Expression<boolean>;
  neq(left: ExpressionOrValue<Value | undefined>, right: ExpressionOrValue<Value | undefined>): Expression<boolean>;
  gt(left: ExpressionOrValue<Value | undefined>, right: ExpressionOrValue<Value | undefined>): Expression<boolean>;
  gte(left: ExpressionOrValue<Value | undefined>, right: ExpressionOrValue<Value | undefined>): Expression<boolean>;
  lt(left: ExpressionOrValue<Value | undefined>, right: ExpressionOrValue<Value | undefined>): Expression<boolean>;
  lte(left: ExpressionOrValue<Value | undefined>, right: ExpressionOrValue<Value | undefined>): Expression<boolean>;
  and(...exprs: ExpressionOrValue<boolean>[]): Expression<boolean>;
  or(...exprs: ExpressionOrValue<boolean>[]): Expression<boolean>;
  not(expr: ExpressionOrValue<boolean>): Expression<boolean>;
}

/** What a `.withIndex` range callback returns. */
export interface IndexRange {
  /** Types only. */
  readonly __isIndexRange?: true;
}

/** After a lower bound (`gt`/`gte`): an optional upper bound. */
export interface UpperBoundIndexRangeBuilder extends IndexRange {
  lt(fieldName: string, value: Value): IndexRange;
  lte(fieldName: string, value: Value): IndexRange;
}

/** After a lower bound: an optional upper bound. */
export interface LowerBoundIndexRangeBuilder extends UpperBoundIndexRangeBuilder {
  gt(fieldName: string, value: Value): UpperBoundIndexRangeBuilder;
  gte(fieldName: string, value: Value): UpperBoundIndexRangeBuilder;
}

/**
 * The `q` of `.withIndex(name, (q) => …)`: equality on a prefix of the index's fields, in
 * order, then at most one range on the next field.
 */
export interface IndexRangeBuilder extends LowerBoundIndexRangeBuilder {
  eq(fieldName: string, value: Value): IndexRangeBuilder;
}

/** `{numItems, cursor}` (`cursor: null` for the first page), as `.paginate` takes. */
export interface PaginationOptions {
  numItems: number;
  cursor: string | null;
  maximumRowsRead?: number;
  maximumBytesRead?: number;
}

/** One page of `.paginate`. */
export interface PaginationResult<T> {
  page: T[];
  isDone: boolean;
  /** Pass as `cursor` for the next page. */
  continueCursor: string;
  pageStatus?: "SplitRecommended" | "SplitRequired" | null;
}

/** Validates `PaginationOptions`: `args: { paginationOpts: paginationOptsValidator, … }`. */
export const paginationOptsValidator: VObject<
  PaginationOptions,
  {
    numItems: Validator<number>;
    cursor: Validator<string | null>;
    maximumRowsRead: Validator<number | undefined, "optional">;
    maximumBytesRead: Validator<number | undefined, "optional">;
  }
> = insideFunctionsOnly();

/**
 * A query over one table: filter (repeatable, ANDed), order, then one terminal. Also an async
 * iterable of its documents (`for await (const doc of ctx.db.query("t"))`).
 */
export interface Query<TableName extends string = string> extends AsyncIterable<Doc<TableName>> {
  /** Keeps documents whose `field` compares to `value` by `op` (HTTP query semantics). */
  filter(field: string, op: FilterOp, value: Value): Query<TableName>;
  /** Keeps documents for which the predicate holds. */
  filter(predicate: (q: FilterBuilder) => ExpressionOrValue<boolean>): Query<TableName>;
  /** Orders by `field` (default `_id`); ties by `_id` ascending. */
  order(order: "asc" | "desc", field?: string): Query<TableName>;
  collect(): Promise<Doc<TableName>[]>;
  take(n: number): Promise<Doc<TableName>[]>;
  first(): Promise<Doc<TableName> | null>;
  /** `null` when nothing matches; throws when more than one document does. */
  unique(): Promise<Doc<TableName> | null>;
  paginate(options: PaginationOptions): Promise<PaginationResult<Doc<TableName>>>;
}

/** `ctx.db.query(table)`: a query that may first pick a named index of the table's schema. */
export interface QueryInitializer<TableName extends string = string> extends Query<TableName> {
  /** Reads through the schema index `indexName` (unknown → `op.invalid_input`). */
  withIndex(indexName: string, range?: (q: IndexRangeBuilder) => IndexRange): Query<TableName>;
}

/** `ctx.db` of queries: reads from one consistent snapshot. */
export interface DatabaseReader {
  /** The document, or `null`. */
  get<TableName extends string>(table: TableName, id: string): Promise<Doc<TableName> | null>;
  /** The document with this id (ids are unique per tenant), or `null`. */
  get<TableName extends string = string>(id: Id<TableName> | string): Promise<Doc<TableName> | null>;
  query<TableName extends string>(table: TableName): QueryInitializer<TableName>;
}

/** `ctx.db` of mutations: reads see this mutation's own earlier writes. */
export interface DatabaseWriter extends DatabaseReader {
  /** Inserts a document and resolves to its new id. */
  insert<TableName extends string>(table: TableName, fields: WithoutSystemFields): Promise<Id<TableName>>;
  /** Shallow-merges `fields` into the document (as HTTP PATCH). */
  patch(table: string, id: string, fields: WithoutSystemFields): Promise<void>;
  patch(id: string, fields: WithoutSystemFields): Promise<void>;
  /** Replaces all user fields; `_id` and `_creationTime` stay. */
  replace(table: string, id: string, fields: WithoutSystemFields): Promise<void>;
  replace(id: string, fields: WithoutSystemFields): Promise<void>;
  delete(table: string, id: string): Promise<void>;
  delete(id: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// ctx
// ---------------------------------------------------------------------------------------------

/** Function arguments: a JSON object. */
export type DefaultFunctionArgs = Record<string, any>;

/**
 * `ctx.scheduler`. Targets are mutations or actions (internal ones too). From a mutation, jobs
 * exist only if it commits; from an action they are created at once.
 */
export interface Scheduler {
  /** Runs `name` after `delayMs`; resolves to the job id. */
  runAfter(delayMs: number, name: string, args?: DefaultFunctionArgs): Promise<string>;
  /** Runs `name` at `timestamp` (epoch ms or a `Date`); resolves to the job id. */
  runAt(timestamp: number | Date, name: string, args?: DefaultFunctionArgs): Promise<string>;
  cancel(jobId: string): Promise<void>;
}

/** `ctx.auth`: calls carry the admin token, never an end-user identity, in this version. */
export interface Auth {
  getUserIdentity(): Promise<null>;
}

export interface QueryCtx {
  db: DatabaseReader;
  auth: Auth;
}

export interface MutationCtx {
  db: DatabaseWriter;
  auth: Auth;
  scheduler: Scheduler;
}

export interface ActionCtx {
  auth: Auth;
  scheduler: Scheduler;
  /** Runs the query `name` as its own invocation and resolves to its value. */
  runQuery<T = any>(name: string, args?: DefaultFunctionArgs): Promise<T>;
  /** Runs the mutation `name` as its own transaction and resolves to its value. */
  runMutation<T = any>(name: string, args?: DefaultFunctionArgs): Promise<T>;
  /** Runs the action `name` and resolves to its value. */
  runAction<T = any>(name: string, args?: DefaultFunctionArgs): Promise<T>;
}

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

export type FunctionVisibility = "public" | "internal";

/** What `args` may be: an object of property validators, or an object validator. */
export type ArgsValidator = PropertyValidators | Validator<Record<string, any>, "required", any>;

/** The handler's `args` for an `args` validator (any JSON object without one). */
export type ArgsType<A extends ArgsValidator | undefined> = [A] extends [undefined]
  ? DefaultFunctionArgs
  : A extends Validator<any, "required", any>
    ? Infer<A>
    : A extends PropertyValidators
      ? ObjectType<A>
      : never;

/** What a handler may return given a `returns` validator (anything without one). */
export type ReturnValueFor<R extends GenericValidator | undefined> = [R] extends [GenericValidator]
  ? Infer<R> | Promise<Infer<R>>
  : any;

/** The definition the builders take. `handler` may be sync or async. */
export interface FunctionDefinition<Ctx, A extends ArgsValidator | undefined, R extends GenericValidator | undefined, Out> {
  /** Validates the arguments (without it, any JSON object is accepted). */
  args?: A;
  /** Validates the return value (a mismatch fails with `function.thrown`). */
  returns?: R;
  handler: (ctx: Ctx, args: ArgsType<A>) => Out;
}

/** A query function (what `query`/`internalQuery`/`paginatedQuery` return). Opaque. */
export interface RegisteredQuery<Visibility extends FunctionVisibility, Args extends DefaultFunctionArgs, Returns> {
  /** Types only. */
  readonly __nimbusFunction?: { kind: "query"; visibility: Visibility; args: Args; returns: Returns };
}

/** A mutation function (what `mutation`/`internalMutation` return). Opaque. */
export interface RegisteredMutation<Visibility extends FunctionVisibility, Args extends DefaultFunctionArgs, Returns> {
  /** Types only. */
  readonly __nimbusFunction?: { kind: "mutation"; visibility: Visibility; args: Args; returns: Returns };
}

/** An action function (what `action`/`internalAction` return). Opaque. */
export interface RegisteredAction<Visibility extends FunctionVisibility, Args extends DefaultFunctionArgs, Returns> {
  /** Types only. */
  readonly __nimbusFunction?: { kind: "action"; visibility: Visibility; args: Args; returns: Returns };
}

export interface QueryBuilder<Visibility extends FunctionVisibility> {
  <A extends ArgsValidator | undefined = undefined, R extends GenericValidator | undefined = undefined, Out extends ReturnValueFor<R> = any>(
    definition: FunctionDefinition<QueryCtx, A, R, Out>,
  ): RegisteredQuery<Visibility, ArgsType<A>, Awaited<Out>>;
}

export interface MutationBuilder<Visibility extends FunctionVisibility> {
  <A extends ArgsValidator | undefined = undefined, R extends GenericValidator | undefined = undefined, Out extends ReturnValueFor<R> = any>(
    definition: FunctionDefinition<MutationCtx, A, R, Out>,
  ): RegisteredMutation<Visibility, ArgsType<A>, Awaited<Out>>;
}

export interface ActionBuilder<Visibility extends FunctionVisibility> {
  <A extends ArgsValidator | undefined = undefined, R extends GenericValidator | undefined = undefined, Out extends ReturnValueFor<R> = any>(
    definition: FunctionDefinition<ActionCtx, A, R, Out>,
  ): RegisteredAction<Visibility, ArgsType<A>, Awaited<Out>>;
}

/** A public query whose handler returns one page (usually `ctx.db.query(…).paginate(args.paginationOpts)`). */
export interface PaginatedQueryBuilder {
  <
    A extends ArgsValidator | undefined = undefined,
    R extends GenericValidator | undefined = undefined,
    Out extends ReturnValueFor<R> & (PaginationResult<any> | Promise<PaginationResult<any>>) = PaginationResult<any>,
  >(
    definition: FunctionDefinition<QueryCtx, A, R, Out>,
  ): RegisteredQuery<"public", ArgsType<A>, Awaited<Out>>;
}

/** A public query: reads one consistent snapshot; can be called and subscribed. */
export const query: QueryBuilder<"public"> = insideFunctionsOnly();
/** A public mutation: reads and writes in one all-or-nothing transaction. */
export const mutation: MutationBuilder<"public"> = insideFunctionsOnly();
/** A public action: no `ctx.db`; calls functions (`ctx.run*`) and schedules. */
export const action: ActionBuilder<"public"> = insideFunctionsOnly();
/** A query callable only from other functions and the scheduler. */
export const internalQuery: QueryBuilder<"internal"> = insideFunctionsOnly();
/** A mutation callable only from other functions and the scheduler. */
export const internalMutation: MutationBuilder<"internal"> = insideFunctionsOnly();
/** An action callable only from other functions and the scheduler. */
export const internalAction: ActionBuilder<"internal"> = insideFunctionsOnly();
/** A public paginated query. */
export const paginatedQuery: PaginatedQueryBuilder = insideFunctionsOnly();

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * A host failure inside a function (a failed `ctx.db` write, a nested call's error, …) with the
 * catalog `code`; uncaught, the invocation fails with that code. Authors may throw their own.
 */
export interface NimbusError extends Error {
  readonly name: "NimbusError";
  /** The catalog code, e.g. `op.schema_validation`. */
  readonly code: string;
  readonly detail: any;
}

export interface NimbusErrorConstructor {
  new (code: string, message: string, detail?: Value): NimbusError;
  readonly prototype: NimbusError;
}

export const NimbusError: NimbusErrorConstructor = insideFunctionsOnly();

// ---------------------------------------------------------------------------------------------
// Schema (the default export of `schema.ts`)
// ---------------------------------------------------------------------------------------------

/** One index of a table: its name and fields, in order. */
export interface IndexDefinition {
  name: string;
  fields: string[];
}

/** A table of `defineSchema`: its field validators and indexes. */
export interface TableDefinition<Fields extends PropertyValidators = PropertyValidators> {
  /** Types only: the document type of the table, without system fields. */
  readonly __document?: ObjectType<Fields>;
  /** Adds the index `name` over `fields` (declared fields of type string, number or boolean). */
  index<FieldName extends keyof Fields & string>(name: string, fields: [FieldName, ...FieldName[]]): TableDefinition<Fields>;
}

/** The tables of a deployment's schema (the default export of `schema.ts`). */
export interface SchemaDefinition<Tables extends Record<string, TableDefinition<any>> = Record<string, TableDefinition<any>>> {
  readonly tables: Tables;
}

export interface SchemaOptions {
  /** Validate documents against the schema (default `true`). */
  schemaValidation?: boolean;
  /** Types only, for Convex compatibility. */
  strictTableNameTypes?: boolean;
}

/** Declares a table: `defineTable({ title: v.string() }).index("by_title", ["title"])`. */
export const defineTable: <Fields extends PropertyValidators>(fields: Fields | VObject<any, Fields>) => TableDefinition<Fields> = insideFunctionsOnly();

/** The schema: `export default defineSchema({ messages: defineTable({...}) })` in `schema.ts`. */
export const defineSchema: <Tables extends Record<string, TableDefinition<any>>>(tables: Tables, options?: SchemaOptions) => SchemaDefinition<Tables> =
  insideFunctionsOnly();

/** The document type of a table definition: `DocumentOf<typeof schema.tables.messages>`. */
export type DocumentOf<T extends TableDefinition<any>> = T extends TableDefinition<infer Fields> ? ObjectType<Fields> : never;

// `@nimbus/nimbus/values`: the validators (`v`) and `ConvexError` of the function authoring API
// (functions contract §4 and §10), as types. The real implementations exist only inside a
// Nimbus function isolate, where the server provides this module; importing it anywhere else
// (Node, a browser) throws at once. Authors import it for its types and deploy the module with
// `nimbus functions deploy` (or `nimbus.functions.deploy`).

import { insideFunctionsOnly } from "./authoring-stub.js";

/**
 * A value a function can take or return: what `JSON.stringify` encodes. Object properties
 * whose value is `undefined` are left out, as `JSON.stringify` does.
 */
export type Value = null | boolean | number | string | Value[] | { [key: string]: Value | undefined };

/** `"optional"` for `v.optional(...)` (object properties only), else `"required"`. */
export type OptionalProperty = "optional" | "required";

/**
 * A validator. `type` is the TypeScript type of the values it accepts and exists for the type
 * checker only (read it with `Infer<typeof validator>`, never at run time). The third
 * parameter exists for signature compatibility with Convex's `Validator` and is unused.
 */
export interface Validator<Type, IsOptional extends OptionalProperty = "required", FieldPaths extends string = never> {
  /** Types only: the TypeScript type of the accepted values. */
  readonly type: Type;
  readonly isOptional: IsOptional;
  readonly kind: string;
  /** Types only. */
  readonly fieldPaths?: FieldPaths;
}

/** The TypeScript type a validator accepts: `Infer<typeof v.string()>` is `string`. */
export type Infer<V extends Validator<any, OptionalProperty, any>> = V["type"];

/** A document id of `TableName`: a string (branded for the type checker only). */
export type GenericId<TableName extends string> = string & { __tableName: TableName };
/** A document id of `TableName` (`v.id("messages")` accepts `Id<"messages">`). */
export type Id<TableName extends string> = GenericId<TableName>;

/** An object of property validators, as `args` and `v.object` take. */
export type PropertyValidators = Record<string, Validator<any, OptionalProperty, any>>;

type Expand<T> = T extends infer O ? { [K in keyof O]: O[K] } : never;
type OptionalKeys<F extends PropertyValidators> = {
  [K in keyof F]: F[K] extends Validator<any, "optional", any> ? K : never;
}[keyof F];
type RequiredKeys<F extends PropertyValidators> = Exclude<keyof F, OptionalKeys<F>>;

/** The object type `v.object(fields)` accepts: `v.optional` properties become optional. */
export type ObjectType<F extends PropertyValidators> = Expand<
  { [K in OptionalKeys<F>]?: Exclude<Infer<F[K]>, undefined> } & { [K in RequiredKeys<F>]: Infer<F[K]> }
>;

export interface VString<T = string, O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "string";
}
export interface VFloat64<T = number, O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "float64";
}
export interface VBoolean<T = boolean, O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "boolean";
}
export interface VNull<T = null, O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "null";
}
export interface VAny<T = any, O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "any";
}
export interface VLiteral<T, O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "literal";
  readonly value: T;
}
export interface VId<T, O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "id";
  readonly tableName: string;
}
export interface VArray<T, Element extends Validator<any, "required", any>, O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "array";
  readonly element: Element;
}
export interface VObject<T, Fields extends PropertyValidators, O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "object";
  readonly fields: Fields;
}
export interface VRecord<T, Key extends Validator<string, "required", any>, Values extends Validator<any, "required", any>, O extends OptionalProperty = "required">
  extends Validator<T, O> {
  readonly kind: "record";
  readonly key: Key;
  readonly value: Values;
}
export interface VUnion<T, Members extends Validator<any, "required", any>[], O extends OptionalProperty = "required"> extends Validator<T, O> {
  readonly kind: "union";
  readonly members: Members;
}

/** `v.optional(inner)`: the same validator, as an optional object property. */
export type VOptional<Inner extends Validator<any, "required", any>> = Validator<Inner["type"] | undefined, "optional"> & {
  readonly kind: Inner["kind"];
};

/** Any validator that may stand for a whole value (not `v.optional`). */
export type GenericValidator = Validator<any, "required", any>;

/** The validator builder. */
export interface ValidatorBuilder {
  /** A string. */
  string(): VString;
  /** A number (a JSON number: a float64). */
  number(): VFloat64;
  /** The same as `v.number()`. */
  float64(): VFloat64;
  boolean(): VBoolean;
  null(): VNull;
  /** Any value. */
  any(): VAny;
  /** Exactly `literal`. */
  literal<T extends string | number | boolean>(literal: T): VLiteral<T>;
  /** A string that is a document id of `tableName`. */
  id<TableName extends string>(tableName: TableName): VId<Id<TableName>>;
  /** An array whose every item `element` accepts. */
  array<Element extends GenericValidator>(element: Element): VArray<Element["type"][], Element>;
  /** An object with exactly these properties (unknown keys are rejected). */
  object<Fields extends PropertyValidators>(fields: Fields): VObject<ObjectType<Fields>, Fields>;
  /** An object with any keys (`keys` validates them) whose every value `values` accepts. */
  record<Key extends Validator<string, "required", any>, Values extends GenericValidator>(
    keys: Key,
    values: Values,
  ): VRecord<Record<Infer<Key>, Values["type"]>, Key, Values>;
  /** A value at least one of `members` accepts. */
  union<Members extends GenericValidator[]>(...members: Members): VUnion<Members[number]["type"], Members>;
  /** An optional object property (only inside `args` and `v.object`). */
  optional<Inner extends GenericValidator>(inner: Inner): VOptional<Inner>;
}

/** The validators: `v.string()`, `v.object({...})`, `v.optional(...)`, … */
export const v: ValidatorBuilder = insideFunctionsOnly();

/**
 * An error whose `data` reaches the caller: as `detail.data` of the failed call, and as
 * `ConvexError.data` in Convex clients.
 */
export interface ConvexError<TData extends Value> extends Error {
  readonly name: "ConvexError";
  readonly data: TData;
}

export interface ConvexErrorConstructor {
  /** `message` is `data` if it is a string, else its JSON text. */
  new <TData extends Value>(data: TData): ConvexError<TData>;
  readonly prototype: ConvexError<any>;
}

export const ConvexError: ConvexErrorConstructor = insideFunctionsOnly();

//! The data tools: tenants, documents and queries, schemas, functions, scheduled jobs.

use std::collections::BTreeMap;

use nimbus_core::limits::{MAX_PAGE_SIZE, MCP_QUERY_DEFAULT_LIMIT};
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::backend::{Backend, Body, Method, segment};
use crate::error::ToolError;
use crate::server::NimbusMcp;

/// `/api/tenants/{tenant}` with the rest of a path.
pub(crate) fn tenant_path(tenant: &str, rest: &str) -> String {
    format!("/api/tenants/{}{rest}", segment(tenant))
}

// ---------------------------------------------------------------------------------------------
// Inputs

/// No input.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoInput {}

/// A tenant.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TenantInput {
    /// The tenant id.
    pub tenant: String,
}

/// A new tenant.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TenantCreateInput {
    /// The new tenant's id: 1 to 128 characters of `[A-Za-z0-9_-]`, not starting with `_`.
    pub id: String,
}

/// A document to insert.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct InsertInput {
    /// The tenant id.
    pub tenant: String,
    /// The table (created by its first insert).
    pub table: String,
    /// The document's fields; names must not start with `_` nor contain `.`.
    pub fields: Map<String, Value>,
}

/// One document.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DocumentInput {
    /// The tenant id.
    pub tenant: String,
    /// The table.
    pub table: String,
    /// The document id (`_id`).
    pub id: String,
}

/// A shallow merge into one document.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PatchInput {
    /// The tenant id.
    pub tenant: String,
    /// The table.
    pub table: String,
    /// The document id (`_id`).
    pub id: String,
    /// Top-level fields to set; each replaces the stored value whole (`null` stores `null`).
    pub patch: Map<String, Value>,
}

/// A filter operator.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Equal (JSON equality; numbers numerically).
    Eq,
    /// Present and not equal.
    Neq,
    /// Greater than (strings or numbers).
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Equal to one element of `value`, an array.
    In,
}

/// One filter; a document lacking the field never matches.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Filter {
    /// A field name or a dot path into nested objects (`owner.team`); `_id`, `_creationTime`,
    /// `_updateTime` too.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// The operand (an array for `in`).
    pub value: Value,
}

/// A sort direction.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// The order of a query's results.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Order {
    /// The field (or dot path) to order by.
    pub field: String,
    /// The direction.
    pub direction: Direction,
}

/// A query, one page at a time.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryInput {
    /// The tenant id.
    pub tenant: String,
    /// The table.
    pub table: String,
    /// Filters, all ANDed (none: every document).
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// The order (default `_id` ascending, which is creation order).
    pub order: Option<Order>,
    /// Documents per page, 1 to 1000 (default 100).
    pub limit: Option<usize>,
    /// The `nextCursor` of the previous page of the same query.
    pub cursor: Option<String>,
}

/// A table's schema, or every table's.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SchemaGetInput {
    /// The tenant id.
    pub tenant: String,
    /// One table (none: every table with a schema).
    pub table: Option<String>,
}

/// A schema to set.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SchemaPutInput {
    /// The tenant id.
    pub tenant: String,
    /// The table.
    pub table: String,
    /// The schema, as docs/data.md "Schemas and indexes" describes it: `{fields: [{name,
    /// field_type, required}], indexes: [{name, fields}], access_policy?}` (`table` is filled in).
    pub schema: Value,
}

/// A function call.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CallInput {
    /// The tenant id.
    pub tenant: String,
    /// The function's name, `module:export` (e.g. `tasks:list`).
    pub name: String,
    /// Its arguments (default `{}`).
    pub args: Option<Map<String, Value>>,
}

/// What a job does when it runs.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum JobTarget {
    /// Insert a document.
    Insert {
        /// The table.
        table: String,
        /// The fields.
        fields: Map<String, Value>,
        /// The document id to use (the job fails if it exists then).
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// Patch a document.
    Update {
        /// The table.
        table: String,
        /// The document id.
        id: String,
        /// Top-level fields to set.
        patch: Map<String, Value>,
    },
    /// Delete a document.
    Delete {
        /// The table.
        table: String,
        /// The document id.
        id: String,
    },
    /// Run a mutation or action.
    Function {
        /// `module:export`.
        name: String,
        /// Its arguments.
        #[serde(default)]
        args: Map<String, Value>,
    },
}

/// A job to schedule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobScheduleInput {
    /// The tenant id.
    pub tenant: String,
    /// Delay before it runs, in ms (0 to 365 days; default 0).
    #[serde(default)]
    pub run_after_ms: u64,
    /// What it does.
    pub target: JobTarget,
}

/// One job.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobInput {
    /// The tenant id.
    pub tenant: String,
    /// The job id (`jobId` of jobs_schedule).
    pub job_id: String,
}

// ---------------------------------------------------------------------------------------------
// Outputs

/// Tenant ids.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Tenants {
    /// Sorted in byte order.
    pub tenants: Vec<String>,
}

/// An id (of a tenant, or of the document written).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Id {
    /// The id.
    pub id: String,
}

/// One document.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Document {
    /// System fields (`_id`, `_creationTime`, `_updateTime`) first, then the user's.
    pub document: Value,
}

/// A removed document or cancelled job.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    /// The id of what was removed.
    pub id: String,
    /// Always true (a failure is a tool error).
    pub removed: bool,
}

/// One page of a query.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// The documents.
    pub documents: Vec<Value>,
    /// Pass as `cursor` for the next page; present exactly when `hasMore`.
    pub next_cursor: Option<String>,
    /// Whether more documents match.
    pub has_more: bool,
}

/// The server's page of a paginated query.
#[derive(Deserialize)]
struct PageAnswer {
    data: Vec<Value>,
    next_cursor: Option<String>,
    has_more: bool,
}

/// Schemas by table.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Schemas {
    /// Table name → schema.
    pub tables: BTreeMap<String, Value>,
}

/// The deployed function set.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Functions {
    /// Grows by one per deploy (0 before the first).
    pub version: u64,
    /// When it was deployed (RFC 3339), `null` before the first deploy.
    pub deployed_at: Option<String>,
    /// `{name, kind, visibility}` per function, sorted by name.
    pub functions: Vec<Value>,
}

/// A function's return value.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Returned {
    /// What the function returned.
    pub value: Value,
}

/// A scheduled job's id.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobId {
    /// Pass to jobs_get and jobs_cancel.
    pub job_id: String,
}

/// A job in any state.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Job {
    /// `id`, `state` (`pending`, `running`, `completed`, `failed`, `cancelled`), `run_at`,
    /// attempts, the target, and once finished `error`, `error_code` and `value`.
    pub job: Value,
}

// ---------------------------------------------------------------------------------------------
// Tools

#[tool_router(router = data_tools, vis = "pub(crate)")]
impl<B: Backend> NimbusMcp<B> {
    /// Lists the ids of every tenant.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn tenants_list(&self, _input: Parameters<NoInput>) -> Result<Json<Tenants>, ToolError> {
        Ok(Json(self.call_as(Method::Get, "/api/tenants".into(), Body::Empty).await?))
    }

    /// Creates a tenant: an isolated namespace of documents, functions, jobs and sandboxes.
    #[tool(annotations(read_only_hint = false, destructive_hint = false, open_world_hint = false))]
    async fn tenants_create(&self, Parameters(input): Parameters<TenantCreateInput>) -> Result<Json<Id>, ToolError> {
        let body = Body::Json(json!({ "id": input.id }));
        Ok(Json(self.call_as(Method::Post, "/api/tenants".into(), body).await?))
    }

    /// Inserts a document into a table; answers its new `_id`.
    #[tool(annotations(read_only_hint = false, destructive_hint = false, open_world_hint = false))]
    async fn documents_insert(&self, Parameters(input): Parameters<InsertInput>) -> Result<Json<Id>, ToolError> {
        let body = Body::Json(json!({ "table": input.table, "fields": input.fields }));
        Ok(Json(self.call_as(Method::Post, tenant_path(&input.tenant, "/documents"), body).await?))
    }

    /// Reads one document by id: its system fields (`_id`, `_creationTime`, `_updateTime`),
    /// then its own.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn documents_get(&self, Parameters(input): Parameters<DocumentInput>) -> Result<Json<Document>, ToolError> {
        Ok(Json(self.call_as(Method::Get, document_path(&input.tenant, &input.table, &input.id), Body::Empty).await?))
    }

    /// Shallow-merges fields into a document (each given field replaces the stored one).
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn documents_patch(&self, Parameters(input): Parameters<PatchInput>) -> Result<Json<Id>, ToolError> {
        let body = Body::Json(json!({ "patch": input.patch }));
        Ok(Json(self.call_as(Method::Patch, document_path(&input.tenant, &input.table, &input.id), body).await?))
    }

    /// Deletes one document by id (a missing one is `op.document_not_found`).
    #[tool(annotations(read_only_hint = false, destructive_hint = true, open_world_hint = false))]
    async fn documents_delete(&self, Parameters(input): Parameters<DocumentInput>) -> Result<Json<Removed>, ToolError> {
        self.call(Method::Delete, document_path(&input.tenant, &input.table, &input.id), Body::Empty).await?;
        Ok(Json(Removed { id: input.id, removed: true }))
    }

    /// Queries a table with filters and an order, one page at a time (keyset cursors: paging
    /// while others write never repeats nor skips a document).
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn documents_query(&self, Parameters(input): Parameters<QueryInput>) -> Result<Json<Page>, ToolError> {
        let query = json!({ "table": input.table, "filters": input.filters, "order": input.order });
        let page_size = input.limit.unwrap_or(MCP_QUERY_DEFAULT_LIMIT).min(MAX_PAGE_SIZE);
        let body = Body::Json(json!({ "query": without_nulls(query), "page_size": page_size, "after": input.cursor }));
        let page: PageAnswer = self.call_as(Method::Post, tenant_path(&input.tenant, "/query/paginated"), body).await?;
        Ok(Json(Page { documents: page.data, next_cursor: page.next_cursor, has_more: page.has_more }))
    }

    /// Reads the schema of one table, or of every table that has one.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn schema_get(&self, Parameters(input): Parameters<SchemaGetInput>) -> Result<Json<Schemas>, ToolError> {
        let Some(table) = input.table else {
            return Ok(Json(self.call_as(Method::Get, tenant_path(&input.tenant, "/schema"), Body::Empty).await?));
        };
        let path = tenant_path(&input.tenant, &format!("/schema/{}", segment(&table)));
        let schema = self.call(Method::Get, path, Body::Empty).await?;
        Ok(Json(Schemas { tables: BTreeMap::from([(table, schema)]) }))
    }

    /// Sets a table's schema: every stored document is validated against it and its indexes
    /// are rebuilt; it replaces the previous schema.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn schema_put(&self, Parameters(input): Parameters<SchemaPutInput>) -> Result<Json<Schemas>, ToolError> {
        let path = tenant_path(&input.tenant, &format!("/schema/{}", segment(&input.table)));
        let mut schema = input.schema;
        if let Value::Object(fields) = &mut schema {
            fields.entry("table").or_insert_with(|| Value::String(input.table.clone()));
        }
        self.call(Method::Put, path.clone(), Body::Json(schema)).await?;
        // The PUT answers 204; the schema as stored is what the agent needs to see.
        let stored = self.call(Method::Get, path, Body::Empty).await?;
        Ok(Json(Schemas { tables: BTreeMap::from([(input.table, stored)]) }))
    }

    /// Lists the tenant's deployed functions (queries, mutations, actions).
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn functions_list(&self, Parameters(input): Parameters<TenantInput>) -> Result<Json<Functions>, ToolError> {
        Ok(Json(self.call_as(Method::Get, tenant_path(&input.tenant, "/functions"), Body::Empty).await?))
    }

    /// Calls a public function and answers its return value; a mutation's writes commit
    /// atomically, an action may reach the network.
    #[tool(annotations(read_only_hint = false, destructive_hint = true))]
    async fn functions_call(&self, Parameters(input): Parameters<CallInput>) -> Result<Json<Returned>, ToolError> {
        let body = Body::Json(json!({ "name": input.name, "args": input.args.unwrap_or_default() }));
        Ok(Json(self.call_as(Method::Post, tenant_path(&input.tenant, "/functions/call"), body).await?))
    }

    /// Schedules a one-shot job: an insert, update or delete, or a mutation or action, run
    /// once after `runAfterMs` (durable across restarts).
    #[tool(annotations(read_only_hint = false, destructive_hint = false, open_world_hint = false))]
    async fn jobs_schedule(&self, Parameters(input): Parameters<JobScheduleInput>) -> Result<Json<JobId>, ToolError> {
        let body = Body::Json(json!({ "run_after_ms": input.run_after_ms, "mutation": input.target }));
        let answer = self.call(Method::Post, tenant_path(&input.tenant, "/schedule"), body).await?;
        let job_id = answer["job_id"].as_str().unwrap_or_default().to_owned();
        Ok(Json(JobId { job_id }))
    }

    /// Reads a job in any state, with its result once it has finished.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    async fn jobs_get(&self, Parameters(input): Parameters<JobInput>) -> Result<Json<Job>, ToolError> {
        Ok(Json(self.call_as(Method::Get, job_path(&input), Body::Empty).await?))
    }

    /// Cancels a pending job (one that has started or finished cannot be cancelled).
    #[tool(annotations(read_only_hint = false, destructive_hint = true, open_world_hint = false))]
    async fn jobs_cancel(&self, Parameters(input): Parameters<JobInput>) -> Result<Json<Removed>, ToolError> {
        self.call(Method::Delete, job_path(&input), Body::Empty).await?;
        Ok(Json(Removed { id: input.job_id, removed: true }))
    }
}

fn document_path(tenant: &str, table: &str, id: &str) -> String {
    tenant_path(tenant, &format!("/documents/{}/{}", segment(table), segment(id)))
}

fn job_path(input: &JobInput) -> String {
    tenant_path(&input.tenant, &format!("/schedule/{}", segment(&input.job_id)))
}

/// `value` without its `null` members (the API's optional fields are absent, not `null`).
pub(crate) fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect())
        }
        other => other,
    }
}

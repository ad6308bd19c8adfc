//! Wire shapes: request bodies of the core data routes (snake_case, unknown top-level keys
//! ignored as the public product does), and the `Image` resource, which the CLI prints in the
//! same form. Schema bodies use the engine's `TableSchema`, whose stored form is its contract
//! form.

use nimbus_core::NimbusError;
use nimbus_core::time::rfc3339_ms;
use nimbus_sandbox::image::ImageRecord;
use schemars::JsonSchema;
use std::borrow::Cow;

use nimbus_engine::document::Document;
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// An image in its wire form. `used_by` counts the sandboxes not yet removed that run it.
pub fn image_json(image: &ImageRecord, used_by: usize) -> Value {
    json!({
        "digest": image.digest,
        "references": image.references,
        "os": image.os,
        "architecture": image.architecture,
        "sizeBytes": image.size_bytes,
        "source": image.source.as_str(),
        "storedAt": rfc3339_ms(image.stored_at_ms),
        "usedBy": used_by,
    })
}

/// 409 `op.conflict` for removing an image that sandboxes (not yet removed) still use.
pub fn image_in_use(reference: &str, users: usize) -> NimbusError {
    NimbusError::conflict(
        "image_in_use",
        format!("image '{reference}' is used by {users} sandbox(es); delete them first"),
        json!({ "reference": reference, "usedBy": users }),
    )
}

/// `GET /health`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Always `true`: the server answers.
    pub ok: bool,
}

/// `GET /api/tenants`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantList {
    /// Every tenant id, sorted.
    pub tenants: Vec<String>,
}

/// An answer naming one resource by its id: a created tenant or document, a patched document.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdAnswer {
    /// The resource's id.
    pub id: String,
}

/// A document as the data routes answer it: its fields beside the system fields `_id`,
/// `_creationTime` and `_updateTime` (Unix ms).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct DocumentJson(pub Value);

impl JsonSchema for DocumentJson {
    fn schema_name() -> Cow<'static, str> {
        "Document".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "The document's fields beside its system fields.",
            "required": ["_id", "_creationTime", "_updateTime"],
            "properties": {
                "_id": { "type": "string" },
                "_creationTime": { "type": "integer" },
                "_updateTime": { "type": "integer" },
            },
        })
    }
}

impl DocumentJson {
    /// The wire forms of `documents`.
    pub fn all(documents: &[Document]) -> Vec<DocumentJson> {
        documents.iter().map(|document| DocumentJson(document.to_json())).collect()
    }
}

/// `GET /api/tenants/{t}/documents/{table}/{id}`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentAnswer {
    /// The document.
    pub document: DocumentJson,
}

/// `POST /api/tenants/{t}/query`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryAnswer {
    /// The matching documents, in the query's order.
    pub data: Vec<DocumentJson>,
}

/// A keyset page of documents: a table's list, a paginated query.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentPage {
    /// This page's documents.
    pub data: Vec<DocumentJson>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
    /// Whether more pages follow.
    pub has_more: bool,
}

/// The answer of scheduling a job.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobCreated {
    /// The job's id.
    pub job_id: String,
}

/// `POST /api/system/token/rotate`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotated {
    /// The new token's generation.
    pub generation: u64,
}

/// `POST /api/system/shutdown`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    /// Always `true`: the server is stopping.
    pub accepted: bool,
}

/// `POST /api/tenants`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateTenant {
    /// The tenant id.
    pub id: String,
}

/// `POST /api/tenants/{t}/documents`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct InsertDocument {
    /// Target table.
    pub table: String,
    /// The document's fields. The server mints the id; a top-level `id` key beside `fields`
    /// is ignored like any unknown key.
    pub fields: Map<String, Value>,
}

/// `PATCH /api/tenants/{t}/documents/{table}/{id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PatchDocument {
    /// Top-level keys to replace.
    pub patch: Map<String, Value>,
}

/// One filter of a query.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FilterBody {
    /// Field path.
    pub field: String,
    /// Operator name.
    pub op: String,
    /// Operand.
    pub value: Value,
}

/// A query's order.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrderBody {
    /// Field path.
    pub field: String,
    /// `asc` or `desc`.
    pub direction: String,
}

/// `POST /api/tenants/{t}/query`, and the `query` of a paginated query.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryBody {
    /// Table to read.
    pub table: String,
    /// Filters, ANDed.
    pub filters: Vec<FilterBody>,
    /// Optional order (default `_id` ascending).
    #[serde(default)]
    pub order: Option<OrderBody>,
    /// Optional limit (≥ 0).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `POST /api/tenants/{t}/query/paginated`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PaginatedQueryBody {
    /// The query (its `limit` is ignored).
    pub query: QueryBody,
    /// Page size, ≥ 1, clamped to the maximum.
    pub page_size: i64,
    /// The previous page's cursor, or `null` for the first page.
    #[serde(default)]
    pub after: Option<String>,
}

/// `POST /ui/auth/session`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CookieSessionBody {
    /// The admin token.
    pub token: String,
}

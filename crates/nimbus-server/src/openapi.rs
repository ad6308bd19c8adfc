//! The OpenAPI 3.1 document (`GET /openapi.json`, committed as `docs/openapi.json`), generated
//! from the documented route table and the wire types' JSON Schemas. Error answers are the
//! catalog envelope, whose `code` enumerates the catalog.

use nimbus_core::ErrorCode;
use nimbus_core::catalog::Action;
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::auth::access::Access;
use crate::routes::table::{Content, Doc, Operation, ParamType};

/// The name of the envelope's schema in `components.schemas`.
const ENVELOPE: &str = "ErrorEnvelope";

/// The document for `operations`, as pretty JSON with a final newline (the committed form).
pub fn document_text(operations: &[Operation]) -> String {
    let mut text = serde_json::to_string_pretty(&document(operations)).unwrap_or_default();
    text.push('\n');
    text
}

/// The document for `operations`.
pub fn document(operations: &[Operation]) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = SchemaGenerator::new(settings);
    let mut paths = Map::new();
    for operation in operations {
        let path = openapi_path(&operation.path);
        let item = paths.entry(path).or_insert_with(|| json!({}));
        item[operation.method.as_str().to_ascii_lowercase()] = render(operation, &mut generator);
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert(ENVELOPE.to_owned(), envelope_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Nimbus",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Nimbus HTTP API. Every error answer is the catalog envelope \
                            (`GET /errors`, docs/errors.md). Generated from the server's route table.",
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token (`nimbus auth token`).",
                },
            },
            "schemas": schemas,
        },
    })
}

/// The router's path syntax in OpenAPI's: a `{*rest}` wildcard becomes the parameter `{rest}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The names of a path's parameters, in order.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*'))
}

/// The tag of a path: its resource (the segment after the tenant, `sessions`, `images`, …).
fn tag(path: &str) -> &str {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["api", "tenants", _, resource, ..] => resource,
        ["api", "tenants", ..] => "tenants",
        ["api", resource, ..] => resource,
        ["convex", ..] => "convex",
        [first, ..] if first.starts_with("llms") || *first == "docs" || *first == "openapi.json" => "docs",
        _ => "system",
    }
}

fn render(operation: &Operation, generator: &mut SchemaGenerator) -> Value {
    let doc = &operation.doc;
    let mut parameters: Vec<Value> = path_parameters(&operation.path)
        .map(|name| {
            let schema = if name == "port" {
                json!({ "type": "integer", "minimum": 1, "maximum": 65535 })
            } else {
                json!({ "type": "string" })
            };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect();
    parameters.extend(doc.query.iter().map(|param| {
        let kind = match param.kind {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
        };
        json!({ "name": param.name, "in": "query", "required": false, "description": param.description, "schema": { "type": kind } })
    }));
    let mut rendered = json!({
        "operationId": doc.id,
        "summary": doc.summary,
        "tags": [tag(&operation.path)],
        "parameters": parameters,
        "responses": responses(doc, generator),
    });
    if let Some(content) = doc.body {
        rendered["requestBody"] = json!({ "required": !doc.body_optional, "content": media(content, generator) });
    }
    match doc.access {
        Access::Token => {}
        Access::Open | Access::TokenInBody => rendered["security"] = json!([]),
        // The bearer token, or none at the upgrade (the socket's first frame carries it).
        Access::TokenInFirstFrame => rendered["security"] = json!([{ "bearer": [] }, {}]),
    }
    rendered
}

fn responses(doc: &Doc, generator: &mut SchemaGenerator) -> Value {
    let mut responses = Map::new();
    for success in doc.successes() {
        let mut answer = json!({ "description": success.description });
        if !matches!(success.content, Content::Empty) {
            answer["content"] = media(success.content, generator);
        }
        responses.insert(success.status.to_string(), answer);
    }
    let envelope = json!({ "$ref": format!("#/components/schemas/{ENVELOPE}") });
    responses.insert(
        "default".to_owned(),
        json!({
            "description": "An error: the catalog envelope.",
            "content": { "application/json": { "schema": envelope } },
        }),
    );
    Value::Object(responses)
}

fn media(content: Content, generator: &mut SchemaGenerator) -> Value {
    match content {
        Content::Json(schema) => json!({ "application/json": { "schema": schema(generator) } }),
        Content::AnyJson => json!({ "application/json": { "schema": {} } }),
        Content::Bytes(media_type) => json!({ media_type: { "schema": {} } }),
        Content::Empty => json!({}),
    }
}

/// The envelope `{"error": {...}}`, its `code` one of the catalog's.
fn envelope_schema() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    let actions: Vec<&str> = Action::ALL.iter().map(|action| action.as_str()).collect();
    json!({
        "type": "object",
        "required": ["error"],
        "additionalProperties": false,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "requestId", "timestamp", "severity", "retryable", "detail"],
                "additionalProperties": false,
                "properties": {
                    "code": { "type": "string", "enum": codes },
                    "message": { "type": "string" },
                    "requestId": { "type": "string" },
                    "timestamp": { "type": "string" },
                    "severity": { "type": "string", "enum": ["fatal", "error", "warning"] },
                    "retryable": { "type": "boolean" },
                    "detail": {},
                    "remediation": {
                        "type": "object",
                        "required": ["action", "message"],
                        "properties": { "action": { "type": "string", "enum": actions }, "message": { "type": "string" } },
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_tags_and_parameters() {
        assert_eq!(openapi_path("/docs/{*page}"), "/docs/{page}");
        let names: Vec<&str> = path_parameters("/api/tenants/{tenant_id}/ports/{port}/{*path}").collect();
        assert_eq!(names, ["tenant_id", "port", "path"]);
        assert_eq!(tag("/api/tenants/{tenant_id}/sandboxes/{sandbox_id}"), "sandboxes");
        assert_eq!(tag("/api/tenants/{tenant_id}"), "tenants");
        assert_eq!(tag("/api/sessions/{session_id}/exec"), "sessions");
        assert_eq!(tag("/convex/{tenant_id}/query"), "convex");
        assert_eq!(tag("/llms.txt"), "docs");
        assert_eq!(tag("/health"), "system");
    }
}

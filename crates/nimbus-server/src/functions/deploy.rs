//! A deploy in the server: prepare it in the runtime, turn `schema.ts`'s `defineSchema` into
//! table schemas, find the pending jobs and crons whose function would be gone, then store the
//! schemas and the deployment in one transaction (`dryRun` stops before it) and activate it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use nimbus_core::ids::TableName;
use nimbus_core::{ErrorCode, NimbusError};
use nimbus_engine::Tenant;
use nimbus_engine::schema::{FieldDef, FieldType, IndexSpec, TableSchema};
use nimbus_engine::tenant::Target;
use nimbus_functions::Deployment;
use serde_json::{Value, json};

use super::NimbusFunctions;

/// What a deploy answers.
#[derive(Debug)]
pub struct DeployOutcome {
    /// The deployment (version and time set).
    pub deployment: Arc<Deployment>,
    /// `[{kind: "scheduled_function_missing", name, count}]`.
    pub warnings: Vec<Value>,
}

/// Deploys `modules` to `tenant` (or only validates them with `dry_run`).
pub async fn deploy(
    functions: &NimbusFunctions,
    tenant: &Arc<Tenant>,
    modules: BTreeMap<String, String>,
    dry_run: bool,
) -> Result<DeployOutcome, NimbusError> {
    let prepared = functions.prepare(modules).await?;
    let schemas = match &prepared.schema {
        Some(schema) => table_schemas(schema)?,
        None => Vec::new(),
    };
    let mut deployment = prepared.deployment;
    let warnings = missing_targets(tenant, &deployment).await?;
    let current = functions.deployment(tenant.id().as_str()).await?;
    if dry_run {
        deployment.version = current.version + 1;
        return Ok(DeployOutcome { deployment: Arc::new(deployment), warnings });
    }
    let body = deployment.to_body()?;
    let ((version, deployed_at), _) = tenant
        .transact(move |tx| {
            for (table, schema) in schemas {
                tx.put_schema(&table, schema).map_err(schema_rejected)?;
            }
            let version = tx.put_function_set(body)?;
            Ok((version, tx.now()))
        })
        .await?;
    deployment.version = version;
    deployment.deployed_at = deployed_at;
    let deployment = Arc::new(deployment);
    functions.activate(tenant.id().as_str(), deployment.clone());
    Ok(DeployOutcome { deployment, warnings })
}

/// A schema that existing documents violate fails the deploy.
fn schema_rejected(error: NimbusError) -> NimbusError {
    if error.code != ErrorCode::OpSchemaValidation {
        return error;
    }
    NimbusError::new(
        ErrorCode::FunctionDeployFailed,
        format!("schema.ts: {}", error.message),
        Some(json!({ "errors": [{ "file": "schema.ts", "line": 1, "column": 1, "message": error.message }] })),
    )
}

/// The pending jobs and crons that name a function the new deployment lacks, counted by name.
async fn missing_targets(tenant: &Tenant, deployment: &Deployment) -> Result<Vec<Value>, NimbusError> {
    let mut missing: BTreeMap<String, u64> = BTreeMap::new();
    let mut note = |target: &Target| {
        if let Target::Function { name, .. } = target
            && !deployment.functions.contains_key(name)
        {
            *missing.entry(name.clone()).or_default() += 1;
        }
    };
    for job in tenant.pending_jobs().await? {
        note(&job.target);
    }
    for cron in tenant.crons().await? {
        note(&cron.target);
    }
    Ok(missing
        .into_iter()
        .map(|(name, count)| json!({ "kind": "scheduled_function_missing", "name": name, "count": count }))
        .collect())
}

/// `defineSchema` JSON → table schemas (400 `function.deploy_failed` naming schema.ts).
fn table_schemas(schema: &Value) -> Result<Vec<(TableName, TableSchema)>, NimbusError> {
    let fail = |message: String| {
        NimbusError::new(
            ErrorCode::FunctionDeployFailed,
            format!("schema.ts: {message}"),
            Some(json!({ "errors": [{ "file": "schema.ts", "line": 1, "column": 1, "message": message }] })),
        )
    };
    let tables =
        schema.get("tables").and_then(Value::as_object).ok_or_else(|| fail("defineSchema has no tables".into()))?;
    let mut out = Vec::new();
    for (name, table) in tables {
        let table_name = TableName::parse(name, "table").map_err(|e| fail(format!("table {name:?}: {}", e.message)))?;
        let mut fields = Vec::new();
        let mut declared = BTreeSet::new();
        if let Some(defs) = table.get("fields").and_then(Value::as_object) {
            for (field, descriptor) in defs {
                let (inner, required) = match descriptor.get("type").and_then(Value::as_str) {
                    Some("optional") => (descriptor.get("inner").unwrap_or(&Value::Null), false),
                    _ => (descriptor, true),
                };
                fields.push(FieldDef { name: field.clone(), field_type: field_type(inner), required });
                declared.insert(field.clone());
            }
        }
        let mut indexes = Vec::new();
        for index in table.get("indexes").and_then(Value::as_array).into_iter().flatten() {
            let index_name = index.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let index_fields: Vec<String> = index
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect();
            indexes.push(IndexSpec { name: index_name, fields: index_fields });
        }
        let schema = TableSchema { table: name.clone(), fields, indexes, access_policy: None };
        schema.validate(&table_name).map_err(|e| fail(format!("table {name:?}: {}", e.message)))?;
        out.push((table_name, schema));
    }
    Ok(out)
}

/// The schema field type of a validator descriptor (anything richer than one JSON kind is
/// `any`: the function's own validators check the details).
fn field_type(descriptor: &Value) -> FieldType {
    match descriptor.get("type").and_then(Value::as_str) {
        Some("string" | "id") => FieldType::String,
        Some("number") => FieldType::Number,
        Some("boolean") => FieldType::Boolean,
        Some("array") => FieldType::Array,
        Some("object" | "record") => FieldType::Object,
        _ => FieldType::Any,
    }
}

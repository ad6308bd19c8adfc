//! Table schemas: field declarations, indexes and the access policy, their validation, and
//! document validation against them.
//!
//! The stored form of a schema is its contract JSON (`GET /schema/{table}` returns what was put).

use std::collections::HashSet;

use nimbus_core::NimbusError;
use nimbus_core::ids::{IndexName, TableName};
use nimbus_core::limits::{MAX_INDEX_FIELDS, MAX_INDEXES_PER_TABLE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::document::{FieldPath, Fields, check_field_name};
use crate::index_key;
use crate::policy::AccessPolicy;
use crate::query::plan::IndexDef;

/// A table's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    /// The table it applies to (must equal the path segment).
    pub table: String,
    /// Declared fields.
    pub fields: Vec<FieldDef>,
    /// Indexes over declared scalar fields.
    pub indexes: Vec<IndexSpec>,
    /// Optional access policy.
    #[serde(default)]
    pub access_policy: Option<AccessPolicy>,
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    /// Top-level field name.
    pub name: String,
    /// Declared type.
    pub field_type: FieldType,
    /// Whether every document must have the field.
    pub required: bool,
}

/// A declared field type; `null` only satisfies `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A JSON string.
    String,
    /// A JSON number.
    Number,
    /// A JSON boolean.
    Boolean,
    /// A JSON array.
    Array,
    /// A JSON object.
    Object,
    /// Any JSON value, including `null`.
    Any,
}

impl FieldType {
    fn accepts(self, value: &Value) -> bool {
        match self {
            FieldType::String => value.is_string(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
            FieldType::Array => value.is_array(),
            FieldType::Object => value.is_object(),
            FieldType::Any => true,
        }
    }

    fn indexable(self) -> bool {
        matches!(self, FieldType::String | FieldType::Number | FieldType::Boolean)
    }

    fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Array => "array",
            FieldType::Object => "object",
            FieldType::Any => "any",
        }
    }
}

/// One index: a name and the fields it orders by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// Indexed fields, most significant first.
    pub fields: Vec<String>,
}

impl TableSchema {
    /// Checks the schema itself against the contract's rules: syntax errors are 400, caps are
    /// 400 `op.cap_exceeded`, and inconsistent indexes are 422 `op.schema_validation`.
    pub fn validate(&self, table: &TableName) -> Result<(), NimbusError> {
        if self.table != table.as_str() {
            return Err(NimbusError::invalid_input("table", "must equal the table named in the path"));
        }
        let mut declared = HashSet::new();
        for (i, field) in self.fields.iter().enumerate() {
            check_field_name(&field.name)
                .map_err(|reason| NimbusError::invalid_input(format!("fields[{i}].name"), reason))?;
            if !declared.insert(field.name.as_str()) {
                return Err(NimbusError::invalid_input(format!("fields[{i}].name"), "is declared twice"));
            }
        }
        if self.indexes.len() > MAX_INDEXES_PER_TABLE {
            return Err(NimbusError::cap_exceeded(
                "indexes_per_table",
                self.indexes.len() as u64,
                MAX_INDEXES_PER_TABLE as u64,
            ));
        }
        let mut names = HashSet::new();
        for (i, index) in self.indexes.iter().enumerate() {
            IndexName::parse(&index.name, &format!("indexes[{i}].name"))?;
            if index.fields.len() > MAX_INDEX_FIELDS {
                return Err(NimbusError::cap_exceeded(
                    "index_fields",
                    index.fields.len() as u64,
                    MAX_INDEX_FIELDS as u64,
                ));
            }
            let violation =
                |reason: String| NimbusError::schema_violation(table.as_str(), &format!("indexes[{i}]"), reason);
            if !names.insert(index.name.as_str()) {
                return Err(violation(format!("index name '{}' is used twice", index.name)));
            }
            if index.fields.is_empty() {
                return Err(violation("an index needs at least one field".into()));
            }
            let mut seen = HashSet::new();
            for name in &index.fields {
                if !seen.insert(name.as_str()) {
                    return Err(violation(format!("field '{name}' is listed twice")));
                }
                match self.fields.iter().find(|f| &f.name == name) {
                    None => return Err(violation(format!("field '{name}' is not declared"))),
                    Some(f) if !f.field_type.indexable() => {
                        return Err(violation(format!(
                            "field '{name}' is of type {}; only string, number and boolean fields can be indexed",
                            f.field_type.name()
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(policy) = &self.access_policy {
            policy.validate()?;
        }
        Ok(())
    }

    /// Checks a document's fields against the declarations: required fields present and
    /// declared types matched; undeclared fields are allowed. The error is the first violation
    /// as `(field, reason)`.
    pub fn violation(&self, fields: &Fields) -> Option<(String, String)> {
        for def in &self.fields {
            match fields.get(&def.name) {
                None if def.required => return Some((def.name.clone(), "is required".into())),
                None => {}
                Some(value) if !def.field_type.accepts(value) => {
                    return Some((def.name.clone(), format!("must be of type {}", def.field_type.name())));
                }
                Some(_) => {}
            }
        }
        None
    }

    /// Checks a document about to be written (422 `op.schema_validation`).
    pub fn check_document(&self, fields: &Fields) -> Result<(), NimbusError> {
        match self.violation(fields) {
            Some((field, reason)) => Err(NimbusError::schema_violation(&self.table, &field, reason)),
            None => Ok(()),
        }
    }

    /// The indexes in the planner's form.
    pub fn index_defs(&self) -> Vec<IndexDef> {
        self.indexes
            .iter()
            .map(|index| IndexDef {
                name: index.name.clone(),
                fields: index.fields.iter().filter_map(|f| FieldPath::parse(f).ok()).collect(),
            })
            .collect()
    }

    /// The key of a document's fields in each index, as `(index name, key)`.
    pub fn index_keys(&self, fields: &Fields) -> Vec<(String, Vec<u8>)> {
        self.indexes
            .iter()
            .map(|index| {
                let values: Vec<Option<&Value>> = index.fields.iter().map(|f| fields.get(f)).collect();
                (index.name.clone(), index_key::encode_key(&values))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_core::ErrorCode;
    use serde_json::json;

    fn schema(value: Value) -> TableSchema {
        serde_json::from_value(value).expect("schema parses")
    }

    fn tasks() -> TableName {
        TableName::parse("tasks", "table").expect("valid")
    }

    #[test]
    fn index_rules_give_the_contract_codes() {
        let base = |indexes: Value| {
            schema(json!({"table": "tasks",
                "fields": [{"name": "title", "field_type": "string", "required": true},
                           {"name": "tags", "field_type": "array", "required": false}],
                "indexes": indexes}))
        };
        let code = |s: TableSchema| s.validate(&tasks()).err().map(|e| e.code);
        assert_eq!(code(base(json!([{"name": "by_title", "fields": ["title"]}]))), None);
        assert_eq!(code(base(json!([{"name": "bad name", "fields": ["title"]}]))), Some(ErrorCode::OpInvalidInput));
        assert_eq!(code(base(json!([{"name": "a", "fields": []}]))), Some(ErrorCode::OpSchemaValidation));
        assert_eq!(
            code(base(json!([{"name": "a", "fields": ["title", "title"]}]))),
            Some(ErrorCode::OpSchemaValidation)
        );
        assert_eq!(code(base(json!([{"name": "a", "fields": ["nope"]}]))), Some(ErrorCode::OpSchemaValidation));
        assert_eq!(code(base(json!([{"name": "a", "fields": ["tags"]}]))), Some(ErrorCode::OpSchemaValidation));
        assert_eq!(
            code(base(json!([{"name": "a", "fields": ["title"]}, {"name": "a", "fields": ["title"]}]))),
            Some(ErrorCode::OpSchemaValidation)
        );
        let many: Vec<Value> = (0..33).map(|i| json!({"name": format!("i{i}"), "fields": ["title"]})).collect();
        assert_eq!(code(base(Value::Array(many))), Some(ErrorCode::OpCapExceeded));
        let mut other = base(json!([]));
        other.table = "other".into();
        assert_eq!(code(other), Some(ErrorCode::OpInvalidInput));
    }

    #[test]
    fn documents_are_checked_against_declarations() {
        let s = schema(json!({"table": "tasks",
            "fields": [{"name": "title", "field_type": "string", "required": true},
                       {"name": "n", "field_type": "number", "required": false},
                       {"name": "x", "field_type": "any", "required": false}],
            "indexes": []}));
        let fields = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(s.violation(&fields(json!({"title": "a", "extra": 1}))).is_none());
        assert!(s.violation(&fields(json!({"title": "a", "x": null}))).is_none());
        assert_eq!(s.violation(&fields(json!({}))).map(|v| v.0), Some("title".into()));
        assert_eq!(s.violation(&fields(json!({"title": "a", "n": "1"}))).map(|v| v.0), Some("n".into()));
        assert_eq!(s.violation(&fields(json!({"title": null}))).map(|v| v.0), Some("title".into()));
    }
}

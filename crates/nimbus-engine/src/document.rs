//! Documents: the stored form, field paths into them, and the user-field rules.

use std::borrow::Cow;

use nimbus_core::NimbusError;
use nimbus_core::ids::{DocumentId, TableName};
use nimbus_core::limits::{MAX_DOCUMENT_BYTES, MAX_DOCUMENT_DEPTH};
use serde_json::{Map, Value};

/// The user's fields of a document, in the order the client wrote them.
pub type Fields = Map<String, Value>;

/// One stored document: system fields plus the user's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Server-minted id.
    pub id: DocumentId,
    /// Table the document lives in.
    pub table: TableName,
    /// Commit time of the insert, epoch ms.
    pub creation_time: i64,
    /// Commit time of the last write, epoch ms.
    pub update_time: i64,
    /// User fields.
    pub fields: Fields,
}

impl Document {
    /// Looks a field path up. System fields (`_id`, `_creationTime`, `_updateTime`) resolve to
    /// their values; a path that meets a non-object on the way is missing (`None`).
    pub fn get(&self, path: &FieldPath) -> Option<Cow<'_, Value>> {
        let (first, rest) = path.segments.split_first()?;
        match first.as_str() {
            "_id" if rest.is_empty() => return Some(Cow::Owned(Value::from(self.id.as_str()))),
            "_creationTime" if rest.is_empty() => return Some(Cow::Owned(Value::from(self.creation_time))),
            "_updateTime" if rest.is_empty() => return Some(Cow::Owned(Value::from(self.update_time))),
            _ => {}
        }
        let mut current = self.fields.get(first)?;
        for segment in rest {
            current = current.as_object()?.get(segment)?;
        }
        Some(Cow::Borrowed(current))
    }

    /// The document as clients see it: system fields first, then the user's fields.
    pub fn to_json(&self) -> Value {
        let mut out = Map::with_capacity(self.fields.len() + 3);
        out.insert("_id".into(), Value::from(self.id.as_str()));
        out.insert("_creationTime".into(), Value::from(self.creation_time));
        out.insert("_updateTime".into(), Value::from(self.update_time));
        for (key, value) in &self.fields {
            out.insert(key.clone(), value.clone());
        }
        Value::Object(out)
    }

    /// The storage form used by bootstrap snapshots: `{id, table, creation_time, update_time, fields}`.
    pub fn to_storage_json(&self) -> Value {
        serde_json::json!({
            "id": self.id.as_str(),
            "table": self.table.as_str(),
            "creation_time": self.creation_time,
            "update_time": self.update_time,
            "fields": Value::Object(self.fields.clone()),
        })
    }
}

/// A field path: a top-level name or a dot path into nested objects (`owner.team`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a dot path; every segment must be non-empty. The error is the reason.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("must not be empty");
        }
        let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err("must not have empty path segments");
        }
        Ok(Self { segments })
    }

    /// The path of the `_id` system field (the default order).
    pub fn id() -> Self {
        Self { segments: vec!["_id".to_owned()] }
    }

    /// The path written with dots.
    pub fn dotted(&self) -> String {
        self.segments.join(".")
    }
}

/// Checks a top-level user field name: non-empty, not starting with `_`, no `.`.
pub fn check_field_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("field names must not be empty")
    } else if name.starts_with('_') {
        Err("field names starting with '_' are reserved for system fields")
    } else if name.contains('.') {
        Err("field names must not contain '.'")
    } else {
        Ok(())
    }
}

/// Validates the user fields of a document about to be written: every top-level name follows
/// the rules, and the whole document fits the size and depth caps. `field_prefix` names where
/// the fields sit in the request (`fields` or `patch`).
pub fn validate_user_fields(fields: &Fields, field_prefix: &str) -> Result<(), NimbusError> {
    for name in fields.keys() {
        check_field_name(name)
            .map_err(|reason| NimbusError::invalid_input(format!("{field_prefix}.{name}"), reason))?;
    }
    Ok(())
}

/// Checks a whole document against the size and depth caps (400 `op.cap_exceeded`) and returns
/// its user fields as JSON text, the form they are stored in, so they are serialized once.
pub fn check_document_caps(document: &Document) -> Result<String, NimbusError> {
    let depth = fields_depth(&document.fields);
    if depth > MAX_DOCUMENT_DEPTH {
        return Err(NimbusError::cap_exceeded("document_depth", depth as u64, MAX_DOCUMENT_DEPTH as u64));
    }
    let fields = serde_json::to_string(&document.fields).map_err(|_| NimbusError::internal())?;
    // The wire form is the fields object with the system fields spliced in front of its keys.
    let system = format!(
        r#""_id":{},"_creationTime":{},"_updateTime":{}"#,
        Value::from(document.id.as_str()),
        document.creation_time,
        document.update_time
    );
    let bytes = fields.len() + system.len() + usize::from(!document.fields.is_empty());
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(NimbusError::cap_exceeded("document_bytes", bytes as u64, MAX_DOCUMENT_BYTES as u64));
    }
    Ok(fields)
}

/// Nesting depth of a document's fields: the document object itself is level 1.
fn fields_depth(fields: &Fields) -> usize {
    1 + fields.values().map(value_depth).max().unwrap_or(0)
}

fn value_depth(value: &Value) -> usize {
    // Iterative, so a hostile document cannot overflow the stack here.
    let mut max = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::Array(items) => {
                max = max.max(depth);
                stack.extend(items.iter().map(|v| (v, depth + 1)));
            }
            Value::Object(map) => {
                max = max.max(depth);
                stack.extend(map.values().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    max
}

/// A document of table `tasks` for unit tests: created at 10, updated at 20 (epoch ms).
#[cfg(test)]
pub(crate) fn test_document(id: &str, fields: Value) -> Document {
    Document {
        id: DocumentId::from_stored(id.into()),
        table: TableName::parse("tasks", "table").unwrap_or_else(|e| panic!("{e}")),
        creation_time: 10,
        update_time: 20,
        fields: fields.as_object().cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(fields: Value) -> Document {
        test_document("01j9z3k7q8w2m4n6p8r0t2v4x6", fields)
    }

    #[test]
    fn paths_walk_objects_only() {
        let d = doc(json!({"owner": {"team": "infra"}, "tags": [{"a": 1}], "n": null}));
        let path = |p: &str| FieldPath::parse(p).expect("valid path");
        assert_eq!(d.get(&path("owner.team")).as_deref(), Some(&json!("infra")));
        assert_eq!(d.get(&path("tags.0.a")), None);
        assert_eq!(d.get(&path("n")).as_deref(), Some(&Value::Null));
        assert_eq!(d.get(&path("n.x")), None);
        assert_eq!(d.get(&path("_creationTime")).as_deref(), Some(&json!(10)));
        assert!(FieldPath::parse("a..b").is_err());
    }

    #[test]
    fn wire_form_puts_system_fields_first() {
        let d = doc(json!({"b": 1, "a": 2}));
        let text = serde_json::to_string(&d.to_json()).expect("serializes");
        assert!(
            text.starts_with(r#"{"_id":"01j9z3k7q8w2m4n6p8r0t2v4x6","_creationTime":10,"_updateTime":20,"b":1,"a":2"#)
        );
    }

    #[test]
    fn size_check_measures_the_wire_form_exactly() {
        for fields in [json!({}), json!({"a": 1}), json!({"a": "x", "b": [1, {"c": null}]})] {
            let d = doc(fields);
            let wire = serde_json::to_string(&d.to_json()).expect("serializes");
            let stored = check_document_caps(&d).expect("within caps");
            let system = format!(r#""_id":"{}","_creationTime":10,"_updateTime":20"#, d.id.as_str());
            assert_eq!(wire.len(), stored.len() + system.len() + usize::from(!d.fields.is_empty()));
        }
    }

    #[test]
    fn depth_cap_counts_nesting() {
        let mut value = json!(1);
        for _ in 0..64 {
            value = json!({ "x": value });
        }
        assert!(check_document_caps(&doc(json!({ "deep": value }))).is_err());
        assert!(check_document_caps(&doc(json!({ "shallow": {"x": 1} }))).is_ok());
    }
}
